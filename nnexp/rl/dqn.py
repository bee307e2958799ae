"""f_V by DQN (Mnih et al. 2015): a Q-network learned from reward.

Each environment step, the transition goes into the replay buffer; every ``train_every`` steps after
``learning_starts``, ``gradient_steps`` minibatches of it move Q(s, a) toward the one-step target

    y = r + gamma * (1 - terminated) * max_a' Q_target(s', a')

with the Huber loss (smooth L1), the target network a copy of the Q-network every ``target_update`` steps
(``tau`` < 1: moved that fraction of the way instead, Polyak averaging). With ``double`` the Q-network picks
a' and the target network values it, Q_target(s', argmax_a' Q(s', a')) (van Hasselt et al. 2016), which
removes the max's upward bias. Actions are epsilon-greedy, epsilon falling linearly from ``epsilon_start`` to
``epsilon_end`` over the first ``epsilon_fraction`` of ``total_steps``; evaluation is greedy.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nnexp.options import agents as options
from nnexp.rl.agent import Agent
from nnexp.rl.buffer import ReplayBuffer
from nnexp.rl.envs import Spaces


class DQN(Agent):
    name = "dqn"
    metrics = ("train/loss", "train/q")
    scalar_names = ("epsilon",)

    def __init__(self, *, buffer_size: int, learning_starts: int, batch_size: int, train_every: int,
                 gradient_steps: int, target_update: int, tau: float, epsilon_start: float, epsilon_end: float,
                 epsilon_fraction: float, double: bool, max_grad_norm: float | None, **common: Any) -> None:
        keys = {k: common[k] for k in options.COMMON}
        options.dqn(**keys, buffer_size=buffer_size, learning_starts=learning_starts, batch_size=batch_size,
                    train_every=train_every, gradient_steps=gradient_steps, target_update=target_update, tau=tau,
                    epsilon_start=epsilon_start, epsilon_end=epsilon_end, epsilon_fraction=epsilon_fraction,
                    double=double, max_grad_norm=max_grad_norm)
        super().__init__(**common)
        self.q = self.nets["q"]
        self.target = copy.deepcopy(self.q).requires_grad_(False)
        self.learning_starts, self.batch_size, self.train_every = learning_starts, batch_size, train_every
        self.gradient_steps, self.target_update, self.tau = gradient_steps, target_update, tau
        self.epsilon_start, self.epsilon_end, self.double = epsilon_start, epsilon_end, double
        self.decay_steps = max(1, round(epsilon_fraction * self.schedule.total_steps))
        self.max_grad_norm = max_grad_norm
        self.buffer = ReplayBuffer(buffer_size, self.spaces.obs_dim, 1, True, self.device)

    @classmethod
    def networks(cls, spaces: Spaces, keys: dict[str, Any]) -> dict[str, tuple[int, int | None]]:
        return {"q": (spaces.obs_dim, spaces.actions)}

    def epsilon(self, step: int) -> float:
        done = min(1.0, step / self.decay_steps)
        return self.epsilon_start + done * (self.epsilon_end - self.epsilon_start)

    def act(self, obs: np.ndarray, step: int) -> int:
        if self.rng.random() < self.epsilon(step):
            return int(self.rng.integers(self.spaces.actions))
        with torch.no_grad():
            return int(self.q(self._tensor(obs)[None]).argmax(1))

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.q(self._tensor(obs)).argmax(1).cpu().numpy()

    def observe(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminated: bool,
                truncated: bool, step: int) -> dict[str, torch.Tensor] | None:
        self.buffer.add(obs, action, reward, next_obs, terminated)
        done = step + 1  # transitions seen, this one included
        losses = None
        if done > self.learning_starts and done % self.train_every == 0:
            for _ in range(self.gradient_steps):
                losses = self._update()
        if done % self.target_update == 0:
            self._sync_target()
        return losses

    def _update(self) -> dict[str, torch.Tensor]:
        obs, actions, rewards, next_obs, terminated = self.buffer.sample(self.batch_size, self.generator)
        with torch.no_grad():
            if self.double:
                best = self.q(next_obs).argmax(1, keepdim=True)
                next_q = self.target(next_obs).gather(1, best).squeeze(1)
            else:
                next_q = self.target(next_obs).max(1).values
            target = rewards + self.gamma * (1.0 - terminated) * next_q
        q = self.q(obs).gather(1, actions[:, None]).squeeze(1)
        loss = F.smooth_l1_loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.q.parameters(), self.max_grad_norm)
        self.optimizer.step()
        return {"train/loss": loss.detach(), "train/q": q.detach().mean()}

    def _sync_target(self) -> None:
        if self.tau >= 1.0:
            self.target.load_state_dict(self.q.state_dict())
            return
        with torch.no_grad():
            for t, p in zip(self.target.parameters(), self.q.parameters(), strict=True):
                t.lerp_(p, self.tau)

    def scalars(self, step: int) -> dict[str, float]:
        return {"epsilon": self.epsilon(step)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "target": self.target.state_dict(), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.target.load_state_dict(state["target"])
        self.buffer.load_state_dict(state["buffer"])
