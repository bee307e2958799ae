"""What the terminal shows: a live rich progress bar on a terminal or in a notebook, plain lines in CI logs, a summary."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nnexp.terminal import stdout_console


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _epoch_line(metrics: dict[str, Any]) -> str:
    parts = [f"train/loss {_fmt(metrics['train/loss'])}", f"val/loss {_fmt(metrics['val/loss'])}"]
    if metrics.get("train/acc") is not None:
        parts += [f"train/acc {_fmt(metrics['train/acc'], 3)}", f"val/acc {_fmt(metrics['val/acc'], 3)}"]
    return "  ".join(parts)


def live_in_notebook(console: Console) -> bool:
    """A notebook's stdout is no TTY, yet rich draws its live bar there, as a widget: where ipywidgets is
    installed (without it rich warns and draws nothing, so one line per epoch is better)."""
    return console.is_jupyter and importlib.util.find_spec("ipywidgets") is not None


class Reporter:
    """``mode``: rich (live bar), plain (one line per epoch), none (summary only), auto (rich on a TTY or in a
    Jupyter notebook). An agent's run (nnexp/rl/recorder.py) counts evaluation rounds instead of epochs and has
    its own line and summary."""

    unit = "epoch"

    def __init__(self, mode: str = "auto", epochs: int = 1, title: str = "", run_dir: str = "") -> None:
        self.console = stdout_console()  # plain text: the sentences hold claims with brackets
        if mode == "auto":
            mode = "rich" if sys.stdout.isatty() or live_in_notebook(self.console) else "plain"
        self.mode, self.epochs, self.title, self.run_dir = mode, epochs, title, run_dir
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> Reporter:
        if self.title and self.mode != "none":
            self._heading()
        if self.mode == "rich":
            self._progress = Progress(
                TextColumn(f"[bold]{self.unit}"), MofNCompleteColumn(), BarColumn(),
                TextColumn("{task.fields[metrics]}"), TimeElapsedColumn(),
                console=self.console, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.epochs, metrics="")
        return self

    def _heading(self) -> None:
        """``title  ->  run_dir`` on one line where it fits, else the folder on a line of its own: a path is
        never broken, however long (the terminal may fold it on screen; a copy of it stays whole)."""
        line = f"{self.title}  ->  {self.run_dir}"
        if self.run_dir and cell_len(line) <= self.console.width:
            self.console.print(line)
            return
        self.console.print(self.title)  # wrapped between words: it holds no path
        if self.run_dir:
            self.console.print(f"  -> {self.run_dir}", soft_wrap=True)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def epoch(self, epoch: int, metrics: dict[str, Any], improved: bool) -> None:
        mark = " *" if improved else ""
        if self.mode == "rich" and self._progress is not None:
            self._progress.update(self._task, completed=epoch, metrics=self.line(metrics) + mark)
        elif self.mode == "plain":
            width = len(str(self.epochs))
            print(f"{self.unit} {epoch:>{width}}/{self.epochs}  {self.line(metrics)}  lr {metrics['lr']:.3g}{mark}",
                  flush=True)

    def line(self, metrics: dict[str, Any]) -> str:
        return _epoch_line(metrics)

    def summary(self, summary: dict[str, Any], words: list[str], logdir: str | None) -> None:
        """The final table (best vs final epoch), the verdict in words, and how to look at the curves."""
        best, final = summary.get("best") or {}, summary.get("final") or {}
        table = Table(title=f"nnexp run: {summary['status']}", title_justify="left")
        table.add_column("", no_wrap=True)  # at most ~60 columns: whole at 80
        table.add_column(f"best (epoch {summary.get('best_epoch') or '-'})", justify="right", no_wrap=True)
        table.add_column(f"final (epoch {summary.get('epochs_run') or '-'})", justify="right", no_wrap=True)
        for tag in ("train/loss", "val/loss", "train/acc", "val/acc"):
            if best.get(tag) is not None or final.get(tag) is not None:
                table.add_row(tag, _fmt(best.get(tag)), _fmt(final.get(tag)))
        gap_best, gap_final = summary.get("gap", {}).get("best"), summary.get("gap", {}).get("final")
        table.add_row("gap (val - train loss)", _fmt(gap_best), _fmt(gap_final))
        self.console.print(table)
        for line in words:
            if line.startswith("To continue it"):  # a command to copy: one line, as typed, whatever the width
                print(line, flush=True)
            else:
                self.console.print(line, soft_wrap=False)
        if logdir is not None:  # None: the run wrote no TensorBoard events
            print(f"See the curves:  tensorboard --logdir {shlex.quote(logdir)}", flush=True)  # unwrapped: copied
        else:
            print(f"The curves are in {summary.get('run_dir', '.')}/metrics.csv (trainer.tensorboard=false).",
                  flush=True)
