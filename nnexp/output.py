"""Output is never a reason to lose a run: what nnexp does when writing fails.

- The terminal: :func:`guard_std_streams` (nnexp/cli.py) puts a :class:`StdStream` in front of
  ``sys.stdout`` and ``sys.stderr``. A write that fails (the reader of a pipe went away, as in
  ``nnexp train | head -2``; a closed terminal; a full disk under ``> file``) stops that stream's
  output, never the run: ``os.devnull`` is dup2-ed onto its file descriptor, so what was held back and
  Python's own flush at exit go nowhere quietly, and later writes are dropped. train.log says so.
- train.log: :class:`RunLog` (conf/hydra/job_logging/nnexp.yaml) is a FileHandler that remembers why
  a line could not be written instead of printing logging's traceback on the terminal; :func:`log_note`
  points a one-line error at train.log only when train.log holds its traceback.
- Threads: :class:`ThreadErrors`, installed for the run by the Recorder, sends the traceback of an
  uncaught error in any thread (TensorBoard's event writer) to train.log instead of the terminal and
  keeps the first such error, which the run then raises as its own.
- The run folder: :class:`RunFolder` tells whether the folder a run started in was removed (or
  replaced) since, and turns a failed write into :class:`~nnexp.errors.WriteError` naming the file, or
  :class:`~nnexp.errors.RunFolderGone`.

Free of torch, Hydra and rich: ``nnexp --help`` goes through it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nnexp.errors import NnexpError, RunFolderGone, WriteError, reason

log = logging.getLogger("nnexp")


class StdStream:
    """A standard stream whose failure stops its output, not the program (``stopped`` says why)."""

    def __init__(self, target: Any, name: str) -> None:
        self.target, self.name = target, name
        self.stopped: str | None = None
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if self.stopped is None:
            try:
                return self.target.write(text)
            except OSError as exc:
                self._stop(exc)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.stopped is None:
            try:
                self.target.flush()
            except OSError as exc:
                self._stop(exc)

    def isatty(self) -> bool:
        return self.stopped is None and bool(getattr(self.target, "isatty", lambda: False)())

    def __getattr__(self, name: str) -> Any:  # fileno, encoding, buffer, ...: the real stream's
        return getattr(self.target, name)

    def _stop(self, exc: OSError) -> None:
        with self._lock:
            if self.stopped is not None:
                return
            self.stopped = reason(exc)
            try:
                fd = self.target.fileno()
            except (OSError, ValueError, AttributeError):  # not backed by a file descriptor (a test's capture)
                fd = None
            if fd is not None:  # the Python docs' recipe for SIGPIPE: devnull in place of the dead pipe
                devnull = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(devnull, fd)
                finally:
                    os.close(devnull)
                with contextlib.suppress(OSError, ValueError):
                    self.target.flush()  # what the stream still held goes to devnull, not to an error at exit
        log.info("%s: %s; its output stops here, the run goes on", self.name, self.stopped)


@contextlib.contextmanager
def guard_std_streams() -> Iterator[None]:
    """For the life of a command: a failing stdout or stderr stops printing, not the command."""
    saved = sys.stdout, sys.stderr
    guards = [StdStream(s, n) if s is not None and not isinstance(s, StdStream) else s
              for s, n in ((saved[0], "stdout"), (saved[1], "stderr"))]
    sys.stdout, sys.stderr = guards
    try:
        yield
    finally:
        for guard in guards:
            if isinstance(guard, StdStream):
                guard.flush()
        sys.stdout, sys.stderr = saved


class RunLog(logging.FileHandler):
    """train.log's handler: a line that cannot be written (disk full, the folder removed, a folder in the
    file's place) is dropped and remembered in ``failed``, never reported with a traceback on the terminal
    (logging's default) or raised at the logging call (FileHandler opening its file late)."""

    failed: str | None = None  # why the latest line could not be written; None when it was

    def emit(self, record: logging.LogRecord) -> None:
        self.failed = None
        try:
            super().emit(record)
        except Exception:  # noqa: BLE001 - opening the file: the same as a failed write
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.failed = reason(sys.exc_info()[1] or OSError("unknown error"))


def log_note(run_dir: Path) -> str:
    """For a one-line error: `` (traceback in RUN/train.log)`` when train.log holds what was just logged,
    why not when it could not be written, nothing when there is no train.log (the folder was removed)."""
    wanted = {os.path.abspath(run_dir), str(Path(run_dir).resolve())}
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and os.path.dirname(handler.baseFilename) in wanted:
            path, failed = Path(handler.baseFilename), getattr(handler, "failed", None)
            if failed is not None:
                return f" ({path.name} could not be written: {failed})"
            return f" (traceback in {path})" if path.is_file() else ""
    path = Path(run_dir) / "train.log"
    return f" (traceback in {path})" if path.is_file() else ""


class ThreadErrors:
    """While installed, an uncaught error in any thread is logged to train.log with its traceback instead
    of printed on the terminal; the first one is kept in ``first`` for the run to raise."""

    def __init__(self) -> None:
        self.first: BaseException | None = None
        self._previous: Any = None

    def install(self) -> ThreadErrors:
        if self._previous is None:
            self._previous, threading.excepthook = threading.excepthook, self._hook
        return self

    def uninstall(self) -> None:
        if self._previous is not None:
            threading.excepthook, self._previous = self._previous, None

    def _hook(self, args: Any) -> None:
        if args.exc_type is SystemExit:  # as Python's own hook: a thread that exits is no error
            return
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        log.info("thread %s failed:\n%s", getattr(args.thread, "name", "?"), text)
        if self.first is None:
            self.first = args.exc_value


class RunFolder:
    """The run folder as the run found it (device and inode): ``gone()`` once it was removed or replaced."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        st = os.stat(self.path)
        self._id = (st.st_dev, st.st_ino)

    def gone(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._id

    def check(self, when: str = "") -> None:
        """Raise RunFolderGone if the folder is not there any more (``when``: ``" (in epoch 3)"``)."""
        if self.gone():
            raise RunFolderGone(self.path, when)

    def failure(self, path: Path | str | None, exc: BaseException) -> NnexpError:
        """What a failed write of ``path`` means for the run: the folder is gone, or that file is not written."""
        if isinstance(exc, NnexpError):
            return exc
        if self.gone():
            return RunFolderGone(self.path)
        return WriteError(path if path is not None else self.path, exc)
