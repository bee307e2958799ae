"""Every `nnexp` command the README shows works as written (shrunk to a couple of epochs)."""

from __future__ import annotations

import re
import shutil
import subprocess

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


SHELLS = ("bash", "zsh")  # Linux's usual shell, and macOS's default (it refuses an unquoted [..] that matches no file)
PLACEHOLDER = re.compile(r"\S*<[a-z]+>\S*")  # outputs/multirun/<date>/<time>_<id>: a folder the user fills in


def words(shell: str, command: str) -> list[str]:
    """The arguments ``shell`` hands to nnexp for ``command`` as typed at its prompt (quotes, globs and all).
    A placeholder path (``<date>``: a redirection to a shell) stands as it is."""
    holders = PLACEHOLDER.findall(command)
    line = PLACEHOLDER.sub("__placeholder__", command)
    if shutil.which(shell) is None:
        pytest.fail(f"{shell} is not installed: the README's commands are tested under bash and zsh")
    # nnexp is a shell function here that prints its arguments, one per NUL-ended record; -f: no rc files (zsh)
    script = "nnexp() { printf '%s\\0' \"$@\"; }\n" + line + "\n"
    done = subprocess.run([shell, "-f", "-c", script] if shell == "zsh" else [shell, "--norc", "-c", script],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{shell} refuses the README's command {command!r}: {done.stderr.strip()}"
    args = done.stdout.split("\0")[:-1]
    return [holders.pop(0) if a == "__placeholder__" else a for a in args]


AGENT_SHRINK = ["agent.total_steps=300", "agent.eval_every=150", "agent.eval_episodes=2", "agent.final_eval_episodes=2"]


def _agent(args: list[str]) -> bool:
    """An agent's run: agent=..., or a preset that chooses one."""
    presets = [REPO / "conf" / "experiment" / f"{a.split('=', 1)[1]}.yaml" for a in args if a.startswith("experiment=")]
    return any(a.startswith("agent=") for a in args) or any(p.is_file() and "agent" in p.read_text() for p in presets)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works(run_cli, tmp_path, command):
    shutil.copy(REPO / "README.md", tmp_path / "README.md")  # the text example reads it, from the repo root
    parsed = {shell: words(shell, command.replace("\\|", "|")) for shell in SHELLS}
    assert parsed["bash"] == parsed["zsh"], f"bash and zsh read {command!r} differently: {parsed}"
    args = parsed["bash"]
    if args[0] == "train" and "--help" not in args and "--cfg" not in args and _agent(args):
        args += [*AGENT_SHRINK, "trainer.progress=none"]  # an agent refuses trainer.epochs: it counts steps
    elif args[0] == "train" and "--help" not in args and "--cfg" not in args:
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


def test_an_unquoted_list_is_what_zsh_refuses():
    """The check above can fail: zsh reads ``[16,16]`` as a glob that matches no file."""
    with pytest.raises(AssertionError, match="no matches found"):
        words("zsh", "nnexp train 'dataset=moons' model.hidden=[16,16]")
    assert words("zsh", "nnexp train 'model.hidden=[16,16]'") == ["train", "model.hidden=[16,16]"]


def _shown_elsewhere() -> list[str]:
    """The commands shown outside the README: each YAML's header comment, `nnexp --help`, `nnexp train --help`."""
    from nnexp.cli import USAGE
    from nnexp.train_help import HEADER

    shown = [line.lstrip("# ").split("  ")[0] for path in sorted((REPO / "conf").rglob("*.yaml"))
             for line in path.read_text().splitlines() if line.startswith("# nnexp ")]
    help_text = USAGE + HEADER
    shown += [line.strip().split("  ")[0] for line in help_text.splitlines() if line.strip().startswith("nnexp ")]
    return [c for c in shown if "<" not in c and not c.split()[1].endswith(":")]  # a title is no command


def test_the_commands_in_the_yaml_headers_and_help_texts_read_the_same_in_bash_and_zsh():
    shown = _shown_elsewhere()
    assert len(shown) >= 40
    for command in shown:
        assert words("bash", command) == words("zsh", command), command
