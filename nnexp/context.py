"""RunContext: what a run needs to know about how it was started, beyond its config.

The Hydra entry (nnexp/app.py) reads Hydra's runtime facts once into this
object; ``run()`` never asks Hydra itself, so it runs the same from a Python
session with a config from Hydra's compose API. Free of torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunContext:
    run_dir: Path  # the run's folder: everything it writes goes here
    overrides: tuple[str, ...] = ()  # as typed after `nnexp train` (recorded in summary.json)
    choices: Mapping[str, str] = field(default_factory=dict)  # group -> option (model -> mlp), Hydra's own left out
    sweep_dir: Path | None = None  # a job of a multirun: the sweep's folder
    parallel_jobs: int = 1  # jobs of this sweep running at once on this machine (they share the cores)

    @property
    def multirun(self) -> bool:
        return self.sweep_dir is not None

    @property
    def logdir(self) -> Path:
        """What ``tensorboard --logdir`` should be pointed at: the sweep, or the run itself."""
        return self.sweep_dir if self.sweep_dir is not None else self.run_dir

    def moved_to(self, run_dir: Path) -> RunContext:
        """The same run, continued in another folder (``trainer.resume`` of an earlier run)."""
        return RunContext(Path(run_dir), self.overrides, self.choices, self.sweep_dir, self.parallel_jobs)

    @classmethod
    def from_hydra(cls, hydra: Any, run_dir: Path | None = None) -> RunContext:
        """From Hydra's own config node: the running job's (nnexp/app.py reads it), or ``cfg.hydra`` of a config
        composed with ``compose(..., return_hydra_config=True)`` (then ``run_dir`` says where to write)."""
        from hydra.types import RunMode

        multirun = hydra.get("mode") == RunMode.MULTIRUN
        choices = {k: v for k, v in (hydra.runtime.get("choices") or {}).items()
                   if not str(k).startswith("hydra/")}
        return cls(run_dir=Path(run_dir if run_dir is not None else hydra.runtime.output_dir),
                   overrides=tuple(str(o) for o in hydra.overrides.task),
                   choices=choices,
                   sweep_dir=Path(str(hydra.sweep.dir)) if multirun else None,
                   parallel_jobs=parallel_jobs(hydra.get("launcher") or {}) if multirun else 1)


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def parallel_jobs(launcher: Mapping[str, Any]) -> int:
    """How many jobs a Hydra launcher (its config node) runs at once on this machine: 1 unless it is a
    parallel local one (joblib, submitit_local)."""
    target = str(launcher.get("_target_", ""))
    if "joblib" in target.lower():
        n = int(launcher.get("n_jobs") or 1)
        return max(1, cores() + 1 + n if n < 0 else n)  # joblib: -1 = all cores, -2 = all but one
    if "submitit" in target.lower() and "Local" in target:
        return max(1, int(launcher.get("array_parallelism") or 1))
    return 1
