"""Shared fixtures: compose the real config tree, shrink it, and run the real entry point."""

from __future__ import annotations

import json
import os
import re
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


# Runs `nnexp train <row>` for each row in one fresh process, the real entry point in-process, and reports what
# each printed and whether it imported torch: until the rows of "after", any import of torch (or torchvision)
# raises a BaseException the row cannot swallow, so a row that reaches torch is reported as such, never half-run.
_TRAIN_ROWS = """
import contextlib, io, json, os, sys
from importlib.abc import MetaPathFinder

class TorchImported(BaseException):
    pass

class NoTorch(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "torchvision"):
            raise TorchImported(name)

rows, after = json.loads(sys.stdin.read())
blocker = NoTorch()
sys.meta_path.insert(0, blocker)
from nnexp import cli

results, root = [], os.getcwd()
for i, args in enumerate(rows + after):
    if i == len(rows):
        sys.meta_path.remove(blocker)
    os.makedirs(os.path.join(root, f"row{i}"))
    os.chdir(os.path.join(root, f"row{i}"))
    err, out, code, torch = io.StringIO(), io.StringIO(), None, False
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            cli.main(["train", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    except TorchImported:
        torch = True
    results.append({"args": args, "code": code, "torch": torch, "out": out.getvalue(), "err": err.getvalue(),
                    "outputs": os.path.exists("outputs")})
print(json.dumps(results))
"""


def train_rows(rows: list[list[str]], cwd: Path, after: list[list[str]] = ()) -> list[dict]:
    """``nnexp train <row>`` for each row in one process without torch (then each row of ``after``, with torch
    allowed): per row its exit code, stdout, stderr, whether it reached torch and whether it left outputs/."""
    proc = subprocess.run([sys.executable, "-c", _TRAIN_ROWS], cwd=cwd, input=json.dumps([rows, list(after)]),
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def read_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


@pytest.fixture
def terminal(monkeypatch):
    """``terminal(80)``: from here on nnexp lays its output out as on a terminal of 80 columns (rich reads
    COLUMNS and TTY_COMPATIBLE, as from a real one); read what it printed with :func:`screen`."""
    def at(width: int) -> None:
        monkeypatch.setenv("COLUMNS", str(width))
        monkeypatch.setenv("TTY_COMPATIBLE", "1")

    return at


def screen(out: str) -> list[str]:
    """Captured output's lines as a terminal shows them: colours and styles taken out, trailing spaces too."""
    return [re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip() for line in out.splitlines()]


def box_tables(lines: list[str], key: int = 1) -> list[list[list[str]]]:
    """Every rich box table in ``lines``: its header, then its rows, each a list of cells. A cell wrapped onto
    more lines comes back joined by spaces (a row's later lines are those whose cell in column ``key``, which
    every row fills, is empty); a cell folded inside a word would come back with a space in it."""
    tables: list[list[list[str]]] = []
    for line in lines:
        if line.startswith("┏"):
            tables.append([])
        elif line[:1] in ("┃", "│") and tables:
            cells = [c.strip() for c in line[1:-1].split(line[0])]
            rows = tables[-1]
            header_goes_on = line[0] == "┃" and rows
            row_goes_on = line[0] == "│" and len(rows) > 1 and not cells[key]
            if header_goes_on or row_goes_on:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
            else:
                rows.append(cells)
    return tables
