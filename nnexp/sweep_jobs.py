"""Sweeps (``nnexp train -m``): the jobs' outcomes read from their folders, the table at the end, and a
sweep command run again.

Launchers may run the jobs in other processes (joblib, submitit), so nothing
here relies on what this process saw: every job is read from its folder's
``summary.json`` (nnexp/record.py). Free of torch and Hydra: ``nnexp report``
labels jobs with :func:`labels`.

From Python, ``nnexp.sweep(...)`` runs a sweep (nnexp/api.py).
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nnexp import record
from nnexp.errors import EXIT_DIVERGED, EXIT_FAILED
from nnexp.lifecycle import busy
from nnexp.record import Outcome, RunSummary, Status

if TYPE_CHECKING:  # rich is imported when a table is printed
    from rich.table import Table

RECORD = "nnexp_sweep.json"  # in each sweep folder: the overrides of the command that started it


def labels(overrides: list[list[str]]) -> tuple[list[str], list[str]]:
    """Name each job by the overrides that differ between jobs; return the shared ones apart."""
    shared = [o for o in overrides[0] if all(o in job for job in overrides[1:])] if overrides else []
    # '+group=option' (an addition to the defaults) reads as 'group=option' in a label
    names = [" ".join(o.lstrip("+") for o in job if o not in shared) or "(defaults)" for job in overrides]
    return names, shared


def remember(sweep_dir: Path, task: list[str]) -> None:
    """Keep the command's overrides in the sweep folder, to find it when the same command runs again."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / RECORD).write_text(json.dumps({"task": list(task)}, indent=2) + "\n")


def earlier(multirun_root: Path, task: list[str]) -> Path | None:
    """The newest sweep folder (``<root>/<date>/<time>_<id>``) started by the same overrides, if any."""
    wanted = sorted(task)
    candidates = sorted(multirun_root.glob(f"*/*/{RECORD}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            before = json.loads(path.read_text())["task"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if sorted(str(o) for o in before) == wanted:
            return path.parent
    return None


@dataclass
class Job:
    folder: Path
    overrides: list[str]
    summary: RunSummary | None  # None: the job left no summary.json (killed, or never started)
    before: bool  # its summary is older than this command: an earlier run of the same sweep did it
    elsewhere: str | None = None  # another process holds the job's folder (the same sweep started twice)

    @property
    def status(self) -> str:
        if self.elsewhere:
            return "running elsewhere"
        return self.summary.status.value if self.summary else "no summary"

    @property
    def done(self) -> bool:
        """Finished (completed, early stopped or diverged); anything else runs again with the sweep."""
        return self.summary is not None and self.summary.outcome is Outcome.FINISHED

    @property
    def message(self) -> str:
        if self.summary is None:
            return f"no summary.json in {self.folder}: the job did not finish"
        return self.summary.error or self.summary.message


def jobs(sweep_dir: Path, started_at: float = 0.0) -> list[Job]:
    """Every job folder of the sweep (``<n>_<overrides>``), in job-number order."""
    found = []
    folders = (d for d in sweep_dir.iterdir() if d.is_dir() and d.name.split("_", 1)[0].isdigit())
    for folder in sorted(folders, key=lambda d: int(d.name.split("_", 1)[0])):
        summary = record.read(folder)
        before = summary is not None and (folder / record.FILE).stat().st_mtime < started_at
        overrides = (summary.overrides if summary and summary.overrides else None) or _overrides_of(folder)
        found.append(Job(folder, overrides, summary, before, busy(folder)))
    return found


def _overrides_of(folder: Path) -> list[str]:
    try:
        import yaml

        return list(yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or [])
    except (OSError, ValueError, ImportError):
        return [folder.name]


def finish(sweep_dir: Path, started_at: float) -> int:
    """After a multirun: one row per job, what did not finish named, the best job; the sweep's exit code.

    1 if a job failed or did not finish, else 3 if a job diverged, else 0.
    """
    sweep = jobs(sweep_dir, started_at)
    if not sweep:
        return 0
    names, common = labels([j.overrides for j in sweep])
    _table(sweep, names, common)
    elsewhere = [j for j in sweep if j.elsewhere]
    unfinished = [j for j in sweep if not j.done and not j.elsewhere]
    diverged = [j for j in sweep if j.summary is not None and j.summary.status is Status.DIVERGED]
    for j in unfinished:
        print(f"nnexp: job failed ({' '.join(j.overrides)}): {j.message}", file=sys.stderr)
    for j in diverged:
        print(f"nnexp: job diverged ({' '.join(j.overrides)}): {j.message}", file=sys.stderr)
    _best(sweep, names)
    for j in elsewhere:
        print(f"nnexp: job {j.folder.name} is running in another process ({j.elsewhere}); its result will be in "
              f"{j.folder}")
    before = sum(j.before for j in sweep)
    if before == len(sweep):
        print(f"All {len(sweep)} jobs were already done in {sweep_dir}: nothing new to run.")
    elif before:
        print(f"{before} of {len(sweep)} jobs were already done before this command and were skipped.")
    # unwrapped, one command a line: the user copies them
    print(f"Compare the runs:  tensorboard --logdir {shlex.quote(str(sweep_dir))}")
    print(f"Seeds pooled, claims checked:  nnexp report {shlex.quote(str(sweep_dir))}")
    return EXIT_FAILED if unfinished else EXIT_DIVERGED if diverged else 0


_COLUMNS = ("job", "status", "best epoch", "best val/loss", "best val/acc")


def _table(sweep: list[Job], names: list[str], common: list[str]) -> None:
    """One line per job where the console allows it: the headers go on two lines ("best" over "val/loss")
    before a job's label wraps, and a label wraps only between its overrides; numbers never wrap."""
    from nnexp.terminal import first_column_room, fits, print_titled, stdout_console, wrap_between

    console = stdout_console()  # a terminal's width; piped or captured, wide: one job per line in a log
    title = ["sweep:", str(len(sweep)), "jobs"]
    if common:  # the title's words: one per override, the first and last in brackets
        title += [f"({common[0]}", *common[1:]]
        title[-1] += ")"
    rows = []
    for j, name in zip(sweep, names, strict=True):
        best = (j.summary.best if j.summary else None) or {}
        rows.append((
            name, j.status + (" (before)" if j.before else ""),
            str((j.summary.best_epoch if j.summary else None) or "-"),
            f"{best['val/loss']:.4f}" if isinstance(best.get("val/loss"), (int, float)) else "-",
            f"{best['val/acc']:.3f}" if isinstance(best.get("val/acc"), (int, float)) else "-",
        ))
    headers = _COLUMNS
    table = _jobs_table(headers, rows)
    if not fits(console, table):
        headers = tuple(c.replace("best ", "best\n") for c in _COLUMNS)
        table = _jobs_table(headers, rows)
    room = None if fits(console, table) else first_column_room(console, table, headers[0], names)
    if room is not None:  # the labels broken between overrides, to the room the numbers leave
        table = _jobs_table(headers, [(wrap_between(r[0], room), *r[1:]) for r in rows])
    print_titled(console, title, table)


def _jobs_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    from rich.table import Table

    table = Table()
    for i, col in enumerate(columns):
        table.add_column(col, overflow="fold", no_wrap=i > 0)  # the job's label: wrapped, folded as a last resort
    for row in rows:
        table.add_row(*row)
    return table


def _best(sweep: list[Job], names: list[str]) -> None:
    """Name the job with the best monitored value among those that finished with one."""
    ranked = [(j.summary.best_value, name, j.summary) for j, name in zip(sweep, names, strict=True)
              if j.done and j.summary.status is not Status.DIVERGED
              and isinstance(j.summary.best_value, (int, float))]
    if len(ranked) < 2:
        return
    pick = max if ranked[0][2].mode == "max" else min
    value, name, best = pick(ranked, key=lambda r: r[0])
    print(f"Best job: {name}  ({best.monitor} {value:.4g} at epoch {best.best_epoch})")

