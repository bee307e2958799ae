"""TensorBoard pictures: the drawing functions, and what a run writes into its event file."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, read_summary
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from nnexp import pictures
from nnexp.data import Split
from nnexp.data.synthetic import moons, spirals
from nnexp.models.mlp import MLP
from nnexp.models.transformer import Transformer
from nnexp.tracking import Tracker

QUICK = ["trainer.progress=none", "trainer.threads=1"]
OFF = ["trainer.pictures_every=0", "trainer.histograms_every=0", "trainer.confusion_matrix=false"]


def _events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 300) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


# --- the drawing functions -------------------------------------------------------------------


def test_decision_boundary_is_an_rgb_picture_that_shows_learning():
    torch.manual_seed(0)
    data = moons(n_samples=200)
    model = MLP((2,), 2, hidden=[16, 16])
    before = pictures.decision_boundary(model, data, "cpu")
    assert before.shape == (pictures.BOUNDARY_SIZE, pictures.BOUNDARY_SIZE, 3) and before.dtype == np.uint8
    model.train()
    rng = torch.get_rng_state()
    again = pictures.decision_boundary(model, data, "cpu")
    assert np.array_equal(before, again), "the same model must give the same picture"
    assert model.training, "train/eval mode is restored"
    assert torch.equal(rng, torch.get_rng_state()), "drawing must not consume random numbers"

    _train(model, data.train.x, data.train.y)
    after = pictures.decision_boundary(model, data, "cpu")
    changed = np.any(before != after, axis=-1).mean()
    assert changed > 0.2, f"only {changed:.0%} of the pixels changed after training"
    # the trained model is sure of itself far from the data: deep colours in the corners
    assert after[0, 0].min() < 230 and after[-1, -1].min() < 230


def test_decision_boundary_regions_take_the_class_colours():
    data = moons(n_samples=200)
    model = nn.Linear(2, 1)  # one logit (bce, perceptron, sigmoid unit): class 1 where w.x + b > 0
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[100.0, 0.0]]))  # class 1 on the right half of the plane
        model.bias.zero_()
    image = pictures.decision_boundary(model, data, "cpu").astype(int)
    left, right = image[5, 5], image[5, -6]  # top corners, away from the points
    orange, blue = pictures.PALETTE[0], pictures.PALETTE[1]
    assert np.argmax(np.abs(left - 255)) == np.argmax(np.abs(orange - 255)), left
    assert np.argmax(np.abs(right - 255)) == np.argmax(np.abs(blue - 255)), right


def test_decision_boundary_with_three_classes():
    data = spirals(n_samples=150, n_classes=3)
    model = nn.Linear(2, 3)  # three confident sectors around the origin, one per class
    with torch.no_grad():
        angles = torch.tensor([0.0, 2.0, 4.0]) * torch.pi / 3
        model.weight.copy_(100 * torch.stack([angles.cos(), angles.sin()], dim=1))
        model.bias.zero_()
    image = pictures.decision_boundary(model, data, "cpu", size=64, grid=16)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    for k in range(3):  # each class's region in its own colour, as deep as a sure model paints it
        deep = pictures.WHITE + 0.65 * (pictures.PALETTE[k] - pictures.WHITE)
        share = (np.abs(image.astype(float) - deep).max(axis=-1) <= 1).mean()
        assert share > 0.1, f"class {k}'s colour covers only {share:.0%} of the picture"


def test_has_decision_boundary_only_for_2d_real_inputs():
    data = moons(n_samples=40)
    assert pictures.has_decision_boundary(data)
    from nnexp.data.digits import load

    assert not pictures.has_decision_boundary(load())
    # two numbers per sample, but not points of a plane with one class each
    for not_a_plane in ({"vocab_size": 5}, {"per_step": True}, {"task": "regression", "num_classes": None}):
        assert not pictures.has_decision_boundary(dataclasses.replace(data, **not_a_plane)), not_a_plane


def _one_hot_split(labels: torch.Tensor, num_classes: int) -> Split:
    return Split(nn.functional.one_hot(labels, num_classes).float(), labels)


def test_confusion_matrix_of_a_perfect_classifier_is_a_dark_diagonal():
    labels = torch.arange(40) % 4
    split = _one_hot_split(labels, 4)  # nn.Identity() returns the one-hot as scores: always right
    counts = pictures.confusion_counts(nn.Identity(), split, 4)
    assert np.array_equal(counts, np.diag([10, 10, 10, 10]))
    image = pictures.confusion_matrix(nn.Identity(), split, 4)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[0] == image.shape[1]
    cell = image.shape[0] // 4
    for i in range(4):
        for j in range(4):
            corner = image[i * cell + 2, j * cell + 2]  # away from the count written in the middle
            expected = pictures.DARK_BLUE if i == j else (255, 255, 255)
            assert tuple(corner) == tuple(int(v) for v in expected), (i, j)


def test_confusion_matrix_counts_mistakes_per_true_class():
    labels = torch.tensor([0, 0, 1, 1])
    split = Split(torch.tensor([[1.0], [-1.0], [1.0], [1.0]]), labels)  # one logit: class 1 where > 0
    assert pictures.confusion_counts(nn.Identity(), split, 2).tolist() == [[1, 1], [0, 2]]


def test_confusion_matrix_flattens_per_step_targets():
    y = torch.randint(0, 5, (6, 7))  # (N, T) one class per time step
    split = Split(nn.functional.one_hot(y, 5).float(), y)  # (N, T, C) scores
    counts = pictures.confusion_counts(nn.Identity(), split, 5, batch_size=4)
    assert counts.sum() == 6 * 7 and np.trace(counts) == 6 * 7


def test_many_classes_draw_small_cells_without_text():
    image = pictures.render_confusion(np.eye(100, dtype=np.int64))
    # 4-pixel cells, each one flat colour: dark blue on the diagonal, white elsewhere, no digits drawn over them
    cells = np.where(np.eye(100, dtype=bool)[..., None], pictures.DARK_BLUE, 255).astype(np.uint8)
    assert np.array_equal(image, np.repeat(np.repeat(cells, 4, axis=0), 4, axis=1))


def test_attention_maps_one_picture_per_layer_with_the_heads_side_by_side():
    torch.manual_seed(0)
    model = Transformer((12, 2), 1, d_model=16, n_heads=2, n_layers=3, d_ff=16)
    images = pictures.attention_maps(model, torch.randn(1, 12, 2))
    assert len(images) == 3
    cell = pictures.ATTENTION_SIZE // 12
    side = 12 * cell
    for image, weights in zip(images, model.attention, strict=True):  # weights: (1, heads, T, T)
        assert image.dtype == np.uint8 and image.shape == (side, 2 * side + 4, 3)
        assert (image[:, side:side + 4] == pictures.GAP_GREY).all()  # the grey line between the two heads
        for head in range(2):  # each head's own largest weight is drawn darkest, at (row query, column key)
            row, col = divmod(int(weights[0, head].argmax()), 12)
            pixel = image[row * cell + cell // 2, head * (side + 4) + col * cell + cell // 2]
            assert tuple(pixel) == tuple(int(v) for v in pictures.DARK_PURPLE), (head, row, col)
    assert pictures.attention_maps(MLP((2,), 2, hidden=[4]), torch.randn(1, 2)) == []


def test_grad_norms_are_those_of_the_last_optimizer_step(tmp_path):
    """Full-batch SGD: the logged norm must equal |w_before - w_after| / lr of that epoch's step."""
    from nnexp.early_stopping import EarlyStopping
    from nnexp.loop import FitSettings, fit
    from nnexp.losses import make_objective

    torch.manual_seed(0)
    data = moons(n_samples=100)
    model = MLP((2,), 2, hidden=[8])
    lr = 0.1
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    objective = make_objective("cross_entropy", "classification", 2, None)
    tracker = Tracker(tmp_path, classification=True)
    expected: dict[int, float] = {}
    previous = {n: p.detach().clone() for n, p in model.named_parameters()}

    def hook(epoch: int, metrics: dict, improved: bool) -> None:
        w = model.net.fc1.weight.detach()
        expected[epoch] = float((previous["net.fc1.weight"] - w).norm() / lr)
        previous.update({n: p.detach().clone() for n, p in model.named_parameters()})
        tracker.log_grad_norms(model.named_parameters(), epoch)
        tracker.log_histograms(model.named_parameters(), epoch)

    settings = FitSettings(epochs=3, batch_size=len(data.train))  # one optimizer step per epoch
    fit(model, data, objective, optimizer, None, settings, EarlyStopping(enabled=False), on_epoch_end=hook)
    tracker.close()
    acc = _events(tmp_path)
    logged = {e.step: e.value for e in acc.Scalars("grad_norm/net.fc1.weight")}
    assert logged == pytest.approx(expected, rel=1e-4)
    hist = acc.Histograms("weights/net.fc1.weight")[-1].histogram_value
    assert hist.num == model.net.fc1.weight.numel() and sum(hist.bucket) == hist.num
    assert "grads/net.out.bias" in acc.Tags()["histograms"]


# --- through the real entry point ------------------------------------------------------------


def test_moons_run_logs_boundary_images_histograms_and_grad_norms(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", *QUICK, "dataset=moons", "trainer.epochs=5", "trainer.pictures_every=2",
                           "trainer.histograms_every=2", "regularizer=none", f"hydra.run.dir={run_dir}")
    assert code == 0, err
    acc = _events(run_dir)
    images = acc.Tags()["images"]
    # every 2 epochs, and the model the run ends with as the slider's last step
    assert [e.step for e in acc.Images("pictures/decision_boundary")] == [2, 4, 5]
    first = acc.Images("pictures/decision_boundary")[0]
    assert (first.width, first.height) == (pictures.BOUNDARY_SIZE, pictures.BOUNDARY_SIZE)
    assert [e.step for e in acc.Images("pictures/confusion_matrix")] == [5]
    assert not any(t.startswith("pictures/attention/") for t in images)
    histograms = acc.Tags()["histograms"]
    for name in ("net.fc1.weight", "net.fc1.bias", "net.out.weight"):
        assert f"weights/{name}" in histograms and f"grads/{name}" in histograms
        # every 2 epochs, and at the last, like the pictures
        assert [e.step for e in acc.Histograms(f"weights/{name}")] == [2, 4, 5]
        norms = acc.Scalars(f"grad_norm/{name}")
        assert [e.step for e in norms] == [2, 4, 5] and all(e.value > 0 for e in norms)


def test_a_run_shorter_than_the_histogram_interval_writes_them_at_its_last_epoch(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "dataset=moons", "model.hidden=[8]", "trainer.epochs=3",
                           "trainer.histograms_every=20", *QUICK, f"hydra.run.dir={run_dir}")
    assert code == 0, err
    acc = _events(run_dir)
    for name in ("net.fc1.weight", "net.out.bias"):
        assert [e.step for e in acc.Histograms(f"weights/{name}")] == [3]
        assert [e.step for e in acc.Histograms(f"grads/{name}")] == [3]
        assert [e.step for e in acc.Scalars(f"grad_norm/{name}")] == [3]


def test_transformer_run_logs_attention_of_every_layer(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", *QUICK, "trainer.epochs=3", "trainer.pictures_every=2", "model=transformer",
                           "dataset=adding", "dataset.n_samples=200", f"hydra.run.dir={run_dir}")
    assert code == 0, err
    acc = _events(run_dir)
    images = acc.Tags()["images"]
    assert {t for t in images if t.startswith("pictures/")} == {"pictures/attention/layer0",
                                                                 "pictures/attention/layer1"}
    # at the picture interval and once more for the model the run ends with
    assert [e.step for e in acc.Images("pictures/attention/layer1")] == [2, 3]


def test_digits_run_logs_the_confusion_matrix(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", *QUICK, "trainer.epochs=2", f"hydra.run.dir={run_dir}")
    assert code == 0, err
    acc = _events(run_dir)
    (event,) = acc.Images("pictures/confusion_matrix")
    assert event.step == read_summary(run_dir)["epochs_run"]
    assert event.width == event.height == 10 * (pictures.CONFUSION_SIZE // 10)


def test_per_step_classification_logs_confusion_and_attention(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", *QUICK, "trainer.epochs=1", "model=transformer", "dataset=copy",
                           "dataset.n_samples=100", f"hydra.run.dir={run_dir}")
    assert code == 0, err
    images = _events(run_dir).Tags()["images"]
    assert "pictures/confusion_matrix" in images and "pictures/attention/layer0" in images


@pytest.mark.parametrize("choice", ["dataset=moons", "model=transformer dataset=adding dataset.n_samples=200",
                                    "dataset=digits"])
def test_everything_off_logs_no_pictures(run_cli, tmp_path, choice):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", *QUICK, "trainer.epochs=2", *OFF, *choice.split(), f"hydra.run.dir={run_dir}")
    assert code == 0, err
    tags = _events(run_dir).Tags()
    assert tags["images"] == [] and tags["histograms"] == []
    # per-parameter norms are off; the two per-epoch means of the loop are metrics like train/loss
    grad_tags = {t for t in tags["scalars"] if t.startswith("grad_norm/")}
    assert grad_tags == {"grad_norm/first_layer", "grad_norm/last_layer"}
    assert "train/loss" in tags["scalars"]


def test_pictures_do_not_change_what_a_run_learns(run_cli, tmp_path):
    every = ["trainer.pictures_every=1", "trainer.histograms_every=1"]
    finals = []
    for name, extra in (("on", every), ("off", OFF)):
        code, _, err = run_cli("train", *QUICK, "dataset=moons", "model.hidden=[16,16]", "trainer.epochs=3",
                               *extra, f"hydra.run.dir={tmp_path / name}")
        assert code == 0, err
        finals.append(read_summary(tmp_path / name)["final"])
    assert finals[0] == finals[1]


def test_overhead_benchmark_quick_mode_runs(tmp_path):
    """The benchmark script must keep working; its timings are not asserted."""
    out = tmp_path / "results.md"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "pictures_overhead.py"), "--quick",
                           "--out", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| `nnexp train dataset=moons` |" in proc.stdout
    text = out.read_text()
    assert "Machine:" in text and "torch" in text and "| run |" in text


@pytest.mark.parametrize("restore", [False, True])
def test_confusion_counts_from_the_validation_passes_match_a_separate_pass(restore):
    """The loop counts the confusion matrix while it validates; the end of the run draws the counts of the
    epoch whose weights it ends with (the best epoch when restored), so they must equal a fresh pass."""
    from nnexp import loop
    from nnexp.data.synthetic import spirals as make
    from nnexp.early_stopping import EarlyStopping
    from nnexp.losses import make_objective

    torch.manual_seed(0)
    data = make(n_samples=300)
    objective = make_objective("auto", data.task, data.num_classes, None)
    model = MLP(data.input_shape, objective.num_outputs, hidden=[64, 64])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)  # fast and noisy: val/loss turns back up
    settings = loop.FitSettings(epochs=60, batch_size=16, confusion_classes=data.num_classes)
    stopper = EarlyStopping(patience=3, enabled=restore, restore_best=restore)
    state = loop.TrainState.new(0)
    result = loop.fit(model, data, objective, optimizer, None, settings, stopper, state=state)
    assert result.restored_best == restore  # restore: the run stopped early and went back to its best epoch
    counts = state.best_counts if result.restored_best else state.val_counts
    fresh = pictures.confusion_counts(model, data.val, data.num_classes)
    np.testing.assert_array_equal(counts.reshape(data.num_classes, -1).numpy(), fresh)
    assert fresh.sum() == len(data.val)
