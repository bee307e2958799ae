"""The debug presets (conf/debug/): debug=fast, debug=overfit, debug=anomaly, and the trainer keys they set."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, compose_cfg, read_summary
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nnexp.data import Data, Split, limit

QUICK = ["trainer.progress=none", "trainer.threads=1"]
MODELS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))
# a dataset each model can read (the default, digits, is images with 10 classes)
DATASET = {"perceptron": "moons", "sigmoid_unit": "xor", "lstm": "adding", "rnn": "adding", "transformer": "adding"}


def _epochs(run_dir: Path) -> list[str]:
    with open(run_dir / "metrics.csv") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def _events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_every_model_has_a_dataset_here():
    assert set(DATASET) <= set(MODELS), "a model named here is gone from conf/model/"


@pytest.mark.parametrize("model", MODELS)
def test_debug_fast_trains_one_batch_of_every_model(run_cli, tmp_path, model):
    run_dir = tmp_path / "run"
    dataset = [f"dataset={DATASET[model]}"] if model in DATASET else []
    # log_every_n_steps=1 logs train/loss_step at every optimizer step: the count of steps the epoch took
    code, out, err = run_cli("train", "debug=fast", f"model={model}", *dataset, *QUICK, "trainer.log_every_n_steps=1",
                             f"hydra.run.dir={run_dir}")
    assert code == 0, err
    summary = read_summary(run_dir)
    assert (summary["status"], summary["epochs_run"]) == ("completed", 1)
    assert _epochs(run_dir) == ["1"]
    assert not (run_dir / "checkpoints").exists()
    acc = _events(run_dir)
    assert len(acc.Scalars("train/loss_step")) == 1, "one batch of training"
    assert acc.Tags()["images"] == [] and acc.Tags()["histograms"] == []


def _data(n_train: int = 100, n_val: int = 50, n_test: int | None = 30) -> Data:
    def split(n: int, first: int) -> Split:
        return Split(torch.arange(first, first + n, dtype=torch.float32)[:, None], torch.zeros(n, dtype=torch.long))

    return Data("toy", "classification", (1,), split(n_train, 0), split(n_val, 1000),
                None if n_test is None else split(n_test, 2000), num_classes=2)


def test_limit_batches_cuts_each_split_to_that_many_batches():
    data = limit(_data(), batch_size=8, eval_batch_size=20, limit_batches=2)
    assert (len(data.train), len(data.val), len(data.test)) == (16, 40, 30)
    assert data.train.x[:, 0].tolist() == list(range(16)), "the first samples, in their order"
    whole = limit(_data(), batch_size=8, eval_batch_size=20)  # 0 = all
    assert (len(whole.train), len(whole.val), len(whole.test)) == (100, 50, 30)


def test_overfit_batches_validates_on_the_training_samples():
    data = limit(_data(), batch_size=8, eval_batch_size=20, overfit_batches=2)
    assert len(data.train) == 16
    for split in (data.val, data.test):
        assert torch.equal(split.x, data.train.x) and torch.equal(split.y, data.train.y)
    assert limit(_data(n_test=None), batch_size=8, eval_batch_size=20, overfit_batches=1).test is None
    assert len(limit(_data(n_train=5), batch_size=8, eval_batch_size=20, overfit_batches=3).train) == 5


@pytest.mark.parametrize("choice", ["model=mlp", "model=lenet5", "model=transformer dataset=adding"])
def test_debug_overfit_memorizes_a_batch_and_says_so(run_cli, tmp_path, choice):
    run_dir = tmp_path / "run"
    code, out, err = run_cli("train", "debug=overfit", *choice.split(), *QUICK, f"hydra.run.dir={run_dir}")
    assert code == 0, err
    summary = read_summary(run_dir)
    assert summary["status"] == "completed" and summary["choices"]["regularizer"] == "none"
    (check,) = summary["checks"]
    assert check["expect"] == "final.train/loss < 0.05" and check["pass"] is True, check
    assert summary["final"]["val/loss"] < 0.05, "validated on the very samples it memorized"
    assert not (run_dir / "checkpoints").exists()
    assert "Check PASS: final.train/loss < 0.05" in out


def test_debug_anomaly_names_the_module_that_made_the_first_nan(run_cli, tmp_path):
    args = ["optimizer.lr=1e30", "trainer.epochs=2", *QUICK]
    code, _, err = run_cli("train", *args, f"hydra.run.dir={tmp_path / 'plain'}")
    assert code == 3 and "training diverged: train/loss became nan in epoch 1, step 2" in err, err

    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "debug=anomaly", *args, f"hydra.run.dir={run_dir}")
    assert code == 3
    # Adam's first step at lr 1e30 makes every weight about 1e30: the second layer's sums are Inf - Inf
    assert err.strip() == ("nnexp: error: training diverged: the first NaN came from model.net.fc2 (Linear) in the "
                           "forward pass of epoch 1, step 2; the weights are those of the step before")
    summary = read_summary(run_dir)
    assert summary["status"] == "diverged" and summary["message"] in err
    assert not (run_dir / "checkpoints").exists()
    assert not torch.is_anomaly_enabled(), "anomaly mode ends with the run"


MODELS_SRC = '''\
import math

from torch import nn


class NanGrad(nn.Module):
    def __init__(self, input_shape, num_outputs):
        super().__init__()
        self.out = nn.Linear(math.prod(input_shape), num_outputs)

    def forward(self, x):
        h = self.out(x.flatten(1))
        return h + (h - h).sqrt() * 0  # forward: h + 0; backward: 0 * 1 / (2 sqrt(0)) = NaN


class HugeOut(NanGrad):
    def forward(self, x):
        return self.out(x.flatten(1)) * 1e30  # finite; its square in the MSE is not
'''


@pytest.fixture
def test_models(tmp_path, monkeypatch):
    """``debug_models.NanGrad`` and ``debug_models.HugeOut``, importable for ``+model._target_``."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "debug_models.py").write_text(MODELS_SRC)
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.delitem(sys.modules, "debug_models", raising=False)


def test_debug_anomaly_names_the_backward_function_and_the_forward_line(run_cli, tmp_path, test_models):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "debug=anomaly", "~model", "+model._target_=debug_models.NanGrad", *QUICK,
                           f"hydra.run.dir={run_dir}")
    assert code == 3
    # one line: torch's warning with the forward traceback goes to train.log, not the terminal
    assert err.strip() == ("nnexp: error: training diverged: the first NaN came from SqrtBackward0 (of the forward "
                           "call at debug_models.py:13 in forward) in the backward pass of epoch 1, step 1; the "
                           "weights are those of the step before")
    assert "Error detected in SqrtBackward0" in (run_dir / "train.log").read_text()


def test_debug_anomaly_says_when_the_loss_itself_made_it(run_cli, tmp_path, test_models):
    code, _, err = run_cli("train", "debug=anomaly", "~model", "+model._target_=debug_models.HugeOut",
                           "dataset=adding", "dataset.n_samples=100", *QUICK, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 3
    assert err.strip() == ("nnexp: error: training diverged: train/loss became inf (every module's output was finite: "
                           "the loss made it) in epoch 1, step 1; the weights are those of the step before")


def test_debug_anomaly_trains_a_healthy_run_as_usual(run_cli, tmp_path):
    finals = []
    for name, extra in (("plain", []), ("anomaly", ["debug=anomaly"])):
        code, _, err = run_cli("train", *extra, "dataset=moons", "model.hidden=[8]", "trainer.epochs=2", *QUICK,
                               f"hydra.run.dir={tmp_path / name}")
        assert code == 0, err
        finals.append(read_summary(tmp_path / name)["final"])
    assert finals[0] == finals[1], "watching changes nothing the run computes"


@pytest.mark.parametrize(("extra", "message"), [
    ("trainer.compile=true", "trainer.detect_anomaly=true watches the model's modules as they run; use it with "
                             "trainer.compile=false"),
    ("trainer.strategy=ddp", "trainer.detect_anomaly=true watches one process; it cannot run with "
                             "trainer.strategy=ddp"),
])
def test_debug_anomaly_refuses_what_it_cannot_watch(run_cli, tmp_path, extra, message):
    code, _, err = run_cli("train", "debug=anomaly", extra, *QUICK)
    assert code == 2 and err.strip() == f"nnexp: error: {message}"
    assert not (tmp_path / "outputs").exists()


def test_train_help_lists_the_debug_presets_each_in_its_yamls_words(run_cli):
    code, out, _ = run_cli("train", "--help")
    assert code == 0
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  debug "))
    rows = [re.match(r"^  (?:debug)? +[ *](\w+) +(.+)$", line).groups() for line in lines[start:start + 3]]
    assert [option for option, _ in rows] == ["anomaly", "fast", "overfit"]
    for option, what in rows:
        header = (REPO / "conf" / "debug" / f"{option}.yaml").read_text().splitlines()
        assert header[1].startswith(f"# nnexp train debug={option}"), "the first line: a command that uses it"
        assert what.startswith(header[2][2:]), (what, header[2])  # the next: what it is, whole


def test_runs_from_before_the_debug_keys_keep_their_fingerprint():
    """A config without trainer.limit_batches/overfit_batches (a run made before them) is the same run as one with
    them off: it resumes, and a sweep run again skips it; with them on it is another run."""
    from omegaconf import OmegaConf

    from nnexp.fingerprint import config_hash, same_run
    from nnexp.resume import differences

    now = OmegaConf.to_container(compose_cfg(["debug=anomaly"]), resolve=True)
    before = OmegaConf.to_container(compose_cfg(), resolve=True)
    for key in ("limit_batches", "overfit_batches", "detect_anomaly"):
        del before["trainer"][key]
    before["trainer"]["checkpoints"] = False  # what debug=anomaly also sets: a display key
    assert config_hash(before) == config_hash(now) and same_run(before, now) and differences(before, now) == {}
    fast = OmegaConf.to_container(compose_cfg(["debug=fast", "trainer.epochs=150"]), resolve=True)
    assert config_hash(fast) != config_hash(now)
    assert differences(before, fast) == {"trainer.limit_batches": [None, 1]}
