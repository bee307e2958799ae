"""``trainer.resume``: which checkpoint a run continues from, and which folder it continues in.

- ``auto``: the run in this run's own folder if it has a checkpoint (the pattern
  for re-running one command, ``hydra.run.dir=X trainer.resume=auto``, after a
  kill or a pre-emption); otherwise the newest unfinished run under the same
  runs folder whose config is this one (up to keys that only change how a run
  looks, and ``trainer.epochs``, so a run can be given more epochs); otherwise a
  new run.
- a path: a run folder (its ``checkpoints/last.pt``) or a checkpoint file. A
  file inside a run's ``checkpoints/`` continues in that run's folder.

An unreadable ``last.pt`` under ``auto`` falls back to ``best.pt`` with a
warning: every checkpoint carries the full training position and every random
state, so continuing from an earlier one replays the same epochs exactly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from nnexp.checkpoint import load_checkpoint
from nnexp.config import DISPLAY_KEYS
from nnexp.errors import ConfigError

log = logging.getLogger(__name__)

FINISHED = ("completed", "early_stopped", "diverged")
IGNORED = DISPLAY_KEYS | {"trainer.epochs"}  # differences that do not make another run


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def config_hash(config: dict[str, Any]) -> str:
    """A fingerprint of what a run computes: the resolved config without the keys that only change how it
    looks. Stored in summary.json; a sweep run again skips a job whose folder holds a finished run with it."""
    import hashlib

    flat = {k: v for k, v in _flat(config).items() if k not in DISPLAY_KEYS}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_here(run_dir: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of a finished run of this very config in ``run_dir``, else None."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if summary.get("status") in FINISHED and summary.get("config_hash") == config_hash(config):
        return summary
    return None


def same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Do two resolved configs describe the same training run?"""
    fa, fb = _flat(a), _flat(b)
    return {k: v for k, v in fa.items() if k not in IGNORED} == {k: v for k, v in fb.items() if k not in IGNORED}


def _unfinished(run: Path) -> bool:
    try:
        return json.loads((run / "summary.json").read_text()).get("status") not in FINISHED
    except (OSError, ValueError):
        return True  # killed before it could write one


def _config_of(run: Path) -> dict[str, Any] | None:
    try:
        return OmegaConf.to_container(OmegaConf.load(run / ".hydra" / "config.yaml"), resolve=True)
    except Exception:  # noqa: BLE001 - a damaged or foreign folder is just not a match
        return None


def _newest_unfinished(run_dir: Path, config: dict[str, Any]) -> Path | None:
    """Among sibling runs (``<runs>/<date>/<time>_<id>``), the newest unfinished one with this config."""
    runs = run_dir.resolve().parent.parent
    found = [p.parent.parent for p in runs.glob("*/*/checkpoints/last.pt")]
    found = [r for r in found if r.resolve() != run_dir.resolve() and _unfinished(r)]
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
