"""learn(): an agent in its environment, step by step, in rounds of ``eval_every`` environment steps.

Each step the agent acts, the environment answers, the agent takes in the transition (and updates itself when
its rule says so). A finished episode is reported at once (``train/episodic_return`` on the environment-step
axis). Each round ends with an evaluation: ``eval_episodes`` episodes with the agent's greedy policy, from the
same starts every time; the round's row holds the training episodes that ended in it, the mean of its losses,
the evaluation, the agent's own scalars (epsilon) and the speed. What ``epochs`` are to supervised training,
rounds are here: the early stopping, the best round and the checkpoints go by them.

The run stops early when ``eval/return`` has been at or above the threshold for ``stop_after`` evaluations in a
row. With ``restore_best`` it ends with the weights of the round that evaluated best (the first of equals).
A stop asked for between two steps keeps the position within the round, so a resume continues the same
episode, the same buffer and the same random numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nnexp.checkpoint import snapshot
from nnexp.loop import FitResult
from nnexp.record import Status
from nnexp.rl.agent import Agent
from nnexp.rl.envs import env_from_tensor, env_to_tensor, evaluation_seeds, play

RoundHook = Callable[[int, dict[str, Any], bool], None]
EpisodeHook = Callable[[int, float, int], None]


@dataclass
class Round:
    """The running sums of the round in progress."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    updates: int = 0
    steps: int = 0
    seconds: float = 0.0

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            self.losses[name] = self.losses[name] + value if name in self.losses else value
        self.updates += 1

    def means(self) -> dict[str, float]:
        if not self.losses:
            return {}
        names = list(self.losses)
        values = torch.stack([self.losses[n].float() for n in names]).div(self.updates).tolist()  # one read
        return dict(zip(names, values, strict=True))

    def state_dict(self) -> dict[str, Any]:
        return {"returns": list(self.returns), "lengths": list(self.lengths), "losses": snapshot(self.losses),
                "updates": self.updates, "steps": self.steps, "seconds": self.seconds}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> Round:
        return cls(list(state["returns"]), list(state["lengths"]),
                   {k: v.to(device) for k, v in state["losses"].items()}, int(state["updates"]),
                   int(state["steps"]), float(state["seconds"]))


@dataclass
class LearnState:
    """Where learning stands: the environment mid-episode, the counts, the round in progress, the best round
    and when the threshold was first reached."""

    env: Any
    seed: int
    env_steps: int = 0
    episodes: int = 0
    rounds: int = 0
    obs: np.ndarray | None = None  # None: the first episode has not begun
    episode_return: float = 0.0
    episode_length: int = 0
    round: Round = field(default_factory=Round)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_value: float = -math.inf
    best_round: int = 0
    best_model: dict[str, Any] | None = None
    streak: int = 0  # evaluations in a row at or above the threshold
    solved: dict[str, float] | None = None  # env_steps, episodes, seconds when eval/return first reached it
    seconds: float = 0.0  # learning time before this round (the rounds' seconds)

    def state_dict(self) -> dict[str, Any]:
        """In tensors and plain values (a checkpoint loads with ``weights_only``), the environment included."""
        return {"env": env_to_tensor(self.env), "seed": self.seed, "env_steps": self.env_steps,
                "episodes": self.episodes, "rounds": self.rounds,
                "obs": None if self.obs is None else torch.as_tensor(np.asarray(self.obs, dtype=np.float32)),
                "episode_return": self.episode_return, "episode_length": self.episode_length,
                "round": self.round.state_dict(), "history": list(self.history), "best_value": self.best_value,
                "best_round": self.best_round, "best_model": self.best_model, "streak": self.streak,
                "solved": self.solved, "seconds": self.seconds}

    def load_state_dict(self, saved: dict[str, Any], device: torch.device) -> None:
        self.env.close()
        self.env = env_from_tensor(saved["env"])
        for key in ("seed", "env_steps", "episodes", "rounds", "episode_return", "episode_length", "best_value",
                    "best_round", "best_model", "streak", "solved", "seconds"):
            setattr(self, key, saved[key])
        self.obs = None if saved["obs"] is None else saved["obs"].numpy()
        self.round = Round.from_state(saved["round"], device)
        self.history[:] = saved["history"]


def learn(agent: Agent, state: LearnState, threshold: float | None, on_episode: EpisodeHook = lambda *a: None,
          on_round_end: RoundHook = lambda *a: None, stop_requested: Callable[[], bool] = lambda: False,
          lr: Callable[[], float] = lambda: 0.0) -> FitResult:
    """Learn from ``state`` until ``total_steps`` environment steps, the early stop, or a stop request."""
    plan = agent.schedule
    rounds = math.ceil(plan.total_steps / plan.eval_every)
    result = FitResult(status=Status.COMPLETED, epochs_run=state.rounds, history=state.history)
    env = state.env
    if state.obs is None:
        state.obs = env.reset(seed=state.seed)[0]
    while state.rounds < rounds:
        number = state.rounds + 1
        end = min(number * plan.eval_every, plan.total_steps)
        started = time.perf_counter()
        agent.train(True)
        while state.env_steps < end:
            if stop_requested():
                state.round.seconds += time.perf_counter() - started
                result.status = Status.INTERRUPTED
                result.message = f"interrupted during round {number} at environment step {state.env_steps:,}"
                return result
            _step(agent, state, on_episode)
        metrics = _finish_round(agent, state, number, started, lr())
        result.history.append({"epoch": number, **metrics})
        result.epochs_run = state.rounds = number
        if not math.isfinite(metrics.get("train/loss") or 0.0):
            result.status = Status.DIVERGED
            result.message = f"train/loss became {metrics['train/loss']} in round {number} (step {state.env_steps:,})"
            on_round_end(number, {**metrics, "diverged": result.message}, False)
            break
        improved = _note_best(agent, state, number, metrics, threshold)
        on_round_end(number, metrics, improved)
        if plan.stop_after and state.streak >= plan.stop_after:
            result.status = Status.EARLY_STOPPED
            result.message = (f"eval/return {metrics['eval/return']:.4g} >= {threshold:g} (the threshold) in "
                              f"{state.streak} evaluation{'s' if state.streak > 1 else ''} in a row, at "
                              f"{state.env_steps:,} environment steps")
            break
        if stop_requested():
            result.status = Status.INTERRUPTED
            result.message = f"interrupted after round {number}"
            break
    if plan.restore_best and state.best_model is not None and result.status.trained:
        agent.load_model_state(state.best_model)
        result.restored_best = state.best_round != result.epochs_run
    return result


def _step(agent: Agent, state: LearnState, on_episode: EpisodeHook) -> None:
    obs = state.obs
    action = agent.act(obs, state.env_steps)
    next_obs, reward, terminated, truncated, _ = state.env.step(action)
    losses = agent.observe(obs, action, float(reward), next_obs, bool(terminated), bool(truncated), state.env_steps)
    if losses is not None:
        state.round.add(losses)
    state.env_steps += 1
    state.round.steps += 1
    state.episode_return += float(reward)
    state.episode_length += 1
    if terminated or truncated:
        state.episodes += 1
        state.round.returns.append(state.episode_return)
        state.round.lengths.append(state.episode_length)
        on_episode(state.env_steps, state.episode_return, state.episode_length)
        state.episode_return, state.episode_length = 0.0, 0
        next_obs = state.env.reset()[0]
    state.obs = next_obs


def evaluate(agent: Agent, episodes: int, seed: int, final: bool = False) -> dict[str, float]:
    """``episodes`` episodes of the greedy policy from the evaluation starts: return mean and std, length."""
    plan = agent.schedule
    agent.train(False)
    returns, lengths = play(agent.name, plan.env, plan.max_steps, evaluation_seeds(seed, episodes, final),
                            agent.greedy)
    agent.train(True)
    return {"return": float(returns.mean()), "return_std": float(returns.std()),
            "episode_length": float(lengths.mean()), "episodes": float(episodes)}


def _finish_round(agent: Agent, state: LearnState, number: int, started: float, lr: float) -> dict[str, Any]:
    r = state.round
    learned = time.perf_counter() - started + r.seconds  # this round's steps and updates, over every attempt
    scores = evaluate(agent, agent.schedule.eval_episodes, state.seed)
    seconds = time.perf_counter() - started + r.seconds
    metrics: dict[str, Any] = {
        "env_steps": state.env_steps, "episodes": state.episodes,
        "train/episodic_return": float(np.mean(r.returns)) if r.returns else None,
        "train/episode_length": float(np.mean(r.lengths)) if r.lengths else None,
        **{name: None for name in agent.metrics}, **r.means(),
        "eval/return": scores["return"], "eval/return_std": scores["return_std"],
        "eval/episode_length": scores["episode_length"], **agent.scalars(state.env_steps), "lr": lr,
        "seconds": seconds, "steps_per_second": r.steps / learned if learned > 0 else None}
    state.seconds += seconds
    state.round = Round()
    return metrics


def _note_best(agent: Agent, state: LearnState, number: int, metrics: dict[str, Any],
               threshold: float | None) -> bool:
    value = metrics["eval/return"]
    reached = threshold is not None and value >= threshold
    state.streak = state.streak + 1 if reached else 0
    if reached and state.solved is None:
        state.solved = {"env_steps": state.env_steps, "episodes": state.episodes, "seconds": round(state.seconds, 3)}
    if value > state.best_value:
        state.best_value, state.best_round = value, number
        if agent.schedule.restore_best:
            state.best_model = snapshot(agent.model_state())
        return True
    return False
