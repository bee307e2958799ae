"""f_M by model-based control: a dynamics model learned from the agent's own interaction, and actions planned
with it (model-predictive control).

The model f_M(s, a) is a network from ``conf/model/`` that reads the state and the action (one-hot for a
discrete action, the raw values for a continuous one) and predicts the next state (``target: next``) or its
change (``target: delta``, s' - s: small and centred, easier to fit), the choice of ``dataset=rl_model``.
What the task pays and when it ends are known (nnexp/rl/rewards.py: Gymnasium's definitions); only how the
state moves is learned.

Each environment step the transition goes into the buffer. The first ``random_steps`` steps act uniformly at
random; then, every ``refit_every`` steps, the model is refit to the whole buffer: ``fit_epochs`` passes in
shuffled minibatches of ``batch_size``, the MSE of the standardized target from the standardized input, with
the mean and std of both taken from the data at each refit (kept with the weights: best.pt holds them). The
fit continues from the weights it had, so each refit adds what the new data teach. Before each refit the model
is scored on the transitions that arrived since the last one, which it has not been fitted to: its one-step
validation error (``train/model_loss_new``, in units of the target's std), beside the fit's own
(``train/model_loss``).

Acting plans from the current state, again at every step (the plan's first action only is taken, then it
plans anew from where it lands): ``candidates`` action sequences of ``horizon`` steps are rolled out through
the model, each scored by its predicted discounted return sum_t gamma^t r_t, which stops at the first step the
reward function calls an end (the pole fell). ``planner: random`` (random shooting) draws the sequences
uniformly and takes the best one's first action; ``planner: cem`` (the cross-entropy method) draws them from a
per-step distribution (a categorical for a discrete action, a Gaussian clipped to [low, high] for a continuous
one), refits it to the ``elites`` best, ``cem_iterations`` times, and takes the first action of the best
sequence it drew. Evaluation plans the same way, for all its environments at once (one batched forward of
B x candidates rows per step of the horizon). Every random number is the agent's own (numpy for the random
steps, its torch generator for the sequences and minibatches), so a resumed run draws what one never stopped
would.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from nnexp.options import agents as options
from nnexp.rl.agent import Agent
from nnexp.rl.buffer import ReplayBuffer
from nnexp.rl.envs import Spaces
from nnexp.rl.rewards import REWARDS

NORM_KEYS = ("x_mean", "x_std", "y_mean", "y_std")


class MPC(Agent):
    name = "mpc"
    metrics = ("train/model_loss", "train/model_loss_new")
    scalar_names = ("plan/return",)

    def __init__(self, *, target: str, buffer_size: int, random_steps: int, refit_every: int, fit_epochs: int,
                 batch_size: int, planner: str, choose: str, horizon: int, candidates: int, cem_iterations: int,
                 elites: int, **common: Any) -> None:
        keys = {k: common[k] for k in options.COMMON}
        options.mpc(**keys, target=target, buffer_size=buffer_size, random_steps=random_steps,
                    refit_every=refit_every, fit_epochs=fit_epochs, batch_size=batch_size, planner=planner,
                    choose=choose, horizon=horizon, candidates=candidates, cem_iterations=cem_iterations,
                    elites=elites)
        super().__init__(**common)
        self.model = self.nets["model"]
        self.delta, self.random_steps, self.refit_every = target == "delta", random_steps, refit_every
        self.fit_epochs, self.batch_size, self.planner, self.choose = fit_epochs, batch_size, planner, choose
        self.horizon, self.candidates, self.cem_iterations, self.elites = horizon, candidates, cem_iterations, elites
        self.reward = REWARDS[self.schedule.env]
        sp = self.spaces
        self.encoded = sp.actions if sp.discrete else sp.action_dim
        self.buffer = ReplayBuffer(buffer_size, sp.obs_dim, sp.action_dim, sp.discrete, self.device)
        x_dim, s_dim = sp.obs_dim + self.encoded, sp.obs_dim
        zeros, ones = (lambda d: torch.zeros(d, device=self.device)), (lambda d: torch.ones(d, device=self.device))
        self.norm = {"x_mean": zeros(x_dim), "x_std": ones(x_dim), "y_mean": zeros(s_dim), "y_std": ones(s_dim)}
        if not sp.discrete:
            self.low = torch.as_tensor(sp.low, device=self.device)
            self.high = torch.as_tensor(sp.high, device=self.device)
        self.since_refit = 0  # transitions added since the last refit: the model's unseen data
        self.plan_sum, self.plans = 0.0, 0  # the chosen plans' predicted returns in this round (plan/return)

    @classmethod
    def networks(cls, spaces: Spaces, keys: dict[str, Any]) -> dict[str, tuple[int, int | None]]:
        encoded = spaces.actions if spaces.discrete else spaces.action_dim
        return {"model": (spaces.obs_dim + encoded, spaces.obs_dim)}

    # -- the model ----------------------------------------------------------------------------------------------
    def _encode(self, actions: torch.Tensor) -> torch.Tensor:
        if self.spaces.discrete:
            return F.one_hot(actions.long(), self.spaces.actions).float()
        return actions.reshape(len(actions), -1).float()

    def _inputs(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return (torch.cat([obs, self._encode(actions)], 1) - self.norm["x_mean"]) / self.norm["x_std"]

    def predict(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The model's next state for states (N, S) and actions (N,) or (N, A)."""
        y = self.model(self._inputs(obs, actions)) * self.norm["y_std"] + self.norm["y_mean"]
        return obs + y if self.delta else y

    def _targets(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return next_obs - obs if self.delta else next_obs

    def _refit(self) -> dict[str, torch.Tensor]:
        n = len(self.buffer)
        obs, actions, next_obs = self.buffer.obs[:n], self.buffer.actions[:n], self.buffer.next_obs[:n]
        y = self._targets(obs, next_obs)
        unseen = torch.arange(1, min(self.since_refit, n) + 1, device=self.device)
        new = (self.buffer.pos - unseen) % self.buffer.capacity  # the latest, not yet fitted to
        x = torch.cat([obs, self._encode(actions)], 1)
        y_std = y.std(0, unbiased=False).clamp_min(1e-6)
        with torch.no_grad():  # the model as it acted, on what it has not been fitted to, in the new target's std
            error = (self.predict(obs[new], actions[new]) - next_obs[new]) / y_std
            new_loss = error.pow(2).mean()
        self.norm = {"x_mean": x.mean(0), "x_std": x.std(0, unbiased=False).clamp_min(1e-6), "y_mean": y.mean(0),
                     "y_std": y_std}
        xs = (x - self.norm["x_mean"]) / self.norm["x_std"]
        ys = (y - self.norm["y_mean"]) / self.norm["y_std"]
        batches = max(1, -(-n // self.batch_size))
        for _ in range(self.fit_epochs):
            order = torch.randperm(n, generator=self.generator).to(self.device)
            total = torch.zeros((), device=self.device)
            for b in range(batches):
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                loss = F.mse_loss(self.model(xs[idx]), ys[idx])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total = total + loss.detach()
        self.since_refit = 0
        return {"train/model_loss": total / batches, "train/model_loss_new": new_loss}

    # -- planning -----------------------------------------------------------------------------------------------
    def _returns(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Predicted discounted returns of action sequences: obs (B, S), actions (B, C, H[, A]) -> (B, C)."""
        b, c = actions.shape[:2]
        state = obs.repeat_interleave(c, 0)  # (B*C, S): each environment's state, once per candidate
        flat = actions.reshape(b * c, self.horizon, *actions.shape[3:])
        total = torch.zeros(b * c, device=self.device)
        alive = torch.ones(b * c, device=self.device)
        for t in range(self.horizon):
            a = flat[:, t]
            nxt = self.predict(state, a)
            reward, done = self.reward(state, a, nxt)
            total += (self.gamma ** t) * alive * reward
            alive = alive * (1.0 - done)
            state = nxt
        return total.reshape(b, c)

    def _uniform(self, b: int) -> torch.Tensor:
        shape = (b, self.candidates, self.horizon)
        if self.spaces.discrete:
            return torch.randint(self.spaces.actions, shape, generator=self.generator).to(self.device)
        u = torch.rand((*shape, self.spaces.action_dim), generator=self.generator).to(self.device)
        return self.low + u * (self.high - self.low)

    def _sample(self, dist: tuple[torch.Tensor, ...], b: int) -> torch.Tensor:
        """Candidates from CEM's per-step distribution: probabilities (B, H, K), or mean and std (B, H, A)."""
        if self.spaces.discrete:
            (probs,) = dist
            drawn = torch.multinomial(probs.reshape(-1, probs.shape[-1]).cpu(), self.candidates, replacement=True,
                                      generator=self.generator)  # (B*H, C)
            return drawn.reshape(b, self.horizon, self.candidates).transpose(1, 2).to(self.device)
        mean, std = dist
        noise = torch.randn((b, self.candidates, self.horizon, self.spaces.action_dim), generator=self.generator)
        return torch.max(torch.min(mean[:, None] + std[:, None] * noise.to(self.device), self.high), self.low)

    def _refit_distribution(self, elite: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The per-step distribution fitted to the elites (B, E, H[, A])."""
        if self.spaces.discrete:
            return (F.one_hot(elite, self.spaces.actions).float().mean(1),)
        return elite.mean(1), elite.std(1, unbiased=False).clamp_min(1e-3)

    def _choose(self, actions: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """choose=mean: the first action whose sequences score best on average, per environment (B,)."""
        first = F.one_hot(actions[:, :, 0], self.spaces.actions).float()  # (B, C, K)
        drawn = first.sum(1)
        mean = (first * scores[..., None]).sum(1) / drawn.clamp_min(1.0)
        return mean.masked_fill(drawn == 0, -torch.inf).argmax(1)

    def plan(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first action of the plan for each state in obs (B, S), and the best predicted return."""
        b, sp = len(obs), self.spaces
        rows = torch.arange(b, device=self.device)
        with torch.no_grad():
            if self.planner == "random":
                iterations, dist = 1, None
            elif sp.discrete:
                iterations, dist = self.cem_iterations, (
                    torch.full((b, self.horizon, sp.actions), 1.0 / sp.actions, device=self.device),)
            else:
                shape = (b, self.horizon, sp.action_dim)
                iterations = self.cem_iterations
                dist = ((self.low + self.high).div(2).expand(shape), (self.high - self.low).div(2).expand(shape))
            best_score = torch.full((b,), -torch.inf, device=self.device)
            first = None
            for i in range(iterations):
                actions = self._uniform(b) if dist is None else self._sample(dist, b)
                scores = self._returns(obs, actions)
                top = scores.topk(self.elites if dist is not None else 1, 1).indices  # (B, E), the best first
                candidate = actions[rows, top[:, 0], 0]
                better = scores[rows, top[:, 0]] > best_score
                first = candidate if first is None else torch.where(
                    better.reshape(-1, *([1] * (candidate.dim() - 1))), candidate, first)
                best_score = torch.maximum(best_score, scores[rows, top[:, 0]])
                if i + 1 < iterations:
                    dist = self._refit_distribution(actions[rows[:, None], top])
            if self.choose == "mean":
                first = self._choose(actions, scores)
            return first, best_score

    # -- what the loop calls ------------------------------------------------------------------------------------
    def _random_action(self) -> Any:
        if self.spaces.discrete:
            return int(self.rng.integers(self.spaces.actions))
        return self.rng.uniform(self.spaces.low, self.spaces.high).astype(np.float32)

    def _to_env(self, actions: torch.Tensor) -> np.ndarray:
        out = actions.cpu().numpy()
        return out.astype(np.int64) if self.spaces.discrete else out.astype(np.float32)

    def act(self, obs: np.ndarray, step: int) -> Any:
        if step < self.random_steps:
            return self._random_action()
        first, score = self.plan(self._tensor(obs)[None])
        self.plan_sum += float(score[0])
        self.plans += 1
        action = self._to_env(first)[0]
        return int(action) if self.spaces.discrete else action

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        return self._to_env(self.plan(self._tensor(obs))[0])

    def observe(self, obs: np.ndarray, action: Any, reward: float, next_obs: np.ndarray, terminated: bool,
                truncated: bool, step: int) -> dict[str, torch.Tensor] | None:
        self.buffer.add(obs, action, reward, next_obs, terminated)
        self.since_refit += 1
        done = step + 1  # transitions seen, this one included
        if done >= self.random_steps and (done - self.random_steps) % self.refit_every == 0:
            return self._refit()
        return None

    def scalars(self, step: int) -> dict[str, float]:
        """The mean predicted return of the plans acted on in the round (None in a round of random steps)."""
        mean = self.plan_sum / self.plans if self.plans else None
        self.plan_sum, self.plans = 0.0, 0
        return {"plan/return": mean}

    # -- checkpoints ------------------------------------------------------------------------------------------
    def model_state(self) -> dict[str, Any]:
        """The weights and the standardization they were fitted with: the model is both."""
        return {**super().model_state(), "norm": dict(self.norm)}

    def load_model_state(self, state: dict[str, Any]) -> None:
        super().load_model_state(state)
        self.norm = {k: state["norm"][k].to(self.device) for k in NORM_KEYS}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": self.buffer.state_dict(), "since_refit": self.since_refit,
                "plan_sum": self.plan_sum, "plans": self.plans}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
        self.since_refit, self.plan_sum, self.plans = int(state["since_refit"]), state["plan_sum"], state["plans"]
