"""Policy-gradient agents (nnexp/rl/pg.py: REINFORCE with and without a baseline, PPO): their loops end to end
through the CLI, the TensorBoard tags, exact resume after a kill, bad keys, and the estimators themselves
checked against a direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import read_summary, train_rows
from test_agents import _rows, _scalars, _without_clock, kill_then_interrupt, start_agent
from torch import nn

from nnexp.rl.envs import Spaces
from nnexp.rl.pg import PPO, Reinforce

# a few hundred steps: the path, not the learning (experiment=pg_cartpole learns; tests/test_presets.py)
SMALL = ["regularizer=none", "model.hidden=[16]", "agent.total_steps=600", "agent.eval_every=200",
         "agent.eval_episodes=2", "agent.final_eval_episodes=3", "trainer.progress=none", "trainer.threads=1"]
REINFORCE = ["agent=reinforce", *SMALL, "agent.episodes_per_update=2"]
PPO_ARGS = ["agent=ppo", *SMALL, "agent.rollout_steps=128", "agent.minibatch_size=32", "agent.update_epochs=2"]
COMMON_TAGS = ("train/loss", "train/policy_loss", "train/entropy", "eval/return", "eval/return_std", "lr",
               "train/episodic_return", "train/episode_length", "steps_per_second", "best/eval/return")


@pytest.mark.parametrize("baseline", [True, False])
def test_reinforce_learns_in_its_environment_and_logs_the_gradients_variance(run_cli, tmp_path, baseline):
    code, out, err = run_cli("train", *REINFORCE, f"agent.baseline={baseline}", "hydra.run.dir=run")
    assert code == 0, err
    run = tmp_path / "run"
    s = read_summary(run)
    assert s["status"] == "completed" and s["epochs_run"] == 3 and s["rl"]["algorithm"] == "reinforce"
    assert s["rl"]["env_steps"] == 600 and s["eval"]["episodes"] == 3 and s["eval"]["return"] >= 8
    weights = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert set(weights) == ({"policy", "value"} if baseline else {"policy"})  # no baseline: no value network
    rows = _rows(run)
    assert float(rows[0]["train/grad_var"]) > 0
    assert ("train/value_loss" in rows[0]) is baseline and ("train/grad_var_no_baseline" in rows[0]) is baseline
    curves = _scalars(run)
    tags = COMMON_TAGS + (("train/grad_var", "train/value_loss", "train/grad_var_no_baseline") if baseline
                          else ("train/grad_var",))
    for tag in tags:
        assert curves.get(tag), f"no {tag} curve"
    assert [step for step, _ in curves["eval/return"]] == [200, 400, 600]
    assert "Final evaluation" in out


def test_ppo_learns_in_its_environment_and_writes_its_tags(run_cli, tmp_path):
    code, _, err = run_cli("train", *PPO_ARGS, "hydra.run.dir=run")
    assert code == 0, err
    run = tmp_path / "run"
    s = read_summary(run)
    assert s["status"] == "completed" and s["rl"]["algorithm"] == "ppo" and s["rl"]["env_steps"] == 600
    rows = _rows(run)
    assert rows[0]["train/approx_kl"] != "" and 0 <= float(rows[0]["train/clip_fraction"]) <= 1
    curves = _scalars(run)
    for tag in (*COMMON_TAGS, "train/value_loss", "train/approx_kl", "train/clip_fraction"):
        assert curves.get(tag), f"no {tag} curve"


def test_ppo_and_reinforce_reach_the_threshold_and_stop(run_cli, tmp_path):
    """A low threshold the first evaluations pass: the run stops early and says when it got there."""
    code, _, err = run_cli("train", *PPO_ARGS, "agent.threshold=8", "agent.stop_after=2", "hydra.run.dir=run")
    assert code == 0, err
    s = read_summary(tmp_path / "run")
    assert s["status"] == "early_stopped" and s["rl"]["env_steps"] == 400 and s["rl"]["steps_to_threshold"] == 200


# -- the estimators, against a direct computation -----------------------------------------------------------
def _agent(cls, **keys):
    spaces = Spaces(obs_dim=3, actions=2, action_dim=1)
    torch.manual_seed(0)
    nets = {name: nn.Sequential(nn.Linear(i, 8), nn.Tanh(), nn.Linear(8, o))
            for name, (i, o) in cls.networks(spaces, keys).items()}
    optimizer = torch.optim.SGD([p for n in nets.values() for p in n.parameters()], lr=0.0)
    common = dict(env="CartPole-v1", max_steps=None, total_steps=1000, eval_every=100, eval_episodes=1,
                  final_eval_episodes=0, threshold=None, stop_after=0, restore_best=False, gamma=0.9)
    return cls(**common, **keys, networks=nets, optimizer=optimizer, spaces=spaces, device=torch.device("cpu"),
               seed=0)


REINFORCE_KEYS = dict(baseline=True, episodes_per_update=3, value_coef=0.5, value_steps=1, entropy_coef=0.0,
                      max_grad_norm=None)
PPO_KEYS = dict(rollout_steps=8, update_epochs=1, minibatch_size=8, clip=0.2, gae_lambda=0.5, value_coef=0.5,
                entropy_coef=0.0, normalize_advantages=False, target_kl=None, max_grad_norm=None)


def test_the_return_to_go_restarts_at_each_episode():
    agent = _agent(Reinforce, **REINFORCE_KEYS)
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    ends = torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0])
    expected = [1 + 0.9 * 2, 2, 3 + 0.9 * 4 + 0.81 * 5, 4 + 0.9 * 5, 5]
    assert agent.returns_to_go(rewards, ends).tolist() == pytest.approx(expected)


def test_gae_cuts_at_endings_and_bootstraps_a_truncated_step():
    agent = _agent(PPO, **PPO_KEYS)
    g, lam = 0.9, 0.5
    r = torch.tensor([1.0, 1.0, 1.0, 1.0])
    v = torch.tensor([0.5, 0.4, 0.3, 0.2])
    v_next = torch.tensor([0.4, 7.0, 0.2, 0.1])  # step 1 ends by termination: its V(s') must not count
    term, trunc = torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.0, 1.0])
    d = [1 + g * 0.4 - 0.5, 1 - 0.4, 1 + g * 0.2 - 0.3, 1 + g * 0.1 - 0.2]  # step 3: truncated, bootstrapped
    expected = [d[0] + g * lam * d[1], d[1], d[2] + g * lam * d[3], d[3]]
    assert agent.advantages(r, v, v_next, term, trunc).tolist() == pytest.approx(expected)


def test_the_logged_variance_is_that_of_the_one_episode_gradients():
    """train/grad_var against gradients taken one episode at a time, by separate backward passes; with the
    baseline, train/grad_var_no_baseline the same episodes weighted by G_t alone."""
    agent = _agent(Reinforce, **REINFORCE_KEYS)
    rng = np.random.default_rng(1)
    for length in (4, 2, 5):
        for t in range(length):
            agent.rollout.add(rng.normal(size=3), int(rng.integers(2)), 1.0, rng.normal(size=3), t == length - 1,
                              False)
    batch = agent.rollout.tensors(torch.device("cpu"))
    losses = agent._update(batch)  # lr 0: the weights stay as they were

    returns = agent.returns_to_go(batch["rewards"], batch["terminated"])
    baseline = agent.value(batch["obs"]).squeeze(1).detach()

    def variance(weights: torch.Tensor) -> float:
        grads, start = [], 0
        for length in (4, 2, 5):
            sl = slice(start, start + length)
            logp = torch.log_softmax(agent.policy(batch["obs"][sl]), 1).gather(1, batch["actions"][sl, None])
            loss = -(logp.squeeze(1) * weights[sl]).sum()
            grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, agent.policy.parameters())]))
            start += length
        return float(torch.stack(grads).var(0).sum())

    assert float(losses["train/grad_var"]) == pytest.approx(variance(returns - baseline), rel=1e-5)
    assert float(losses["train/grad_var_no_baseline"]) == pytest.approx(variance(returns), rel=1e-5)


# -- resume -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    # rounds of 1,500 steps (a third of a second or more): the Ctrl-C lands inside one, not between two
    [*PPO_ARGS, "agent.total_steps=6000", "agent.eval_every=1500", "agent.rollout_steps=200"],
    [*REINFORCE, "agent.total_steps=6000", "agent.eval_every=1500", "agent.episodes_per_update=3"],
], ids=["ppo", "reinforce"])
def test_killed_mid_round_resumes_as_if_never_stopped(tmp_path, args):
    """SIGKILL after a round's checkpoint, then Ctrl-C inside a rollout: continued from each, the run ends with
    the same weights, curves and final evaluation as one never stopped (the rollout in progress is kept)."""
    reference = tmp_path / "reference"
    proc = start_agent(reference, *args)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    run = tmp_path / "stopped"
    kill_then_interrupt(run, lambda d, *a: start_agent(d, *args, *a), ctrl_c_after=0.2)
    stopped = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert stopped["learn"]["round"]["steps"] > 0  # stopped inside a round
    if "agent=ppo" in args:  # the rollout in progress is in the checkpoint (REINFORCE's: whole episodes)
        assert stopped["agent"]["rollout"]["size"] == stopped["learn"]["env_steps"] % 200
    proc = start_agent(run, *args, "trainer.resume=auto")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    a, b = read_summary(reference), read_summary(run)
    assert b["resumed_from"]["env_steps"] > 0 and a["eval"] == b["eval"]
    assert _without_clock(_rows(reference)) == _without_clock(_rows(run))
    wa = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)["model"]["policy"]
    wb = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]["policy"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert _scalars(reference)["train/policy_loss"] == _scalars(run)["train/policy_loss"]


# -- bad keys -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    ([*REINFORCE, "agent.episodes_per_update=1"], "agent.episodes_per_update=1 is out of range; allowed: an integer >= 2"),
    ([*REINFORCE, "agent.baseline=maybe"], "agent.baseline"),
    ([*REINFORCE, "agent.env=Pendulum-v1"], "REINFORCE's policy is categorical"),
    ([*PPO_ARGS, "agent.minibatch_size=256"], "minibatch_size=256 is more than rollout_steps=128"),
    ([*PPO_ARGS, "agent.clip=0"], "agent.clip=0 is out of range; allowed: a number in (0, 1]"),
    ([*PPO_ARGS, "agent.gae_lambda=1.5"], "agent.gae_lambda=1.5 is out of range"),
    ([*PPO_ARGS, "agent.baseline=true"], "agent.baseline"),
    # a key it does not read, with no word of a key of its own that it lacks (REINFORCE has no batch_size)
    ([*REINFORCE, "trainer.batch_size=3"], "does not read trainer.batch_size (docs/ARCHITECTURE.md"),
])
def test_a_bad_key_is_one_line_and_exit_2_before_torch(tmp_path, args, words):
    (row,) = train_rows([args], cwd=tmp_path)
    assert row["code"] == 2 and not row["torch"] and not row["outputs"], row
    lines = row["err"].strip().splitlines()
    assert len(lines) == 1 and words in lines[0], row["err"]
