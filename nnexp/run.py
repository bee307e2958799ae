"""run(cfg, ctx): one training run, from the composed config to its run folder.

A recipe in two steps, each readable top to bottom:

- :meth:`Run.setup` builds every component (nnexp/build.py)
  and restores a checkpoint when resuming. It writes nothing: anything that does
  not fit raises ConfigError (one line naming the key, file or device; exit 2).
- :meth:`Run.train` fits and finishes. From its first line on, every outcome, a
  crash included, ends in ``summary.json`` (nnexp/record.py).

``run()`` reads no Hydra state: the Hydra entry (nnexp/app.py) passes what Hydra
knows in a RunContext, and a Python session can pass its own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import replace
from pathlib import Path
from statistics import mean
from typing import Any

from omegaconf import DictConfig

from nnexp import distributed, lifecycle, resume, rundir, validate
from nnexp.build import Components, build, wrap
from nnexp.checks import check_run
from nnexp.context import RunContext
from nnexp.diagnosis import diagnose
from nnexp.fingerprint import config_hash
from nnexp.loop import FitResult, end_weights, evaluate, fit
from nnexp.record import RunSummary, Status
from nnexp.recorder import NullRecorder, Recorder
from nnexp.signals import StopSignals, signal_of
from nnexp.words import in_words

log = logging.getLogger("nnexp")


def run(cfg: DictConfig, ctx: RunContext) -> RunSummary:
    """Train the configuration ``cfg`` (composed, without Hydra's own node) into ``ctx.run_dir``; returns the
    record that is also written to ``summary.json``. The folder's life-cycle rules hold (nnexp/lifecycle.py):
    a finished run there is returned as it is, a folder held by another process raises RunBusy."""
    validate.check(cfg, ctx.choices, ctx.overrides)  # before the folder is claimed or any data loaded
    claim = lifecycle.claim(ctx.run_dir, lifecycle.ask(cfg, chosen=True, multirun=ctx.multirun))
    try:
        if claim.done is not None:
            return claim.done
        return job(cfg, ctx.moved_to(claim.run_dir), claim).setup().train()
    finally:
        claim.release()


def job(cfg: DictConfig, ctx: RunContext, claim: lifecycle.Claim | None = None) -> Any:
    """The run ``cfg`` asks for: an agent learning from reward (``agent=...``, nnexp/rl/runner.py), else
    training on a dataset. Both have ``setup()`` and ``train()`` and keep the same contract."""
    if cfg.get("agent") is not None:
        from nnexp.rl.runner import AgentRun

        return AgentRun(cfg, ctx, claim)
    return Run(cfg, ctx, claim)


class Run:
    def __init__(self, cfg: DictConfig, ctx: RunContext, claim: lifecycle.Claim | None = None) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.claim = claim  # which checkpoint to continue from (None: a new run), decided by nnexp/lifecycle.py
        self.parts: Components | None = None
        self.trained: Any = None  # what fit() trains: the model, or its DDP / torch.compile wrapper
        self.resumed: dict[str, Any] | None = None  # the checkpoint continued from, and where it stood
        self.warnings: list[str] = []

    def setup(self) -> Run:
        """Build everything; continue from the claimed checkpoint, if any. Writes nothing. (The rule table,
        ``validate.check``, has run before the folder was claimed: run() and nnexp/app.py call it.)"""
        tc = self.cfg.trainer
        self.parts = parts = build(self.cfg, self.ctx)
        claim = self.claim
        where = (claim.resume_from, claim.restart_patience) if claim is not None else (None, False)
        if parts.ranks.active:  # every rank resumes from rank 0's claim; only rank 0 writes into its folder
            self.ctx = self.ctx.moved_to(Path(parts.ranks.broadcast(str(self.ctx.run_dir))))
            where = parts.ranks.broadcast(where)
        if where[0] is not None:
            self._resume(where[0], restart_patience=where[1])
        self.trained = wrap(parts.model, parts.ranks, parts.device, tc.compile)
        if parts.ranks.main:  # a folder where summary.json, metrics.csv, ... go: exit 2 now, not after training
            rundir.check_writable(self.ctx.run_dir)
        return self

    def _resume(self, where: Path, restart_patience: bool) -> None:
        parts = self.parts
        ckpt, path = resume.load(where)
        changed = resume.differences(ckpt["config"], parts.config) if isinstance(ckpt.get("config"), dict) else {}
        if changed and self.cfg.trainer.resume_config != "new":
            resume.refuse_changes(changed, path)
        self.warnings = resume.restore(ckpt, path, parts, changed, restart_patience)
        for line in self.warnings:
            log.warning(line)
        sums = parts.state.sums
        self.resumed = {"checkpoint": str(path), "epoch": parts.state.epoch, "step": sums.step if sums else 0}
        if changed:
            self.resumed["changed"] = changed

    def train(self) -> RunSummary:
        """Fit, then say how it went; the record is written whatever happens (by rank 0 under DDP)."""
        p, ctx = self.parts, self.ctx
        # from the first line to summary.json a signal is a polite stop: a signal after the run ended changes nothing
        with StopSignals() as signals:
            recorder = Recorder(p, ctx, self.cfg.trainer, self.resumed) if p.ranks.main else NullRecorder()
            started = time.perf_counter()
            summary = self.identity()
            try:
                with recorder:
                    with p.settings.anomaly or contextlib.nullcontext():  # trainer.detect_anomaly: while it trains
                        result = fit(self.trained, p.data, p.objective, p.optimizer, p.scheduler, p.settings,
                                     p.stopper, on_epoch_end=recorder.epoch_end, stop_requested=signals, state=p.state)
                    recorder.after_fit(result)
                summary = self.summarize(result, recorder.environment(), time.perf_counter() - started)
                if result.status is Status.INTERRUPTED:
                    summary.signal = signals.name
                recorder.report(summary, in_words(summary, p.stopper.patience))
            except BaseException as exc:
                interrupted = isinstance(exc, KeyboardInterrupt)
                summary = replace(summary, status=Status.INTERRUPTED if interrupted else Status.FAILED,
                                  error=f"{type(exc).__name__}: {exc}", signal=signal_of(exc) if interrupted else None,
                                  wall_seconds=round(time.perf_counter() - started, 3))
                raise
            finally:
                recorder.close(summary)
                distributed.teardown(p.ranks)
        return summary

    def identity(self) -> RunSummary:
        """What the record says before anything is known of the outcome: which run this is."""
        p, ctx = self.parts, self.ctx
        return RunSummary(Status.FAILED, run_dir=str(ctx.run_dir), num_params=p.num_params, device=str(p.device),
                          seed=self.cfg.trainer.seed, loss=p.objective.name, choices=dict(ctx.choices),
                          overrides=list(ctx.overrides), resumed_from=self.resumed,
                          config_hash=config_hash(p.config), monitor=p.stopper.monitor, mode=p.stopper.mode,
                          expect=list(self.cfg.expect), warnings=list(self.warnings))

    def summarize(self, result: FitResult, environment: dict[str, float] | None, wall: float) -> RunSummary:
        """The record of a run that ended by itself or on request: its numbers, diagnosis and checks."""
        p = self.parts
        status = result.status
        test = None
        if p.data.test is not None and status is not Status.DIVERGED:
            loss, acc = evaluate(p.model, p.data.test, p.objective, p.settings.eval_batch_size,
                                 precision=p.settings.precision)
            test = {"test/loss": loss, "test/acc": acc}
        best_epoch = p.stopper.best_epoch or None
        best = _metrics_at(result.history, best_epoch) if best_epoch else {}
        final = _metrics_at(result.history, result.epochs_run) if result.epochs_run else {}
        summary = replace(
            self.identity(), status=status, message=result.message, epochs_run=result.epochs_run,
            best_epoch=best_epoch, stopped_epoch=result.epochs_run if status is Status.EARLY_STOPPED else None,
            best_value=p.stopper.best_value if best_epoch else None, restored_best=result.restored_best,
            final=final, best=best, gap={"best": _gap(best), "final": _gap(final)}, test=test,
            eval=environment if status.trained else None,
            diagnosis=diagnose(result.history, p.facts, status.value).to_dict(), wall_seconds=round(wall, 3),
            # mean wall time of an epoch (training + validation), without setup and pictures
            seconds_per_epoch=round(mean(h["seconds"] for h in result.history), 4) if result.history else None,
            # which tensors grad_norm/first_layer and grad_norm/last_layer measure
            grad_norm_layers=dict(zip(("first_layer", "last_layer"), end_weights(p.model) or (), strict=False)),
        )
        if summary.expect:
            summary.checks = check_run(summary.expect, summary.to_dict())
        return summary


def _metrics_at(history: list[dict[str, Any]], epoch: int) -> dict[str, Any]:
    for row in history:
        if row["epoch"] == epoch:
            kept = {k: row.get(k) for k in ("train/loss", "val/loss", "train/acc", "val/acc",
                                             "grad_norm/first_layer", "grad_norm/last_layer")}
            if "grad_norm/first_step" in row:  # recurrent models (nnexp/step_gradients.py)
                kept["grad_norm/first_step"] = row["grad_norm/first_step"]
            return kept
    return {}


def _gap(metrics: dict[str, Any]) -> float | None:
    if metrics.get("val/loss") is None:
        return None
    return metrics["val/loss"] - metrics["train/loss"]
