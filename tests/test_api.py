"""nnexp.train / nnexp.sweep / nnexp.report from Python (nnexp/api.py): the CLI's runs, folders and messages, in
the caller's process, which lives on (no SystemExit, no os._exit) and can call again."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, read_summary
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nnexp
from nnexp import folder_lock
from nnexp.errors import NnexpError
from nnexp.record import RunSummary, Status

README = (REPO / "README.md").read_text()
SECTION = README.split("## From Python / Jupyter\n", 1)[1].split("\n## ", 1)[0]
(EXAMPLE,) = re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)
QUICK = ["dataset=moons", "model.hidden=[8]", "trainer.progress=none", "trainer.threads=1"]
# what differs between two runs of one config: where they ran, and how long they took
WHERE_AND_WHEN = ("run_dir", "wall_seconds", "seconds_per_epoch")


def _same_record(a: Path, b: Path) -> None:
    sa, sb = (read_summary(d) for d in (a, b))
    assert {k: v for k, v in sa.items() if k not in WHERE_AND_WHEN} == \
        {k: v for k, v in sb.items() if k not in WHERE_AND_WHEN}
    curves = [[row.split(",")[:6] for row in (d / "metrics.csv").read_text().splitlines()] for d in (a, b)]
    assert curves[0] == curves[1]  # epoch, losses, accuracies, lr: everything but the seconds


def _same_folder(a: Path, b: Path) -> None:
    """The same files, the same .hydra config and overrides, the same TensorBoard scalars (but the times)."""
    def files(d: Path) -> list[str]:
        return sorted(re.sub(r"tfevents\..*", "tfevents.*", str(p.relative_to(d))) for p in d.rglob("*")
                      if p.is_file())

    assert files(a) == files(b) and "summary.json" in files(a)
    for name in ("config.yaml", "overrides.yaml"):
        assert (a / ".hydra" / name).read_text() == (b / ".hydra" / name).read_text()
    scalars = []
    for d in (a, b):
        acc = EventAccumulator(str(d), size_guidance={"scalars": 0}).Reload()
        scalars.append({tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]
                        if "seconds" not in tag and "time" not in tag})
    assert scalars[0] == scalars[1] and "val/loss" in scalars[0]
    _same_record(a, b)


def _report_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(f)]


def test_the_readme_example_makes_what_the_cli_makes(run_cli, tmp_path, monkeypatch):
    (tmp_path / "python").mkdir()
    monkeypatch.chdir(tmp_path / "python")
    namespace: dict = {}
    exec(compile(EXAMPLE, "README.md", "exec"), namespace)  # as written, as a notebook runs it
    result, sweep, table = namespace["result"], namespace["sweep"], namespace["table"]

    assert isinstance(result, nnexp.RunResult) and result.exit_code == 0
    assert result.summary == read_summary(result.run_dir) and isinstance(result.record, RunSummary)
    assert result.record.status is Status.COMPLETED and result.summary["best"]["val/acc"] > 0
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert result.history[-1]["val/loss"] == pytest.approx(result.summary["final"]["val/loss"], rel=1e-5)
    assert isinstance(sweep, nnexp.SweepResult) and len(sweep.jobs) == 4
    assert all(job.status == "completed" and job.run_dir.parent == sweep.dir for job in sweep.jobs)
    assert table.csv == sweep.dir / "report.csv" and table.png == sweep.dir / "report.png" and table.png.is_file()
    assert sorted(row["label"] for row in table.rows) == ["regularizer=l2", "regularizer=none"]
    assert all(row["n"] == 2 for row in table.rows)

    # the same commands from the CLI, in another folder
    (tmp_path / "cli").mkdir()
    monkeypatch.chdir(tmp_path / "cli")
    code, _, err = run_cli("train", *result.summary["overrides"])
    assert code == 0, err
    (cli_run,) = (tmp_path / "cli" / "outputs" / "runs").glob("*/*")
    _same_folder(result.run_dir, cli_run)

    task = (sweep.dir / "nnexp_sweep.json").read_text()
    code, _, err = run_cli("train", "-m", *json.loads(task)["task"])
    assert code == 0, err
    (cli_sweep,) = (tmp_path / "cli" / "outputs" / "multirun").glob("*/*")
    cli_jobs = sorted(d for d in cli_sweep.iterdir() if d.is_dir())
    assert [d.name for d in cli_jobs] == [job.run_dir.name for job in sweep.jobs]
    for job, cli_job in zip(sweep.jobs, cli_jobs, strict=True):
        _same_folder(job.run_dir, cli_job)
    code, _, err = run_cli("report", str(cli_sweep))
    assert code == 0, err
    assert _report_rows(cli_sweep / "report.csv") == _report_rows(table.csv)


@pytest.mark.parametrize("override", ["trainer.epochs=0", "model=nosuch", "trainer.epochs=abc", "nosuch.key=1"])
def test_a_bad_override_raises_the_clis_message_and_exit_code(run_cli, tmp_path, override):
    code, out, err = run_cli("train", *QUICK, override)
    assert code == 2
    with pytest.raises(nnexp.NnexpRunError) as raised:  # not SystemExit
        nnexp.train(*QUICK, override)
    assert raised.value.exit_code == 2 and str(raised.value) == err.strip() and raised.value.result is None
    assert isinstance(raised.value, NnexpError)
    assert not (tmp_path / "outputs").exists()  # nothing written, by either


def test_a_diverged_run_raises_with_its_result_or_is_returned_with_check_false(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [*QUICK, "trainer.epochs=2", "optimizer.lr=1e300"]
    with pytest.raises(nnexp.NnexpRunError) as raised:
        nnexp.train(*args, "hydra.run.dir=a")
    err = capsys.readouterr().err
    assert raised.value.exit_code == 3 and str(raised.value) in err.splitlines()
    assert str(raised.value).startswith("nnexp: error: training diverged: the optimizer's update overflowed")
    assert raised.value.result.status == "diverged" and raised.value.result.run_dir == tmp_path / "a"
    result = nnexp.train(*args, "hydra.run.dir=b", check=False)
    assert result.exit_code == 3 and result.status == "diverged" and result.record.status is Status.DIVERGED


def test_a_sweep_with_a_failed_job_raises_the_clis_line_and_holds_the_sweep(run_cli, tmp_path):
    args = ["dataset=xor", "trainer.epochs=1", "trainer.progress=none", "optimizer.lr=0.01,-1"]
    code, _, err = run_cli("train", "-m", *args)
    assert code == 1
    with pytest.raises(nnexp.NnexpRunError) as raised:
        nnexp.sweep(*args)
    (line,) = [ln for ln in err.splitlines() if ln.startswith("nnexp: job failed")]
    assert raised.value.exit_code == 1 and str(raised.value) == line
    assert [job.status for job in raised.value.result.jobs] == ["completed", "failed"]
    assert [job.exit_code for job in raised.value.result.jobs] == [0, 1]


def test_calls_leave_the_process_as_they_found_it(tmp_path, monkeypatch):
    """Hydra's global state, the root logger, sys.argv and the signal handlers as before each call; two calls in a
    row; the caller's own logging never lands in a run's train.log."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    monkeypatch.chdir(tmp_path)
    mine = logging.FileHandler(tmp_path / "mine.log")
    root = logging.getLogger()
    root.addHandler(mine)
    logs, argv = list(root.handlers), list(sys.argv)  # pytest's own handlers, and mine
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):  # the user's own, left open
            first = nnexp.train(*QUICK, "trainer.epochs=1")
            second = nnexp.train(*QUICK, "trainer.epochs=1", "trainer.seed=1")
            assert GlobalHydra.instance().is_initialized()
        assert first.run_dir != second.run_dir and first.status == second.status == "completed"
        assert root.handlers == logs and sys.argv == argv
        assert {s: signal.getsignal(s) for s in handlers} == handlers
        logging.getLogger("mine").warning("my own line")
        assert "my own line" not in (second.run_dir / "train.log").read_text()
        assert "my own line" in (tmp_path / "mine.log").read_text()
    finally:
        root.removeHandler(mine)
        mine.close()


def _signal_at(monkeypatch, where: str, sig: int) -> None:
    """Send ``sig`` to this process at ``where``: while Hydra composes, inside the folder's claim (the lock just
    taken), or while the run sets up (nothing written yet); the phase goes on for a moment, as an import would."""
    from nnexp import rundir
    from nnexp.run import Run

    def interrupt() -> None:
        os.kill(os.getpid(), sig)
        time.sleep(0.2)

    def then(original):  # noqa: ANN001, ANN202
        def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            value = original(*args, **kwargs)
            interrupt()
            return value

        return wrapped

    if where == "compose":
        monkeypatch.setattr(rundir, "planned", then(rundir.planned))
    elif where == "lock":
        monkeypatch.setattr(folder_lock.FolderLock, "acquire", then(folder_lock.FolderLock.acquire))
    else:
        monkeypatch.setattr(Run, "setup", then(Run.setup))


@pytest.mark.parametrize("where", ["compose", "lock", "setup"])
@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_before_training_raises_its_exit_code_and_leaves_no_folder(tmp_path, monkeypatch, where, name,
                                                                             code):
    """The CLI ends its process at once there (os._exit); from Python the call ends instead, with the same line
    and exit code, nothing left behind, and the caller's process goes on."""
    monkeypatch.chdir(tmp_path)
    _signal_at(monkeypatch, where, getattr(signal, name))
    with pytest.raises(nnexp.NnexpRunError) as raised:
        nnexp.train(*QUICK, "trainer.epochs=1", "hydra.run.dir=R")
    assert raised.value.exit_code == code
    assert str(raised.value) == "nnexp: interrupted" + ("" if name == "SIGINT" else f" ({name})")
    assert not (tmp_path / "R").exists() and not folder_lock.held()


def test_ctrl_c_while_claiming_a_run_to_continue_leaves_it_free_to_continue(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = nnexp.train(*QUICK, "trainer.epochs=1", "hydra.run.dir=R")
    assert first.status == "completed"
    with monkeypatch.context() as patch:
        _signal_at(patch, "lock", signal.SIGINT)
        with pytest.raises(nnexp.NnexpRunError) as raised:
            nnexp.train(*QUICK, "trainer.epochs=2", "hydra.run.dir=R", "trainer.resume=auto")
    assert raised.value.exit_code == 130 and not folder_lock.held()  # the lock file was there: released all the same
    again = nnexp.train(*QUICK, "trainer.epochs=2", "hydra.run.dir=R", "trainer.resume=auto")
    assert again.status == "completed" and again.summary["resumed_from"]["epoch"] == 1


def test_ctrl_c_while_training_stops_politely_and_the_same_call_continues_it(tmp_path, monkeypatch):
    from nnexp.recorder import Recorder

    monkeypatch.chdir(tmp_path)
    args = [*QUICK, "regularizer=none", "trainer.epochs=4"]
    epoch_end = Recorder.epoch_end

    def ctrl_c_after_epoch_2(self, epoch, *rest):  # noqa: ANN001, ANN002, ANN202 - the notebook's interrupt button
        epoch_end(self, epoch, *rest)
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as patch:
        patch.setattr(Recorder, "epoch_end", ctrl_c_after_epoch_2)
        with pytest.raises(nnexp.NnexpRunError) as raised:
            nnexp.train(*args)
    stopped = raised.value.result
    assert raised.value.exit_code == 130 and stopped.status == "interrupted"
    assert str(raised.value) == f"Run interrupted: {stopped.summary['message']}." and "after epoch 2" in str(raised.value)
    assert (stopped.run_dir / "checkpoints" / "last.pt").is_file()
    again = nnexp.train(*args, "trainer.resume=auto")
    assert again.run_dir == stopped.run_dir and again.status == "completed" and again.summary["epochs_run"] == 4


def test_a_second_ctrl_c_while_held_back_raises_at_once():
    from nnexp import signals

    with signals.in_process(), pytest.raises(KeyboardInterrupt), signals.exit_at_once():
        os.kill(os.getpid(), signal.SIGINT)  # held back: the phase goes on
        os.kill(os.getpid(), signal.SIGINT)  # the user insists
        time.sleep(5)
        pytest.fail("the second Ctrl-C did not interrupt")


def test_progress_auto_is_the_live_bar_in_a_notebook(monkeypatch):
    """A notebook's stdout is no TTY; rich draws its live bar there where ipywidgets is installed."""
    import builtins
    import importlib.util

    from nnexp.console import Reporter

    assert Reporter("auto").mode == "plain"  # pytest's captured stdout: no TTY, no notebook
    shell = type("ZMQInteractiveShell", (), {})()  # what Jupyter's kernel is, to rich
    monkeypatch.setattr(builtins, "get_ipython", lambda: shell, raising=False)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "ipywidgets"
                        else find_spec(name, *a))
    assert Reporter("auto").mode == "rich"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets"
                        else find_spec(name, *a))
    assert Reporter("auto").mode == "plain"  # rich would warn and draw nothing: a line per epoch instead


def test_import_nnexp_stays_light_and_the_module_names_still_work():
    code = ("import sys, inspect\n"
            "import nnexp\n"
            "api = (nnexp.train, nnexp.RunResult, nnexp.SweepResult, nnexp.ReportResult, nnexp.NnexpRunError)\n"
            "from nnexp import report_cmd, sweep_jobs\n"
            "assert report_cmd.main and sweep_jobs.finish  # importing the modules leaves the functions be\n"
            "assert inspect.isfunction(nnexp.sweep) and inspect.isfunction(nnexp.report)\n"
            "assert list(inspect.signature(nnexp.report).parameters) == ['paths', 'check']\n"
            "print(*sorted(m for m in ('torch', 'hydra') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
