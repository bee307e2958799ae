"""What an agent's run writes while it learns (nnexp/recorder.py's Recorder, for rounds instead of epochs).

Each finished episode: ``train/episodic_return`` and ``train/episode_length`` at its environment step. Each
round: a row of metrics.csv and a point of every curve at the round's last environment step (the losses,
``eval/return`` and its std, epsilon, lr, ``steps_per_second``), ``best/eval/return``, the checkpoint. At the
end: the summary in TensorBoard and on the terminal, and summary.json.

A checkpoint holds everything to continue exactly: the networks, the optimizer, the agent's buffer, target
network and random generators, the environment mid-episode (pickled into a tensor), the round in progress and
the global random states. A stop asked for mid-round writes that position; a kill -9 loses the steps since the
last round's checkpoint, which a resume replays the same way.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import replace
from typing import Any

from nnexp import __version__, openmp, record
from nnexp.checkpoint import BackgroundWriter, rng_state, save_checkpoint, snapshot
from nnexp.console import Reporter, _fmt
from nnexp.context import RunContext
from nnexp.errors import RunFolderGone, WriteError
from nnexp.loop import FitResult
from nnexp.output import RunFolder, ThreadErrors, guard_std_streams
from nnexp.record import RunSummary, Status
from nnexp.recorder import hparams
from nnexp.tracking import Tracker

log = logging.getLogger("nnexp")

ROUND_COLUMNS = ("epoch", "env_steps", "episodes", "train/episodic_return", "train/episode_length")
EVAL_COLUMNS = ("eval/return", "eval/return_std", "eval/episode_length")
TAIL_COLUMNS = ("lr", "seconds", "steps_per_second")
HPARAM_CURVES = ("eval/return", "train/episodic_return")


def columns(agent: Any) -> tuple[str, ...]:
    """metrics.csv's columns for this agent: the round, its losses, the evaluation, its scalars, the speed."""
    return ROUND_COLUMNS + tuple(agent.metrics) + EVAL_COLUMNS + tuple(agent.scalar_names) + TAIL_COLUMNS


def curves(agent: Any) -> tuple[str, ...]:
    """The curves drawn once per round, at its last environment step; the training episodes' return and length
    are drawn per episode instead (their round means are metrics.csv's)."""
    return ("episodes", *agent.metrics, *EVAL_COLUMNS, *agent.scalar_names, *TAIL_COLUMNS[:1], *TAIL_COLUMNS[2:])


class AgentReporter(Reporter):
    unit = "round"

    def line(self, metrics: dict[str, Any]) -> str:
        parts = [f"steps {metrics['env_steps']:,}", f"eval/return {_fmt(metrics['eval/return'], 1)}",
                 f"train/episodic_return {_fmt(metrics.get('train/episodic_return'), 1)}"]
        if metrics.get("train/loss") is not None:
            parts.append(f"train/loss {_fmt(metrics['train/loss'])}")
        return "  ".join(parts)

    def summary(self, summary: dict[str, Any], words: list[str], logdir: str | None) -> None:
        from rich.table import Table

        best, final = summary.get("best") or {}, summary.get("final") or {}
        table = Table(title=f"nnexp run: {summary['status']}", title_justify="left")
        table.add_column("", no_wrap=True)
        table.add_column(f"best (round {summary.get('best_epoch') or '-'})", justify="right", no_wrap=True)
        table.add_column(f"final (round {summary.get('epochs_run') or '-'})", justify="right", no_wrap=True)
        for tag in ("env_steps", "eval/return", "eval/return_std", "train/episodic_return", "train/loss"):
            if best.get(tag) is not None or final.get(tag) is not None:
                table.add_row(tag, _fmt(best.get(tag), 1), _fmt(final.get(tag), 1))
        self.console.print(table)
        for line in words:
            if line.startswith("To continue it"):
                print(line, flush=True)
            else:
                self.console.print(line, soft_wrap=False)
        if logdir is not None:
            print(f"See the curves:  tensorboard --logdir {logdir}", flush=True)


class AgentRecorder:
    def __init__(self, parts: Any, ctx: RunContext, trainer: Any, resumed: dict[str, Any] | None) -> None:
        self.parts, self.ctx, self.trainer, self.resumed = parts, ctx, trainer, resumed
        self.run_dir, self.ckpt_dir = ctx.run_dir, ctx.run_dir / "checkpoints"
        self.tracker: Tracker | None = None
        self.folder: RunFolder | None = None
        self.threads = ThreadErrors()
        self.streams = contextlib.ExitStack()
        self.saver = BackgroundWriter()
        self.checkpoints, self.tensorboard = trainer.checkpoints, trainer.tensorboard
        plan = parts.agent.schedule
        rounds = math.ceil(plan.total_steps / plan.eval_every)
        progress = "none" if trainer.progress == "auto" and ctx.parallel_jobs > 1 else trainer.progress
        title = (f"nnexp: agent={parts.name} on {plan.env}, {plan.total_steps:,} environment steps, "
                 f"{parts.num_params:,} parameters, {parts.device}")
        if resumed:
            title += f", resumed at step {resumed['env_steps']:,}"
        self.reporter = AgentReporter(progress, epochs=rounds, title=title, run_dir=str(self.run_dir))
        log.info("run dir %s | device %s | %s, OpenMP wait %s | %d parameters | overrides %s", self.run_dir,
                 parts.device, parts.threads, openmp.choice, parts.num_params, list(ctx.overrides))

    def __enter__(self) -> AgentRecorder:
        self.threads.install()
        self.streams.enter_context(guard_std_streams())
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(self.run_dir, exc) from exc
        self.folder = RunFolder(self.run_dir)
        state = self.parts.state
        layout = {"return": {"return": ["Multiline", ["train/episodic_return", "eval/return", "best/eval/return"]]},
                  "losses": {"loss": ["Multiline", list(self.parts.agent.metrics)]}}
        agent = self.parts.agent
        self.tracker = Tracker(self.run_dir, classification=False, resume_epoch=state.rounds if self.resumed else None,
                               tensorboard=self.tensorboard, columns=columns(agent), curves=curves(agent),
                               layout=layout, purge_step=state.env_steps if self.resumed else None)
        for line in self.tracker.warnings:
            log.warning(line)
        self.reporter.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.reporter.__exit__(*exc)

    def episode(self, step: int, episode_return: float, length: int) -> None:
        self.tracker.log_scalars("train", {"episodic_return": episode_return, "episode_length": float(length)}, step)

    def round_end(self, number: int, metrics: dict[str, Any], improved: bool) -> None:
        self.folder.check(f" (noticed at the end of round {number})")
        error = self.threads.first
        if error is not None:
            raise error if isinstance(error, Exception) else RuntimeError(f"a thread failed: {error!r}")
        step = metrics["env_steps"]
        self.tracker.log_epoch(number, metrics, step=step)
        state = self.parts.state
        if math.isfinite(state.best_value):
            self.tracker.log_scalars("best", {"eval/return": state.best_value}, step)
        if self.checkpoints and not metrics.get("diverged"):
            self.tracker.flush()  # what a checkpoint holds is on disk first: a kill after it loses no curve
            names = ["best.pt", "last.pt"] if improved else ["last.pt"]
            self.saver.submit(snapshot(self.checkpoint()), [self.ckpt_dir / n for n in names])
        self.reporter.epoch(number, metrics, improved)
        log.info("round %d %s%s", number, dict(metrics), " (best)" if improved else "")

    def checkpoint(self) -> dict[str, Any]:
        p = self.parts
        return {"model": p.agent.model_state(), "optimizer": p.agent.optimizer.state_dict(),
                "agent": p.agent.state_dict(), "learn": p.state.state_dict(), "epoch": p.state.rounds,
                "rng": rng_state(), "config": p.config, "nnexp_version": __version__}

    def after_learn(self, result: FitResult) -> None:
        """A stop mid-round writes its position (the round's steps so far) as last.pt."""
        self.saver.wait()
        if result.status is Status.INTERRUPTED and self.checkpoints and self.parts.state.round.steps:
            self.tracker.flush()
            save_checkpoint(self.ckpt_dir / "last.pt", self.checkpoint())

    def report(self, summary: RunSummary, words: list[str]) -> None:
        self.tracker.log_text("summary", "\n\n".join(words))
        values = hparams(self.ctx, summary.seed)
        self.tracker.log_hparams(values, ("best/eval/return", *HPARAM_CURVES))
        self.reporter.summary(summary.to_dict(), words, str(self.ctx.logdir) if self.tensorboard else None)
        for line in words:
            log.info(line)

    def close(self, summary: RunSummary) -> None:
        """The checkpoint in flight finished, the curves flushed, summary.json written (nnexp/recorder.py's rules:
        a file that cannot be written fails the run; a removed run folder gets no summary)."""
        problems: list[Exception] = []
        for step in (self.saver.wait, self.tracker.close if self.tracker is not None else None):
            try:
                if step is not None:
                    step()
            except Exception as exc:  # noqa: BLE001 - every file gets its chance to close
                problems.append(exc)
        self.threads.uninstall()
        self.streams.close()
        if self.tracker is not None and self.tracker.warnings:
            summary = replace(summary, warnings=[*summary.warnings, *self.tracker.warnings])
        if self.folder is not None and self.folder.gone():
            if not (summary.error or "").startswith(RunFolderGone.__name__):
                raise RunFolderGone(self.run_dir)
            return
        error = problems[0] if problems and summary.status is not Status.FAILED else None
        if error is not None:
            summary = replace(summary, status=Status.FAILED, error=f"{type(error).__name__}: {error}")
        try:
            record.write(self.run_dir, summary)
        except OSError as exc:
            raise WriteError(self.run_dir / record.FILE, exc) from exc
        if error is not None:
            raise error



