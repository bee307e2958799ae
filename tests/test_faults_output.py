"""Output is never a reason to lose a run (issue 14): a closed pipe, a full disk, a folder where a file goes,
the run folder removed while training. Each case runs the real entry point: the pipes in a subprocess
whose stdout/stderr is a pipe without a reader, the rest in-process with the writing call patched to fail
the way the OS does (``OSError(ENOSPC)``)."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import read_summary

# the entry point in a subprocess, after a patch
DRIVER = """
import os, sys
{patch}
from nnexp.cli import main
main(sys.argv[1:])
"""
FAST = ("dataset=moons", "model.hidden=[8]", "trainer.threads=1", "trainer.progress=none")
NO_SPACE = os.strerror(28)  # "No space left on device"


def _command(patch: str, *args: str) -> list[str]:
    return [sys.executable, "-c", DRIVER.format(patch=textwrap.dedent(patch)), *args]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def nnexp(cwd: Path, *args: str, **streams) -> subprocess.CompletedProcess:
    """``nnexp <args>`` in a subprocess (text, stdout and stderr captured unless ``streams`` says otherwise)."""
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **streams}
    return subprocess.run(_command("", *args), cwd=cwd, env=_env(), text=True, timeout=300, **streams)


def one_error_line(err: str) -> str:
    """stderr holds exactly one line, ``nnexp: error: ...``, and no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnexp: error: "), err
    assert "Traceback" not in err and "Exception" not in err
    return lines[0]


def closed_pipe() -> int:
    """The write end of a pipe whose reader already went away."""
    read, write = os.pipe()
    os.close(read)
    return write


# 1. a closed stdout or stderr stops printing, not training


# the first epoch line waits until the test has closed the pipe, so the run writes into a closed pipe for sure
WAIT_FOR_READER_TO_GO = """
import pathlib, time
from nnexp import console
_epoch = console.Reporter.epoch
def epoch(self, *args, **kwargs):
    deadline = time.monotonic() + 60  # (never a hang, should the test not get its line)
    while not pathlib.Path(os.environ["NNEXP_TEST_GO"]).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    _epoch(self, *args, **kwargs)
console.Reporter.epoch = epoch
"""


def test_stdout_closed_by_its_reader_stops_the_output_not_the_run(tmp_path):
    """`nnexp train | head -1`: the reader reads the first line and goes away; the run completes, exit 0."""
    run_dir, go = tmp_path / "r", tmp_path / "go"
    proc = subprocess.Popen(_command(WAIT_FOR_READER_TO_GO, "train", *FAST, "trainer.progress=plain",
                                     "trainer.epochs=3", f"hydra.run.dir={run_dir}"),
                            cwd=tmp_path, env=_env(NNEXP_TEST_GO=str(go)), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    go.touch()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err
    assert first.startswith("nnexp: mlp on moons")
    assert "Broken" not in err and "Traceback" not in err and "Exception ignored" not in err, err
    s = read_summary(run_dir)
    assert (s["status"], s["epochs_run"]) == ("completed", 3)
    assert "stdout: Broken pipe; its output stops here, the run goes on" in (run_dir / "train.log").read_text()


def test_stdout_and_stderr_closed_keep_the_exit_code_and_the_record(tmp_path):
    """Nobody reads either stream from the start (`2>&1 | head -0`): the live progress bar finds stdout
    closed, and a diverging run's one line at its end finds stderr closed; it still exits 3 with the record
    saying diverged."""
    run_dir, pipe = tmp_path / "r", closed_pipe()
    proc = nnexp(tmp_path, "train", *FAST, "trainer.progress=rich", "optimizer=sgd", "optimizer.lr=1e30",
                 "regularizer=none", "trainer.epochs=5", f"hydra.run.dir={run_dir}", stdout=pipe, stderr=pipe)
    os.close(pipe)
    assert proc.returncode == 3
    assert read_summary(run_dir)["status"] == "diverged"
    log = (run_dir / "train.log").read_text()
    assert "stdout: Broken pipe" in log and "stderr: Broken pipe" in log


# 2. a full disk: one line naming the file, summary.json whenever it can be written, no thread traceback


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def tensorboard_fills_up(monkeypatch, full: list) -> None:
    """TensorBoard's event file (written by its writer thread through this file system) finds the disk full
    once ``full`` holds something."""
    from tensorboard.compat.tensorflow_stub.io import gfile

    def fills_up(real):
        def write(self, filename, *args, **kwargs):
            if full:
                open(filename, "ab").close()  # as a full disk does: the file is there, its bytes do not fit
                disk_full()
            return real(self, filename, *args, **kwargs)
        return write

    for name in ("write", "append"):
        monkeypatch.setattr(gfile.LocalFileSystem, name, fills_up(getattr(gfile.LocalFileSystem, name)))


def test_disk_full_at_tensorboards_final_flush_is_one_line_and_a_failed_record(run_cli, tmp_path, monkeypatch):
    from nnexp import recorder

    run_dir, full, report = tmp_path / "r", [], recorder.Recorder.report

    def fill_up_then_report(self, *args, **kwargs):  # the disk fills up as the run ends: the final flush fails
        full.append(True)
        return report(self, *args, **kwargs)

    tensorboard_fills_up(monkeypatch, full)
    monkeypatch.setattr(recorder.Recorder, "report", fill_up_then_report)
    code, _, err = run_cli("train", *FAST, "trainer.epochs=2", f"hydra.run.dir={run_dir}")
    assert code == 1
    line = one_error_line(err)
    assert re.fullmatch(rf"nnexp: error: cannot write {re.escape(str(run_dir))}/events\.out\.tfevents\.\S+: "
                        rf"{NO_SPACE}", line), line
    s = read_summary(run_dir)  # written all the same, with what the run had learnt
    assert s["status"] == "failed" and "events.out.tfevents" in s["error"] and NO_SPACE in s["error"]
    assert s["epochs_run"] == 2 and s["final"]["val/loss"] is not None
    # the writer thread's traceback went to train.log, not the terminal
    assert "failed:\nTraceback" in (run_dir / "train.log").read_text()


def test_disk_full_when_reopening_the_event_file_on_resume(run_cli, tmp_path, monkeypatch):
    run_dir = tmp_path / "r"
    assert run_cli("train", *FAST, "trainer.epochs=2", f"hydra.run.dir={run_dir}")[0] == 0
    tensorboard_fills_up(monkeypatch, [True])
    code, _, err = run_cli("train", *FAST, "trainer.epochs=3", "trainer.resume=auto", f"hydra.run.dir={run_dir}")
    assert code == 1
    line = one_error_line(err)
    assert line.startswith(f"nnexp: error: cannot write {run_dir}/events.out.tfevents.") and NO_SPACE in line
    s = read_summary(run_dir)
    assert s["status"] == "failed" and NO_SPACE in s["error"]
    assert (run_dir / "checkpoints" / "last.pt").is_file()  # what the first run saved is still there


@pytest.mark.parametrize("every_s", ["0", "5"])  # a checkpoint every epoch: the second fails; the default: the only
def test_disk_full_for_a_checkpoint_names_it(run_cli, tmp_path, monkeypatch, every_s):
    from nnexp import checkpoint

    run_dir, real, calls = tmp_path / "r", checkpoint.atomic_write, []
    full_after = 1 if every_s == "0" else 0

    def atomic_write(path, *args, **kwargs):
        calls.append(path)
        if len(calls) > full_after:
            disk_full()
        return real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "atomic_write", atomic_write)
    code, _, err = run_cli("train", *FAST, "trainer.epochs=3", f"trainer.checkpoint_every_s={every_s}",
                           f"hydra.run.dir={run_dir}")
    assert code == 1
    line = one_error_line(err)
    assert re.fullmatch(rf"nnexp: error: cannot write {re.escape(str(run_dir))}/checkpoints/(best|last)\.pt: "
                        rf"{NO_SPACE}", line), line
    s = read_summary(run_dir)
    assert s["status"] == "failed" and "checkpoints" in s["error"] and NO_SPACE in s["error"]


def test_disk_full_for_metrics_csv_names_it(run_cli, tmp_path, monkeypatch):
    from nnexp import tracking

    class Filling:  # metrics.csv takes its header and first row, then the disk is full
        def __init__(self, f):
            self.f = f

        def write(self, text):
            if text.startswith("2,"):
                disk_full()
            return self.f.write(text)

        def __getattr__(self, name):
            return getattr(self.f, name)

    def filling_open(*args, **kwargs):
        return Filling(open(*args, **kwargs))  # noqa: SIM115 - the tracker closes it

    monkeypatch.setattr(tracking, "open", filling_open, raising=False)
    run_dir = tmp_path / "r"
    code, _, err = run_cli("train", *FAST, "trainer.epochs=3", f"hydra.run.dir={run_dir}")
    assert code == 1
    assert one_error_line(err) == f"nnexp: error: cannot write {run_dir / 'metrics.csv'}: {NO_SPACE}"
    assert read_summary(run_dir)["status"] == "failed"


def test_summary_json_that_cannot_be_written_is_one_line(run_cli, tmp_path, monkeypatch):
    from nnexp import atomic

    real = atomic.atomic_write

    def atomic_write(path, *args, **kwargs):
        if path.name == "summary.json":
            disk_full()
        return real(path, *args, **kwargs)

    monkeypatch.setattr(atomic, "atomic_write", atomic_write)
    run_dir = tmp_path / "r"
    code, _, err = run_cli("train", *FAST, "trainer.epochs=2", f"hydra.run.dir={run_dir}")
    assert code == 1
    assert one_error_line(err) == f"nnexp: error: cannot write {run_dir / 'summary.json'}: {NO_SPACE}"
    assert not (run_dir / "summary.json").exists()


def test_a_crash_never_points_at_a_train_log_that_could_not_be_written(run_cli, tmp_path, monkeypatch):
    from nnexp import recorder

    class Full:  # train.log: every line finds the disk full
        def write(self, text):
            disk_full()

        def flush(self):
            pass

        def close(self):
            pass

    def after_fit(self, result):
        raise RuntimeError("boom")

    monkeypatch.setattr(logging.FileHandler, "_open", lambda self: Full())
    monkeypatch.setattr(recorder.Recorder, "after_fit", after_fit)
    run_dir = tmp_path / "r"
    code, _, err = run_cli("train", *FAST, "trainer.epochs=2", f"hydra.run.dir={run_dir}")
    assert code == 1
    # not "--- Logging error ---" with a traceback per line, nor "(traceback in .../train.log)"
    assert one_error_line(err) == f"nnexp: error: RuntimeError: boom (train.log could not be written: {NO_SPACE})"
    assert read_summary(run_dir)["error"] == "RuntimeError: boom"


# 3. a folder where the run writes a file: refused before training


@pytest.mark.parametrize("name", ["summary.json", "metrics.csv", "train.log", "checkpoints/last.pt"])
def test_a_folder_where_a_run_file_goes_is_refused_before_training(run_cli, tmp_path, name):
    run_dir = tmp_path / "r"
    (run_dir / name).mkdir(parents=True)
    code, _, err = run_cli("train", *FAST, "trainer.epochs=50", f"hydra.run.dir={run_dir}")
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"nnexp: error: {run_dir / name} is a folder, but the run writes "), line
    assert not (run_dir / "metrics.csv").is_file()  # nothing trained
    assert not (run_dir / "summary.json").is_file()


def test_a_file_where_the_checkpoints_folder_goes_is_refused(run_cli, tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("not a folder")
    code, _, err = run_cli("train", *FAST, f"hydra.run.dir={run_dir}")
    assert code == 2
    assert one_error_line(err).startswith(f"nnexp: error: {run_dir / 'checkpoints'} is a file, but the run keeps")
    assert not (run_dir / "metrics.csv").is_file()


# 4. the run folder removed while training: one line, exit 1, no traceback, nothing brought back


@pytest.mark.parametrize("extra", [(), ("trainer.log_every_n_steps=1",), ("trainer.tensorboard=false",)])
def test_removing_the_run_folder_while_training_is_one_line(run_cli, tmp_path, monkeypatch, extra):
    from nnexp import loop

    run_dir, started, real = tmp_path / "r", [], loop.train_one_epoch

    def train_one_epoch(*args, epoch, **kwargs):
        started.append(epoch)
        if epoch == 2:  # rm -rf the run folder (again if a write in flight was creating a file in it)
            while run_dir.exists():
                shutil.rmtree(run_dir, ignore_errors=True)
                time.sleep(0.01)
        return real(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(loop, "train_one_epoch", train_one_epoch)
    code, _, err = run_cli("train", *FAST, "trainer.epochs=5", f"hydra.run.dir={run_dir}", *extra)
    assert code == 1
    line = one_error_line(err)
    assert line.startswith(f"nnexp: error: run folder {run_dir} was removed while training"), line
    assert started == [1, 2]  # stopped at the end of the epoch it was removed in, at the latest
    assert not run_dir.exists()  # nothing brought it back
