"""`nnexp report`: each configuration's curves over its seeds, the mean and its min..max band in report.png."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from nnexp.report_plot import seed_bands

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
