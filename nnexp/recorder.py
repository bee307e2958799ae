"""Everything a run writes while it trains, in one object with named steps.

After each epoch: the scalars (TensorBoard, metrics.csv), the evaluation in the
environment (rl datasets), histograms and pictures at their intervals, the
checkpoint, the progress line. After training: the position inside an epoch a
stop cut short, the pictures of the model the run ends with. At the end: the
summary in TensorBoard and on the terminal, and summary.json.

Under DDP only rank 0 writes; the other ranks get a :class:`NullRecorder`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import traceback
from dataclasses import replace
from typing import Any

import torch

from nnexp import __version__, openmp, pictures, record, step_gradients
from nnexp.build import Components
from nnexp.checkpoint import BackgroundWriter, rng_state, save_checkpoint, snapshot
from nnexp.checks import split_override
from nnexp.console import Reporter
from nnexp.context import RunContext
from nnexp.errors import RunFolderGone, WriteError
from nnexp.fingerprint import DISPLAY_KEYS
from nnexp.loop import FitResult
from nnexp.output import RunFolder, ThreadErrors, guard_std_streams
from nnexp.record import RunSummary, Status
from nnexp.tracking import HPARAM_CURVES, Tracker

log = logging.getLogger("nnexp")


class Recorder:
    def __init__(self, parts: Components, ctx: RunContext, trainer: Any, resumed: dict[str, Any] | None) -> None:
        """``trainer``: the run's ``trainer`` config (logging intervals, progress, checkpoints). Nothing is
        opened here: the files are opened on entering (inside the run's ``try``, so a failure to open them
        still ends in summary.json)."""
        self.parts, self.ctx, self.resumed, self.trainer = parts, ctx, resumed, trainer
        self.run_dir, self.ckpt_dir = ctx.run_dir, ctx.run_dir / "checkpoints"
        self.tracker: Tracker | None = None
        self.folder: RunFolder | None = None  # the run folder as the run found it (removed while training?)
        self.threads = ThreadErrors()  # a thread's uncaught error: into train.log, then the run's error
        self.streams = contextlib.ExitStack()
        # the pictures live in TensorBoard only: without it none is drawn
        self.pictures_every = trainer.pictures_every if trainer.tensorboard else 0
        self.histograms_every = trainer.histograms_every if trainer.tensorboard else 0
        self.boundary = pictures.has_decision_boundary(parts.data)
        self.checkpoints, self.tensorboard = trainer.checkpoints, trainer.tensorboard
        self.confusion = trainer.confusion_matrix and trainer.tensorboard and parts.data.task == "classification"
        self.saver = BackgroundWriter()  # epoch checkpoints are written while the next epoch trains
        # last.pt at most every checkpoint_every_s seconds (a write costs ~10 ms: B2) and at the end. A skipped
        # epoch's checkpoint is held in memory (a copy, ~1 ms) and written when the run ends in any way but a
        # kill -9: only that loses epochs, at most checkpoint_every_s seconds of them, which a resume replays
        self.checkpoint_every_s = float(trainer.get("checkpoint_every_s", 0) or 0)
        self.written_at = time.monotonic()
        self.held_last: dict[str, Any] | None = None  # the last epoch's checkpoint, not yet on disk
        self.held_best: dict[str, Any] | None = None  # the best epoch's, if not yet on disk (best.pt)
        self.env_eval: dict[str, Any] = {}  # rl datasets: the latest evaluation in the environment, and its epoch
        # jobs running side by side would interleave their progress lines: each keeps its own train.log
        progress = "none" if trainer.progress == "auto" and ctx.parallel_jobs > 1 else trainer.progress
        self.reporter = Reporter(progress, epochs=trainer.epochs, title=self._title(), run_dir=str(self.run_dir))
        log.info("run dir %s | device %s | %s, OpenMP wait %s | %d parameters | overrides %s",
                 self.run_dir, parts.device, parts.threads or f"{torch.get_num_threads()} torch threads", openmp.choice,
                 parts.num_params, list(ctx.overrides))
        if resumed:
            log.info("resumed from %s: epoch %d done, step %d of the next", resumed["checkpoint"], resumed["epoch"],
                     resumed["step"])

    def _open(self) -> None:
        """The run folder, TensorBoard's event file and metrics.csv (WriteError naming the one that fails)."""
        p, trainer = self.parts, self.trainer
        self.threads.install()  # before TensorBoard's writer thread starts
        # a closed stdout/stderr stops the printing, not the run (nnexp/cli.py does it for the whole command;
        # this covers a run started from Python, or in a launcher's worker process)
        self.streams.enter_context(guard_std_streams())
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(self.run_dir, exc) from exc
        self.folder = RunFolder(self.run_dir)
        self.tracker = Tracker(self.run_dir, classification=p.objective.correct is not None,
                               resume_epoch=p.state.epoch if self.resumed else None, tensorboard=trainer.tensorboard,
                               recurrent=step_gradients.measures(p.model))
        for line in self.tracker.warnings:
            log.warning(line)
        if trainer.tensorboard and trainer.log_every_n_steps:
            p.settings.log_every_n_steps, p.settings.on_step = trainer.log_every_n_steps, self.tracker.log_step

    def _title(self) -> str:
        p, r = self.parts, self.resumed
        title = (f"nnexp: {self.ctx.choices.get('model', '?')} on {p.data.name} ({len(p.data.train)} train / "
                 f"{len(p.data.val)} val), {p.num_params:,} parameters, {p.device}")
        if r:
            title += f", resumed after epoch {r['epoch']}" + (f", step {r['step']} of the next" if r["step"] else "")
        return title  # the run folder follows it (Reporter)

    def __enter__(self) -> Recorder:
        self._open()
        self.reporter.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.reporter.__exit__(*exc)

    def epoch_end(self, epoch: int, metrics: dict[str, Any], improved: bool) -> None:
        """After every epoch (fit()'s hook); a diverged or non-finite epoch is logged but never drawn or
        checkpointed.

        First the run folder is checked (removed while training: RunFolderGone) and the threads (an error in
        TensorBoard's writer thread becomes the run's): the run stops at this epoch's end at the latest."""
        self.folder.check(f" (noticed at the end of epoch {epoch})")
        self._raise_thread_error()
        self.tracker.log_epoch(epoch, metrics)
        stopper = self.parts.stopper
        if math.isfinite(stopper.best_value):  # the best so far: a step curve under val/loss, HPARAMS' metric
            self.tracker.log_scalars("best", {stopper.monitor: stopper.best_value}, epoch)
        finite = (not metrics.get("diverged") and math.isfinite(metrics["train/loss"])
                  and math.isfinite(metrics["val/loss"]))
        if finite and self.parts.data.evaluate is not None and self.parts.data.eval_every \
                and epoch % self.parts.data.eval_every == 0:
            self.evaluate_in_env(epoch)
        if finite and self.histograms_every and epoch % self.histograms_every == 0:
            self.histograms(epoch)
        if finite and self.pictures_every and epoch % self.pictures_every == 0:
            self.draw(epoch)
        if self.checkpoints and finite:
            self.save_epoch(epoch, metrics, improved)
        self.reporter.epoch(epoch, metrics, improved)
        log.info("epoch %d %s%s", epoch, dict(metrics), " (best)" if improved else "")

    def save_epoch(self, epoch: int, metrics: dict[str, Any], improved: bool) -> None:
        """This epoch's checkpoint, on the writer's thread, when ``checkpoint_every_s`` has passed since the last
        one or the run ends with this epoch; otherwise held in memory (see :meth:`write_held`). best.pt is never
        written ahead of the last.pt that names its epoch as the best."""
        p = self.parts
        state = self.checkpoint(epoch, metrics)
        last = epoch >= p.settings.epochs or p.stopper.should_stop
        if not last and time.monotonic() - self.written_at < self.checkpoint_every_s:
            self.held_last = snapshot(state)
            if improved:
                self.held_best = self.held_last
            return
        self.tracker.flush()  # what a checkpoint holds is on disk first: a kill after it loses no curve
        names = ["best.pt", "last.pt"] if improved else ["last.pt"]
        best = self.held_best if not improved else None  # an earlier best epoch, held: best.pt first
        self.held_last = self.held_best = None
        self.saver.submit(state, [self.ckpt_dir / n for n in names],
                          earlier=(best, [self.ckpt_dir / "best.pt"]) if best is not None else None)
        self.written_at = time.monotonic()

    def write_held(self, last: bool = True) -> None:
        """The checkpoints held back, written now (the run ends: diverged, interrupted, failed): best.pt, then
        last.pt unless ``last`` is false (a stop mid-epoch writes its own position instead)."""
        self.saver.wait()
        best, held, self.held_best, self.held_last = self.held_best, self.held_last, None, None
        if (best is not None or held is not None) and self.tracker is not None:
            self.tracker.flush()
        if best is not None:
            save_checkpoint(self.ckpt_dir / "best.pt", best)
        if held is not None and last:
            save_checkpoint(self.ckpt_dir / "last.pt", held)

    def evaluate_in_env(self, epoch: int) -> None:
        self.env_eval.update(epoch=epoch, values=self.parts.data.evaluate(self.parts.model))
        self.tracker.log_scalars("eval", self.env_eval["values"], epoch)

    def draw(self, step: int) -> None:
        """The IMAGES tab: the decision boundary (2-D data), each attention layer's heads (transformers), the
        gradient reaching each time step (recurrent models)."""
        p = self.parts
        if self.boundary:
            self.tracker.log_image("pictures/decision_boundary", pictures.decision_boundary(p.model, p.data, p.device),
                                   step)
        for i, image in enumerate(pictures.attention_maps(p.model, p.data.val.x[:1])):
            self.tracker.log_image(f"pictures/attention/layer{i}", image, step)
        if step_gradients.measures(p.model):
            norms = step_gradients.step_norms(p.model, p.data.val, p.objective).tolist()
            title = f"{self.ctx.choices.get('model', 'model')}: gradient reaching each step, epoch {step}"
            self.tracker.log_image("pictures/step_gradients", step_gradients.draw(norms, title), step)

    def histograms(self, step: int) -> None:
        """The HISTOGRAMS tab (weights/, grads/) and grad_norm/<param>; p.grad: the last step's gradients."""
        params = list(self.parts.model.named_parameters())
        self.tracker.log_histograms(params, step)
        self.tracker.log_grad_norms(params, step)

    def checkpoint(self, epoch: int, metrics: dict[str, Any] | None) -> dict[str, Any]:
        """Everything to continue exactly from here: weights, optimizer, schedule, early stopping, the
        position (epoch, and batch within it), and every random state."""
        p = self.parts
        scaler = p.settings.scaler
        return {"model": p.model.state_dict(), "optimizer": p.optimizer.state_dict(),
                "scheduler": p.scheduler.state_dict() if p.scheduler is not None else None,
                "early_stopping": p.stopper.state_dict(), "epoch": epoch, "metrics": metrics,
                "train_state": p.state.state_dict(), "rng": rng_state(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "config": p.config, "nnexp_version": __version__}

    def after_fit(self, result: FitResult) -> None:
        """The last checkpoint on disk; a stop mid-epoch keeps its position; the model the run ends with drawn."""
        p = self.parts
        # a failed write fails the run here; a stop mid-epoch keeps its position
        mid_epoch = result.status is Status.INTERRUPTED and self.checkpoints and p.state.sums is not None
        self.write_held(last=not mid_epoch)
        if mid_epoch:
            save_checkpoint(self.ckpt_dir / "last.pt", self.checkpoint(p.state.epoch, None))
        if not result.status.trained:
            return
        if self.pictures_every and result.epochs_run % self.pictures_every:
            self.draw(result.epochs_run)  # the last step of the IMAGES slider: the model the run ends with
        if self.histograms_every and result.epochs_run % self.histograms_every:
            self.histograms(result.epochs_run)  # so does the HISTOGRAMS tab, also in a run shorter than the interval
        if self.confusion:
            self._confusion(result)
        # the model the run ends with, in its environment (unless the last epoch just did it with these weights)
        if p.data.evaluate is not None and (self.env_eval.get("epoch") != result.epochs_run or result.restored_best):
            self.evaluate_in_env(result.epochs_run)

    def _confusion(self, result: FitResult) -> None:
        p = self.parts
        # counted by the validation pass of the epoch whose weights the run ends with
        counts = p.state.best_counts if result.restored_best else p.state.val_counts
        if counts is not None:
            image = pictures.render_confusion(counts.reshape(p.data.num_classes, -1).cpu().numpy())
        else:  # resumed before that epoch, or DDP (each rank counted its share): one pass now
            image = pictures.confusion_matrix(p.model, p.data.val, p.data.num_classes, p.settings.eval_batch_size)
        self.tracker.log_image("pictures/confusion_matrix", image, result.epochs_run)

    def environment(self) -> dict[str, float] | None:
        return self.env_eval.get("values")

    def report(self, summary: RunSummary, words: list[str]) -> None:
        """The run in words: TensorBoard's TEXT and HPARAMS tabs, the terminal, train.log."""
        self.tracker.log_text("summary", "\n\n".join(words))
        self.tracker.log_hparams(hparams(self.ctx, summary.seed), (f"best/{summary.monitor}", *HPARAM_CURVES))
        self.reporter.summary(summary.to_dict(), words, str(self.ctx.logdir) if self.tensorboard else None)
        for line in words:
            log.info(line)

    def _raise_thread_error(self) -> None:
        error = self._thread_error()
        if error is not None:
            raise error

    def _thread_error(self) -> Exception | None:
        """The first uncaught error of a thread, as the run's error: an OSError is the event file's (the only
        thread that writes and does not catch its own errors is TensorBoard's)."""
        exc = self.threads.first
        if exc is None or self.folder is None:
            return None
        if isinstance(exc, OSError):
            events = self.tracker.events_path if self.tracker is not None else None
            return self.folder.failure(exc.filename or events or f"a TensorBoard event file in {self.run_dir}", exc)
        return exc if isinstance(exc, Exception) else RuntimeError(f"a thread failed: {exc!r}")

    def close(self, summary: RunSummary) -> None:
        """Whatever happened: the checkpoint in flight finished, the curves flushed, summary.json written.

        A file that cannot be written here (disk full at TensorBoard's final flush, a checkpoint, metrics.csv)
        fails the run: summary.json says ``failed`` with that error (its numbers kept) and WriteError is
        raised, one line naming the file. If the run is already failing, its first error stands and these
        are only logged. A run folder removed while training gets no summary.json (nothing recreates it),
        and the removal is the error reported, whatever else failed because of it.
        """
        problems = self._close_files()
        if self.tracker is not None and self.tracker.warnings:
            summary = replace(summary, warnings=[*summary.warnings, *self.tracker.warnings])
        if self.folder is not None and self.folder.gone():
            if not (summary.error or "").startswith(RunFolderGone.__name__):
                raise RunFolderGone(self.run_dir)
            return
        error = problems[0] if problems else None
        if error is not None and summary.status is Status.FAILED:
            error = None  # already failing: the first error is the one to report
        elif error is not None:
            summary = replace(summary, status=Status.FAILED, error=f"{type(error).__name__}: {error}")
        try:
            record.write(self.run_dir, summary)
        except OSError as exc:
            failed = f" (the run had failed: {summary.error})" if summary.error else ""
            raise WriteError(self.run_dir / record.FILE, exc, failed) from exc
        if error is not None:
            raise error

    def _close_files(self) -> list[Exception]:
        """The checkpoints in flight and held back, TensorBoard's event file and metrics.csv finished, each whatever the others
        did, and the thread hook removed; what failed (a thread's error included), logged to train.log."""
        problems: list[Exception] = []
        for step in (self.write_held, self.tracker.close if self.tracker is not None else None):
            try:
                if step is not None:
                    step()
            except Exception as exc:  # noqa: BLE001 - every file gets its chance to close
                problems.append(exc)
        self.threads.uninstall()
        self.streams.close()
        first, thread_error = self.threads.first, self._thread_error()
        if thread_error is not None and not any(p is first or p.__cause__ is first for p in problems):
            problems.append(thread_error)
        for problem in problems:
            log.info("while closing the run: %s", _traceback(problem))
        return problems


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


class NullRecorder:
    """What DDP ranks other than 0 record: nothing (rank 0 writes the run folder and prints)."""

    def __enter__(self) -> NullRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def epoch_end(self, epoch: int, metrics: dict[str, Any], improved: bool) -> None:
        pass

    def after_fit(self, result: FitResult) -> None:
        pass

    def environment(self) -> dict[str, float] | None:
        return None

    def report(self, summary: RunSummary, words: list[str]) -> None:
        pass

    def close(self, summary: RunSummary) -> None:
        pass


def hparams(ctx: RunContext, seed: int | None) -> dict[str, Any]:
    """The run's group choices and every override, as flat values for the HPARAMS tab."""
    groups = ("agent", "model", "optimizer") if ctx.choices.get("agent") else (
        "model", "dataset", "optimizer", "regularizer", "scheduler")  # an agent learns from no dataset
    out: dict[str, Any] = {g: ctx.choices[g] for g in groups if ctx.choices.get(g) is not None}
    out["trainer.seed"] = seed
    for item in ctx.overrides:
        key, value = split_override(item)
        if key.startswith("hydra.") or key in out or key in DISPLAY_KEYS:
            continue
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out
