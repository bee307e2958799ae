"""Checkpoints and atomic writes: a failed save never leaves a broken or half-written file behind."""

from __future__ import annotations

import os
import re
import sys

import pytest
import torch

from nnexp.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from nnexp.errors import ConfigError, WriteError
from nnexp.models.mlp import MLP


def hidden_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_creates_and_replaces(tmp_path):
    path = tmp_path / "sub" / "summary.json"
    atomic_write(path, b"first")
    assert path.read_bytes() == b"first"
    atomic_write(path, b"second, longer than the first")
    assert path.read_bytes() == b"second, longer than the first"
    assert hidden_files(path.parent) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.json"]


def _fail_once(real, name):
    """Wrap ``real`` so that its first call raises, as a full disk or a kill would."""
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(28, f"No space left on device ({name})")
        return real(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize("target", ["fsync", "replace"])
def test_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path, monkeypatch, target):
    path = tmp_path / "last.pt"
    atomic_write(path, b"old content")
    monkeypatch.setattr(os, target, _fail_once(getattr(os, target), target))
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, b"new content that never lands")
    assert path.read_bytes() == b"old content"
    assert hidden_files(tmp_path) == []


def test_write_failing_halfway_keeps_the_old_file(tmp_path, monkeypatch):
    """The temp file gets half the bytes, then the disk fills up."""
    path = tmp_path / "last.pt"
    atomic_write(path, b"old content")

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

    def half_open(file, mode="r", *args, **kwargs):
        return HalfWriter(open(file, mode, *args, **kwargs))

    # shadows the builtin in the module that defines atomic_write, wherever that is
    monkeypatch.setattr(sys.modules[atomic_write.__module__], "open", half_open, raising=False)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, b"new content that never fully lands")
    assert path.read_bytes() == b"old content"
    assert hidden_files(tmp_path) == []


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    """A Ctrl-C (KeyboardInterrupt) between the temp file and the rename also cleans up."""
    path = tmp_path / "best.pt"
    atomic_write(path, b"old")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert hidden_files(tmp_path) == []


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", _fail_once(os.fsync, "fsync"))
    with pytest.raises(OSError):
        atomic_write(tmp_path / "new.pt", b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def state():
    torch.manual_seed(0)
    model = MLP(input_shape=(2,), num_outputs=3, hidden=[4])
    return {"model": model.state_dict(), "epoch": 7, "metrics": {"val/loss": 0.25}, "config": {"seed": 0}}


def test_save_load_round_trip(tmp_path, state):
    path = tmp_path / "checkpoints" / "best.pt"
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 7 and loaded["metrics"] == {"val/loss": 0.25} and loaded["config"] == {"seed": 0}
    assert loaded["model"].keys() == state["model"].keys()
    for k, v in state["model"].items():
        assert torch.equal(loaded["model"][k], v)
    model = MLP(input_shape=(2,), num_outputs=3, hidden=[4])
    model.load_state_dict(loaded["model"])  # the weights load back into the same architecture
    assert hidden_files(path.parent) == []


def test_save_overwrites_an_older_checkpoint(tmp_path, state):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {**state, "epoch": 1})
    save_checkpoint(path, {**state, "epoch": 2})
    assert load_checkpoint(path)["epoch"] == 2


def _junk(path, valid: bytes):
    path.write_bytes(b"this is not a checkpoint\x00\x01\x02" * 10)


def _truncated(path, valid: bytes):
    path.write_bytes(valid[: len(valid) // 2])


def _empty(path, valid: bytes):
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("damage", "words"),
    [(None, "no such file"), (_empty, "empty"), (_junk, "not a readable checkpoint"),
     (_truncated, "not a readable checkpoint")],
    ids=["missing", "empty", "junk", "truncated"],
)
def test_unreadable_checkpoint_is_a_config_error_naming_the_file(tmp_path, state, damage, words):
    good = tmp_path / "good.pt"
    save_checkpoint(good, state)
    path = tmp_path / "run 1" / "best.pt"  # a space in the path, as users' folders have
    path.parent.mkdir()
    if damage is not None:
        damage(path, good.read_bytes())
    with pytest.raises(ConfigError, match=re.escape(str(path))) as info:
        load_checkpoint(path)
    assert words in str(info.value)
    assert info.value.exit_code == 2


def test_a_dict_without_model_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r".*no 'model' entry"):
        load_checkpoint(path)


def test_a_non_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ConfigError, match="not an nnexp checkpoint"):
        load_checkpoint(path)


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)


RAN: list[str] = []


def _payload(note: str) -> dict:
    RAN.append(note)  # stands in for any code an attacker's pickle could run
    return {"model": {}}


class _Malicious:
    def __reduce__(self):
        return (_payload, ("code ran while loading",))


def test_loading_a_checkpoint_never_runs_code_from_it(tmp_path):
    path = tmp_path / "downloaded.pt"
    torch.save(_Malicious(), path)
    RAN.clear()
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_checkpoint(path)
    assert RAN == []


def test_background_writer_writes_one_checkpoint_under_two_names_and_keeps_them_apart(tmp_path):
    from nnexp.checkpoint import BackgroundWriter

    weights = torch.zeros(3)
    writer = BackgroundWriter()
    writer.submit({"model": {"w": weights}, "epoch": 1}, [tmp_path / "best.pt", tmp_path / "last.pt"])
    weights += 5  # training goes on while the write is in flight: the checkpoint holds the values at submit
    writer.submit({"model": {"w": weights}, "epoch": 2}, [tmp_path / "last.pt"])
    writer.wait()
    best, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    assert best["epoch"] == 1 and torch.equal(best["model"]["w"], torch.zeros(3))
    assert last["epoch"] == 2 and torch.equal(last["model"]["w"], torch.full((3,), 5.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no temporary file left


def test_background_writer_hands_a_failed_write_to_the_caller(tmp_path, monkeypatch):
    from nnexp import checkpoint

    writer = checkpoint.BackgroundWriter()
    monkeypatch.setattr(checkpoint, "atomic_write",
                        lambda path, data, **kw: (_ for _ in ()).throw(OSError("disk full")))
    writer.submit({"model": {}}, [tmp_path / "last.pt"])
    with pytest.raises(WriteError, match=re.escape(f"cannot write {tmp_path / 'last.pt'}: disk full")):
        writer.wait()
    writer.wait()  # reported once
