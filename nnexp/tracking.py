"""Everything a run records per epoch: TensorBoard event files and ``metrics.csv``;
at intervals also pictures (nnexp/pictures.py), histograms and gradient norms.

Both use one tag vocabulary (train/loss, val/loss, train/acc, val/acc, lr) and
live in the run directory itself, so ``tensorboard --logdir outputs`` shows
every run and a sweep lines up in the HPARAMS tab.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from nnexp.atomic import atomic_write
from nnexp.errors import WriteError
from nnexp.output import RunFolder

CSV_COLUMNS = ("epoch", "train/loss", "val/loss", "train/acc", "val/acc", "lr", "seconds",
               "grad_norm/first_layer", "grad_norm/last_layer")
SCALARS = ("train/loss", "val/loss", "train/acc", "val/acc", "lr", "grad_norm/first_layer", "grad_norm/last_layer")
# recurrent models (lstm, rnn) add one column and curve: dLoss/dx_1's norm (nnexp/step_gradients.py)
RECURRENT_COLUMNS = ("grad_norm/first_step",)
# the HPARAMS tab shows, for each metric, the last value of that per-epoch curve: the final epoch's, and
# best/<monitor>, the best value so far (nnexp/recorder.py): no one-point charts of their own in SCALARS
HPARAM_CURVES = ("train/loss", "val/loss", "train/acc", "val/acc")
HISTOGRAM_BINS = 30  # equal-width buckets between a tensor's min and max


def _events(method: Callable[..., Any]) -> Callable[..., Any]:
    """A Tracker method writing TensorBoard events: an OSError (the writer thread's, raised again by the next
    call) becomes WriteError naming the event file."""

    @functools.wraps(method)
    def guarded(self: Tracker, *args: Any, **kwargs: Any) -> Any:
        with self._writing(None):
            return method(self, *args, **kwargs)

    return guarded


class Tracker:
    def __init__(self, run_dir: Path, *, classification: bool, resume_epoch: int | None = None,
                 tensorboard: bool = True, recurrent: bool = False, columns: tuple[str, ...] | None = None,
                 layout: dict[str, Any] | None = None, purge_step: int | None = None,
                 curves: tuple[str, ...] | None = None) -> None:
        """``resume_epoch``: continuing a run whose checkpoint is at that epoch. Anything logged after it (a
        kill can land between logging an epoch and saving its checkpoint) is dropped: CSV rows here, and
        TensorBoard events through ``purge_step``, so the curves read as one uninterrupted run.
        ``tensorboard=False``: no event file; metrics.csv is written all the same. ``recurrent``: the model
        measures ``grad_norm/first_step`` (a column and a curve more). An agent's run (nnexp/rl/) gives its own
        ``columns`` (the first is ``epoch``: one row per evaluation round) and ``curves`` (those drawn per round), its
        custom-scalars ``layout``, and ``purge_step``, the environment step its checkpoint is at (its curves are
        drawn against environment steps, not rounds).

        A file that cannot be written (disk full) raises WriteError naming it, here and in every method;
        RunFolderGone if the run folder was removed (nnexp/output.py)."""
        self.run_dir = Path(run_dir)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(self.run_dir, exc) from exc
        self.folder = RunFolder(self.run_dir)
        self.csv_path = self.run_dir / "metrics.csv"
        self.columns = columns or CSV_COLUMNS + (RECURRENT_COLUMNS if recurrent else ())
        self.scalars = curves if curves is not None else SCALARS + (RECURRENT_COLUMNS if recurrent else ())
        self.layout = layout
        self.writer: Any = _NoWriter()
        self._csv_file = None
        self.warnings: list[str] = []  # what a resumed run found wrong with its files (a line each)
        try:
            self._open(classification, resume_epoch, tensorboard, purge_step)
        except BaseException:
            self._abandon()
            raise

    def _open(self, classification: bool, resume_epoch: int | None, tensorboard: bool, purge_step: int | None) -> None:
        purge = None if resume_epoch is None else (purge_step if purge_step is not None else resume_epoch) + 1
        # events are buffered and written by the writer's own thread (at flush, or every flush_secs)
        if tensorboard:
            with self._writing(None):
                self.writer = SummaryWriter(log_dir=str(self.run_dir), flush_secs=30, purge_step=purge)
        # one chart overlaying train and val loss, one for accuracy: the overfitting picture
        layout = {"curves": {"loss": ["Multiline", ["train/loss", "val/loss", "best/val/loss"]]}}
        if classification:
            layout["curves"]["accuracy"] = ["Multiline", ["train/acc", "val/acc", "best/val/acc"]]
        layout = self.layout or layout
        with self._writing(None):
            self.writer.add_custom_scalars(layout)
        path = self.csv_path
        with self._writing(path):
            kept = self._rows_up_to(path, resume_epoch) if resume_epoch is not None else []
            if kept:  # rewritten whole (atomically), then appended to
                text = io.StringIO()
                csv.writer(text).writerows([list(self.columns), *kept])
                atomic_write(path, text.getvalue().encode())
            self._csv_file = open(path, "a" if kept else "w", newline="")  # noqa: SIM115 - open for the run
            self._csv = csv.writer(self._csv_file)
            if not kept:
                self._csv.writerow(self.columns)
            self._csv_file.flush()

    def _rows_up_to(self, path: Path, epoch: int) -> list[list[str]]:
        """The rows of an existing metrics.csv for epochs 1..epoch, in this run's column order. A file that cannot be
        read as CSV is set aside (renamed, never deleted) and the run goes on with a new one; either way a
        missing curve is said in ``warnings``."""
        if epoch < 1:
            return []
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if (r.get("epoch") or "").isdigit() and int(r["epoch"]) <= epoch]
        except FileNotFoundError:
            rows = []
        except (UnicodeDecodeError, csv.Error) as exc:
            aside = _free_name(path.with_name(path.name + ".damaged"))
            path.replace(aside)
            self.warnings.append(f"{path} could not be read ({type(exc).__name__}: {exc}); it was set aside as "
                                 f"{aside.name} and a new one begun")
            rows = []
        if len(rows) < epoch:
            self.warnings.append(f"{path.name} has rows for {len(rows)} of the {epoch} epochs trained before this "
                                 "resume; the others are missing from it")
        return [[r.get(c) or "" for c in self.columns] for r in rows]

    @property
    def events_path(self) -> Path | None:
        """This run's TensorBoard event file; if the writer did not start, the newest of this process (or None)."""
        name = None
        if not isinstance(self.writer, _NoWriter):  # the file tensorboard's EventFileWriter opened
            name = getattr(getattr(getattr(self.writer, "file_writer", None), "event_writer", None), "_file_name",
                           None)
        if name is None:
            mine = sorted(self.run_dir.glob(f"events.out.tfevents.*.{os.getpid()}.*"), key=lambda p: p.name)
            return mine[-1] if mine else None
        return Path(name)

    @contextlib.contextmanager
    def _writing(self, path: Path | None) -> Iterator[None]:
        """An OSError inside becomes WriteError naming ``path`` (None: the event file), or RunFolderGone."""
        try:
            yield
        except OSError as exc:
            target = path if path is not None else (self.events_path or f"a TensorBoard event file in {self.run_dir}")
            raise self.folder.failure(target, exc) from exc

    def _abandon(self) -> None:
        """After a failed start: no writer thread or open file left behind; their errors are not news."""
        with contextlib.suppress(Exception):
            self.writer.close()
        if self._csv_file is not None:
            with contextlib.suppress(Exception):
                self._csv_file.close()

    def log_epoch(self, epoch: int, metrics: dict[str, float | None], step: int | None = None) -> None:
        """One row of metrics.csv and a point of each curve, at ``step`` (an agent's environment step) or the
        epoch."""
        with self._writing(None):
            for tag in self.scalars:
                value = metrics.get(tag)
                if value is not None:
                    self.writer.add_scalar(tag, value, epoch if step is None else step)
        with self._writing(self.csv_path):
            self._csv.writerow([epoch] + [_cell(metrics.get(c)) for c in self.columns[1:]])
            self._csv_file.flush()

    @_events
    def log_step(self, step: int, loss: torch.Tensor) -> None:
        """``train/loss_step``: one mini-batch's loss at a global optimizer step (trainer.log_every_n_steps)."""
        self.writer.add_scalar("train/loss_step", loss.item(), step)

    @_events
    def log_scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        """``<prefix>/<name>`` for each finite value (the environment evaluations of rl datasets: eval/...)."""
        for name, value in values.items():
            if math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    @_events
    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """``image``: (H, W, 3) uint8, as nnexp.pictures draws them."""
        self.writer.add_image(tag, image, step, dataformats="HWC")

    @_events
    def log_histograms(self, params: Iterable[tuple[str, torch.nn.Parameter]], step: int) -> None:
        """``weights/<name>`` and ``grads/<name>`` (the gradient of the last optimizer step) per parameter."""
        for name, p in params:
            self._histogram(f"weights/{name}", p, step)
            if p.grad is not None:
                self._histogram(f"grads/{name}", p.grad, step)

    @_events
    def log_grad_norms(self, params: Iterable[tuple[str, torch.nn.Parameter]], step: int) -> None:
        """``grad_norm/<name>``: L2 norm of each parameter's gradient from the last optimizer step.

        The loop leaves the last step's gradients in ``p.grad`` (it clears them at
        the start of a step, not the end), so they are read here, once, at logging
        time: no extra work or host sync inside the loop.
        """
        named = [(name, p.grad) for name, p in params if p.grad is not None]
        if not named:
            return
        norms = torch.stack([g.detach().float().norm() for _, g in named]).tolist()  # one sync
        for (name, _), norm in zip(named, norms, strict=True):
            self.writer.add_scalar(f"grad_norm/{name}", norm, step)

    def _histogram(self, tag: str, values: torch.Tensor, step: int) -> None:
        # bucketed by torch on the CPU: fast, and deterministic (torch.histc on CUDA is not)
        v = values.detach().float().cpu().reshape(-1)  # (n,)
        if v.numel() == 0:
            return
        lo, hi = (t.item() for t in torch.aminmax(v))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return  # NaN or Inf inside (min and max carry them): nothing meaningful to bucket
        left, right = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)  # a constant tensor still gets a bucket
        counts = torch.histc(v, bins=HISTOGRAM_BINS, min=left, max=right)  # (bins,)
        edges = torch.linspace(left, right, HISTOGRAM_BINS + 1)  # (bins + 1,)
        # TensorBoard stores right edges only; an empty first bucket carries the left edge
        self.writer.add_histogram_raw(tag, min=lo, max=hi, num=v.numel(), sum=v.sum().item(),
                                      sum_squares=v.dot(v).item(), bucket_limits=edges.tolist(),
                                      bucket_counts=[0.0, *counts.tolist()], global_step=step)

    @_events
    def log_text(self, tag: str, text: str) -> None:
        self.writer.add_text(tag, text)

    @_events
    def log_hparams(self, hparams: dict[str, Any], metrics: tuple[str, ...]) -> None:
        """Write the hparams entry into this run's own event file (not a timestamped subfolder). ``metrics``:
        per-epoch tags; HPARAMS shows the last value of each (TensorBoard reads the curve itself)."""
        exp, ssi, sei = hparams_summary(_hparam_values(hparams), dict.fromkeys(metrics, 0.0))
        file_writer = self.writer._get_file_writer()
        for summary in (exp, ssi, sei):
            file_writer.add_summary(summary)

    def flush(self) -> None:
        with self._writing(None):
            self.writer.flush()
        with self._writing(self.csv_path):
            self._csv_file.flush()

    def close(self) -> None:
        """Flush and close both files, each whatever the other did; the first failure is raised."""
        first: Exception | None = None
        try:
            with self._writing(None):
                self.writer.flush()  # raises what the writer's thread met while writing
                self.writer.close()
        except Exception as exc:  # noqa: BLE001 - the metrics still get their chance
            first = exc
            with contextlib.suppress(Exception):
                self.writer.close()
        try:
            with self._writing(self.csv_path):
                if self._csv_file is not None:
                    self._csv_file.close()  # closed even when its last flush fails: nothing left for exit
        except Exception as exc:  # noqa: BLE001
            first = first or exc
        if first is not None:
            raise first


def _free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``, ...: the first that does not exist."""
    n, free = 0, path
    while free.exists():
        n += 1
        free = path.with_name(f"{path.name}.{n}")
    return free


def _cell(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _hparam_values(hparams: dict[str, Any]) -> dict[str, Any]:
    """TensorBoard accepts bool, int, float and str; lists and None become strings."""
    out = {}
    for key, value in hparams.items():
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        else:
            out[key] = str(value)
    return out


class _NoWriter:
    """Stands in for SummaryWriter when trainer.tensorboard=false: takes every call, writes nothing."""

    def __getattr__(self, name: str):  # noqa: ANN204 - every SummaryWriter method, doing nothing
        # returns itself, so the file writer log_hparams asks for is this object too
        return lambda *args, **kwargs: self


class NullTracker:
    """What ranks other than 0 log under DDP: nothing."""

    def __getattr__(self, name: str):  # noqa: ANN204 - every Tracker method, doing nothing
        return lambda *args, **kwargs: None
