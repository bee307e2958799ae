"""Exact resume: a run stopped at any moment (SIGKILL, SIGTERM, Ctrl-C) and resumed until done ends
bit-identical to one that never stopped: weights, CSV and TensorBoard curves."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import read_summary
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nnexp import build, resume

# dropout draws from torch's generator, the batch order from the shuffling generator: both must be restored
RUN = ["dataset=moons", "dataset.n_samples=3000", "model.hidden=[32,32]", "regularizer=dropout",
       "regularizer.dropout=0.2", "trainer.batch_size=16", "trainer.progress=none", "trainer.pictures_every=4",
       "trainer.histograms_every=4", "trainer.threads=1"]
TAGS = ("train/loss", "val/loss", "train/acc", "val/acc", "lr", "grad_norm/first_layer", "grad_norm/last_layer")


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]


def _csv(run_dir: Path) -> list[list[str]]:
    """metrics.csv without the wall-clock column."""
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name != "seconds"]
    return [[cells[i] for i in keep] for cells in (line.split(",") for line in lines)]


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()  # purges orphaned steps
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in TAGS}


def _same_run(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), "final weights differ"
    assert _csv(a) == _csv(b)
    assert _scalars(a) == _scalars(b)


def _start(run_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nnexp", "train", *RUN, *args, f"hydra.run.dir={run_dir}"],
                            cwd=run_dir.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _epochs_logged(run_dir: Path) -> int:
    log = run_dir / "train.log"
    return log.read_text().count("] - epoch ") if log.is_file() else 0


def _kill_and_resume(tmp_path: Path, kills: int, epochs: int, seed: int, every_s: float = 0) -> None:
    """``every_s``: trainer.checkpoint_every_s (0: a checkpoint after every epoch, so every kill finds one)."""
    reference = tmp_path / "reference"
    proc = _start(reference, f"trainer.epochs={epochs}")
    assert proc.wait(timeout=600) == 0, proc.stderr.read()

    run_dir = tmp_path / "stopped"
    chooser = random.Random(seed)
    signals = [signal.SIGKILL, signal.SIGTERM, signal.SIGKILL, signal.SIGINT]
    stopped = 0
    while stopped < kills:
        before = _epochs_logged(run_dir)
        proc = _start(run_dir, f"trainer.epochs={epochs}", "trainer.resume=auto", f"trainer.checkpoint_every_s={every_s}")
        deadline = time.monotonic() + 120
        while proc.poll() is None and _epochs_logged(run_dir) == before and time.monotonic() < deadline:
            time.sleep(0.02)  # until this process has trained an epoch: then stop it at a random moment
        time.sleep(chooser.uniform(0.0, 0.3))
        if proc.poll() is not None:
            break  # it finished first
        sig = signals[stopped % len(signals)]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        expected = {signal.SIGKILL: -9, signal.SIGTERM: 143, signal.SIGINT: 130}[sig]
        assert proc.returncode == expected, err
        stopped += 1
    assert stopped == kills, f"the run finished after {stopped} of {kills} stops: make it longer"
    proc = _start(run_dir, f"trainer.epochs={epochs}", "trainer.resume=auto")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    s = read_summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == epochs and s["resumed_from"]["epoch"] > 0
    _same_run(reference, run_dir)


@pytest.mark.parametrize("every_s", [0, 0.4])  # every epoch; every few epochs, an improved one held back between
def test_killed_five_times_at_random_moments_ends_bit_identical(tmp_path, every_s):
    _kill_and_resume(tmp_path, kills=5, epochs=40, seed=0, every_s=every_s)


@pytest.mark.slow
def test_killed_twenty_times_at_random_moments_ends_bit_identical(tmp_path):
    _kill_and_resume(tmp_path, kills=20, epochs=120, seed=1)


def _checkpoint(run_dir: Path, name: str) -> dict:
    return torch.load(run_dir / "checkpoints" / name, weights_only=True)


def test_checkpoints_every_few_seconds_still_end_with_the_last_and_the_best_epoch(run_cli, tmp_path):
    """Epochs between two checkpoints write none; the last epoch and the best one are on disk at the end."""
    run_dir = tmp_path / "run"
    # the default demo overfits: its val/loss is lowest after a dozen or two epochs
    code, _, err = run_cli("train", "trainer.epochs=40", "regularizer.early_stopping.patience=100",
                           "trainer.progress=none", "trainer.checkpoint_every_s=3600", f"hydra.run.dir={run_dir}")
    assert code == 0, err
    s = read_summary(run_dir)
    last, best = _checkpoint(run_dir, "last.pt"), _checkpoint(run_dir, "best.pt")
    assert last["epoch"] == s["epochs_run"] == 40 and last["train_state"]["epoch"] == 40
    assert best["epoch"] == s["best_epoch"] < 40, "the run should end past its best epoch"
    assert best["early_stopping"]["best_epoch"] == best["epoch"]
    assert last["early_stopping"]["best_epoch"] == best["epoch"]


def test_ctrl_c_between_two_checkpoints_saves_the_epoch_it_stopped_after(tmp_path):
    """A polite stop writes the checkpoint the time limit held back, so no epoch is lost."""
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "trainer.epochs=1000", "trainer.checkpoint_every_s=3600")
    try:
        deadline = time.monotonic() + 120
        while _epochs_logged(run_dir) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    s = read_summary(run_dir)
    ckpt = _checkpoint(run_dir, "last.pt")
    position = ckpt["train_state"]
    # after the epoch it had finished, or inside the next one: either way the position of the stop
    assert position["epoch"] == s["epochs_run"] >= 3
    assert ckpt["epoch"] == position["epoch"]


def _continue(run_cli, run_dir: Path, epochs: int) -> None:
    code, _, err = run_cli("train", *RUN, f"trainer.epochs={epochs}", "trainer.resume=auto",
                           f"hydra.run.dir={run_dir}")
    assert code == 0, err


def test_a_run_given_more_epochs_continues_as_if_never_stopped(run_cli, tmp_path):
    _continue(run_cli, tmp_path / "whole", 6)
    _continue(run_cli, tmp_path / "parts", 3)  # a new run (nothing to resume), then 3 more epochs
    _continue(run_cli, tmp_path / "parts", 6)
    _same_run(tmp_path / "whole", tmp_path / "parts")
    assert read_summary(tmp_path / "parts")["resumed_from"]["epoch"] == 3


def test_without_the_random_states_the_resumed_run_differs(run_cli, tmp_path, monkeypatch):
    """Negative control: the test above would catch a checkpoint that leaves the random states out."""
    _continue(run_cli, tmp_path / "whole", 6)
    _continue(run_cli, tmp_path / "parts", 3)
    monkeypatch.setattr(resume, "restore_rng", lambda ckpt, state: None)
    _continue(run_cli, tmp_path / "parts", 6)
    with pytest.raises(AssertionError, match="final weights differ"):
        _same_run(tmp_path / "whole", tmp_path / "parts")
    assert _csv(tmp_path / "whole")[:4] == _csv(tmp_path / "parts")[:4]  # the epochs before the resume agree


def _killed_run(tmp_path: Path, runs: Path) -> Path:
    """A run of RUN started in tmp_path and killed (SIGKILL: no summary.json) once it has a checkpoint."""
    before = set(runs.glob("*/*"))
    proc = subprocess.Popen([sys.executable, "-m", "nnexp", "train", *RUN, "trainer.epochs=1000",
                             "trainer.checkpoint_every_s=0"], cwd=tmp_path,  # a checkpoint from the first epoch
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (set(p.parent.parent for p in runs.glob("*/*/checkpoints/last.pt"))
                                                   - before):
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    (new,) = set(runs.glob("*/*")) - before
    return new


def test_auto_finds_the_newest_unfinished_run_with_the_same_config(run_cli, tmp_path):
    runs = tmp_path / "outputs" / "runs"
    older = _killed_run(tmp_path, runs)
    time.sleep(0.05)  # checkpoint times apart
    newer = _killed_run(tmp_path, runs)
    older_stamp = (older / "checkpoints" / "last.pt").stat().st_mtime_ns
    code, _, err = run_cli("train", *RUN, "trainer.epochs=8", "trainer.resume=auto")
    assert code == 0, err
    assert set(runs.glob("*/*")) == {older, newer}  # continued in a folder of its own: no new one
    s = read_summary(newer)
    assert s["status"] == "completed" and s["epochs_run"] == 8 and s["resumed_from"]["epoch"] >= 1
    assert not (older / "summary.json").exists() and (older / "checkpoints" / "last.pt").stat().st_mtime_ns == \
        older_stamp  # the older one is left as it was
    # the next one continues the older run, the only unfinished one left (the newer one has finished)
    code, _, err = run_cli("train", *RUN, "trainer.epochs=8", "trainer.resume=auto")
    assert code == 0, err
    assert set(runs.glob("*/*")) == {older, newer} and read_summary(older)["status"] == "completed"
    # nothing unfinished with this config is left, and another config is another run: both start fresh
    for extra in ([], ["model.hidden=[8]"]):
        code, _, err = run_cli("train", *RUN, "trainer.epochs=2", *extra, "trainer.resume=auto")
        assert code == 0, err
    assert len(list(runs.glob("*/*"))) == 4


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A short run with last.pt and best.pt (early stopping on, so best.pt is written)."""
    root = tmp_path_factory.mktemp("finished")
    run_dir = root / "run"
    proc = subprocess.run([sys.executable, "-m", "nnexp", "train", "dataset=moons", "model.hidden=[8]",
                           "trainer.epochs=3", "trainer.progress=none", f"hydra.run.dir={run_dir}"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return run_dir


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"not a checkpoint at all" * 100)


@pytest.mark.parametrize(("how", "words"), [("truncated", "not a readable checkpoint"), ("empty", "the file is empty"),
                                            ("junk", "not a readable checkpoint")])
def test_a_damaged_checkpoint_is_one_line_naming_it_and_exit_2(run_cli, tmp_path, finished_run, how, words):
    bad = tmp_path / "last.pt"
    bad.write_bytes((finished_run / "checkpoints" / "last.pt").read_bytes())
    _damage(bad, how)
    code, _, err = run_cli("train", "dataset=moons", "model.hidden=[8]", "trainer.epochs=4", "trainer.progress=none",
                           f"trainer.resume={bad}")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nnexp: error: checkpoint {bad}: {words}"), err
    assert "Traceback" not in err and not (tmp_path / "outputs").exists()


def test_a_checkpoint_of_another_model_shape_names_the_mismatch(run_cli, tmp_path, finished_run):
    ckpt = finished_run / "checkpoints" / "last.pt"
    code, _, err = run_cli("train", "dataset=moons", "model.hidden=[16]", "trainer.progress=none",
                           f"trainer.resume={ckpt}", "trainer.resume_config=new")  # past the config check
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"checkpoint {ckpt}: does not fit this model: size mismatch for net.fc1.weight" in err
    assert "torch.Size([8, 2])" in err and "torch.Size([16, 2])" in err


def test_auto_falls_back_to_best_when_last_is_unreadable(run_cli, tmp_path, finished_run):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    _damage(run_dir / "checkpoints" / "last.pt", "truncated")
    best_epoch = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["epoch"]
    code, _, err = run_cli("train", "dataset=moons", "model.hidden=[8]", "trainer.epochs=5", "trainer.progress=none",
                           "trainer.resume=auto", f"hydra.run.dir={run_dir}")
    assert code == 0, err
    assert "not a readable checkpoint" in err and f"resuming from {run_dir / 'checkpoints' / 'best.pt'}" in err
    s = read_summary(run_dir)
    assert s["resumed_from"]["epoch"] == best_epoch and s["epochs_run"] == 5
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4, 5]  # epochs after best.pt were replayed, not doubled


def test_a_mid_epoch_stop_saves_the_position_inside_the_epoch(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "trainer.epochs=1000", "dataset.n_samples=20000")
    try:
        deadline = time.monotonic() + 120
        while _epochs_logged(run_dir) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # an epoch of 15000 samples takes seconds: this lands inside one
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    position = ckpt["train_state"]
    assert position["sums"] is not None and 0 < position["sums"]["step"] < 15000 // 16
    assert ckpt["epoch"] == position["epoch"] == read_summary(run_dir)["epochs_run"]
    assert {"torch", "numpy", "python", "cuda"} <= set(ckpt["rng"])


def test_divergence_stops_at_the_step_and_keeps_the_last_good_checkpoint(run_cli, tmp_path, monkeypatch):
    import dataclasses
    import math
    import re

    real = build.make_objective
    calls = {"train": 0}

    def objective_that_breaks(*args, **kwargs):
        base = real(*args, **kwargs)

        def loss(out, y):
            value = base.loss(out, y)
            if torch.is_grad_enabled():  # a training step, not evaluation
                calls["train"] += 1
                if calls["train"] == 40:  # 12 steps an epoch: epoch 4, step 4
                    return value * math.nan
            return value

        return dataclasses.replace(base, loss=loss)

    monkeypatch.setattr(build, "make_objective", objective_that_breaks)
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "dataset=moons", "model.hidden=[8]", "regularizer=none", "trainer.epochs=10",
                           "trainer.progress=none", f"hydra.run.dir={run_dir}")
    assert code == 3
    assert re.search(r"training diverged: train/loss became nan in epoch 4, step 4; the weights are those of the "
                     r"step before", err), err
    s = read_summary(run_dir)
    assert s["status"] == "diverged" and s["epochs_run"] == 4
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 3 and all(torch.isfinite(t).all() for t in last["model"].values())


def test_a_second_ctrl_c_interrupts_at_once():
    import os

    from nnexp.signals import StopSignals

    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # the first: a polite request, the loop finishes its step
        assert stop() and stop.received == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second: now
            time.sleep(1)
