"""Train, sweep and report from Python (a notebook): ``nnexp.train``, ``nnexp.sweep``, ``nnexp.report``.

Each call is the command the CLI runs, run in this process by the same entry point:
``nnexp.train("model=lenet5")`` is ``nnexp train model=lenet5`` (nnexp/app.py: the same Hydra
composition, run folder, ``.hydra/``, summary.json and TensorBoard files), ``nnexp.sweep(...)`` is
``nnexp train -m ...`` and ``nnexp.report(path)`` is ``nnexp report path``. What the command prints
is printed. Where it would exit 0 the call returns a typed result read back from the folders; where
it would exit non-zero the call raises :class:`~nnexp.errors.NnexpRunError` with the line(s) the command
printed for it and its exit code (``check=False``: the result is returned anyway, its ``exit_code``
says how it went).

Nothing ends the user's process or raises SystemExit: a signal that ends ``nnexp`` at once while it
composes or sets up ends the call instead (nnexp/signals.py, ``in_process``), and Ctrl-C (a notebook's
interrupt) while training stops the run politely, as in the CLI, and raises with exit code 130. Calls
can follow each other in one process: Hydra's global state, the logging set-up, the signal handlers,
``sys.argv`` and the folder locks are as they were after each. Free of torch and Hydra until a call.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnexp.errors import EXIT_FAILED, EXIT_USAGE, NnexpRunError
from nnexp.record import RunSummary
from nnexp.record import read as read_record

__all__ = ["NnexpRunError", "ReportResult", "RunResult", "SweepResult", "report", "sweep", "train"]


@dataclass(frozen=True, repr=False)
class RunResult:
    """One run (``nnexp.train``, or a job of ``nnexp.sweep``), read back from its folder.

    ``summary``: its summary.json as a dict, the keys of docs/ARCHITECTURE.md's run record
    (``summary["best"]["val/acc"]``, ``summary["status"]``; NaN/Inf as floats, {} for a job that left none).
    ``record``: the same, typed (:class:`nnexp.record.RunSummary`; None where there is no summary.json).
    ``exit_code``: what ``nnexp train`` exits with for this run (0 completed or early stopped, 1 failed,
    2 a config error, 3 diverged, 130 interrupted).
    """

    run_dir: Path
    summary: dict[str, Any]
    record: RunSummary | None
    exit_code: int

    @property
    def history(self) -> list[dict[str, float | None]]:
        """metrics.csv, one dict per epoch: ``epoch`` (an int), ``train/loss``, ``val/loss``, ``train/acc``,
        ``val/acc``, ``lr``, ``seconds``, ``grad_norm/...`` (floats; None where the run has no value). Read on
        each access: a run continued since shows its new epochs. ValueError when the file is damaged."""
        from nnexp.report_plot import as_number, read_metrics

        path = self.run_dir / "metrics.csv"
        if not path.is_file():
            return []
        try:
            table = read_metrics(path)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        return [{k: epoch if k == "epoch" else as_number(v) for k, v in row.items()} for epoch, row in table.items()]

    @property
    def status(self) -> str:
        """completed, early_stopped, diverged, interrupted, failed; "no summary" where the job left none."""
        return str(self.summary.get("status", "no summary"))

    def __repr__(self) -> str:
        return f"RunResult(run_dir={str(self.run_dir)!r}, status={self.status!r}, exit_code={self.exit_code})"


@dataclass(frozen=True, repr=False)
class SweepResult:
    """A sweep (``nnexp.sweep``): its folder, which ``nnexp.report`` and ``tensorboard --logdir`` take, and
    its jobs in job-number order. ``exit_code`` as ``nnexp train -m``: 0 when every job finished, 1 when one
    failed or did not finish, else 3 when one diverged."""

    dir: Path
    jobs: list[RunResult]
    exit_code: int

    def __repr__(self) -> str:
        return f"SweepResult(dir={str(self.dir)!r}, jobs={len(self.jobs)}, exit_code={self.exit_code})"


@dataclass(frozen=True)
class ReportResult:
    """``nnexp.report``: the rows of ``report.csv`` (one dict per configuration, then the failed and damaged
    jobs; numbers as floats, None where empty) and the files written (None: not written, as when the first
    path is a summary.json rather than a folder, or there was no metrics.csv to plot)."""

    rows: list[dict[str, Any]]
    csv: Path | None
    png: Path | None


def train(*overrides: str, check: bool = True) -> RunResult:
    """``nnexp train OVERRIDES``: one run, e.g. ``nnexp.train("model=lenet5", "trainer.epochs=3")``.

    Raises NnexpRunError (message and exit code as the CLI's) where the command exits non-zero; with
    ``check=False`` a run that left a folder (failed, diverged, interrupted) is returned instead."""
    from nnexp import app

    args = _overrides(overrides, "train")
    code, lines = _call(lambda: app.train(args), hydra=True)
    state = dict(app._STATE)
    run_dir = state["run_dir"]
    result = _run_result(run_dir, code) if run_dir is not None and (run_dir / "summary.json").is_file() else None
    if code == 0 and result is None:  # a DDP rank other than 0 (torchrun): rank 0 owns the run
        raise NnexpRunError("nnexp: error: this process trained no run of its own to return", EXIT_FAILED)
    if code and (check or result is None):
        raise NnexpRunError(_message(lines, code, state["started"], result and result.record), code, result)
    return result


def sweep(*overrides: str, check: bool = True) -> SweepResult:
    """``nnexp train -m OVERRIDES``: a sweep (Hydra multirun), e.g.
    ``nnexp.sweep("regularizer=none,l2", "trainer.seed=0,1")``; the same folders and table as ``-m``.

    Raises NnexpRunError where the command exits non-zero (a job failed or diverged: ``result`` holds the
    sweep); with ``check=False`` the sweep is returned instead, once it has a folder."""
    from nnexp import app
    from nnexp.sweep_jobs import jobs

    args = ["-m", *_overrides(overrides, "sweep")]
    code, lines = _call(lambda: app.train(args), hydra=True)
    state = dict(app._STATE)
    found = state["sweep_dir"]
    sweep_dir = found.absolute() if found is not None and found.is_dir() else None  # as run_dir: from anywhere
    result = None
    if sweep_dir is not None:
        runs = [_run_result(j.folder, app.exit_code(j.summary) if j.summary else EXIT_FAILED, j.summary)
                for j in jobs(sweep_dir)]
        result = SweepResult(sweep_dir, runs, code)
    if code and (check or result is None):
        stopped = next((j.record for j in result.jobs if j.status == "interrupted"), None) if result else None
        failures = [ln for ln in lines if ln.startswith(("nnexp: job failed", "nnexp: job diverged"))]
        raise NnexpRunError("\n".join(failures) or _message(lines, code, state["started"], stopped), code, result)
    if result is None:  # every job skipped by the sweeper (an empty search): nothing ran
        raise NnexpRunError("nnexp: error: the sweep made no folder: no job ran", EXIT_FAILED)
    return result


def report(*paths: str | os.PathLike[str], check: bool = True) -> ReportResult:
    """``nnexp report PATHS``: the table (seeds pooled), the claims, ``report.csv`` and ``report.png`` in the
    first path, e.g. ``nnexp.report(sweep.dir)``. Raises NnexpRunError where the command exits non-zero."""
    from nnexp.report_cmd import main

    args = [os.fspath(p) for p in paths]
    first = Path(args[0]).absolute() if args else Path()
    files = [first / "report.csv", first / "report.png"]
    before = [_mtime(f) for f in files]
    code, lines = _call(lambda: main(args))
    if code and check:
        errors = [ln for ln in lines if ln.startswith("nnexp report: error:")]
        raise NnexpRunError(errors[-1] if errors else "\n".join(lines), code)
    # written by this report: a report.png an earlier one left is not this one's (no metrics.csv to plot now)
    csv_path, png = (f if args and first.is_dir() and _mtime(f) not in (None, was) else None
                     for f, was in zip(files, before, strict=True))
    return ReportResult(_report_rows(csv_path) if csv_path is not None else [], csv_path, png)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns if path.is_file() else None
    except OSError:
        return None


def _overrides(overrides: tuple[Any, ...], name: str) -> list[str]:
    """The overrides as typed after ``nnexp train``; a flag is not one (a sweep is nnexp.sweep)."""
    for item in overrides:
        if not isinstance(item, str):
            raise TypeError(f"nnexp.{name}() takes overrides as strings such as 'trainer.epochs=3', not {item!r}")
        if item.startswith("-"):
            raise NnexpRunError(f"nnexp: error: nnexp.{name}() takes overrides (key=value), not the flag {item!r}"
                                f"{'; a sweep is nnexp.sweep(...)' if item in ('-m', '--multirun') else ''}",
                                EXIT_USAGE)
    return list(overrides)


def _run_result(run_dir: Path, code: int, summary: RunSummary | None = None) -> RunResult:
    summary = summary if summary is not None else read_record(run_dir)
    return RunResult(Path(run_dir), summary.to_dict() if summary is not None else {}, summary, code)


def _message(lines: list[str], code: int, started: bool, stopped: RunSummary | None) -> str:
    """What ``nnexp train`` printed for its failure: where no job started, all of it (Hydra's own error,
    condensed, or a folder the OS refused); else its last error line. A run that a signal stopped politely
    (``stopped``, its record) prints none: what it printed on stdout, ``Run interrupted: <how>.``"""
    if not started and lines:
        return "\n".join(lines)
    errors = [ln for ln in lines if ln.startswith(("nnexp: error:", "nnexp: interrupted"))]
    if stopped is not None and stopped.status == "interrupted" and not any(
            e.startswith("nnexp: interrupted") for e in errors):
        return f"Run {stopped.status}: {stopped.message}."
    return errors[-1] if errors else f"nnexp train exited with code {code}"


class _Copy:
    """stderr as the command writes it, copied (the lines of a failure become the exception's message)."""

    def __init__(self, target: Any) -> None:
        self.target, self.parts, self.copying = target, [], True

    def write(self, text: str) -> int:
        if self.copying:
            self.parts.append(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the real stream's
        return getattr(self.target, name)

    def lines(self) -> list[str]:
        return [line.rstrip() for line in "".join(self.parts).splitlines() if line.strip()]


def _call(command: Callable[[], int], hydra: bool = False) -> tuple[int, list[str]]:
    """Run a command as ``nnexp`` runs it (nnexp/cli.py), in this process: its exit code, and the lines it
    wrote to stderr. A KeyboardInterrupt between its phases (the table after a sweep) ends it as in the CLI."""
    from nnexp import folder_lock, signals

    copy, saved_stderr = _Copy(sys.stderr), sys.stderr
    locks = folder_lock.held()
    sys.stderr = copy
    try:
        with (_logging_as_it_was(), _hydra_as_it_was() if hydra else contextlib.nullcontext(),
              signals.terminate_politely(), signals.in_process()):
            try:
                code = command()
            except KeyboardInterrupt as exc:
                code = signals.interrupted(exc).code
    finally:
        sys.stderr, copy.copying = saved_stderr, False
        for lock in folder_lock.held() - locks:  # a signal held back until a claim was made: released, as a
            lock.release()  # process's end would
    return code, copy.lines()


@contextlib.contextmanager
def _logging_as_it_was() -> Iterator[None]:
    """Hydra sets up the root logger for each run (a handler writing into the run's train.log): afterwards the
    user's own logging goes where it went before, not into the last run's log."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def _hydra_as_it_was() -> Iterator[None]:
    """Hydra's entry point refuses to start while Hydra is initialized (the user's own ``initialize()`` left
    open) and leaves its runtime config set: both are put back as they were."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    global_hydra, runtime = GlobalHydra.instance(), HydraConfig.instance()
    saved = global_hydra.hydra, runtime.cfg
    global_hydra.clear()
    try:
        yield
    finally:
        global_hydra.hydra, runtime.cfg = saved


_TEXT_COLUMNS = ("label", "monitor", "status", "diagnosis", "error")


def _report_rows(path: Path) -> list[dict[str, Any]]:
    from nnexp.report_plot import as_number

    with open(path, newline="", encoding="utf-8") as f:
        rows = [{k: v if k in _TEXT_COLUMNS else as_number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return [{**row, "n": int(row["n"])} if isinstance(row.get("n"), float) else row for row in rows]
