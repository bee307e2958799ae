"""On a shared machine: nnexp makes OpenMP's idle threads sleep (nnexp/openmp.py), and leaves a user's choice alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nnexp import openmp

USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
RUN = ["train", "dataset=moons", "dataset.n_samples=200", "model.hidden=[4]", "trainer.epochs=1",
       "trainer.progress=none", "trainer.pictures_every=0", "trainer.histograms_every=0"]


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without any OpenMP waiting choice, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in USER_VARIABLES}
    return {**env, **extra}


def test_passive_is_set_when_the_user_chose_nothing_and_torch_is_not_loaded():
    env: dict[str, str] = {}
    assert openmp.choose(env, modules={}) == "PASSIVE (nnexp's default)"
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("name, value", [("OMP_WAIT_POLICY", "ACTIVE"), ("OMP_WAIT_POLICY", "passive"),
                                         ("GOMP_SPINCOUNT", "100000"), ("KMP_BLOCKTIME", "200")])
def test_a_users_own_setting_is_left_alone(name, value):
    env = {name: value}
    assert openmp.choose(env, modules={}) == f"yours: {name}={value}"
    assert env == {name: value}


def test_nothing_is_set_once_torch_is_loaded():
    """libgomp read its environment when torch loaded: a late setting would only mislead the log."""
    env: dict[str, str] = {}
    assert "torch was imported before nnexp" in openmp.choose(env, modules={"torch": object()})
    assert env == {}


@pytest.mark.parametrize("user, seen", [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE")])
def test_import_nnexp_sets_it_before_torch_loads(user, seen):
    """What torch's OpenMP runtime reads when it loads: the environment ``import nnexp`` leaves."""
    code = ("import sys, os, nnexp; assert 'torch' not in sys.modules; import torch; "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(**user), capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == seen


@pytest.mark.parametrize("user, extra, logged", [
    ({}, [], "OpenMP wait PASSIVE (nnexp's default)"),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, [], "OpenMP wait yours: OMP_WAIT_POLICY=ACTIVE"),
    ({}, ["trainer.threads=1"], "1 torch thread (trainer.threads=1), OpenMP wait PASSIVE (nnexp's default)"),
])
def test_a_run_logs_what_it_applies_and_keeps_the_users_threads(tmp_path, user, extra, logged):
    """Through the real entry point: the run's train.log says which policy holds and how many threads."""
    env = _env(**user)
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run([sys.executable, "-m", "nnexp", *RUN, *extra, f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "run" / "train.log").read_text()
    assert logged in log
