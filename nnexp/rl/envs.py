"""The environment an agent learns in: Gymnasium's classic control, nothing downloaded.

Starts are seeded and never shared between learning and evaluation: the learning episodes continue from one
``reset(seed=...)`` (the environment's own generator, saved in checkpoints), evaluation episode ``j`` of a run
with ``trainer.seed`` s starts from ``episode_seed(s, j, evaluation=True)`` (the same starts at every
evaluation, like a fixed validation set), and the final evaluation from starts after those.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nnexp.data.rl_envs import ENVS, episode_seed, gymnasium, make_env

FINAL_OFFSET = 10_000  # the final evaluation's starts: after every start an evaluation during training uses


@dataclass(frozen=True)
class Spaces:
    """What the networks see and do: observation size; ``actions`` the number of discrete actions (None: a
    continuous action of ``action_dim`` values in [low, high])."""

    obs_dim: int
    actions: int | None
    action_dim: int
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @property
    def discrete(self) -> bool:
        return self.actions is not None


def make(agent: str, env_id: str, max_steps: int | None) -> Any:
    return make_env(gymnasium(f"agent={agent}"), env_id, max_steps)


def spaces(env: Any) -> Spaces:
    obs, act = env.observation_space, env.action_space
    if hasattr(act, "n"):
        return Spaces(int(np.prod(obs.shape)), int(act.n), 1)
    return Spaces(int(np.prod(obs.shape)), None, int(np.prod(act.shape)), act.low.astype(np.float32),
                  act.high.astype(np.float32))


def threshold(env: Any) -> float | None:
    """The return at which Gymnasium calls the task solved (CartPole-v1: 475), if it names one."""
    value = getattr(env.spec, "reward_threshold", None)
    return float(value) if value is not None else None


def env_ids() -> tuple[str, ...]:
    return tuple(ENVS)


def evaluation_seeds(seed: int, episodes: int, final: bool = False) -> list[int]:
    first = FINAL_OFFSET if final else 0
    return [episode_seed(seed, first + j, evaluation=True) for j in range(episodes)]


def play(agent: str, env_id: str, max_steps: int | None, seeds: Sequence[int],
         act: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Undiscounted return and length of one episode per seed, the environments stepped in lockstep so that
    ``act`` answers a batch: observations (B, S) -> B actions. The policy is whatever ``act`` is (the agents
    pass their greedy or deterministic one)."""
    envs = [make(agent, env_id, max_steps) for _ in seeds]
    obs = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds, strict=True)]
    returns, lengths = np.zeros(len(envs)), np.zeros(len(envs), dtype=np.int64)
    running = list(range(len(envs)))
    while running:
        actions = act(np.stack([obs[i] for i in running]).astype(np.float32))
        still = []
        for i, action in zip(running, actions, strict=True):
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += float(reward)
            lengths[i] += 1
            if not (terminated or truncated):
                still.append(i)
        running = still
    for env in envs:
        env.close()
    return returns, lengths


def env_to_tensor(env: Any) -> torch.Tensor:
    """The learning environment as bytes in a uint8 tensor (its physical state, time limit and random
    generator): a checkpoint holds it and loads with ``weights_only``, so a resume continues the same episode."""
    return torch.frombuffer(bytearray(pickle.dumps(env)), dtype=torch.uint8)


def env_from_tensor(data: torch.Tensor) -> Any:
    """The environment :func:`env_to_tensor` stored (nnexp's own checkpoint: the run's own files)."""
    return pickle.loads(data.numpy().tobytes())  # noqa: S301 - written by this run, not a downloaded file
