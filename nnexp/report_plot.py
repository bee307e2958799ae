"""``report.png``: each configuration's curves averaged over its seeds (training loss, validation loss,
accuracy), read from the jobs' metrics.csv files (``read_metrics``: a damaged one says why)."""

from __future__ import annotations

import csv
import io
import math
import textwrap
from pathlib import Path
from statistics import mean
from typing import Any

TAGS = ("train/loss", "val/loss", "train/acc", "val/acc")


def as_number(value: Any) -> float | None:
    """A summary or CSV value as a float ("nan"/"inf" are how summary.json stores non-finite numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_metrics(file: Path) -> dict[int, dict[str, str]]:
    """A run's metrics.csv as {epoch: {column: cell}}. Raises ValueError saying where and why it cannot be
    trusted: not UTF-8, no header, a line cut short or with extra fields, an epoch or a number that is not one."""
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    lines = csv.reader(io.StringIO(text, newline=""))
    table: dict[int, dict[str, str]] = {}
    try:
        header = next(lines, None)
        if not header or header[0] != "epoch":
            raise ValueError("line 1 is not the header (epoch, train/loss, ...)")
        for row in lines:
            where = f"line {lines.line_num}"
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{where}: {len(row)} field{'s' if len(row) != 1 else ''} where the header has "
                                 f"{len(header)} (cut short or garbled)")
            epoch, *values = row
            if not (epoch.isascii() and epoch.isdigit()):
                raise ValueError(f"{where}: epoch {epoch[:20]!r} is not a whole number")
            bad = next((v for v in values if v and as_number(v) is None), None)
            if bad is not None:
                raise ValueError(f"{where}: {bad[:20]!r} is not a number")
            table[int(epoch)] = dict(zip(header, row, strict=True))
    except csv.Error as exc:
        raise ValueError(f"line {lines.line_num}: {exc}") from None
    return table


def mean_curves(jobs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each metrics.csv column averaged over the jobs, on the epochs every job has (``_metrics``: the table
    read_metrics gave, None for a job without metrics.csv)."""
    tables = [job["_metrics"] for job in jobs if job.get("_metrics") is not None]
    if not tables:
        return {}
    epochs = sorted(set.intersection(*(set(t) for t in tables)))
    curves: dict[str, list[float]] = {"epoch": [float(e) for e in epochs]}
    for tag in TAGS:
        values = [[as_number(t[e].get(tag)) for t in tables] for e in epochs]
        if epochs and all(v is not None for row in values for v in row):
            curves[tag] = [mean(row) for row in values]
    return curves


def write_plot(path: Path, configs: list[Any], rows: list[dict[str, Any]], title: str) -> bool:
    """Mean training loss, validation loss (and accuracy) curves per configuration; dotted line at the mean
    best epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    curves = {c.label: mean_curves(c.done) for c in configs if c.done}
    if not any(len(c.get("epoch", [])) for c in curves.values()):
        return False
    has_acc = any("val/acc" in c for c in curves.values())
    # (title, y label, the curves it draws); validation loss has its own panel on a linear scale,
    # zoomed past the first epochs, where the differences between cures are a few hundredths
    panels = [("training loss", "loss", ("train/loss",)), ("validation loss", "loss", ("val/loss",))]
    if has_acc:
        panels.append(("accuracy: train dashed, val solid", "accuracy", ("train/acc", "val/acc")))
    fig = Figure(figsize=(15 if has_acc else 11, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colors = [f"C{i % 10}" for i in range(len(rows))]
    widths = [2.4 - 1.2 * i / max(1, len(rows) - 1) for i in range(len(rows))]  # equal curves stay visible
    for ax, (heading, ylabel, tags) in zip(axes, panels, strict=True):
        shown: list[float] = []  # the values past the first tenth of each curve, for the zoom
        for row, color, width in zip(rows, colors, widths, strict=True):
            c = curves.get(row["label"], {})
            for tag in tags:
                if tag in c:
                    style = "--" if tag.startswith("train/") and len(tags) > 1 else "-"
                    ax.plot(c["epoch"], c[tag], style, color=color, linewidth=width)
                    shown += [v for v in c[tag][len(c[tag]) // 10:] if math.isfinite(v)]
            if row["best_epoch"] is not None and c:
                ax.axvline(row["best_epoch"], color=color, linestyle=":", linewidth=1.2)
        if shown:
            low, high = min(shown), max(shown)
            if tags == ("train/loss",) and low > 0 and high / low > 100:
                ax.set_yscale("log")
            elif high > low:
                pad = 0.08 * (high - low)
                ax.set_ylim(low - pad, high + pad)
        ax.set(xlabel="epoch", ylabel=ylabel, title=heading)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=color, linewidth=width, label=textwrap.fill(row["label"], 36))
               for row, color, width in zip(rows, colors, widths, strict=True)]
    handles += [Line2D([], [], color="grey", linestyle=s, label=t)
                for s, t in (("--", "train (accuracy)"), ("-", "validation (accuracy)"), (":", "best epoch (mean)"))
                if has_acc or s == ":"]
    fig.legend(handles=handles, loc="outside right upper", fontsize=9)
    fig.suptitle(textwrap.shorten(title, 100, placeholder=" ...)"), fontsize=11)
    fig.savefig(path)
    return True
