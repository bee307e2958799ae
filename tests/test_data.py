"""Datasets: shapes, dtypes, seeds, and splits that never leak samples between train, val and test."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nnexp.data import digits, split_arrays, synthetic
from nnexp.errors import ConfigError

DATASET_YAMLS = sorted((REPO / "conf" / "dataset").glob("*.yaml"))

# (generator, number of classes with the defaults)
SYNTHETIC = [
    (synthetic.xor, 2),
    (synthetic.moons, 2),
    (synthetic.circles, 2),
    (synthetic.spirals, 3),
    (synthetic.gaussians, 3),
]
SYNTHETIC_IDS = [fn.__name__ for fn, _ in SYNTHETIC]


def _splits(data):
    return [s for s in (data.train, data.val, data.test) if s is not None]


def _rows(split) -> set[bytes]:
    return {row.numpy().tobytes() for row in split.x}


@pytest.mark.parametrize(("make", "num_classes"), SYNTHETIC, ids=SYNTHETIC_IDS)
def test_synthetic_shapes_dtypes_and_task(make, num_classes):
    data = make(n_samples=200)
    assert data.task == "classification"
    assert data.num_classes == num_classes and data.target_dim is None
    assert data.input_shape == (2,)
    assert data.name == make.__name__
    for split in _splits(data):
        assert split.x.dtype == torch.float32 and split.x.ndim == 2 and split.x.shape[1] == 2
        assert split.y.dtype == torch.int64 and split.y.shape == (len(split),)
        assert torch.isfinite(split.x).all()
    y = torch.cat([s.y for s in _splits(data)])
    assert set(y.tolist()) == set(range(num_classes))  # every class is present


@pytest.mark.parametrize(("make", "num_classes"), SYNTHETIC, ids=SYNTHETIC_IDS)
def test_synthetic_same_seed_same_data_other_seed_other_data(make, num_classes):
    a, b, c = make(n_samples=100, seed=3), make(n_samples=100, seed=3), make(n_samples=100, seed=4)
    for sa, sb in zip(_splits(a), _splits(b), strict=True):
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y)
    assert not torch.equal(a.train.x, c.train.x)


@pytest.mark.parametrize(("make", "num_classes"), SYNTHETIC, ids=SYNTHETIC_IDS)
def test_synthetic_splits_are_disjoint_and_sized_by_fraction(make, num_classes):
    data = make(n_samples=400, val_fraction=0.25, test_fraction=0.1)
    assert (len(data.train), len(data.val), len(data.test)) == (260, 100, 40)
    train, val, test = _rows(data.train), _rows(data.val), _rows(data.test)
    assert len(train) + len(val) + len(test) == 400  # continuous noise: every point is unique
    assert not (train & val) and not (train & test) and not (val & test)


@pytest.mark.parametrize(("make", "num_classes"), SYNTHETIC, ids=SYNTHETIC_IDS)
def test_synthetic_without_test_fraction_has_no_test_split(make, num_classes):
    data = make(n_samples=100)
    assert data.test is None
    assert len(data.train) + len(data.val) == 100


def test_classes_are_separated_where_the_generator_says_so():
    """Without noise, circles puts class 1 at radius ``factor`` and xor labels by the signs."""
    data = synthetic.circles(n_samples=400, noise=0.0, factor=0.3)
    r = data.train.x.norm(dim=1)
    assert torch.allclose(r[data.train.y == 1], torch.tensor(0.3), atol=1e-6)
    assert torch.allclose(r[data.train.y == 0], torch.tensor(1.0), atol=1e-6)

    data = synthetic.xor(n_samples=200, noise=0.0)
    x, y = data.train.x, data.train.y
    assert torch.equal(y, (x[:, 0] * x[:, 1] < 0).long())


@pytest.mark.parametrize(
    ("make", "kwargs"),
    [
        (synthetic.circles, {"factor": 1.5}),
        (synthetic.circles, {"factor": 0.0}),
        (synthetic.circles, {"factor": 1.0}),
        (synthetic.spirals, {"turns": 0}),
        (synthetic.spirals, {"turns": -1.0}),
    ],
)
def test_synthetic_bad_arguments_raise_value_error(make, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make(n_samples=50, **kwargs)


# configs that build offline with no file to point to (text needs dataset.path, vision needs files)
# torchvision and Gymnasium datasets have their own tests (tests/test_vision.py, tests/test_rl.py)
OFFLINE_YAMLS = [p for p in DATASET_YAMLS if "???" not in p.read_text()
                 and "nnexp.data.vision" not in p.read_text() and "nnexp.data.rl" not in p.read_text()]


@pytest.mark.parametrize("path", OFFLINE_YAMLS, ids=[p.stem for p in OFFLINE_YAMLS])
def test_every_offline_dataset_config_builds(path):
    """What `nnexp train dataset=<name>` builds, straight from the shipped YAML."""
    data = instantiate(OmegaConf.load(path), _convert_="all")
    assert data.name == path.stem
    assert tuple(data.train.x.shape[1:]) == data.input_shape
    assert len(data.train) > 0 and len(data.val) > 0
    y = torch.cat([s.y.reshape(-1) for s in _splits(data)])
    if data.task == "regression":
        assert data.num_classes is None and data.target_dim >= 1 and torch.isfinite(y).all()
    elif data.per_step:  # sequence labelling: every label is a valid class
        assert data.num_classes >= 2 and set(y.tolist()) <= set(range(data.num_classes))
    else:
        assert data.num_classes >= 2 and set(y.tolist()) == set(range(data.num_classes))


# ---------------------------------------------------------------------------
# split_arrays: rows numbered 0..n-1 show exactly which sample went where


def _numbered(n: int = 100):
    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    y = np.arange(n) % 4
    return x, y


def _ids(split) -> set[int]:
    return set(split.x[:, 0].long().tolist())


def test_split_arrays_partitions_every_sample_once():
    x, y = _numbered(100)
    data = split_arrays("n", x, y, val_fraction=0.2, test_fraction=0.3, seed=1, num_classes=4)
    train, val, test = _ids(data.train), _ids(data.val), _ids(data.test)
    assert (len(train), len(val), len(test)) == (50, 20, 30)
    assert train | val | test == set(range(100))
    assert not (train & val) and not (train & test) and not (val & test)
    # labels travel with their samples
    for split in _splits(data):
        assert torch.equal(split.y, split.x[:, 0].long() % 4)


@pytest.mark.parametrize(
    ("n", "val_fraction", "test_fraction", "sizes"),
    [(7, 0.4, 0.0, (4, 3, 0)), (20, 0.01, 0.0, (19, 1, 0)), (10, 0.18, 0.34, (5, 2, 3))],
)
def test_split_sizes_are_the_nearest_counts_with_at_least_one_val_sample(n, val_fraction, test_fraction, sizes):
    x, y = _numbered(n)
    data = split_arrays("n", x, y, val_fraction=val_fraction, test_fraction=test_fraction, num_classes=4)
    test_size = 0 if data.test is None else len(data.test)
    assert (len(data.train), len(data.val), test_size) == sizes


def test_split_arrays_seed_fixes_the_split():
    x, y = _numbered(100)
    a = split_arrays("n", x, y, val_fraction=0.2, seed=5, num_classes=4)
    b = split_arrays("n", x, y, val_fraction=0.2, seed=5, num_classes=4)
    c = split_arrays("n", x, y, val_fraction=0.2, seed=6, num_classes=4)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.x, b.val.x)
    assert _ids(a.val) != _ids(c.val)


def test_train_fraction_shrinks_only_the_train_split():
    x, y = _numbered(200)
    kw = {"val_fraction": 0.2, "test_fraction": 0.1, "seed": 0, "num_classes": 4}
    full = split_arrays("n", x, y, train_fraction=1.0, **kw)
    part = split_arrays("n", x, y, train_fraction=0.1, **kw)
    assert len(full.train) == 140 and len(part.train) == 14
    assert _ids(part.train) < _ids(full.train)
    assert torch.equal(part.val.x, full.val.x) and torch.equal(part.val.y, full.val.y)
    assert torch.equal(part.test.x, full.test.x) and torch.equal(part.test.y, full.test.y)


def test_split_arrays_regression_keeps_float_targets():
    x, _ = _numbered(40)
    y = np.stack([np.arange(40), -np.arange(40)], axis=1).astype(np.float64)
    data = split_arrays("r", x, y, val_fraction=0.25, seed=0)
    assert data.task == "regression" and data.num_classes is None and data.target_dim == 2
    assert data.train.y.dtype == torch.float32 and data.train.y.shape == (30, 2)
    one = split_arrays("r", x, y[:, 0], val_fraction=0.25, seed=0)
    assert one.target_dim == 1


def test_split_arrays_with_no_training_samples_left_is_a_config_error():
    x, y = _numbered(4)
    with pytest.raises(ConfigError, match="no training samples"):
        split_arrays("tiny", x, y, val_fraction=0.5, test_fraction=0.5, num_classes=4)


def test_data_to_moves_every_split():
    data = synthetic.xor(n_samples=40, test_fraction=0.25)
    moved = data.to("meta")  # a device other than the data's own, without needing a GPU
    assert moved.test is not None
    for before, after in zip(_splits(data), _splits(moved), strict=True):
        assert after.x.is_meta and after.y.is_meta
        assert after.x.shape == before.x.shape and after.y.dtype == before.y.dtype
    assert not data.train.x.is_meta  # the original is left where it was


# ---------------------------------------------------------------------------
# digits: scikit-learn's 8x8 images, read from its CSV without importing sklearn


@pytest.fixture(scope="module")
def sklearn_digits():
    from sklearn.datasets import load_digits

    return load_digits()


def test_read_digits_equals_sklearn_load_digits(sklearn_digits):
    pixels, labels = digits._read_digits()
    assert pixels.shape == (1797, 64) and labels.shape == (1797,)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(pixels, sklearn_digits.data)  # same values, same order
    np.testing.assert_array_equal(labels, sklearn_digits.target)


def test_read_digits_falls_back_to_sklearn_when_the_csv_is_not_found(monkeypatch, sklearn_digits):
    no_spec = SimpleNamespace(util=SimpleNamespace(find_spec=lambda name: None))
    monkeypatch.setattr(digits, "importlib", no_spec)
    pixels, labels = digits._read_digits()
    assert pixels.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(pixels, sklearn_digits.data)
    np.testing.assert_array_equal(labels, sklearn_digits.target)


def _sorted_pairs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    table = np.concatenate([x.reshape(len(x), -1), y.reshape(-1, 1).astype(x.dtype)], axis=1)
    return table[np.lexsort(table.T[::-1])]


def test_digits_load_is_sklearn_digits_scaled_and_split(sklearn_digits):
    data = digits.load(train_fraction=1.0, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert data.name == "digits" and data.task == "classification" and data.num_classes == 10
    assert data.input_shape == (1, 8, 8)
    assert (len(data.train), len(data.val), len(data.test)) == (1079, 359, 359)
    for split in _splits(data):
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == (1, 8, 8)
        assert split.y.dtype == torch.int64
        assert set(split.y.tolist()) == set(range(10))
    assert float(min(s.x.min() for s in _splits(data))) == 0.0
    assert float(max(s.x.max() for s in _splits(data))) == 1.0
    # the three splits together are exactly load_digits' (image / 16, label) pairs
    x = torch.cat([s.x for s in _splits(data)]).numpy()
    y = torch.cat([s.y for s in _splits(data)]).numpy()
    expected = _sorted_pairs((sklearn_digits.data / 16.0).astype(np.float32), sklearn_digits.target)
    np.testing.assert_array_equal(_sorted_pairs(x, y), expected)


def test_digits_train_fraction_keeps_val_and_test():
    full = digits.load(train_fraction=1.0)
    part = digits.load(train_fraction=0.1)
    assert len(part.train) == round(0.1 * len(full.train))
    assert torch.equal(part.val.x, full.val.x) and torch.equal(part.val.y, full.val.y)
    assert torch.equal(part.test.x, full.test.x) and torch.equal(part.test.y, full.test.y)


def test_digits_seed_changes_the_split_not_the_images():
    a, b, c = digits.load(seed=0), digits.load(seed=0), digits.load(seed=1)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.val.x, c.val.x)


def test_random_images_have_the_shape_asked_for_and_depend_only_on_the_seed():
    from nnexp.data.shaped import random_images

    data = random_images(shape=[3, 32, 32], train_size=50, val_size=10, num_classes=10, seed=1)
    assert data.input_shape == (3, 32, 32) and data.task == "classification" and data.num_classes == 10
    assert data.train.x.shape == (50, 3, 32, 32) and data.val.x.shape == (10, 3, 32, 32)
    assert data.train.x.dtype == torch.float32 and data.train.y.dtype == torch.int64
    assert set(torch.cat([data.train.y, data.val.y]).tolist()) <= set(range(10))
    again, other = random_images([3, 32, 32], 50, 10, 10, seed=1), random_images([3, 32, 32], 50, 10, 10, seed=2)
    assert torch.equal(again.train.x, data.train.x) and not torch.equal(other.train.x, data.train.x)
    with pytest.raises(ValueError, match=r"shape=\[32, 32\] is out of range; allowed: three integers >= 1"):
        random_images(shape=[32, 32])
