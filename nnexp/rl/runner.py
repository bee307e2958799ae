"""AgentRun: one run of an agent (``nnexp train agent=...``), what nnexp/run.py's Run is for a dataset.

The same recipe and the same contract: :meth:`AgentRun.setup` builds the environment, the networks (from
``conf/model/``), the optimizer (``conf/optimizer/``) and the agent, and continues from the claimed checkpoint;
it writes nothing. :meth:`AgentRun.train` learns and finishes; from its first line every outcome ends in
``summary.json``, with the statuses, exit codes and folder rules of every run (nnexp/record.py,
nnexp/lifecycle.py). ``best`` and ``final`` hold the rounds' metrics; ``eval`` the final evaluation
(``final_eval_episodes`` episodes of the policy the run ends with, from starts no evaluation during training
used); ``rl`` the environment steps and how long it took to reach the threshold.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from torch import nn

from nnexp import lifecycle, resume, rundir
from nnexp.build import (
    check_signature_keys,
    component,
    configure_torch,
    one_line,
    param_groups,
    select_device,
)
from nnexp.checks import check_run
from nnexp.context import RunContext
from nnexp.errors import ConfigError, OptionError
from nnexp.fingerprint import config_hash
from nnexp.loop import FitResult
from nnexp.models import count_parameters
from nnexp.record import RunSummary, Status
from nnexp.rl import envs
from nnexp.rl.agent import Agent
from nnexp.rl.loop import LearnState, evaluate, learn
from nnexp.rl.recorder import AgentRecorder
from nnexp.rl.words import in_words
from nnexp.signals import StopSignals, signal_of
from nnexp.validate import INSTANTIATE_KEYS

log = logging.getLogger("nnexp")


@dataclass
class AgentParts:
    """What an agent's run learns with, built and on its device."""

    device: torch.device
    agent: Agent
    state: LearnState
    threshold: float | None
    config: dict[str, Any]
    threads: str
    name: str  # agent=<name>

    @property
    def num_params(self) -> int:
        return sum(count_parameters(net) for net in self.agent.nets.values())


def build_agent(cfg: DictConfig, ctx: RunContext) -> AgentParts:
    """The agent ``cfg.agent`` describes, its networks and its environment. Raises ConfigError (one line naming
    the key) for anything that does not fit; writes nothing."""
    tc, node = cfg.trainer, cfg.agent
    name = ctx.choices.get("agent") or str(node.get("_target_"))
    for key in ("strategy", "compile"):
        if tc[key] not in ("auto", "none", False, None):
            raise ConfigError(f"trainer.{key}={tc[key]}: an agent's run steps one environment in one process; "
                              f"trainer.{key} is for supervised training")
    check_signature_keys(cfg, ctx)
    device = select_device(tc.device)
    threads = tc.threads or 1  # an agent's networks are small and it acts one step at a time: one thread
    configure_torch(threads, tc.seed, tc.deterministic, ctx.parallel_jobs)
    with one_line("agent"):
        agent_class = get_object(str(node._target_))
    env = envs.make(name, node.env, node.max_steps)
    spaces = envs.spaces(env)
    # built by hand, not by instantiate: its _convert_ would turn the spaces (a dataclass) into a dict
    keys = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in INSTANTIATE_KEYS}
    networks = {}
    for net, (inputs, outputs) in agent_class.networks(spaces, keys).items():
        if outputs is None:
            raise ConfigError(f"agent={name}: {node.env} has a continuous action; this agent needs discrete actions")
        networks[net] = component("model", cfg.model, input_shape=(inputs,), num_outputs=outputs).to(device)
    with one_line("optimizer"):
        factory = component("optimizer", cfg.optimizer)  # a partial (_partial_: true): the parameters come next
        optimizer = factory(param_groups(nn.ModuleDict(networks), factory.keywords.get("weight_decay") or 0.0))
    try:
        agent = agent_class(**keys, networks=networks, optimizer=optimizer, spaces=spaces, device=device,
                            seed=tc.seed)
    except OptionError as exc:
        raise ConfigError(exc.in_group("agent")) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"agent={name}: {exc}") from None
    threshold = node.threshold if node.threshold is not None else envs.threshold(env)
    if node.stop_after and threshold is None:
        raise ConfigError(f"agent.stop_after={node.stop_after}: {node.env} names no reward threshold; set "
                          "agent.threshold, or agent.stop_after=0")
    config = OmegaConf.to_container(cfg, resolve=True)
    why = f"{threads} torch thread{'s' if threads > 1 else ''} " + (
        f"(trainer.threads={threads})" if tc.threads else "(auto: an agent's small networks, one step at a time)")
    return AgentParts(device, agent, LearnState(env=env, seed=envs.episode_seed(tc.seed, 0)), threshold, config,
                      why, name)


class AgentRun:
    def __init__(self, cfg: DictConfig, ctx: RunContext, claim: lifecycle.Claim | None = None) -> None:
        self.cfg, self.ctx, self.claim = cfg, ctx, claim
        self.parts: AgentParts | None = None
        self.resumed: dict[str, Any] | None = None
        self.warnings: list[str] = []

    def setup(self) -> AgentRun:
        """Build everything; continue from the claimed checkpoint, if any. Writes nothing."""
        self.parts = build_agent(self.cfg, self.ctx)
        if self.claim is not None and self.claim.resume_from is not None:
            self._resume(self.claim.resume_from)
        rundir.check_writable(self.ctx.run_dir)
        return self

    def _resume(self, where: Path) -> None:
        p = self.parts
        ckpt, path = resume.load(where)
        if "agent" not in ckpt:
            raise ConfigError(f"trainer.resume: {path} is a supervised run's checkpoint, not an agent's")
        changed = resume.differences(ckpt["config"], p.config) if isinstance(ckpt.get("config"), dict) else {}
        if changed and self.cfg.trainer.resume_config != "new":
            resume.refuse_changes(changed, path)
        try:
            p.agent.load_model_state(ckpt["model"])
            p.agent.optimizer.load_state_dict(ckpt["optimizer"])
            p.agent.load_state_dict(ckpt["agent"])
            p.state.load_state_dict(ckpt["learn"], p.device)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"trainer.resume: {path} does not fit this agent ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160]})") from None
        if changed:
            for group in p.agent.optimizer.param_groups:  # trainer.resume_config=new: the new rate applies
                group["lr"] = self.cfg.optimizer.lr
        self.resumed = {"checkpoint": str(path), "epoch": p.state.rounds, "step": p.state.round.steps,
                        "env_steps": p.state.env_steps}
        if changed:
            self.resumed["changed"] = changed

    def train(self) -> RunSummary:
        """Learn, then say how it went; the record is written whatever happens."""
        p, ctx = self.parts, self.ctx
        with StopSignals() as signals:
            recorder = AgentRecorder(p, ctx, self.cfg.trainer, self.resumed)
            started = time.perf_counter()
            summary = self.identity()
            try:
                with recorder:
                    result = learn(p.agent, p.state, p.threshold, on_episode=recorder.episode,
                                   on_round_end=recorder.round_end, stop_requested=signals,
                                   lr=lambda: p.agent.optimizer.param_groups[0]["lr"])
                    recorder.after_learn(result)
                    final = None
                    plan = p.agent.schedule
                    if result.status.trained and plan.final_eval_episodes:
                        final = evaluate(p.agent, plan.final_eval_episodes, p.state.seed, final=True)
                summary = self.summarize(result, final, time.perf_counter() - started)
                if result.status is Status.INTERRUPTED:
                    summary.signal = signals.name
                recorder.report(summary, in_words(summary))
            except BaseException as exc:
                interrupted = isinstance(exc, KeyboardInterrupt)
                summary = replace(summary, status=Status.INTERRUPTED if interrupted else Status.FAILED,
                                  error=f"{type(exc).__name__}: {exc}", signal=signal_of(exc) if interrupted else None,
                                  wall_seconds=round(time.perf_counter() - started, 3))
                raise
            finally:
                recorder.close(summary)
        return summary

    def identity(self) -> RunSummary:
        p, ctx = self.parts, self.ctx
        return RunSummary(Status.FAILED, run_dir=str(ctx.run_dir), num_params=p.num_params, device=str(p.device),
                          seed=self.cfg.trainer.seed, loss=None, choices=dict(ctx.choices),
                          overrides=list(ctx.overrides), resumed_from=self.resumed, config_hash=config_hash(p.config),
                          monitor="eval/return", mode="max", expect=list(self.cfg.expect),
                          warnings=list(self.warnings))

    def summarize(self, result: FitResult, final: dict[str, float] | None, wall: float) -> RunSummary:
        p, s = self.parts, self.parts.state
        best_round = s.best_round or None
        rows = {row["epoch"]: row for row in result.history}
        kept = lambda row: {k: v for k, v in row.items() if k != "epoch"}  # noqa: E731
        solved = s.solved or {}
        summary = replace(
            self.identity(), status=result.status, message=result.message, epochs_run=result.epochs_run,
            best_epoch=best_round, stopped_epoch=result.epochs_run if result.status is Status.EARLY_STOPPED else None,
            best_value=s.best_value if best_round else None, restored_best=result.restored_best,
            final=kept(rows.get(result.epochs_run, {})), best=kept(rows.get(best_round, {})),
            gap={"best": None, "final": None}, eval=final, wall_seconds=round(wall, 3),
            seconds_per_epoch=round(float(np.mean([h["seconds"] for h in result.history])), 4)
            if result.history else None,
            rl={"env": p.agent.schedule.env, "algorithm": p.name, "env_steps": s.env_steps, "episodes": s.episodes,
                "threshold": p.threshold, "steps_to_threshold": solved.get("env_steps"),
                "episodes_to_threshold": solved.get("episodes"), "seconds_to_threshold": solved.get("seconds")},
        )
        if summary.expect:
            summary.checks = check_run(summary.expect, summary.to_dict())
        return summary

