"""``nnexp train``: the Hydra entry. The one module that reads Hydra's runtime state (HydraConfig).

It composes the config from the command line, runs each job through
:func:`task` (one run, or one job of a sweep), maps every outcome to the
documented exit code, and after a sweep prints the table of its jobs
(nnexp/sweep.py). torch is imported only when a run starts.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

from nnexp import record, rundir, sweep, sweep_workers
from nnexp.context import RunContext
from nnexp.errors import (
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    NnexpError,
)
from nnexp.fingerprint import config_hash
from nnexp.hydra_errors import HeldStderr
from nnexp.record import Outcome, RunSummary, Status

log = logging.getLogger("nnexp")

# What Hydra's task function shares with train(): module-level, so that launchers that run jobs in other
# processes (joblib, submitit) can pickle the task by reference. The outcomes of the jobs are read from
# their folders afterwards, wherever they ran.
_STATE: dict = {"started": False, "held": None, "sweep_dir": None, "started_at": 0.0}


def train(args: list[str]) -> int:
    """Hand the arguments to Hydra; return the exit code."""
    import hydra

    from nnexp import config

    config.register()
    config.new_run_id()
    _STATE.update(started=False, sweep_dir=None, started_at=time.time())
    scratch = None
    if int(os.environ.get("RANK", "0")) > 0 and "WORLD_SIZE" in os.environ:
        # a DDP rank other than 0 (torchrun): rank 0 owns the run folder, this one writes nowhere
        import tempfile

        scratch = tempfile.mkdtemp(prefix=f"nnexp-rank{os.environ['RANK']}-")
        args = [*args, f"hydra.run.dir={scratch}", "hydra.output_subdir=null"]
    app = hydra.main(config_path=str(config.config_dir()), config_name="train", version_base="1.3")(_hydra_task)
    saved_argv, saved_stderr = sys.argv, sys.stderr
    sys.argv = ["nnexp train", *args]  # Hydra parses sys.argv
    held = HeldStderr(saved_stderr)  # Hydra's messages wait until we know whether a task started
    _STATE["held"] = held
    sys.stderr = held
    sweep_dir = None
    try:
        with sweep_workers.main_process():  # jobs run by other processes stop with this one, never outlive it
            app()
        sweep_dir = _sweep_dir()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_FAILED)
        # Hydra exits 1 for its own errors (unknown group option or key, bad override
        # syntax, a value of the wrong type), all before any task starts: a usage error.
        if code == 1 and not _STATE["started"] and _sweep_dir() is None:
            held.release(condense=True, args=args)
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


def _hydra_task(cfg: DictConfig) -> float | None:
    _STATE["started"] = True
    if _STATE["held"] is not None:
        _STATE["held"].release()
    return task(cfg)


def context() -> RunContext:
    """Hydra's runtime facts for the job running now, read once."""
    return RunContext.from_hydra(HydraConfig.get())


def task(cfg: DictConfig) -> float | None:
    """One run, or one job of a sweep: run it, print one clear line on failure, map the outcome to an exit code.

    A single run that fails raises SystemExit with the documented code. In a sweep the
    other jobs go on: a job that failed keeps a summary.json saying so, and the sweep's
    exit code comes from all of them (nnexp/sweep.py). Returns the job's best monitored
    value (what Optuna minimizes).
    """
    sweep_workers.job_starts()  # in a launcher's worker process: stop with the sweep, never outlive it
    ctx = context()
    if ctx.multirun:  # the same sweep run again: a job already done for this very config is not run twice
        done = _done_before(cfg, ctx)
        if done is not None:
            return done.best_value
    log_existed = (ctx.run_dir / "train.log").exists()
    try:
        from nnexp.run import Run  # torch is imported here, only when a run starts

        job = Run(cfg, ctx).setup()
    except KeyboardInterrupt:
        raise _interrupted() from None
    except Exception as exc:  # before the run wrote anything: a config error, or one while building
        code, message = _report(exc, ctx)
        if ctx.multirun:  # the sweep keeps a record of the job, so its table and reports list it
            record.write(ctx.run_dir, _failed(cfg, ctx, message))
        elif code == EXIT_USAGE:
            rundir.discard(ctx.run_dir, keep_log=log_existed)  # nothing is left half-written
        return _end(code, ctx)
    try:
        summary = job.train()
    except KeyboardInterrupt:
        raise _interrupted() from None
    except Exception as exc:  # summary.json already says it failed, and why
        return _end(_report(exc, job.ctx)[0], ctx)
    code = exit_code(summary)
    if code == EXIT_DIVERGED:
        print(f"nnexp: error: training diverged: {summary.message}", file=sys.stderr)
    return _end(code, ctx, summary)


def exit_code(summary: RunSummary) -> int:
    if summary.status is Status.DIVERGED:
        return EXIT_DIVERGED
    if summary.status is Status.INTERRUPTED:
        return EXIT_INTERRUPTED if summary.signal == "SIGINT" else EXIT_TERMINATED
    return EXIT_FAILED if summary.outcome is Outcome.FAILED else 0


def _done_before(cfg: DictConfig, ctx: RunContext) -> RunSummary | None:
    """The finished record of this very config in this job's folder, from an earlier run of the sweep."""
    done = record.read(ctx.run_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if done is None or done.outcome is not Outcome.FINISHED or done.config_hash != config_hash(resolved):
        return None
    log.info("already done (%s) with this config: skipped", done.status)
    print(f"nnexp: job {HydraConfig.get().job.num} ({' '.join(ctx.overrides)}): already done ({done.status}), "
          "skipped")
    return done


def _report(exc: Exception, ctx: RunContext) -> tuple[int, str]:
    """One line on stderr for a failure; the exit code and the message for the record."""
    if isinstance(exc, NnexpError):
        print(f"nnexp: error: {exc}", file=sys.stderr)
        return exc.exit_code, str(exc)
    # a bug or an environment failure: one line here, the traceback in train.log
    log.info("traceback:\n%s", traceback.format_exc())
    message = f"{type(exc).__name__}: {exc}"
    print(f"nnexp: error: {message} (traceback in {ctx.run_dir / 'train.log'})", file=sys.stderr)
    return EXIT_FAILED, message


def _failed(cfg: DictConfig, ctx: RunContext, message: str) -> RunSummary:
    seed = OmegaConf.select(cfg, "trainer.seed", default=None, throw_on_missing=False)
    return RunSummary(Status.FAILED, run_dir=str(ctx.run_dir), error=message, overrides=list(ctx.overrides),
                      choices=dict(ctx.choices), seed=seed if isinstance(seed, int) else None)


def _interrupted() -> SystemExit:
    """A second Ctrl-C: out at once, with one line."""
    print("nnexp: interrupted", file=sys.stderr)
    return SystemExit(EXIT_INTERRUPTED)


def _end(code: int, ctx: RunContext, summary: RunSummary | None = None) -> float | None:
    """A single run ends the process with its code; a sweep's job hands Hydra its value and the sweep goes on."""
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED) or (code and not ctx.multirun):
        raise SystemExit(code)
    return None if summary is None else summary.best_value


class SweepWatcher(Callback):
    """A Hydra callback (``hydra.callbacks`` in conf/train.yaml): in this process, where Hydra starts a
    multirun, continue an earlier run of the same sweep command and note the sweep folder, even when a
    launcher runs the jobs elsewhere."""

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
        sweep.remember(sweep_dir, task_overrides)
        _STATE["sweep_dir"] = sweep_dir


def _sweep_dir() -> Path | None:
    """The sweep folder of the multirun Hydra just ran, or None after a single run or an error."""
    path = _STATE.get("sweep_dir")
    return path if path is not None and path.is_dir() else None
