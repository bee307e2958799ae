"""rl datasets: each of the four trains from the CLI and is evaluated in its environment; collection is
split by episode, cached by its config, and the scripted controllers are worth imitating."""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest
from conftest import read_summary
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nnexp.options.data import RL_ENVS

needs_gym = pytest.mark.skipif(importlib.util.find_spec("gymnasium") is None or
                               importlib.util.find_spec("pygame") is None,
                               reason="needs the rl extra: pip install -e '.[rl]'")
QUICK = ["trainer.epochs=2", "trainer.progress=none", "trainer.threads=1", "trainer.batch_size=64",
         "dataset.eval_every=1"]

# (dataset, its tiny size and model, the evaluation keys it must report)
CASES = [
    ("rl_policy", ["dataset.episodes=4", "dataset.max_steps=60", "dataset.eval_episodes=3", "model.hidden=[16]"],
     ["return", "return_std", "return_scripted", "return_random", "return_vs_scripted", "normalized_return"]),
    ("rl_model", ["dataset.episodes=4", "dataset.max_steps=60", "dataset.horizon=5", "model.hidden=[16]"],
     [f"rollout_error/k{k}" for k in range(1, 6)] + ["rollout_baseline/k5"]),
    ("rl_value", ["dataset.episodes=6", "model.hidden=[16]"], ["value_rmse", "value_mae", "value_spearman"]),
    ("rl_pixels", ["dataset.episodes=4", "model=lenet5", "model.fit=pad"],
     [f"state_{kind}/{name}" for kind in ("rmse", "nrmse") for name in ("x", "x_dot", "theta", "theta_dot")]),
]


@needs_gym
@pytest.mark.parametrize(("dataset", "args", "keys"), CASES, ids=[c[0] for c in CASES])
def test_each_rl_dataset_trains_and_is_evaluated_in_its_environment(run_cli, tmp_path, dataset, args, keys):
    run_dir = tmp_path / "run"
    code, out, err = run_cli("train", f"dataset={dataset}", *args, *QUICK, f"dataset.cache={tmp_path / 'cache'}",
                             f"hydra.run.dir={run_dir}")
    assert code == 0, err
    s = read_summary(run_dir)
    assert s["status"] == "completed" and set(keys) <= set(s["eval"])
    assert all(math.isfinite(s["eval"][k]) for k in keys)
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    for key in keys:  # every epoch (dataset.eval_every=1); the end's evaluation is the last epoch's
        assert [e.step for e in acc.Scalars(f"eval/{key}")][:2] == [1, 2]
    assert "In the environment" in out


@needs_gym
def test_cloned_policy_is_played_against_both_baselines(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "dataset=rl_policy", "dataset.episodes=10", "dataset.eval_episodes=4",
                           "model.hidden=[32]", "trainer.epochs=8", "trainer.progress=none", "trainer.threads=1",
                           "trainer.batch_size=128", f"dataset.cache={tmp_path / 'cache'}",
                           f"hydra.run.dir={run_dir}")
    assert code == 0, err
    e = read_summary(run_dir)["eval"]
    assert e["return_scripted"] == 500 and e["return_random"] < 50  # the same 4 starts for all three
    assert e["return"] > 4 * e["return_random"]  # 8 short epochs already beat chance by far
    assert e["return_vs_scripted"] == pytest.approx(e["return"] / 500)


@needs_gym
@pytest.mark.parametrize("env", RL_ENVS)
def test_scripted_controller_beats_random(env):
    from nnexp.data.rl_envs import ENVS, episode_seed, random_action, run_episodes

    seeds = [episode_seed(7, j, evaluation=True) for j in range(5)]
    scripted = run_episodes("test", env, None, seeds, lambda obs, which: [ENVS[env].scripted(o) for o in obs])
    rngs = [np.random.default_rng(j) for j in range(5)]
    import gymnasium

    space = gymnasium.make(env).action_space
    rand = run_episodes("test", env, None, seeds, lambda obs, which: [random_action(space, rngs[i]) for i in which])
    assert scripted.mean() > rand.mean() + 0.25 * abs(rand.mean())  # by a wide margin, in every environment
    if env == "CartPole-v1":  # balances the whole time limit from every start; random falls within ~50 steps
        assert scripted.min() == 500 and rand.max() < 100


@needs_gym
def test_episodes_not_steps_are_split(tmp_path):
    from nnexp.data import rl

    data = rl.rl_value(episodes=12, val_fraction=0.25, normalize=False, cache=str(tmp_path))
    arrays = rl.collect_cached("test", str(tmp_path), env="CartPole-v1", policy="random", epsilon=0.5, episodes=12,
                               max_steps=None, seed=0)
    train_rows = {row.tobytes() for row in data.train.x.numpy()}
    val_rows = {row.tobytes() for row in data.val.x.numpy()}
    sides = []
    for e in range(12):
        rows = {row.tobytes() for row in arrays["states"][arrays["episode"] == e]}
        assert rows <= train_rows or rows <= val_rows  # a whole episode on one side
        sides.append(rows <= val_rows)
        assert not (rows <= train_rows and rows <= val_rows)
    assert sum(sides) == 3  # 25% of the 12 episodes
    assert len(data.train) + len(data.val) == len(arrays["states"])


@needs_gym
def test_collection_is_cached_by_its_config(tmp_path, monkeypatch):
    from nnexp.data import rl

    calls = []
    real = rl.collect
    monkeypatch.setattr(rl, "collect", lambda *a, **k: calls.append(k) or real(*a, **k))
    cache = str(tmp_path)
    first = rl.rl_policy(episodes=3, max_steps=40, cache=cache)
    (file,) = (tmp_path / "rl").iterdir()
    stamp = file.stat().st_mtime_ns
    again = rl.rl_policy(episodes=3, max_steps=40, cache=cache)
    assert len(calls) == 1 and file.stat().st_mtime_ns == stamp  # read, not collected or written again
    assert np.array_equal(first.train.x.numpy(), again.train.x.numpy())
    rl.rl_model(episodes=3, max_steps=40, epsilon=0.2, cache=cache)  # the same rollouts: shared with rl_policy
    assert len(calls) == 1
    rl.rl_policy(episodes=3, max_steps=40, seed=1, cache=cache)  # another seed: other episodes, another file
    rl.rl_policy(episodes=4, max_steps=40, cache=cache)
    assert len(calls) == 3
    files = sorted(p.name for p in (tmp_path / "rl").iterdir())
    assert len(files) == 3 and all(f.startswith("CartPole-v1-") and f.endswith(".npz") for f in files)  # no temp files
    assert rl.cache_file(cache, {"env": "CartPole-v1", "seed": 0}) != rl.cache_file(cache, {"env": "CartPole-v1",
                                                                                              "seed": 1})


@needs_gym
def test_same_seed_same_episodes_without_the_cache(tmp_path):
    from nnexp.data import rl

    a = rl.rl_value(episodes=5, cache=str(tmp_path / "a"))
    b = rl.rl_value(episodes=5, cache=str(tmp_path / "b"))
    c = rl.rl_value(episodes=5, seed=1, cache=str(tmp_path / "c"))
    assert np.array_equal(a.train.x.numpy(), b.train.x.numpy()) and np.array_equal(a.val.y.numpy(), b.val.y.numpy())
    assert not np.array_equal(a.train.x.numpy()[:5], c.train.x.numpy()[:5])


def test_discounted_returns_restart_at_each_episode():
    from nnexp.data.rl import discounted_returns

    rewards = np.ones(5, dtype=np.float32)
    episode = np.array([0, 0, 0, 1, 1])
    assert discounted_returns(rewards, episode, 0.5).tolist() == [1.75, 1.5, 1.0, 1.5, 1.0]


def test_without_gymnasium_one_line_and_exit_2(run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # what `import gymnasium` meets when it is not installed
    code, out, err = run_cli("train", "dataset=rl_policy", "trainer.progress=none", f"dataset.cache={tmp_path}")
    assert code == 2
    assert err.strip().splitlines() == ["nnexp: error: dataset=rl_policy needs gymnasium: pip install -e '.[rl]'"]
    assert not (tmp_path / "outputs").exists()


def test_config_knows_every_environment():
    from nnexp.data.rl_envs import ENVS

    assert set(RL_ENVS) == set(ENVS)
