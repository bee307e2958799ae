"""Datasets collected from Gymnasium's classic-control environments (the optional ``rl`` extra).

The course approximates four functions with networks; each dataset is one of them:

- ``rl_model``:  (state, action) -> next state, or its change       f_M: A x S -> S
- ``rl_value``:  state -> discounted Monte Carlo return              f_V: S -> R
- ``rl_policy``: state -> the scripted controller's action           f_P: S -> A
- ``rl_pixels``: a stack of rendered frames -> the true state        f_S: X -> S

Data come from rolling out a behaviour policy: the scripted controller of
nnexp/data/rl_envs.py, taking a random action with probability ``epsilon``
(so the data also cover states the controller alone never visits), or a
purely random policy. Collection is seeded (``seed``) and cached on disk
under ``cache``/rl, keyed by a hash of what was collected (environment,
policy, epsilon, episodes, max_steps, seed and, for frames, their size), so
a sweep over anything else (gamma, target, the model, trainer.seed) collects
once; the file is written to a temporary name and renamed, so jobs running at
once never read half a file. Episodes, not steps, are split into train and
val, so validation measures generalization to episodes the model never saw.
With ``normalize`` (the default) inputs and regression targets are
standardized with the training episodes' mean and std; the evaluations
(nnexp/data/rl_eval.py) undo it and report in the environment's units.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nnexp.atomic import atomic_write
from nnexp.data import Data, Split
from nnexp.data.rl_envs import ENVS, episode_seed, gymnasium, make_env, random_action
from nnexp.data.rl_eval import PolicyEval, RolloutEval, Standardizer, StateEval, ValueEval
from nnexp.errors import ConfigError
from nnexp.options import data as options

log = logging.getLogger("nnexp")

# Bump when collection changes what it records for the same settings: old cache files are then never read.
COLLECTOR_VERSION = 1


def _downscale(frame: np.ndarray, height: int, width: int, grayscale: bool) -> np.ndarray:
    """(H0, W0, 3) uint8 rendered frame -> (height, width, C) uint8; each pixel the mean of its block.

    PIL's box filter: ~1 ms a frame, about 10x faster than float tensors for a 400x600 picture.
    """
    image = Image.fromarray(frame)
    if grayscale:
        image = image.convert("L")  # ITU-R 601 luma
    small = np.asarray(image.resize((width, height), Image.Resampling.BOX))
    return small[:, :, None] if grayscale else small


def collect(dataset: str, env: str, policy: str, epsilon: float, episodes: int, max_steps: int | None, seed: int,
            frames: tuple[int, int, bool] | None = None) -> dict[str, np.ndarray]:
    """Roll out the behaviour policy for ``episodes`` episodes; the arrays of one cache file.

    N steps over E episodes: ``states`` and ``next_states`` (N, S) before and after each step;
    ``actions`` what the behaviour policy did, (N,) int64 or (N, A) float32; ``scripted`` what the
    scripted controller would have done in that state (the same shape); ``rewards`` (N,);
    ``episode`` (N,) the step's episode; ``terminated`` (E,) ended by the task (a fall, the goal),
    not by the time limit; with ``frames`` = (height, width, grayscale) also ``frames`` (N, h, w, C)
    uint8, the rendered picture of each step's starting state.
    """
    gym = gymnasium(dataset, render=frames is not None)
    environment = make_env(gym, env, max_steps, render=frames is not None)
    scripted = ENVS[env].scripted
    rows: dict[str, list[Any]] = {k: [] for k in ("states", "next_states", "actions", "scripted", "rewards",
                                                  "episode", "frames")}
    terminated = []
    for i in range(episodes):
        rng = np.random.default_rng([seed, i])  # exploration of this episode, whatever came before
        obs, _ = environment.reset(seed=episode_seed(seed, i))
        while True:
            if frames is not None:
                rows["frames"].append(_downscale(environment.render(), *frames))
            expert = scripted(obs)
            explore = policy == "random" or rng.random() < epsilon
            action = random_action(environment.action_space, rng) if explore else expert
            nxt, reward, term, trunc, _ = environment.step(action)
            for key, value in (("states", obs), ("next_states", nxt), ("actions", action), ("scripted", expert),
                               ("rewards", reward), ("episode", i)):
                rows[key].append(value)
            obs = nxt
            if term or trunc:
                terminated.append(term)
                break
    environment.close()
    out = {k: np.asarray(v) for k, v in rows.items() if v}
    for key in ("states", "next_states", "rewards"):
        out[key] = out[key].astype(np.float32)
    out["terminated"] = np.asarray(terminated, dtype=bool)
    return out


def cache_file(cache: str, spec: dict[str, Any]) -> Path:
    """Where the collection described by ``spec`` lives: <cache>/rl/<env>-<hash of spec>.npz."""
    text = json.dumps({"version": COLLECTOR_VERSION, **spec}, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Path(cache).expanduser() / "rl" / f"{spec['env']}-{key}.npz"


def collect_cached(dataset: str, cache: str, **spec: Any) -> dict[str, np.ndarray]:
    """The collection for ``spec`` (collect()'s arguments) from the cache, collected and stored on a miss."""
    spec["frames"] = list(spec["frames"]) if spec.get("frames") else None  # JSON-stable in the key
    path = cache_file(cache, spec)
    if path.is_file():
        try:
            with np.load(path) as stored:
                arrays = {k: stored[k] for k in stored.files}
            log.info("%s: %d episodes of %s from the cache %s", dataset, len(arrays["terminated"]), spec["env"],
                     path)
            return arrays
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("%s: cannot read the cache file %s (%s); collecting again", dataset, path, exc)
    writable_cache(cache, path.parent)  # before collecting: minutes of work must not end in an unwritable folder
    started = time.perf_counter()
    frames = tuple(spec["frames"]) if spec["frames"] else None
    arrays = collect(dataset, **{**spec, "frames": frames})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        atomic_write(path, buffer.getvalue())  # temp file + rename: a job reading at the same time sees all or nothing
    except OSError as exc:  # the disk filled up since the check: train on what was collected, uncached
        log.warning("%s: cannot store the collection in the cache %s (%s); training without caching it", dataset,
                    path, exc.strerror or exc)
        return arrays
    log.info("%s: collected %d episodes (%d steps) of %s in %.1f s -> %s", dataset, len(arrays["terminated"]),
             len(arrays["states"]), spec["env"], time.perf_counter() - started, path)
    return arrays


def writable_cache(cache: str, folder: Path) -> None:
    """Can a collection be stored in ``folder`` (under ``cache``)? A ConfigError saying how to move the cache."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()  # a real write: permissions alone do not tell (root, read-only mounts)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigError(f"dataset.cache={cache}: cannot write into the cache folder {folder} ({reason}); move the "
                          "cache to a writable folder with dataset.cache=PATH or the NNEXP_CACHE environment "
                          "variable") from None


def _episode_split(episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Episode ids for train and val: ``val_fraction`` of the episodes (at least one each), drawn with ``seed``."""
    order = np.random.default_rng(seed).permutation(episodes)
    n_val = min(episodes - 1, max(1, int(round(val_fraction * episodes))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _action_space(dataset: str, env: str) -> Any:
    environment = make_env(gymnasium(dataset), env, None)
    space = environment.action_space
    environment.close()
    return space


def _encode_actions(actions: np.ndarray, space: Any) -> np.ndarray:
    """Actions as network inputs (N, A): one-hot for discrete spaces, torques over their bound otherwise."""
    if hasattr(space, "n"):
        return np.eye(space.n, dtype=np.float32)[actions]
    return (actions.reshape(len(actions), -1) / space.high).astype(np.float32)


def _split(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> Split:
    return Split(torch.as_tensor(x[rows]), torch.as_tensor(y[rows]))


def _rows(arrays: dict[str, np.ndarray], episode_ids: np.ndarray) -> np.ndarray:
    return np.isin(arrays["episode"], episode_ids)


def _collection(name: str, env: str, policy: str, epsilon: float, episodes: int, max_steps: int | None,
                seed: int, val_fraction: float, cache: str, frames: tuple[int, int, bool] | None = None,
                ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The collected arrays and the train and val row masks (N,), split by episode."""
    arrays = collect_cached(name, cache, env=env, policy=policy, epsilon=float(epsilon), episodes=episodes,
                            max_steps=max_steps, seed=seed, frames=frames)
    train_ids, val_ids = _episode_split(episodes, val_fraction, seed)
    return arrays, _rows(arrays, train_ids), _rows(arrays, val_ids)


DEFAULT_CACHE = "~/.cache/nnexp"


def rl_model(env: str = "CartPole-v1", target: str = "delta", policy: str = "scripted", epsilon: float = 0.5,
             episodes: int = 100, max_steps: int | None = None, val_fraction: float = 0.2, normalize: bool = True,
             horizon: int = 10, eval_every: int = 5, seed: int = 0, cache: str = DEFAULT_CACHE) -> Data:
    """f_M: x (N, S + A) state and encoded action -> y (N, S) next state ("next") or its change ("delta")."""
    options.rl_model(env=env, target=target, policy=policy, epsilon=epsilon, episodes=episodes, max_steps=max_steps,
                     val_fraction=val_fraction, normalize=normalize, horizon=horizon, eval_every=eval_every, seed=seed,
                     cache=cache)  # first: before Gymnasium is imported
    arrays, train, val = _collection("rl_model", env, policy, epsilon, episodes, max_steps, seed, val_fraction, cache)
    space = _action_space("rl_model", env)
    s, s_next = arrays["states"], arrays["next_states"]  # (N, S)
    actions = _encode_actions(arrays["actions"], space)  # (N, A)
    delta = target == "delta"
    y_raw = s_next - s if delta else s_next  # the change is small and centred: easier to fit than the state
    xs, ys = Standardizer.fit(s[train], normalize), Standardizer.fit(y_raw[train], normalize)
    x, y = np.concatenate([xs(s), actions], axis=1), ys(y_raw)
    trajectories, episode_actions = [], []
    for e in np.unique(arrays["episode"][val]):
        rows = arrays["episode"] == e
        trajectories.append(np.concatenate([s[rows], s_next[rows][-1:]]))  # (T + 1, S)
        episode_actions.append(actions[rows])  # (T, A)
    return Data(name=f"rl_model:{env}", task="regression", input_shape=(x.shape[1],),
                train=_split(x, y, train), val=_split(x, y, val), target_dim=y.shape[1],
                evaluate=RolloutEval(trajectories, episode_actions, horizon, xs, ys, delta), eval_every=eval_every)


def discounted_returns(rewards: np.ndarray, episode: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = r_t + gamma G_{t+1} within each episode, 0 after its last step: (N,) float32.

    An episode cut by the time limit ends there too, so its last states get smaller
    returns than their state alone explains (the state does not show the clock).
    """
    returns = np.zeros(len(rewards), dtype=np.float64)
    following = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        if t == len(rewards) - 1 or episode[t + 1] != episode[t]:
            following = 0.0  # the last step of an episode
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns.astype(np.float32)


def rl_value(env: str = "CartPole-v1", gamma: float = 0.95, policy: str = "random", epsilon: float = 0.5,
             episodes: int = 200, max_steps: int | None = None, val_fraction: float = 0.2, normalize: bool = True,
             eval_every: int = 5, seed: int = 0, cache: str = DEFAULT_CACHE) -> Data:
    """f_V: x (N, S) state -> y (N, 1) discounted return of the behaviour policy from there (Monte Carlo)."""
    options.rl_value(env=env, gamma=gamma, policy=policy, epsilon=epsilon, episodes=episodes, max_steps=max_steps,
                     val_fraction=val_fraction, normalize=normalize, eval_every=eval_every, seed=seed, cache=cache)
    arrays, train, val = _collection("rl_value", env, policy, epsilon, episodes, max_steps, seed, val_fraction, cache)
    s = arrays["states"]
    returns = discounted_returns(arrays["rewards"], arrays["episode"], gamma)  # (N,)
    xs, ys = Standardizer.fit(s[train], normalize), Standardizer.fit(returns[train, None], normalize)
    x, y = xs(s), ys(returns[:, None])
    return Data(name=f"rl_value:{env}", task="regression", input_shape=(x.shape[1],),
                train=_split(x, y, train), val=_split(x, y, val), target_dim=1,
                evaluate=ValueEval(torch.as_tensor(x[val]), returns[val], ys), eval_every=eval_every)


def rl_policy(env: str = "CartPole-v1", policy: str = "scripted", epsilon: float = 0.2, episodes: int = 50,
              max_steps: int | None = None, val_fraction: float = 0.2, normalize: bool = True,
              eval_episodes: int = 10, eval_every: int = 5, seed: int = 0, cache: str = DEFAULT_CACHE) -> Data:
    """f_P: x (N, S) state -> the scripted controller's action there: a class (N,) for discrete actions,
    a torque (N, 1) for Pendulum (regression). Behaviour cloning; with epsilon > 0 the data also show
    how the controller recovers from states a random action led to."""
    options.rl_policy(env=env, policy=policy, epsilon=epsilon, episodes=episodes, max_steps=max_steps,
                      val_fraction=val_fraction, normalize=normalize, eval_episodes=eval_episodes,
                      eval_every=eval_every, seed=seed, cache=cache)
    arrays, train, val = _collection("rl_policy", env, policy, epsilon, episodes, max_steps, seed, val_fraction, cache)
    space = _action_space("rl_policy", env)
    s = arrays["states"]
    xs = Standardizer.fit(s[train], normalize)
    x = xs(s)
    if hasattr(space, "n"):
        y, actions = arrays["scripted"].astype(np.int64), None
        kinds = {"task": "classification", "num_classes": int(space.n)}
    else:
        torques = arrays["scripted"].reshape(len(s), -1).astype(np.float32)  # (N, 1)
        actions = Standardizer.fit(torques[train], normalize)
        y = actions(torques)
        kinds = {"task": "regression", "target_dim": y.shape[1]}
    evaluate = PolicyEval("rl_policy", env, max_steps, eval_episodes, seed, space, xs, actions)
    return Data(name=f"rl_policy:{env}", input_shape=(x.shape[1],), train=_split(x, y, train),
                val=_split(x, y, val), evaluate=evaluate, eval_every=eval_every, **kinds)


def rl_pixels(env: str = "CartPole-v1", frames: int = 2, height: int = 40, width: int = 60, grayscale: bool = True,
              policy: str = "random", epsilon: float = 0.5, episodes: int = 150, max_steps: int | None = None,
              val_fraction: float = 0.2, normalize: bool = True, eval_every: int = 5, seed: int = 0,
              cache: str = DEFAULT_CACHE) -> Data:
    """f_S: x (N, frames * C, height, width) the last ``frames`` rendered pictures, oldest first, in [0, 1]
    -> y (N, S) the true state at the newest one. One picture shows positions and angles; velocities
    need two or more. The first steps of an episode repeat its first picture."""
    options.rl_pixels(env=env, frames=frames, height=height, width=width, grayscale=grayscale, policy=policy,
                      epsilon=epsilon, episodes=episodes, max_steps=max_steps, val_fraction=val_fraction,
                      normalize=normalize, eval_every=eval_every, seed=seed, cache=cache)
    arrays, train, val = _collection("rl_pixels", env, policy, epsilon, episodes, max_steps, seed, val_fraction,
                                     cache, frames=(height, width, grayscale))
    pictures, episode = arrays["frames"], arrays["episode"]  # (N, h, w, C) uint8, (N,)
    n = len(episode)
    first = np.maximum.accumulate(np.where(np.r_[True, episode[1:] != episode[:-1]], np.arange(n), 0))  # (N,)
    index = np.maximum(np.arange(n)[:, None] - np.arange(frames - 1, -1, -1)[None, :], first[:, None])  # (N, k)
    stacked = pictures[index]  # (N, k, h, w, C)
    x = stacked.transpose(0, 1, 4, 2, 3).reshape(n, -1, height, width).astype(np.float32) / 255.0  # (N, k*C, h, w)
    s = arrays["states"]
    ys = Standardizer.fit(s[train], normalize)
    y = ys(s)
    evaluate = StateEval(torch.as_tensor(x[val]), s[val], ys, ENVS[env].state_names)
    return Data(name=f"rl_pixels:{env}", task="regression", input_shape=tuple(x.shape[1:]),
                train=_split(x, y, train), val=_split(x, y, val), target_dim=y.shape[1],
                evaluate=evaluate, eval_every=eval_every)
