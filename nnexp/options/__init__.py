"""How a component checks its own options: each check raises ``OptionError(key, value, allowed)`` with the
allowed range in words (nnexp/errors.py), before the component does any work. One place per key
(docs/ARCHITECTURE.md).

The checks of nnexp's own components live in this package, free of torch (``models``, ``data``,
``training``), one function per component, registered by the component's ``_target_``. The component's
constructor calls its function first; ``nnexp train`` calls the same function with the composed config
before torch is imported (nnexp/validate.py), so a bad value is reported at once. A component that is not
registered (a user's own model) checks its options in its constructor, when it is built.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

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


# ---------------------------------------------------------------------------
# The registry: what each of nnexp's own targets takes from its config node, and its check.


@dataclass(frozen=True)
class Takes:
    """The keys a target reads from its config node, and the function that checks their values (called with
    the keys its own parameters name; None: the rule table of nnexp/config.py checks them)."""

    keys: tuple[str, ...]
    check: Callable[..., None] | None = None

    def check_keys(self) -> tuple[str, ...]:
        return () if self.check is None else tuple(inspect.signature(self.check).parameters)


_TAKES: dict[str, Takes] = {}
Check = TypeVar("Check", bound=Callable[..., None])


def checks(*targets: str) -> Callable[[Check], Check]:
    """Register the decorated function as the check of ``targets``; its keyword-only parameters are the
    options the targets take, named as in their config nodes."""

    def register(function: Check) -> Check:
        for target in targets:
            _TAKES[target] = Takes(tuple(inspect.signature(function).parameters), function)
        return function

    return register


def takes(target: str, keys: Iterable[str], check: Callable[..., None] | None = None) -> None:
    """Register ``target`` as taking ``keys``, of which ``check`` checks those its parameters name."""
    _TAKES[target] = Takes(tuple(keys), check)


def of(target: str) -> Takes | None:
    """What ``target`` takes, known without importing it; None for a target nnexp does not ship."""
    from nnexp.options import agents, data, models, training  # noqa: F401 - importing them registers their checks

    return _TAKES.get(target)


def registered() -> dict[str, Takes]:
    of("")
    return dict(_TAKES)
