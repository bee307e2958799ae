"""Hydra's own error reports (unknown option or key, bad override syntax, wrong type), made short.

Hydra prints them to stderr and exits 1 before any task starts; ``nnexp train``
holds stderr until it knows whether a task started, then keeps only the lines
that say what is wrong (exit 2). An unknown group option or key becomes one line
naming it and the closest valid names (nnexp/suggest.py), read from Hydra's
exception: Hydra's own hint to append the key with ``+`` is given only where the
key could really be new. An OS error while Hydra creates the run (or sweep)
folder is not about the overrides: it becomes one line naming the folder and the
OS's reason (``folder_error``).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnexp import suggest


class HeldStderr:
    """Holds what is written to stderr until ``release``; then passes everything straight through."""

    def __init__(self, target) -> None:  # noqa: ANN001 - a text stream
        self.target, self.held, self.holding = target, [], True

    def write(self, text: str) -> int:
        if self.holding:
            self.held.append(text)
        else:
            self.target.write(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def __getattr__(self, name: str):  # noqa: ANN204 - fileno, encoding, ...: the real stream's
        return getattr(self.target, name)

    def release(self, condense: bool = False, args: list[str] = (), instead: str | None = None,
                error: BaseException | None = None) -> None:
        """Pass on what was held (``condense``: only what says what is wrong, with ``error`` the exception
        Hydra reported; ``instead``: this text instead)."""
        if not self.holding:
            return
        self.holding = False
        text = "".join(self.held)
        self.held.clear()
        if instead is not None:
            text = instead
        elif condense:
            text = condense_hydra_error(text, args, error)
        self.target.write(text)
        self.target.flush()


# Lines of Hydra's error reports that name no key or value: the search path, the
# structured-config internals and the hint about HYDRA_FULL_ERROR.
_NOISE = ("Set the environment variable HYDRA_FULL_ERROR", "reference_type=", "object_type=", "full_key:",
          "Config search path:", "provider=", "See https://hydra.cc")


def condense_hydra_error(text: str, args: list[str] = (), error: BaseException | None = None) -> str:
    """Keep the lines of a Hydra error that say what is wrong; join an options list onto one line.

    An unknown group option or key (``error``, the exception Hydra reported) is one
    line with the closest valid names. Where Hydra's message does not quote the
    offending override, the overrides given are named first; a traceback (Hydra
    prints one for a few parse errors) shrinks to its final line.
    """
    try:
        named = unknown_name(error, args) if error is not None else None
    except Exception:  # noqa: BLE001 - the suggestion must never hide the error: Hydra's own words then
        named = None
    if named:
        return f"nnexp: error: {named}\n"
    hint = _quote_hint(text)
    if hint:
        return hint + "\n"
    if "Traceback (most recent call last)" in text:
        text = [ln for ln in text.splitlines() if ln.strip() and not ln[0].isspace()
                and not ln.startswith(("Traceback", "Set the environment"))][-1]
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or any(stripped.startswith(n) for n in _NOISE):
            continue
        if line.startswith("\t") and lines and lines[-1].startswith("Available options"):
            lines[-1] += (" " if lines[-1].endswith(":") else ", ") + stripped
            continue
        lines.append(line.rstrip())
    named = [a for a in args if a and any(a.partition("=")[0] and a.partition("=")[0] in ln for ln in lines)]
    if args and not named:
        lines.insert(0, f"nnexp: error: cannot use the overrides: {' '.join(args)}")
    return "\n".join(lines) + "\n" if lines else ""


# ---------------------------------------------------------------------------
# Unknown names, from Hydra's exception: a group's option (MissingConfigException, with the group's
# options) or a key (ConfigCompositionException caused by OmegaConf's error, with the node that lacks it)


def unknown_name(error: BaseException, args: list[str] = ()) -> str | None:
    """One line for an unknown group option or key in the overrides ``args``; None for other errors."""
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    if isinstance(error, MissingConfigException):
        return _unknown_option(error, args)
    cause = error.__cause__
    if (isinstance(error, ConfigCompositionException) and str(error).startswith("Could not override")
            and isinstance(cause, (ConfigAttributeError, ConfigKeyError))
            and getattr(cause, "parent_node", None) is not None and cause.full_key):
        return _unknown_key(str(error), cause, args)
    return None


def _unknown_option(error: Any, args: list[str]) -> str | None:
    missing, options = error.missing_cfg_file, error.options
    if not missing or options is None:
        return None
    # the override that asked for it: the longest group of an override's key that the missing config is in
    asked = []
    for arg in args:
        key, eq, _ = arg.partition("=")
        group = key.lstrip("+~").split("@")[0]
        if eq and missing.startswith(group + "/"):
            asked.append((len(group), group, key[: len(key) - len(key.lstrip("+~"))]))
    if not asked:
        return None  # a config's own defaults list names it: Hydra's words say which config
    _, group, prefix = max(asked)
    option = missing[len(group) + 1:]
    also = []
    if "/" in option:  # experiment=deep_net/sigmoid_plan: the options of the subgroup named
        sub = option.rpartition("/")[0]
        also = [f"{sub}/{name}" for name in _with_loader(lambda loader: loader.get_group_options(f"{group}/{sub}"))]
    return suggest.not_an_option(group, option, options, prefix, also)


def _unknown_key(message: str, cause: Any, args: list[str]) -> str | None:
    from omegaconf import DictConfig

    from nnexp import options, validate

    full_key, key = str(cause.full_key), str(cause.key)
    parent = full_key[: -len(key)].rstrip(".") if full_key.endswith(key) else full_key.rpartition(".")[0]
    if not parent:
        return validate.top_level_line(full_key, cause.parent_node)
    node = cause.parent_node
    if not isinstance(node, DictConfig):
        return None
    named = validate.owner(parent, _choices(args))
    keys = [str(k) for k in node if k not in validate.INSTANTIATE_KEYS]
    target = node.get("_target_") if "_target_" in node and not parent.startswith("hydra") else None
    if target is None:  # a schema's node, or Hydra's own: the key cannot be added
        return validate.key_line(full_key, named, keys)
    takes = options.of(str(target))
    found = re.search(r"use (\+\S+)", message)  # Hydra's hint, the override with a +
    add = found.group(1) if found else f"+{full_key}=VALUE"
    if takes is None:  # a target of the user's, or torch's: it may take the key, unless it was a slip
        note = "" if suggest.closest(key, keys) else f"; if {target} takes {key}, add it with {add}"
        return validate.key_line(full_key, named, keys, note)
    if key in takes.keys:  # the target takes it, its config file does not list it
        return f"{full_key} is not in the config of {named}, but {target} takes it: add it with {add}"
    return validate.key_line(full_key, named, [k for k in takes.keys if k not in validate.INSTANTIATE_KEYS])


def _choices(args: list[str]) -> dict[str, str]:
    """The group options the overrides choose (``model=lstm``), to name a node as the user chose it."""
    chosen = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq and not key.startswith("~") and "." not in key and "," not in value:
            chosen[key.lstrip("+")] = value
    return chosen


def config_groups(recursive: bool = False) -> list[str]:
    """The config groups of the top level (``recursive``: and the groups inside them, as paths:
    ``experiment/deep_net``, ``hydra/launcher``)."""

    def walk(loader: Any) -> list[str]:
        found, parents = [], [""]
        while parents:
            parent = parents.pop()
            for name in loader.list_groups(parent):
                path = f"{parent}/{name}" if parent else name
                found.append(path)
                if recursive:
                    parents.append(path)
        return sorted(found)

    return _with_loader(walk)


def _with_loader(use: Callable[[Any], Any]) -> Any:
    """``use`` Hydra's config loader: the running app's (its search path as the user set it), else one of
    nnexp's config tree with Hydra's config store (Hydra has let its own go after an error)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from nnexp import config

    if GlobalHydra.instance().is_initialized():
        return use(GlobalHydra.instance().config_loader())
    config.register()
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base="1.3"):
        return use(GlobalHydra.instance().config_loader())


_LEXER = "LexerNoViableAltException: "


def _quote_hint(text: str) -> str | None:
    """Hydra's lexer error for a character an unquoted value cannot hold (``größe``, ``(``, ``#``) as one line
    that says how to quote the value; None for other errors, or where quoting the value would not help."""
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith(_LEXER)), None)
    if at is None or at + 1 >= len(lines) or "^" not in lines[at + 1]:
        return None
    override = lines[at][len(_LEXER):]
    column = lines[at + 1].index("^") - len(_LEXER)  # Hydra's caret sits under the first character it refused
    key, eq, value = override.partition("=")
    if not eq or not 0 <= column - len(key) - 1 < len(value) or ('"' in value and "'" in value):
        return None
    inner = '"' if '"' not in value else "'"
    outer = "'" if inner == '"' else '"'
    return (f"nnexp: error: cannot parse the override {override}: {override[column]!r} cannot appear in an "
            f"unquoted value; quote the value: {outer}{key}={inner}{value}{inner}{outer}")


# how the OS errors that say a folder cannot be used read in one line
_REASONS = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
            errno.EROFS: "read-only file system", errno.ENAMETOOLONG: "name too long"}


def folder_error(exc: OSError, key: str, folder: Path) -> str:
    """One line for an OS error met creating or writing into the run (``key`` hydra.run.dir) or sweep
    (hydra.sweep.dir) ``folder`` before the run started: the folder, the OS's reason, and the way on."""
    folder = Path(os.path.abspath(folder))
    failed = Path(os.path.abspath(exc.filename)) if isinstance(exc.filename, (str, os.PathLike)) else folder
    what = "sweep folder" if key == "hydra.sweep.dir" else "run folder"
    reason = _REASONS.get(exc.errno) or (exc.strerror or str(exc)).lower()
    if exc.errno == errno.ENAMETOOLONG:
        limit = "most file systems allow 255 bytes per folder name"
        if folder in failed.parents:  # a sweep's job: its folder is named by its overrides
            return (f"nnexp: error: cannot create the job folder {failed}: {reason} ({limit}); name the jobs' "
                    "folders by number: 'hydra.sweep.subdir=${hydra.job.num}'")
        return f"nnexp: error: cannot create the {what} {failed}: {reason} ({limit}); choose a shorter {key}"
    blocker = _file_in_the_way(failed) if exc.errno in (errno.ENOTDIR, errno.EEXIST) else None
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder"
    if failed != folder and folder in failed.parents and folder.is_dir():
        if failed.parent == folder:  # the folder is there, but nothing can be written into it
            return f"nnexp: error: cannot write into the {what} {folder}: {reason}; choose another with {key}=PATH"
        return f"nnexp: error: cannot create {failed} in the {what} {folder}: {reason}"
    where = "" if blocker is not None else f" in {failed.parent}"  # the folder that refused
    return (f"nnexp: error: cannot create the {what} {folder}: {reason}{where}; run nnexp where you can write, "
            f"or choose a folder with {key}=PATH")


def _file_in_the_way(path: Path) -> Path | None:
    """The first of ``path`` and its parents that is there but is not a folder."""
    return next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
