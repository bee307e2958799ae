"""``nnexp train``: the Hydra entry. The one module that reads Hydra's runtime state (HydraConfig).

It composes the config from the command line, runs each job through
:func:`task` (one run, or one job of a sweep), maps every outcome to the
documented exit code, and after a sweep prints the table of its jobs
(nnexp/sweep_jobs.py). torch is imported only when a run starts.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

from nnexp import folder_lock, lifecycle, record, rundir, signals, sweep_workers, validate
from nnexp import sweep_jobs as sweep
from nnexp.context import RunContext
from nnexp.errors import (
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_HANGUP,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    NnexpError,
)
from nnexp.hydra_errors import HeldStderr, folder_error
from nnexp.lifecycle import RunBusy
from nnexp.output import log_note
from nnexp.record import Outcome, RunSummary, Status

log = logging.getLogger("nnexp")

# What Hydra's task function shares with train(): module-level, so that launchers that run jobs in other
# processes (joblib, submitit) can pickle the task by reference; the jobs' outcomes are read from their folders.
# "folder": the run or sweep folder Hydra is about to create (its key, the folder, the first of it and its parents
# that was not there yet), noted by SweepWatcher. "run_dir": the folder a single run trained in (or found
# finished), for nnexp/api.py. "task": what runs the job (None: task() below, also in a launcher's worker).
_STATE: dict = {"started": False, "held": None, "sweep_dir": None, "started_at": 0.0, "folder": None, "run_dir": None,
                "task": None}


def train(args: list[str], command: str = "train") -> int:
    """Hand the arguments to Hydra; return the exit code (lr-find: conf/lr_find.yaml, nnexp/lr_find_cmd.py's task)."""
    import hydra

    from nnexp import config

    lr_find = command == "lr-find"
    config.register(config.LrFindRunConf if lr_find else config.TrainConf)
    config.new_run_id()
    task_fn = None
    if lr_find:
        from nnexp.lr_find_cmd import task as task_fn
    _STATE.update(started=False, sweep_dir=None, started_at=time.time(), folder=None, run_dir=None, task=task_fn)
    scratch = None
    if int(os.environ.get("RANK", "0")) > 0 and "WORLD_SIZE" in os.environ:
        # a DDP rank other than 0 (torchrun): rank 0 owns the run folder, this one writes nowhere
        import tempfile

        scratch = tempfile.mkdtemp(prefix=f"nnexp-rank{os.environ['RANK']}-")
        args = [*args, f"hydra.run.dir={scratch}", "hydra.output_subdir=null"]
    args = rundir.own_output_subdir(args)
    app = hydra.main(config_path=str(config.config_dir()), config_name="lr_find" if lr_find else "train",
                     version_base="1.3")(_hydra_task)
    saved_argv, saved_stderr = sys.argv, sys.stderr
    sys.argv = [f"nnexp {command}", *args]  # Hydra parses sys.argv
    held = HeldStderr(saved_stderr)  # Hydra's messages wait until we know whether a task started
    _STATE["held"] = held
    sys.stderr = held
    sweep_dir = None
    try:
        # jobs run by other processes stop with this one, never outlive it (nnexp/sweep_workers.py)
        with signals.exit_at_once(_forget_folder), sweep_workers.main_process():
            app()
        sweep_dir = _sweep_dir()
    except KeyboardInterrupt as exc:  # while Hydra composes or between jobs
        return signals.interrupted(exc).code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_FAILED)
        failure = exc.__context__  # what Hydra reported before it exited
        if code == 1 and not _STATE["started"] and isinstance(failure, ConfigCompositionException):
            # Hydra refused the overrides (an unknown option or key, a value of the wrong type) before any job
            # ran, also when a sweep's check of its jobs did: a usage error, the sweep folder it began removed
            _forget_sweep()
            held.release(condense=True, args=args, error=failure)
            return EXIT_USAGE
        if code == 1 and not _STATE["started"] and _STATE["folder"] is not None and isinstance(failure, OSError):
            # Hydra could not create or write into the run (or sweep) folder: about the folder, not the overrides
            return _folder_failed(failure, held)
        # Hydra exits 1 for its own errors (unknown group option or key, bad override
        # syntax, a value of the wrong type), all before any task starts: a usage error.
        if code == 1 and not _STATE["started"] and _sweep_dir() is None:
            held.release(condense=True, args=args, error=failure)
            return EXIT_USAGE
        return code
    finally:
        held.release()
        _STATE["held"] = None
        sys.argv, sys.stderr = saved_argv, saved_stderr
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    if sweep_dir is None:
        return 0
    return sweep.finish(sweep_dir, _STATE["started_at"])


def _folder_failed(exc: OSError, held: HeldStderr) -> int:
    """One line naming the folder and the OS's reason instead of Hydra's traceback; the folders this invocation
    created on the way removed (only empty ones). Exit 2 where the folder named cannot be used, else 1."""
    key, folder, first_new = _STATE["folder"]
    held.release(instead=folder_error(exc, key, folder) + "\n")
    rundir.close_log(folder)
    rundir.remove_made(folder, first_new)
    usage = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ENOTDIR, errno.EEXIST)
    return EXIT_USAGE if exc.errno in usage else EXIT_FAILED


def _forget_sweep() -> None:
    """A sweep that never ran a job: remove the sweep folder this command made for it (what it wrote there)."""
    planned = _STATE.get("folder")
    if planned is None or planned[0] != "hydra.sweep.dir" or planned[2] is None:
        return  # no sweep, or its folder was there before: left as it is
    for name in (sweep.RECORD, "multirun.yaml"):
        with contextlib.suppress(OSError):
            (planned[1] / name).unlink()
    rundir.remove_made(planned[1], planned[2])


def _forget_folder() -> None:
    """A signal before the run began: remove the run folder Hydra may have made for it, if still empty."""
    planned = _STATE.get("folder")
    if planned is not None and planned[0] == "hydra.run.dir":
        with contextlib.suppress(OSError):
            planned[1].rmdir()


def _hydra_task(cfg: DictConfig) -> float | None:
    signals.raise_on_signals()
    _STATE["started"] = True
    if _STATE["held"] is not None:
        _STATE["held"].release()
    return (_STATE["task"] or task)(cfg)


def context() -> RunContext:
    """Hydra's runtime facts for the job running now, read once."""
    return RunContext.from_hydra(HydraConfig.get())


def task(cfg: DictConfig) -> float | None:
    """One run, or one job of a sweep: claim its folder, run it, print one clear line on failure, map the
    outcome to an exit code.

    A single run that fails raises SystemExit with the documented code. In a sweep the
    other jobs go on: a job that failed keeps a summary.json saying so, and the sweep's
    exit code comes from all of them (nnexp/sweep_jobs.py). Returns the job's best monitored
    value (what Optuna minimizes).
    """
    sweep_workers.job_starts()  # in a launcher's worker process: stop with the sweep, never outlive it
    ctx = context()
    made_log = not (ctx.run_dir / "train.log").exists()
    try:
        # keys, ranges and the components' options, before torch is imported: a bad trainer.resume is named
        # as such, not looked for
        validate.check(cfg, ctx.choices, ctx.overrides)
    except NnexpError as exc:
        if ctx.multirun:  # the sweep's table and reports list the job
            print(f"nnexp: error: {exc}", file=sys.stderr)
            _record_failed_job(cfg, ctx, str(exc))
            return None
        return _refused(exc, ctx, made_log)

    def forget_claim() -> None:  # a signal while claiming: the lock file this command made, and an empty folder
        folder_lock.remove_made()
        if not lifecycle.holds_run(ctx.run_dir):
            rundir.discard(ctx.run_dir, keep_log=not made_log)

    try:
        with signals.exit_at_once(forget_claim):
            claim = lifecycle.claim(ctx.run_dir, lifecycle.ask(cfg, chosen=_dir_chosen(), multirun=ctx.multirun))
    except RunBusy as exc:
        if ctx.multirun:  # the same sweep started twice: the other process runs this job
            print(f"nnexp: job {HydraConfig.get().job.num} ({' '.join(ctx.overrides)}): running in another process "
                  f"({exc.holder}), skipped")
            return None
        return _refused(exc, ctx, made_log)
    except NnexpError as exc:
        return _refused(exc, ctx, made_log)
    try:
        return _claimed(cfg, ctx, claim, made_log)
    except KeyboardInterrupt as exc:  # before training began: what this command made goes
        claim.abandon(keep_log=not made_log)
        raise signals.interrupted(exc) from None
    finally:
        claim.release()


def _claimed(cfg: DictConfig, ctx: RunContext, claim: lifecycle.Claim, made_log: bool) -> float | None:
    for note in claim.notes:
        print(f"nnexp: {note}", file=sys.stderr)
    if claim.run_dir.resolve() != ctx.run_dir.resolve():  # resume=auto continues another run in its own folder
        rundir.discard(ctx.run_dir, keep_log=not made_log)
        rundir.log_to(claim.run_dir / "train.log")
        ctx = ctx.moved_to(claim.run_dir)
    _STATE["run_dir"] = ctx.run_dir
    if claim.done is not None:  # a finished run is never changed by running its command again
        if ctx.multirun:
            print(f"nnexp: job {HydraConfig.get().job.num} ({' '.join(ctx.overrides)}): already done "
                  f"({claim.done.status}), skipped")
            return claim.done.best_value
        print(f"nnexp: {lifecycle.finished_words(claim.done)}")
        return _end(0, ctx, claim.done)

    def forget() -> None:
        claim.abandon(keep_log=not made_log)

    # Until training starts a signal ends the command at once (one line, its exit code, the folder as it was):
    # raised as an exception it could land inside an import (torch, numpy.linalg), be swallowed there and leave
    # the module half-made (fault F82). Setting up writes nothing a kill could damage. (A KeyboardInterrupt
    # raised otherwise before training is task()'s to handle, the same way.)
    try:
        with signals.exit_at_once(forget):
            from nnexp.run import job as make_job  # torch is imported here, only when a run starts

            job = make_job(cfg, ctx, claim).setup()
    except Exception as exc:  # before the run wrote anything: a config error, or one while building
        code, message = _report(exc, ctx)
        if ctx.multirun and claim.new_folder:  # the sweep keeps a record of the job: its table and reports list it
            record.write(ctx.run_dir, _failed(cfg, ctx, message))
        elif code == EXIT_USAGE:  # nothing left half-written (a crash keeps its train.log); a folder that held a
            forget()  # run: as it was
        return _end(code, ctx)
    try:
        with signals.exit_at_once(forget):
            save_config(cfg, ctx.run_dir)
    except OSError as exc:
        forget()  # what this command made goes: the config files, then the folder
        print(_folder_line(exc, ctx), file=sys.stderr)
        return _end(EXIT_USAGE, ctx)
    try:
        summary = job.train()
    except KeyboardInterrupt as exc:
        raise signals.interrupted(exc) from None
    except Exception as exc:  # summary.json already says it failed, and why
        return _end(_report(exc, job.ctx)[0], ctx)
    code = exit_code(summary)
    if code == EXIT_DIVERGED:
        print(f"nnexp: error: training diverged: {summary.message}", file=sys.stderr)
    return _end(code, ctx, summary)


def _record_failed_job(cfg: DictConfig, ctx: RunContext, message: str) -> None:
    """A sweep job rejected by the rule table keeps a failed record, where the folder's life allows one."""
    try:
        claim = lifecycle.claim(ctx.run_dir, lifecycle.ask(cfg, chosen=True, multirun=True))
    except Exception:  # noqa: BLE001 - another process holds it, or another run is there: leave it be
        return
    try:
        if claim.done is None and claim.new_folder:
            record.write(ctx.run_dir, _failed(cfg, ctx, message))
    finally:
        claim.release()


def _refused(exc: NnexpError, ctx: RunContext, made_log: bool) -> float | None:
    """The folder may not be used: one line; remove only what Hydra made for this command (an empty folder)."""
    if isinstance(exc, lifecycle.FolderUnusable):
        print(_folder_line(exc.os_error, ctx), file=sys.stderr)
    else:
        print(f"nnexp: error: {exc}", file=sys.stderr)
    if not lifecycle.holds_run(ctx.run_dir):
        rundir.discard(ctx.run_dir, keep_log=not made_log)
    return _end(exc.exit_code, ctx)


def _folder_line(exc: OSError, ctx: RunContext) -> str:
    """One line for a run (or sweep job) folder the OS will not let us use (nnexp/hydra_errors.py)."""
    if ctx.multirun and ctx.sweep_dir is not None:
        return folder_error(exc, "hydra.sweep.dir", ctx.sweep_dir)
    return folder_error(exc, "hydra.run.dir", ctx.run_dir)


def save_config(cfg: DictConfig, run_dir: Path) -> None:
    """The job's config into ``<run_dir>/.hydra``, as Hydra would have written it (nnexp/rundir.py)."""
    rundir.save_config(cfg, HydraConfig.get(), run_dir)


def _dir_chosen() -> bool:
    """Did the user name the run's folder (hydra.run.dir / hydra.sweep.dir)?"""
    return any(str(o).split("=", 1)[0].lstrip("+~") in ("hydra.run.dir", "hydra.sweep.dir")
               for o in HydraConfig.get().overrides.hydra)


def exit_code(summary: RunSummary) -> int:
    if summary.status is Status.DIVERGED:
        return EXIT_DIVERGED
    if summary.status is Status.INTERRUPTED:
        return signals.exit_code(summary.signal)
    return EXIT_FAILED if summary.outcome is Outcome.FAILED else 0


def _report(exc: Exception, ctx: RunContext) -> tuple[int, str]:
    """One line on stderr for a failure; the exit code and the message for the record."""
    if isinstance(exc, NnexpError):
        print(f"nnexp: error: {exc}", file=sys.stderr)
        return exc.exit_code, str(exc)
    # a bug or an environment failure: one line here, the traceback in train.log
    log.info("traceback:\n%s", traceback.format_exc())
    message = f"{type(exc).__name__}: {exc}"
    print(f"nnexp: error: {message}{log_note(ctx.run_dir)}", file=sys.stderr)  # train.log only if written
    return EXIT_FAILED, message


def _failed(cfg: DictConfig, ctx: RunContext, message: str) -> RunSummary:
    seed = OmegaConf.select(cfg, "trainer.seed", default=None, throw_on_missing=False)
    return RunSummary(Status.FAILED, run_dir=str(ctx.run_dir), error=message, overrides=list(ctx.overrides),
                      choices=dict(ctx.choices), seed=seed if isinstance(seed, int) else None)


def _end(code: int, ctx: RunContext, summary: RunSummary | None = None) -> float | None:
    """A single run ends the process with its code; a sweep's job hands Hydra its value and the sweep goes on."""
    if code in (EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_TERMINATED) or (code and not ctx.multirun):
        raise SystemExit(code)
    return None if summary is None else summary.best_value


class SweepWatcher(Callback):
    """A Hydra callback (``hydra.callbacks`` in conf/train.yaml): in this process, where Hydra starts a
    multirun, continue an earlier run of the same sweep command and note the sweep folder, even when a
    launcher runs the jobs elsewhere. Before a single run, note the run folder Hydra is about to create."""

    def on_run_start(self, config: DictConfig, **kwargs: object) -> None:
        with contextlib.suppress(Exception):  # a run dir that does not resolve: Hydra itself says so
            _STATE["folder"] = rundir.planned("hydra.run.dir", str(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        task_overrides = [str(o) for o in config.hydra.overrides.task]
        chosen = any(str(o).startswith("hydra.sweep.dir=") for o in config.hydra.overrides.hydra)
        before = None if chosen else sweep.earlier(Path(str(config.hydra.sweep.dir)).parent.parent, task_overrides)
        if before is not None:
            # continue there: the jobs already done are skipped (task). The override also reaches
            # launchers that compose each job's config again in another process.
            with read_write(config):
                config.hydra.sweep.dir = str(before)
                config.hydra.overrides.hydra.append(f"hydra.sweep.dir={before}")
            print(f"nnexp: this sweep ran before in {before}: continuing there, jobs already done are skipped")
        sweep_dir = Path(str(config.hydra.sweep.dir))
        _STATE["folder"] = rundir.planned("hydra.sweep.dir", str(sweep_dir))
        sweep.remember(sweep_dir, task_overrides)
        _STATE["sweep_dir"] = sweep_dir


def _sweep_dir() -> Path | None:
    """The sweep folder of the multirun Hydra just ran, or None after a single run or an error."""
    path = _STATE.get("sweep_dir")
    return path if path is not None and path.is_dir() else None
