"""One process per run folder: an advisory lock the OS drops when its process dies (nnexp/lifecycle.py uses it).

Free of torch. Linux and macOS (``fcntl.flock``); elsewhere no lock is taken.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

from nnexp.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one process per folder is then the user's care
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".nnexp.lock"
_MADE: set[FolderLock] = set()  # locks this process is taking or holds in files it created (remove_made())
_HELD: set[FolderLock] = set()  # locks this process holds (a command run from Python releases what it left: held())


class FolderUnusable(ConfigError):
    """The OS will not let this process create or write into the run folder (``os_error`` says why)."""

    def __init__(self, path: Path, os_error: OSError) -> None:
        self.path, self.os_error = path, os_error
        super().__init__(f"cannot write into {path}: {os_error.strerror or os_error}; choose another folder with "
                         "hydra.run.dir=PATH")


class RunBusy(ConfigError):
    """The folder is held by another live process."""

    def __init__(self, folder: Path, holder: str) -> None:
        self.folder, self.holder = folder, holder
        super().__init__(f"{folder} is in use by another nnexp run ({holder}); wait for it to end, or train "
                         "into another folder (hydra.run.dir=...)")


class FolderLock:
    """An exclusive advisory lock on a run folder, dropped by the OS when its process dies (even by SIGKILL).

    The lock file stays (emptied on release): removing it would let two processes
    lock two different files of the same name. It holds the holder's PID, host and
    start time while held, so a second process can name it; a file still naming a
    PID whose lock is free was left by a process that died (taken over, and said so).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        self.created = False  # this process made the lock file (so a discarded new run removes it)
        self.stale: str | None = None  # the holder a dead process left in the file, when one was taken over

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> FolderLock:
        if fcntl is None or self.held:
            return self
        self.created = not self.path.exists()
        if self.created:  # before the file exists: a signal from here on finds it in remove_made()
            _MADE.add(self)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise FolderUnusable(self.path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RunBusy(self.folder, holder or "another process") from None
        except OSError as exc:
            os.close(fd)
            raise FolderUnusable(self.path, exc) from None
        previous = _read(fd)
        if previous:
            self.stale = previous
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd
        _HELD.add(self)
        return self

    def release(self) -> None:
        _MADE.discard(self)
        _HELD.discard(self)
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # not held: a later reader finds no holder to name
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def remove(self) -> None:
        """Release, and remove the lock file if this process created it (a new run given up)."""
        self.release()
        if self.created:
            self.path.unlink(missing_ok=True)


def remove_made() -> None:
    """A signal before a run began: remove the lock files this process created and still holds (or is taking)."""
    for lock in list(_MADE):
        with contextlib.suppress(OSError):
            lock.remove()


def held() -> frozenset[FolderLock]:
    """The locks this process holds now. A command run inside the user's process (nnexp/api.py) releases those
    it took and left (a signal held back until its claim was made), as the end of its own process would."""
    return frozenset(_HELD)


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 300, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def busy(folder: Path) -> str | None:
    """Who holds ``folder``'s lock now ("PID n on host since ..."), or None if nobody does."""
    lock = FolderLock(folder)
    if fcntl is None or not lock.path.exists():
        return None
    try:
        fd = os.open(lock.path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(fd)
        return holder or "another process"
    finally:
        os.close(fd)
    return None
