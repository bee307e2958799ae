"""Every model config, timm style: the grid comes from conf/model/*.yaml."""

from __future__ import annotations

import pytest
import torch
from conftest import REPO, compose_cfg
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from nnexp.models import ACTIVATIONS, activation, count_parameters
from nnexp.models.mlp import MLP

MODELS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))
WITH_ACTIVATION = [n for n in MODELS if "activation" in OmegaConf.load(REPO / "conf" / "model" / f"{n}.yaml")]
WITH_DROPOUT = [n for n in MODELS if "dropout" in OmegaConf.load(REPO / "conf" / "model" / f"{n}.yaml")]
INPUT_SHAPES = [(2,), (1, 8, 8), (12, 2)]
NUM_OUTPUTS = [1, 10]
BATCH = 8
# Models that read only some data (their own tests: tests/test_models_zoo.py):
ONE_OUTPUT = {"perceptron", "sigmoid_unit"}  # two classes, one output
IMAGES_ONLY = {"lenet5", "resnet"}  # inputs (C, H, W)
SEQUENCES_ONLY = {"lstm", "rnn", "transformer"}  # inputs (T, F) (tokens: tests/test_sequences.py)
GRID = [(n, s, k) for n in MODELS for s in INPUT_SHAPES for k in NUM_OUTPUTS
        if (n not in ONE_OUTPUT or k == 1) and (n not in IMAGES_ONLY or len(s) == 3)
        and (n not in SEQUENCES_ONLY or len(s) == 2)]


def sample_shape(name: str) -> tuple[int, ...]:
    return (1, 8, 8) if name in IMAGES_ONLY else (12, 2) if name in SEQUENCES_ONLY else (2,)


def build(name: str, input_shape, num_outputs: int, dropout: float = 0.0, overrides=()) -> nn.Module:
    """The model as `nnexp train model=<name>` builds it (run-time values as keyword arguments)."""
    cfg = compose_cfg([f"model={name}", f"regularizer.dropout={dropout}", *overrides])
    return instantiate(cfg.model, input_shape=input_shape, num_outputs=num_outputs, _convert_="all")


def test_there_are_model_configs():
    assert "mlp" in MODELS


@pytest.mark.parametrize(("name", "input_shape", "num_outputs"), GRID, ids=str)
def test_forward_shape_and_finite(name, input_shape, num_outputs):
    torch.manual_seed(0)
    model = build(name, input_shape, num_outputs)
    out = model(torch.randn(BATCH, *input_shape))
    assert out.shape == (BATCH, num_outputs)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "input_shape", "num_outputs"), GRID, ids=str)
def test_every_parameter_gets_a_gradient(name, input_shape, num_outputs):
    torch.manual_seed(0)
    model = build(name, input_shape, num_outputs, dropout=0.5)
    out = model(torch.randn(BATCH, *input_shape))
    nn.functional.mse_loss(out, torch.randn_like(out)).backward()
    params = dict(model.named_parameters())
    assert params
    for pname, p in params.items():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", WITH_DROPOUT)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_dropout_layers_present_iff_dropout_is_positive(name, dropout):
    """regularizer.dropout reaches the model through the `${regularizer.dropout}` interpolation."""
    model = build(name, sample_shape(name), 3, dropout=dropout)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert bool(drops) == (dropout > 0)
    assert all(m.p == pytest.approx(dropout) for m in drops)


@pytest.mark.parametrize("name", WITH_DROPOUT)
def test_dropout_is_random_in_train_mode_and_off_in_eval_mode(name):
    torch.manual_seed(0)
    model = build(name, sample_shape(name), 3, dropout=0.5)
    x = torch.randn(BATCH, *sample_shape(name))
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", WITH_ACTIVATION)
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_activation_name_builds(name, act):
    model = build(name, sample_shape(name), 1, overrides=[f"model.activation={act}"])
    assert any(isinstance(m, ACTIVATIONS[act]) for m in model.modules())


def test_unknown_activation_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match=r"'foo'.*sigmoid, tanh, relu"):
        activation("foo")
    with pytest.raises(ValueError, match="foo"):
        MLP(input_shape=(2,), num_outputs=1, hidden=[4], activation="foo")


@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5])
def test_mlp_rejects_dropout_outside_0_1(dropout):
    with pytest.raises(ValueError, match="dropout"):
        MLP(input_shape=(2,), num_outputs=1, hidden=[4], dropout=dropout)


def test_mlp_layers_follow_hidden():
    model = MLP(input_shape=(1, 8, 8), num_outputs=10, hidden=[32, 16], activation="tanh")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 16), (16, 10)]


def test_count_parameters_of_a_known_mlp():
    # 2 -> 3 -> 1: weights 2*3 + 3*1, biases 3 + 1
    model = MLP(input_shape=(2,), num_outputs=1, hidden=[3])
    assert count_parameters(model) == 2 * 3 + 3 + 3 * 1 + 1 == 13
    # (1, 8, 8) -> 4 -> 4 -> 10: 64*4+4 + 4*4+4 + 4*10+10
    assert count_parameters(MLP(input_shape=(1, 8, 8), num_outputs=10, hidden=[4, 4])) == 330


def test_count_parameters_skips_frozen_parameters():
    model = MLP(input_shape=(2,), num_outputs=1, hidden=[3])
    model.net.fc1.weight.requires_grad_(False)
    assert count_parameters(model) == 13 - 6
