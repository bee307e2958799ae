"""``report.png``: each configuration's curves over its seeds (training loss, validation loss, accuracy): the
mean, shaded between min and max, read from the jobs' metrics.csv files (``read_metrics``: a damaged one says
why; ``seed_bands``: the numbers, which the ``_mean`` TensorBoard runs hold too)."""

from __future__ import annotations

import csv
import io
import math
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any


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


@dataclass
class Band:
    """One metrics.csv column of a configuration, epoch by epoch: the mean, min and max over its seeds."""
    epochs: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]


def seed_bands(jobs: list[dict[str, Any]]) -> tuple[dict[int, int], dict[str, Band]]:
    """How many jobs ran each epoch, and each per-epoch column of their metrics.csv (all but epoch and seconds)
    pooled per epoch over the jobs that have a value there (``_metrics``: the table read_metrics gave, None
    for a job without metrics.csv). A job that stopped early counts at the epochs it ran: after its last one
    the numbers are those of the jobs still running, and the count says how many. A NaN at an epoch (a
    diverged seed) makes that epoch's mean, min and max NaN: said, not hidden."""
    tables = [job["_metrics"] for job in jobs if job.get("_metrics")]
    seeds = dict(sorted(Counter(e for t in tables for e in t).items()))
    columns = dict.fromkeys(c for t in tables for c in next(iter(t.values())) if c not in ("epoch", "seconds"))
    bands: dict[str, Band] = {}
    for column in columns:
        band = Band([], [], [], [])
        for epoch in seeds:
            values = [v for t in tables if epoch in t and (v := as_number(t[epoch].get(column))) is not None]
            if not values:
                continue
            nan = any(math.isnan(v) for v in values)
            band.epochs.append(epoch)
            # fmean is exact for finite values; +inf and -inf together are NaN, as IEEE sums them
            band.mean.append(fmean(values) if all(math.isfinite(v) for v in values) else sum(values) / len(values))
            band.low.append(math.nan if nan else min(values))
            band.high.append(math.nan if nan else max(values))
        if band.epochs:
            bands[column] = band
    return seeds, bands


def write_plot(path: Path, configs: list[Any], rows: list[dict[str, Any]], title: str) -> bool:
    """Training loss, validation loss (and accuracy) per configuration: the mean over its seeds, shaded
    between their min and max at each epoch (the band the ``_mean`` TensorBoard runs hold); dotted line at
    the mean best epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    bands = {c.label: seed_bands(c.done)[1] for c in configs if c.done}
    if not any(bands.values()):
        return False
    has_acc = any("val/acc" in b for b in bands.values())
    agents = all("eval/return" in b for b in bands.values() if b)  # agents' runs (nnexp/rl/): rounds of steps
    # (title, y label, the curves it draws); validation loss has its own panel on a linear scale,
    # zoomed past the first epochs, where the differences between cures are a few hundredths
    panels = [("training loss", "loss", ("train/loss",)), ("validation loss", "loss", ("val/loss",))]
    if agents:
        panels = [("evaluation return (greedy policy)", "return", ("eval/return",)),
                  ("return of the training episodes", "return", ("train/episodic_return",))]
        has_acc = False
    elif has_acc:
        panels.append(("accuracy: train dashed, val solid", "accuracy", ("train/acc", "val/acc")))
    fig = Figure(figsize=(15 if has_acc else 11, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colors = [f"C{i % 10}" for i in range(len(rows))]
    widths = [2.4 - 1.2 * i / max(1, len(rows) - 1) for i in range(len(rows))]  # equal curves stay visible
    for ax, (heading, ylabel, tags) in zip(axes, panels, strict=True):
        _draw_panel(ax, tags, [(bands.get(r["label"], {}), r["best_epoch"]) for r in rows], colors, widths)
        ax.set(xlabel="round (agent.eval_every environment steps)" if agents else "epoch", ylabel=ylabel,
               title=heading)
    handles = [Line2D([], [], color=color, linewidth=width, label=textwrap.fill(row["label"], 36))
               for row, color, width in zip(rows, colors, widths, strict=True)]
    handles += [Line2D([], [], color="grey", linestyle=s, label=t)
                for s, t in (("--", "train (accuracy)"), ("-", "validation (accuracy)"),
                             (":", f"best {'round' if agents else 'epoch'} (mean)"))
                if has_acc or s == ":"]
    handles.append(Patch(color="grey", alpha=_BAND_ALPHA, linewidth=0,
                         label="shaded: min..max over seeds" + ("\n(accuracy: val's)" if has_acc else "")))
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, title="mean over seeds", title_fontsize=9)
    fig.suptitle(textwrap.shorten(title, 100, placeholder=" ...)"), fontsize=11)
    fig.savefig(path)
    return True


_BAND_ALPHA = 0.18  # light enough that the bands of two configurations show through each other


def _draw_panel(ax: Any, tags: tuple[str, ...], configs: list[tuple[dict[str, Band], float | None]],
                colors: list[str], widths: list[float]) -> None:
    """One panel: per configuration (its bands, its mean best epoch) the mean of each tag, shaded between min
    and max (in the accuracy panel val/acc's only: two bands per configuration would hide each other)."""
    from matplotlib.ticker import MaxNLocator

    shown: list[float] = []  # the values past the first tenth of each curve, for the zoom
    for (bands, best_epoch), color, width in zip(configs, colors, widths, strict=True):
        for tag in (t for t in tags if t in bands):
            band, shaded = bands[tag], not (tag.startswith("train/") and len(tags) > 1)
            ax.plot(band.epochs, band.mean, "-" if shaded else "--", color=color, linewidth=width)
            start = len(band.epochs) // 10
            shown += [v for v in band.mean[start:] if math.isfinite(v)]
            if shaded:
                ax.fill_between(band.epochs, band.low, band.high, color=color, alpha=_BAND_ALPHA, linewidth=0)
                shown += [v for v in band.low[start:] + band.high[start:] if math.isfinite(v)]
        if best_epoch is not None and bands:
            ax.axvline(best_epoch, color=color, linestyle=":", linewidth=1.2)
    if shown:
        low, high = min(shown), max(shown)
        if tags == ("train/loss",) and low > 0 and high / low > 100:
            ax.set_yscale("log")
        elif high > low:
            pad = 0.08 * (high - low)
            ax.set_ylim(low - pad, high + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
