"""`nnexp report`'s averaged runs: `<sweep>/_mean/<configuration>` for TensorBoard, and the bands of report.png."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from nnexp.report_plot import seed_bands
from nnexp.report_tensorboard import MARKER, folder_names

COLUMNS = ("epoch", "train/loss", "val/loss", "train/acc", "val/acc", "lr", "seconds", "grad_norm/first_layer",
           "grad_norm/last_layer")


def _job(root: Path, name: str, overrides: list[str], seed: int, val_loss: list[float]) -> None:
    """A job folder as `nnexp train` leaves it (metrics.csv, summary.json); fewer epochs than the others: it
    stopped early. Every number is exact in float32, as TensorBoard keeps scalars."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    epochs = len(val_loss)
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for e, v in enumerate(val_loss, 1):  # grad norms at the last epoch only: blank cells (a diverged epoch has them)
            out.writerow([e, v / 2, v, 0.5 + e / 16, 0.5 + seed / 8, 0.125, 0.01, *([2.0 * e] * 2 if e == epochs
                                                                                    else ["", ""])])
    best = min(range(epochs), key=val_loss.__getitem__)
    (run_dir / "summary.json").write_text(json.dumps({
        "status": "completed" if epochs == 4 else "early_stopped", "epochs_run": epochs, "best_epoch": best + 1,
        "monitor": "val/loss", "mode": "min", "best_value": val_loss[best], "seed": seed,
        "final": {"train/loss": val_loss[-1] / 2, "val/loss": val_loss[-1]},
        "overrides": [*overrides, f"trainer.seed={seed}", "trainer.epochs=4"]}))


@pytest.fixture
def sweep(tmp_path) -> Path:
    """2 configurations x 2 seeds; seed 1 of regularizer=none stopped early, after epoch 2."""
    root = tmp_path / "sweep"
    _job(root, "0_none", ["regularizer=none"], 0, [1.0, 0.5, 0.25, 0.125])
    _job(root, "1_none", ["regularizer=none"], 1, [3.0, 1.5])
    _job(root, "2_l2", ["regularizer=l2"], 0, [2.0, 1.0, 0.75, 0.5])
    _job(root, "3_l2", ["regularizer=l2"], 1, [4.0, 2.0, 0.25, 1.5])
    return root


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a loopback server of the test's own
        return json.loads(response.read())


def _poll(what: str, probe: Callable[[], Any], seconds: float = 90) -> Any:
    """``probe()`` again until it returns something true (an error counts as not yet); its value."""
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            found = probe()
            if found:
                return found
        except OSError as exc:  # not listening yet, or no answer yet
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {seconds} s (last error: {last})")


@contextlib.contextmanager
def tensorboard(logdir: Path, log: Path) -> Iterator[str]:
    """A real TensorBoard server on loopback at a port it picks; its base URL. Stopped at the end."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
                                 "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        def url() -> str | None:
            assert proc.poll() is None, f"tensorboard exited {proc.returncode}:\n{log.read_text()}"
            found = re.search(r"http://127\.0\.0\.1:\d+/", log.read_text())
            return found and found.group(0)

        yield _poll("tensorboard's address", url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _scalars(base: str, run: str, tag: str) -> dict[int, float]:
    query = urllib.parse.urlencode({"run": run, "tag": tag})
    return {step: value for _, step, value in _get(f"{base}data/plugin/scalars/scalars?{query}")}


def test_tensorboard_serves_one_mean_run_per_configuration_with_its_band(run_cli, sweep, tmp_path):
    code, out, err = run_cli("report", str(sweep))
    assert code == 0, err
    assert (f"Seeds averaged into 2 TensorBoard runs (_mean/: mean, min, max per epoch):  "
            f"tensorboard --logdir {sweep}") in out.splitlines()  # piped: one line
    runs = ["_mean/regularizer=l2", "_mean/regularizer=none"]
    stats = [f"{stat}/{tag}" for tag in COLUMNS[1:] if tag != "seconds" for stat in ("mean", "min", "max")]
    with tensorboard(sweep, tmp_path / "tensorboard.log") as base:
        _poll("the averaged runs", lambda: sorted(_get(f"{base}data/runs")) == runs)
        # read to the end: an event file is read in order, and epoch 4 is its last event
        _poll("their last epoch", lambda: all(4 in _scalars(base, run, "seeds") for run in runs))
        tags = _get(f"{base}data/plugin/scalars/tags")
        assert sorted(tags) == runs
        for run in runs:
            assert sorted(tags[run]) == sorted([*stats, "seeds"])
        none, l2 = "_mean/regularizer=none", "_mean/regularizer=l2"
        # seed 1 stopped after epoch 2: from epoch 3 on the mean is seed 0's alone, and the count says so
        assert _scalars(base, none, "seeds") == {1: 2, 2: 2, 3: 1, 4: 1}
        assert _scalars(base, none, "mean/val/loss") == {1: 2.0, 2: 1.0, 3: 0.25, 4: 0.125}
        assert _scalars(base, none, "min/val/loss") == {1: 1.0, 2: 0.5, 3: 0.25, 4: 0.125}
        assert _scalars(base, none, "max/val/loss") == {1: 3.0, 2: 1.5, 3: 0.25, 4: 0.125}
        assert _scalars(base, l2, "mean/val/loss") == {1: 3.0, 2: 1.5, 3: 0.5, 4: 1.0}
        assert _scalars(base, l2, "seeds") == {1: 2, 2: 2, 3: 2, 4: 2}
        assert _scalars(base, l2, "mean/val/acc") == {e: 0.5625 for e in range(1, 5)}  # seeds: 0.5 and 0.625
        # a column a run leaves blank at most epochs: the epochs it has
        assert _scalars(base, none, "mean/grad_norm/first_layer") == {2: 4.0, 4: 8.0}
        # the custom-scalars tab: the mean of each tag with its min..max band
        (category,) = _get(f"{base}data/plugin/custom_scalars/layout")["category"]
        charts = {c["title"]: c for c in category["chart"]}
        assert charts["val/loss"]["margin"]["series"] == [
            {"value": "mean/val/loss", "lower": "min/val/loss", "upper": "max/val/loss"}]
        assert set(charts) == {t for t in COLUMNS[1:] if t != "seconds"} | {"seeds (jobs averaged at each epoch)"}


def test_a_report_again_replaces_the_averaged_runs_and_reads_none_of_them_as_jobs(run_cli, sweep):
    (sweep / "notes.txt").write_text("mine")
    assert run_cli("report", str(sweep))[0] == 0
    first = sorted((sweep / "_mean").rglob("events.out.tfevents.*"))
    assert [p.parent.name for p in first] == ["regularizer=l2", "regularizer=none"]
    for job in ("2_l2", "3_l2"):
        (sweep / job / "summary.json").unlink()
        (sweep / job / "metrics.csv").unlink()
    code, out, _ = run_cli("report", str(sweep))
    assert code == 0 and "nnexp report: 2 jobs, 1 configuration" in out  # no job read from _mean
    # the configuration now has all its overrides for a label; the runs of the first report are gone
    assert sorted(p.name for p in (sweep / "_mean").iterdir()) == [MARKER, "regularizer=none,trainer.epochs=4"]
    assert len(list((sweep / "_mean").rglob("events.out.tfevents.*"))) == 1
    assert (sweep / "notes.txt").read_text() == "mine"  # beside _mean, nothing touched


def test_a_mean_folder_the_report_did_not_write_is_left_alone(run_cli, sweep):
    (sweep / "_mean").mkdir()
    (sweep / "_mean" / "mine.txt").write_text("mine")
    code, out, err = run_cli("report", str(sweep))
    assert code == 2
    assert err == (f"nnexp report: error: {sweep / '_mean'} is not the folder of averaged runs nnexp report "
                   f"writes (no {MARKER} in it); move it away, or report into another folder\n")
    assert (sweep / "_mean" / "mine.txt").read_text() == "mine"
    assert not (sweep / "report.csv").exists() and not (sweep / "report.png").exists()  # nothing written


def test_a_seed_counts_at_the_epochs_it_ran_and_a_nan_is_not_hidden():
    tables = [{1: {"epoch": "1", "val/loss": "1.0"}, 2: {"epoch": "2", "val/loss": "nan"}},
              {1: {"epoch": "1", "val/loss": "3.0"}, 2: {"epoch": "2", "val/loss": "1.0"},
               3: {"epoch": "3", "val/loss": "0.5"}}]
    seeds, bands = seed_bands([{"_metrics": t} for t in tables] + [{"_metrics": None}])
    assert seeds == {1: 2, 2: 2, 3: 1}
    band = bands["val/loss"]
    assert band.epochs == [1, 2, 3] and band.mean[0] == 2.0 and band.mean[2] == 0.5
    assert (band.low[0], band.high[0]) == (1.0, 3.0) and (band.low[2], band.high[2]) == (0.5, 0.5)
    assert all(math.isnan(x) for x in (band.mean[1], band.low[1], band.high[1]))  # a diverged seed's epoch


def test_configuration_folders_are_safe_distinct_names():
    long = " ".join(f"model.layer{i}=[{i},{i}]" for i in range(20))
    names = folder_names(["dataset.path=data/x:y", "dataset.path=data_x_y", long, "(defaults)"])
    assert names[0] == "dataset.path=data_x_y"
    assert names[1].startswith("dataset.path=data_x_y~") and names[1] != names[0]
    assert len(names[2]) < 140 and names[2].startswith("model.layer0=[0,0],model.layer1=[1,1],")
    assert names[3] == "_defaults_"


def _band_pixels(png: Path, colour: str) -> int:
    """Pixels in the tint a matplotlib colour ``C<n>`` gets as a band on white (alpha 0.18)."""
    from matplotlib.colors import to_rgb

    tint = [round(255 - 0.18 * (255 - 255 * c)) for c in to_rgb(colour)]
    with Image.open(png) as image:
        counts = image.convert("RGB").getcolors(1 << 20)
    return sum(n for n, rgb in counts if all(abs(a - b) <= 2 for a, b in zip(rgb, tint, strict=True)))


def test_report_png_shades_each_configurations_spread_over_seeds(run_cli, sweep, tmp_path):
    assert run_cli("report", str(sweep))[0] == 0
    spread = [_band_pixels(sweep / "report.png", c) for c in ("C0", "C1")]
    assert all(n > 10_000 for n in spread), spread  # a band per configuration, in its own colour
    # seeds that agree: nothing to shade (the few pixels of that tint are the lines' antialiased edges)
    same = tmp_path / "same"
    for seed in range(2):
        for i, reg in enumerate(("none", "l2")):
            _job(same, f"{2 * seed + i}_{reg}", [f"regularizer={reg}"], 0, [2.0 + i, 1.0, 0.5, 0.25])
    assert run_cli("report", str(same))[0] == 0
    agree = [_band_pixels(same / "report.png", c) for c in ("C0", "C1")]
    assert all(n < 1_000 for n in agree), agree
