"""Shared fixtures: compose the real config tree, shrink it, and run the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from nnexp import cli, config

REPO = Path(__file__).resolve().parents[1]
# Small, quick settings for runs that only need to exercise the path, not learn anything.
SHRINK = ["trainer.epochs=2", "trainer.progress=none", "trainer.threads=1"]
# Under pytest-xdist each worker trains in its own process: one torch thread each, set before torch loads, so
# the workers share the cores instead of each claiming all of them
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: a worker per core, at most 4 (most tests start training processes of their own)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _quiet_torch_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _rl_cache_in_tmp(monkeypatch, tmp_path):
    """rl datasets collect into ${NNEXP_CACHE}/rl: a test never writes into the user's ~/.cache."""
    monkeypatch.setenv("NNEXP_CACHE", str(tmp_path / "nnexp_cache"))


def compose_cfg(overrides: list[str] = ()) -> DictConfig:
    """The real config tree composed as `nnexp train <overrides>` would compose it."""
    config.register()
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=False)


@pytest.fixture
def run_cli(tmp_path, monkeypatch, capsys):
    """Call `nnexp <args>` in-process from tmp_path; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)

    def _run(*args: str) -> tuple[int, str, str]:
        try:
            cli.main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def run_subprocess(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m nnexp <args>` as a separate process (the real entry point, real exit code)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "nnexp", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def read_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())
