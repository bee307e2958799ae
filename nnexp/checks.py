"""Expectations of experiment presets: claims about summary.json values, checked PASS/FAIL.

An expectation is one line ``LEFT OP RIGHT``; each side is a number or a path
into summary.json (``final.val/acc``, ``best.val/loss``, ``gap.final``,
``epochs_run``), optionally followed by a selector in brackets naming which
jobs of a sweep it reads: ``final.val/acc[model=perceptron] <= 0.75``. A path
may be multiplied by a number, for "orders of magnitude" claims:
``100 * final.grad_norm/first_step[model=rnn] < final.grad_norm/first_step[model=lstm]``.
Selector keys are config-group choices (``model=mlp``) or overrides
(``model.skip=false``; a boolean matches however it is capitalised, as in Hydra).

- Without selectors, or with the same selector on both sides, the claim is
  about one run: every run it applies to checks it and stores the result in
  its summary.json (``checks``).
- With different selectors on the two sides it compares jobs of a sweep:
  ``final.val/loss[regularizer=l2] < final.val/loss[regularizer=none]``.
  ``nnexp report`` checks it once per seed (``trainer.seed``), on the mean of
  the jobs each side selects, and it passes only if it holds for every seed.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from statistics import mean
from typing import Any

OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
       ">": operator.gt}
_SIDE = r"\s*(?:([0-9.eE+-]+)\s*\*\s*)?([^\s<>=!\[*]+)(?:\[([^\]]*)\])?\s*"
_LINE = re.compile(rf"^{_SIDE}(<=|>=|==|!=|<|>){_SIDE}$")


@dataclass(frozen=True)
class Side:
    path: str | None  # None for a number
    number: float | None
    select: tuple[tuple[str, str], ...] = ()
    factor: float = 1.0  # ``100 * final.x``: the value read, times this

    def __str__(self) -> str:
        if self.path is None:
            return f"{self.number:g}"
        sel = ",".join(f"{k}={v}" for k, v in self.select)
        times = f"{self.factor:g} * " if self.factor != 1.0 else ""
        return times + self.path + (f"[{sel}]" if sel else "")

    def scaled(self, value: Any) -> Any:
        """The value read at ``path`` times ``factor`` (None, or anything not a number, as it is)."""
        if self.factor == 1.0 or isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        return value * self.factor


@dataclass(frozen=True)
class Expectation:
    text: str
    left: Side
    op: str
    right: Side

    @property
    def across_jobs(self) -> bool:
        selects = {s.select for s in (self.left, self.right) if s.path is not None}
        return len(selects) > 1


def _side(factor: str | None, token: str, selector: str | None) -> Side:
    try:
        number = float(token)
    except ValueError:
        pass
    else:
        if factor is not None:
            raise ValueError(f"{factor} * {token}: a factor multiplies a summary.json path, not a number")
        return Side(None, number)
    try:
        times = 1.0 if factor is None else float(factor)
    except ValueError:
        raise ValueError(f"{factor!r} is not a number to multiply {token} by") from None
    pairs = []
    for item in filter(None, (selector or "").split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"selector {item!r} is not key=value")
        pairs.append((key.strip(), value.strip()))
    return Side(token, None, tuple(sorted(pairs)), times)


def parse(text: str) -> Expectation:
    """``final.val/acc <= 0.75`` -> Expectation; a malformed line raises ValueError saying what is allowed."""
    match = _LINE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not 'LEFT OP RIGHT' with OP one of {' '.join(OPS)} "
                         "(e.g. 'final.val/acc >= 0.9')")
    left_factor, left_token, left_sel, op, right_factor, right_token, right_sel = match.groups()
    left, right = _side(left_factor, left_token, left_sel), _side(right_factor, right_token, right_sel)
    if left.path is None and right.path is None:
        raise ValueError(f"{text!r} compares two numbers; one side must be a summary.json path")
    return Expectation(text.strip(), left, op, right)


def split_override(item: str) -> tuple[str, str]:
    """``+model.skip=false`` -> ("model.skip", "false"): Hydra's add/delete prefixes dropped."""
    key, _, value = item.lstrip("+~").partition("=")
    return key, value


def labels_of(summary: dict[str, Any]) -> dict[str, str]:
    """What selectors match: the run's group choices and its overrides, as strings."""
    labels = {k: str(v) for k, v in (summary.get("choices") or {}).items()}
    for item in summary.get("overrides") or []:
        key, value = split_override(item)
        labels[key] = value
    seed = summary.get("seed")
    labels.setdefault("trainer.seed", "" if seed is None else str(seed))
    return labels


def _spelled(value: str | None) -> str | None:
    """One spelling per boolean: Hydra reads true, True and TRUE alike, and a sweep's job is labelled
    ``model.skip=True`` even when the command said ``-m model.skip=true,false``."""
    return value.lower() if value is not None and value.lower() in ("true", "false") else value


def _matches(select: tuple[tuple[str, str], ...], labels: dict[str, str]) -> bool:
    return all(_spelled(labels.get(k)) == _spelled(v) for k, v in select)


def value_at(summary: dict[str, Any], path: str) -> Any:
    """``final.val/acc`` -> summary["final"]["val/acc"] (None where the run has no such value)."""
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _compare(e: Expectation, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    try:
        return bool(OPS[e.op](left, right))
    except TypeError:
        return None


def check_run(expectations: list[str], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The one-run claims that apply to this run, checked on its summary."""
    labels, results = labels_of(summary), []
    for text in expectations:
        e = parse(text)
        sides = [s for s in (e.left, e.right) if s.path is not None]
        if e.across_jobs or not all(_matches(s.select, labels) for s in sides):
            continue
        left = e.left.number if e.left.path is None else e.left.scaled(value_at(summary, e.left.path))
        right = e.right.number if e.right.path is None else e.right.scaled(value_at(summary, e.right.path))
        results.append({"expect": e.text, "left": left, "right": right, "pass": _compare(e, left, right)})
    return results


def check_sweep(expectations: list[str], summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every claim over the jobs of a sweep: one-run claims on each job they select, cross-job claims per seed."""
    results = []
    for text in expectations:
        e = parse(text)
        per_seed: dict[str, bool | None] = {}
        if not e.across_jobs:
            outcomes: dict[str, list[dict[str, Any]]] = {}
            for s in summaries:
                for r in check_run([text], s):
                    outcomes.setdefault(labels_of(s).get("trainer.seed", ""), []).append(r)
            per_seed = {seed: _all([r["pass"] for r in found]) for seed, found in outcomes.items()}
            # the two sides' values where the claim selects one job per seed
            values = {seed: [found[0]["left"], found[0]["right"]] for seed, found in outcomes.items()
                      if len(found) == 1} or None
        else:
            seeds = sorted({labels_of(s).get("trainer.seed", "") for s in summaries})
            values = {}
            for seed in seeds:
                jobs = [s for s in summaries if labels_of(s).get("trainer.seed", "") == seed]
                sides = []
                for side in (e.left, e.right):
                    if side.path is None:
                        sides.append(side.number)
                        continue
                    picked = [value_at(s, side.path) for s in jobs if _matches(side.select, labels_of(s))]
                    picked = [v for v in picked if isinstance(v, (int, float))]
                    sides.append(side.scaled(mean(picked)) if picked else None)
                values[seed] = sides
                per_seed[seed] = _compare(e, *sides)
        passed = _all(list(per_seed.values()))
        results.append({"expect": e.text, "pass": passed, "per_seed": per_seed, "values": values})
    return results


def _all(outcomes: list[bool | None]) -> bool | None:
    """FAIL if any fails, N/A if nothing was checkable, else PASS."""
    if False in outcomes:
        return False
    return None if not outcomes or None in outcomes else True


def verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "N/A"}[passed]
