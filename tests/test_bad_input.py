"""Bad input: one clear message naming the key, exit code 2, no traceback, nothing left behind; before torch is
imported, so at once; a misspelt name gets the closest valid ones ("did you mean")."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
import torch
from conftest import REPO, compose_cfg, run_subprocess, train_rows
from omegaconf import OmegaConf

from nnexp import validate
from nnexp.config import TrainerConf

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
    (["debug=slow"], "nnexp: error: debug=slow is not an option of debug (options: anomaly, fast, overfit)"),
    (["trainer.seed=x"], "trainer.seed=x\nValue 'x' of type 'str' could not be converted to Integer"),
    (["trainer.deterministic=maybe"], "trainer.deterministic=maybe\nValue 'maybe' is not a valid bool"),
    (["trainer.nope=1"], "trainer.nope is not a key of trainer"),
    (["optimizer.lr=-1"], "optimizer.lr=-1 is out of range; allowed: a finite number > 0"),
    (["optimizer.lr=0"], "optimizer.lr=0"),
    (["optimizer.lr=nan"], "optimizer.lr=nan"),
    (["optimizer.lr=inf"], "optimizer.lr=inf"),
    (["optimizer.lr=fast"], "optimizer.lr='fast'"),
    (["optimizer=momentum", "optimizer.momentum=1.5"], "optimizer.momentum"),
    (["optimizer=nadam"], "optimizer=nadam is not an option of optimizer"),
    (["optimizer.betas=[0.9]"],
     "optimizer.betas=[0.9] is out of range; allowed: two numbers in [0, 1), e.g. [0.9,0.999]"),
    (["optimizer.betas=[0.9,1.0]"], "optimizer.betas=[0.9, 1.0] is out of range"),
    (["model=transformer9"], "model=transformer9 is not an option of model"),
    (["model.activation=swish"], "model.activation='swish'"),
    (["model.hidden=[0]"], "model.hidden=[0] is out of range; allowed: a list of integers >= 1, e.g. [64,64]"),
    (["model.init=kaiming"], "model.init='kaiming' is out of range; allowed: one of torch, he, xavier"),
    (["dataset=adding", "model=lstm", "dataset.tolerance=0"], "dataset.tolerance=0 is out of range"),
    (["model.hidden=16"], "model.hidden=16 is out of range; allowed: a list of integers >= 1"),
    (["model.dropout=1.0"], "model.dropout"),
    (["model.nope=3"], "model.nope"),
    (["dataset=imagenet"], "dataset=imagenet is not an option of dataset (options: adding, cifar10,"),
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
    (["regularizer=lasso"], "regularizer=lasso is not an option of regularizer"),
    (["regularizer.dropout=1.0"], "regularizer.dropout=1.0 is out of range; allowed: a number in [0, 1)"),
    (["regularizer.dropout=-0.1"], "regularizer.dropout"),
    (["regularizer.weight_decay=-1"], "regularizer.weight_decay"),
    (["regularizer.l1=-0.1"], "regularizer.l1"),
    (["regularizer.early_stopping.patience=-1"], "regularizer.early_stopping.patience"),
    (["regularizer.early_stopping.min_delta=-1"], "regularizer.early_stopping.min_delta"),
    (["regularizer.early_stopping.mode=up"], "regularizer.early_stopping.mode"),
    (["regularizer.early_stopping.monitor=val/f1"], "regularizer.early_stopping.monitor"),
    (["scheduler=warmup"], "scheduler=warmup is not an option of scheduler"),
    (["scheduler=step", "scheduler.step_size=0"], "scheduler.step_size"),
    (["scheduler=step", "scheduler.gamma=2"], "scheduler.gamma"),
    (["scheduler=plateau", "scheduler.factor=1"], "scheduler.factor"),
    (["loss=hinge"], "loss='hinge'"),
    (["loss=bce", "dataset=spirals"], "loss=bce needs exactly 2 classes"),
    (["experiment=nope"], "experiment=nope is not an option of experiment"),
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
    (["model=rnn", "dataset=adding", "model.num_layers=0"], "model.num_layers=0"),
    (["model=rnn", "dataset=adding", "model.hidden_size=0"], "model.hidden_size=0 is out of range"),
    (["model=rnn", "dataset=adding", "model.cell=lstm"], "model.cell='lstm' is out of range"),
    (["model=rnn", "dataset=adding", "model.bidirectional=both"], "model.bidirectional='both' is out of range"),
    (["model=rnn", "dataset=parity", "model.embed_dim=0"], "model.embed_dim=0 is out of range"),
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


# The rows whose message needs the built data (its classes, its inputs' shape, its file): torch is imported first.
# Every other row is refused before torch is imported (nnexp/validate.py).
BUILT = {"loss=bce dataset=spirals", "dataset=text model=lstm dataset.path=nowhere.txt",
         "model=perceptron dataset=digits", "loss=perceptron dataset=spirals", "model=lenet5 dataset=moons"}

# A misspelt name (a group, a group's option, a key at any depth, an experiment, one of Hydra's groups): the
# line that names it, and the closest valid names (args, the line's start, what "did you mean" offers)
TYPOS = [
    # a group's option
    (["model=resnt"], "model=resnt is not an option of model", "model=resnet"),
    (["model=transfomer"], "model=transfomer is not an option of model", "model=transformer"),
    (["model=MLP"], "model=MLP is not an option of model", "model=mlp"),
    (["optimizer=adamm"], "optimizer=adamm is not an option of optimizer", "optimizer=adam or optimizer=adamw"),
    (["optimizer=sdg"], "optimizer=sdg is not an option of optimizer", "optimizer=sgd"),
    (["dataset=mnsit"], "dataset=mnsit is not an option of dataset", "dataset=mnist"),
    (["dataset=spiral"], "dataset=spiral is not an option of dataset", "dataset=spirals"),
    (["dataset=fashion-mnist"], "dataset=fashion-mnist is not an option of dataset", "dataset=fashion_mnist"),
    (["regularizer=dropuot"], "regularizer=dropuot is not an option of regularizer", "regularizer=dropout"),
    (["regularizer=early-stopping"], "regularizer=early-stopping is not an option of regularizer",
     "regularizer=early_stopping"),
    (["scheduler=cosin"], "scheduler=cosin is not an option of scheduler", "scheduler=cosine"),
    (["scheduler=platue"], "scheduler=platue is not an option of scheduler", "scheduler=plateau"),
    (["hparams_search=mlp_optna"], "hparams_search=mlp_optna is not an option of hparams_search",
     "hparams_search=mlp_optuna"),
    # experiments, and the arms inside them
    (["experiment=overfiting"], "experiment=overfiting is not an option of experiment", "experiment=overfitting"),
    (["experiment=xr"], "experiment=xr is not an option of experiment", "experiment=xor"),
    (["experiment=mitigation"], "experiment=mitigation is not an option of experiment", "experiment=mitigations"),
    (["experiment=deep_net/sigmoid_plan"], "experiment=deep_net/sigmoid_plan is not an option of experiment",
     "experiment=deep_net/sigmoid_plain"),
    (["+experiment/deep_net=sigmoid_plan"], "+experiment/deep_net=sigmoid_plan is not an option of experiment/deep_net",
     "+experiment/deep_net=sigmoid_plain"),
    (["+experiment/mitigation=dropuot"], "+experiment/mitigation=dropuot is not an option of experiment/mitigation",
     "+experiment/mitigation=dropout"),
    (["+experiment/deep_nte=sigmoid_plain"], "experiment/deep_nte is not a config group", "experiment/deep_net"),
    # Hydra's own groups
    (["hydra/launcher=jobib"], "hydra/launcher=jobib is not an option of hydra/launcher", "hydra/launcher=joblib"),
    (["hydra/launcher=submitit-local"], "hydra/launcher=submitit-local is not an option of hydra/launcher",
     "hydra/launcher=submitit_local"),
    (["hydra/launchr=joblib"], "hydra/launchr is not a config group", "hydra/launcher"),
    # group names, and a key without its group
    (["modle=mlp"], "modle is not a config group or key", "model"),
    (["+modle=mlp"], "modle is not a config group or key", "model"),
    (["Model=mlp"], "Model is not a config group or key", "model"),
    (["datset=moons"], "datset is not a config group or key", "dataset"),
    (["optimiser=sgd"], "optimiser is not a config group or key", "optimizer"),
    (["trainr.epochs=3"], "trainr is not a config group or key", "trainer"),
    (["lr=0.1"], "lr is not a config group or key", "optimizer.lr"),
    (["+epochs=5"], "epochs is not a config group or key", "trainer.epochs"),
    # keys, at every depth, with and without +
    (["trainer.epoch=5"], "trainer.epoch is not a key of trainer", "trainer.epochs"),
    (["+trainer.epoch=5"], "trainer.epoch is not a key of trainer", "trainer.epochs"),
    (["++trainer.epoch=5"], "trainer.epoch is not a key of trainer", "trainer.epochs"),
    (["trainer.batchsize=8"], "trainer.batchsize is not a key of trainer", "trainer.batch_size"),
    (["trainer.devcie=cpu"], "trainer.devcie is not a key of trainer", "trainer.device"),
    (["model.hiden=[8]"], "model.hiden is not a key of model", "model.hidden"),
    (["+model.hiden=[8]"], "model.hiden is not a key of model=mlp", "model.hidden"),
    (["model=lstm", "model.hidden=8"], "model.hidden is not a key of model=lstm", "model.hidden_size"),
    (["model=rnn", "model.hiden_size=8"], "model.hiden_size is not a key of model=rnn", "model.hidden_size"),
    (["model=rnnn"], "model=rnnn is not an option of model", "model=rnn"),
    (["model=resnet", "+model.widht=8"], "model.widht is not a key of model=resnet", "model.width"),
    (["model.activaton=tanh"], "model.activaton is not a key of model", "model.activation"),
    (["optimizer.weight_deacy=0.1"], "optimizer.weight_deacy is not a key of optimizer", "optimizer.weight_decay"),
    (["dataset.val_fractoin=0.3"], "dataset.val_fractoin is not a key of dataset", "dataset.val_fraction"),
    (["dataset=rl_policy", "+dataset.episods=10"], "dataset.episods is not a key of dataset=rl_policy",
     "dataset.episodes"),
    (["regularizer.droput=0.5"], "regularizer.droput is not a key of regularizer", "regularizer.dropout"),
    (["regularizer.early_stoping.enabled=true"], "regularizer.early_stoping is not a key of regularizer",
     "regularizer.early_stopping"),
    (["regularizer.early_stopping.patiance=3"], "regularizer.early_stopping.patiance is not a key of "
     "regularizer.early_stopping", "regularizer.early_stopping.patience"),
    (["+regularizer.early_stopping.patiance=3"], "regularizer.early_stopping.patiance is not a key of "
     "regularizer.early_stopping", "regularizer.early_stopping.patience"),
    (["scheduler=step", "scheduler.step=3"], "scheduler.step is not a key of scheduler=step", "scheduler.step_size"),
    (["hydra.run.dri=x"], "hydra.run.dri is not a key of hydra.run", "hydra.run.dir"),
    (["hydra/launcher=joblib", "hydra.launcher.n_job=2"], "hydra.launcher.n_job is not a key of hydra.launcher",
     "hydra.launcher.n_jobs"),
    # a sweep checks every job before it runs one
    (["-m", "model=mlp,resnt"], "model=resnt is not an option of model", "model=resnet"),
    (["-m", "trainer.epoch=1,2"], "trainer.epoch is not a key of trainer", "trainer.epochs"),
]
# a key of torch's own optimizer, checked against its signature when it is built (after torch is imported)
TYPOS_BUILT = [(["optimizer=adamw", "+optimizer.amsgrd=true"], "optimizer.amsgrd is not a key of optimizer=adamw",
                "optimizer.amsgrad")]
CHUNKS = 4  # the tables run in this many processes (pytest-xdist runs them side by side)


def _command(args: list[str]) -> list[str]:
    """``nnexp train`` with its flags (-m) first, then the overrides."""
    flags = [a for a in args if a.startswith("-") and "=" not in a]
    return [*flags, "trainer.progress=none", *[a for a in args if a not in flags]]


def _problems(result: dict, expected: str, torch_allowed: bool = False) -> list[str]:
    """What is wrong with how ``nnexp train`` refused a row: exit 2, one to three lines on stderr containing
    ``expected``, no traceback, nothing under outputs/, and (unless allowed) torch never imported."""
    err, problems = result["err"], []
    if result["torch"] and not torch_allowed:
        problems.append("imported torch before refusing it")
    if result["code"] != 2 and not result["torch"]:
        problems.append(f"exit code {result['code']}")
    if not result["torch"] and not (1 <= len(err.strip().splitlines()) <= 3 and expected in err):
        problems.append(f"printed {err!r}, expected {expected!r}")
    if "Traceback" in err + result["out"]:
        problems.append("a traceback")
    if result["outputs"]:
        problems.append("left outputs/ behind")
    return problems


def _run_table(rows: list[tuple[list[str], str]], built: list[tuple[list[str], str]], tmp_path) -> list[str]:
    results = train_rows([_command(a) for a, _ in rows], tmp_path, after=[_command(a) for a, _ in built])
    lines = []
    for (args, expected), result in zip([*rows, *built], results, strict=True):
        lines += [f"{' '.join(args)}: {p}" for p in _problems(result, expected, torch_allowed=(args, expected) in built)]
    return lines


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_bad_input_exits_2_with_one_clear_message_before_torch(tmp_path, chunk):
    """Each row through the real entry point, in a process where importing torch fails the row: all but the rows
    of BUILT are refused before torch is imported (so in well under a second), the rows of BUILT once it is."""
    table = BAD[chunk::CHUNKS]
    rows = [row for row in table if " ".join(row[0]) not in BUILT]
    built = [row for row in table if " ".join(row[0]) in BUILT]
    problems = _run_table(rows, built, tmp_path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_a_misspelt_name_gets_did_you_mean(tmp_path, chunk):
    """Each typo: one line naming it, the closest valid names, exit 2, no traceback, nothing left behind, no
    advice to add it with + (Hydra's hint): before torch is imported, but for a key of torch's own optimizer."""
    table = [(args, f"nnexp: error: {start}") for args, start, _ in TYPOS[chunk::CHUNKS]]
    built = [(args, f"nnexp: error: {start}") for args, start, _ in TYPOS_BUILT[chunk::CHUNKS]]
    results = train_rows([_command(a) for a, _ in table], tmp_path, after=[_command(a) for a, _ in built])
    problems = []
    for (args, _, meant), (_, start), result in zip([*TYPOS[chunk::CHUNKS], *TYPOS_BUILT[chunk::CHUNKS]],
                                                   [*table, *built], results, strict=True):
        found = _problems(result, start, torch_allowed=(args, start) in built)
        err = result["err"].strip()
        if len(err.splitlines()) != 1 or not err.startswith(start) or f"; did you mean {meant}?" not in err:
            found.append(f"printed {err!r}")
        if "append" in err or "add it with" in err:
            found.append("advises adding it with +")
        problems += [f"{' '.join(args)}: {p}" for p in found]
    assert not problems, "\n".join(problems)


def test_the_typo_table_covers_every_kind_of_name():
    assert len(TYPOS) + len(TYPOS_BUILT) >= 30
    kinds = {"is not an option of": 0, "is not a config group": 0, "is not a key of": 0}
    for _, start, _ in TYPOS:
        for kind in kinds:
            kinds[kind] += kind in start
    assert all(n >= 5 for n in kinds.values()), kinds
    assert any(a[0].startswith("hydra/launcher=") for a, _, _ in TYPOS)
    assert any(a[0].startswith(("experiment=", "+experiment/")) for a, _, _ in TYPOS)


TRAINER_KEYS = len(dataclasses.fields(TrainerConf))
MODELS = ", ".join(sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml")))


@pytest.mark.parametrize(("args", "line"), [
    (["+trainer.epoch=5"], "nnexp: error: trainer.epoch is not a key of trainer; did you mean trainer.epochs? "
                           f"(nnexp train --cfg job -p trainer lists its {TRAINER_KEYS} keys)"),
    (["model=resnt"], "nnexp: error: model=resnt is not an option of model; did you mean model=resnet? "
                      f"(options: {MODELS})"),
    (["model.hiden=[8]"], "nnexp: error: model.hiden is not a key of model; did you mean model.hidden? "
                          "(keys: hidden, activation, dropout, residual, impl, init)"),
    (["model.depth=20"], "nnexp: error: model.depth is not a key of model (keys: hidden, activation, dropout, "
                         "residual, impl, init); it is a key of model=resnet"),
    (["+scheduler.step_size=3"], "nnexp: error: scheduler.step_size is not a key of scheduler=none; "
                                 "scheduler=none reads no keys; it is a key of scheduler=step"),
    # the one case where Hydra's advice is right: the target takes the key, its config file leaves it out
    (["optimizer=sgd", "optimizer.nesterov=true"],
     "nnexp: error: optimizer.nesterov is not in the config of optimizer=sgd, but nnexp.optim.sgd takes it: add it "
     "with +optimizer.nesterov=true"),
])
def test_the_whole_line(run_cli, tmp_path, args, line):
    code, _, err = run_cli("train", "trainer.progress=none", *args)
    assert (code, err.strip()) == (2, line)
    assert not (tmp_path / "outputs").exists()


def test_a_key_the_target_takes_can_be_added_with_plus():
    validate.check(compose_cfg(["optimizer=sgd", "+optimizer.nesterov=true", "optimizer.momentum=0.9"]))


def _shipped_runs() -> list[list[str]]:
    """Each experiment, as each job of its sweep (arms included: +experiment/mitigation=...) where it is one."""
    runs = []
    for path in sorted((REPO / "conf" / "experiment").glob("*.yaml")):
        params = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params") or {}
        values = [[f"{key}={v}" for v in str(params[key]).split(",")] for key in params]
        runs += [[f"experiment={path.stem}", *job] for job in itertools.product(*values)]
    return [*runs, ["hparams_search=mlp_optuna"]]


SHIPPED = _shipped_runs()


@pytest.mark.parametrize("overrides", SHIPPED, ids=[" ".join(o) for o in SHIPPED])
def test_every_shipped_config_passes_the_check(overrides):
    """No key of a shipped config is refused, no option of its components is out of range: each experiment, each
    job of the sweeps they are."""
    cfg = compose_cfg(overrides)
    validate.check_keys(cfg, {})
    for path in validate.COMPONENTS:
        validate.check_options(path, OmegaConf.select(cfg, path))


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
    for args, expected in ((["trainer.epochs=0"], "trainer.epochs=0"), (["model=nope"], "model=nope"),
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
