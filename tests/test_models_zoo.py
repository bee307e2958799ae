"""The course's model zoo: perceptron, sigmoid unit, LeNet-5, ResNet, and the XOR story they tell."""

from __future__ import annotations

import csv

import pytest
import torch
import torch.nn.functional as F
from conftest import SHRINK, compose_cfg, read_summary
from torch import nn

from nnexp.build import component, param_groups
from nnexp.data import Split
from nnexp.loop import FitSettings, train_one_epoch
from nnexp.losses import make_objective
from nnexp.models import count_parameters
from nnexp.models.resnet import BasicBlock, ResNet

BATCH = 4


def build(name: str, input_shape: tuple[int, ...], num_outputs: int, overrides=()) -> nn.Module:
    """The model as `nnexp train model=<name>` builds it (run-time values as keyword arguments)."""
    cfg = compose_cfg([f"model={name}", "regularizer.dropout=0.5", *overrides])
    return component("model", cfg.model, input_shape=input_shape, num_outputs=num_outputs)


# (model, one sample's shape, outputs, overrides)
CASES = [
    ("perceptron", (2,), 1, []),
    ("sigmoid_unit", (2,), 1, []),
    ("lenet5", (1, 8, 8), 10, []),  # digits, resized to 32x32
    ("lenet5", (1, 28, 28), 10, ["model.fit=pad"]),  # MNIST, padded by 2 as LeCun did
    ("lenet5", (3, 32, 32), 10, ["model.pool=max", "model.activation=relu"]),  # CIFAR as is
] + [("resnet", shape, 10, [f"model.depth={depth}", f"model.skip={skip}"])
     for shape in [(1, 8, 8), (3, 32, 32)] for depth in (8, 20) for skip in ("true", "false")]


@pytest.mark.parametrize(("name", "input_shape", "num_outputs", "overrides"), CASES, ids=str)
def test_shape_finite_and_every_parameter_learns(name, input_shape, num_outputs, overrides):
    torch.manual_seed(0)
    model = build(name, input_shape, num_outputs, overrides)
    out = model(torch.randn(BATCH, *input_shape))
    assert out.shape == (BATCH, num_outputs)
    assert torch.isfinite(out).all()
    F.mse_loss(out, torch.randn_like(out)).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


def test_resnet20_has_the_papers_0_27M_parameters():
    """He et al. (2016), Table 6: ResNet-20 on CIFAR-10 has 0.27M parameters."""
    resnet = ResNet((3, 32, 32), 10, depth=20, width=16)
    assert count_parameters(resnet) == 269_722
    # depth counts weighted layers: 19 convolutions (stem + 3 stages x 3 blocks x 2) and the linear layer
    assert sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in resnet.modules()) == 20
    # option A shortcuts carry no weights, so the plain network is exactly as big: a fair comparison
    assert count_parameters(ResNet((3, 32, 32), 10, depth=20, width=16, skip=False)) == 269_722


@pytest.mark.parametrize("skip", [True, False])
def test_skip_false_removes_the_shortcut(skip):
    """With the residual branch silenced (last BN scaled to 0), a block passes on its shortcut or nothing."""
    block = BasicBlock(16, 32, stride=2, activation="relu", skip=skip)
    nn.init.zeros_(block.bn2.weight)
    x = torch.randn(2, 16, 8, 8)
    out = block(x)  # (2, 32, 4, 4)
    # option A: the input subsampled by 2, its 16 new channels zeros
    shortcut = torch.cat([x[:, :, ::2, ::2], torch.zeros(2, 16, 4, 4)], dim=1)
    assert torch.equal(out, F.relu(shortcut) if skip else torch.zeros(2, 32, 4, 4))


@pytest.mark.parametrize("skip", ["true", "false"])
def test_model_skip_reaches_every_block_of_the_network(skip):
    """`model.skip=false` is the plain twin: with its residual branch silenced, each block passes on nothing."""
    model = build("resnet", (1, 8, 8), 10, ["model.depth=8", f"model.skip={skip}"]).eval()
    assert len(model.blocks) == 3
    for block in model.blocks:
        nn.init.zeros_(block.bn2.weight)
        out = block(torch.randn(2, block.conv1.in_channels, 8, 8))
        assert bool(out.any()) == (skip == "true")  # only a shortcut can carry the input through


def test_lenet5_is_the_32x32_network_whatever_the_image_size():
    """fit=resize and fit=pad both feed 32x32 images: 61,706 weights for one channel and 10 classes."""
    sizes = {count_parameters(build("lenet5", shape, 10, [f"model.fit={fit}"]))
             for shape in [(1, 8, 8), (1, 28, 28), (1, 32, 32)] for fit in ("pad", "resize")}
    assert sizes == {61_706}


def test_perceptron_starts_at_zero_and_names_its_loss():
    model = build("perceptron", (2,), 1)
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())
    assert type(model).default_loss == "perceptron"


# --- the perceptron rule -------------------------------------------------------------------------


def _perceptron(lr: float = 0.1):
    """Model, optimizer and loss as `nnexp train model=perceptron optimizer=sgd optimizer.lr=<lr>` builds them."""
    cfg = compose_cfg(["model=perceptron", "optimizer=sgd", f"optimizer.lr={lr}"])
    model = component("model", cfg.model, input_shape=(2,), num_outputs=1)
    optimizer = component("optimizer", cfg.optimizer)(param_groups(model))  # the YAML's partial, given the weights
    objective = make_objective(cfg.loss, "classification", 2, None, model_default=type(model).default_loss)
    assert objective.name == "perceptron"
    return model, optimizer, objective


def _one_step(model, optimizer, objective, x: torch.Tensor, y: int) -> None:
    """One step of the real training loop on a batch of one sample."""
    split = Split(x[None], torch.tensor([y]))
    train_one_epoch(model, split, objective, optimizer, FitSettings(epochs=1, batch_size=1),
                    torch.Generator().manual_seed(0), lambda: False)


def _rule(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: int, lr: float):
    """Rosenblatt: y_hat = step(w.x + b); w <- w + lr (y - y_hat) x; b <- b + lr (y - y_hat)."""
    y_hat = float(w @ x + b > 0)
    return w + lr * (y - y_hat) * x, b + lr * (y - y_hat)


def test_one_sgd_step_from_zero_is_the_perceptron_rule():
    torch.manual_seed(0)
    x = torch.randn(2)
    for y in (1, 0):  # s = 0 predicts class 0: a mistake on class 1, no change on class 0
        model, optimizer, objective = _perceptron(lr=0.1)
        _one_step(model, optimizer, objective, x, y)
        w, b = _rule(torch.zeros(2), torch.zeros(1), x, y, lr=0.1)
        assert torch.equal(model.linear.weight[0], w) and torch.equal(model.linear.bias, b)


def test_every_sgd_step_is_the_perceptron_rule():
    """Mistakes on either class move w by +-lr x; a right answer changes nothing.

    Inputs are powers of two so lr * x is exact and float rounding cannot blur "exactly".
    """
    model, optimizer, objective = _perceptron(lr=0.1)
    w, b = torch.zeros(2), torch.zeros(1)
    samples = [((1.0, 2.0), 1), ((-4.0, 1.0), 1), ((2.0, -1.0), 0), ((-1.0, 2.0), 0)]
    changed = []
    for coords, y in samples:
        x = torch.tensor(coords)
        before = w
        w, b = _rule(w, b, x, y, lr=0.1)
        _one_step(model, optimizer, objective, x, y)
        assert torch.equal(model.linear.weight[0], w) and torch.equal(model.linear.bias, b), (coords, y)
        changed.append(not torch.equal(before, w))
    assert changed == [True, True, False, True]  # mistake on 1, mistake on 1, right, mistake on 0


def test_perceptron_converges_on_linearly_separable_data(run_cli, tmp_path):
    """Rosenblatt's convergence theorem, through the real entry point: two well-separated blobs."""
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "model=perceptron", "dataset=gaussians", "dataset.n_classes=2",
                           "dataset.noise=0.3", "optimizer=sgd", "trainer.batch_size=1", "regularizer=none",
                           "trainer.epochs=5", "trainer.progress=none", "trainer.checkpoints=false",
                           f"hydra.run.dir={run_dir}")
    assert code == 0, err
    s = read_summary(run_dir)
    assert s["loss"] == "perceptron"
    assert s["final"]["train/acc"] == 1.0  # not one mistake in the whole last epoch
    assert s["final"]["val/acc"] == 1.0


# --- XOR: one unit cannot, one hidden layer can (the course's claim) ------------------------------

XOR = ["dataset=xor", "regularizer=none", "trainer.progress=none", "trainer.checkpoints=false"]
LINEAR = {
    "perceptron": ["optimizer=sgd", "trainer.batch_size=1", "trainer.epochs=10"],
    "sigmoid_unit": ["optimizer=sgd", "optimizer.lr=0.5", "trainer.epochs=20"],
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(LINEAR))
def test_a_single_unit_cannot_learn_xor(run_cli, tmp_path, name, seed):
    # one line gets at most three of XOR's four clusters right: about 75% at best
    code, _, err = run_cli("train", f"model={name}", *XOR, *LINEAR[name], f"trainer.seed={seed}",
                           f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err
    summary = read_summary(tmp_path / "run")
    assert summary["final"]["val/acc"] <= 0.75
    assert summary["diagnosis"]["label"] == "cannot separate"  # not "underfit: train longer"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_hidden_layer_learns_xor(run_cli, tmp_path, seed):
    code, _, err = run_cli("train", "model=mlp", "model.hidden=[8]", "model.activation=tanh", *XOR,
                           "optimizer.lr=0.05", "trainer.epochs=30", f"trainer.seed={seed}",
                           f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err
    final = read_summary(tmp_path / "run")["final"]
    assert final["train/acc"] == 1.0 and final["val/acc"] >= 0.95


# --- the image models through the real entry point ------------------------------------------------


@pytest.mark.parametrize("choice", ["model=lenet5", "model=resnet", "model=resnet model.skip=false"])
def test_image_models_train_on_digits(run_cli, tmp_path, choice):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", *choice.split(), "dataset=digits", *SHRINK, f"hydra.run.dir={run_dir}")
    assert code == 0, err
    s = read_summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == 2
    with open(run_dir / "metrics.csv", newline="") as f:
        first, second = ({k: float(v) for k, v in row.items()} for row in csv.DictReader(f))
    # it learns: the second epoch fits the training images clearly better than the first
    assert second["train/loss"] < 0.98 * first["train/loss"], (first, second)
    assert second["train/acc"] > first["train/acc"] + 0.05, (first, second)


BAD = [
    (["model=lenet5", "dataset=moons"], "lenet5 needs images (C, H, W); this dataset gives inputs of shape (2,)"),
    (["model=perceptron", "dataset=spirals"], "it needs a two-class dataset (xor, moons, circles), this one has 3 classes"),
    (["model=perceptron", "dataset=digits", "loss=cross_entropy"], "use a two-class dataset: dataset=xor"),
    (["model=resnet", "model.depth=10"], "depth=10"),
    (["model=resnet", "model.skip=maybe"], "skip='maybe'"),
]


@pytest.mark.parametrize(("args", "expected"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_model_that_cannot_read_the_data_exits_2_with_one_line(run_cli, tmp_path, args, expected):
    code, out, err = run_cli("train", *args, "trainer.progress=none")
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("nnexp: error: "), err
    assert expected in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "outputs").exists()
