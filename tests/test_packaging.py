"""A non-editable install carries conf/ inside the wheel and runs from any directory."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # no build isolation: the test stays offline, hatchling comes with the dev extra
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out)], check=True, timeout=300)
    (found,) = out.glob("nnexp-*.whl")
    return found


def test_wheel_carries_the_config_tree(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    repo_confs = {f"nnexp/conf/{p.relative_to(REPO / 'conf').as_posix()}" for p in (REPO / "conf").rglob("*.yaml")}
    assert repo_confs and repo_confs <= names


def test_installed_wheel_trains_from_any_directory(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # torch & co. come from the environment running the tests (itself a venv, or not), after the new venv's own
    # site-packages: nnexp is found there, from the wheel, and the test's editable nnexp stays invisible
    # (a folder named in a .pth file is added to the path, but its own .pth files are not read)
    inner = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    (Path(inner) / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import nnexp.config as c; print(c.config_dir())"],
                           cwd=elsewhere, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where) == env_dir / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
        "site-packages" / "nnexp" / "conf"
    proc = subprocess.run([str(env_dir / "bin" / "nnexp"), "train", "dataset=xor", "trainer.epochs=2",
                           "trainer.progress=none", "hydra.run.dir=run"],
                          cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((elsewhere / "run" / "summary.json").read_text())["status"] == "completed"
