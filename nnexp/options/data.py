"""The options of nnexp's dataset loaders (nnexp/data/), checked without torch: each loader calls its
function before it reads a file, generates or collects anything, and ``nnexp train`` calls it with the composed
``dataset`` node before torch is imported. Whether a file exists, and what is in it, is for the loader to say.
"""

from __future__ import annotations

from typing import Any

from nnexp.options import (
    check,
    check_bool,
    check_choice,
    check_int,
    check_path,
    checks,
    finite,
    int_at_least,
)

# the environments of the rl datasets (nnexp/data/rl_envs.py ENVS has their state names and controllers)
RL_ENVS = ("CartPole-v1", "MountainCar-v0", "Acrobot-v1", "Pendulum-v1")
RL_POLICIES = ("scripted", "random")
RL_TARGETS = ("delta", "next")  # rl_model predicts the next state, or its change
# episode seeds of a collection stay below the evaluation episodes' (nnexp/data/rl_envs.py EVAL_OFFSET)
RL_MAX_EPISODES = 500_000


def fractions(val_fraction: Any, test_fraction: Any = 0.0, train_fraction: Any = 1.0) -> None:
    """The split of a loader: each fraction in range, and something left to train on."""
    val, test, train = val_fraction, test_fraction, train_fraction
    check("val_fraction", val, finite(val) and 0 < val < 1, "a number in (0, 1)")
    check("test_fraction", test, finite(test) and 0 <= test < 1, "a number in [0, 1)")
    check("train_fraction", train, finite(train) and 0 < train <= 1, "a number in (0, 1]")
    if val + test >= 1:
        raise ValueError(f"val_fraction + test_fraction = {val + test:g} leaves no training data; "
                         "allowed: a sum < 1")


# ---------------------------------------------------------------------------
# synthetic 2-D sets (nnexp/data/synthetic.py)


@checks("nnexp.data.synthetic.xor", "nnexp.data.synthetic.moons")
def two_d(*, n_samples: Any, noise: Any, val_fraction: Any, test_fraction: Any, seed: Any) -> None:
    """The options every synthetic generator has."""
    check_int("n_samples", n_samples, 4)
    check("noise", noise, finite(noise) and noise >= 0, "a finite number >= 0")
    fractions(val_fraction, test_fraction)
    check_int("seed", seed, 0)


@checks("nnexp.data.synthetic.circles")
def circles(*, n_samples: Any, noise: Any, factor: Any, val_fraction: Any, test_fraction: Any, seed: Any) -> None:
    two_d(n_samples=n_samples, noise=noise, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    check("factor", factor, finite(factor) and 0 < factor < 1, "a number in (0, 1)")


@checks("nnexp.data.synthetic.spirals")
def spirals(*, n_samples: Any, noise: Any, n_classes: Any, turns: Any, val_fraction: Any, test_fraction: Any,
            seed: Any) -> None:
    two_d(n_samples=n_samples, noise=noise, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    check_int("n_classes", n_classes, 2)
    check("turns", turns, finite(turns) and turns > 0, "a finite number > 0")


@checks("nnexp.data.synthetic.gaussians")
def gaussians(*, n_samples: Any, noise: Any, n_classes: Any, val_fraction: Any, test_fraction: Any,
              seed: Any) -> None:
    two_d(n_samples=n_samples, noise=noise, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    check_int("n_classes", n_classes, 2)


# ---------------------------------------------------------------------------
# images (nnexp/data/digits.py, vision.py, shaped.py)


@checks("nnexp.data.digits.load")
def digits(*, train_fraction: Any, val_fraction: Any, test_fraction: Any, seed: Any) -> None:
    fractions(val_fraction, test_fraction, train_fraction)
    check_int("seed", seed, 0)


@checks("nnexp.data.vision.mnist", "nnexp.data.vision.fashion_mnist", "nnexp.data.vision.cifar10")
def vision(*, root: Any, download: Any, train_fraction: Any, val_fraction: Any, limit: Any, test_size: Any,
           normalize: Any, seed: Any) -> None:
    """The options of every torchvision loader, checked before torchvision is imported or a file read."""
    check_path("root", root, "a folder")
    check_bool("download", download)
    fractions(val_fraction, train_fraction=train_fraction)
    check_int("limit", limit, 1, null=True)
    check_int("test_size", test_size, 1, null=True)
    check_bool("normalize", normalize)
    check_int("seed", seed, 0)


@checks("nnexp.data.shaped.random_images")
def random_images(*, shape: Any, train_size: Any, val_size: Any, num_classes: Any, seed: Any) -> None:
    ok = isinstance(shape, (list, tuple)) and len(shape) == 3
    ok = ok and all(int_at_least(size, 1) for size in shape)
    check("shape", shape, ok, "three integers >= 1: [channels, height, width]")
    check_int("train_size", train_size, 1)
    check_int("val_size", val_size, 1)
    check_int("num_classes", num_classes, 2)
    check_int("seed", seed, 0)


# ---------------------------------------------------------------------------
# sequences (nnexp/data/sequences.py)


def _generated(n_samples: Any, val_fraction: Any, test_fraction: Any, seed: Any) -> None:
    """The options every generated sequence task has."""
    check_int("n_samples", n_samples, 4)
    fractions(val_fraction, test_fraction)
    check_int("seed", seed, 0)


@checks("nnexp.data.sequences.adding")
def adding(*, n_samples: Any, length: Any, val_fraction: Any, test_fraction: Any, seed: Any,
           tolerance: Any) -> None:
    _generated(n_samples, val_fraction, test_fraction, seed)
    check_int("length", length, 2, "time steps")  # one marker in each half
    check("tolerance", tolerance, finite(tolerance) and tolerance > 0, "a finite number > 0")


@checks("nnexp.data.sequences.copy")
def copy(*, n_samples: Any, length: Any, delay: Any, n_symbols: Any, val_fraction: Any, test_fraction: Any,
         seed: Any) -> None:
    _generated(n_samples, val_fraction, test_fraction, seed)
    check_int("length", length, 1, "symbols")
    check_int("delay", delay, 0, "time steps")
    check_int("n_symbols", n_symbols, 1)


@checks("nnexp.data.sequences.parity")
def parity(*, n_samples: Any, length: Any, val_fraction: Any, test_fraction: Any, seed: Any) -> None:
    _generated(n_samples, val_fraction, test_fraction, seed)
    check_int("length", length, 1, "time steps")


@checks("nnexp.data.sequences.text")
def text(*, path: Any, seq_len: Any, val_fraction: Any, test_fraction: Any, max_chars: Any, seed: Any) -> None:
    check_path("path", path, "a UTF-8 text file")
    check_int("seq_len", seq_len, 1, "characters")
    fractions(val_fraction, test_fraction)
    check_int("max_chars", max_chars, 1, null=True)
    check_int("seed", seed, 0)


# ---------------------------------------------------------------------------
# rl datasets (nnexp/data/rl.py): collected in a Gymnasium environment, so checked before Gymnasium is imported


def _rl(env: Any, policy: Any, epsilon: Any, episodes: Any, max_steps: Any, val_fraction: Any, normalize: Any,
        eval_every: Any, seed: Any, cache: Any) -> None:
    """The options every rl dataset has."""
    check_choice("env", env, RL_ENVS)
    check_choice("policy", policy, RL_POLICIES)
    check("epsilon", epsilon, finite(epsilon) and 0 <= epsilon <= 1, "a number in [0, 1]")
    check("episodes", episodes, int_at_least(episodes, 2) and episodes < RL_MAX_EPISODES,
          f"an integer >= 2 (at least one to train on, one to validate) and < {RL_MAX_EPISODES}")
    check_int("max_steps", max_steps, 1, null=True)
    fractions(val_fraction)
    check_bool("normalize", normalize)
    check_int("eval_every", eval_every, 0, "epochs; 0 = only at the end")
    check_int("seed", seed, 0)
    check_path("cache", cache, "a folder")


@checks("nnexp.data.rl.rl_model")
def rl_model(*, env: Any, target: Any, policy: Any, epsilon: Any, episodes: Any, max_steps: Any,
             val_fraction: Any, normalize: Any, horizon: Any, eval_every: Any, seed: Any, cache: Any) -> None:
    _rl(env, policy, epsilon, episodes, max_steps, val_fraction, normalize, eval_every, seed, cache)
    check_choice("target", target, RL_TARGETS)
    check_int("horizon", horizon, 1, "steps")


@checks("nnexp.data.rl.rl_value")
def rl_value(*, env: Any, gamma: Any, policy: Any, epsilon: Any, episodes: Any, max_steps: Any,
             val_fraction: Any, normalize: Any, eval_every: Any, seed: Any, cache: Any) -> None:
    _rl(env, policy, epsilon, episodes, max_steps, val_fraction, normalize, eval_every, seed, cache)
    check("gamma", gamma, finite(gamma) and 0 <= gamma < 1, "a number in [0, 1)")


@checks("nnexp.data.rl.rl_policy")
def rl_policy(*, env: Any, policy: Any, epsilon: Any, episodes: Any, max_steps: Any, val_fraction: Any,
              normalize: Any, eval_episodes: Any, eval_every: Any, seed: Any, cache: Any) -> None:
    _rl(env, policy, epsilon, episodes, max_steps, val_fraction, normalize, eval_every, seed, cache)
    check_int("eval_episodes", eval_episodes, 1)


@checks("nnexp.data.rl.rl_pixels")
def rl_pixels(*, env: Any, frames: Any, height: Any, width: Any, grayscale: Any, policy: Any, epsilon: Any,
              episodes: Any, max_steps: Any, val_fraction: Any, normalize: Any, eval_every: Any, seed: Any,
              cache: Any) -> None:
    _rl(env, policy, epsilon, episodes, max_steps, val_fraction, normalize, eval_every, seed, cache)
    check_int("frames", frames, 1)
    check_int("height", height, 8, "pixels")
    check_int("width", width, 8, "pixels")
    check_bool("grayscale", grayscale)
