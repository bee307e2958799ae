"""Every `nnexp` command the README shows works as written (shrunk to a couple of epochs)."""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import REPO

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
COMMANDS = [line.strip() for block in BLOCKS for line in block.splitlines() if line.strip().startswith("nnexp ")]
SETUP = re.findall(r"```bash\n(pip install .*?)\n```", README)


def test_readme_shows_the_two_setup_commands():
    assert SETUP == ["pip install -e . && nnexp train", "pip install -e '.[dev]' && pytest"]


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works(run_cli, command):
    args = shlex.split(command)[1:]
    if args[0] == "train" and "--help" not in args and "--cfg" not in args:
        args += ["trainer.epochs=2", "trainer.progress=none"]
    code, out, err = run_cli(*args)
    assert code == 0, err
