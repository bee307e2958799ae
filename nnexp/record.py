"""The run record: ``summary.json``, its one vocabulary of statuses, one writer and one reader.

Every tool that asks what became of a run reads it here: the table at the end of
a sweep, a sweep run again (which jobs to skip), ``trainer.resume=auto`` (which
run to continue), ``nnexp report`` and the claims (``expect``). Free of torch and
Hydra, so ``nnexp report`` stays light.

Each status has one meaning (its :class:`Outcome`):

==============  ===========  ================================================================
status          outcome      what it says
==============  ===========  ================================================================
completed       finished     trained every epoch
early_stopped   finished     early stopping ended it; the result stands
diverged        finished     the loss (or an update) became NaN/Inf; running it again diverges again
interrupted     resumable    stopped by Ctrl-C, SIGTERM or SIGHUP; ``trainer.resume`` continues it
failed          failed       an error stopped it (a config error in a sweep job, a crash)
==============  ===========  ================================================================

A run folder with checkpoints but no ``summary.json`` (killed by SIGKILL, power
lost) is resumable too. Finished jobs are skipped when their sweep runs again,
resumable ones continue and failed ones run again (nnexp/lifecycle.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2  # 1: summary.json before the version field, read the same way
FILE = "summary.json"
UNREADABLE = f"unreadable {FILE}"  # how the error of a damaged record starts (read())


class Outcome(str, Enum):
    FINISHED = "finished"
    RESUMABLE = "resumable"
    FAILED = "failed"


class Status(str, Enum):
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    FAILED = "failed"

    @property
    def outcome(self) -> Outcome:
        if self is Status.INTERRUPTED:
            return Outcome.RESUMABLE
        if self is Status.FAILED:
            return Outcome.FAILED
        return Outcome.FINISHED

    @property
    def trained(self) -> bool:
        """Did the run end with a model worth looking at (pictures, test set, environment)?"""
        return self in (Status.COMPLETED, Status.EARLY_STOPPED)

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: Any) -> Status:
        """The status a record names; a word that is not one of ours is a failed run (nothing can be trusted)."""
        try:
            return cls(value)
        except ValueError:
            return cls.FAILED


@dataclass
class RunSummary:
    """One run's result, as ``summary.json`` holds it (tags: train/loss, val/loss, train/acc, val/acc)."""

    status: Status
    run_dir: str = ""
    message: str = ""  # how it ended, in words ("interrupted after epoch 3", the early-stopping reason)
    error: str | None = None  # failed: the error, one line
    epochs_run: int = 0
    best_epoch: int | None = None
    stopped_epoch: int | None = None  # early_stopped: the epoch it stopped at
    monitor: str = "val/loss"
    mode: str = "min"
    best_value: float | None = None
    restored_best: bool = False
    final: dict[str, float | None] = field(default_factory=dict)  # the tags at the last epoch
    best: dict[str, float | None] = field(default_factory=dict)  # ... and at the best epoch
    gap: dict[str, float | None] = field(default_factory=lambda: {"best": None, "final": None})
    test: dict[str, float | None] | None = None
    eval: dict[str, float] | None = None  # rl datasets and agents: the evaluation in the environment
    # agents (nnexp/rl/): env, algorithm, env_steps, episodes, threshold, and the env_steps, episodes and
    # seconds at which eval/return first reached the threshold (None: never)
    rl: dict[str, Any] | None = None
    diagnosis: dict[str, str] | None = None  # label, reason, suggestion
    num_params: int | None = None
    wall_seconds: float | None = None
    seconds_per_epoch: float | None = None
    grad_norm_layers: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    seed: int | None = None
    loss: str | None = None
    choices: dict[str, Any] = field(default_factory=dict)  # group -> option: model -> mlp
    overrides: list[str] = field(default_factory=list)
    resumed_from: dict[str, Any] | None = None
    config_hash: str | None = None
    signal: str | None = None  # interrupted: SIGINT, SIGTERM or SIGHUP
    expect: list[str] = field(default_factory=list)  # the claims this run was given
    checks: list[dict[str, Any]] = field(default_factory=list)  # ... and those checked on it
    warnings: list[str] = field(default_factory=list)  # what the user was told along the way (a line each)
    version: int = SCHEMA_VERSION

    @property
    def outcome(self) -> Outcome:
        return self.status.outcome

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of summary.json: the version first, then the fields in this order."""
        out = asdict(self)
        out["status"] = self.status.value
        return {"version": out.pop("version"), **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """Any summary.json nnexp wrote (version 1 had no version field); unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: _numbers(v) if k in _NUMBERS else v for k, v in data.items() if k in known}
        _check_shapes(values)
        values["status"] = Status.of(data.get("status"))
        values.setdefault("version", 1)
        if "error" not in values and values["status"] is Status.FAILED and data.get("status") != "failed":
            values["error"] = f"unknown status {data.get('status')!r}"
        return cls(**values)


# the fields that hold numbers (directly, or as values of a dict of tags)
_NUMBERS = ("best_value", "wall_seconds", "seconds_per_epoch", "final", "best", "gap", "test", "eval")


# fields the readers iterate or look into: a record where they hold something else is damaged, not a run
_OBJECTS = ("final", "best", "gap", "choices", "grad_norm_layers")
_OBJECTS_OR_NULL = ("test", "eval", "diagnosis", "resumed_from")
_STRINGS = ("overrides", "expect")


def _check_shapes(values: dict[str, Any]) -> None:
    """TypeError naming the first field whose value has the wrong shape (a JSON object, a list of strings)."""
    for key, value in values.items():
        if key in _OBJECTS or (key in _OBJECTS_OR_NULL and value is not None):
            ok, want = isinstance(value, dict), "an object"
        elif key in _STRINGS:
            ok, want = isinstance(value, list) and all(isinstance(v, str) for v in value), "a list of strings"
        elif key == "checks":
            ok, want = isinstance(value, list) and all(isinstance(v, dict) for v in value), "a list of objects"
        else:
            continue
        if not ok:
            raise TypeError(f"{key!r} holds {json.dumps(value)[:40]}, not {want}")


def _numbers(value: Any) -> Any:
    """JSON has no NaN/Inf: the writer stores them as "nan"/"inf" strings; read them back as floats."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf; keep them readable
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def encode(summary: RunSummary) -> bytes:
    return (json.dumps(_json_safe(summary.to_dict()), indent=2) + "\n").encode()


def write(run_dir: Path, summary: RunSummary) -> None:
    """``run_dir/summary.json``, replaced atomically (a crash leaves the old file or the new one)."""
    from nnexp.atomic import atomic_write

    atomic_write(Path(run_dir) / FILE, encode(summary))


def read(run_dir: Path) -> RunSummary | None:
    """The record of the run in ``run_dir`` (or of a summary.json path); None when there is none.

    A file that cannot be read or parsed is a failed run whose error says so.
    """
    path = Path(run_dir)
    if path.name != FILE:
        path = path / FILE
    try:
        text = path.read_text(encoding="utf-8")  # as write() encodes it
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return RunSummary(Status.FAILED, run_dir=str(path.parent), error=f"{UNREADABLE}: {exc}")
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return RunSummary.from_dict(data)
    except (ValueError, TypeError) as exc:
        return RunSummary(Status.FAILED, run_dir=str(path.parent), error=f"{UNREADABLE}: {exc}")
