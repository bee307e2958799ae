"""Build everything a run trains with from the composed config; nothing is written yet.

Every component comes from its config group through ``hydra.utils.instantiate``
and its ``_target_``: dataset, model, optimizer and scheduler (``_partial_: true``,
nnexp adds the parameters or the optimizer), early stopping. Values known only
at run time (input shape, number of outputs, parameters) are passed as keyword
arguments; constructors get plain Python values, never config objects. A
constructor that rejects its arguments becomes one line naming the config key
(exit 2).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from nnexp import distributed, options, validate
from nnexp.anomaly import AnomalyWatch
from nnexp.context import RunContext, cores
from nnexp.data import Data, Split, limit
from nnexp.diagnosis import RunFacts
from nnexp.distributed import Dist
from nnexp.early_stopping import EarlyStopping
from nnexp.errors import ConfigError, NnexpError, OptionError
from nnexp.loop import FitSettings
from nnexp.losses import Objective, make_objective
from nnexp.models import count_parameters, is_linear
from nnexp.threads import auto_threads
from nnexp.train_state import TrainState

log = logging.getLogger("nnexp")


@dataclass
class Components:
    """What a run trains with, built and on its device."""
    device: torch.device
    ranks: Dist  # one process, or this process's place among the DDP ranks
    data: Data
    objective: Objective
    model: torch.nn.Module  # the plain model: checkpoints, pictures and evaluation use it
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    stopper: EarlyStopping
    settings: FitSettings  # the loop's settings, the loss scaler among them
    state: TrainState  # where training stands: new, or restored from a checkpoint
    config: dict[str, Any]  # the resolved config: checkpoints carry it, its hash names the run
    facts: RunFacts  # what the diagnosis needs to know of the run: its choices, keys, a linear model or not
    threads: str = ""  # the torch threads and why, for the run's log line

    @property
    def num_params(self) -> int:
        return count_parameters(self.model)


def build(cfg: DictConfig, ctx: RunContext) -> Components:
    """The components of the run ``cfg`` describes. Raises ConfigError (one line naming the key, file or device)
    for anything that does not fit; writes nothing."""
    tc, reg = cfg.trainer, cfg.regularizer
    check_signature_keys(cfg, ctx)
    if tc.strategy == "ddp" and ctx.multirun:
        raise ConfigError("trainer.strategy=ddp trains one run over several processes; it cannot be a job of a "
                          "sweep (-m): start each run with torchrun")
    check_anomaly_mode(tc.detect_anomaly, tc.strategy, tc.compile)
    ranks, device = distributed.setup(tc.strategy, select_device(tc.device))
    configure_torch(tc.threads, tc.seed, tc.deterministic, ctx.parallel_jobs)
    precision = check_precision(str(tc.precision), device)
    stopper = component("regularizer.early_stopping", reg.early_stopping)  # before any data: its keys are cheap
    model_class = _model_class(cfg.model)
    data = limit(component("dataset", cfg.dataset), batch_size=tc.batch_size, eval_batch_size=tc.eval_batch_size,
                 limit_batches=tc.limit_batches, overfit_batches=tc.overfit_batches)  # debug=fast, debug=overfit
    objective = make_objective(cfg.loss, data.task, data.num_classes, data.target_dim, data.per_step,
                               model_default=getattr(model_class, "default_loss", None), tolerance=data.tolerance)
    if stopper.monitor.endswith("/acc") and objective.correct is None:
        raise ConfigError(f"regularizer.early_stopping.monitor={stopper.monitor}: a regression dataset has no "
                          "accuracy; allowed: train/loss, val/loss")
    model_name = ctx.choices.get("model") or cfg.model._target_
    model = component("model", cfg.model, **_data_facts(model_class, data, objective.num_outputs, model_name))
    model = model.to(device)
    threads = choose_threads(tc.threads, model, data, tc.batch_size, device, ctx.parallel_jobs)
    with one_line("optimizer"):
        make_optimizer = instantiate(cfg.optimizer, _convert_="all")  # a partial: the parameters come next
        optimizer = make_optimizer(param_groups(model, make_optimizer.keywords.get("weight_decay") or 0.0))
    scheduler = None
    if cfg.scheduler.get("_target_") is not None:
        with one_line("scheduler"):
            scheduler = instantiate(cfg.scheduler, _convert_="all")(optimizer)
    data, model = _layout(data.to(device), model, tc.channels_last)
    settings = FitSettings(epochs=tc.epochs, batch_size=tc.batch_size, eval_batch_size=tc.eval_batch_size,
                           grad_clip=tc.grad_clip, l1=reg.l1, seed=tc.seed, dist=ranks, precision=precision,
                           scaler=torch.amp.GradScaler("cuda", enabled=precision == "16"),
                           check_every_step=reads_loss_every_step(device) or tc.detect_anomaly,
                           anomaly=AnomalyWatch(model) if tc.detect_anomaly else None)
    # validation passes count the confusion matrix as they go (not under DDP: there each rank counts its
    # share, and one pass at the end draws it)
    if tc.confusion_matrix and tc.tensorboard and data.task == "classification" and not ranks.active:
        settings.confusion_classes = data.num_classes
    config = OmegaConf.to_container(cfg, resolve=True)
    facts = RunFacts.of(config, ctx.choices, linear=is_linear(model) and data.task == "classification")
    return Components(device, ranks, data, objective, model, optimizer, scheduler, stopper, settings,
                      TrainState.new(tc.seed), config, facts, threads)


def check_signature_keys(cfg: DictConfig, ctx: RunContext) -> None:
    """Every key of a component nnexp does not ship (a user's own model, torch's optimizers and schedulers)
    must be an argument of its target (unless it takes ``**kwargs``): one line naming the key, before anything
    is built. nnexp's own components were checked before torch was imported (nnexp/validate.py)."""
    for path in validate.COMPONENTS:
        node = OmegaConf.select(cfg, path, default=None, throw_on_missing=False)
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        if target is None or options.of(str(target)) is not None:
            continue
        try:
            made = get_object(str(target))
        except Exception:  # noqa: BLE001 - Hydra raises ImportError or a wrapped one: the build names it
            continue
        validate.unknown_keys(path, node, validate.signature_keys(made), validate.owner(path, ctx.choices))


def select_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.device={name}: CUDA is not available on this machine; "
                              "allowed here: auto, cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"trainer.device={name}: only {torch.cuda.device_count()} CUDA device(s) here; "
                              f"allowed: cuda:0..cuda:{torch.cuda.device_count() - 1}")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.device=mps: Apple MPS is not available on this machine; allowed here: auto, cpu")
    return torch.device(name)


def configure_torch(threads: int, seed: int, deterministic: bool, parallel_jobs: int = 1) -> None:
    """``threads`` 0: the cores this process may use, shared out among the jobs running at once (until the
    model is built: then :func:`choose_threads` decides from its size)."""
    torch.set_num_threads(threads or max(1, cores() // parallel_jobs))
    # Weight decay drives unused weights (digits' blank border pixels) toward 0 through denormal
    # floats, which x86 CPUs compute in slow microcode; flushed to 0, the L2 arm of
    # experiment=mitigations takes half the time with identical metrics (benchmarks/RESULTS_loop.md).
    # A no-op where unsupported.
    torch.set_flush_denormal(True)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def choose_threads(threads: int, model: torch.nn.Module, data: Data, batch_size: int, device: torch.device,
                   parallel_jobs: int = 1) -> str:
    """``trainer.threads=N`` as given; 0 on the CPU: one thread unless the model's layers are large
    (nnexp/threads.py). Returns the log line's words."""
    available = max(1, cores() // parallel_jobs)
    if threads:
        torch.set_num_threads(threads)
        return f"{threads} torch thread{'s' if threads > 1 else ''} (trainer.threads={threads})"
    if device.type != "cpu":  # the device does the work; the CPU threads only feed it
        torch.set_num_threads(available)
        return f"{available} torch thread{'s' if available > 1 else ''} (auto: training on {device.type})"
    count, why = auto_threads(model, data.train.x[:1], batch_size, available)
    torch.set_num_threads(count)
    return f"{count} torch thread{'s' if count > 1 else ''} ({why})"


def check_anomaly_mode(detect_anomaly: bool, strategy: str, compile: bool) -> None:
    """trainer.detect_anomaly watches one process's eager model: its hooks would not see inside a compiled
    graph, and a backward pass that stops on one DDP rank would leave the others waiting for it."""
    if detect_anomaly and strategy == "ddp":
        raise ConfigError("trainer.detect_anomaly=true watches one process; it cannot run with trainer.strategy=ddp")
    if detect_anomaly and compile:
        raise ConfigError("trainer.detect_anomaly=true watches the model's modules as they run; "
                          "use it with trainer.compile=false")


def reads_loss_every_step(device: torch.device) -> bool:
    """Check each step's loss for NaN/Inf before its optimizer step? Reading a number from the device makes
    the host wait for it: free on the CPU, a stall at every step on a GPU (there the loop checks at the
    epoch's end and undoes the epoch instead: nnexp/loop.py)."""
    return device.type == "cpu"


def check_precision(precision: str, device: torch.device) -> str:
    if precision == "16" and device.type != "cuda":
        raise ConfigError(f"trainer.precision=16 needs a CUDA GPU (float16 autocast with a GradScaler); this run is "
                          f"on {device.type}: use trainer.precision=bf16 or 32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("trainer.precision=bf16: this GPU has no bfloat16; use trainer.precision=16 or 32")
    return precision


@contextlib.contextmanager
def one_line(group: str) -> Iterator[None]:
    """Errors while building ``group`` become one ConfigError naming the group (and the key, where known)."""
    try:
        yield
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, NnexpError):
            raise cause from None
        if isinstance(cause, OptionError):  # one argument out of range: name its full key
            raise ConfigError(cause.in_group(group)) from None
        if cause is None:  # Hydra could not import the _target_
            raise ConfigError(f"{group}._target_: {str(exc).splitlines()[0]}") from None
        # a constructor that rejects its arguments: the config of this group is wrong
        kind = "" if isinstance(cause, (ValueError, TypeError)) else f"{type(cause).__name__}: "
        raise ConfigError(f"{group}: {kind}{cause}") from None
    except NnexpError:
        raise
    except OptionError as exc:
        raise ConfigError(exc.in_group(group)) from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ConfigError(f"{group}: {exc}") from None


def component(group: str, node: DictConfig, **runtime: Any) -> Any:
    """``instantiate(node)`` with plain Python arguments (``_convert_="all"``) and ``runtime`` keyword
    arguments, its errors one line naming ``group``."""
    with one_line(group):
        return instantiate(node, _convert_="all", **runtime)


def _model_class(node: DictConfig) -> Any:
    try:
        return get_object(node._target_)
    except Exception as exc:  # Hydra raises ImportError or a wrapped one
        first = str(exc).splitlines()[0]
        raise ConfigError(f"model._target_={node._target_}: cannot import it ({first})") from None


def _data_facts(model_class: Any, data: Data, num_outputs: int, model_name: str) -> dict[str, Any]:
    """Run-time facts about the data for the model constructor.

    Every model takes ``input_shape`` and ``num_outputs``; sequence models also
    declare ``vocab_size`` (token inputs), ``per_step`` (a prediction per time
    step) and ``causal`` (must not look ahead). A model that does not declare
    what the data needs cannot read that data: a config error, not a crash.
    """
    accepts = inspect.signature(model_class).parameters
    kwargs: dict[str, Any] = {"input_shape": data.input_shape, "num_outputs": num_outputs}
    needs = {"vocab_size": data.vocab_size, "per_step": data.per_step, "causal": data.next_token}
    for key, value in needs.items():
        if key in accepts:
            if key != "causal" or value:  # next-token data forces causal; otherwise the model's own setting
                kwargs[key] = value
        elif value:
            what = {"vocab_size": "token sequences", "per_step": "a target per time step",
                    "causal": "next-token targets"}[key]
            raise ConfigError(f"model={model_name} cannot handle {what} (dataset={data.name}); "
                              "allowed: a sequence model such as model=lstm or model=transformer")
    return kwargs


def param_groups(model: torch.nn.Module, weight_decay: float = 1.0) -> list[dict[str, Any]]:
    """Weight decay (L2) acts on weights only; biases and norm scales (1-D) are never decayed.

    Without weight decay there is nothing to tell apart: one group, so the optimizer's
    step runs once per step rather than once per group.
    """
    if not weight_decay:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups: list[dict[str, Any]] = [{"params": decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def _layout(data: Data, model: torch.nn.Module, channels_last: bool) -> tuple[Data, torch.nn.Module]:
    """``trainer.channels_last``: images (N, C, H, W) in NHWC memory, for the model and the data alike."""
    if not channels_last:
        return data, model
    if data.train.x.ndim != 4:
        log.warning("trainer.channels_last applies to images (N, C, H, W); %s inputs are %s: ignored",
                    data.name, tuple(data.train.x.shape[1:]))
        return data, model
    splits = {name: Split(split.x.contiguous(memory_format=torch.channels_last), split.y)
              for name in ("train", "val", "test") if (split := getattr(data, name)) is not None}
    return replace(data, **splits), model.to(memory_format=torch.channels_last)


def wrap(model: torch.nn.Module, ranks: Dist, device: torch.device, compile: bool) -> torch.nn.Module:
    """What fit() trains: the model itself, or its DDP wrapper (averages gradients), or torch.compile's."""
    trained = model
    if ranks.active:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        if device.type == "cpu":
            log.warning("trainer.compile on CPU: compiling takes tens of seconds before the first step; it pays "
                        "off only for long runs (benchmarks/RESULTS_speed_options.md)")
        trained = torch.compile(trained)
    return trained
