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

from nnexp.checkpoint import load_checkpoint, set_rng_state
from nnexp.errors import ConfigError, show
from nnexp.fingerprint import RESUMABLE_CHANGES, flat
from nnexp.train_state import TrainState

log = logging.getLogger(__name__)


def differences(before: dict[str, Any], now: dict[str, Any]) -> dict[str, list[Any]]:
    """The keys whose values differ between a checkpoint's config and this command's, less those a resumed run
    may change freely (how it looks, the epoch budget): ``{"optimizer.lr": [0.001, 0.05]}``."""
    fa, fb = flat(before), flat(now)
    keys = sorted((set(fa) | set(fb)) - RESUMABLE_CHANGES)
    return {k: [fa.get(k), fb.get(k)] for k in keys if fa.get(k) != fb.get(k)}


def refuse_changes(changed: dict[str, list[Any]], where: Path) -> None:
    """One line naming what differs, and how to continue with the new values anyway."""
    shown = ", ".join(f"{k}: {show(a)} -> {show(b)}" for k, (a, b) in list(changed.items())[:4])
    more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
    raise ConfigError(f"trainer.resume: this command's config differs from the run it would continue ({where}): "
                      f"{shown}{more}; to continue it with the new values add trainer.resume_config=new, or start a "
                      "new run without trainer.resume")


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


def restore(ckpt: dict[str, Any], path: Path, parts: Any, changed: dict[str, list[Any]] | None = None,
            finished: bool = False) -> list[str]:
    """Load a checkpoint into the built run (nnexp.build.Components); one line naming the file on anything
    that does not fit. ``changed``: config keys this command sets anew (``trainer.resume_config=new``), applied
    for real; ``finished``: the run had ended (``trainer.resume_finished=true``), so early stopping's patience
    starts over. Returns what the user should know (a line each)."""
    if "train_state" not in ckpt or "rng" not in ckpt:
        raise ConfigError(f"checkpoint {path}: has no training position or random states (written by nnexp "
                          f"{ckpt.get('nnexp_version', '< 0.2')}), so it cannot be resumed exactly")
    changed = changed or {}
    notes: list[str] = []
    try:
        parts.model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:  # size mismatch, missing or unexpected keys: torch lists them one per line
        details = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
        raise ConfigError(f"checkpoint {path}: does not fit this model: "
                          f"{details[0] if details else exc}") from None
    _restore_optimizer(ckpt, path, parts, changed, notes)
    parts.stopper.load_state_dict(ckpt["early_stopping"])
    if finished:
        parts.stopper.wait, parts.stopper.should_stop, parts.stopper.reason = 0, False, ""
    parts.state.load_state_dict(ckpt["train_state"])
    if "trainer.seed" in changed:  # the new seed's generators, as built, draw the coming batches and dropout
        notes.append(f"trainer.seed={changed['trainer.seed'][1]}: the coming epochs draw from the new seed")
    else:
        restore_rng(ckpt, parts.state)
    scaler = parts.settings.scaler
    if scaler.is_enabled() and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    stopper = parts.stopper
    if stopper.enabled and stopper.restore_best and stopper.best_epoch:
        best = path.parent / "best.pt" if path.is_file() else path / "best.pt"
        try:
            parts.state.best_state = load_checkpoint(best)["model"] if best.is_file() else None
        except ConfigError:
            parts.state.best_state = None
        if parts.state.best_state is None:
            parts.state.best_missing = stopper.best_epoch
            notes.append(f"{best} is missing or unreadable: the best weights (epoch {stopper.best_epoch}) cannot be "
                         "restored at the end unless a later epoch beats them; the record says which weights the "
                         "test set saw")
    return notes


def _restore_optimizer(ckpt: dict[str, Any], path: Path, parts: Any, changed: dict[str, list[Any]],
                       notes: list[str]) -> None:
    """The optimizer's and the schedule's state; with new values for their keys, those values win."""
    optimizer, scheduler = parts.optimizer, parts.scheduler
    new_type = any(k in changed for k in ("optimizer._target_", "optimizer.impl"))
    new_values = any(k.startswith(("optimizer.", "regularizer.weight_decay")) for k in changed)
    fresh = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    try:
        if new_type:
            notes.append("the optimizer changed: its state (moments, momentum) starts afresh")
        else:
            optimizer.load_state_dict(ckpt["optimizer"])
            if new_values:
                _apply_hyperparameters(optimizer, scheduler, fresh)
        if any(k.startswith("scheduler.") for k in changed):
            notes.append("the schedule changed: it starts afresh from here")
        elif scheduler is not None and ckpt.get("scheduler") is not None:
            base = list(getattr(scheduler, "base_lrs", []))
            scheduler.load_state_dict(ckpt["scheduler"])
            if new_values and base:
                scheduler.base_lrs = base  # the new lr is the schedule's base from here on
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"checkpoint {path}: its optimizer state does not fit this optimizer: {exc}") from None


def _apply_hyperparameters(optimizer: Any, scheduler: Any, fresh: list[dict[str, Any]]) -> None:
    """After loading the checkpoint's optimizer: the new config's hyperparameters in every group. The learning
    rate keeps its place in the schedule: scaled by new base / old base."""
    for group, new in zip(optimizer.param_groups, fresh, strict=True):
        old_base = group.get("initial_lr", group["lr"])
        new_base = new.get("initial_lr", new["lr"])
        for key, value in new.items():
            if key not in ("lr", "initial_lr"):
                group[key] = value
        at_base = not old_base or group["lr"] == old_base
        group["lr"] = new_base if at_base else group["lr"] * (new_base / old_base)
        if "initial_lr" in group or scheduler is not None:
            group["initial_lr"] = new_base
