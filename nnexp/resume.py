"""``trainer.resume``: which checkpoint a run continues from, and which folder it continues in.

- ``auto``: the run in this run's own folder if it has a checkpoint (the pattern
  for re-running one command, ``hydra.run.dir=X trainer.resume=auto``, after a
  kill or a pre-emption); otherwise the newest resumable run (interrupted, or
  killed before it wrote summary.json: nnexp/record.py) under the same runs
  folder whose config is this one (up to keys that only change how a run
  looks, and ``trainer.epochs``, so a run can be given more epochs); otherwise a
  new run.
- a path: a run folder (its ``checkpoints/last.pt``) or a checkpoint file. A
  file inside a run's ``checkpoints/`` continues in that run's folder.

An unreadable ``last.pt`` under ``auto`` falls back to ``best.pt`` with a
warning: every checkpoint carries the full training position and every random
state, so continuing from an earlier one replays the same epochs exactly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from nnexp import record
from nnexp.checkpoint import load_checkpoint, set_rng_state
from nnexp.errors import ConfigError
from nnexp.fingerprint import config_hash, same_run
from nnexp.record import Outcome
from nnexp.train_state import TrainState

log = logging.getLogger(__name__)


def finished_here(run_dir: Path, config: dict[str, Any]) -> record.RunSummary | None:
    """The record of a finished run of this very config in ``run_dir``, else None (a sweep run again skips it)."""
    summary = record.read(run_dir)
    if summary is not None and summary.outcome is Outcome.FINISHED and summary.config_hash == config_hash(config):
        return summary
    return None


def _resumable(run: Path) -> bool:
    """Interrupted, or killed before it could write its summary.json."""
    summary = record.read(run)
    return summary is None or summary.outcome is Outcome.RESUMABLE


def _config_of(run: Path) -> dict[str, Any] | None:
    try:
        return OmegaConf.to_container(OmegaConf.load(run / ".hydra" / "config.yaml"), resolve=True)
    except Exception:  # noqa: BLE001 - a damaged or foreign folder is just not a match
        return None


def _newest_unfinished(run_dir: Path, config: dict[str, Any]) -> Path | None:
    """Among sibling runs (``<runs>/<date>/<time>_<id>``), the newest unfinished one with this config."""
    runs = run_dir.resolve().parent.parent
    found = [p.parent.parent for p in runs.glob("*/*/checkpoints/last.pt")]
    found = [r for r in found if r.resolve() != run_dir.resolve() and _resumable(r)]
    for run in sorted(found, key=lambda r: (r / "checkpoints" / "last.pt").stat().st_mtime, reverse=True):
        other = _config_of(run)
        if other is not None and same_run(other, config):
            return run
    return None


def locate(spec: str, run_dir: Path, config: dict[str, Any]) -> tuple[Path | None, Path]:
    """``trainer.resume`` -> (the checkpoints folder or file to resume from, or None; the run folder to write into)."""
    if spec == "auto":
        own = run_dir / "checkpoints"
        if (own / "last.pt").exists() or (own / "best.pt").exists():
            return own, run_dir
        other = _newest_unfinished(run_dir, config)
        if other is not None:
            return other / "checkpoints", other
        return None, run_dir
    path = Path(spec).expanduser()
    if path.is_dir():
        ckpts = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        if not (ckpts / "last.pt").exists():
            raise ConfigError(f"trainer.resume={spec}: {path} holds no checkpoints/last.pt, so there is nothing to "
                              "resume; allowed: auto, a run folder with checkpoints, or a .pt file")
        return ckpts / "last.pt", ckpts.parent if ckpts.name == "checkpoints" else run_dir
    if path.is_file():
        return path, path.parent.parent if path.parent.name == "checkpoints" else run_dir
    raise ConfigError(f"trainer.resume={spec}: no such run folder or checkpoint file; allowed: auto, a run folder "
                      "with checkpoints, or a .pt file")


def load(where: Path) -> tuple[dict[str, Any], Path]:
    """Read a checkpoint: a file as given, or from a checkpoints folder ``last.pt``, else ``best.pt`` with a warning."""
    if where.is_file() or where.suffix == ".pt":
        return load_checkpoint(where), where
    last, best = where / "last.pt", where / "best.pt"
    try:
        return load_checkpoint(last), last
    except ConfigError as exc:
        if not best.exists():
            raise
        log.warning("%s; resuming from %s instead", exc, best)
        return load_checkpoint(best), best


def restore_rng(ckpt: dict[str, Any], state: TrainState) -> None:
    """The shuffling generator and the global generators (dropout, numpy, random), as the checkpoint left them."""
    state.generator.set_state(ckpt["train_state"]["generator"])
    set_rng_state(ckpt["rng"])


def restore(ckpt: dict[str, Any], path: Path, parts: Any) -> None:
    """Load a checkpoint into the built run (nnexp.build.Components); one line naming the file on anything
    that does not fit."""
    if "train_state" not in ckpt or "rng" not in ckpt:
        raise ConfigError(f"checkpoint {path}: has no training position or random states (written by nnexp "
                          f"{ckpt.get('nnexp_version', '< 0.2')}), so it cannot be resumed exactly")
    try:
        parts.model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:  # size mismatch, missing or unexpected keys: torch lists them one per line
        details = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
        raise ConfigError(f"checkpoint {path}: does not fit this model: "
                          f"{details[0] if details else exc}") from None
    try:
        parts.optimizer.load_state_dict(ckpt["optimizer"])
        if parts.scheduler is not None and ckpt.get("scheduler") is not None:
            parts.scheduler.load_state_dict(ckpt["scheduler"])
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"checkpoint {path}: its optimizer state does not fit this optimizer: {exc}") from None
    parts.stopper.load_state_dict(ckpt["early_stopping"])
    parts.state.load_state_dict(ckpt["train_state"])
    restore_rng(ckpt, parts.state)
    scaler = parts.settings.scaler
    if scaler.is_enabled() and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    best = path.parent / "best.pt"
    stopper = parts.stopper
    if stopper.enabled and stopper.restore_best and stopper.best_epoch and best.exists():
        parts.state.best_state = load(best)[0]["model"]
