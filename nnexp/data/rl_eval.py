"""How well a learned function does where it matters: in the environment, not only on the loss.

Each evaluator is what an rl dataset puts into ``Data.evaluate``: called with
the model (every ``dataset.eval_every`` epochs and once at the end of the run),
it returns named numbers that run.py logs to TensorBoard as ``eval/<name>``
and writes to summary.json under ``"eval"``. They run the model in eval mode
under ``no_grad``, restore its mode and draw no numbers from the global random
generators, so evaluating never changes what a run learns.

- f_P (:class:`PolicyEval`): the learned policy acts in the environment.
- f_M (:class:`RolloutEval`): open-loop rollouts of the learned model, k = 1..H steps.
- f_V (:class:`ValueEval`): errors and rank correlation against held-out Monte Carlo returns.
- f_S (:class:`StateEval`): error of each recovered state dimension.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nnexp.data.rl_envs import ENVS, episode_seed, random_action, run_episodes
from nnexp.losses import predicted_class


@dataclass(frozen=True)
class Standardizer:
    """z = (v - mean) / std per column, with the training split's statistics."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)

    @classmethod
    def fit(cls, values: np.ndarray, enabled: bool = True) -> Standardizer:
        dim = values.shape[1]
        if not enabled:
            return cls(np.zeros(dim, np.float32), np.ones(dim, np.float32))
        # a column that never moves in training keeps std 1 instead of dividing by ~0
        std = values.std(axis=0)
        return cls(values.mean(axis=0).astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = (torch.as_tensor(a, device=z.device) for a in (self.mean, self.std))
        return z * std + mean


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Model outputs (N, out) for inputs x (N, ...), on the model's device, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.cat([model(x[i:i + batch_size].to(device)).float() for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


class PolicyEval:
    """f_P: mean and std of the return of the learned policy over N episodes, next to the baselines.

    The scripted controller and a random policy play the same N starts (reset
    seeds the training data never used); their returns do not change while the
    model trains, so they are played once. ``return_vs_scripted`` is the learned
    mean over the scripted mean (for positive returns such as CartPole's);
    ``normalized_return`` is 0 for random and 1 for scripted, for any sign.
    """

    def __init__(self, dataset: str, env_id: str, max_steps: int | None, episodes: int, seed: int,
                 space: Any, states: Standardizer, actions: Standardizer | None) -> None:
        """``space``: the environment's action space; ``actions``: None for discrete actions (classes),
        else how torques were standardized for training."""
        self.dataset, self.env_id, self.max_steps, self.space = dataset, env_id, max_steps, space
        self.seeds = [episode_seed(seed, j, evaluation=True) for j in range(episodes)]
        self.states, self.actions = states, actions
        self._baselines: dict[str, float] | None = None

    def _play(self, act: Callable[[np.ndarray, list[int]], Sequence[Any]]) -> np.ndarray:
        return run_episodes(self.dataset, self.env_id, self.max_steps, self.seeds, act)

    def baselines(self) -> dict[str, float]:
        if self._baselines is None:
            scripted = ENVS[self.env_id].scripted
            scripted_returns = self._play(lambda obs, which: [scripted(o) for o in obs])
            rngs = [np.random.default_rng([s, 2]) for s in self.seeds]  # one per episode, apart from training's
            random_returns = self._play(lambda obs, which: [random_action(self.space, rngs[i]) for i in which])
            self._baselines = {"return_scripted": float(scripted_returns.mean()),
                               "return_scripted_std": float(scripted_returns.std()),
                               "return_random": float(random_returns.mean()),
                               "return_random_std": float(random_returns.std())}
        return self._baselines

    def __call__(self, model: nn.Module) -> dict[str, float]:
        def learned(obs: np.ndarray, which: list[int]) -> list:
            out = predict(model, torch.as_tensor(self.states(obs)))  # (B, outputs)
            if self.actions is None:  # discrete: the class the model predicts, by the training rule
                return predicted_class(out).cpu().tolist()
            torque = self.actions.inverse(out).cpu().numpy()  # (B, 1)
            return list(np.clip(torque, self.space.low, self.space.high).astype(np.float32))

        returns = self._play(learned)
        base = self.baselines()
        mean, scripted, rand = float(returns.mean()), base["return_scripted"], base["return_random"]
        return {"return": mean, "return_std": float(returns.std()), **base,
                "return_vs_scripted": mean / scripted if scripted else float("nan"),
                "normalized_return": (mean - rand) / (scripted - rand) if scripted != rand else float("nan")}


class RolloutEval:
    """f_M: k-step open-loop rollout error on held-out episodes, k = 1..H.

    From every state s_t of the validation episodes the model predicts s_{t+1}
    from (s_t, a_t), then feeds its own prediction back with the real next action,
    k times; the error at k compares its s_{t+k} with the true one. Errors are
    RMSE over state dimensions in units of each dimension's training std
    (``rollout_error/k<k>``); ``rollout_baseline/k<k>`` is the same for the guess
    "nothing moves" (s_{t+k} = s_t), the number a useful model must beat.
    """

    def __init__(self, trajectories: list[np.ndarray], actions: list[np.ndarray], horizon: int,
                 states: Standardizer, targets: Standardizer, delta: bool) -> None:
        """``trajectories``: per episode the T + 1 true states (T + 1, S); ``actions``: its T encoded
        actions (T, A)."""
        self.horizon, self.states, self.targets, self.delta = horizon, states, targets, delta
        starts, acts, truth = [], [], []
        for traj, act in zip(trajectories, actions, strict=True):
            steps = len(act)
            for t in range(steps):  # every state of every episode starts a rollout
                ahead = min(horizon, steps - t)
                true = np.full((horizon, traj.shape[1]), np.nan, np.float32)  # NaN past the episode's end
                true[:ahead] = traj[t + 1:t + 1 + ahead]
                a = np.zeros((horizon, act.shape[1]), np.float32)
                a[:ahead] = act[t:t + ahead]
                starts.append(traj[t])
                acts.append(a)
                truth.append(true)
        self.start = np.stack(starts).astype(np.float32)  # (W, S)
        self.actions = torch.as_tensor(np.stack(acts))  # (W, H, A)
        self.truth = np.stack(truth)  # (W, H, S)

    def __call__(self, model: nn.Module) -> dict[str, float]:
        scale = self.states.std  # (S,)
        s = torch.as_tensor(self.start)  # (W, S), the environment's units
        results: dict[str, float] = {}
        for k in range(1, self.horizon + 1):
            x = torch.cat([torch.as_tensor(self.states(s.numpy())), self.actions[:, k - 1]], dim=1)  # (W, S + A)
            out = self.targets.inverse(predict(model, x)).cpu()  # (W, S)
            s = s + out if self.delta else out
            valid = ~np.isnan(self.truth[:, k - 1, 0])  # rollouts whose episode lasts k more steps
            err = (s.numpy()[valid] - self.truth[valid, k - 1]) / scale
            still = (self.start[valid] - self.truth[valid, k - 1]) / scale
            results[f"rollout_error/k{k}"] = float(np.sqrt(np.mean(err ** 2))) if valid.any() else float("nan")
            results[f"rollout_baseline/k{k}"] = float(np.sqrt(np.mean(still ** 2))) if valid.any() else float("nan")
        return results


class ValueEval:
    """f_V: RMSE and MAE (in units of return) and Spearman rank correlation with held-out MC returns."""

    def __init__(self, x: torch.Tensor, returns: np.ndarray, targets: Standardizer) -> None:
        self.x, self.returns, self.targets = x, returns, targets  # x (N, S) standardized, returns (N,)

    def __call__(self, model: nn.Module) -> dict[str, float]:
        from scipy.stats import spearmanr  # scipy comes with scikit-learn, a dependency

        pred = self.targets.inverse(predict(model, self.x)).cpu().numpy()[:, 0]  # (N,)
        err = pred - self.returns
        rho = spearmanr(pred, self.returns).statistic if np.ptp(pred) > 0 else float("nan")
        return {"value_rmse": float(np.sqrt(np.mean(err ** 2))), "value_mae": float(np.mean(np.abs(err))),
                "value_spearman": float(rho)}


class StateEval:
    """f_S: per state dimension, RMSE of the recovered state in the environment's units
    (``state_rmse/<name>``) and that RMSE over the dimension's std on the held-out frames
    (``state_nrmse/<name>``: 1 is no better than always answering the mean)."""

    def __init__(self, x: torch.Tensor, states: np.ndarray, targets: Standardizer, names: tuple[str, ...]) -> None:
        self.x, self.states, self.targets, self.names = x, states, targets, names  # states (N, S)

    def __call__(self, model: nn.Module) -> dict[str, float]:
        pred = self.targets.inverse(predict(model, self.x)).cpu().numpy()  # (N, S)
        rmse = np.sqrt(np.mean((pred - self.states) ** 2, axis=0))  # (S,)
        spread = np.where(self.states.std(axis=0) > 1e-6, self.states.std(axis=0), np.nan)
        results = {f"state_rmse/{n}": float(v) for n, v in zip(self.names, rmse, strict=True)}
        results.update({f"state_nrmse/{n}": float(v) for n, v in zip(self.names, rmse / spread, strict=True)})
        return results
