"""The run folder's housekeeping outside training: where the log goes, what a rejected run leaves, and
whether the run can write its files at all.

Free of torch: the Hydra entry calls it after a config error, before any run began.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path
from typing import Any

from nnexp.errors import ConfigError
from nnexp.output import RunLog

# what a run writes into its folder, and what it is (the names of docs/ARCHITECTURE.md's "Run directory")
RUN_FILES = {"summary.json": "the run record", "metrics.csv": "the curves", "train.log": "the log",
             "checkpoints/last.pt": "the last checkpoint", "checkpoints/best.pt": "the best checkpoint"}

# where the run's .hydra folder goes (hydra.output_subdir as the user set it): Hydra is told to write none, so
# that nothing lands in a folder before nnexp/lifecycle.py has said it may be used; task() writes it instead
OUTPUT_SUBDIR_ENV = "NNEXP_OUTPUT_SUBDIR"

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def log_to(file: Path) -> None:
    """Send the run's log to ``file``, appending (Hydra's file handler was for a folder given up)."""
    handler = RunLog(file, mode="a", delay=True)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)


def close_log(run_dir: Path) -> None:
    """Hydra's log file handler (opened lazily) must not outlive a run given up: no later line goes there."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == Path(run_dir).resolve():
            root.removeHandler(handler)
            handler.close()


def discard(run_dir: Path, keep_log: bool, lock: Any = None) -> None:
    """Remove what this command made for a run that never started (its lock file, its log, empty folders),
    so nothing is left half-written. Never anything it did not make: a folder that held a run keeps it."""
    run_dir = Path(run_dir)
    close_log(run_dir)
    if lock is not None:
        lock.remove()
    if not keep_log and (run_dir / "train.log").is_file():
        (run_dir / "train.log").unlink()
    # only ever removes empty folders: the run dir, then its parents as long as they are inside the cwd
    cwd = Path.cwd().resolve()
    parents = [d for d in run_dir.resolve().parents if cwd in d.parents]
    for d in (run_dir, *parents):
        try:
            d.rmdir()
        except OSError:
            break


def check_writable(run_dir: Path) -> None:
    """Before training: the run folder is a writable folder, and no folder sits where the run writes a file
    (summary.json, metrics.csv, train.log, the checkpoints), which would otherwise be found only after the
    whole training. ConfigError naming the path (exit 2)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} is a file, not a folder; choose another hydra.run.dir")
    for name, what in RUN_FILES.items():
        path = run_dir / name
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, but the run writes {what} there; move it away or choose "
                              "another hydra.run.dir")
    ckpts = run_dir / "checkpoints"
    if ckpts.exists() and not ckpts.is_dir():
        raise ConfigError(f"{ckpts} is a file, but the run keeps its checkpoints in a folder of that name; move it "
                          "away or choose another hydra.run.dir")
    for folder in (run_dir, ckpts):
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"folder {folder} is not writable; choose another hydra.run.dir")


def planned(key: str, folder: str) -> tuple[str, Path, Path | None]:
    """A folder Hydra is about to create (``key``: hydra.run.dir or hydra.sweep.dir), and the first of it and its
    parents that is not there yet (what to remove again if it cannot be used)."""
    path = Path(os.path.abspath(folder))
    missing = [d for d in (path, *path.parents) if not os.path.exists(d)]  # (False for a name too long)
    return key, path, (missing[-1] if missing else None)


def remove_made(folder: Path, first_new: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``first_new`` (what this command made), only while empty."""
    for d in (folder, *folder.parents) if first_new is not None else ():
        try:
            d.rmdir()
        except (FileNotFoundError, NotADirectoryError):
            pass  # never created
        except OSError as error:
            if error.errno != errno.ENAMETOOLONG:
                break  # not empty: not ours alone
        if d == first_new:
            break


def _config_subdir() -> str | None:
    """The run's config folder (``hydra.output_subdir`` as the user set it), or None when they asked for none."""
    subdir = os.environ.get(OUTPUT_SUBDIR_ENV, ".hydra")
    return None if subdir in ("", "null") else subdir


def save_config(cfg: Any, hydra_cfg: Any, run_dir: Path) -> None:
    """The composed config, Hydra's own (``hydra_cfg``, HydraConfig.get()) and the overrides in
    ``<run_dir>/.hydra`` (what Hydra would write), once the run has its folder: Hydra itself writes nothing
    there (nnexp/lifecycle.py decides first)."""
    from omegaconf import OmegaConf

    subdir = _config_subdir()
    if subdir is None:
        return
    hydra = OmegaConf.to_container(hydra_cfg, resolve=False)  # a copy: Hydra's own stays as it is
    hydra["output_subdir"] = subdir
    hydra["overrides"]["hydra"] = [o for o in hydra["overrides"]["hydra"] if o != "hydra.output_subdir=null"]
    out = Path(run_dir) / subdir
    out.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), out / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(hydra["overrides"]["task"]), out / "overrides.yaml")


def remove_config(run_dir: Path) -> None:
    """Undo the ``.hydra`` config files of a run that never began, in a folder this command made."""
    subdir = _config_subdir()
    if subdir is None:
        return
    folder = Path(run_dir) / subdir
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        with contextlib.suppress(OSError):
            (folder / name).unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def own_output_subdir(args: list[str]) -> list[str]:
    """Take ``hydra.output_subdir`` from Hydra (its value kept for task()); Hydra then writes no config files."""
    subdir, rest = ".hydra", []
    for arg in args:
        if arg.lstrip("+~").startswith("hydra.output_subdir="):
            subdir = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    os.environ[OUTPUT_SUBDIR_ENV] = subdir
    return rest  # conf/train.yaml sets hydra.output_subdir: null (an override added here would land after a flag)
