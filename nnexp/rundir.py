"""The run folder's housekeeping outside training: where the log goes, and what a rejected run leaves.

Free of torch: the Hydra entry calls it after a config error, before any run began.
"""

from __future__ import annotations

import logging
from pathlib import Path

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


def discard(run_dir: Path, keep_log: bool) -> None:
    """Remove what Hydra created for a run that never started, so nothing is left half-written."""
    run_dir = Path(run_dir)
    close_log(run_dir)
    hydra_dir = run_dir / ".hydra"
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (hydra_dir / name).unlink(missing_ok=True)
    if not keep_log:
        (run_dir / "train.log").unlink(missing_ok=True)
    # only ever removes empty folders: the run dir, then its parents as long as they are inside the cwd
    cwd = Path.cwd().resolve()
    parents = [d for d in run_dir.resolve().parents if cwd in d.parents]
    for d in (hydra_dir, run_dir, *parents):
        try:
            d.rmdir()
        except OSError:
            break
