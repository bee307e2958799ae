"""Model-based control (agent=mpc, nnexp/rl/mpc.py) through the real entry point: the run folder, the curves on
the environment-step axis, both planners, a continuous action, exact resume after a kill, bad keys; and the
parts it plans with: the reward functions (nnexp/rl/rewards.py) against Gymnasium's own, and planning with the
true dynamics."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import read_summary, train_rows
from test_agents import _rows, _scalars, _without_clock, kill_then_interrupt, start_agent
from torch import nn

from nnexp.rl.envs import spaces as spaces_of
from nnexp.rl.mpc import MPC
from nnexp.rl.rewards import REWARDS

# a few hundred steps and small plans: the path, not the learning (experiment=mbrl_cartpole learns)
MPC_ARGS = ["agent=mpc", "regularizer=none", "model.hidden=[16]", "agent.total_steps=300", "agent.eval_every=100",
            "agent.random_steps=100", "agent.refit_every=50", "agent.fit_epochs=2", "agent.horizon=5",
            "agent.candidates=16", "agent.elites=4", "agent.eval_episodes=2", "agent.final_eval_episodes=2",
            "agent.stop_after=0", "trainer.progress=none", "trainer.threads=1"]
ROUND_TAGS = ("train/model_loss", "train/model_loss_new", "eval/return", "eval/return_std", "plan/return",
              "steps_per_second", "train/episodic_return", "best/eval/return")


@pytest.mark.parametrize("planner, choose", [("random", "mean"), ("random", "best"), ("cem", "mean"),
                                             ("cem", "best")])
def test_mpc_plans_in_cartpole_and_writes_a_run_folder(run_cli, tmp_path, planner, choose):
    code, out, err = run_cli("train", *MPC_ARGS, f"agent.planner={planner}", f"agent.choose={choose}",
                             "hydra.run.dir=run")
    assert code == 0, err
    run = tmp_path / "run"
    s = read_summary(run)
    assert s["status"] == "completed" and s["epochs_run"] == 3
    assert s["rl"]["env"] == "CartPole-v1" and s["rl"]["algorithm"] == "mpc" and s["rl"]["env_steps"] == 300
    assert s["rl"]["threshold"] == 475.0 and s["eval"]["episodes"] == 2 and s["eval"]["return"] >= 8
    rows = _rows(run)
    assert [r["env_steps"] for r in rows] == ["100", "200", "300"]
    # refits at 100 (the first, after the random steps), 150, 200, 250, 300: every round has its losses
    assert all(float(r["train/model_loss"]) > 0 and float(r["train/model_loss_new"]) > 0 for r in rows)
    assert rows[0]["plan/return"] == "" and 0 < float(rows[1]["plan/return"]) <= sum(0.99 ** t for t in range(5))
    # after the first fit its error on steps it has not seen is far below an unfitted model's
    assert float(rows[-1]["train/model_loss_new"]) < 0.5 * float(rows[0]["train/model_loss_new"])
    curves = _scalars(run)
    for tag in ROUND_TAGS:
        assert curves.get(tag), f"no {tag} curve"
    assert [step for step, _ in curves["eval/return"]] == [100, 200, 300]  # the environment-step axis
    assert [step for step, _ in curves["train/model_loss"]] == [100, 200, 300]
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert set(best) == {"model", "norm"} and best["norm"]["x_std"].shape == (6,)  # 4 state + 2 one-hot
    assert not torch.equal(best["norm"]["y_std"], torch.ones(4))  # the data's, not the initial ones
    assert "Final evaluation" in out


def test_mpc_with_a_continuous_action_on_pendulum(run_cli, tmp_path):
    code, _, err = run_cli("train", *MPC_ARGS, "agent.env=Pendulum-v1", "agent.max_steps=50",
                           "agent.planner=cem", "agent.choose=best", "hydra.run.dir=run")
    assert code == 0, err
    s = read_summary(tmp_path / "run")
    assert s["status"] == "completed" and s["rl"]["env"] == "Pendulum-v1" and s["rl"]["threshold"] is None
    assert s["eval"]["episode_length"] == 50 and -16.3 * 50 <= s["eval"]["return"] < 0  # the cost's range
    model = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert model["norm"]["x_mean"].shape == (4,)  # cos, sin, velocity and the raw torque
    actions = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["agent"]["buffer"]["actions"]
    assert actions.shape == (300, 1) and actions.abs().max() <= 2.0 and actions.std() > 0.3


def _start(run_dir: Path, *args: str) -> subprocess.Popen:
    return start_agent(run_dir, *MPC_ARGS, *args)


LONGER = ["agent.total_steps=1500", "agent.eval_every=300", "agent.planner=cem", "agent.candidates=32",
          "agent.horizon=10"]


def test_mpc_killed_then_stopped_mid_round_resumes_as_if_never_stopped(tmp_path):
    """SIGKILL after a round's checkpoint, then Ctrl-C inside a round: the same model, standardization, buffer,
    curves and final evaluation as a run never stopped (the plans draw from the agent's own generator)."""
    reference = tmp_path / "reference"
    proc = _start(reference, *LONGER)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()

    run = tmp_path / "stopped"
    kill_then_interrupt(run, lambda d, *a: _start(d, *LONGER, *a), ctrl_c_after=0.3)
    stopped = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert read_summary(run)["status"] == "interrupted"
    assert stopped["learn"]["round"]["steps"] > 0  # the position inside the round, not the round before
    proc = _start(run, *LONGER, "trainer.resume=auto")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    a, b = read_summary(reference), read_summary(run)
    assert b["resumed_from"]["env_steps"] > 0
    assert a["eval"] == b["eval"] and a["rl"] == b["rl"]
    assert _without_clock(_rows(reference)) == _without_clock(_rows(run))
    wa = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)
    wb = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(wa["model"]["model"][k], wb["model"]["model"][k]) for k in wa["model"]["model"])
    assert all(torch.equal(wa["model"]["norm"][k], wb["model"]["norm"][k]) for k in wa["model"]["norm"])
    assert torch.equal(wa["agent"]["buffer"]["actions"], wb["agent"]["buffer"]["actions"])
    curves_a, curves_b = _scalars(reference), _scalars(run)
    for tag in ("eval/return", "train/episodic_return", "train/model_loss", "train/model_loss_new", "plan/return"):
        assert curves_a[tag] == curves_b[tag], tag


@pytest.mark.parametrize("override, words", [
    ("agent.planner=foo", "agent.planner='foo' is out of range; allowed: one of random, cem"),
    ("agent.elites=17", "agent: elites=17 is more than candidates=16"),
    ("agent.target=state", "agent.target='state' is out of range; allowed: one of delta, next"),
    ("agent.horizon=0", "agent.horizon=0 is out of range; allowed: an integer >= 1"),
    ("agent.choose=first", "agent.choose='first' is out of range; allowed: one of mean, best"),
    ("agent.env=Pendulum-v1", "choose=mean averages the sequences that begin with each action: it needs discrete"),
    ("agent.candidates=1", "agent.candidates=1 is out of range; allowed: an integer >= 2"),
    ("agent.epsilon_start=0.5", "agent.epsilon_start"),
])
def test_a_bad_mpc_key_is_one_line_and_exit_2_before_torch(tmp_path, override, words):
    (row,) = train_rows([[*MPC_ARGS, override]], cwd=tmp_path)
    assert row["code"] == 2 and not row["torch"] and not row["outputs"], row
    lines = row["err"].strip().splitlines()
    assert len(lines) == 1 and words in lines[0], row["err"]


# -- the parts it plans with ------------------------------------------------------------------------------------

def _random_state(name: str, env: gym.Env, rng: np.random.Generator) -> np.ndarray | None:
    """Put the environment in a random state near where its episodes end (so ends are tested, not only
    steps); the observation of it, or None to keep the one the environment gave."""
    u = env.unwrapped
    if name == "MountainCar-v0":
        u.state = np.array([rng.uniform(0.3, 0.55), rng.uniform(-0.02, 0.07)])
        return np.array(u.state, dtype=np.float32)
    if name == "Acrobot-v1":
        u.state = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-np.pi, np.pi), rng.uniform(-4, 4),
                            rng.uniform(-9, 9)])
        return u._get_ob().astype(np.float32)
    return None


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_each_reward_function_is_gymnasiums_on_real_transitions(name):
    """The reward and the end the planner predicts from (obs, action, next obs) are the environment's own, on
    transitions of random actions (some from states near the end, so both kinds of step are checked)."""
    env, rng = gym.make(name), np.random.default_rng(0)
    env.action_space.seed(0)
    rows = []
    obs = env.reset(seed=0)[0]
    for _ in range(3000):
        placed = _random_state(name, env, rng) if rng.random() < 0.1 else None
        obs = placed if placed is not None else obs
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append((obs, action, next_obs, reward, terminated))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    o = torch.as_tensor(np.stack([r[0] for r in rows]), dtype=torch.float32)
    a = torch.as_tensor(np.stack([r[1] for r in rows]))
    n = torch.as_tensor(np.stack([r[2] for r in rows]), dtype=torch.float32)
    reward, done = REWARDS[name](o, a, n)
    true_reward = torch.as_tensor([r[3] for r in rows], dtype=torch.float32)
    true_done = torch.as_tensor([float(r[4]) for r in rows])
    assert torch.allclose(reward, true_reward, atol=1e-3), (reward - true_reward).abs().max()
    assert torch.equal(done, true_done)
    if name != "Pendulum-v1":
        assert 0 < true_done.sum() < len(rows)  # ends and steps that go on: both checked


def _true_cartpole(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """CartPole-v1's equations of motion (Euler, 0.02 s), batched: what a perfect model would predict."""
    gravity, cart, pole, half, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    x, x_dot, theta, theta_dot = obs.unbind(1)
    force = torch.where(action.long() == 1, force_mag, -force_mag)
    cos, sin = torch.cos(theta), torch.sin(theta)
    temp = (force + pole * half * theta_dot ** 2 * sin) / (cart + pole)
    theta_acc = (gravity * sin - cos * temp) / (half * (4.0 / 3.0 - pole * cos ** 2 / (cart + pole)))
    x_acc = temp - pole * half * theta_acc * cos / (cart + pole)
    return torch.stack([x + tau * x_dot, x_dot + tau * x_acc, theta + tau * theta_dot, theta_dot + tau * theta_acc], 1)


def _agent_with_true_dynamics(choose: str, planner: str = "random", seed: int = 0) -> MPC:
    env = gym.make("CartPole-v1")
    sp = spaces_of(env)
    env.close()
    net = nn.Linear(6, 4)
    agent = MPC(env="CartPole-v1", max_steps=None, total_steps=1000, eval_every=500, eval_episodes=1,
                final_eval_episodes=0, threshold=None, stop_after=0, restore_best=False, gamma=0.99, target="delta",
                buffer_size=100, random_steps=10, refit_every=10, fit_epochs=1, batch_size=8, planner=planner,
                choose=choose, horizon=20, candidates=200, cem_iterations=3, elites=20,
                networks={"model": net}, optimizer=torch.optim.SGD(net.parameters(), lr=0.0), spaces=sp,
                device=torch.device("cpu"), seed=seed)
    agent.predict = _true_cartpole  # a perfect model: the planner alone is tested
    return agent


def test_the_true_dynamics_match_gymnasiums_cartpole():
    """The hand-written equations the planning tests use are the environment's (else those tests test nothing)."""
    env = gym.make("CartPole-v1")
    obs = env.reset(seed=3)[0]
    for t in range(200):
        action = t % 3 == 0
        nxt = env.step(int(action))[0]
        predicted = _true_cartpole(torch.as_tensor(obs)[None].double(), torch.tensor([int(action)]))[0]
        assert np.allclose(predicted.numpy(), nxt, atol=1e-5)
        obs = nxt if abs(nxt[2]) < 0.2 and abs(nxt[0]) < 2.4 else env.reset()[0]
    env.close()


def test_planning_with_the_true_dynamics_pushes_under_a_falling_pole():
    """From a pole falling right (left) the plan pushes the cart right (left), for every state of the batch."""
    agent = _agent_with_true_dynamics("mean")
    right = torch.tensor([[0.0, 0.0, 0.1, 0.5], [1.0, -0.3, 0.15, 0.2], [-1.0, 0.3, 0.05, 0.8]])
    left = right * torch.tensor([-1.0, -1.0, -1.0, -1.0])
    first, score = agent.plan(torch.cat([right, left]))
    assert first.tolist() == [1, 1, 1, 0, 0, 0]
    assert (score > 0).all() and (score <= sum(0.99 ** t for t in range(20)) + 1e-4).all()


@pytest.mark.parametrize("planner", ["random", "cem"])
def test_planning_with_the_true_dynamics_balances_the_pole(planner):
    """With a perfect model, re-planning every step (choose=mean) keeps the pole up for all 500 steps from each
    start; taking the single best sequence's first action does worse (its ties are broken at random and the
    cart drifts off the track), which is why choose=mean is the default for discrete actions."""
    from nnexp.rl.envs import play

    seeds = [100, 101, 102, 103]
    returns, _ = play("mpc", "CartPole-v1", None, seeds, _agent_with_true_dynamics("mean", planner).greedy)
    assert returns.tolist() == [500.0] * len(seeds)
    if planner == "random":
        best, _ = play("mpc", "CartPole-v1", None, seeds, _agent_with_true_dynamics("best", planner).greedy)
        assert best.mean() < 475 and math.isfinite(best.mean())
