"""Signals: Ctrl-C, SIGTERM and SIGHUP end a command with one line and their exit code, never a traceback.

- While a run trains (:class:`StopSignals`) the first one is a polite request: the
  loop stops after the current step, checkpoints, and the record says
  ``interrupted`` (resumable). A second Ctrl-C interrupts at once.
- Outside training (:func:`terminate_politely`: start-up, building, a sweep between
  jobs) SIGTERM and SIGHUP raise :class:`Terminated`, a KeyboardInterrupt, so every
  path that handles Ctrl-C handles them the same way.
- A command run from Python (:func:`in_process`, nnexp/api.py) never ends the
  process: the user's interpreter (a notebook's kernel) outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from nnexp.errors import EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_TERMINATED

# the signals that ask a run to stop (SIGHUP: the terminal was closed); where the platform has them
STOP = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)
_CODES = {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_TERMINATED, "SIGHUP": EXIT_HANGUP}
# in_process(): for each exit_at_once open now, the signals it holds back (None: the command owns its process)
_held: list[list[int]] | None = None


def name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum is not None else "SIGINT"


def exit_code(signal_name: str | None) -> int:
    """The exit code of a command a signal ended: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP."""
    return _CODES.get(signal_name or "SIGINT", EXIT_INTERRUPTED)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP outside training: handled wherever Ctrl-C is."""

    def __init__(self, signum: int) -> None:
        super().__init__(name(signum))
        self.signum = signum


def signal_of(exc: BaseException) -> str:
    """The signal a KeyboardInterrupt stands for."""
    return name(exc.signum) if isinstance(exc, Terminated) else "SIGINT"


@contextlib.contextmanager
def terminate_politely() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Terminated in the main thread (the default would end the process silently,
    leaving a half-made folder); the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    for sig in STOP:
        if sig != signal.SIGINT:
            previous[sig] = signal.signal(sig, raise_terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def exit_at_once(cleanup: Callable[[], None] | None = None) -> Iterator[None]:
    """While Hydra composes the config, and while a job sets up (imports torch, builds, restores a checkpoint):
    a signal ends the command at once, one line, its exit code. Raising KeyboardInterrupt in the middle of
    composing can leave the config library's state broken and its error, not the signal, on the terminal; in
    the middle of an import it can be swallowed by the imported module and leave it half-made. There is nothing
    of ours to save yet. ``cleanup`` removes what was made for the run so far. Between these phases
    :func:`raise_on_signals` holds; from training's first line, the run's own StopSignals. The previous
    handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _held is not None:
        with _hold(_held, cleanup):
            yield
        return

    def leave(signum: int, frame: FrameType | None) -> None:
        try:
            sig = name(signum)
            # straight to the file descriptor: sys.stderr may be holding Hydra's messages back (nnexp/app.py)
            os.write(2, ("nnexp: interrupted" + ("" if sig == "SIGINT" else f" ({sig})") + "\n").encode())
            if cleanup is not None:
                cleanup()
        finally:
            os._exit(exit_code(name(signum)))

    previous = {sig: signal.signal(sig, leave) for sig in STOP}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def raise_on_signals() -> None:
    """From here on (a job has started): Ctrl-C raises KeyboardInterrupt, SIGTERM and SIGHUP Terminated, so the
    job's own handlers decide what happens (nothing written yet, or a polite stop while training). A signal
    held back while Hydra composed (:func:`in_process`) is raised now: the job does not start."""
    if threading.current_thread() is not threading.main_thread():
        return

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    for sig in STOP:
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else raise_terminated)
    held = next((got[0] for got in _held or () if got), None)
    if held is not None:
        raise _as_exception(held)


@contextlib.contextmanager
def in_process() -> Iterator[None]:
    """Around a command run inside the user's Python process (nnexp/api.py), which must outlive it. Where the
    command's own process would end at once (:func:`exit_at_once`), the signal is held back until that phase is
    over, then what it made is removed and the signal raised (KeyboardInterrupt, Terminated), so the command
    ends with its one line and exit code as it does on its own; a second Ctrl-C raises at once."""
    global _held
    before, _held = _held, []
    try:
        yield
    finally:
        _held = before


@contextlib.contextmanager
def _hold(scopes: list[list[int]], cleanup: Callable[[], None] | None) -> Iterator[None]:
    got: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if got and signum == signal.SIGINT:  # the user insists: now, wherever it lands
            raise KeyboardInterrupt
        got.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in STOP}
    scopes.append(got)
    try:
        yield
    finally:
        scopes.pop()  # exit_at_once phases nest: the last one opened is this one
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if got:  # whatever else was under way: the signal ends the command, as it would have at once
            if cleanup is not None:
                cleanup()
            raise _as_exception(got[0])


def _as_exception(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


class StopSignals:
    """Context manager: the first Ctrl-C, SIGTERM or SIGHUP sets ``received``; a second Ctrl-C interrupts at once.

    Calling the object answers "has a stop been asked for?", which the loop
    checks after every optimizer step.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __call__(self) -> bool:
        return self.received is not None

    @property
    def name(self) -> str | None:
        return name(self.received) if self.received is not None else None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None:
            self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def interrupted(exc: BaseException) -> SystemExit:
    """Ctrl-C outside training (or a second one in it), SIGTERM or SIGHUP while starting: out, with one line."""
    import sys

    sig = signal_of(exc)
    print(f"nnexp: interrupted ({sig})" if sig != "SIGINT" else "nnexp: interrupted", file=sys.stderr)
    return SystemExit(exit_code(sig))
