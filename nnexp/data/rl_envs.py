"""The four classic-control environments nnexp collects from, a scripted controller for each, and the
Gymnasium plumbing shared by collection and evaluation (lazy import, reset seeds, lockstep episodes).

A controller maps one observation (numpy, the environment's own units) to an
action: an int for discrete action spaces, a float32 array of shape (1,) for
Pendulum's torque. They are deliberately simple hand-written rules, good
enough to be worth imitating (rl_policy) and to visit states a random policy
never reaches, not optimal:

- CartPole-v1: push the cart toward where the pole leans and falls
  (angle, angular velocity), with a little centring on the cart's position and
  velocity: balances all 500 steps from every start.
- MountainCar-v0: push in the direction the car already moves; pumping energy
  this way reaches the flag in about 120 steps (random: never, -200).
- Acrobot-v1: torque in the direction of the second joint's angular velocity,
  which pumps energy into the swing; reaches the line in about 80 steps.
- Pendulum-v1: energy-pumping swing-up (full torque along the angular
  velocity while the energy is below the upright's), then a PD controller
  once the pole is near the top.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from nnexp.errors import ConfigError
from nnexp.options.data import RL_MAX_EPISODES


def cartpole(obs: np.ndarray) -> int:
    x, x_dot, theta, theta_dot = obs
    return int(theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0)  # 1: push right


def mountain_car(obs: np.ndarray) -> int:
    return 2 if obs[1] >= 0 else 0  # 0: push left, 1: no push, 2: push right


def acrobot(obs: np.ndarray) -> int:
    return 2 if obs[5] > 0 else 0  # 0: torque -1, 1: 0, 2: +1 on the joint between the links


# Pendulum-v1's physics: g = 10, m = l = 1, so theta'' = 3g/(2l) sin(theta) + 3/(m l^2) u and the
# energy relative to upright (theta = 0) is E = theta'^2 / 6 + 5 (cos(theta) - 1) (divided by m l^2 / 2).
PENDULUM_MAX_TORQUE = 2.0


def pendulum(obs: np.ndarray) -> np.ndarray:
    cos, sin, theta_dot = (float(v) for v in obs)
    theta = math.atan2(sin, cos)  # 0 upright, +-pi hanging down
    if cos > 0.9:  # near the top: PD control onto theta = 0
        u = -(10.0 * theta + 2.0 * theta_dot)
    elif theta_dot ** 2 / 6 + 5 * (cos - 1) < 0:  # below the upright's energy: pump along the motion
        u = PENDULUM_MAX_TORQUE if theta_dot >= 0 else -PENDULUM_MAX_TORQUE
    else:  # enough energy: damp a little so it does not swing through the top
        u = -0.5 * theta_dot
    return np.array([min(max(u, -PENDULUM_MAX_TORQUE), PENDULUM_MAX_TORQUE)], dtype=np.float32)


@dataclass(frozen=True)
class EnvInfo:
    state_names: tuple[str, ...]  # one per observation dimension, for per-dimension errors
    scripted: Callable[[np.ndarray], int | np.ndarray]


ENVS: dict[str, EnvInfo] = {
    "CartPole-v1": EnvInfo(("x", "x_dot", "theta", "theta_dot"), cartpole),
    "MountainCar-v0": EnvInfo(("position", "velocity"), mountain_car),
    "Acrobot-v1": EnvInfo(("cos_theta1", "sin_theta1", "cos_theta2", "sin_theta2", "theta1_dot", "theta2_dot"),
                          acrobot),
    "Pendulum-v1": EnvInfo(("cos_theta", "sin_theta", "theta_dot"), pendulum),
}


def gymnasium(dataset: str, render: bool = False) -> ModuleType:
    """Import Gymnasium (the optional ``rl`` extra) only when an rl dataset is used."""
    try:
        import gymnasium
    except ImportError:
        raise ConfigError(f"dataset={dataset} needs gymnasium: pip install -e '.[rl]'") from None
    if render:
        # rgb_array frames are drawn offscreen with pygame; without a display SDL needs the dummy driver
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        try:
            import pygame  # noqa: F401
        except ImportError:
            raise ConfigError(f"dataset={dataset} renders frames with pygame: pip install -e '.[rl]'") from None
    return gymnasium


def make_env(gym: ModuleType, env_id: str, max_steps: int | None, render: bool = False) -> Any:
    """``max_steps`` None: the environment's own time limit (CartPole-v1 500, Pendulum-v1 200, ...)."""
    if env_id not in ENVS:
        raise ValueError(f"env={env_id!r} is not one of: {', '.join(ENVS)}")
    kwargs: dict[str, Any] = {} if max_steps is None else {"max_episode_steps": max_steps}
    return gym.make(env_id, render_mode="rgb_array" if render else None, **kwargs)


def random_action(space: Any, rng: np.random.Generator) -> int | np.ndarray:
    """Uniform over the action space, from our own generator (the space's own would need seeding apart)."""
    if hasattr(space, "n"):
        return int(rng.integers(space.n))
    return rng.uniform(space.low, space.high).astype(np.float32)


# Episode i of a collection with dataset.seed s starts from env.reset(seed=s * SEED_STRIDE + i);
# evaluation episodes from s * SEED_STRIDE + EVAL_OFFSET + j: never a start the training data saw.
SEED_STRIDE = 1_000_000
EVAL_OFFSET = RL_MAX_EPISODES  # a collection has fewer episodes (nnexp/options/data.py checks dataset.episodes)


def episode_seed(seed: int, episode: int, evaluation: bool = False) -> int:
    return seed * SEED_STRIDE + (EVAL_OFFSET if evaluation else 0) + episode


def run_episodes(dataset: str, env_id: str, max_steps: int | None, seeds: Sequence[int],
                 act: Callable[[np.ndarray, list[int]], Sequence[Any]]) -> np.ndarray:
    """Undiscounted return of one episode per seed, all environments stepped in lockstep.

    ``act(obs, which)``: observations (B, S) of the B environments still running and their
    indices into ``seeds`` -> B actions. One call per time step, so a network answers a batch.
    """
    gym = gymnasium(dataset)
    envs = [make_env(gym, env_id, max_steps) for _ in seeds]
    obs = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds, strict=True)]
    returns = np.zeros(len(envs))
    running = list(range(len(envs)))
    while running:
        actions = act(np.stack([obs[i] for i in running]).astype(np.float32), running)
        still = []
        for i, action in zip(running, actions, strict=True):
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += float(reward)
            if not (terminated or truncated):
                still.append(i)
        running = still
    for env in envs:
        env.close()
    return returns
