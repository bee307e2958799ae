"""run(cfg): build everything a run needs from the composed config, train, and write the run directory.

This is the only module that reads a DictConfig: components are built with
``hydra.utils.instantiate`` and get run-time values (input shape, number of
outputs, parameters) as keyword arguments; the loop gets plain settings.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import os
import random
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from nnexp import __version__, distributed, pictures, resume
from nnexp.checkpoint import (
    BackgroundWriter,
    atomic_write,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from nnexp.checks import check_run, parse, split_override, verdict
from nnexp.config import DISPLAY_KEYS, check_ranges
from nnexp.console import Reporter
from nnexp.data import Split
from nnexp.diagnosis import diagnose
from nnexp.early_stopping import EarlyStopping
from nnexp.errors import (
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    ConfigError,
    NnexpError,
    OptionError,
)
from nnexp.loop import FitSettings, TrainState, end_weights, evaluate, fit
from nnexp.losses import make_objective
from nnexp.models import count_parameters
from nnexp.signals import StopSignals
from nnexp.tracking import NullTracker, Tracker

log = logging.getLogger("nnexp")

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


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def jobs_in_parallel() -> int:
    """How many jobs of this sweep run at once on this machine: 1 unless a parallel Hydra launcher runs it."""
    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target.lower():
        n = int(launcher.get("n_jobs") or 1)
        return max(1, _cores() + 1 + n if n < 0 else n)  # joblib: -1 = all cores, -2 = all but one
    if "submitit" in target.lower() and "Local" in target:
        return max(1, int(launcher.get("array_parallelism") or 1))
    return 1


def configure_torch(threads: int, seed: int, deterministic: bool) -> None:
    """``threads`` 0: the cores this process may use, shared out among jobs running at once."""
    torch.set_num_threads(threads or max(1, _cores() // jobs_in_parallel()))
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


def _build(group: str, node: DictConfig, **kwargs: Any) -> Any:
    """instantiate() with errors turned into one line naming the config group.

    Constructors get plain Python values (``_convert_="all"``), never config
    objects; run-time objects such as parameters pass through ``functools.partial``.
    """
    try:
        objects = {k: kwargs.pop(k) for k in ("params", "optimizer") if k in kwargs}
        built = instantiate(node, _convert_="all", _partial_=bool(objects), **kwargs)
        return built(**objects) if objects else built
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, NnexpError):
            raise cause from None
        if cause is None:  # Hydra could not import the _target_
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{group}._target_: {first}") from None
        if isinstance(cause, OptionError):  # one argument out of range: name its full key
            raise ConfigError(cause.in_group(group)) from None
        # a constructor that rejects its arguments: the config of this group is wrong
        kind = "" if isinstance(cause, (ValueError, TypeError)) else f"{type(cause).__name__}: "
        raise ConfigError(f"{group}: {kind}{cause}") from None
    except NnexpError:
        raise
    except OptionError as exc:
        raise ConfigError(exc.in_group(group)) from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ConfigError(f"{group}: {exc}") from None


def _model_target(node: DictConfig) -> Any:
    try:
        return get_object(node._target_)
    except Exception as exc:  # Hydra raises ImportError or a wrapped one
        first = str(exc).splitlines()[0]
        raise ConfigError(f"model._target_={node._target_}: cannot import it ({first})") from None


def _model_kwargs(target: Any, data: Any, num_outputs: int, model_name: str) -> dict[str, Any]:
    """Run-time facts about the data for the model constructor.

    Every model takes ``input_shape`` and ``num_outputs``; sequence models also
    declare ``vocab_size`` (token inputs), ``per_step`` (a prediction per time
    step) and ``causal`` (must not look ahead). A model that does not declare
    what the data needs cannot read that data: a config error, not a crash.
    """
    accepts = inspect.signature(target).parameters
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


def _param_groups(model: torch.nn.Module, weight_decay: float = 1.0) -> list[dict[str, Any]]:
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


def _hparams(choices: dict[str, Any], overrides: list[str], seed: int) -> dict[str, Any]:
    """The run's group choices and every override, as flat values for the HPARAMS tab."""
    out: dict[str, Any] = {g: choices[g] for g in ("model", "dataset", "optimizer", "regularizer", "scheduler")
                           if choices.get(g) is not None}
    out["trainer.seed"] = seed
    for item in overrides:
        key, value = split_override(item)
        if key.startswith("hydra.") or key in out or key in DISPLAY_KEYS:
            continue
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _metrics_at(history: list[dict[str, Any]], epoch: int) -> dict[str, Any]:
    for row in history:
        if row["epoch"] == epoch:
            return {k: row.get(k) for k in ("train/loss", "val/loss", "train/acc", "val/acc",
                                             "grad_norm/first_layer", "grad_norm/last_layer")}
    return {}


def _gap(metrics: dict[str, Any]) -> float | None:
    if metrics.get("val/loss") is None:
        return None
    return metrics["val/loss"] - metrics["train/loss"]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf; keep them readable
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic_write(run_dir / "summary.json", (json.dumps(_json_safe(summary), indent=2) + "\n").encode())


def _public_choices(choices: Any) -> dict[str, Any]:
    """The run's group choices, without Hydra's own (hydra/launcher, ...)."""
    return {k: v for k, v in choices.items() if not k.startswith("hydra/")}


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _in_words(summary: dict[str, Any], stopper: EarlyStopping) -> list[str]:
    """The run told in plain sentences for the terminal and the TensorBoard text tab."""
    lines = []
    best, final = summary["best"], summary["final"]
    b, e, mon = summary["best_epoch"], summary["epochs_run"], summary["monitor"]
    if summary["status"] == "early_stopped":
        lines.append(f"Early stopping: {mon} was best at epoch {b} ({summary['best_value']:.4f}) and did not "
                     f"improve for {stopper.patience} epochs, so the run stopped at epoch {e}"
                     + (f" and restored the weights of epoch {b}." if summary["restored_best"] else "."))
    elif summary["status"] == "completed":
        lines.append(f"Completed all {e} epochs; {mon} was best at epoch {b} ({summary['best_value']:.4f})"
                     + (f", weights of epoch {b} restored." if summary["restored_best"] else "."))
    else:
        lines.append(f"Run {summary['status']}: {summary.get('message', '')}.")
    for label, m, ep in (("best", best, b), ("final", final, e)):
        if m:
            acc = (f"; train/acc {m['train/acc']:.3f} vs val/acc {m['val/acc']:.3f}"
                   if m.get("train/acc") is not None else "")
            gap = _gap(m)
            lines.append(f"At the {label} epoch ({ep}): train/loss {m['train/loss']:.4f} vs val/loss "
                         f"{m['val/loss']:.4f}, generalization gap {gap:.4f}{acc}.")
    if summary.get("test"):
        t = summary["test"]
        acc = f", test/acc {t['test/acc']:.3f}" if t.get("test/acc") is not None else ""
        weights = f"the restored weights of epoch {b}" if summary["restored_best"] else f"the weights of epoch {e}"
        lines.append(f"Held-out test set with {weights}: test/loss {t['test/loss']:.4f}{acc}.")
    if summary.get("eval"):
        lines.append("In the environment (eval/* in TensorBoard, \"eval\" in summary.json): "
                     + ", ".join(f"{k} {_num(v)}" for k, v in summary["eval"].items()) + ".")
    d = summary["diagnosis"]
    lines.append(f"Diagnosis: {d['label']} ({d['reason']}). Suggestion: {d['suggestion']}.")
    for c in summary.get("checks", []):
        lines.append(f"Check {verdict(c['pass'])}: {c['expect']} (here {_num(c['left'])} vs {_num(c['right'])}).")
    if any(parse(e).across_jobs for e in summary.get("expect", [])):
        lines.append("Claims that compare the jobs of a sweep are checked by: nnexp report <sweep dir>.")
    return lines


def run(cfg: DictConfig, run_dir: Path | None = None, overrides: list[str] | None = None,
        choices: dict[str, Any] | None = None, logdir: str | None = None) -> dict[str, Any]:
    """Train one configuration; returns the summary that is also written to ``summary.json``."""
    check_ranges(cfg)  # before any data is loaded
    if run_dir is None:
        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        overrides = list(hc.overrides.task) if overrides is None else overrides
        choices = dict(hc.runtime.choices) if choices is None else choices
    run_dir = Path(run_dir)
    overrides, choices = list(overrides or []), dict(choices or {})
    tc, reg = cfg.trainer, cfg.regularizer

    device = select_device(tc.device)
    if tc.strategy == "ddp" and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError("trainer.strategy=ddp trains one run over several processes; it cannot be a job of a "
                          "sweep (-m): start each run with torchrun")
    ranks, device = distributed.setup(tc.strategy, device)
    configure_torch(tc.threads, tc.seed, tc.deterministic)
    precision = str(tc.precision)
    if precision == "16" and device.type != "cuda":
        raise ConfigError(f"trainer.precision=16 needs a CUDA GPU (float16 autocast with a GradScaler); this run is "
                          f"on {device.type}: use trainer.precision=bf16 or 32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("trainer.precision=bf16: this GPU has no bfloat16; use trainer.precision=16 or 32")
    scaler = torch.amp.GradScaler("cuda") if precision == "16" else None

    model_target = _model_target(cfg.model)
    data = _build("dataset", cfg.dataset)
    objective = make_objective(cfg.loss, data.task, data.num_classes, data.target_dim, data.per_step,
                               model_default=getattr(model_target, "default_loss", None), tolerance=data.tolerance)
    es = reg.early_stopping
    if es.monitor.endswith("/acc") and objective.correct is None:
        raise ConfigError(f"regularizer.early_stopping.monitor={es.monitor}: a regression dataset has no "
                          "accuracy; allowed: train/loss, val/loss")
    model_name = choices.get("model") or cfg.model._target_
    model = _build("model", cfg.model, **_model_kwargs(model_target, data, objective.num_outputs, model_name))
    model = model.to(device)
    optimizer = _build("optimizer", cfg.optimizer,
                       params=_param_groups(model, cfg.optimizer.get("weight_decay", 0.0) or 0.0))
    scheduler = None
    if cfg.scheduler.get("_target_") is not None:
        scheduler = _build("scheduler", cfg.scheduler, optimizer=optimizer)
    stopper = EarlyStopping(monitor=es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta,
                            restore_best=es.restore_best, enabled=es.enabled)
    settings = FitSettings(epochs=tc.epochs, batch_size=tc.batch_size, eval_batch_size=tc.eval_batch_size,
                           grad_clip=tc.grad_clip, l1=reg.l1, seed=tc.seed, dist=ranks, precision=precision,
                           scaler=scaler)
    # drawn at the end into TensorBoard, from counts the validation passes keep (not under DDP, where
    # each rank counts its share: there one pass at the end)
    confusion = tc.confusion_matrix and tc.tensorboard and data.task == "classification"
    if confusion and not ranks.active:
        settings.confusion_classes = data.num_classes
    data = data.to(device)
    if tc.channels_last:
        if data.train.x.ndim == 4:  # (N, C, H, W) images: NHWC in memory, for the model and the data alike
            model = model.to(memory_format=torch.channels_last)
            data = replace(data, **{name: Split(split.x.contiguous(memory_format=torch.channels_last), split.y)
                                    for name in ("train", "val", "test")
                                    if (split := getattr(data, name)) is not None})
        else:
            log.warning("trainer.channels_last applies to images (N, C, H, W); %s inputs are %s: ignored",
                        data.name, tuple(data.train.x.shape[1:]))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    num_params = count_parameters(model)
    active = {k for k, on in (("early_stopping", es.enabled), ("weight_decay", reg.weight_decay > 0 or reg.l1 > 0),
                              ("dropout", reg.dropout > 0)) if on}

    if ranks.active:  # every rank reads rank 0's run folder (to resume); only rank 0 writes into it
        run_dir = Path(ranks.broadcast(str(run_dir)))
    train_state = TrainState.new(tc.seed)
    resumed: dict[str, Any] | None = None
    if tc.resume is not None:
        where, target = resume.locate(tc.resume, run_dir, resolved)
        if where is not None:
            ckpt, path = resume.load(where)
            _restore(ckpt, path, model, optimizer, scheduler, stopper, train_state)
            if scaler is not None and ckpt.get("scaler"):
                scaler.load_state_dict(ckpt["scaler"])
            best = path.parent / "best.pt"
            if stopper.enabled and stopper.restore_best and stopper.best_epoch and best.exists():
                train_state.best_state = resume.load(best)[0]["model"]
            resumed = {"checkpoint": str(path), "epoch": train_state.epoch,
                       "step": train_state.sums.step if train_state.sums else 0}
            if target.resolve() != run_dir.resolve():  # continue in the run's own folder, not a new one
                _discard_run_dir(run_dir, keep_log=False)
                if logdir == str(run_dir):
                    logdir = str(target)
                run_dir = target
                _log_to(run_dir / "train.log")
        else:
            log.info("trainer.resume=auto: no unfinished run with this config; starting a new run")

    trained = model  # what fit() trains: the model itself, or its DDP wrapper that averages gradients
    if ranks.active:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if tc.compile:
        if device.type == "cpu":
            log.warning("trainer.compile on CPU: compiling takes tens of seconds before the first step; it pays "
                        "off only for long runs (benchmarks/RESULTS_speed_options.md)")
        trained = torch.compile(trained)
    writes = ranks.main  # under DDP only rank 0 writes files and prints

    # Everything is built: from here on the run writes files.
    if writes:
        run_dir.mkdir(parents=True, exist_ok=True)
    log.info("run dir %s | device %s | %d torch threads | %d parameters | overrides %s", run_dir, device,
             torch.get_num_threads(), num_params, overrides)
    if resumed:
        log.info("resumed from %s: epoch %d done, step %d of the next", resumed["checkpoint"], resumed["epoch"],
                 resumed["step"])
    tracker = (Tracker(run_dir, classification=objective.correct is not None,
                       resume_epoch=train_state.epoch if resumed else None, tensorboard=tc.tensorboard)
               if writes else NullTracker())
    if writes and tc.tensorboard and tc.log_every_n_steps:
        settings.log_every_n_steps, settings.on_step = tc.log_every_n_steps, tracker.log_step
    # the pictures live in TensorBoard only: without it none is drawn
    pictures_every = tc.pictures_every if tc.tensorboard else 0
    histograms_every = tc.histograms_every if tc.tensorboard else 0
    ckpt_dir = run_dir / "checkpoints"

    def checkpoint(epoch: int, metrics: dict[str, Any] | None) -> dict[str, Any]:
        """Everything to continue exactly from here: weights, optimizer, schedule, early stopping, the
        position (epoch, and batch within it), and every random state."""
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "early_stopping": stopper.state_dict(), "epoch": epoch, "metrics": metrics,
                "train_state": train_state.state_dict(), "rng": rng_state(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "config": resolved, "nnexp_version": __version__}

    title = (f"nnexp: {choices.get('model', '?')} on {data.name} ({len(data.train)} train / {len(data.val)} val), "
             f"{num_params:,} parameters, {device}  ->  {run_dir}")
    if resumed:
        title += (f"  (resumed after epoch {resumed['epoch']}"
                  + (f", step {resumed['step']} of the next" if resumed["step"] else "") + ")")
    # jobs running side by side would interleave their progress lines: each keeps its own train.log
    progress = "none" if (tc.progress == "auto" and jobs_in_parallel() > 1) or not writes else tc.progress
    reporter = Reporter(progress, epochs=tc.epochs, title=title)

    boundary = pictures.has_decision_boundary(data)

    def log_pictures(step: int) -> None:
        if not writes:
            return
        if boundary:  # 2-D data: the IMAGES slider shows the boundary forming
            tracker.log_image("pictures/decision_boundary", pictures.decision_boundary(model, data, device), step)
        # transformers: each layer's heads on one validation example
        for i, image in enumerate(pictures.attention_maps(model, data.val.x[:1])):
            tracker.log_image(f"pictures/attention/layer{i}", image, step)

    env_eval: dict[str, Any] = {}  # rl datasets: the latest evaluation in the environment, and its epoch

    def evaluate_in_env(epoch: int) -> None:
        env_eval.update(epoch=epoch, values=data.evaluate(model))
        tracker.log_scalars("eval", env_eval["values"], epoch)

    def on_epoch_end(epoch: int, metrics: dict[str, Any], improved: bool) -> None:
        tracker.log_epoch(epoch, metrics)
        finite = math.isfinite(metrics["train/loss"]) and math.isfinite(metrics["val/loss"])
        if finite and data.evaluate is not None and data.eval_every and epoch % data.eval_every == 0:
            evaluate_in_env(epoch)
        if finite and histograms_every and epoch % histograms_every == 0:
            tracker.log_histograms(model.named_parameters(), epoch)  # p.grad: the epoch's last step
            tracker.log_grad_norms(model.named_parameters(), epoch)
        if finite and pictures_every and epoch % pictures_every == 0:
            log_pictures(epoch)
        if tc.checkpoints and finite and writes:  # a non-finite state never overwrites a good checkpoint
            tracker.flush()  # what a checkpoint holds is on disk first: a kill after it loses no curve
            saver.submit(checkpoint(epoch, metrics),
                         [ckpt_dir / "best.pt", ckpt_dir / "last.pt"] if improved else [ckpt_dir / "last.pt"])
        reporter.epoch(epoch, metrics, improved)
        log.info("epoch %d %s%s", epoch, {k: v for k, v in metrics.items()}, " (best)" if improved else "")

    started = time.perf_counter()
    summary: dict[str, Any] = {"status": "failed", "run_dir": str(run_dir)}
    saver = BackgroundWriter()  # epoch checkpoints are written while the next epoch trains
    try:
        with reporter, StopSignals() as signals:
            result = fit(trained, data, objective, optimizer, scheduler, settings, stopper,
                         on_epoch_end=on_epoch_end, stop_requested=signals, state=train_state)
            saver.wait()  # the last epoch's checkpoint is on disk (a failed write fails the run here)
            if result.status == "interrupted" and tc.checkpoints and writes and train_state.sums is not None:
                # stopped mid-epoch: keep the position, so trainer.resume finishes this epoch exactly
                save_checkpoint(ckpt_dir / "last.pt", checkpoint(train_state.epoch, None))
        if result.status in ("completed", "early_stopped"):  # pictures of the model the run ends with
            if pictures_every and result.epochs_run % pictures_every:
                log_pictures(result.epochs_run)  # the last step of the IMAGES slider: the model the run ends with
            if confusion and writes:
                # counted by the validation pass of the epoch whose weights the run ends with
                counts = train_state.best_counts if result.restored_best else train_state.val_counts
                if counts is not None:
                    image = pictures.render_confusion(counts.reshape(data.num_classes, -1).cpu().numpy())
                else:  # resumed before that epoch, or DDP (each rank counted its share): one pass now
                    image = pictures.confusion_matrix(model, data.val, data.num_classes, tc.eval_batch_size)
                tracker.log_image("pictures/confusion_matrix", image, result.epochs_run)
            # the model the run ends with, in its environment (unless the last epoch just did it with these weights)
            if data.evaluate is not None and (env_eval.get("epoch") != result.epochs_run or result.restored_best):
                evaluate_in_env(result.epochs_run)
        test = None
        if data.test is not None and result.status != "diverged":
            test_loss, test_acc = evaluate(model, data.test, objective, tc.eval_batch_size, precision=precision)
            test = {"test/loss": test_loss, "test/acc": test_acc}
        best_epoch = stopper.best_epoch or None
        best = _metrics_at(result.history, best_epoch) if best_epoch else {}
        final = _metrics_at(result.history, result.epochs_run) if result.epochs_run else {}
        summary = {
            "status": result.status,
            "message": result.message,
            "epochs_run": result.epochs_run,
            "best_epoch": best_epoch,
            "stopped_epoch": result.epochs_run if result.status == "early_stopped" else None,
            "monitor": stopper.monitor,
            "mode": stopper.mode,
            "best_value": stopper.best_value if best_epoch else None,
            "restored_best": result.restored_best,
            "final": final,
            "best": best,
            "gap": {"best": _gap(best), "final": _gap(final)},
            "test": test,
            "eval": env_eval.get("values") if result.status in ("completed", "early_stopped") else None,
            "diagnosis": diagnose(result.history, result.status, active).to_dict(),
            "num_params": num_params,
            "wall_seconds": round(time.perf_counter() - started, 3),
            # mean wall time of an epoch (training + validation), without setup and pictures
            "seconds_per_epoch": (round(mean(h["seconds"] for h in result.history), 4)
                                  if result.history else None),
            # which tensors grad_norm/first_layer and grad_norm/last_layer measure
            "grad_norm_layers": dict(zip(("first_layer", "last_layer"), end_weights(model) or (), strict=False)),
            "device": str(device),
            "seed": tc.seed,
            "loss": objective.name,
            "choices": _public_choices(choices),
            "overrides": overrides,
            "resumed_from": resumed,
            "config_hash": resume.config_hash(resolved),
            "run_dir": str(run_dir),
        }
        if result.status == "interrupted":
            summary["signal"] = "SIGINT" if signals.received == 2 else "SIGTERM"
        if cfg.expect:
            summary["expect"] = list(cfg.expect)
            summary["checks"] = check_run(summary["expect"], summary)
        words = _in_words(summary, stopper)
        tracker.log_text("summary", "\n\n".join(words))
        tracker.log_hparams(
            _hparams(choices, overrides, tc.seed),
            {"best/val/loss": best.get("val/loss"), "best/val/acc": best.get("val/acc"),
             "final/train/loss": final.get("train/loss"), "final/val/loss": final.get("val/loss"),
             "final/val/acc": final.get("val/acc"), "best_epoch": best_epoch},
            step=result.epochs_run,
        )
        if writes:
            reporter.summary(summary, words, (logdir or str(run_dir)) if tc.tensorboard else None)
        for line in words:
            log.info(line)
    except BaseException as exc:
        summary.update(status="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                       error=f"{type(exc).__name__}: {exc}", wall_seconds=round(time.perf_counter() - started, 3))
        raise
    finally:
        with contextlib.suppress(Exception):  # already failing: the first error is the one to report
            saver.wait()
        tracker.close()
        if writes:
            _write_summary(run_dir, summary)
        distributed.teardown(ranks)
    return summary


def exit_code(summary: dict[str, Any]) -> int:
    status = summary["status"]
    if status == "diverged":
        return EXIT_DIVERGED
    if status == "interrupted":
        return EXIT_INTERRUPTED if summary.get("signal") == "SIGINT" else EXIT_TERMINATED
    return 0


def _restore_rng(ckpt: dict[str, Any], train_state: TrainState) -> None:
    """The shuffling generator and the global generators (dropout, numpy, random), as the checkpoint left them."""
    train_state.generator.set_state(ckpt["train_state"]["generator"])
    set_rng_state(ckpt["rng"])


def _restore(ckpt: dict[str, Any], path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: Any, stopper: EarlyStopping, train_state: TrainState) -> None:
    """Load a checkpoint into the built run; one line naming the file on anything that does not fit."""
    if "train_state" not in ckpt or "rng" not in ckpt:
        raise ConfigError(f"checkpoint {path}: has no training position or random states (written by nnexp "
                          f"{ckpt.get('nnexp_version', '< 0.2')}), so it cannot be resumed exactly")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:  # size mismatch, missing or unexpected keys: torch lists them one per line
        details = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
        raise ConfigError(f"checkpoint {path}: does not fit this model: "
                          f"{details[0] if details else exc}") from None
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"checkpoint {path}: its optimizer state does not fit this optimizer: {exc}") from None
    stopper.load_state_dict(ckpt["early_stopping"])
    train_state.load_state_dict(ckpt["train_state"])
    _restore_rng(ckpt, train_state)


def _log_to(file: Path) -> None:
    """Send the run's log (Hydra's file handler was for the discarded folder) to ``file``, appending."""
    handler = logging.FileHandler(file, mode="a", delay=True)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)


def _discard_run_dir(run_dir: Path, keep_log: bool) -> None:
    """After a config error: remove what Hydra created for this run, so nothing is left half-written."""
    # Hydra's log file handler (opened lazily) must not outlive the folder it would write into
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir.resolve():
            root.removeHandler(handler)
            handler.close()
    hydra_dir = run_dir / ".hydra"
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (hydra_dir / name).unlink(missing_ok=True)
    if not keep_log:
        (run_dir / "train.log").unlink(missing_ok=True)
    # only ever removes empty folders: the run dir, then its parents as long as they are inside the cwd
    cwd = Path.cwd().resolve()
    parents = [d for d in run_dir.resolve().parents if cwd in d.parents]
    for d in (hydra_dir, run_dir, *parents):
        try:
            d.rmdir()
        except OSError:
            break


def task(cfg: DictConfig, jobs: list[dict[str, Any]]) -> float | None:
    """The Hydra task: run, print one clear line on failure, and map the outcome to an exit code.

    Each job appends its outcome to ``jobs``. In a single run a failure raises
    SystemExit with the documented code; in a multirun the sweep goes on and the
    CLI reports the failed jobs and exits non-zero at the end.
    """
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    run_dir = Path(hc.runtime.output_dir)
    log_existed = (run_dir / "train.log").exists()
    overrides = list(hc.overrides.task)
    logdir = str(Path(hc.sweep.dir)) if multirun else str(run_dir)
    job: dict[str, Any] = {"overrides": overrides, "run_dir": str(run_dir), "sweep_dir": logdir if multirun else None}
    jobs.append(job)
    if multirun:  # the same sweep run again: a job already done for this very config is not run twice
        done = resume.finished_here(run_dir, OmegaConf.to_container(cfg, resolve=True))
        if done is not None:
            log.info("already done (%s) with this config: skipped", done["status"])
            print(f"nnexp: job {hc.job.num} ({' '.join(overrides)}): already done ({done['status']}), skipped")
            job.update(status=done["status"], code=0, summary=done, skipped=True)
            return done.get("best_value")
    try:
        summary = run(cfg, run_dir, overrides, dict(hc.runtime.choices), logdir=logdir)
        code = exit_code(summary)
        job.update(status=summary["status"], code=code, summary=summary, message=summary.get("message", ""))
        if code == EXIT_DIVERGED:
            print(f"nnexp: error: training diverged: {summary['message']}", file=sys.stderr)
    except ConfigError as exc:
        code = exc.exit_code
        job.update(status="config_error", code=code, message=str(exc))
        print(f"nnexp: error: {exc}", file=sys.stderr)
        if multirun:  # a sweep keeps a record of the job, so reports list it instead of dropping it
            _write_summary(run_dir, {"status": "failed", "error": f"ConfigError: {exc}", "overrides": overrides,
                                     "choices": _public_choices(hc.runtime.choices), "run_dir": str(run_dir)})
        else:
            _discard_run_dir(run_dir, keep_log=log_existed)
    except NnexpError as exc:
        code = exc.exit_code
        job.update(status="failed", code=code, message=str(exc))
        print(f"nnexp: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("nnexp: interrupted", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # a bug or an environment failure: one line here, the traceback in train.log
        code = 1
        job.update(status="failed", code=code, message=f"{type(exc).__name__}: {exc}")
        log.info("traceback:\n%s", traceback.format_exc())
        print(f"nnexp: error: {type(exc).__name__}: {exc} (traceback in {run_dir / 'train.log'})", file=sys.stderr)
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED) or (code and not multirun):
        raise SystemExit(code)
    summary = job.get("summary")
    return None if not summary else summary.get("best_value")
