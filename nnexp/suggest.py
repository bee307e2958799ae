"""Did you mean: the one-line messages for a name that is not there (a key, a config group, a group's option),
with the closest valid names. Every path that meets such a name uses them: Hydra's own errors
(nnexp/hydra_errors.py), the check of the composed config's keys (nnexp/validate.py) and the keys of a
component's signature (nnexp/build.py). Free of torch and Hydra.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

SHORT = 12  # a list of keys longer than this is not printed in the message (options always are)
CLOSE = 0.6  # how alike a name must be to be suggested (difflib's default cutoff)
NEARLY = 0.1  # suggest the names within this of the closest one, not every name that is close


def closest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates most like ``word``, best first: at least 60% alike (difflib's ratio, a different case
    counting as a slip, not a difference), and nearly as alike as the best one."""
    names = list(dict.fromkeys(str(c) for c in candidates))
    ratios = [difflib.SequenceMatcher(None, word.lower(), name.lower()).ratio() for name in names]
    ranked = sorted(zip(ratios, range(len(names)), names, strict=True), key=lambda r: (-r[0], r[1]))
    if not ranked or ranked[0][0] < CLOSE:
        return []
    best = ranked[0][0]
    return [name for ratio, _, name in ranked if ratio >= max(CLOSE, best - NEARLY)][:n]


def did_you_mean(word: str, candidates: Iterable[str], spell: Callable[[str], str] = str) -> str:
    """``; did you mean X?`` (or ``X or Y``) for the closest candidates, each written by ``spell``; empty if
    none is close."""
    found = [spell(c) for c in closest(word, candidates)]
    if not found:
        return ""
    return "; did you mean " + (found[0] if len(found) == 1 else ", ".join(found[:-1]) + " or " + found[-1]) + "?"


def listing(kind: str, names: Iterable[str], limit: int | None = SHORT) -> str:
    """`` (keys: a, b, c)``; empty when there are none, or more than ``limit``."""
    names = list(names)
    if not names or (limit is not None and len(names) > limit):
        return ""
    return f" ({kind}: {', '.join(names)})"


def not_a_key(key: str, owner: str, keys: Iterable[str], note: str = "") -> str:
    """``model.hiden is not a key of model=mlp; did you mean model.hidden? (keys: ...)`` — ``key`` the full
    dotted key, ``owner`` the node that has no such key, ``keys`` the keys it has (without their prefix),
    ``note`` what to add at the end."""
    keys = list(keys)
    prefix, _, last = key.rpartition(".")
    spell = (lambda k: f"{prefix}.{k}") if prefix else str
    more = listing("keys", keys)
    if not more and len(keys) > SHORT:  # too many to print: where to see them
        more = f" (nnexp train --cfg job -p {prefix} lists its {len(keys)} keys)" if prefix else ""
    return f"{key} is not a key of {owner}{did_you_mean(last, keys, spell)}{more}{note}"


def not_an_option(group: str, option: str, options: Iterable[str], prefix: str = "",
                  also: Iterable[str] = ()) -> str:
    """``model=resnt is not an option of model; did you mean model=resnet? (options: ...)``; ``prefix`` is
    the override's own (``+`` for an appended group), ``also`` more names to suggest from (options in the
    group's subgroups: ``deep_net/sigmoid_plain``) that the list leaves out."""
    options = list(options)
    suggestion = did_you_mean(option, [*options, *also], lambda o: f"{prefix}{group}={o}")
    return f"{prefix}{group}={option} is not an option of {group}{suggestion}{listing('options', options, None)}"


def not_a_group(name: str, groups: Iterable[str], keys: Iterable[str] = (), also: Iterable[str] = ()) -> str:
    """A top-level name that is neither a config group nor a key (``modle``), or a group path that is not a
    config group (``experiment/deep_nte``, ``hydra/launchr``: the groups beside it are suggested). ``also``:
    keys deeper in the config to suggest when no group or key is close (``lr``: ``optimizer.lr``)."""
    groups, keys = list(groups), list(keys)
    if "/" in name:
        parent, _, last = name.rpartition("/")
        beside = [g.rpartition("/")[2] for g in groups if g.rpartition("/")[0] == parent]
        suggestion = did_you_mean(last, beside, lambda g: f"{parent}/{g}") if beside else ""
        return f"{name} is not a config group{suggestion or did_you_mean(name, groups)}"
    suggestion = did_you_mean(name, [*groups, *keys])
    if not suggestion:
        also = list(also)
        suggestion = did_you_mean(name, [k.rpartition(".")[2] for k in also],
                                  lambda k: " or ".join(a for a in also if a.endswith("." + k)))
    listed = f"groups: {', '.join(groups)}" + (f"; keys: {', '.join(keys)}" if keys else "")
    return f"{name} is not a config group or key{suggestion} ({listed})"
