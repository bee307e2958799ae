"""trainer.tensorboard and trainer.log_every_n_steps: what lands in the run folder."""

from __future__ import annotations

import math

from conftest import read_summary
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

QUICK = ["trainer.progress=none", "trainer.epochs=3", "dataset=moons"]  # moons: 375 train, 12 steps an epoch


def _scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_off_writes_no_events_and_no_pictures_but_the_same_run(run_cli, tmp_path):
    code, out, err = run_cli("train", *QUICK, "trainer.tensorboard=false", "trainer.pictures_every=1",
                             f"hydra.run.dir={tmp_path / 'off'}")
    assert code == 0, err
    assert not list((tmp_path / "off").glob("events.out.tfevents.*"))
    assert len((tmp_path / "off" / "metrics.csv").read_text().splitlines()) == 1 + 3
    assert "tensorboard --logdir" not in out and "metrics.csv (trainer.tensorboard=false)" in out
    code, _, err = run_cli("train", *QUICK, "trainer.pictures_every=1", f"hydra.run.dir={tmp_path / 'on'}")
    assert code == 0, err
    assert read_summary(tmp_path / "off")["final"] == read_summary(tmp_path / "on")["final"]


def test_per_step_loss_every_n_steps_on_the_global_step_axis(run_cli, tmp_path):
    code, _, err = run_cli("train", *QUICK, "trainer.log_every_n_steps=5", f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err
    scalars = _scalars(tmp_path / "r")
    steps = [s for s, _ in scalars["train/loss_step"]]
    assert steps == list(range(5, 3 * 12 + 1, 5))  # 36 steps in 3 epochs
    assert all(math.isfinite(v) and v > 0 for _, v in scalars["train/loss_step"])
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3]  # the epoch curves are unchanged


def test_per_step_loss_is_off_by_default(run_cli, tmp_path):
    code, _, err = run_cli("train", *QUICK, f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err
    assert "train/loss_step" not in _scalars(tmp_path / "r")
