"""trainer.precision, trainer.channels_last, trainer.compile: what each does on this (CPU) machine."""

from __future__ import annotations

import pytest
import torch
from conftest import read_summary

from nnexp import run as run_module

QUICK = ["trainer.progress=none", "trainer.epochs=3"]


def _run(run_cli, tmp_path, name: str, *args: str) -> dict:
    code, _, err = run_cli("train", *QUICK, *args, f"hydra.run.dir={tmp_path / name}")
    assert code == 0, err
    return read_summary(tmp_path / name)


def test_bf16_autocast_trains_on_cpu_close_to_float32(run_cli, tmp_path):
    fp32 = _run(run_cli, tmp_path, "fp32", "dataset=moons")
    bf16 = _run(run_cli, tmp_path, "bf16", "dataset=moons", "trainer.precision=bf16")
    assert bf16["status"] == "completed"
    assert bf16["final"]["val/loss"] != fp32["final"]["val/loss"]  # it really computed in bfloat16
    assert bf16["final"]["val/loss"] == pytest.approx(fp32["final"]["val/loss"], rel=0.05)
    weights = torch.load(tmp_path / "bf16" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(t.dtype == torch.float32 for t in weights.values())  # autocast: the weights stay float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_fp16_without_a_gpu_is_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli("train", *QUICK, "trainer.precision=16")
    assert code == 2
    assert err.strip() == ("nnexp: error: trainer.precision=16 needs a CUDA GPU (float16 autocast with a GradScaler); "
                           "this run is on cpu: use trainer.precision=bf16 or 32")
    assert not (tmp_path / "outputs").exists()


def test_channels_last_gives_the_same_training_for_an_image_model(run_cli, tmp_path, monkeypatch):
    layouts = []  # per run: is the model that fit() trains in NHWC memory?
    real_fit = run_module.fit

    def spy(model, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        weight = convs[1].weight  # (16, 6, 5, 5): with 6 input channels the two layouts differ
        layouts.append(weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous())
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(run_module, "fit", spy)
    plain = _run(run_cli, tmp_path, "plain", "model=lenet5")
    nhwc = _run(run_cli, tmp_path, "nhwc", "model=lenet5", "trainer.channels_last=true")
    assert layouts == [False, True]  # the flag really changed the layout, so "the same training" means something
    for key in ("train/loss", "val/loss"):
        assert nhwc["final"][key] == pytest.approx(plain["final"][key], rel=1e-4)


def test_channels_last_on_non_images_warns_and_changes_nothing(run_cli, tmp_path):
    plain = _run(run_cli, tmp_path, "plain", "dataset=moons")
    code, _, err = run_cli("train", *QUICK, "dataset=moons", "trainer.channels_last=true",
                           f"hydra.run.dir={tmp_path / 'flag'}")
    assert code == 0 and "trainer.channels_last applies to images (N, C, H, W); moons inputs are (2,): ignored" in err
    assert read_summary(tmp_path / "flag")["final"] == plain["final"]


@pytest.mark.slow
def test_compile_trains_like_eager(run_cli, tmp_path):
    eager = _run(run_cli, tmp_path, "eager", "dataset=moons", "model.hidden=[16]")
    compiled = _run(run_cli, tmp_path, "compiled", "dataset=moons", "model.hidden=[16]", "trainer.compile=true")
    for key in ("train/loss", "val/loss"):
        assert compiled["final"][key] == pytest.approx(eager["final"][key], rel=1e-4)
    weights = torch.load(tmp_path / "compiled" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert not any(k.startswith("_orig_mod.") for k in weights)  # checkpoints hold the plain model's keys
