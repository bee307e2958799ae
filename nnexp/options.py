"""How a component checks its own options: each check raises ``OptionError(key, value, allowed)`` with the
allowed range in words (nnexp/errors.py), before the component does any work. Models, dataset loaders,
optimizer factories and early stopping use them; one place per key (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from typing import Any

from nnexp.errors import OptionError


def finite(value: Any) -> bool:
    """A real number, not a bool, nan or inf."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def int_at_least(value: Any, least: int) -> bool:
    """An integer (not a bool) >= ``least``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def check(key: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise OptionError(key, value, allowed)


def check_int(key: str, value: Any, least: int, note: str = "", *, null: bool = False) -> None:
    """An integer >= ``least`` (or None with ``null``); ``note`` says what it counts."""
    if null and value is None:
        return
    if not int_at_least(value, least):
        allowed = f"{'null or ' if null else ''}an integer >= {least}{f' ({note})' if note else ''}"
        raise OptionError(key, value, allowed)


def check_choice(key: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if not (isinstance(value, str) and value in choices):
        raise OptionError(key, value, "one of " + ", ".join(choices))


def check_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise OptionError(key, value, "true or false")


def check_path(key: str, value: Any, allowed: str) -> None:
    """A file or folder name, not empty; whether it exists is for the loader to say."""
    if not (isinstance(value, (str, os.PathLike)) and str(value).strip() != ""):
        raise OptionError(key, value, allowed)
