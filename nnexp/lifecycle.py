"""The life of a run folder, owned here: which folder a command trains in, whether it may, and who holds it.

A run folder is *new* (nothing of a run in it), *running* (locked by the one
process that trains in it), or holds a run that *ended* with one of the final
statuses of nnexp/record.py. The rules (README, Reliability; docs/ARCHITECTURE.md):

- A fresh run (``trainer.resume`` unset) trains only in a new folder. A folder that
  holds a run is refused (exit 2) with the two ways on: a new folder, or
  ``trainer.resume=auto``.
- ``trainer.resume=auto`` with ``hydra.run.dir`` named looks only in that folder;
  without it, only at the unfinished runs of the same config under the runs folder
  (``outputs/runs``), the newest one that no other process holds.
- A finished run (completed, early_stopped, diverged, failed) is never changed by
  running its command again: ``resume=auto`` says so and exits 0. It trains further
  only when asked: a completed run given more ``trainer.epochs``, any other with
  ``trainer.resume_finished=true``.
- A job of a sweep run again: finished with this config → skipped; interrupted or
  killed → continued from its checkpoint; failed → run again, the failed attempt
  moved to ``previous/<n>/`` inside the job folder (nothing is deleted).
- One process per folder: a lock (``.nnexp.lock``, an advisory ``flock`` the OS
  drops when its process dies) is held from the claim to the end of the run. A
  second process exits 2 naming the PID; a sweep job held elsewhere is skipped.

Free of torch: the Hydra entry claims a folder before anything is imported or built.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnexp import record, rundir
from nnexp.errors import ConfigError
from nnexp.fingerprint import config_hash, same_run
from nnexp.folder_lock import LOCK_FILE, FolderLock, FolderUnusable, RunBusy, busy  # noqa: F401 (re-exported)
from nnexp.record import Outcome, RunSummary, Status

log = logging.getLogger("nnexp")

PREVIOUS = "previous"  # a sweep job run again after it failed keeps the failed attempt here
# what a run leaves in its folder (any one of them: the folder holds a run)
RUN_FILES = ("summary.json", "metrics.csv", "checkpoints", ".hydra")  # (train.log only grows)


def holds_run(folder: Path) -> bool:
    """Does ``folder`` hold (part of) a run: its record, curves, checkpoints or TensorBoard events?"""
    folder = Path(folder)
    if (folder / record.FILE).is_file() or (folder / "metrics.csv").is_file() or has_checkpoint(folder):
        return True
    return folder.is_dir() and any(folder.glob("events.out.tfevents.*"))


def has_checkpoint(folder: Path) -> bool:
    ckpts = Path(folder) / "checkpoints"
    return (ckpts / "last.pt").is_file() or (ckpts / "best.pt").is_file()


@dataclass
class Claim:
    """What this command does with which folder, decided before anything is built."""

    run_dir: Path  # the folder it trains in (under resume=auto maybe another run's folder)
    lock: FolderLock
    resume_from: Path | None = None  # a checkpoints folder or a .pt file to continue from
    done: RunSummary | None = None  # the folder holds a finished run: nothing to train
    new_folder: bool = True  # nothing of a run was here: a config error may remove what this command made
    restart_patience: bool = False  # continuing an early-stopped run: early stopping's patience starts over
    notes: list[str] = field(default_factory=list)  # lines for the user (a stale lock taken over, ...)

    def release(self) -> None:
        self.lock.release()

    def abandon(self, keep_log: bool) -> None:
        """The run never began (a signal, or an error before training): in a new folder, remove what this
        command made for it (the .hydra config, the lock file, its log unless ``keep_log``, empty folders);
        a folder that held a run is left as it was."""
        if self.new_folder:
            rundir.remove_config(self.run_dir)
            rundir.discard(self.run_dir, keep_log=keep_log, lock=self.lock)


@dataclass(frozen=True)
class Ask:
    """What the command asks of the folder: its config and the trainer keys that decide its life."""

    config: dict[str, Any]  # the resolved config
    resume: str | None  # trainer.resume
    epochs: int  # trainer.epochs
    resume_finished: bool  # trainer.resume_finished
    chosen: bool  # the user named the folder (hydra.run.dir / hydra.sweep.dir)
    multirun: bool  # a job of a sweep


def ask(cfg: Any, chosen: bool, multirun: bool) -> Ask:
    """What a composed config asks of its folder."""
    from omegaconf import OmegaConf

    tc = cfg.trainer
    return Ask(OmegaConf.to_container(cfg, resolve=True), tc.resume, int(tc.epochs), bool(tc.resume_finished),
               chosen, multirun)


def claim(run_dir: Path, ask: Ask) -> Claim:
    """Decide and lock the folder this command trains in; raises ConfigError (exit 2) when it may not."""
    run_dir = Path(run_dir)
    if ask.resume is None:
        if ask.multirun:
            return _sweep_job(run_dir, ask)
        _fresh_only(run_dir)
        return _locked(Claim(run_dir, FolderLock(run_dir)))
    if ask.resume == "auto":
        if holds_run(run_dir):
            return _continue(run_dir, run_dir / "checkpoints", ask)
        if not ask.chosen and not ask.multirun:
            found = _newest_unfinished(run_dir, ask.config)
            if found is not None:
                return found
        return _locked(Claim(run_dir, FolderLock(run_dir)))
    where, target = _checkpoint_at(ask.resume, run_dir)
    if target.resolve() != run_dir.resolve() or run_dir.resolve() in where.resolve().parents:
        return _continue(target, where, ask)  # a run's own checkpoint: continued in that run's folder
    _fresh_only(run_dir)  # a checkpoint from elsewhere starts a new run here, from its weights and position
    return _locked(Claim(run_dir, FolderLock(run_dir), resume_from=where))


def _locked(claim: Claim) -> Claim:
    claim.lock.acquire()
    if claim.lock.stale:
        claim.notes.append(f"{claim.run_dir}: took over the lock left by a process that is gone "
                           f"({claim.lock.stale})")
    return claim


def _fresh_only(run_dir: Path) -> None:
    if holds_run(run_dir):
        summary = record.read(run_dir)
        what = f"a {summary.status} run" if summary is not None else "an unfinished run"
        raise ConfigError(f"hydra.run.dir={run_dir} already holds {what}; a new run needs a new folder "
                          "(another hydra.run.dir, or leave it out), or continue that one with trainer.resume=auto")


def _continue(folder: Path, where: Path, ask: Ask) -> Claim:
    """Continue the run in ``folder`` from ``where`` (its checkpoints, or a file), unless it has finished."""
    claim = _locked(Claim(folder, FolderLock(folder), resume_from=where, new_folder=False))
    try:
        summary = record.read(folder)
        if summary is not None and summary.outcome is not Outcome.RESUMABLE and not _asks_more(summary, ask):
            claim.done, claim.resume_from = summary, None
        elif summary is not None and summary.status is Status.EARLY_STOPPED:
            claim.restart_patience = True
        if claim.done is None and not where.is_file() and not has_checkpoint(where.parent):
            claim.resume_from = None  # killed before its first checkpoint: nothing to continue from
            if summary is not None and summary.outcome is not Outcome.RESUMABLE:
                raise ConfigError(f"trainer.resume: {folder} holds a {summary.status} run without checkpoints, so "
                                  "it cannot be continued; train it again in a new folder")
            claim.notes.append(f"{folder}: no checkpoint yet, so the run starts over (the earlier start is kept "
                               f"in {set_aside(folder)})")
            claim.new_folder = True
    except BaseException:
        claim.release()
        raise
    return claim


def _asks_more(summary: RunSummary, ask: Ask) -> bool:
    """A finished run trains further only when asked: more epochs for a completed one, else resume_finished."""
    if ask.resume_finished:
        return True
    return summary.status is Status.COMPLETED and ask.epochs > summary.epochs_run


def finished_words(summary: RunSummary) -> str:
    """``<folder>: already finished (early_stopped at epoch 38, best val/loss 0.31 at epoch 30) ...``."""
    parts = [f"{summary.status} after epoch {summary.epochs_run}"]
    if summary.best_epoch and isinstance(summary.best_value, (int, float)):
        parts.append(f"best {summary.monitor} {summary.best_value:.4g} at epoch {summary.best_epoch}")
    if summary.status is Status.FAILED and summary.error:
        parts.append(summary.error)
    if summary.status is Status.COMPLETED:
        how = f"give it more epochs (trainer.epochs > {summary.epochs_run})"
    else:
        how = "add trainer.resume_finished=true"
    return (f"{summary.run_dir or 'the run'}: already finished ({'; '.join(parts)}); nothing was trained. "
            f"To train it further, {how}.")


def _sweep_job(folder: Path, ask: Ask) -> Claim:
    """A job of a sweep: new, skipped (finished with this config), continued (interrupted) or run again."""
    if not holds_run(folder):
        return _locked(Claim(folder, FolderLock(folder)))
    summary = record.read(folder)
    ours = summary.config_hash == config_hash(ask.config) if summary and summary.config_hash else \
        _same_config(folder, ask.config)
    if not ours:
        raise ConfigError(f"{folder} holds a run of another config; this job needs a new folder "
                          "(another hydra.sweep.dir, or leave it out)")
    claim = _locked(Claim(folder, FolderLock(folder), new_folder=False))
    if summary is not None and summary.outcome is Outcome.FINISHED:
        claim.done = summary
    elif (summary is None or summary.outcome is Outcome.RESUMABLE) and has_checkpoint(folder):
        claim.resume_from = folder / "checkpoints"
    else:
        claim.notes.append(f"{folder}: the earlier attempt ({summary.status if summary else 'no summary'}) is kept "
                           f"in {set_aside(folder)}; running the job again")
        claim.new_folder = True  # what was here is set aside: this attempt starts as in a new folder
    return claim


def _same_config(folder: Path, config: dict[str, Any]) -> bool:
    """No summary.json (killed): judge by the config the run recorded, or its checkpoint's."""
    other = config_of(folder)
    return other is None or same_run(other, config)


def config_of(folder: Path) -> dict[str, Any] | None:
    """The resolved config a run folder recorded (``.hydra/config.yaml``), or None."""
    try:
        from omegaconf import OmegaConf

        return OmegaConf.to_container(OmegaConf.load(Path(folder) / ".hydra" / "config.yaml"), resolve=True)
    except Exception:  # noqa: BLE001 - a damaged or foreign folder is just not a match
        return None


def set_aside(folder: Path) -> Path:
    """Move what an earlier attempt left in ``folder`` to ``folder/previous/<n>``; nothing is deleted."""
    keep = folder / PREVIOUS
    n = 1
    while (keep / str(n)).exists():
        n += 1
    target = keep / str(n)
    target.mkdir(parents=True)
    for item in folder.iterdir():
        if item.name in RUN_FILES or item.name.startswith("events.out.tfevents."):
            shutil.move(str(item), str(target / item.name))
    return target


def _newest_unfinished(run_dir: Path, config: dict[str, Any]) -> Claim | None:
    """Under the runs folder (``<runs>/<date>/<time>_<id>``), the newest resumable run of this config that no
    other process holds, locked for this one."""
    runs = run_dir.resolve().parent.parent
    found = {p.parent.parent for p in runs.glob("*/*/checkpoints/last.pt")}
    found = [r for r in found if r != run_dir.resolve() and _resumable(r)]
    for run in sorted(found, key=lambda r: (r / "checkpoints" / "last.pt").stat().st_mtime, reverse=True):
        other = config_of(run)
        if other is None or not same_run(other, config):
            continue
        try:
            claim = _locked(Claim(run, FolderLock(run), resume_from=run / "checkpoints", new_folder=False))
        except RunBusy:
            continue  # another process is continuing it
        if _resumable(run):  # still so now that it is ours
            return claim
        claim.release()
    return None


def _resumable(run: Path) -> bool:
    """Interrupted, or killed before it could write its summary.json."""
    summary = record.read(run)
    return summary is None or summary.outcome is Outcome.RESUMABLE


def _checkpoint_at(spec: str, run_dir: Path) -> tuple[Path, Path]:
    """``trainer.resume=PATH`` -> (the checkpoints folder or file to resume from; the run folder to write into)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        ckpts = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        if not (ckpts / "last.pt").exists():
            raise ConfigError(f"trainer.resume={spec}: {path} holds no checkpoints/last.pt, so there is nothing to "
                              "resume; allowed: auto, a run folder with checkpoints, or a .pt file")
        return ckpts, ckpts.parent if ckpts.name == "checkpoints" else run_dir
    if path.is_file():
        return path, path.parent.parent if path.parent.name == "checkpoints" else run_dir
    raise ConfigError(f"trainer.resume={spec}: no such run folder or checkpoint file; allowed: auto, a run folder "
                      "with checkpoints, or a .pt file")
