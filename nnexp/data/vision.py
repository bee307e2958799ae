"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision (the optional ``vision`` extra).

Each loader reads the official train and test files once into arrays (no
per-sample loop), cuts the validation split from the official training set
with ``seed``, and keeps the official test set as ``Data.test``. Images come
back as float32 (N, C, H, W) in [0, 1], or standardized per channel with the
training split's statistics when ``normalize=True``; labels are int64.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from nnexp.data import Data, Split, split_arrays
from nnexp.errors import ConfigError, NnexpError
from nnexp.options import data as options


def _torchvision(name: str) -> ModuleType:
    try:
        import torchvision.datasets
    except ImportError:
        raise ConfigError(f"dataset={name} needs torchvision: pip install -e '.[vision]'") from None
    return torchvision.datasets


def _check(root: str, download: bool, train_fraction: float, val_fraction: float, limit: int | None,
           test_size: int | None, normalize: bool, seed: int) -> None:
    """The options of every loader here, checked before anything is imported, read or downloaded."""
    options.vision(root=root, download=download, train_fraction=train_fraction, val_fraction=val_fraction,
                   limit=limit, test_size=test_size, normalize=normalize, seed=seed)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _assemble(name: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
              train_fraction: float, val_fraction: float, limit: int | None, test_size: int | None,
              normalize: bool, seed: int) -> Data:
    """uint8 images (N, C, H, W) and labels of the official splits -> Data with train | val from train."""
    x, y = train[0][:limit], train[1][:limit]
    # split_arrays converts the uint8 rows to float32 0..255; scale in place, not on a float copy of all
    data = split_arrays(name, x, y, val_fraction=val_fraction, train_fraction=train_fraction,
                        seed=seed, num_classes=10)
    test_split = Split(torch.as_tensor(test[0][:test_size], dtype=torch.float32),
                       torch.as_tensor(test[1][:test_size], dtype=torch.int64))
    splits = (data.train, data.val, test_split)
    for split in splits:
        split.x.div_(255.0)
    if normalize:  # the training split's per-channel statistics, applied to every split
        mean = data.train.x.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1)
        std = data.train.x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
        for split in splits:
            split.x.sub_(mean).div_(std)
    return replace(data, test=test_split)


# ---------------------------------------------------------------------------
# MNIST and Fashion-MNIST: torchvision reads the idx files itself (it only checks that they exist).

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")


def _mnist_like(name: str, cls_name: str, root: str, download: bool, **split: Any) -> Data:
    _check(root, download, **split)
    datasets = _torchvision(name)
    cls = getattr(datasets, cls_name)
    base = Path(root).expanduser().resolve()
    folder = base / cls_name / "raw"  # where torchvision looks: <root>/<class name>/raw
    try:
        train = cls(str(base), train=True, download=download)
        test = cls(str(base), train=False)
    except RuntimeError as exc:
        if download:
            raise NnexpError(f"dataset={name}: download into {folder} failed ({_one_line(exc)}); "
                             "check the network, or copy the files there") from None
        missing = [f for f in _IDX_FILES if not (folder / f).is_file()]
        raise ConfigError(f"dataset={name}: missing {', '.join(missing)} in {folder}; use dataset.download=true "
                          "when online, or copy the (gunzipped) files there") from None
    except (AssertionError, TypeError, ValueError) as exc:  # what torchvision's idx reader raises
        raise ConfigError(f"dataset={name}: cannot read the idx files in {folder} ({_one_line(exc)}); "
                          "delete them and use dataset.download=true") from None
    # .data is a uint8 tensor (N, H, W), .targets int64 (N,)
    return _assemble(name, (train.data.numpy()[:, None], train.targets.numpy()),
                     (test.data.numpy()[:, None], test.targets.numpy()), **split)


def mnist(root: str = "data", download: bool = False, train_fraction: float = 1.0, val_fraction: float = 0.1,
          limit: int | None = None, test_size: int | None = None, normalize: bool = False,
          seed: int = 0) -> Data:
    """Handwritten digits, (1, 28, 28): 60000 train (val cut from them) and 10000 test images."""
    return _mnist_like("mnist", "MNIST", root, download, train_fraction=train_fraction, val_fraction=val_fraction,
                       limit=limit, test_size=test_size, normalize=normalize, seed=seed)


def fashion_mnist(root: str = "data", download: bool = False, train_fraction: float = 1.0,
                  val_fraction: float = 0.1, limit: int | None = None, test_size: int | None = None,
                  normalize: bool = False, seed: int = 0) -> Data:
    """Zalando's clothing images, (1, 28, 28): 60000 train (val cut from them) and 10000 test images."""
    return _mnist_like("fashion_mnist", "FashionMNIST", root, download, train_fraction=train_fraction,
                       val_fraction=val_fraction, limit=limit, test_size=test_size, normalize=normalize,
                       seed=seed)


# ---------------------------------------------------------------------------
# CIFAR-10: torchvision refuses files whose md5 sums differ from the official ones, so
# a hand-made or trimmed copy (and the tests' tiny files) could never load through it.
# We read the same python-pickle batches it reads (same folder, same file names, same
# keys) and use torchvision only to download them.


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: "data" (N, 3072) uint8 rows (1024 red, 1024 green, 1024 blue) and "labels"."""
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")  # the official files are Python 2 pickles
    entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    x = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return x, np.asarray(entry["labels"], dtype=np.int64)


def cifar10(root: str = "data", download: bool = False, train_fraction: float = 1.0, val_fraction: float = 0.1,
            limit: int | None = None, test_size: int | None = None, normalize: bool = False,
            seed: int = 0) -> Data:
    """Tiny colour photos of 10 classes, (3, 32, 32): 50000 train (val cut from them) and 10000 test images."""
    _check(root, download, train_fraction, val_fraction, limit, test_size, normalize, seed)
    cls = _torchvision("cifar10").CIFAR10
    base = Path(root).expanduser().resolve()
    folder = base / cls.base_folder  # <root>/cifar-10-batches-py
    train_files = [name for name, _md5 in cls.train_list]  # data_batch_1 .. data_batch_5
    test_files = [name for name, _md5 in cls.test_list]  # test_batch
    if download:
        try:
            cls(str(base), train=False, download=True)  # skips the download when the md5 sums match
        except Exception as exc:
            raise NnexpError(f"dataset=cifar10: download into {base} failed ({_one_line(exc)}); "
                             "check the network, or copy cifar-10-batches-py there") from None
    missing = [f for f in train_files + test_files if not (folder / f).is_file()]
    if missing:
        raise ConfigError(f"dataset=cifar10: missing {', '.join(missing)} in {folder}; use dataset.download=true "
                          "when online, or copy the python-version batches there")

    def read(files: list[str], n: int | None) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            try:
                x, y = _cifar_batch(folder / f)
            except (pickle.UnpicklingError, EOFError, KeyError, ValueError, AttributeError) as exc:
                raise ConfigError(f"dataset=cifar10: cannot read {folder / f} ({type(exc).__name__}: "
                                  f"{_one_line(exc)}); delete it and use dataset.download=true") from None
            xs.append(x)
            ys.append(y)
            if n is not None and sum(map(len, ys)) >= n:
                break  # enough images: the remaining batches need not be read
        return np.concatenate(xs), np.concatenate(ys)

    return _assemble("cifar10", read(train_files, limit), read(test_files, test_size),
                     train_fraction=train_fraction, val_fraction=val_fraction, limit=limit,
                     test_size=test_size, normalize=normalize, seed=seed)
