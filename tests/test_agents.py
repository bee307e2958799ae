"""Agents learning from reward (nnexp/rl/), through the real entry point: the run folder, the curves on the
environment-step axis, early stopping at the threshold, exact resume after a kill, bad keys, sweeps and the
report."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, read_summary, train_rows
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# a few hundred steps: the path, not the learning (experiment=dqn_cartpole learns; tests/test_presets.py)
DQN = ["agent=dqn", "regularizer=none", "model.hidden=[16]", "agent.total_steps=600", "agent.eval_every=200",
       "agent.learning_starts=100", "agent.eval_episodes=2", "agent.final_eval_episodes=3",
       "agent.buffer_size=1000", "agent.target_update=50", "trainer.progress=none", "trainer.threads=1"]
ROUND_TAGS = ("train/loss", "train/q", "eval/return", "eval/return_std", "eval/episode_length", "epsilon", "lr",
              "steps_per_second", "train/episodic_return", "train/episode_length", "best/eval/return")


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_dqn_learns_in_its_environment_and_writes_a_run_folder(run_cli, tmp_path):
    code, out, err = run_cli("train", *DQN, "hydra.run.dir=run")
    assert code == 0, err
    run = tmp_path / "run"
    s = read_summary(run)
    assert s["status"] == "completed" and s["epochs_run"] == 3
    assert (s["monitor"], s["mode"]) == ("eval/return", "max")
    assert s["rl"]["env"] == "CartPole-v1" and s["rl"]["algorithm"] == "dqn" and s["rl"]["env_steps"] == 600
    assert s["rl"]["threshold"] == 475.0
    assert s["eval"]["episodes"] == 3 and s["eval"]["return"] >= 8  # CartPole lasts at least 8 steps
    assert s["final"]["env_steps"] == 600 and s["best"]["eval/return"] == s["best_value"]
    rows = _rows(run)
    assert [r["env_steps"] for r in rows] == ["200", "400", "600"]
    assert rows[0]["train/loss"] != "" and float(rows[0]["epsilon"]) < 1.0  # updates began after 100 steps
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()
    curves = _scalars(run)
    for tag in ROUND_TAGS:
        assert curves.get(tag), f"no {tag} curve"
    assert [step for step, _ in curves["eval/return"]] == [200, 400, 600]  # the environment-step axis
    episodes = [step for step, _ in curves["train/episodic_return"]]
    assert episodes == sorted(episodes) and episodes[0] > 0 and episodes[-1] <= 600
    assert len(episodes) == s["rl"]["episodes"]  # one point per finished episode
    assert "Final evaluation" in out and "Threshold 475" in out


def test_the_run_stops_once_the_return_stays_at_the_threshold(run_cli, tmp_path):
    code, out, err = run_cli("train", *DQN, "agent.threshold=5", "agent.stop_after=2", "hydra.run.dir=run")
    assert code == 0, err
    s = read_summary(tmp_path / "run")
    assert s["status"] == "early_stopped" and s["epochs_run"] == 2 and s["rl"]["env_steps"] == 400
    assert s["rl"]["steps_to_threshold"] == 200 and s["rl"]["episodes_to_threshold"] > 0
    assert "in 2 evaluations in a row" in s["message"]


def start_agent(run_dir: Path, *args: str) -> subprocess.Popen:
    """``nnexp train <args>`` in its own process, its run folder ``run_dir``."""
    return subprocess.Popen([sys.executable, "-m", "nnexp", "train", *args, f"hydra.run.dir={run_dir}"],
                            cwd=run_dir.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _start(run_dir: Path, *args: str) -> subprocess.Popen:
    return start_agent(run_dir, *DQN, *args)


def _rounds_logged(run_dir: Path) -> int:
    log = run_dir / "train.log"
    return log.read_text().count("] - round ") if log.is_file() else 0


def kill_then_interrupt(run_dir: Path, start: Callable[..., subprocess.Popen], ctrl_c_after: float) -> None:
    """Start ``start(run_dir, "trainer.resume=auto")`` twice: SIGKILL it as soon as a round is logged, then
    Ctrl-C it ``ctrl_c_after`` seconds after the next round is (inside the round after that)."""
    for sig, code in ((signal.SIGKILL, -9), (signal.SIGINT, 130)):
        before = _rounds_logged(run_dir)
        proc = start(run_dir, "trainer.resume=auto")
        deadline = time.monotonic() + 120
        while proc.poll() is None and _rounds_logged(run_dir) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(ctrl_c_after if sig is signal.SIGINT else 0.05)
        assert proc.poll() is None, "it finished before the stop: make it longer"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err


def _without_clock(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "steps_per_second")} for r in rows]


LONGER = ["agent.total_steps=1500", "agent.eval_every=300"]


def test_killed_then_stopped_mid_round_resumes_as_if_never_stopped(tmp_path):
    """SIGKILL after a round's checkpoint, then Ctrl-C in the middle of a round: the run continued from each ends
    with the same weights, buffer position, curves and final evaluation as one never stopped."""
    reference = tmp_path / "reference"
    proc = _start(reference, *LONGER)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()

    run = tmp_path / "stopped"
    kill_then_interrupt(run, lambda d, *a: _start(d, *LONGER, *a), ctrl_c_after=0.3)
    stopped = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert read_summary(run)["status"] == "interrupted"
    assert stopped["learn"]["round"]["steps"] > 0  # the position inside the round, not the round before
    proc = _start(run, *LONGER, "trainer.resume=auto")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    a, b = read_summary(reference), read_summary(run)
    assert b["resumed_from"]["env_steps"] > 0
    assert a["eval"] == b["eval"] and a["rl"]["episodes"] == b["rl"]["episodes"]
    assert _without_clock(_rows(reference)) == _without_clock(_rows(run))
    wa = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)
    wb = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(wa["model"]["q"][k], wb["model"]["q"][k]) for k in wa["model"]["q"])
    assert wa["agent"]["buffer"]["pos"] == wb["agent"]["buffer"]["pos"]
    curves_a, curves_b = _scalars(reference), _scalars(run)
    for tag in ("eval/return", "train/episodic_return", "train/loss", "epsilon"):
        assert curves_a[tag] == curves_b[tag], tag


@pytest.mark.parametrize("override, words", [
    ("agent.epsilon_start=2", "agent.epsilon_start=2 is out of range; allowed: a number in [0, 1]"),
    ("agent.env=Pendulum-v1", "DQN needs discrete actions"),
    ("agent.env=LunarLander-v3", "agent.env='LunarLander-v3' is out of range; allowed: one of CartPole-v1"),
    ("agent.total_steps=0", "agent.total_steps=0 is out of range"),
    ("+agent.epsilon=0.1", "agent.epsilon"),
    ("agent.gradient_step=2", "gradient_steps"),
])
def test_a_bad_agent_key_is_one_line_and_exit_2_before_torch(tmp_path, override, words):
    (row,) = train_rows([[*DQN, override]], cwd=tmp_path)
    assert row["code"] == 2 and not row["torch"] and not row["outputs"], row
    lines = row["err"].strip().splitlines()
    assert len(lines) == 1 and words in lines[0], row["err"]


def test_an_unknown_agent_names_the_closest(tmp_path):
    (row,) = train_rows([["agent=dqnn"]], cwd=tmp_path)
    assert row["code"] == 2 and "dqn" in row["err"] and len(row["err"].strip().splitlines()) == 1, row


def test_a_network_that_cannot_read_the_state_is_one_line(run_cli):
    code, _, err = run_cli("train", *DQN, "model=lenet5", "hydra.run.dir=run")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model" in err, err


def test_a_sweep_of_agents_is_reported_with_the_threshold_columns(run_cli, tmp_path):
    code, _, err = run_cli("train", "-m", *DQN, "agent.double=false,true", "trainer.seed=0,1",
                           "expect=['final.eval/return >= 8', 'eval.return[agent.double=true] >= 8']",
                           "hydra.sweep.dir=sweep", "hydra.sweep.subdir=${hydra.job.num}")
    assert code == 0, err
    code, out, err = run_cli("report", "sweep")
    assert code == 0, err
    assert "best eval/return" in out and "env steps to threshold" in out and "final evaluation" in out
    assert "agent.double=true" in out and "2 of 2 claims PASS" in out
    header = (tmp_path / "sweep" / "report.csv").read_text().splitlines()[0]
    assert "steps_to_threshold_mean" in header
    assert (tmp_path / "sweep" / "report.png").is_file()


def _wrong_kind(value):
    if isinstance(value, bool):
        return "maybe"
    return 3 if isinstance(value, str) else "many"


AGENT_KEYS = [(path.stem, key, value) for path in sorted((REPO / "conf" / "agent").glob("*.yaml"))
              for key, value in yaml.safe_load(path.read_text()).items() if key != "_target_"]


def test_every_key_of_every_agent_refuses_a_value_of_the_wrong_kind(tmp_path):
    """Through the real entry point: each key of each conf/agent YAML given a value of the wrong kind exits 2
    with one line naming it, before torch is imported (a key added without a check fails here)."""
    rows = [[f"agent={agent}", f"agent.{key}={_wrong_kind(value)}"] for agent, key, value in AGENT_KEYS]
    for (agent, key, _), row in zip(AGENT_KEYS, train_rows(rows, cwd=tmp_path), strict=True):
        lines = row["err"].strip().splitlines()
        assert row["code"] == 2 and not row["torch"] and not row["outputs"], (agent, key, row)
        assert len(lines) == 1 and f"agent.{key}=" in lines[0], (agent, key, row["err"])
