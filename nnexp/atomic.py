"""Atomic file writes: a crash or Ctrl-C mid-write leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: bytes, parents: bool = True) -> None:
    """Write to a temporary file in the same folder, fsync it, then rename it over ``path``.

    ``parents=False``: the folder is created if missing, but not the folders above it (a checkpoint never
    brings back a run folder removed while the run trained)."""
    path = Path(path)
    path.parent.mkdir(parents=parents, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_copy(source: Path, path: Path) -> None:
    """``path`` becomes a second name of the finished file ``source`` (a hard link, renamed into place: no
    bytes written twice); where links are not supported, a copy written by ``atomic_write``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, path)  # files are only ever replaced whole, never changed in place: sharing is safe
    except OSError:
        tmp.unlink(missing_ok=True)
        atomic_write(path, Path(source).read_bytes())
