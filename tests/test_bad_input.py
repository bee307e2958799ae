"""Bad input: one clear message naming the key, exit code 2, no traceback, nothing left behind."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_subprocess

# (arguments after `nnexp train`, text the message must contain)
BAD = [
    (["trainer.epochs=0"], "trainer.epochs=0 is out of range; allowed: an integer >= 1"),
    (["trainer.epochs=-3"], "trainer.epochs=-3 is out of range; allowed: an integer >= 1"),
    (["trainer.epochs=abc"], "trainer.epochs=abc"),
    (["trainer.epochs=1.5"], "Error merging override trainer.epochs=1.5\nValue '1.5' of type 'float' could not be converted to Integer"),
    (["trainer.batch_size=0"], "trainer.batch_size=0"),
    (["trainer.eval_batch_size=0"], "trainer.eval_batch_size=0 is out of range; allowed: an integer >= 1"),
    (["trainer.threads=-1"], "trainer.threads=-1 is out of range; allowed: an integer >= 0"),
    (["trainer.grad_clip=0"], "trainer.grad_clip=0"),
    (["trainer.grad_clip=-1"], "trainer.grad_clip=-1.0 is out of range; allowed: null or a finite number > 0"),
    (["trainer.device=tpu"], "trainer.device='tpu'"),
    (["trainer.progress=fancy"], "trainer.progress='fancy' is out of range; allowed: one of auto, rich, plain, none"),
    (["trainer.pictures_every=-1"], "trainer.pictures_every=-1 is out of range; allowed: an integer >= 0"),
    (["trainer.pictures_every=often"], "trainer.pictures_every=often"),
    (["trainer.histograms_every=-5"], "trainer.histograms_every=-5"),
    (["trainer.histograms_every=2.5"], "trainer.histograms_every=2.5\nValue '2.5' of type 'float' could not be converted to Integer"),
    (["trainer.confusion_matrix=maybe"], "trainer.confusion_matrix=maybe\nValue 'maybe' is not a valid bool"),
    (["trainer.limit_batches=-1"], "trainer.limit_batches=-1 is out of range; allowed: an integer >= 0 (batches per epoch; 0 = all)"),
    (["trainer.overfit_batches=-2"], "trainer.overfit_batches=-2 is out of range; allowed: an integer >= 0 (batches; 0 = off)"),
    (["trainer.detect_anomaly=maybe"], "trainer.detect_anomaly=maybe\nValue 'maybe' is not a valid bool"),
    (["debug=slow"], "debug/slow"),
    (["trainer.seed=x"], "trainer.seed=x\nValue 'x' of type 'str' could not be converted to Integer"),
    (["trainer.deterministic=maybe"], "trainer.deterministic=maybe\nValue 'maybe' is not a valid bool"),
    (["trainer.nope=1"], "Could not override 'trainer.nope'"),
    (["optimizer.lr=-1"], "optimizer.lr=-1 is out of range; allowed: a finite number > 0"),
    (["optimizer.lr=0"], "optimizer.lr=0"),
    (["optimizer.lr=nan"], "optimizer.lr=nan"),
    (["optimizer.lr=inf"], "optimizer.lr=inf"),
    (["optimizer.lr=fast"], "optimizer.lr='fast'"),
    (["optimizer=momentum", "optimizer.momentum=1.5"], "optimizer.momentum"),
    (["optimizer=nadam"], "optimizer/nadam"),
    (["optimizer.betas=[0.9]"],
     "optimizer.betas=[0.9] is out of range; allowed: two numbers in [0, 1), e.g. [0.9,0.999]"),
    (["optimizer.betas=[0.9,1.0]"], "optimizer.betas=[0.9, 1.0] is out of range"),
    (["model=transformer9"], "model/transformer9"),
    (["model.activation=swish"], "model.activation='swish'"),
    (["model.hidden=[0]"], "model.hidden=[0] is out of range; allowed: a list of integers >= 1, e.g. [64,64]"),
    (["model.init=kaiming"], "model.init='kaiming' is out of range; allowed: one of torch, he, xavier"),
    (["dataset=adding", "model=lstm", "dataset.tolerance=0"], "dataset.tolerance=0 is out of range"),
    (["model.hidden=16"], "model.hidden=16 is out of range; allowed: a list of integers >= 1"),
    (["model.dropout=1.0"], "model.dropout"),
    (["model.nope=3"], "model.nope"),
    (["dataset=imagenet"], "dataset/imagenet"),
    (["dataset.val_fraction=0"], "dataset.val_fraction=0"),
    (["dataset.val_fraction=1"], "dataset.val_fraction"),
    (["dataset.test_fraction=-0.1"], "dataset.test_fraction"),
    (["dataset.val_fraction=0.6", "dataset.test_fraction=0.5"],
     "dataset: val_fraction + test_fraction = 1.1 leaves no training data; allowed: a sum < 1"),
    (["dataset.train_fraction=0"], "dataset.train_fraction=0"),
    (["dataset.train_fraction=1.5"], "dataset.train_fraction"),
    (["dataset=moons", "dataset.noise=-1"], "dataset.noise"),
    (["dataset=moons", "dataset.n_samples=2"], "dataset.n_samples"),
    (["dataset=spirals", "dataset.n_classes=1"], "dataset.n_classes"),
    (["dataset=circles", "dataset.factor=2"],
     "dataset.factor=2 is out of range; allowed: a number in (0, 1)"),
    (["regularizer=lasso"], "regularizer/lasso"),
    (["regularizer.dropout=1.0"], "regularizer.dropout=1.0 is out of range; allowed: a number in [0, 1)"),
    (["regularizer.dropout=-0.1"], "regularizer.dropout"),
    (["regularizer.weight_decay=-1"], "regularizer.weight_decay"),
    (["regularizer.l1=-0.1"], "regularizer.l1"),
    (["regularizer.early_stopping.patience=-1"], "regularizer.early_stopping.patience"),
    (["regularizer.early_stopping.min_delta=-1"], "regularizer.early_stopping.min_delta"),
    (["regularizer.early_stopping.mode=up"], "regularizer.early_stopping.mode"),
    (["regularizer.early_stopping.monitor=val/f1"], "regularizer.early_stopping.monitor"),
    (["scheduler=warmup"], "scheduler/warmup"),
    (["scheduler=step", "scheduler.step_size=0"], "scheduler.step_size"),
    (["scheduler=step", "scheduler.gamma=2"], "scheduler.gamma"),
    (["scheduler=plateau", "scheduler.factor=1"], "scheduler.factor"),
    (["loss=hinge"], "loss='hinge'"),
    (["loss=bce", "dataset=spirals"], "loss=bce needs exactly 2 classes"),
    (["experiment=nope"], "experiment/nope"),
    (["trainer.epochs"], "Error parsing override 'trainer.epochs'"),
    (["=3"], "=3"),
    (["trainer.epochs=[1"], "trainer.epochs=[1"),
    (["model=lenet5", "model.pool=median"], "model.pool='median'"),
    (["model=lenet5", "model.fit=crop"], "model.fit='crop'"),
    (["model=resnet", "model.depth=12"], "model.depth=12"),
    (["model=resnet", "model.width=0"], "model.width=0"),
    (["model=resnet", "model.skip=sometimes"], "model.skip='sometimes'"),
    (["model.residual=2"], "model.residual=2"),
    (["model.impl=jax"], "model.impl='jax'"),
    (["model.impl=scratch", "regularizer.dropout=0.5"], "impl=scratch"),
    (["optimizer.impl=numpy"], "optimizer.impl='numpy'"),
    (["model=lstm", "dataset=adding", "model.num_layers=0"], "model.num_layers=0"),
    (["model=transformer", "dataset=adding", "model.d_model=0"], "model.d_model=0"),
    (["dataset=adding", "model=lstm", "dataset.length=0"], "dataset.length=0"),
    (["dataset=text", "model=lstm", "dataset.path=nowhere.txt"], "dataset.path=nowhere.txt"),
    (["dataset=mnist", "dataset.limit=0"], "dataset.limit=0"),
    (["dataset=rl_policy", "dataset.env=Pong-v5"], "dataset.env='Pong-v5' is out of range; allowed: one of CartPole-v1"),
    (["dataset=rl_model", "dataset.target=state"], "dataset.target='state'"),
    (["dataset=rl_value", "dataset.gamma=1"], "dataset.gamma=1 is out of range"),
    (["dataset=rl_pixels", "dataset.episodes=1"], "dataset.episodes=1"),
    (["dataset=rl_policy", "dataset.epsilon=1.5"], "dataset.epsilon=1.5"),
    (["dataset=mnist", "dataset.download=maybe"], "dataset.download='maybe'"),
    (["model=perceptron", "dataset=digits"], "two-class dataset"),
    (["loss=perceptron", "dataset=spirals"], "loss=perceptron needs exactly 2 classes"),
    (["model=lenet5", "dataset=moons"], "lenet5 needs images"),
    (["trainer.precision=fp8"], "trainer.precision='fp8' is out of range; allowed: one of 32, bf16, 16"),
    (["trainer.log_every_n_steps=-1"],
     "trainer.log_every_n_steps=-1 is out of range; allowed: an integer >= 0 (optimizer steps; 0 = once per epoch only)"),
    (["dataset=random_images", "dataset.shape=[28,28]"],
     "dataset.shape=[28, 28] is out of range; allowed: three integers >= 1"),
    (["trainer.channels_last=maybe"], "trainer.channels_last=maybe\nValue 'maybe' is not a valid bool"),
    (["trainer.compile=sometimes"], "trainer.compile=sometimes\nValue 'sometimes' is not a valid bool"),
    (["trainer.tensorboard=maybe"], "trainer.tensorboard=maybe\nValue 'maybe' is not a valid bool"),
    (["dataset=random_images", "dataset.train_size=0"],
     "dataset.train_size=0 is out of range; allowed: an integer >= 1"),
    (["trainer.strategy=fsdp"], "trainer.strategy='fsdp' is out of range; allowed: one of auto, ddp"),
    # options checked by the model or dataset itself (no rule in nnexp/config.py; more in
    # tests/test_sequences.py)
    (["model=lstm", "dataset=parity", "model.embed_dim=0"], "model.embed_dim=0 is out of range"),
    (["model=lstm", "dataset=adding", "model.bidirectional=both"],
     "model.bidirectional='both' is out of range"),
    (["model=transformer", "dataset=adding", "model.d_model=5"],
     "model.d_model=5 is out of range; allowed: an even integer >= 2, divisible by n_heads"),
    (["model=transformer", "dataset=adding", "model.d_model=6"],
     "model: d_model=6 must be divisible by n_heads=4"),
    (["model=transformer", "dataset=adding", "model.n_heads=0"], "model.n_heads=0 is out of range"),
    (["model=transformer", "dataset=adding", "model.n_layers=0"],
     "model.n_layers=0 is out of range"),
    (["model=transformer", "dataset=adding", "model.d_ff=0"], "model.d_ff=0 is out of range"),
    (["model=transformer", "dataset=adding", "model.causal=maybe"],
     "model.causal='maybe' is out of range"),
    (["model=resnet", "model.activation=gelu"], "model.activation='gelu' is out of range"),
    (["dataset.seed=-1"], "dataset.seed=-1 is out of range; allowed: an integer >= 0"),
    (["dataset=spirals", "dataset.turns=0"],
     "dataset.turns=0 is out of range; allowed: a finite number > 0"),
    (["dataset=gaussians", "dataset.n_classes=1"],
     "dataset.n_classes=1 is out of range; allowed: an integer >= 2"),
    (["dataset=adding", "model=lstm", "dataset.length=1"],
     "dataset.length=1 is out of range; allowed: an integer >= 2"),
    (["dataset=copy", "model=lstm", "dataset.n_symbols=0"], "dataset.n_symbols=0 is out of range"),
    (["dataset=parity", "model=lstm", "dataset.n_samples=3"],
     "dataset.n_samples=3 is out of range"),
    # checked before the file is read
    (["dataset=text", "model=lstm", "dataset.path=nowhere.txt", "dataset.seq_len=0"],
     "dataset.seq_len=0 is out of range; allowed: an integer >= 1 (characters)"),
    (["dataset=text", "model=lstm", "dataset.path=nowhere.txt", "dataset.max_chars=0"],
     "dataset.max_chars=0"),
    (["dataset=random_images", "dataset.num_classes=1"], "dataset.num_classes=1 is out of range"),
    (["dataset=mnist", "dataset.test_size=0"], "dataset.test_size=0 is out of range"),
    (["dataset=fashion_mnist", "dataset.normalize=maybe"],
     "dataset.normalize='maybe' is out of range"),
    (["dataset=cifar10", "dataset.val_fraction=1"], "dataset.val_fraction=1 is out of range"),
    (["dataset=rl_policy", "dataset.policy=greedy"], "dataset.policy='greedy' is out of range"),
    (["dataset=rl_policy", "dataset.eval_episodes=0"], "dataset.eval_episodes=0 is out of range"),
    (["dataset=rl_model", "dataset.horizon=0"], "dataset.horizon=0 is out of range"),
    (["dataset=rl_value", "dataset.max_steps=0"], "dataset.max_steps=0 is out of range"),
    (["dataset=rl_value", "dataset.eval_every=-1"], "dataset.eval_every=-1 is out of range"),
    (["dataset=rl_pixels", "dataset.height=4"],
     "dataset.height=4 is out of range; allowed: an integer >= 8 (pixels)"),
    (["dataset=rl_pixels", "dataset.grayscale=maybe"], "dataset.grayscale='maybe' is out of range"),
    (["dataset=rl_pixels", "dataset.cache=''"],
     "dataset.cache='' is out of range; allowed: a folder"),
    # resume with nothing to resume
    (["trainer.resume=no/such/run"], "trainer.resume=no/such/run: no such run folder or checkpoint file"),
    (["trainer.resume=."], "trainer.resume=.: . holds no checkpoints/last.pt, so there is nothing to resume"),
    (["trainer.resume=''"], "trainer.resume='' is out of range; allowed: null, auto, or a run folder or checkpoint file"),
]


@pytest.mark.parametrize(("args", "expected"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_2_with_one_clear_message(run_cli, tmp_path, args, expected):
    code, out, err = run_cli("train", "trainer.progress=none", *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 3, err
    assert expected in err
    assert "Traceback" not in err and "Traceback" not in out
    assert not (tmp_path / "outputs").exists(), "a rejected config must leave nothing under outputs/"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_is_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli("train", "trainer.device=cuda")
    assert code == 2
    assert err.strip() == "nnexp: error: trainer.device=cuda: CUDA is not available on this machine; allowed here: auto, cpu"
    assert not (tmp_path / "outputs").exists()


def test_explicit_run_dir_is_not_left_behind_on_a_config_error(run_cli, tmp_path):
    code, _, _ = run_cli("train", "optimizer.lr=-1", f"hydra.run.dir={tmp_path / 'mine'}")
    assert code == 2
    assert not (tmp_path / "mine").exists()


def test_real_process_exit_codes(tmp_path):
    """Through the real entry point: out-of-range value and Hydra's own errors both exit 2."""
    for args, expected in ((["trainer.epochs=0"], "trainer.epochs=0"), (["model=nope"], "model/nope"),
                           (["optimizer.lr=-1"], "optimizer.lr=-1")):
        proc = run_subprocess("train", *args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_logging_still_works_after_a_rejected_run(run_cli, tmp_path):
    """The rejected run's folder is gone; a later log line in the same process must not try to open it."""
    import logging

    code, _, _ = run_cli("train", "trainer.epochs=0")
    assert code == 2 and not (tmp_path / "outputs").exists()
    logging.getLogger("nnexp.test").warning("still logging")  # raised FileNotFoundError before the fix
    assert not (tmp_path / "outputs").exists()


def test_malformed_expectation_exits_2_before_running(run_cli, tmp_path):
    code, _, err = run_cli("train", 'expect=["final.val/acc"]')
    assert code == 2 and err.strip().startswith("nnexp: error: expect[0]: 'final.val/acc' is not 'LEFT OP RIGHT'")
    assert not (tmp_path / "outputs").exists()


def test_expectations_are_checked_and_stored(run_cli, tmp_path):
    code, out, _ = run_cli("train", "dataset=xor", "trainer.epochs=2", "trainer.progress=none",
                           'expect=["epochs_run == 2","final.val/acc > 1"]', f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0  # a failed claim is reported, not a crash
    checks = json.loads((tmp_path / "r" / "summary.json").read_text())["checks"]
    assert [(c["expect"], c["pass"]) for c in checks] == [("epochs_run == 2", True), ("final.val/acc > 1", False)]
    assert "Check PASS: epochs_run == 2" in out and "Check FAIL: final.val/acc > 1" in out
