"""R1 agents: nnexp's environment-step loop against a minimal DQN loop written by hand, and each algorithm's speed.

The peer is what someone who needs no runner writes (CleanRL's single-file style): one CartPole-v1 environment,
a replay buffer in numpy arrays, epsilon-greedy actions from a torch MLP, bursts of minibatch updates against a
target network, no logging. It has the settings of ``experiment=dqn_cartpole`` (a 256x256 ReLU MLP, Adam at
lr 0.0023, epsilon 1 -> 0.04 over 16% of the steps, 1,000 steps before the first update, then every 256 steps
128 minibatches of 64 with the Huber loss and the target copied after the burst, gamma 0.99, gradient norm
clipped at 10), over the same number of steps. Both sides run in this process on 1 torch thread (what nnexp
chooses for an agent); nnexp is ``nnexp.run.run`` on a config composed beforehand, as ``nnexp train`` calls
it, with one round (``eval_every`` = the steps: one evaluation of one episode at the end, one checkpoint) so
that the figure is the loop itself: acting, the buffer, the updates, the per-episode curves.

The environment's own share is measured apart: the same number of ``env.step`` calls with random actions
(resets included). What is left of each side's time is its loop's own cost.

The other rows are reported, not compared: for each algorithm at its preset's settings (``experiment=dqn_cartpole``,
the arms of ``experiment=pg_cartpole`` and MPC's of ``experiment=mbrl_cartpole``), seed 0, the environment steps per second of learning
(``metrics.csv``: evaluation excluded) and the wall seconds until ``eval/return`` first reached 475
(``summary.json``'s ``rl.seconds_to_threshold``: learning and the evaluations before it).
"""

from __future__ import annotations

import contextlib
import copy
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from busy_machine import metrics
from torch import nn
from torch.nn import functional as F

STEPS, QUICK_STEPS = 20_000, 2_000
DQN = dict(hidden=256, lr=0.0023, buffer=100_000, learning_starts=1000, batch=64, train_every=256, gradient_steps=128,
           target_update=256, epsilon_start=1.0, epsilon_end=0.04, epsilon_fraction=0.16, gamma=0.99,
           max_grad_norm=10.0)
PRESETS = {  # what each algorithm's row runs: its preset's settings, seed 0, to the threshold
    "DQN (`experiment=dqn_cartpole`)": ["experiment=dqn_cartpole"],
    "REINFORCE with baseline (`+experiment/pg=reinforce_baseline`)": ["experiment=pg_cartpole",
                                                                      "+experiment/pg=reinforce_baseline"],
    "REINFORCE without (`+experiment/pg=reinforce`)": ["experiment=pg_cartpole", "+experiment/pg=reinforce"],
    "PPO (`+experiment/pg=ppo`)": ["experiment=pg_cartpole", "+experiment/pg=ppo"],
    "MPC (`+experiment/mbrl=mpc`)": ["experiment=mbrl_cartpole", "+experiment/mbrl=mpc"],
}


def hand_dqn(steps: int, seed: int) -> dict:
    """The peer: a minimal DQN loop; returns its episodes and its last episodes' mean return."""
    import gymnasium as gym

    s = DQN
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = gym.make("CartPole-v1")
    q = nn.Sequential(nn.Linear(4, s["hidden"]), nn.ReLU(), nn.Linear(s["hidden"], s["hidden"]), nn.ReLU(),
                      nn.Linear(s["hidden"], 2))
    target = copy.deepcopy(q)
    optimizer = torch.optim.Adam(q.parameters(), lr=s["lr"])
    size = s["buffer"]
    obs_buf, next_buf = np.zeros((size, 4), np.float32), np.zeros((size, 4), np.float32)
    act_buf, rew_buf, term_buf = np.zeros(size, np.int64), np.zeros(size, np.float32), np.zeros(size, np.float32)
    decay = s["epsilon_fraction"] * steps
    obs, _ = env.reset(seed=seed)
    episode_return, returns = 0.0, []
    for step in range(steps):
        epsilon = s["epsilon_start"] + min(1.0, step / decay) * (s["epsilon_end"] - s["epsilon_start"])
        if rng.random() < epsilon:
            action = int(rng.integers(2))
        else:
            with torch.no_grad():
                action = int(q(torch.as_tensor(obs)[None]).argmax(1))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        i = step % size
        obs_buf[i], next_buf[i], act_buf[i], rew_buf[i], term_buf[i] = obs, next_obs, action, reward, terminated
        episode_return += float(reward)
        obs = next_obs
        if terminated or truncated:
            returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()
        done = step + 1
        if done > s["learning_starts"] and done % s["train_every"] == 0:
            for _ in range(s["gradient_steps"]):
                idx = rng.integers(min(done, size), size=s["batch"])
                o, o2 = torch.as_tensor(obs_buf[idx]), torch.as_tensor(next_buf[idx])
                with torch.no_grad():
                    y = torch.as_tensor(rew_buf[idx]) + s["gamma"] * (1 - torch.as_tensor(term_buf[idx])) * \
                        target(o2).max(1).values
                pred = q(o).gather(1, torch.as_tensor(act_buf[idx])[:, None]).squeeze(1)
                loss = F.smooth_l1_loss(pred, y)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(q.parameters(), s["max_grad_norm"])
                optimizer.step()
        if done % s["target_update"] == 0:
            target.load_state_dict(q.state_dict())
    env.close()
    return {"episodes": len(returns), "last_return": float(np.mean(returns[-10:])) if returns else 0.0}


def env_only(steps: int, seed: int) -> float:
    """Seconds of ``steps`` CartPole-v1 steps with random actions, resets included: the environment's share."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        if terminated or truncated:
            env.reset()
    seconds = time.perf_counter() - start
    env.close()
    return seconds


def _nnexp_overrides(steps: int) -> list[str]:
    return ["experiment=dqn_cartpole", f"agent.total_steps={steps}", f"agent.eval_every={steps}",
            "agent.eval_episodes=1", "agent.final_eval_episodes=0", "agent.stop_after=0", "trainer.seed=0",
            "trainer.progress=none"]


def _nnexp_run(overrides: list[str], run_dir: Path, compose: Callable, cfg=None) -> dict:  # noqa: ANN001
    """``nnexp.run.run`` on the config of ``overrides`` (``cfg``: composed already, outside the timing)."""
    from nnexp.context import RunContext
    from nnexp.run import run

    cfg = compose(overrides) if cfg is None else cfg
    choices = {"agent": str(cfg.agent._target_).rsplit(".", 1)[1].lower()}  # nnexp.rl.pg.PPO -> ppo
    with contextlib.redirect_stdout(io.StringIO()):
        summary = run(cfg, RunContext(run_dir, tuple(overrides), choices))
    if not summary.status.trained:
        raise RuntimeError(f"nnexp run {overrides}: {summary.status} {summary.message}")
    return summary.to_dict()


def case(quick: bool, repeats: int, root: Path, row: Callable, compose: Callable) -> list[dict]:
    steps = QUICK_STEPS if quick else STEPS
    torch.set_num_threads(1)
    overrides = _nnexp_overrides(steps)
    cfg, cfg_runs = compose(overrides), [0]

    def nnexp_side() -> float:
        cfg_runs[0] += 1
        start = time.perf_counter()
        _nnexp_run(overrides, root / f"nnexp{cfg_runs[0]}", compose, cfg)
        return time.perf_counter() - start

    def hand_side() -> float:
        start = time.perf_counter()
        hand_dqn(steps, seed=0)
        return time.perf_counter() - start

    sides = {"nnexp": nnexp_side, "hand": hand_side}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for go in sides.values():
        go()  # warm-up: first-call costs (imports, kernels)
    for r in range(repeats):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            times[name].append(sides[name]())
    env_s = statistics.median(env_only(steps, seed=0) for _ in range(max(1, repeats)))
    ours, theirs = statistics.median(times["nnexp"]), statistics.median(times["hand"])
    per_step = (ours - theirs) / steps * 1e6
    rows = [row("R1", f"DQN on CartPole-v1, {steps:,} steps at experiment=dqn_cartpole's settings, 1 thread: "
                      "whole run (process start-up excluded)", ours, theirs, ours / theirs, "<= 1.10",
                ours / theirs <= 1.10,
                f"reference: a minimal hand-written DQN loop (numpy buffer, no logging); the environment alone "
                f"takes {env_s:.2f} s of it ({env_s / theirs:.0%} of the hand loop), so the loops' own costs are "
                f"nnexp {ours - env_s:.2f} s, hand {theirs - env_s:.2f} s; nnexp's extra {per_step:.1f} µs per "
                f"step; rounds nnexp {min(times['nnexp']):.2f}-{max(times['nnexp']):.2f} s, hand "
                f"{min(times['hand']):.2f}-{max(times['hand']):.2f} s")]
    for name, args in (list(PRESETS.items())[:1] if quick else PRESETS.items()):
        extra = ["agent.total_steps=2000", "agent.eval_every=1000"] if quick else []
        summary = _nnexp_run([*args, "trainer.seed=0", "trainer.progress=none", *extra],
                             root / f"preset{list(PRESETS).index(name)}", compose)
        rl, final = summary["rl"], summary["final"]
        history = metrics(Path(summary["run_dir"]))
        before = [0.0] + [r["env_steps"] for r in history[:-1]]  # each round's steps before it
        rounds = zip(before, history, strict=True)
        learning = sum((r["env_steps"] - before) / r["steps_per_second"] for before, r in rounds
                       if r["steps_per_second"])
        speed = rl["env_steps"] / learning if learning else None
        reached = rl.get("seconds_to_threshold")
        rows.append(row("R1", f"{name}, seed 0: environment steps per second of learning", speed, None, None,
                        "reported", None,
                        f"{rl['env_steps']:,} steps, {summary['wall_seconds']:.1f} s wall; threshold 475 "
                        + (f"first reached after {rl['steps_to_threshold']:,} steps, {reached:.1f} s (learning and "
                           f"evaluations)" if reached is not None else "not reached")
                        + f"; final eval/return {final.get('eval/return')}", value_unit="steps/s"))
    return rows

