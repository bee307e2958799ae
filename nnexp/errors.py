"""Errors that map to nnexp's documented exit codes (see DESIGN.md)."""


class NnexpError(Exception):
    """A failure with a one-line message for the user; exit code 1 unless a subclass says otherwise."""

    exit_code = 1


class ConfigError(NnexpError):
    """A bad key, value, file or device: usage error, exit code 2."""

    exit_code = 2


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
