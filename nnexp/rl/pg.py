"""f_P by policy gradient: a policy network learned from reward by climbing the gradient of the expected return.

Both agents sample their actions from a categorical distribution over the discrete actions, the policy
network's outputs its logits; evaluation takes the most likely action (deterministic). Each learns from the
transitions its current policy collected, then drops them (on-policy).

**REINFORCE** (Williams 1992; Sutton & Barto 2018, 13.3-13.4): after ``episodes_per_update`` whole episodes,

    grad J  ~=  1/N sum_i sum_t grad log pi(a_t | s_t) (G_t - b(s_t)),    G_t = sum_{k >= t} gamma^(k-t) r_k

the return-to-go of each step. With ``baseline`` a value network b(s) = V(s) is fitted to G_t (squared error,
weighted by ``value_coef``, ``value_steps`` gradient steps per update) and subtracted: the estimate stays unbiased and its variance falls. Each update
logs that variance, ``train/grad_var``: the trace of the covariance of the N one-episode estimates of the
policy's gradient (``episodes_per_update`` >= 2); with a baseline also ``train/grad_var_no_baseline``, the
same episodes' estimates with b = 0, so the two compare on the same data and the same policy.

**PPO** (Schulman et al. 2017): every ``rollout_steps`` transitions, advantages by generalized advantage
estimation (GAE, Schulman et al. 2016) from a value network, A_t = sum_k (gamma lambda)^k delta_{t+k} with
delta_t = r_t + gamma V(s_{t+1}) - V(s_t); then ``update_epochs`` passes over the rollout in minibatches of
``minibatch_size``, each minimizing the clipped surrogate

    -min(rho A, clip(rho, 1 - clip, 1 + clip) A),    rho = pi(a | s) / pi_old(a | s)

plus ``value_coef`` times the value's squared error against A + V, minus ``entropy_coef`` times the
policy's entropy. ``target_kl`` ends the passes early once the policy has moved that far (approximate KL).

For both, an episode cut by the time limit (truncated) is not an ending of the task: PPO bootstraps its
last step from V(s'), while REINFORCE's return-to-go, a Monte-Carlo sum, stops there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nnexp.options import agents as options
from nnexp.rl.agent import Agent
from nnexp.rl.envs import Spaces

_FIELDS = ("obs", "actions", "rewards", "terminated", "truncated", "next_obs")


class Rollout:
    """The transitions collected since the last update, in lists; a checkpoint holds them as tensors."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.obs: list[np.ndarray] = []
        self.actions: list[int] = []
        self.rewards: list[float] = []
        self.terminated: list[bool] = []
        self.truncated: list[bool] = []
        self.next_obs: list[np.ndarray] = []
        self.episodes = 0  # episodes that ended in it

    def __len__(self) -> int:
        return len(self.rewards)

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminated: bool,
            truncated: bool) -> None:
        self.obs.append(np.asarray(obs, dtype=np.float32))
        self.actions.append(int(action))
        self.rewards.append(float(reward))
        self.terminated.append(bool(terminated))
        self.truncated.append(bool(truncated))
        self.next_obs.append(np.asarray(next_obs, dtype=np.float32))
        self.episodes += bool(terminated or truncated)

    def tensors(self, device: torch.device) -> dict[str, torch.Tensor]:
        return {"obs": torch.as_tensor(np.stack(self.obs), device=device),
                "actions": torch.as_tensor(self.actions, dtype=torch.long, device=device),
                "rewards": torch.as_tensor(self.rewards, dtype=torch.float32, device=device),
                "terminated": torch.as_tensor(self.terminated, dtype=torch.float32, device=device),
                "truncated": torch.as_tensor(self.truncated, dtype=torch.float32, device=device),
                "next_obs": torch.as_tensor(np.stack(self.next_obs), device=device)}

    def state_dict(self) -> dict[str, Any]:
        if not self:
            return {"size": 0, "episodes": 0}
        return {**self.tensors(torch.device("cpu")), "size": len(self), "episodes": self.episodes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.clear()
        if not state["size"]:
            return
        self.obs = list(state["obs"].numpy())
        self.actions = [int(a) for a in state["actions"].tolist()]
        self.rewards = [float(r) for r in state["rewards"].tolist()]
        self.terminated = [bool(d) for d in state["terminated"].tolist()]
        self.truncated = [bool(d) for d in state["truncated"].tolist()]
        self.next_obs = list(state["next_obs"].numpy())
        self.episodes = int(state["episodes"])


class PolicyGradient(Agent):
    """What REINFORCE and PPO share: the categorical policy, sampled while learning, its mode in evaluation."""

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        self.policy = self.nets["policy"]
        self.rollout = Rollout()

    def act(self, obs: np.ndarray, step: int) -> int:
        with torch.no_grad():
            logits = self.policy(self._tensor(obs)[None])[0]
        p = torch.softmax(logits.double(), 0).cpu().numpy()
        # inverse transform sampling with the agent's own generator (the same draws on any device)
        return int(min(np.searchsorted(np.cumsum(p), self.rng.random() * p.sum(), side="right"), len(p) - 1))

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.policy(self._tensor(obs)).argmax(1).cpu().numpy()

    def observe(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminated: bool,
                truncated: bool, step: int) -> dict[str, torch.Tensor] | None:
        """Keep the transition; once the rollout is complete (:meth:`ready`), learn from it and drop it."""
        self.rollout.add(obs, action, reward, next_obs, terminated, truncated)
        if not self.ready():
            return None
        losses = self._update(self.rollout.tensors(self.device))
        self.rollout.clear()
        return losses

    def ready(self) -> bool:
        """Whether the rollout holds what one update learns from."""
        raise NotImplementedError

    def _update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _params(self) -> list[nn.Parameter]:
        return [p for net in self.nets.values() for p in net.parameters()]

    def _step(self, loss: torch.Tensor, max_grad_norm: float | None) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self._params(), max_grad_norm)
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rollout": self.rollout.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rollout.load_state_dict(state["rollout"])


def _log_probs(logits: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(a | s) of the actions taken, and the policy's entropy, per row."""
    logp_all = F.log_softmax(logits, dim=1)
    entropy = -(logp_all.exp() * logp_all).sum(1)
    return logp_all.gather(1, actions[:, None]).squeeze(1), entropy


class Reinforce(PolicyGradient):
    name = "reinforce"

    def __init__(self, *, baseline: bool, episodes_per_update: int, value_coef: float, value_steps: int,
                 entropy_coef: float, max_grad_norm: float | None, **common: Any) -> None:
        options.reinforce(**{k: common[k] for k in options.COMMON}, baseline=baseline,
                          episodes_per_update=episodes_per_update, value_coef=value_coef, value_steps=value_steps,
                          entropy_coef=entropy_coef, max_grad_norm=max_grad_norm)
        super().__init__(**common)
        self.baseline, self.episodes_per_update, self.value_steps = baseline, episodes_per_update, value_steps
        self.value_coef, self.entropy_coef, self.max_grad_norm = value_coef, entropy_coef, max_grad_norm
        self.value = self.nets.get("value")
        self.metrics = ("train/loss", "train/policy_loss", "train/entropy", "train/grad_var") + (
            ("train/value_loss", "train/grad_var_no_baseline") if baseline else ())

    @classmethod
    def networks(cls, spaces: Spaces, keys: dict[str, Any]) -> dict[str, tuple[int, int | None]]:
        nets = {"policy": (spaces.obs_dim, spaces.actions)}
        if keys.get("baseline"):
            nets["value"] = (spaces.obs_dim, 1)
        return nets

    def ready(self) -> bool:
        return self.rollout.episodes >= self.episodes_per_update

    def returns_to_go(self, rewards: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        """G_t = r_t + gamma G_{t+1}, restarting at every episode's end."""
        r, keep = rewards.cpu().double().numpy(), 1.0 - ends.cpu().double().numpy()
        returns, running = np.empty_like(r), 0.0
        for t in range(len(r) - 1, -1, -1):  # in numpy: a Python loop over tensors is 10x slower
            running = r[t] + self.gamma * running * keep[t]
            returns[t] = running
        return torch.as_tensor(returns, dtype=torch.float32, device=rewards.device)

    def _update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ends = torch.maximum(batch["terminated"], batch["truncated"])
        returns = self.returns_to_go(batch["rewards"], ends)
        logp, entropy = _log_probs(self.policy(batch["obs"]), batch["actions"])
        episode = torch.cumsum(ends, 0) - ends  # which episode each step belongs to: 0 .. N-1
        n = self.episodes_per_update
        losses: dict[str, torch.Tensor] = {}
        if self.baseline:
            values = self.value(batch["obs"]).squeeze(1)
            weights = returns - values.detach()
            value_loss = F.mse_loss(values, returns)
        else:
            weights, value_loss = returns, torch.zeros((), device=returns.device)
        per_episode = torch.zeros(n, device=returns.device).index_add(0, episode.long(), -(logp * weights))
        policy_loss = per_episode.mean()
        losses["train/grad_var"] = self._gradient_variance(per_episode)
        if self.baseline:
            plain = torch.zeros(n, device=returns.device).index_add(0, episode.long(), -(logp * returns))
            losses["train/grad_var_no_baseline"] = self._gradient_variance(plain)
            losses["train/value_loss"] = value_loss.detach()
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy.mean()
        self._step(loss, self.max_grad_norm)
        if self.baseline:
            for _ in range(self.value_steps - 1):  # the baseline alone (the policy's gradient is None: not moved)
                self._step(self.value_coef * F.mse_loss(self.value(batch["obs"]).squeeze(1), returns),
                           self.max_grad_norm)
        losses.update({"train/loss": loss.detach(), "train/policy_loss": policy_loss.detach(),
                       "train/entropy": entropy.mean().detach()})
        return losses

    def _gradient_variance(self, per_episode: torch.Tensor) -> torch.Tensor:
        """The trace of the covariance of the one-episode estimates of the policy's gradient: sum over the
        weights of the variance across episodes (unbiased, N - 1)."""
        params = list(self.policy.parameters())
        grads = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            per_episode[i], params, retain_graph=True)]) for i in range(len(per_episode))])
        return grads.var(0, unbiased=True).sum().detach()


class PPO(PolicyGradient):
    name = "ppo"
    metrics = ("train/loss", "train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl",
               "train/clip_fraction")

    def __init__(self, *, rollout_steps: int, update_epochs: int, minibatch_size: int, clip: float,
                 gae_lambda: float, value_coef: float, entropy_coef: float, normalize_advantages: bool,
                 target_kl: float | None, max_grad_norm: float | None, **common: Any) -> None:
        options.ppo(**{k: common[k] for k in options.COMMON}, rollout_steps=rollout_steps,
                    update_epochs=update_epochs, minibatch_size=minibatch_size, clip=clip, gae_lambda=gae_lambda,
                    value_coef=value_coef, entropy_coef=entropy_coef, normalize_advantages=normalize_advantages,
                    target_kl=target_kl, max_grad_norm=max_grad_norm)
        super().__init__(**common)
        self.value = self.nets["value"]
        self.rollout_steps, self.update_epochs, self.minibatch_size = rollout_steps, update_epochs, minibatch_size
        self.clip, self.gae_lambda, self.value_coef, self.entropy_coef = clip, gae_lambda, value_coef, entropy_coef
        self.normalize_advantages, self.target_kl, self.max_grad_norm = normalize_advantages, target_kl, max_grad_norm

    @classmethod
    def networks(cls, spaces: Spaces, keys: dict[str, Any]) -> dict[str, tuple[int, int | None]]:
        return {"policy": (spaces.obs_dim, spaces.actions), "value": (spaces.obs_dim, 1)}

    def ready(self) -> bool:
        return len(self.rollout) >= self.rollout_steps

    def advantages(self, rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
                   terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
        """GAE: A_t = delta_t + gamma lambda A_{t+1}, cut at every episode's end; the last step of a truncated
        episode, and of the rollout, bootstraps from V(s')."""
        deltas = (rewards + self.gamma * next_values * (1.0 - terminated) - values).cpu().double().numpy()
        carry = ((1.0 - torch.maximum(terminated, truncated)) * self.gamma * self.gae_lambda).cpu().double().numpy()
        advantages, running = np.empty_like(deltas), 0.0
        for t in range(len(deltas) - 1, -1, -1):
            running = deltas[t] + carry[t] * running
            advantages[t] = running
        return torch.as_tensor(advantages, dtype=torch.float32, device=rewards.device)

    def _update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        obs, actions = batch["obs"], batch["actions"]
        with torch.no_grad():
            old_logp, _ = _log_probs(self.policy(obs), actions)
            values = self.value(obs).squeeze(1)
            next_values = self.value(batch["next_obs"]).squeeze(1)
            advantages = self.advantages(batch["rewards"], values, next_values, batch["terminated"],
                                         batch["truncated"])
            returns = advantages + values
        sums: dict[str, torch.Tensor] = {}
        count = 0
        for _ in range(self.update_epochs):
            order = torch.randperm(len(obs), generator=self.generator).to(self.device)
            kls = []
            for start in range(0, len(obs), self.minibatch_size):
                idx = order[start:start + self.minibatch_size]
                step = self._minibatch(obs[idx], actions[idx], old_logp[idx], advantages[idx], returns[idx])
                for name, value in step.items():
                    sums[name] = sums[name] + value if name in sums else value
                kls.append(step["train/approx_kl"])
                count += 1
            if self.target_kl is not None and float(torch.stack(kls).mean()) > self.target_kl:
                break
        return {name: value / count for name, value in sums.items()}

    def _minibatch(self, obs: torch.Tensor, actions: torch.Tensor, old_logp: torch.Tensor,
                   advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        logp, entropy = _log_probs(self.policy(obs), actions)
        if self.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        log_ratio = logp - old_logp
        ratio = log_ratio.exp()
        surrogate = torch.maximum(-advantages * ratio,
                                  -advantages * ratio.clamp(1.0 - self.clip, 1.0 + self.clip))
        policy_loss = surrogate.mean()
        value_loss = 0.5 * F.mse_loss(self.value(obs).squeeze(1), returns)
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy.mean()
        self._step(loss, self.max_grad_norm)
        with torch.no_grad():
            approx_kl = ((ratio - 1.0) - log_ratio).mean()  # the low-variance estimator (Schulman 2020)
            clipped = ((ratio - 1.0).abs() > self.clip).float().mean()
        return {"train/loss": loss.detach(), "train/policy_loss": policy_loss.detach(),
                "train/value_loss": value_loss.detach(), "train/entropy": entropy.mean().detach(),
                "train/approx_kl": approx_kl, "train/clip_fraction": clipped}
