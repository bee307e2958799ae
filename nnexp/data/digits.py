"""scikit-learn's bundled 8x8 handwritten digits: real images, fully offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from nnexp.data import Data, split_arrays
from nnexp.options import data as options


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 64) pixels in 0..16 and (1797,) labels.

    Reads the CSV that scikit-learn ships without importing scikit-learn (which
    costs about a second); falls back to ``load_digits`` if the file moved.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",", dtype=np.float32)
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def load(train_fraction: float = 1.0, val_fraction: float = 0.2, test_fraction: float = 0.2,
         seed: int = 0) -> Data:
    """Images of shape (1, 8, 8) scaled to [0, 1]; ``train_fraction`` keeps a slice of the training pool."""
    options.digits(train_fraction=train_fraction, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    pixels, labels = _read_digits()
    x = (pixels / 16.0).reshape(-1, 1, 8, 8)
    return split_arrays(
        "digits", x, labels, val_fraction=val_fraction, test_fraction=test_fraction,
        train_fraction=train_fraction, seed=seed, num_classes=10,
    )
