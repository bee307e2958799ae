"""The reward and the end of an episode as functions of (state, action, next state), batched, for planning
with a learned model (nnexp/rl/mpc.py): Gymnasium's own definitions for the classic-control tasks, written out
from their documentation. The model learns how the state moves; what the task pays is known.

Each function takes ``obs`` (N, S), ``action`` (N,) long or (N, A) float, ``next_obs`` (N, S) and returns the
reward (N,) and whether the episode ends there (N,) as floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Reward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

CARTPOLE_X, CARTPOLE_THETA = 2.4, 12 * 2 * math.pi / 360  # the cart leaves the track; the pole falls past 12°


def cartpole(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """+1 for every step, the one that ends it included; it ends when the cart or the pole goes too far."""
    done = (next_obs[:, 0].abs() > CARTPOLE_X) | (next_obs[:, 2].abs() > CARTPOLE_THETA)
    return torch.ones_like(next_obs[:, 0]), done.float()


def pendulum(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), theta the angle from upright in (-pi, pi]; it never ends."""
    theta = torch.atan2(obs[:, 1], obs[:, 0])
    u = action.reshape(len(obs), -1)[:, 0].clamp(-2.0, 2.0)
    cost = theta ** 2 + 0.1 * obs[:, 2] ** 2 + 0.001 * u ** 2
    return -cost, torch.zeros_like(cost)


def mountain_car(obs: torch.Tensor, action: torch.Tensor,
                 next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """-1 per step until the car reaches the flag at position 0.5, moving right (velocity >= 0)."""
    done = (next_obs[:, 0] >= 0.5) & (next_obs[:, 1] >= 0)
    return -torch.ones_like(next_obs[:, 0]), done.float()


def acrobot(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """-1 per step until the tip is a link's length above the pivot: -cos(t1) - cos(t1 + t2) > 1; 0 on that step."""
    c1, s1, c2, s2 = next_obs[:, 0], next_obs[:, 1], next_obs[:, 2], next_obs[:, 3]
    done = (-c1 - (c1 * c2 - s1 * s2)) > 1.0
    return -(~done).float(), done.float()


REWARDS: dict[str, Reward] = {"CartPole-v1": cartpole, "Pendulum-v1": pendulum, "MountainCar-v0": mountain_car,
                              "Acrobot-v1": acrobot}
