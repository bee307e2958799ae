"""Each model, dataset and optimizer factory checks its own options: one validation path per key.

A bad value raises OptionError naming the argument when called from Python (a
notebook gets the same words as the command line), and ``nnexp train`` shows it
with the full key (``model.depth=12 is out of range; ...``, exit 2). So a new
model with options is one file and one YAML: no rule table to extend.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, compose_cfg, read_summary
from hydra.utils import get_object
from omegaconf import OmegaConf

from nnexp import config, optim, options
from nnexp.data import digits, rl, sequences, shaped, synthetic, vision
from nnexp.errors import OptionError
from nnexp.models.lenet5 import LeNet5
from nnexp.models.lstm import LSTM
from nnexp.models.mlp import MLP
from nnexp.models.resnet import ResNet
from nnexp.models.transformer import Transformer


@pytest.fixture(autouse=True)
def _no_work(monkeypatch):
    """The checks come first: reaching Gymnasium or torchvision with a bad option is a failure."""
    def fail(*args, **kwargs):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(rl, "collect_cached", fail)
    monkeypatch.setattr(rl, "gymnasium", fail)
    monkeypatch.setattr(vision, "_torchvision", fail)


def _image(**kw):
    return {"input_shape": (1, 8, 8), "num_outputs": 10, **kw}


def _sequence(**kw):
    return {"input_shape": (12, 2), "num_outputs": 1, **kw}


MISSING = "no/such/folder"  # a loader that read files before checking would fail on this instead
SYNTHETIC = [synthetic.xor, synthetic.moons, synthetic.circles, synthetic.spirals,
             synthetic.gaussians]
VISION = [vision.mnist, vision.fashion_mnist, vision.cifar10]
RL = [rl.rl_model, rl.rl_value, rl.rl_policy, rl.rl_pixels]
PARAM = [torch.nn.Parameter(torch.zeros(1))]

# (constructor or loader, keyword arguments with one bad value, the key it must name)
BAD = [
    (MLP, {"input_shape": (2,), "num_outputs": 1, "hidden": [64, 0]}, "hidden"),
    (MLP, {"input_shape": (2,), "num_outputs": 1, "hidden": 16}, "hidden"),
    (MLP, {"input_shape": (2,), "num_outputs": 1, "activation": "swish"}, "activation"),
    (MLP, {"input_shape": (2,), "num_outputs": 1, "dropout": 1.0}, "dropout"),
    (MLP, {"input_shape": (2,), "num_outputs": 1, "residual": 2}, "residual"),
    (MLP, {"input_shape": (2,), "num_outputs": 1, "impl": "jax"}, "impl"),
    (MLP, {"input_shape": (2,), "num_outputs": 1, "init": "kaiming"}, "init"),
    (LeNet5, _image(activation="gelu"), "activation"),
    (LeNet5, _image(pool="median"), "pool"),
    (LeNet5, _image(fit="crop"), "fit"),
    (LeNet5, _image(dropout=-0.1), "dropout"),
    (ResNet, _image(depth=12), "depth"),
    (ResNet, _image(depth=20.0), "depth"),
    (ResNet, _image(width=0), "width"),
    (ResNet, _image(skip="sometimes"), "skip"),
    (ResNet, _image(activation="elu"), "activation"),
    (ResNet, _image(dropout=float("nan")), "dropout"),
    (LSTM, _sequence(hidden_size=0), "hidden_size"),
    (LSTM, _sequence(num_layers=0), "num_layers"),
    (LSTM, _sequence(bidirectional="both"), "bidirectional"),
    (LSTM, _sequence(dropout=1.5), "dropout"),
    (LSTM, _sequence(cell="gru"), "cell"),
    (LSTM, _sequence(embed_dim=0), "embed_dim"),
    (Transformer, _sequence(d_model=5), "d_model"),
    (Transformer, _sequence(n_heads=0), "n_heads"),
    (Transformer, _sequence(n_layers=0), "n_layers"),
    (Transformer, _sequence(d_ff=0), "d_ff"),
    (Transformer, _sequence(dropout=-1), "dropout"),
    (Transformer, _sequence(activation="swish"), "activation"),
    (Transformer, _sequence(causal="maybe"), "causal"),
    *[(make, {key: value}, key) for make in SYNTHETIC
      for key, value in (("n_samples", 3), ("noise", -1), ("val_fraction", 0), ("test_fraction", 1),
                         ("seed", -1))],
    (synthetic.circles, {"factor": 1.0}, "factor"),
    (synthetic.spirals, {"turns": 0}, "turns"),
    (synthetic.spirals, {"n_classes": 1}, "n_classes"),
    (synthetic.gaussians, {"n_classes": 1}, "n_classes"),
    (digits.load, {"train_fraction": 0}, "train_fraction"),
    (digits.load, {"val_fraction": 1.5}, "val_fraction"),
    (digits.load, {"test_fraction": -0.1}, "test_fraction"),
    (digits.load, {"seed": -1}, "seed"),
    (sequences.adding, {"length": 1}, "length"),
    (sequences.adding, {"tolerance": 0}, "tolerance"),
    (sequences.adding, {"n_samples": 0}, "n_samples"),
    (sequences.copy, {"length": 0}, "length"),
    (sequences.copy, {"delay": -1}, "delay"),
    (sequences.copy, {"n_symbols": 0}, "n_symbols"),
    (sequences.parity, {"length": 0}, "length"),
    (sequences.parity, {"val_fraction": 1}, "val_fraction"),
    (sequences.text, {"path": MISSING, "seq_len": 0}, "seq_len"),
    (sequences.text, {"path": MISSING, "max_chars": 0}, "max_chars"),
    (sequences.text, {"path": MISSING, "test_fraction": 1.0}, "test_fraction"),
    (sequences.text, {"path": ""}, "path"),
    (shaped.random_images, {"shape": [28, 28]}, "shape"),
    (shaped.random_images, {"shape": [1, 0, 28]}, "shape"),
    (shaped.random_images, {"train_size": 0}, "train_size"),
    (shaped.random_images, {"val_size": 0}, "val_size"),
    (shaped.random_images, {"num_classes": 1}, "num_classes"),
    (shaped.random_images, {"seed": -1}, "seed"),
    *[(load, {"root": MISSING, key: value}, key) for load in VISION
      for key, value in (("download", "maybe"), ("train_fraction", 0), ("val_fraction", 1),
                         ("limit", 0), ("test_size", 0), ("normalize", "yes"), ("seed", -1))],
    (vision.mnist, {"root": ""}, "root"),
    *[(load, {key: value}, key) for load in RL
      for key, value in (("env", "Pong-v5"), ("policy", "greedy"), ("epsilon", 1.5),
                         ("episodes", 1), ("max_steps", 0), ("val_fraction", 0),
                         ("normalize", "yes"), ("eval_every", -1), ("seed", -1), ("cache", ""))],
    (rl.rl_model, {"target": "state"}, "target"),
    (rl.rl_model, {"horizon": 0}, "horizon"),
    (rl.rl_value, {"gamma": 1}, "gamma"),
    (rl.rl_policy, {"eval_episodes": 0}, "eval_episodes"),
    (rl.rl_pixels, {"frames": 0}, "frames"),
    (rl.rl_pixels, {"height": 4}, "height"),
    (rl.rl_pixels, {"width": 4}, "width"),
    (rl.rl_pixels, {"grayscale": "yes"}, "grayscale"),
    (optim.sgd, {"params": PARAM, "lr": 0.1, "impl": "numpy"}, "impl"),
    (optim.adam, {"params": PARAM, "lr": 0.1, "impl": "numpy"}, "impl"),
]


def _id(case) -> str:
    make, kwargs, key = case
    return f"{make.__module__.rsplit('.', 1)[-1]}.{make.__name__}-{key}={kwargs[key]!r}"


@pytest.mark.parametrize(("make", "kwargs", "key"), BAD, ids=[_id(c) for c in BAD])
def test_a_bad_option_raises_option_error_naming_it(make, kwargs, key):
    with pytest.raises(OptionError) as caught:
        make(**kwargs)
    message = str(caught.value)
    assert caught.value.key == key
    assert message.startswith(f"{key}=") and " is out of range; allowed: " in message


@pytest.mark.parametrize(("make", "kwargs", "message"), [
    (MLP, {"input_shape": (2,), "num_outputs": 1, "init": "kaiming"},
     "init='kaiming' is out of range; allowed: one of torch, he, xavier"),
    (ResNet, _image(depth=12),
     "depth=12 is out of range; allowed: 6n+2: 8, 14, 20, 32, 44, 56, 110, ..."),
    (vision.mnist, {"root": MISSING, "limit": 0},
     "limit=0 is out of range; allowed: null or an integer >= 1"),
])
def test_the_messages_keep_the_rule_tables_words(make, kwargs, message):
    with pytest.raises(OptionError) as caught:
        make(**kwargs)
    assert str(caught.value) == message


@pytest.mark.parametrize(("make", "kwargs", "match"), [
    (MLP, {"input_shape": (2,), "num_outputs": 1, "impl": "scratch", "dropout": 0.2},
     "impl=scratch"),
    (Transformer, _sequence(d_model=6, n_heads=4), "d_model=6 must be divisible by n_heads=4"),
    (sequences.adding, {"val_fraction": 0.6, "test_fraction": 0.5},
     r"val_fraction \+ test_fraction = 1.1 leaves no training data"),
    (digits.load, {"val_fraction": 0.5, "test_fraction": 0.5}, "leaves no training data"),
])
def test_options_that_do_not_go_together_are_a_value_error(make, kwargs, match):
    with pytest.raises(ValueError, match=match) as caught:
        make(**kwargs)
    assert not isinstance(caught.value, OptionError)


# Every key of every model and dataset YAML, given a value of the wrong kind, is refused by the
# component itself: a key added to a YAML without a check in its constructor fails here.
YAMLS = [(group, path.stem) for group in ("model", "dataset")
         for path in sorted((REPO / "conf" / group).glob("*.yaml"))]
SAMPLE_SHAPES = {"lenet5": (1, 8, 8), "resnet": (1, 8, 8), "lstm": (12, 2), "transformer": (12, 2)}


def _wrong_kind(value):
    if isinstance(value, bool):
        return "maybe"
    return 3 if isinstance(value, str) else "many"


@pytest.mark.parametrize(("group", "name"), YAMLS, ids=[f"{g}={n}" for g, n in YAMLS])
def test_every_yaml_key_is_checked_by_its_component(group, name):
    cfg = compose_cfg([f"{group}={name}", *(["dataset.path=README.md"] if name == "text" else [])])
    kwargs = OmegaConf.to_container(cfg[group], resolve=True)
    target = get_object(kwargs.pop("_target_"))
    if group == "model":
        kwargs.update(input_shape=SAMPLE_SHAPES.get(name, (2,)), num_outputs=1)
    unchecked = []
    for key in OmegaConf.load(REPO / "conf" / group / f"{name}.yaml"):
        if key == "_target_":
            continue
        try:
            target(**{**kwargs, key: _wrong_kind(kwargs[key])})
            unchecked.append(key)
        except OptionError as exc:
            assert exc.key == key
    assert not unchecked, f"{group}={name} accepts a value of the wrong kind for {unchecked}"


def test_the_rule_table_holds_no_model_or_dataset_key():
    keys = [key for key, _, _ in config._RULES]
    assert not [k for k in keys if k.startswith(("model.", "dataset.")) or k == "optimizer.impl"]


# What nnexp passes a component when it builds it, not a key of its config (nnexp/build.py, nnexp/rl/runner.py)
RUN_TIME = {"input_shape", "num_outputs", "vocab_size", "per_step", "causal", "params",
            "networks", "optimizer", "spaces", "device", "seed"}


def _options_of(target) -> set[str]:
    """A constructor's named options; one that passes ``**kwargs`` on (an agent to ``Agent``) takes its base's too."""
    parameters = inspect.signature(target).parameters
    names = {n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if inspect.isclass(target) and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        base = next(b for b in target.__mro__[1:] if "__init__" in vars(b))
        names |= _options_of(base)
    return names


@pytest.mark.parametrize("target", sorted(options.registered()))
def test_each_registered_check_names_its_components_options(target):
    """The keys nnexp knows a target by (before torch is imported) are its constructor's options, and its check
    takes only those: a new option without a check, or a check of a key it lacks, fails here."""
    takes = options.registered()[target]
    parameters = _options_of(get_object(target))
    assert set(takes.keys) == parameters - (RUN_TIME - set(takes.keys)), target
    assert set(takes.check_keys()) <= set(takes.keys)


def test_every_shipped_component_is_registered():
    """So each of their options is checked before torch is imported, but torch's own optimizers and schedulers
    (the rule table checks those)."""
    targets = {str(OmegaConf.load(p).get("_target_")) for group in ("model", "dataset", "optimizer")
               for p in (REPO / "conf" / group).glob("*.yaml")}
    assert {t for t in targets if not t.startswith("torch.")} <= set(options.registered())


# ---------------------------------------------------------------------------
# A new model with an option of its own, through the real entry point

TINY = '''\
import math

from torch import nn

from nnexp.errors import OptionError


class Tiny(nn.Module):
    """One hidden layer of ``width`` tanh units."""

    def __init__(self, input_shape, num_outputs, width=4):
        super().__init__()
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise OptionError("width", width, "an integer >= 1")
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.Tanh(),
                                 nn.Linear(width, num_outputs))

    def forward(self, x):
        return self.net(x)
'''


@pytest.fixture
def tiny_model(tmp_path, monkeypatch) -> Path:
    """``tiny_model.Tiny`` importable from outside the repository; returns a config dir for it."""
    src = tmp_path / "src"
    (src / "conf" / "model").mkdir(parents=True)
    (src / "tiny_model.py").write_text(TINY)
    (src / "conf" / "model" / "tiny.yaml").write_text("# nnexp train model=tiny\n"
                                                      "_target_: tiny_model.Tiny\nwidth: 4\n")
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.delitem(sys.modules, "tiny_model", raising=False)
    return src / "conf"


SELECT = {
    # on the command line alone: drop the default model's keys, name the class, add its option
    "target": lambda conf, width: ["~model", "+model._target_=tiny_model.Tiny",
                                   f"+model.width={width}"],
    # one file plus one YAML, found through Hydra's search path
    "yaml": lambda conf, width: [f"hydra.searchpath=[file://{conf}]", "model=tiny",
                                 f"model.width={width}"],
}


@pytest.mark.parametrize("how", sorted(SELECT))
def test_a_new_model_checks_its_own_option_through_the_cli(run_cli, tmp_path, tiny_model, how):
    select = SELECT[how]
    code, out, err = run_cli("train", "trainer.progress=none", "dataset=xor",
                             *select(tiny_model, 0))
    assert code == 2, (out, err)
    assert err.strip() == "nnexp: error: model.width=0 is out of range; allowed: an integer >= 1"
    assert not (tmp_path / "outputs").exists()

    code, out, err = run_cli("train", "trainer.progress=none", "dataset=xor", "trainer.epochs=1",
                             f"hydra.run.dir={tmp_path / 'run'}", *select(tiny_model, 3))
    assert code == 0, (out, err)
    summary = read_summary(tmp_path / "run")
    assert summary["status"] == "completed"
    assert summary["num_params"] == (2 * 3 + 3) + (3 * 1 + 1)  # width 3 got there: 2 -> 3 -> 1


def test_a_misspelt_option_of_a_new_model_gets_did_you_mean(run_cli, tmp_path, tiny_model):
    """nnexp does not know the model's options before it is imported: its signature says, when it is built."""
    code, out, err = run_cli("train", "trainer.progress=none", "dataset=xor", f"hydra.searchpath=[file://{tiny_model}]",
                             "model=tiny", "+model.widht=3")
    assert code == 2, (out, err)
    assert err.strip() == ("nnexp: error: model.widht is not a key of model=tiny; did you mean model.width? "
                           "(keys: width)")
    assert not (tmp_path / "outputs").exists()
