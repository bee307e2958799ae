"""run(cfg, ctx): one training run, from the composed config to its run folder.

A recipe in two steps, each readable top to bottom:

- :meth:`Run.setup` checks the ranges, builds every component (nnexp/build.py)
  and restores a checkpoint when resuming. It writes nothing: anything that does
  not fit raises ConfigError (one line naming the key, file or device; exit 2).
- :meth:`Run.train` fits and finishes. From its first line on, every outcome, a
  crash included, ends in ``summary.json`` (nnexp/record.py).

``run()`` reads no Hydra state: the Hydra entry (nnexp/app.py) passes what Hydra
knows in a RunContext, and a Python session can pass its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from statistics import mean
from typing import Any

from omegaconf import DictConfig

from nnexp import distributed, resume, rundir
from nnexp.build import Components, build, wrap
from nnexp.checks import check_run
from nnexp.config import check_ranges
from nnexp.context import RunContext
from nnexp.diagnosis import diagnose
from nnexp.fingerprint import config_hash
from nnexp.loop import FitResult, end_weights, evaluate, fit
from nnexp.record import RunSummary, Status
from nnexp.recorder import NullRecorder, Recorder
from nnexp.signals import StopSignals
from nnexp.words import in_words

log = logging.getLogger("nnexp")


def run(cfg: DictConfig, ctx: RunContext) -> RunSummary:
    """Train the configuration ``cfg`` (composed, without Hydra's own node) into ``ctx.run_dir``; returns the
    record that is also written to ``summary.json``."""
    return Run(cfg, ctx).setup().train()


class Run:
    def __init__(self, cfg: DictConfig, ctx: RunContext) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.parts: Components | None = None
        self.trained: Any = None  # what fit() trains: the model, or its DDP / torch.compile wrapper
        self.resumed: dict[str, Any] | None = None  # the checkpoint continued from, and where it stood

    def setup(self) -> Run:
        """Build everything; continue from a checkpoint if ``trainer.resume`` asks. Writes nothing."""
        tc = self.cfg.trainer
        check_ranges(self.cfg)  # before any data is loaded
        self.parts = parts = build(self.cfg, self.ctx)
        if parts.ranks.active:  # every rank reads rank 0's run folder (to resume); only rank 0 writes into it
            self.ctx = self.ctx.moved_to(Path(parts.ranks.broadcast(str(self.ctx.run_dir))))
        if tc.resume is not None:
            self._resume(tc.resume)
        self.trained = wrap(parts.model, parts.ranks, parts.device, tc.compile)
        return self

    def _resume(self, spec: str) -> None:
        parts = self.parts
        where, target = resume.locate(spec, self.ctx.run_dir, parts.config)
        if where is None:
            log.info("trainer.resume=auto: no unfinished run with this config; starting a new run")
            return
        ckpt, path = resume.load(where)
        resume.restore(ckpt, path, parts)
        sums = parts.state.sums
        self.resumed = {"checkpoint": str(path), "epoch": parts.state.epoch, "step": sums.step if sums else 0}
        if target.resolve() != self.ctx.run_dir.resolve():  # continue in the run's own folder, not a new one
            if parts.ranks.main:
                rundir.discard(self.ctx.run_dir, keep_log=False)
                rundir.log_to(target / "train.log")
            self.ctx = self.ctx.moved_to(target)

    def train(self) -> RunSummary:
        """Fit, then say how it went; the record is written whatever happens (by rank 0 under DDP)."""
        p, ctx = self.parts, self.ctx
        if p.ranks.main:  # a folder where summary.json, metrics.csv, ... go: exit 2 now, not after training
            rundir.check_writable(ctx.run_dir)
        recorder = Recorder(p, ctx, self.cfg.trainer, self.resumed) if p.ranks.main else NullRecorder()
        started = time.perf_counter()
        summary = self.identity()
        try:
            with recorder, StopSignals() as signals:
                result = fit(self.trained, p.data, p.objective, p.optimizer, p.scheduler, p.settings, p.stopper,
                             on_epoch_end=recorder.epoch_end, stop_requested=signals, state=p.state)
                recorder.after_fit(result)
            summary = self.summarize(result, recorder.environment(), time.perf_counter() - started)
            if result.status is Status.INTERRUPTED:
                summary.signal = "SIGINT" if signals.received == 2 else "SIGTERM"
            recorder.report(summary, in_words(summary, p.stopper.patience))
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            summary = replace(summary, status=Status.INTERRUPTED if interrupted else Status.FAILED,
                              error=f"{type(exc).__name__}: {exc}",
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
                          expect=list(self.cfg.expect))

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
            diagnosis=diagnose(result.history, status.value, p.cures).to_dict(), wall_seconds=round(wall, 3),
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
            return {k: row.get(k) for k in ("train/loss", "val/loss", "train/acc", "val/acc",
                                             "grad_norm/first_layer", "grad_norm/last_layer")}
    return {}


def _gap(metrics: dict[str, Any]) -> float | None:
    if metrics.get("val/loss") is None:
        return None
    return metrics["val/loss"] - metrics["train/loss"]
