"""Atomic file writes and checkpoints: a crash mid-save never leaves a broken file behind."""

from __future__ import annotations

import io
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnexp.atomic import atomic_copy, atomic_write
from nnexp.errors import ConfigError, WriteError


def encode_checkpoint(state: dict[str, Any]) -> bytes:
    """The bytes of ``torch.save(state)``: a snapshot, so training may change the tensors right after."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``state`` to ``path`` atomically; a failed write (disk full) is WriteError naming ``path``."""
    try:
        atomic_write(path, encode_checkpoint(state), parents=False)
    except OSError as exc:
        raise WriteError(path, exc) from exc


def snapshot(obj: Any) -> Any:
    """A copy of ``obj`` whose tensors are copies too: what they hold now, whatever training does next."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        copy = type(obj)((k, snapshot(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # a state_dict's module versions, which load_state_dict reads
            copy._metadata = obj._metadata
        return copy
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(v) for v in obj)
    return obj


class BackgroundWriter:
    """Writes checkpoint bytes to disk on a thread, so the loop does not wait for the disk's fsync.

    One write at a time and in order: ``submit`` first waits for the one before, so
    at most one epoch's checkpoint is in flight, and each file is replaced
    atomically (``atomic_write``) as before. A failed write is raised by the next
    ``submit`` or ``wait`` (an OSError as WriteError naming the file); the thread
    itself never raises, so no traceback reaches the terminal. A process killed with a write in flight keeps the
    previous checkpoint, which a resume continues from exactly.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, state: dict[str, Any], paths: list[Path],
               earlier: tuple[dict[str, Any], list[Path]] | None = None) -> None:
        """Write ``state`` to each of ``paths``; its tensors are copied first, so training may go on.
        ``earlier``: another (state, paths) written before it, a snapshot already (a best epoch held back)."""
        self.wait()
        writes = ([earlier] if earlier else []) + [(snapshot(state), paths)]

        def write() -> None:
            path = writes[0][1][0]
            try:
                for state, paths in writes:
                    path = paths[0]
                    atomic_write(path, encode_checkpoint(state), parents=False)  # never recreates a removed run folder
                    for path in paths[1:]:  # the same checkpoint under another name (best.pt and last.pt)
                        atomic_copy(paths[0], path)
            except OSError as exc:  # disk full, the folder removed: one line naming the file
                self._error = WriteError(path, exc)
                self._error.__cause__ = exc
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread by wait()
                self._error = exc

        self._thread = threading.Thread(target=write, name="nnexp-checkpoint")
        self._thread.start()

    def wait(self) -> None:
        """Until the write in flight is on disk; raises its error if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by nnexp; a missing or unreadable file is a ConfigError naming it."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"checkpoint {path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise ConfigError(f"checkpoint {path}: no such file")
    if path.stat().st_size == 0:
        raise ConfigError(f"checkpoint {path}: the file is empty")
    try:
        # weights_only: tensors and plain containers only, so loading never runs code from the file
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged zip/pickle
        detail = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:120]  # its first sentence
        raise ConfigError(f"checkpoint {path}: not a readable checkpoint ({type(exc).__name__}"
                          + (f": {detail})" if detail else ")") + "; damaged or cut short?") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise ConfigError(f"checkpoint {path}: not an nnexp checkpoint (no 'model' entry)")
    return state


def rng_state() -> dict[str, Any]:
    """Every global random number generator a run draws from, as tensors and plain values.

    Stored in checkpoints so a resumed run draws the same dropout masks (torch),
    and the same numbers from numpy and ``random`` as an uninterrupted one.
    ``weights_only`` loading accepts all of it.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
