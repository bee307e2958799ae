"""Errors that map to nnexp's documented exit codes (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from typing import Any


class NnexpError(Exception):
    """A failure with a one-line message for the user; exit code 1 unless a subclass says otherwise."""

    exit_code = 1


class ConfigError(NnexpError):
    """A bad key, value, file or device: usage error, exit code 2."""

    exit_code = 2


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
