"""The run folder's housekeeping outside training: where the log goes, and what a rejected run leaves.

Free of torch: the Hydra entry calls it after a config error, before any run began.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def log_to(file: Path) -> None:
    """Send the run's log to ``file``, appending (Hydra's file handler was for a folder given up)."""
    handler = logging.FileHandler(file, mode="a", delay=True)
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
    if not keep_log:
        (run_dir / "train.log").unlink(missing_ok=True)
    # only ever removes empty folders: the run dir, then its parents as long as they are inside the cwd
    cwd = Path.cwd().resolve()
    parents = [d for d in run_dir.resolve().parents if cwd in d.parents]
    for d in (run_dir, *parents):
        try:
            d.rmdir()
        except OSError:
            break
