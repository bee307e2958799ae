"""Every `nnexp` command the README shows works as written (shrunk to a couple of epochs)."""

from __future__ import annotations

import re
import shlex
import shutil

import pytest
from conftest import REPO

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
IN_BLOCKS = [line.strip() for block in BLOCKS for line in block.splitlines() if line.strip().startswith("nnexp ")]
IN_TABLES = [c for line in README.splitlines() if line.startswith("|") for c in re.findall(r"`(nnexp [^`]+)`", line)]
# a download needs the network; the tests never download (tests/test_vision.py builds the files)
COMMANDS = [c for c in IN_BLOCKS + IN_TABLES if "download=true" not in c]
IN_DOWNLOADS = [c for c in IN_BLOCKS + IN_TABLES if "download=true" in c]
SETUP = re.findall(r"```bash\n(pip install .*?)\n```", README)


def test_readme_shows_the_two_setup_commands():
    assert SETUP == ["pip install -e . && nnexp train", "pip install -e '.[dev]' && pytest"]


def test_the_commands_are_found():
    """The tests below read the README's commands: if its format changed they would find none and pass."""
    assert len(COMMANDS) >= 40 and sum(c.startswith("nnexp train") for c in COMMANDS) >= 35


def test_every_model_and_dataset_has_an_example():
    for group in ("model", "dataset"):
        for path in sorted((REPO / "conf" / group).glob("*.yaml")):
            assert f"`{path.stem}`" in README, f"README lists no {group} {path.stem}"
            assert any(f"{group}={path.stem}" in c.split() for c in COMMANDS + IN_DOWNLOADS), \
                f"README shows no command with {group}={path.stem}"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works(run_cli, tmp_path, command):
    shutil.copy(REPO / "README.md", tmp_path / "README.md")  # the text example reads it, from the repo root
    args = shlex.split(command.replace("\\|", "|"))[1:]
    if args[0] == "train" and "--help" not in args and "--cfg" not in args:
        args += ["trainer.epochs=2", "trainer.progress=none"]
        if any(a.startswith("dataset=") and a.split("=")[1] in ("adding", "copy", "parity") for a in args):
            args.append("dataset.n_samples=200")
    if any("<date>" in a for a in args):  # a placeholder for the sweep the README ran just before
        code, _, err = run_cli("train", "-m", "regularizer=none,l2", "trainer.epochs=2", "trainer.progress=none")
        assert code == 0, err
        (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
        args = [str(sweep) if "<date>" in a else a for a in args]
    code, out, err = run_cli(*args)
    assert code == 0, err
