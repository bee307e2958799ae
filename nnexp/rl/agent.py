"""What every agent shares: its run-level keys, its networks and optimizer, its own random state, and the
interface nnexp/rl/loop.py calls.

An agent is built by nnexp/rl/runner.py from its config node (``agent=...``) with what only the run knows:
its networks (each built from ``conf/model/`` with the sizes :meth:`Agent.networks` asks for), the optimizer
over their parameters, the environment's spaces, the device and the seed. It draws every random number from
its own generators (exploration: numpy; sampling: a CPU torch generator), which its state holds, so a resumed
run draws the same numbers as one never stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nnexp.rl.envs import Spaces


@dataclass(frozen=True)
class Schedule:
    """The loop's part of an agent's keys: the environment, the budget, the evaluations, the stop."""

    env: str
    max_steps: int | None
    total_steps: int
    eval_every: int
    eval_episodes: int
    final_eval_episodes: int
    threshold: float | None
    stop_after: int
    restore_best: bool


class Agent:
    """Subclasses set ``name`` and implement act / observe / greedy (and may add scalars and state)."""

    name = "agent"
    metrics: tuple[str, ...] = ()  # the losses its updates return: columns of metrics.csv and curves
    scalar_names: tuple[str, ...] = ()  # what scalars() returns: columns and curves too

    def __init__(self, *, env: str, max_steps: int | None, total_steps: int, eval_every: int, eval_episodes: int,
                 final_eval_episodes: int, threshold: float | None, stop_after: int, restore_best: bool,
                 gamma: float, networks: dict[str, nn.Module], optimizer: torch.optim.Optimizer, spaces: Spaces,
                 device: torch.device, seed: int) -> None:
        self.schedule = Schedule(env, max_steps, total_steps, eval_every, eval_episodes, final_eval_episodes,
                                 threshold, stop_after, restore_best)
        self.gamma, self.nets, self.optimizer, self.spaces, self.device = gamma, networks, optimizer, spaces, device
        self.rng = np.random.default_rng(seed)  # exploration
        self.generator = torch.Generator().manual_seed(seed)  # minibatches (CPU: the same draws on any device)

    @classmethod
    def networks(cls, spaces: Spaces, keys: dict[str, Any]) -> dict[str, tuple[int, int | None]]:
        """The networks this agent learns with its ``keys`` (its config node): name -> (inputs, outputs), each
        built from ``conf/model/``, in this order; outputs None: the agent needs discrete actions."""
        raise NotImplementedError

    # -- what the loop calls ------------------------------------------------------------------------------------
    def act(self, obs: np.ndarray, step: int) -> Any:
        """The action to take in ``obs`` while learning, at environment step ``step`` (from 0)."""
        raise NotImplementedError

    def observe(self, obs: np.ndarray, action: Any, reward: float, next_obs: np.ndarray, terminated: bool,
                truncated: bool, step: int) -> dict[str, torch.Tensor] | None:
        """Take in one transition (``step``: how many came before it); the losses of an update it made, as
        tensors on the device (the loop sums them and reads them once per round), or None."""
        raise NotImplementedError

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """The evaluation policy (greedy or deterministic): observations (B, S) -> B actions."""
        raise NotImplementedError

    def scalars(self, step: int) -> dict[str, float]:
        """Values to log with each round (epsilon, ...), at environment step ``step``."""
        return {}

    # -- checkpoints ----------------------------------------------------------------------------------------
    def model_state(self) -> dict[str, Any]:
        """The weights of every network: what best.pt restores and the final evaluation plays."""
        return {name: net.state_dict() for name, net in self.nets.items()}

    def load_model_state(self, state: dict[str, Any]) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state[name])

    def state_dict(self) -> dict[str, Any]:
        """Everything else it learns from: random state, and what a subclass adds (buffers, target networks)."""
        return {"rng": self.rng.bit_generator.state, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])

    def train(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)

    def _tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
