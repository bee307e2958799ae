"""benchmarks/run.py must keep working: its quick mode runs every case small, and B2/B3 check the same work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_suite_quick_mode_runs_every_case(tmp_path):
    results = REPO / "benchmarks" / "RESULTS.md"
    before = results.read_text() if results.exists() else None
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick",
                           "--only", "B1,B2,B3,B4,B5,B6,B7"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| B")]
    assert {row.split("|")[1].strip() for row in rows} == {"B1", "B2", "B3", "B4", "B5", "B6", "B7"}
    # nnexp and the hand-written loop did the same arithmetic: the losses agree to 1e-6 every epoch
    same_work = [row for row in rows if row.startswith(("| B2", "| B3"))]
    assert len(same_work) == 4 and all("(OK)" in row for row in same_work)  # B2 three ways, B3
    assert any("hydra/launcher=joblib" in row for row in rows if row.startswith("| B6"))  # the small sweep
    assert (results.read_text() if results.exists() else None) == before  # --quick writes nothing


@pytest.mark.slow
def test_busy_machine_tensorboard_and_sklearn_cases_run_in_quick_mode(tmp_path):
    """B8 (beside a busy loop and a second run), B9 (beside TensorBoard) and T1 (against scikit-learn): each
    starts real processes, a few minutes in all, so slow."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--only", "B8,B9,T1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| B", "| T"))]
    assert {row.split("|")[1].strip() for row in rows} == {"B8", "B9", "T1"}


def test_agent_case_runs_in_quick_mode_against_the_hand_written_dqn_loop(tmp_path):
    """R1: nnexp's DQN loop and the hand-written one both run, with the environment's share measured apart."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--only", "R1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| R1")]
    assert len(rows) == 2 and "hand-written DQN loop" in rows[0] and "the environment alone takes" in rows[0]
    assert "steps/s" in rows[1] and "DQN" in rows[1]


def test_benchmark_suite_rejects_an_unknown_case(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--only", "B99"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--only: unknown case B99; allowed: B1, B2, B3, B4, B5, B6, B7, B8, B9, R1, T1" in proc.stderr


def test_speed_options_benchmark_quick_mode_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "speed_options.py"), "--quick"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    assert "x |" in rows["bf16 autocast"] and "x |" in rows["channels_last"]
    if not torch.cuda.is_available():  # float16 autocast is refused on a CPU, with nnexp's own message
        assert "refused: trainer.precision=16 needs a CUDA GPU" in rows["fp16 autocast + GradScaler"]


def test_revisions_benchmark_quick_mode_compares_two_checkouts(tmp_path):
    """benchmarks/revisions.py: two git revisions side by side (here HEAD twice), each from its own worktree."""
    results = REPO / "benchmarks" / "RESULTS_revisions.md"
    before = results.read_text() if results.exists() else None
    worktrees = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True).stdout
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "revisions.py"), "HEAD", "HEAD", "--only", "B3",
                           "--quick"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("| B3 |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].endswith(" s") and cells[4].endswith(" s") and float(cells[6]) > 0  # both measured, a ratio
    assert (results.read_text() if results.exists() else None) == before  # --quick writes nothing
    after = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True).stdout
    assert after == worktrees  # its temporary checkouts are gone
