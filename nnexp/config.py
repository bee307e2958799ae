"""The config schema, where the config tree lives, and the range checks.

Importing this module registers the schema and the ``nnexp_uid`` resolver with
Hydra/OmegaConf. It must stay free of torch: ``nnexp train --help`` and
``--cfg`` import it and nothing heavier.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from nnexp.checks import parse
from nnexp.errors import ConfigError, show

LOSSES = ("auto", "cross_entropy", "nll", "bce", "mse", "perceptron")
DEVICES = ("auto", "cpu", "cuda", "mps")
PROGRESS = ("auto", "rich", "plain", "none")
MAX_SEED = 2**32 - 1  # the largest seed numpy.random.seed accepts


@dataclass
class EarlyStoppingConf:
    _target_: str = "nnexp.early_stopping.EarlyStopping"  # checks its own options (one validation path)
    enabled: bool = False
    monitor: str = "val/loss"
    mode: str = "min"
    patience: int = 10
    min_delta: float = 0.0
    restore_best: bool = True


@dataclass
class RegularizerConf:
    weight_decay: float = 0.0
    l1: float = 0.0
    dropout: float = 0.0
    early_stopping: EarlyStoppingConf = field(default_factory=EarlyStoppingConf)


@dataclass
class TrainerConf:
    epochs: int = 100
    batch_size: int = 32
    eval_batch_size: int = 1024
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    grad_clip: float | None = None
    threads: int = 0
    checkpoints: bool = True
    checkpoint_every_s: float = 5.0  # last.pt at most every N seconds of wall time (and at the end); 0 = every epoch
    progress: str = "auto"
    pictures_every: int = 20  # epochs between decision-boundary / attention images; 0 = never
    histograms_every: int = 20  # epochs between weight/grad histograms and grad_norm scalars; 0 = never
    confusion_matrix: bool = True  # validation confusion matrix at the end of a classification run
    tensorboard: bool = True  # false: no event file (metrics.csv and summary.json are still written)
    log_every_n_steps: int = 0  # > 0: also log train/loss_step every N optimizer steps (one host sync each)
    resume: str | None = None  # null | auto | a run folder or checkpoint file (nnexp/lifecycle.py)
    resume_finished: bool = False  # true: trainer.resume continues a run that had finished (early stopped, ...)
    resume_config: str = "same"  # same: resuming with another config is refused | new: the new values apply
    strategy: str = "auto"  # auto: one process | ddp: DistributedDataParallel under torchrun
    precision: str = "32"  # 32 | bf16 | 16 (autocast; 16 with a GradScaler, CUDA only)
    channels_last: bool = False  # image models: NHWC memory layout (faster convolutions on recent GPUs)
    compile: bool = False  # torch.compile the model (off: compiling takes tens of seconds before the first step)
    limit_batches: int = 0  # > 0: train and validate on at most that many batches per epoch (debug=fast); 0 = all
    overfit_batches: int = 0  # > 0: train on the first N batches only, validate on those same samples (debug=overfit)
    detect_anomaly: bool = False  # name the first module or autograd function that made a NaN/Inf (debug=anomaly)


@dataclass
class TrainConf:
    """Top-level schema: groups with a ``_target_`` are free-form, run-level keys are typed."""

    dataset: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    agent: Any = None  # agent=dqn: learn from reward in an environment (nnexp/rl/); null: supervised training
    regularizer: RegularizerConf = field(default_factory=RegularizerConf)
    trainer: TrainerConf = field(default_factory=TrainerConf)
    loss: str = "auto"
    expect: list[str] = field(default_factory=list)  # claims checked after the run (nnexp/checks.py)


@dataclass
class LrFindConf:
    """``nnexp lr-find``'s own keys (conf/lr_find.yaml says what each does)."""
    start: float = 1e-7
    end: float = 10.0
    steps: int = 200
    stop_factor: float = 4.0
    smoothing: float = 0.98
    skip_start: int = 10


@dataclass
class LrFindRunConf(TrainConf):
    """The schema of ``nnexp lr-find``: the training config plus the ``lr_find`` node. It takes the place of
    ``nnexp_schema`` in train.yaml's defaults for that command only, so a training run's config (and its
    fingerprint) has no such node."""
    lr_find: LrFindConf = field(default_factory=LrFindConf)


_UID = secrets.token_hex(3)


def new_run_id() -> None:
    """Draw the random suffix of this invocation's run folder (``${nnexp_uid:}`` in train.yaml).

    It stays fixed while Hydra resolves the run and sweep dirs of one invocation,
    so two runs started in the same second never share a folder.
    """
    global _UID
    _UID = secrets.token_hex(3)


def _uid() -> str:
    return _UID


def register(schema: type = TrainConf) -> None:
    """Register the schema (``LrFindRunConf`` for ``nnexp lr-find``) and resolvers; safe to call more than once."""
    ConfigStore.instance().store(name="nnexp_schema", node=schema)
    if not OmegaConf.has_resolver("nnexp_uid"):
        # cached in the config, like Hydra's ${now:}: Hydra copies the cache into each job's config, so a
        # launcher that runs jobs in other processes (joblib, submitit) still names one sweep folder
        OmegaConf.register_new_resolver("nnexp_uid", _uid, use_cache=True)
    if not OmegaConf.has_resolver("nnexp_flat"):
        OmegaConf.register_new_resolver("nnexp_flat", flat_name)
    if not OmegaConf.has_resolver("nnexp_label"):
        OmegaConf.register_new_resolver("nnexp_label", run_label)


LABEL_LENGTH = 80  # the readable end of a run folder's name, at most this long


def run_label(model: str, dataset: str, overrides: str = "", agent: str = "") -> str:
    """The readable end of a single run's folder name (``${nnexp_label:...}`` in train.yaml):
    ``mlp-moons`` then the other overrides as Hydra's override_dirname lists them, ``model.hidden=16,16``;
    characters a shell or a file system would trip over dropped, at most LABEL_LENGTH characters. An agent's run
    (``agent``: its option) learns from no dataset: ``dqn-mlp``."""
    learner = agent not in (None, "", "None")
    others = [o for o in str(overrides).split(",") if o and not o.startswith(("model=", "dataset=", "agent="))]
    # override_dirname separates overrides by commas, and a list value holds commas too: rejoin its items
    parts: list[str] = []
    for item in others:
        if parts and "=" not in item:
            parts[-1] += "," + item
        else:
            parts.append(item)
    named = "-".join(str(c) for c in ((agent, model) if learner else (model, dataset))
                     if c not in (None, "", "None"))  # a group taken out: ~model
    text = "_".join([named or "run", *parts])
    text = "".join(c for c in text.replace("/", "-").replace(" ", "_") if c.isalnum() or c in "._=,+-")
    return text[:LABEL_LENGTH].rstrip("_,=.-")


def flat_name(text: str) -> str:
    """One folder name from overrides: a '/' in a value or group (dataset.path=/a/b) must not nest folders."""
    return str(text).replace("/", "-")


def config_dir() -> Path:
    """The packaged config tree (wheel installs), else the repository's ``conf/`` (editable)."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    if (packaged / "train.yaml").is_file():
        return packaged
    return here.parent / "conf"


# ---------------------------------------------------------------------------
# Range checks: run before any data is loaded. Each rule names the key, a
# predicate, and the allowed range in words for the error message. The table holds
# the run-level keys and the options of torch's own optimizers and schedulers, whose
# errors would not name our keys. A model, a dataset and our optimizer factories
# check their own options when they are built (OptionError, nnexp/errors.py).


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive(v: Any) -> bool:
    return _finite(v) and v > 0


def _non_negative(v: Any) -> bool:
    return _finite(v) and v >= 0


def _int_at_least(n: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= n


def _device(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    base, _, index = v.partition(":")
    return base in DEVICES and (not index or (base == "cuda" and index.isdigit()))


_RULES: list[tuple[str, Any, str]] = [
    ("trainer.epochs", _int_at_least(1), "an integer >= 1"),
    ("trainer.batch_size", _int_at_least(1), "an integer >= 1"),
    ("trainer.eval_batch_size", _int_at_least(1), "an integer >= 1"),
    ("trainer.threads", _int_at_least(0), "an integer >= 0 (0 = auto: chosen from the model's layer sizes)"),
    # numpy's global generator takes 32-bit seeds (torch's would take 64-bit ones)
    ("trainer.seed", lambda v: _int_at_least(0)(v) and v <= MAX_SEED, f"an integer in [0, {MAX_SEED}]"),
    ("trainer.grad_clip", lambda v: v is None or _positive(v), "null or a finite number > 0"),
    ("trainer.device", _device, "one of auto, cpu, cuda, cuda:N, mps"),
    ("trainer.checkpoint_every_s", _non_negative, "a finite number >= 0 (seconds; 0 = every epoch)"),
    ("trainer.progress", lambda v: v in PROGRESS, "one of " + ", ".join(PROGRESS)),
    ("trainer.pictures_every", _int_at_least(0), "an integer >= 0 (epochs; 0 = never)"),
    ("trainer.histograms_every", _int_at_least(0), "an integer >= 0 (epochs; 0 = never)"),
    ("trainer.confusion_matrix", lambda v: isinstance(v, bool), "true or false"),
    ("trainer.tensorboard", lambda v: isinstance(v, bool), "true or false"),
    ("trainer.log_every_n_steps", _int_at_least(0), "an integer >= 0 (optimizer steps; 0 = once per epoch only)"),
    ("trainer.strategy", lambda v: v in ("auto", "ddp"), "one of auto, ddp (ddp under torchrun)"),
    ("trainer.precision", lambda v: str(v) in ("32", "bf16", "16"), "one of 32, bf16, 16"),
    ("trainer.channels_last", lambda v: isinstance(v, bool), "true or false"),
    ("trainer.compile", lambda v: isinstance(v, bool), "true or false"),
    ("trainer.limit_batches", _int_at_least(0), "an integer >= 0 (batches per epoch; 0 = all)"),
    ("trainer.overfit_batches", _int_at_least(0), "an integer >= 0 (batches; 0 = off)"),
    ("trainer.detect_anomaly", lambda v: isinstance(v, bool), "true or false"),
    ("trainer.resume", lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
     "null, auto, or a run folder or checkpoint file"),
    ("trainer.resume_finished", lambda v: isinstance(v, bool), "true or false"),
    ("trainer.resume_config", lambda v: v in ("same", "new"), "same or new"),
    ("loss", lambda v: v in LOSSES, "one of " + ", ".join(LOSSES)),
    ("optimizer.lr", _positive, "a finite number > 0"),
    ("optimizer.momentum", lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("optimizer.alpha", lambda v: _finite(v) and 0 < v < 1, "a number in (0, 1)"),
    ("optimizer.eps", _positive, "a finite number > 0"),
    ("optimizer.betas", lambda v: isinstance(v, list) and len(v) == 2 and all(_finite(b) and 0 <= b < 1 for b in v),
     "two numbers in [0, 1), e.g. [0.9,0.999]"),
    ("regularizer.weight_decay", _non_negative, "a finite number >= 0"),
    ("regularizer.l1", _non_negative, "a finite number >= 0"),
    ("regularizer.dropout", lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("scheduler.step_size", _int_at_least(1), "an integer >= 1 (epochs)"),
    ("scheduler.gamma", lambda v: _finite(v) and 0 < v <= 1, "a number in (0, 1]"),
    ("scheduler.factor", lambda v: _finite(v) and 0 < v < 1, "a number in (0, 1)"),
    ("scheduler.patience", _int_at_least(0), "an integer >= 0 (epochs)"),
    ("scheduler.T_max", _int_at_least(1), "an integer >= 1 (epochs)"),
    # nnexp lr-find (absent from a training run's config: skipped there)
    ("lr_find.start", _positive, "a finite number > 0"),
    ("lr_find.end", _positive, "a finite number > 0"),
    ("lr_find.steps", _int_at_least(2), "an integer >= 2 (batches)"),
    ("lr_find.stop_factor", lambda v: _finite(v) and v > 1, "a finite number > 1"),
    ("lr_find.smoothing", lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1) (0 = no smoothing)"),
    ("lr_find.skip_start", _int_at_least(0), "an integer >= 0 (steps)"),
]


def check_ranges(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first unset mandatory key, or the first value out of range."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} must be set (it is ??? in the config); add {missing[0]}=VALUE")
    for key, ok, allowed in _RULES:
        node = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if node is _ABSENT:
            continue
        value = OmegaConf.to_container(node) if OmegaConf.is_config(node) else node
        if not ok(value):
            raise ConfigError(f"{key}={show(value)} is out of range; allowed: {allowed}")
    for i, text in enumerate(OmegaConf.select(cfg, "expect", default=None) or []):
        try:
            parse(text)
        except ValueError as exc:
            raise ConfigError(f"expect[{i}]: {exc}") from None


_ABSENT = object()

