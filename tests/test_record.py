"""The run record (summary.json): one vocabulary of statuses, one meaning each, read the same way by the table
at the end of a sweep, by `nnexp report` and by a sweep run again."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nnexp import record
from nnexp import report_cmd as report
from nnexp.record import Outcome, RunSummary, Status

# the first summary.json nnexp wrote (no version field): a completed run, with what its readers use
VERSION_1 = {
    "status": "early_stopped", "message": "val/loss did not improve for 20 epochs", "epochs_run": 38,
    "best_epoch": 18, "stopped_epoch": 38, "monitor": "val/loss", "mode": "min", "best_value": 0.4717,
    "restored_best": True, "final": {"train/loss": 0.01, "val/loss": "nan", "train/acc": 1.0, "val/acc": 0.9},
    "best": {"train/loss": 0.036, "val/loss": 0.4717, "train/acc": 0.99, "val/acc": 0.91},
    "gap": {"best": 0.4357, "final": None}, "test": None, "eval": None,
    "diagnosis": {"label": "overfit", "reason": "r", "suggestion": "s"}, "num_params": 300000,
    "wall_seconds": 12.3, "seconds_per_epoch": 0.3, "grad_norm_layers": {}, "device": "cpu", "seed": 0,
    "loss": "cross_entropy", "choices": {"model": "mlp"}, "overrides": ["trainer.seed=0"], "resumed_from": None,
    "config_hash": "abc", "run_dir": "outputs/runs/x", "a_key_from_elsewhere": 1,
}


def test_each_status_has_one_outcome():
    assert {s: s.outcome for s in Status} == {
        Status.COMPLETED: Outcome.FINISHED, Status.EARLY_STOPPED: Outcome.FINISHED,
        Status.DIVERGED: Outcome.FINISHED, Status.INTERRUPTED: Outcome.RESUMABLE, Status.FAILED: Outcome.FAILED}


def test_a_version_1_summary_reads_and_writes_back_with_a_version(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(VERSION_1))
    s = record.read(tmp_path)
    assert s.version == 1 and s.status is Status.EARLY_STOPPED and s.outcome is Outcome.FINISHED
    assert (s.best_epoch, s.best_value, s.best["val/loss"], s.diagnosis["label"]) == (18, 0.4717, 0.4717, "overfit")
    assert math.isnan(s.final["val/loss"])
    record.write(tmp_path, s)
    again = json.loads((tmp_path / "summary.json").read_text())
    assert list(again)[:2] == ["version", "status"] and again["final"]["val/loss"] == "nan"
    assert "a_key_from_elsewhere" not in again
    assert record.encode(record.read(tmp_path)) == record.encode(s)  # read and written back: the same file


def test_non_finite_numbers_survive_a_round_trip(tmp_path):
    record.write(tmp_path, RunSummary(Status.DIVERGED, best_value=float("inf"), final={"train/loss": float("nan")}))
    text = (tmp_path / "summary.json").read_text()
    assert json.loads(text)["best_value"] == "inf"  # valid JSON: no bare NaN/Infinity
    s = record.read(tmp_path)
    assert s.best_value == float("inf") and math.isnan(s.final["train/loss"])


@pytest.mark.parametrize(("content", "why"), [("{not json", "unreadable summary.json"),
                                              ("[1, 2]", "not a JSON object"),
                                              ('{"status": "config_error"}', "unknown status 'config_error'")])
def test_a_damaged_or_foreign_record_is_a_failed_run_that_says_why(tmp_path, content, why):
    (tmp_path / "summary.json").write_text(content)
    s = record.read(tmp_path)
    assert s.status is Status.FAILED and why in s.error


def test_no_record_is_none(tmp_path):
    assert record.read(tmp_path) is None


def _sweep(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnexp", "train", "-m", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=_env())


def _env() -> dict:
    import os

    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def test_completed_diverged_and_failed_jobs_are_classified_alike_everywhere(tmp_path):
    """One sweep with a job that completes, one that diverges (lr=1e30) and one that fails (lr=-1)."""
    args = ("dataset=xor", "optimizer=sgd", "optimizer.lr=0.1,1e30,-1", "trainer.epochs=2", "trainer.progress=none",
            "regularizer=none")
    first = _sweep(tmp_path, *args)
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    jobs = {f.name.split("_")[0]: record.read(f) for f in sweep.iterdir() if f.is_dir()}
    assert {n: s.status for n, s in jobs.items()} == {"0": Status.COMPLETED, "1": Status.DIVERGED,
                                                       "2": Status.FAILED}
    # the table at the end: one row per job with its status; the failed job named, the diverged one apart
    assert first.returncode == 1, first.stderr  # a job failed
    rows = {m[0]: m[1] for m in re.findall(r"│ optimizer\.lr=(\S+) +│ (\w+)", first.stdout)}
    assert rows == {"0.1": "completed", "1e+30": "diverged", "-1": "failed"}  # Hydra writes 1e30 as 1e+30
    assert "job failed (dataset=xor optimizer=sgd optimizer.lr=-1" in first.stderr
    assert "job diverged (dataset=xor optimizer=sgd optimizer.lr=1e+30" in first.stderr
    assert "job failed (dataset=xor optimizer=sgd optimizer.lr=1e+30" not in first.stderr

    # nnexp report: the finished jobs are rows (diverged shows it), the failed one is listed apart
    out = subprocess.run([sys.executable, "-m", "nnexp", "report", str(sweep)], capture_output=True, text=True,
                         timeout=300, env=_env()).stdout
    table, failed = out.split("failed jobs: 1")
    assert re.search(r"│ optimizer\.lr=0\.1 .*completed x1", table)
    assert re.search(r"│ optimizer\.lr=1e\+30 .*diverged x1", table)
    assert "optimizer.lr=-1" not in table and "optimizer.lr=-1" in failed

    # the same sweep again: both finished jobs are skipped, the failed one runs again (and fails again)
    # (the job folders, <n>_...: the report wrote _mean/ beside them, its averaged TensorBoard runs)
    stamps = {n: (sweep / f / "summary.json").stat().st_mtime_ns for n, f in
              ((f.name.split("_")[0], f.name) for f in sweep.iterdir() if f.is_dir() and f.name[0].isdigit())}
    again = _sweep(tmp_path, *args)
    assert again.returncode == 1
    assert "already done (completed), skipped" in again.stdout and "already done (diverged), skipped" in again.stdout
    assert "2 of 3 jobs were already done before this command and were skipped." in again.stdout
    now = {n: (sweep / f / "summary.json").stat().st_mtime_ns for n, f in
           ((f.name.split("_")[0], f.name) for f in sweep.iterdir() if f.is_dir() and f.name[0].isdigit())}
    assert now["0"] == stamps["0"] and now["1"] == stamps["1"] and now["2"] != stamps["2"]


def test_a_sweep_whose_jobs_all_finished_but_one_diverged_exits_3(run_cli, tmp_path):
    code, out, err = run_cli("train", "-m", "dataset=xor", "optimizer=sgd", "optimizer.lr=0.1,1e30",
                             "trainer.epochs=2", "trainer.progress=none", "regularizer=none")
    assert code == 3, err
    assert "job diverged (" in err and "job failed" not in err


def test_report_lists_an_interrupted_job_apart_from_the_results(tmp_path, capsys):
    for seed, status in enumerate(("completed", "interrupted")):
        run = tmp_path / f"{seed}_job"
        run.mkdir()
        s = RunSummary(Status(status), epochs_run=3, best_epoch=2, best_value=0.5, best={"val/loss": 0.5},
                       final={"val/loss": 0.6}, overrides=[f"trainer.seed={seed}"], seed=seed,
                       message="interrupted after epoch 3" if seed else "")
        record.write(run, s)
    assert report.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    table, apart = out.split("failed or unfinished jobs: 1")
    (row,) = [line for line in table.splitlines() if line.startswith("│ (defaults)")]
    assert row.split("│")[2].strip() == "1"  # n: only the completed job's numbers are pooled
    assert re.search(r"│ \(defaults\) +│ 1 +│ interrupted +│ interrupted after epoch 3", apart)
