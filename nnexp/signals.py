"""Turn SIGINT/SIGTERM into a polite request to stop after the current step."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopSignals:
    """Context manager: the first Ctrl-C or SIGTERM sets ``received``; a second Ctrl-C interrupts at once.

    Calling the object answers "has a stop been asked for?", which the loop
    checks after every optimizer step.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __call__(self) -> bool:
        return self.received is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
