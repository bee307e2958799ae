"""mnist, fashion_mnist, cifar10: tiny files in the exact on-disk format torchvision reads; never a download."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import read_summary

from nnexp.data import vision
from nnexp.errors import OptionError

N_TRAIN, N_TEST = 40, 20  # MNIST-like files
CIFAR_BATCH = 8  # 5 training batches of 8 and a test batch of 8


@pytest.fixture
def torchvision():
    return pytest.importorskip("torchvision")


def _images(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.integers(1, 255, size=(n, *shape), dtype=np.uint8)  # random: every image differs
    x.reshape(n, -1)[:, 0], x.reshape(n, -1)[:, 1] = 0, 255  # so [0, 1] is reached exactly
    return x


def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX file: magic 0x0000 08 <ndim> (unsigned byte), big-endian int32 sizes, then the bytes."""
    header = np.array([0x0800 + array.ndim, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "MNIST", seed: int = 0) -> dict[str, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    files = {"train-images-idx3-ubyte": _images(rng, N_TRAIN, (28, 28)),
             "train-labels-idx1-ubyte": np.arange(N_TRAIN) % 10,
             "t10k-images-idx3-ubyte": _images(rng, N_TEST, (28, 28)),
             "t10k-labels-idx1-ubyte": (np.arange(N_TEST) * 3) % 10}
    for name, array in files.items():
        _write_idx(raw / name, array)
    assert (raw / "train-images-idx3-ubyte").read_bytes()[:4] == (2051).to_bytes(4, "big")
    assert (raw / "train-labels-idx1-ubyte").read_bytes()[:4] == (2049).to_bytes(4, "big")
    return {"train_x": files["train-images-idx3-ubyte"][:, None], "train_y": files["train-labels-idx1-ubyte"],
            "test_x": files["t10k-images-idx3-ubyte"][:, None], "test_y": files["t10k-labels-idx1-ubyte"]}


def write_cifar(root: Path, byte_keys: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """cifar-10-batches-py as in the official archive: pickled dicts with (N, 3072) uint8 rows."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    key = (lambda k: k.encode()) if byte_keys else (lambda k: k)
    batches = {}
    for i, name in enumerate([f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]):
        x = _images(rng, CIFAR_BATCH, (3, 32, 32))
        y = [(i + j) % 10 for j in range(CIFAR_BATCH)]
        entry = {key("batch_label"): key(f"batch {i}"), key("labels"): y, key("data"): x.reshape(CIFAR_BATCH, 3072),
                 key("filenames"): [key(f"img_{i}_{j}.png") for j in range(CIFAR_BATCH)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        batches[name] = (x, np.array(y))
    meta = {key("label_names"): ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                 "truck"], key("num_cases_per_batch"): CIFAR_BATCH, key("num_vis"): 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    train = [batches[f"data_batch_{b}"] for b in range(1, 6)]
    return {"train_x": np.concatenate([x for x, _ in train]), "train_y": np.concatenate([y for _, y in train]),
            "test_x": batches["test_batch"][0], "test_y": batches["test_batch"][1]}


# name -> (loader, writer, input shape)
DATASETS = {
    "mnist": (vision.mnist, write_mnist, (1, 28, 28)),
    "fashion_mnist": (vision.fashion_mnist, lambda root: write_mnist(root, "FashionMNIST"), (1, 28, 28)),
    "cifar10": (vision.cifar10, write_cifar, (3, 32, 32)),
}
NAMES = list(DATASETS)


def _rows(x: torch.Tensor) -> list[bytes]:
    return sorted(row.numpy().tobytes() for row in x)


@pytest.mark.parametrize("name", NAMES)
def test_loads_the_official_splits_as_float_images_in_0_1(torchvision, tmp_path, name):
    load, write, shape = DATASETS[name]
    files = write(tmp_path)
    data = load(root=str(tmp_path), val_fraction=0.25)
    n_train, n_test = len(files["train_y"]), len(files["test_y"])
    assert data.name == name and data.task == "classification" and data.num_classes == 10
    assert data.input_shape == shape
    assert (len(data.train), len(data.val), len(data.test)) == (n_train - n_train // 4, n_train // 4, n_test)
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == shape
        assert split.y.dtype == torch.int64 and split.y.shape == (len(split),)
        assert split.x.min() == 0.0 and split.x.max() == 1.0
    # val is cut from the official training images; the test split is the official test file, in order
    pool = torch.cat([data.train.x, data.val.x])
    assert _rows(pool) == _rows(torch.as_tensor(files["train_x"] / 255.0, dtype=torch.float32))
    assert torch.equal(data.test.x, torch.as_tensor(files["test_x"], dtype=torch.float32) / 255)
    assert data.test.y.tolist() == files["test_y"].tolist()
    labels = {row.numpy().tobytes(): int(y) for row, y in zip(torch.cat([data.train.x, data.val.x]),
                                                              torch.cat([data.train.y, data.val.y]), strict=True)}
    for x, y in zip(files["train_x"], files["train_y"], strict=True):  # every image keeps its label
        assert labels[torch.as_tensor(x / 255.0, dtype=torch.float32).numpy().tobytes()] == y


@pytest.mark.parametrize("name", NAMES)
def test_split_is_fixed_by_dataset_seed(torchvision, tmp_path, name):
    load, write, _ = DATASETS[name]
    write(tmp_path)
    a, b, c = (load(root=str(tmp_path), seed=s) for s in (0, 0, 1))
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    assert not torch.equal(a.val.x, c.val.x)
    assert torch.equal(a.test.x, c.test.x)  # the official test set does not depend on the seed


@pytest.mark.parametrize("name", NAMES)
def test_limit_keeps_the_first_training_images_and_test_size_the_first_test_images(torchvision, tmp_path, name):
    load, write, _ = DATASETS[name]
    files = write(tmp_path)
    data = load(root=str(tmp_path), limit=10, test_size=5, val_fraction=0.2, train_fraction=0.5)
    assert (len(data.train), len(data.val), len(data.test)) == (4, 2, 5)
    first = {row.tobytes() for row in torch.as_tensor(files["train_x"][:10] / 255.0, dtype=torch.float32).numpy()}
    assert set(_rows(data.train.x) + _rows(data.val.x)) <= first
    assert data.test.y.tolist() == files["test_y"][:5].tolist()


def test_normalize_standardizes_each_channel_with_training_statistics(torchvision, tmp_path):
    write_cifar(tmp_path)
    data = vision.cifar10(root=str(tmp_path), normalize=True)
    mean = data.train.x.mean(dim=(0, 2, 3))
    std = data.train.x.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=1e-5) and torch.allclose(std, torch.ones(3), atol=1e-4)
    # val and test are shifted and scaled by the training split's numbers, not by their own
    raw = vision.cifar10(root=str(tmp_path))
    raw_mean = raw.train.x.mean(dim=(0, 2, 3), keepdim=True)
    raw_std = raw.train.x.std(dim=(0, 2, 3), keepdim=True)
    for name in ("val", "test"):
        expected = (getattr(raw, name).x - raw_mean) / raw_std
        torch.testing.assert_close(getattr(data, name).x, expected, rtol=0, atol=1e-5, msg=name)


def test_cifar_reads_the_same_images_as_torchvision(torchvision, tmp_path, monkeypatch):
    """Our reader and torchvision's CIFAR10 (md5 check switched off for the tiny files) agree."""
    write_cifar(tmp_path)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    theirs = torchvision.datasets.CIFAR10(str(tmp_path), train=False)
    ours = vision.cifar10(root=str(tmp_path))
    as_chw = torch.as_tensor(theirs.data.transpose(0, 3, 1, 2), dtype=torch.float32) / 255  # HWC -> CHW
    assert torch.equal(ours.test.x, as_chw) and ours.test.y.tolist() == theirs.targets
    train = torchvision.datasets.CIFAR10(str(tmp_path), train=True).data.transpose(0, 3, 1, 2)
    assert _rows(torch.cat([ours.train.x, ours.val.x])) == _rows(torch.as_tensor(train, dtype=torch.float32) / 255)


def test_cifar_batches_with_byte_keys_load_too(torchvision, tmp_path):
    """pickle.load(..., encoding="bytes") style files (b"data", b"labels") are read as well."""
    files = write_cifar(tmp_path, byte_keys=True)
    data = vision.cifar10(root=str(tmp_path))
    assert data.test.y.tolist() == files["test_y"].tolist()
    assert torch.equal(data.test.x, torch.as_tensor(files["test_x"], dtype=torch.float32) / 255)
    assert _rows(torch.cat([data.train.x, data.val.x])) == _rows(torch.as_tensor(files["train_x"] / 255.0,
                                                                                 dtype=torch.float32))


def test_download_true_goes_through_torchvision(torchvision, tmp_path, monkeypatch):
    """download=true calls torchvision's MNIST downloader (stubbed here: tests never download)."""
    source = tmp_path / "source"
    write_mnist(source)
    fetched = []

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        fetched.append(url)
        name = filename.removesuffix(".gz")
        (Path(download_root) / name).write_bytes((source / "MNIST" / "raw" / name).read_bytes())

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", fake_download)
    data = vision.mnist(root=str(tmp_path / "data"), download=True)
    assert len(fetched) == 4 and all(u.startswith(torchvision.datasets.MNIST.mirrors[0]) for u in fetched)
    assert (tmp_path / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()
    assert len(data.test) == N_TEST
    vision.mnist(root=str(tmp_path / "data"), download=True)  # files present: nothing fetched again
    assert len(fetched) == 4


def test_bad_limit_is_an_option_error():
    with pytest.raises(OptionError, match=r"^limit=0 is out of range; allowed: null or an integer >= 1$"):
        vision.mnist(limit=0)


# ---------------------------------------------------------------------------
# Through the real entry point


@pytest.mark.parametrize("name", NAMES)
def test_trains_one_epoch(torchvision, run_cli, tmp_path, name):
    root = tmp_path / "files"
    DATASETS[name][1](root)
    code, out, err = run_cli("train", f"dataset={name}", f"dataset.root={root}", "model=mlp", "trainer.epochs=1",
                             "trainer.progress=none", "trainer.threads=1", f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err
    s = read_summary(tmp_path / "r")
    assert s["status"] == "completed" and s["epochs_run"] == 1
    assert s["test"] is not None  # the official test split is evaluated


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
                                              ("cifar10", "cifar-10-batches-py")])
def test_missing_files_exit_2_naming_the_folder(torchvision, run_cli, tmp_path, name, folder):
    code, out, err = run_cli("train", f"dataset={name}", "trainer.progress=none")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str((tmp_path / "data" / folder).resolve()) in lines[0]
    assert "dataset.download=true" in lines[0] and lines[0].startswith(f"nnexp: error: dataset={name}: missing ")
    assert not [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]


def test_failed_download_is_one_line(torchvision, run_cli, tmp_path, monkeypatch):
    from urllib.error import URLError

    def offline(url, *args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", offline)
    code, out, err = run_cli("train", "dataset=mnist", "dataset.download=true", "trainer.progress=none",
                             f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert "download into" in err and "no network" in err


def test_without_torchvision_exit_2_with_the_install_hint(run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` now fails as if not installed
    code, out, err = run_cli("train", "dataset=mnist", "trainer.progress=none", f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 2
    assert err.strip() == "nnexp: error: dataset=mnist needs torchvision: pip install -e '.[vision]'"
    assert not (tmp_path / "r").exists()
