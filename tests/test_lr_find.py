"""`nnexp lr-find`: the range test through the real entry point, its files, and whether its suggestion trains."""

from __future__ import annotations

import csv
import math
import re
import shlex
from pathlib import Path

import pytest
import torch
from conftest import compose_cfg, read_summary
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nnexp.context import RunContext

FAST = ["trainer.threads=1", "trainer.progress=none"]
SKIP_START = 10  # conf/lr_find.yaml: lr_find.skip_start


def _folder(tmp_path: Path) -> Path:
    (folder,) = (tmp_path / "outputs" / "lr_find").glob("*/*")
    return folder


def _rows(folder: Path) -> list[dict[str, float]]:
    with open(folder / "lr_find.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_the_suggestion_is_where_the_loss_falls_fastest_and_it_trains_better(run_cli, tmp_path):
    code, out, err = run_cli("lr-find", *FAST)
    assert code == 0, err
    shown = re.search(r"^Suggested: optimizer\.lr=(\S+)", out, flags=re.M).group(1)
    lr = float(shown)
    folder = _folder(tmp_path)
    rows = _rows(folder)
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    lrs = [r["lr"] for r in rows]
    assert lrs[0] == pytest.approx(1e-7) and lrs == sorted(set(lrs))
    assert lrs[0] < lr < lrs[-1]  # inside the range tested
    # the slope of the smoothed loss against log10(lr), forward differences, read from the CSV alone; the first
    # steps (noise) and the last (where the test stopped) are not candidates
    x = [math.log10(v) for v in lrs]
    s = [r["smoothed"] for r in rows]
    slopes = {i: (s[i + 1] - s[i]) / (x[i + 1] - x[i]) for i in range(SKIP_START, len(rows) - 1)}
    steepest = min(slopes, key=slopes.get)
    at = min(range(len(rows)), key=lambda i: abs(x[i] - math.log10(lr)))  # the step of the suggestion (rounded)
    assert abs(at - steepest) <= 2, (lr, lrs[steepest])
    assert s[at + 3] < s[at] < s[at - 3]  # the loss is falling there
    # the picture, in the folder and in TensorBoard with the curve
    assert (folder / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert events.Tags()["images"] == ["lr_find"]
    assert [e.step for e in events.Scalars("lr_find/smoothed")] == list(range(1, len(rows) + 1))
    assert [e.value for e in events.Scalars("lr_find/loss")] == pytest.approx([r["loss"] for r in rows])
    # the command it prints trains better with the suggestion than with a 100x smaller lr, on the same budget
    command = re.search(r"^\s+(nnexp train .*)$", out, flags=re.M).group(1)
    assert command == f"nnexp train {' '.join(FAST)} optimizer.lr={shown}"
    final = {}
    for name, rate in (("suggested", None), ("smaller", lr / 100)):
        args = shlex.split(command)[1:] + ["trainer.epochs=5", f"hydra.run.dir=runs/{name}"]
        if rate is not None:
            args.append(f"optimizer.lr={rate}")
        code, _, err = run_cli(*args)
        assert code == 0, err
        final[name] = read_summary(tmp_path / "runs" / name)["final"]["val/loss"]
    assert final["suggested"] < final["smaller"] - 0.5, final


def test_the_same_seed_gives_the_same_curve(run_cli, tmp_path):
    curves = []
    for seed in (0, 0, 1):
        code, _, err = run_cli("lr-find", *FAST, "lr_find.start=1e-4", "lr_find.end=1e-2", "lr_find.steps=30",
                               f"trainer.seed={seed}", f"hydra.run.dir=s{len(curves)}")
        assert code == 0, err
        curves.append([r["loss"] for r in _rows(tmp_path / f"s{len(curves)}")])
    assert curves[0] == curves[1] and curves[0] != curves[2]
    assert len(curves[0]) == 30


def test_the_run_s_own_model_and_optimizer_are_untouched(tmp_path):
    from nnexp.build import build
    from nnexp.lr_find import range_test

    cfg = compose_cfg([*FAST, "trainer.device=cpu", "model.hidden=[32]"])
    parts = build(cfg, RunContext(tmp_path))
    before = {k: v.clone() for k, v in parts.model.state_dict().items()}
    curve = range_test(parts, 1e-5, 1.0, 40)
    assert len(curve.losses) > 20 and curve.suggestion is not None
    assert all(torch.equal(before[k], v) for k, v in parts.model.state_dict().items())
    assert parts.optimizer.state_dict()["state"] == {}  # never stepped
    assert {g["lr"] for g in parts.optimizer.param_groups} == {cfg.optimizer.lr}


def test_a_gpu_reads_the_same_curve_to_the_same_nan(tmp_path):
    """The loop's device path (no per-step NaN check: GPUs), run on the CPU: the same curve, the same stop."""
    from dataclasses import replace

    from nnexp.build import build
    from nnexp.lr_find import range_test

    cfg = compose_cfg([*FAST, "trainer.device=cpu", "model.hidden=[32]", "optimizer=sgd", "dataset=moons"])
    parts = build(cfg, RunContext(tmp_path))
    curves = [range_test(replace(parts, settings=replace(parts.settings, check_every_step=check)), 1e-2, 1e12, 60,
                         stop_factor=1e300) for check in (True, False)]
    assert curves[0].stopped.startswith(("the loss became nan", "the loss became inf")), curves[0].stopped
    assert curves[1].stopped == curves[0].stopped
    assert curves[1].losses == curves[0].losses and all(math.isfinite(v) for v in curves[0].losses)


def test_a_loss_that_never_falls_is_no_suggestion(run_cli, tmp_path):
    code, out, err = run_cli("lr-find", *FAST, "lr_find.start=10", "lr_find.end=1e4", "lr_find.steps=30",
                             "hydra.run.dir=hot")
    assert code == 1
    assert "stopped: the smoothed loss exceeded 4x its minimum" in out
    assert err.strip().splitlines()[-1].startswith("nnexp: error: no suggestion: the smoothed loss did not fall")
    assert (tmp_path / "hot" / "lr_find.csv").is_file() and (tmp_path / "hot" / "lr_find.png").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["lr_find.steps=1"], "nnexp: error: lr_find.steps=1 is out of range; allowed: an integer >= 2 (batches)"),
    (["lr_find.end=1e-8"], "nnexp: error: lr_find.end=1e-08 must be greater than lr_find.start=1e-07"),
    (["-m", "lr_find.steps=20,30"], "nnexp: error: lr-find runs one range test, not a sweep: drop -m "
                                    "(sweeps are `nnexp train -m ...`)"),
])
def test_a_bad_override_is_one_line_and_exit_2_leaving_nothing(run_cli, tmp_path, args, message):
    code, out, err = run_cli("lr-find", *FAST, *args)
    assert (code, err.strip().splitlines()) == (2, [message])
    assert out == "" and not (tmp_path / "outputs").exists()


def test_a_value_hydra_refuses_is_exit_2_naming_the_override(run_cli, tmp_path):
    code, _, err = run_cli("lr-find", "lr_find.steps=abc")
    assert code == 2 and "lr_find.steps=abc" in err and "Traceback" not in err
    assert not (tmp_path / "outputs").exists()


def test_a_training_run_s_config_has_no_lr_find_node(run_cli):
    code, out, _ = run_cli("lr-find", "--cfg", "job")
    assert code == 0 and "lr_find:\n  start: 1.0e-07" in out
    code, out, _ = run_cli("train", "--cfg", "job")
    assert code == 0 and "lr_find" not in out
