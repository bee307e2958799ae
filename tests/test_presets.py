"""Experiment presets: each runs from `nnexp train experiment=NAME` and its claims PASS for seeds 0, 1, 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, compose_cfg
from omegaconf import OmegaConf

from nnexp.checks import check_sweep

PRESETS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


def _claims(summaries: list[dict]) -> list[dict]:
    expectations = list(dict.fromkeys(e for s in summaries for e in s.get("expect", [])))
    assert expectations, "a preset declares what it expects"
    return check_sweep(expectations, summaries)


def _summaries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("outputs/multirun/*/*/*/summary.json"))]


def test_every_preset_names_its_command_and_claim():
    for name in PRESETS:
        text = (REPO / "conf" / "experiment" / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_\n# nnexp train experiment=" + name), name
        assert "Claim" in text or name == "xor_mlp", name


@pytest.mark.parametrize(("args", "jobs"), [
    (["experiment=xor"], 9),
    (["-m", "experiment=overfitting", "trainer.seed=0,1,2"], 3),
    (["experiment=optimizers"], 9),
    (["-m", "experiment=digits_fast", "trainer.seed=0,1,2"], 3),
    # the two longest (about 3.5 minutes each on 2 cores) with the long tests, so the default run stays short
    pytest.param(["experiment=mitigations"], 18, marks=pytest.mark.slow),
    (["experiment=vanishing_gradients"], 9),
    pytest.param(["experiment=lstm_vs_transformer"], 6, marks=pytest.mark.slow),
    pytest.param(["experiment=cnn_vs_mlp"], 6, marks=pytest.mark.slow),
    pytest.param(["experiment=rl_approximators"], 12, marks=pytest.mark.slow),  # about 1 minute, collection included
    pytest.param(["experiment=resnet_depth"], 12, marks=pytest.mark.slow),  # about 1.5 minutes
    pytest.param(["experiment=lstm_vs_rnn"], 12, marks=pytest.mark.slow),  # about 2 minutes
    pytest.param(["experiment=dqn_cartpole"], 3, marks=pytest.mark.slow),  # about 2 minutes
    pytest.param(["experiment=pg_cartpole"], 9, marks=pytest.mark.slow),  # about 1.5 minutes
    pytest.param(["experiment=mbrl_cartpole"], 6, marks=pytest.mark.slow),  # about 5.5 minutes
])
def test_preset_claims_hold_for_seeds_0_1_2(run_cli, tmp_path, args, jobs):
    code, out, err = run_cli("train", *args, "trainer.progress=none")
    assert code == 0, err
    summaries = _summaries(tmp_path)
    assert len(summaries) == jobs and all(s["status"] != "failed" for s in summaries)
    assert {s["seed"] for s in summaries} == {0, 1, 2}
    for claim in _claims(summaries):
        assert claim["pass"] is True, claim
        assert set(claim["per_seed"]) == {"0", "1", "2"}, claim


@pytest.mark.parametrize(("preset", "arms"), [("mitigations", "mitigation"), ("vanishing_gradients", "deep_net"),
                                             ("rl_approximators", "rl"), ("pg_cartpole", "pg"),
                                             ("mbrl_cartpole", "mbrl")])
def test_arm_presets_sweep_every_arm_file_and_claim_about_each(preset, arms):
    """The arms of a preset are the files of its folder: all swept, each named in a claim, each a comment."""
    files = sorted(p.stem for p in (REPO / "conf" / "experiment" / arms).glob("*.yaml"))
    text = (REPO / "conf" / "experiment" / f"{preset}.yaml").read_text()
    swept = yaml.safe_load(text)["hydra"]["sweeper"]["params"][f"+experiment/{arms}"].split(",")
    assert sorted(swept) == files
    claims = "\n".join(yaml.safe_load(text)["expect"])
    assert all(f"[experiment/{arms}={arm}]" in claims for arm in files)
    for arm in files:
        assert (REPO / "conf" / "experiment" / arms / f"{arm}.yaml").read_text().startswith(
            f"# @package _global_\n# An arm of experiment={preset}")


@pytest.mark.parametrize(("arm", "key", "value"), [
    ("none", "model.dropout", 0.0), ("l2", "optimizer.weight_decay", 0.001), ("l1", "regularizer.l1", 0.0001),
    ("dropout", "model.dropout", 0.7), ("early_stopping", "regularizer.early_stopping.enabled", True),
    ("smaller_model", "model.hidden", [64]),
])
def test_each_mitigation_arm_changes_one_thing(arm, key, value):
    base = compose_cfg(["experiment=mitigations", "+experiment/mitigation=none"])
    cfg = compose_cfg(["experiment=mitigations", f"+experiment/mitigation={arm}"])
    assert OmegaConf.select(cfg, key) == value
    plain, changed = OmegaConf.to_container(base, resolve=True), OmegaConf.to_container(cfg, resolve=True)
    differ = {k for k in plain if plain[k] != changed[k]}
    assert differ <= {"model", "regularizer", "optimizer"}  # nothing else: same data, budget, seed
    assert base.model.hidden == [512, 512] and base.dataset.train_fraction == 0.3 and base.trainer.epochs == 200


def test_resnet_depth_claims_select_its_jobs(run_cli, tmp_path):
    """Its sweep labels the jobs model.skip=True/False (Hydra's spelling): every claim still finds both sides."""
    code, _, err = run_cli("train", "experiment=resnet_depth", "trainer.seed=0", "trainer.epochs=1",
                           "trainer.progress=none", "trainer.threads=1")
    assert code == 0, err
    summaries = _summaries(tmp_path)
    assert sorted((s["overrides"][0], s["overrides"][1]) for s in summaries) == [
        ("model.depth=32", "model.skip=False"), ("model.depth=32", "model.skip=True"),
        ("model.depth=8", "model.skip=False"), ("model.depth=8", "model.skip=True")]
    claims = _claims(summaries)
    assert len(claims) == 4 and all(None not in claim["values"]["0"] for claim in claims), claims
    assert claims[-1]["expect"].startswith("num_params") and claims[-1]["pass"] is True  # twins: same weights


def test_lstm_vs_rnn_claims_select_its_jobs_and_read_the_first_step_gradient(run_cli, tmp_path):
    """One short epoch of each job (seed 0): every claim finds its jobs, and the gradient claim has numbers."""
    code, _, err = run_cli("train", "experiment=lstm_vs_rnn", "trainer.seed=0", "trainer.epochs=1",
                           "dataset.n_samples=100", "trainer.progress=none", "trainer.threads=1")
    assert code == 0, err
    summaries = _summaries(tmp_path)
    assert sorted((s["choices"]["model"], s["overrides"][1]) for s in summaries) == [
        ("lstm", "dataset.length=10"), ("lstm", "dataset.length=50"),
        ("rnn", "dataset.length=10"), ("rnn", "dataset.length=50")]
    assert all(s["final"]["grad_norm/first_step"] > 0 for s in summaries)
    claims = _claims(summaries)
    assert len(claims) == 7 and all(claim["pass"] is not None for claim in claims), claims
    gradient = claims[-1]
    assert gradient["expect"].startswith("100 * final.grad_norm/first_step[model=rnn")
    rnn_50 = next(s for s in summaries if s["choices"]["model"] == "rnn" and "dataset.length=50" in s["overrides"])
    assert gradient["values"]["0"][0] == pytest.approx(100 * rnn_50["final"]["grad_norm/first_step"])


def test_dqn_cartpole_claims_the_final_evaluation_of_each_seed(run_cli, tmp_path):
    """A few hundred steps of each seed: the claim finds every job and reads its final evaluation."""
    code, _, err = run_cli("train", "experiment=dqn_cartpole", "agent.total_steps=400", "agent.eval_every=200",
                           "agent.eval_episodes=2", "agent.final_eval_episodes=2", "trainer.progress=none")
    assert code == 0, err
    summaries = _summaries(tmp_path)
    assert sorted(s["seed"] for s in summaries) == [0, 1, 2]
    assert all(s["choices"]["agent"] == "dqn" and s["eval"]["episodes"] == 2 for s in summaries)
    (claim,) = _claims(summaries)
    assert claim["expect"] == "eval.return >= 475" and claim["pass"] is False  # 400 steps do not balance the pole
    assert set(claim["per_seed"]) == {"0", "1", "2"}


def test_pg_cartpole_claims_select_each_arm_and_read_the_gradient_variance(run_cli, tmp_path):
    """A few hundred steps of each arm and seed: every claim finds its jobs and reads a number on both sides."""
    code, _, err = run_cli("train", "experiment=pg_cartpole", "agent.total_steps=400", "agent.eval_every=200",
                           "agent.eval_episodes=2", "agent.final_eval_episodes=2", "agent.threshold=9",
                           "trainer.progress=none")
    assert code == 0, err
    summaries = _summaries(tmp_path)
    assert sorted(s["choices"]["agent"] for s in summaries) == ["ppo"] * 3 + ["reinforce"] * 6
    baseline = [s for s in summaries if s["choices"].get("experiment/pg") == "reinforce_baseline"]
    assert all(s["final"]["train/grad_var_no_baseline"] > 0 for s in baseline)
    claims = {c["expect"]: c for c in _claims(summaries)}
    assert len(claims) == 4 and all(set(c["per_seed"]) == {"0", "1", "2"} for c in claims.values())
    for claim in claims.values():
        assert claim["values"] and all(None not in v for v in claim["values"].values()), claim


def test_mbrl_cartpole_claims_each_arm_of_each_seed(run_cli, tmp_path):
    """A few hundred steps of each arm and seed: every claim finds both arms of every seed; DQN, 400 steps in,
    balances nothing, so its claim fails and the steps-to-threshold comparison has no DQN side (N/A)."""
    code, _, err = run_cli("train", "experiment=mbrl_cartpole", "agent.total_steps=400", "agent.eval_every=200",
                           "agent.eval_episodes=2", "agent.final_eval_episodes=2", "trainer.progress=none")
    assert code == 0, err
    summaries = _summaries(tmp_path)
    assert sorted((s["choices"]["agent"], s["seed"]) for s in summaries) == [
        ("dqn", 0), ("dqn", 1), ("dqn", 2), ("mpc", 0), ("mpc", 1), ("mpc", 2)]
    assert all(s["eval"]["episodes"] == 2 and s["rl"]["env_steps"] <= 400 for s in summaries)
    mpc_return, dqn_return, steps = _claims(summaries)
    assert mpc_return["expect"] == "eval.return[experiment/mbrl=mpc] >= 475"
    assert set(mpc_return["per_seed"]) == {"0", "1", "2"} and None not in mpc_return["per_seed"].values()
    assert dqn_return["pass"] is False and set(dqn_return["per_seed"]) == {"0", "1", "2"}
    assert steps["expect"].startswith("5 * rl.steps_to_threshold[experiment/mbrl=mpc]") and steps["pass"] is None


def test_mbrl_cartpole_dqn_arm_has_the_settings_of_dqn_cartpole():
    """The model-free side of the comparison is the DQN that experiment=dqn_cartpole shows solving the task."""
    arm = OmegaConf.to_container(compose_cfg(["experiment=mbrl_cartpole", "+experiment/mbrl=dqn"]), resolve=True)
    dqn = OmegaConf.to_container(compose_cfg(["experiment=dqn_cartpole"]), resolve=True)
    for group in ("agent", "model", "optimizer", "regularizer", "trainer"):
        assert arm[group] == dqn[group], group
    mpc = compose_cfg(["experiment=mbrl_cartpole", "+experiment/mbrl=mpc"])
    assert mpc.agent._target_ == "nnexp.rl.mpc.MPC" and mpc.agent.env == arm["agent"]["env"] == "CartPole-v1"
