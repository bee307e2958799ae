"""The replay buffer: the last ``capacity`` transitions, on the training device, sampled uniformly."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class ReplayBuffer:
    """(obs, action, reward, next_obs, terminated) in preallocated tensors, overwritten oldest first.

    ``terminated`` is the task's end only (the pole fell), never the time limit: a truncated episode's last
    state still has a future, so its target bootstraps from ``next_obs`` (Pardo et al. 2018)."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, discrete: bool, device: torch.device) -> None:
        self.capacity, self.device = capacity, device
        self.obs = torch.zeros(capacity, obs_dim, device=device)
        self.next_obs = torch.zeros(capacity, obs_dim, device=device)
        self.actions = (torch.zeros(capacity, dtype=torch.long, device=device) if discrete
                        else torch.zeros(capacity, action_dim, device=device))
        self.rewards = torch.zeros(capacity, device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.pos, self.size = 0, 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: Any, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        i = self.pos
        self.obs[i] = torch.as_tensor(obs, dtype=torch.float32)
        self.next_obs[i] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.actions[i] = torch.as_tensor(action, dtype=self.actions.dtype)
        self.rewards[i] = float(reward)
        self.terminated[i] = float(terminated)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """``batch`` transitions drawn with replacement from ``generator`` (a CPU generator: the same draws on
        every device)."""
        idx = torch.randint(self.size, (batch,), generator=generator).to(self.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminated[idx]

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {"obs": self.obs[:n], "next_obs": self.next_obs[:n], "actions": self.actions[:n],
                "rewards": self.rewards[:n], "terminated": self.terminated[:n], "pos": self.pos, "size": n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = int(state["size"])
        for key in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, key)[:n] = state[key].to(self.device)
        self.pos, self.size = int(state["pos"]), n
