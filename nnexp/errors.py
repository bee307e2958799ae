"""Errors that map to nnexp's documented exit codes (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from typing import Any


class NnexpError(Exception):
    """A failure with a one-line message for the user; exit code 1 unless a subclass says otherwise."""

    exit_code = 1


class ConfigError(NnexpError):
    """A bad key, value, file or device: usage error, exit code 2."""

    exit_code = 2


class WriteError(NnexpError):
    """A file of the run could not be written (disk full, no permission): ``cannot write PATH: REASON``, exit 1."""

    def __init__(self, path: Any, exc: BaseException, note: str = "") -> None:
        self.path, self.reason = path, reason(exc)
        super().__init__(f"cannot write {path}: {self.reason}{note}")


class RunFolderGone(NnexpError):
    """The run folder was removed (or replaced) while the run trained: nothing more can be recorded, exit 1."""

    def __init__(self, run_dir: Any, when: str = "") -> None:
        self.run_dir = run_dir
        super().__init__(f"run folder {run_dir} was removed while training{when}; the run stopped there and "
                         "nothing more was written")


class NnexpRunError(NnexpError):
    """What a command run from Python (nnexp/api.py: ``nnexp.train``, ``nnexp.sweep``, ``nnexp.report``) ended with
    where ``nnexp`` would have exited non-zero: the message it printed (one line; Hydra's own errors keep their
    few lines) and the exit code. ``result`` is what the command left, where it left a run or a sweep (a run that
    diverged, a sweep with a failed job), else None."""

    def __init__(self, message: str, exit_code: int, result: Any = None) -> None:
        super().__init__(message)
        self.message, self.exit_code, self.result = message, exit_code, result


def reason(exc: BaseException) -> str:
    """The OS's words for an OSError (``No space left on device``), else the exception's own text."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def show(value: Any) -> str:
    """A value as an override would spell it: strings quoted, so 'relu ' and relu differ visibly."""
    return repr(value) if isinstance(value, str) else str(value)


class OptionError(ValueError):
    """A constructor's argument out of range: ``OptionError("depth", 12, "6n+2: 8, 14, 20, ...")``.

    A plain ValueError for Python callers (``depth=12 is out of range; allowed: ...``);
    when nnexp builds a component from its config group it becomes a ConfigError
    naming the full key, ``model.depth=12 is out of range; allowed: ...`` (exit 2).
    """

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={show(value)} is out of range; allowed: {allowed}")

    def in_group(self, group: str) -> str:
        """The message with the key as the config names it (``model.depth=...``)."""
        return f"{group}.{self}"


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_HANGUP = 129
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
