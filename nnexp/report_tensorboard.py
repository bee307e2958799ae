"""``<PATH>/_mean/<configuration>/``: each configuration of a report as one TensorBoard run, its seeds averaged.

TensorBoard cannot average runs itself (tensorboard issue 376), so ``nnexp report`` writes, per configuration,
one event file holding, for every per-epoch column of the jobs' metrics.csv (losses, accuracies, lr, grad
norms), ``mean/<tag>``, ``min/<tag>`` and ``max/<tag>`` over its seeds at step = epoch, and ``seeds``: how
many jobs ran that epoch (a seed that stopped early is counted out after its last epoch). A custom-scalars
layout draws one Margin chart per tag: the mean with its min..max band. ``tensorboard --logdir <sweep>`` then
shows each configuration as one curve beside its jobs.

The tags start with ``mean/``, ``min/``, ``max/`` rather than end with them: the jobs' layout
(nnexp/tracking.py) draws every tag that starts with ``train/loss`` or ``val/loss`` in its loss chart (the
tags there are regular expressions), so ``train/loss/mean`` would put three more lines per configuration there.

Written without torch (``nnexp report`` imports none): the protocol buffers and record framing of the
tensorboard package, each event file written whole (atomically). The folder is the report's own: a file in
it (``MARKER``) says so, and each report replaces that folder whole; a ``_mean`` without it is never touched.
No ``summary.json`` is ever written in it, so neither ``nnexp report`` nor a sweep run again reads these runs
as jobs.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from nnexp.atomic import atomic_write
from nnexp.report_plot import Band, seed_bands

MEAN_DIR = "_mean"
MARKER = ".nnexp-report"
STATS = ("mean", "min", "max")
CATEGORY = "mean over seeds, band min..max (nnexp report)"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+,@%~\[\]{}-]")  # anything else in a label (/, :, quotes, ...) becomes _
_LONGEST = 120  # characters of a label kept in its folder's name; a hash of the whole label follows


def foreign(folder: Path) -> bool:
    """Is something at ``folder`` that nnexp report did not write (and so must not replace)? An empty folder
    is not: replacing it loses nothing (a report that failed before its first file leaves one)."""
    if not (folder.exists() or folder.is_symlink()):
        return False
    if folder.is_symlink() or not folder.is_dir():
        return True
    return not (folder / MARKER).is_file() and any(folder.iterdir())


def folder_names(labels: list[str]) -> list[str]:
    """A folder name per configuration label, distinct: overrides joined by commas (as Hydra's
    ``override_dirname``), characters a file system or a shell may refuse replaced by ``_``; a long label
    (or one that would clash or hide) is cut and followed by a hash of the whole."""
    names: list[str] = []
    for label in labels:
        name = _UNSAFE.sub("_", ",".join(label.split()))
        if len(name) > _LONGEST or name in names or name.startswith("."):
            name = f"{name[:_LONGEST]}~{hashlib.sha256(label.encode()).hexdigest()[:8]}"
        while name in names:  # two equal labels
            name += "~"
        names.append(name)
    return names


def write_mean_runs(folder: Path, configs: list[Any]) -> int:
    """Replace ``folder`` (``<PATH>/_mean``, after ``foreign`` said it may be) with one TensorBoard run per
    configuration that has curves; the number of runs written. OSError when a file cannot be written."""
    if folder.exists():
        shutil.rmtree(folder)
    runs = [(c.label, *seed_bands(c.done)) for c in configs if c.done]
    runs = [(label, seeds, bands) for label, seeds, bands in runs if bands]
    if not runs:
        return 0
    folder.mkdir()
    (folder / MARKER).write_text(
        "Written by nnexp report: one TensorBoard run per configuration, its seeds averaged.\n"
        "Each nnexp report of the folder above replaces this folder whole.\n")
    for name, (_, seeds, bands) in zip(folder_names([r[0] for r in runs]), runs, strict=True):
        write_events(folder / name, seeds, bands)
    return len(runs)


def write_events(run_dir: Path, seeds: dict[int, int], bands: dict[str, Band]) -> Path:
    """One event file in ``run_dir``: the layout, then per epoch the seeds count and each tag's mean, min and
    max (float32, as TensorBoard keeps scalars)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    now = time.time()
    events = [event_pb2.Event(wall_time=now, file_version="brain.Event:2"),
              event_pb2.Event(wall_time=now, step=0, summary=_layout(list(bands)))]
    at = {tag: dict(zip(band.epochs, zip(band.mean, band.low, band.high, strict=True), strict=True))
          for tag, band in bands.items()}  # tag -> {epoch: (mean, min, max)}
    for epoch, count in seeds.items():
        values = [summary_pb2.Summary.Value(tag="seeds", simple_value=count)]
        for tag, stats in at.items():
            if epoch in stats:
                values += [summary_pb2.Summary.Value(tag=f"{stat}/{tag}", simple_value=v)
                           for stat, v in zip(STATS, stats[epoch], strict=True)]
        events.append(event_pb2.Event(wall_time=now, step=epoch, summary=summary_pb2.Summary(value=values)))
    records = io.BytesIO()  # framed as TFRecords by tensorboard's own writer, then written whole
    writer = RecordWriter(records)
    for event in events:
        writer.write(event.SerializeToString())
    path = run_dir / f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.nnexp-report"
    atomic_write(path, records.getvalue())
    return path


def _layout(tags: list[str]) -> Any:
    """The custom-scalars layout as a summary: a Margin chart per tag (mean, lower min, upper max) and the
    seeds count, in one category every configuration's run shares (TensorBoard merges them)."""
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    margin = layout_pb2.MarginChartContent
    charts = [layout_pb2.Chart(title=tag, margin=margin(series=[margin.Series(
        value=f"mean/{tag}", lower=f"min/{tag}", upper=f"max/{tag}")])) for tag in tags]
    charts.append(layout_pb2.Chart(title="seeds (jobs averaged at each epoch)",
                                   multiline=layout_pb2.MultilineChartContent(tag=["^seeds$"])))
    layout = layout_pb2.Layout(category=[layout_pb2.Category(title=CATEGORY, chart=charts)])
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[layout.SerializeToString()])
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=metadata.CONFIG_SUMMARY_TAG, metadata=metadata.create_summary_metadata(), tensor=tensor)])

