"""The command itself: subcommands, help, fast start without torch."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO, run_subprocess

from nnexp import __version__
from nnexp.hydra_errors import condense_hydra_error


def test_top_level_help_lists_subcommands(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    assert "commands:" in out and all(c in out for c in ("train", "lr-find", "report", "check"))


def test_no_command_is_a_usage_error(run_cli):
    code, _, err = run_cli()
    assert code == 2
    assert "usage: nnexp" in err


def test_unknown_command_names_the_allowed_ones(run_cli):
    code, _, err = run_cli("trian")
    assert code == 2
    assert err.strip().splitlines() == [
        "nnexp: error: unknown command 'trian'; allowed: train, lr-find, report, check (see nnexp --help)"
    ]


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert (code, out.strip()) == (0, f"nnexp {__version__}")


def test_cfg_job_after_the_overrides_prints_the_config(run_cli):
    code, out, err = run_cli("train", "dataset=moons", "--cfg", "job")
    assert code == 0, err
    assert "_target_: nnexp.data.synthetic" in out and "n_samples" in out


def test_train_help_lists_groups_and_options(run_cli):
    code, out, _ = run_cli("train", "--help")
    assert code == 0
    for group in ("dataset", "model", "optimizer", "regularizer", "scheduler", "trainer", "experiment", "debug"):
        assert re.search(rf"^  {group} +[ *]\w", out, flags=re.M), group
    assert "early_stopping" in out and "spirals" in out and "cosine" in out


def test_train_help_says_what_each_option_and_key_is_in_the_words_of_its_yaml(run_cli):
    from nnexp import config

    code, out, _ = run_cli("train", "--help")
    assert code == 0
    conf = config.config_dir()
    for path in sorted(conf.glob("*/*.yaml")):  # every option of every group users pick from, with its words
        if path.parent.name == "hydra":
            continue
        group, option = path.parent.name, path.stem
        assert re.search(rf"^  (?:{group})? +[ *]{option} +\S", out, flags=re.M), f"{group}={option}: no description"
    assert "*digits" in out and "*mlp" in out and "*adam" in out  # what this command would use
    assert "trainer.checkpoint_every_s=5.0  # last.pt at most every N s and at the end; 0 = every epoch" in \
        re.sub(r" {2,}#", "  #", out)
    assert "regularizer.early_stopping.patience=20" in out and "epochs without improvement before stopping" in out
    # internals stay out: the sub-groups of presets' arms, _target_ lines, Hydra's own groups
    assert "deep_net" not in out and "_target_" not in out and "hydra/launcher" not in out


def test_train_help_shows_the_keys_of_the_config_the_overrides_compose(run_cli):
    code, out, _ = run_cli("train", "model=resnet", "optimizer=sgd", "--help")
    assert code == 0
    assert "*resnet" in out and "*sgd" in out
    keys = out.split("Keys of that config", 1)[1]  # the examples above them show model.hidden: not a key here
    assert re.search(r"model\.depth=20 +# ", keys) and "model.hidden" not in keys
    code, out, _ = run_cli("train", "model=nope", "--help")  # help still helps: the defaults, and why
    assert code == 0 and "do not compose" in out and "*mlp" in out


def _imports(*args: str, cwd=REPO) -> set[str]:
    """Which of torch and hydra `nnexp <args>` imports (in a fresh process)."""
    code = (
        "import sys\n"
        "from nnexp.cli import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "print('IMPORTED', *sorted(m for m in ('torch', 'hydra') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.strip().splitlines()[-1].split()[1:])


def _imports_torch(*args: str) -> str:
    return "TORCH" if "torch" in _imports(*args) else "NO-TORCH"


def test_help_and_cfg_do_not_import_torch():
    assert _imports_torch("--help") == "NO-TORCH"
    assert _imports_torch("train", "--help") == "NO-TORCH"
    assert _imports_torch("train", "--cfg", "job") == "NO-TORCH"
    assert _imports_torch("train", "--cfg", "job", "model.hidden=[8]", "dataset=moons") == "NO-TORCH"
    assert _imports_torch("lr-find", "--help") == "NO-TORCH"
    assert _imports_torch("lr-find", "--cfg", "job", "lr_find.steps=50") == "NO-TORCH"


def test_help_and_report_import_neither_torch_nor_hydra(tmp_path):
    from nnexp import record
    from nnexp.record import RunSummary, Status

    assert _imports("--help") == set()
    record.write(tmp_path / "0_job", RunSummary(Status.COMPLETED, epochs_run=1, best_epoch=1, best_value=0.5))
    (tmp_path / "0_job" / "metrics.csv").write_text("epoch,train/loss,val/loss\n1,0.4,0.5\n")  # curves to write
    assert _imports("report", str(tmp_path), cwd=tmp_path) == set()
    assert list((tmp_path / "_mean").glob("*/events.out.tfevents.*"))  # the averaged runs, written without torch


def test_cfg_job_prints_the_composed_config(run_cli):
    code, out, _ = run_cli("train", "--cfg", "job", "dataset=moons", "optimizer.lr=0.5")
    assert code == 0
    assert "_target_: nnexp.data.synthetic.moons" in out
    assert "lr: 0.5" in out


def test_python_dash_m_entry_point(tmp_path):
    proc = run_subprocess("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"nnexp {__version__}"


def test_hydra_errors_are_condensed_to_what_is_wrong():
    raw = (
        "In 'train': Could not find 'model/nope'\n\nAvailable options in 'model':\n\tmlp\n\tcnn\n"
        "Config search path:\n\tprovider=hydra, path=pkg://hydra.conf\n\n"
        "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.\n"
    )
    assert condense_hydra_error(raw) == (
        "In 'train': Could not find 'model/nope'\nAvailable options in 'model': mlp, cnn\n"
    )



def test_stderr_stays_a_real_stream_during_a_run(tmp_path):
    """Code inside a run may ask sys.stderr for its file descriptor or encoding."""
    code = (
        "import sys, nnexp.run\n"
        "real = nnexp.run.Run.train\n"
        "def spy(*a, **k):\n"
        "    print('FILENO', sys.stderr.fileno(), sys.stderr.encoding)\n"
        "    return real(*a, **k)\n"
        "nnexp.run.Run.train = spy\n"
        "from nnexp.cli import main\n"
        "main(['train', 'dataset=xor', 'trainer.epochs=1', 'trainer.progress=none', 'hydra.run.dir=r'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "FILENO 2 " in proc.stdout


def test_check_command_passes_through_the_real_entry_point(tmp_path):
    proc = run_subprocess("check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "FAIL" not in proc.stdout


def test_a_signal_after_the_command_is_done_changes_nothing():
    """Once `nnexp` has its exit code, a Ctrl-C, SIGTERM or SIGHUP during the interpreter's shutdown is ignored
    (it would kill the process by that signal after the record was written); a call from Python code is left alone."""
    code = ("import signal, sys; from nnexp import cli\n"
            "def after(argv):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            "    return [signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]\n"
            "print(after(['--version']))\n"
            "sys.argv = ['nnexp', '--version']\n"
            "print(after(None))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert [ln for ln in out.splitlines() if ln.startswith("[")] == ["[False, False, False]", "[True, True, True]"]
