"""Synthetic 2-D classification sets, generated offline from a seed (TensorFlow-Playground style)."""

from __future__ import annotations

import numpy as np

from nnexp.data import Data, split_arrays
from nnexp.options import data as options


def _finish(name, x, y, num_classes, val_fraction, test_fraction, seed) -> Data:
    return split_arrays(
        name, x.astype(np.float32), y.astype(np.int64),
        val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, num_classes=num_classes,
    )


def xor(n_samples: int = 400, noise: float = 0.15, val_fraction: float = 0.25,
        test_fraction: float = 0.0, seed: int = 0) -> Data:
    """Clusters around (+-1, +-1); the label is XOR of the centre's signs."""
    options.two_d(n_samples=n_samples, noise=noise, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng(seed)
    centres = rng.choice([-1.0, 1.0], size=(n_samples, 2))
    x = centres + noise * rng.standard_normal((n_samples, 2))
    y = (centres[:, 0] * centres[:, 1] < 0).astype(np.int64)
    return _finish("xor", x, y, 2, val_fraction, test_fraction, seed)


def moons(n_samples: int = 500, noise: float = 0.2, val_fraction: float = 0.25,
          test_fraction: float = 0.0, seed: int = 0) -> Data:
    """Two interleaving half circles."""
    options.two_d(n_samples=n_samples, noise=noise, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_samples)
    t = rng.uniform(0.0, np.pi, n_samples)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where(y[:, None] == 0, upper, lower) + noise * rng.standard_normal((n_samples, 2))
    x = x - np.array([0.5, 0.25])  # centre the pair on the origin
    return _finish("moons", x, y, 2, val_fraction, test_fraction, seed)


def circles(n_samples: int = 500, noise: float = 0.08, factor: float = 0.5,
            val_fraction: float = 0.25, test_fraction: float = 0.0, seed: int = 0) -> Data:
    """A circle of radius ``factor`` (class 1) inside one of radius 1 (class 0)."""
    options.circles(n_samples=n_samples, noise=noise, factor=factor, val_fraction=val_fraction,
                    test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_samples)
    t = rng.uniform(0.0, 2 * np.pi, n_samples)
    r = np.where(y == 1, factor, 1.0)
    x = r[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    x = x + noise * rng.standard_normal((n_samples, 2))
    return _finish("circles", x, y, 2, val_fraction, test_fraction, seed)


def spirals(n_samples: int = 600, noise: float = 0.2, n_classes: int = 3, turns: float = 1.5,
            val_fraction: float = 0.25, test_fraction: float = 0.0, seed: int = 0) -> Data:
    """``n_classes`` spiral arms from the origin; ``noise`` jitters the angle (radians)."""
    options.spirals(n_samples=n_samples, noise=noise, n_classes=n_classes, turns=turns, val_fraction=val_fraction,
                    test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_samples)
    r = rng.uniform(0.05, 1.0, n_samples)
    theta = 2 * np.pi * (y / n_classes + turns * r) + noise * rng.standard_normal(n_samples)
    x = r[:, None] * np.stack([np.sin(theta), np.cos(theta)], axis=1)
    return _finish("spirals", x, y, n_classes, val_fraction, test_fraction, seed)


def gaussians(n_samples: int = 600, noise: float = 0.6, n_classes: int = 3,
              val_fraction: float = 0.25, test_fraction: float = 0.0, seed: int = 0) -> Data:
    """Isotropic blobs of standard deviation ``noise`` centred on a circle of radius 2."""
    options.gaussians(n_samples=n_samples, noise=noise, n_classes=n_classes, val_fraction=val_fraction,
                      test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_samples)
    angle = 2 * np.pi * y / n_classes
    x = 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x = x + noise * rng.standard_normal((n_samples, 2))
    return _finish("gaussians", x, y, n_classes, val_fraction, test_fraction, seed)
