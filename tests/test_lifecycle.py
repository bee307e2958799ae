"""A run has one owner and one life (nnexp/lifecycle.py): running a command again never changes a finished run,
resume takes only the user's run and only with its own config, a fresh run never writes over another, an error
deletes nothing the user had, and one process at a time holds a folder. Each test reproduces a finding of issue 14."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import read_summary

from nnexp import lifecycle

RUN = ["dataset=moons", "dataset.n_samples=400", "model.hidden=[8]", "trainer.progress=none", "trainer.threads=1",
       "trainer.pictures_every=0", "trainer.histograms_every=0"]
# stops early for sure: patience 0 ends the run at the first epoch that does not improve on the best
EARLY = [*RUN, "regularizer=early_stopping", "regularizer.early_stopping.patience=0", "trainer.epochs=200"]


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder and its bytes (the lock file aside: it only says who holds the folder)."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != lifecycle.LOCK_FILE}


def _train(run_cli, run_dir: Path, *args: str) -> tuple[int, str, str]:
    return run_cli("train", *args, f"hydra.run.dir={run_dir}")


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# 1. a finished run does not change when its command runs again


def test_resume_auto_on_an_early_stopped_run_changes_nothing_until_asked(run_cli, tmp_path):
    run_dir = tmp_path / "R"
    code, _, err = _train(run_cli, run_dir, *EARLY, "trainer.resume=auto")
    assert code == 0, err
    first = read_summary(run_dir)
    assert first["status"] == "early_stopped" and first["epochs_run"] < 200
    before = _files(run_dir)
    for _ in range(2):  # the README's command, and a scheduler's requeue, run it again
        code, out, err = _train(run_cli, run_dir, *EARLY, "trainer.resume=auto")
        assert code == 0, err
        assert f"already finished (early_stopped after epoch {first['epochs_run']}; best val/loss" in out
        assert "trainer.resume_finished=true" in out
        assert _files(run_dir) == before
    # asked for explicitly, it trains on: patience starts over, so at least one more epoch
    code, out, err = _train(run_cli, run_dir, *EARLY, "trainer.resume=auto", "trainer.resume_finished=true")
    assert code == 0, err
    again = read_summary(run_dir)
    assert again["epochs_run"] > first["epochs_run"] and again["resumed_from"]["epoch"] == first["epochs_run"]


def test_a_completed_run_trains_longer_only_when_given_more_epochs(run_cli, tmp_path):
    run_dir = tmp_path / "R"
    assert _train(run_cli, run_dir, *RUN, "trainer.epochs=3")[0] == 0
    before = _files(run_dir)
    code, out, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=3", "trainer.resume=auto")
    assert code == 0, err
    assert "already finished (completed after epoch 3" in out and "trainer.epochs > 3" in out
    assert _files(run_dir) == before
    code, _, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=5", "trainer.resume=auto")
    assert code == 0, err
    s = read_summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == 5 and s["resumed_from"]["epoch"] == 3


_SIGNAL_AFTER_SUMMARY = """
import os, signal, sys
from nnexp import record
write = record.write
def write_then_signal(run_dir, summary):
    write(run_dir, summary)
    if summary.status.value == "completed":
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's SIGTERM just after the run ended
record.write = write_then_signal
from nnexp.cli import main
main(sys.argv[1:])
"""


def test_a_signal_after_the_summary_is_written_does_not_make_the_run_interrupted(tmp_path):
    run_dir = tmp_path / "R"
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_AFTER_SUMMARY, "train", *RUN, "trainer.epochs=2",
                           f"hydra.run.dir={run_dir}"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr  # not 143: nothing is left for a requeue to redo
    assert read_summary(run_dir)["status"] == "completed"


_SIGNAL_WHILE_STARTING = """
import os, signal, sys, time
from nnexp import folder_lock, lifecycle
where, sig = sys.argv[1], getattr(signal, sys.argv[2])
def interrupt():
    os.kill(os.getpid(), sig)
    time.sleep(10)  # the signal is handled while this runs, as when it lands inside an import
if where == "lock":  # the moment the lock file exists, still inside claim()
    acquire = folder_lock.FolderLock.acquire
    def acquire_then_signal(self):
        acquire(self)
        interrupt()
        return self
    folder_lock.FolderLock.acquire = acquire_then_signal
else:  # while the run sets up (torch imported, model built, nothing written)
    from nnexp import run
    run.Run.setup = lambda self: interrupt()
from nnexp.cli import main
main(sys.argv[3:])
"""


@pytest.mark.parametrize("where", ["lock", "setup"])
@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_before_training_ends_the_command_with_one_line_and_leaves_no_folder(tmp_path, where, sig, code):
    """Fault F02/F82 of issue 14's pass: a signal inside claim() left the lock file behind; one inside an import
    (numpy.linalg, while torch's optimizer loads) was swallowed there and the run trained on to exit 0."""
    run_dir = tmp_path / "R"
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_WHILE_STARTING, where, sig, "train", *RUN,
                           f"hydra.run.dir={run_dir}"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == code, proc.stderr
    assert _one_line(proc.stderr) == "nnexp: interrupted" + ("" if sig == "SIGINT" else f" ({sig})")
    assert not run_dir.exists()


# 2. resume=auto takes only the user's run


def _unfinished(run_cli, run_dir: Path, *args: str) -> None:
    """A run as SIGKILL leaves it: checkpoints, curves, no summary.json."""
    assert _train(run_cli, run_dir, *RUN, "trainer.epochs=2", *args)[0] == 0
    (run_dir / "summary.json").unlink()


def test_resume_auto_with_a_named_folder_never_continues_another_run(run_cli, tmp_path):
    theirs, mine = tmp_path / "outputs" / "theirs", tmp_path / "outputs" / "mine"
    _unfinished(run_cli, theirs)
    before = _files(theirs)
    code, _, err = _train(run_cli, mine, *RUN, "trainer.epochs=4", "trainer.resume=auto")
    assert code == 0, err
    s = read_summary(mine)
    assert s["status"] == "completed" and s["resumed_from"] is None and s["epochs_run"] == 4
    assert _files(theirs) == before


def test_resume_auto_without_a_folder_skips_a_run_another_process_holds(run_cli, tmp_path):
    runs = tmp_path / "outputs" / "runs"
    held = runs / "2026-01-01" / "00-00-00_aaaaaa"
    _unfinished(run_cli, held)
    lock = lifecycle.FolderLock(held).acquire()  # another process is continuing it right now
    try:
        code, _, err = run_cli("train", *RUN, "trainer.epochs=2", "trainer.resume=auto")
    finally:
        lock.release()
    assert code == 0, err
    assert not (held / "summary.json").exists()  # left to its holder
    new = [p for p in runs.glob("*/*") if p != held]
    assert len(new) == 1 and read_summary(new[0])["resumed_from"] is None
    # once nobody holds it, the same command continues it
    code, _, err = run_cli("train", *RUN, "trainer.epochs=3", "trainer.resume=auto")
    assert code == 0, err
    assert read_summary(held)["resumed_from"]["epoch"] == 2


# 3. resume with a changed config is refused, or applied for real when asked


@pytest.mark.parametrize(("change", "named"), [(["optimizer.lr=0.05", "trainer.seed=7"],
                                                 ["optimizer.lr: 0.001 -> 0.05", "trainer.seed: 0 -> 7"]),
                                                (["optimizer=sgd"], ["optimizer._target_"])])
def test_resuming_with_another_config_is_refused_naming_the_keys(run_cli, tmp_path, change, named):
    run_dir = tmp_path / "R"
    assert _train(run_cli, run_dir, *RUN, "trainer.epochs=2")[0] == 0
    before = _files(run_dir)
    code, _, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=4", "trainer.resume=auto", *change)
    assert code == 2
    line = _one_line(err)
    assert line.startswith("nnexp: error: trainer.resume: this command's config differs from the run") and \
        all(n in line for n in named) and "trainer.resume_config=new" in line, line
    assert _files(run_dir) == before  # the finished run's record, config and curves untouched


def test_resume_config_new_applies_the_new_values_for_real(run_cli, tmp_path):
    run_dir = tmp_path / "R"
    assert _train(run_cli, run_dir, *RUN, "trainer.epochs=2", "optimizer.lr=0.001")[0] == 0
    code, _, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=4", "trainer.resume=auto", "optimizer.lr=0.05",
                          "trainer.seed=7", "trainer.resume_config=new")
    assert code == 0, err
    s = read_summary(run_dir)
    assert s["seed"] == 7 and s["resumed_from"]["changed"] == {"optimizer.lr": [0.001, 0.05], "trainer.seed": [0, 7]}
    rows = [line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines()]
    lr = rows[0].index("lr")
    assert [float(r[lr]) for r in rows[1:]] == [0.001, 0.001, 0.05, 0.05]  # the new epochs train at the new lr
    assert "lr: 0.05" in (run_dir / ".hydra" / "config.yaml").read_text()
    # another optimizer: its state starts afresh instead of a KeyError
    code, _, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=5", "trainer.resume=auto", "optimizer=sgd",
                          "optimizer.lr=0.05", "trainer.seed=7", "trainer.resume_config=new")
    assert code == 0, err
    assert read_summary(run_dir)["epochs_run"] == 5 and "the optimizer changed" in err


# 4. a fresh run never writes into a folder that holds a run; 5. an error deletes nothing the user had


def test_a_new_run_into_a_folder_that_holds_a_run_is_refused(run_cli, tmp_path):
    run_dir = tmp_path / "R"
    assert _train(run_cli, run_dir, *RUN, "trainer.epochs=2")[0] == 0
    before = _files(run_dir)
    code, _, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=2")
    assert code == 2
    line = _one_line(err)
    assert f"hydra.run.dir={run_dir} already holds a completed run" in line
    assert "another hydra.run.dir" in line and "trainer.resume=auto" in line
    assert _files(run_dir) == before


@pytest.mark.parametrize("extra", [[], ["trainer.resume=auto"]])
def test_a_config_error_leaves_an_existing_run_as_it_was(run_cli, tmp_path, extra):
    run_dir = tmp_path / "R"
    assert _train(run_cli, run_dir, *RUN, "trainer.epochs=2")[0] == 0
    before = _files(run_dir)
    assert ".hydra/config.yaml" in before and ".hydra/overrides.yaml" in before
    code, _, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=4", "optimizer.lr=-1", *extra)
    assert code == 2
    assert "optimizer.lr" in _one_line(err) or "already holds" in _one_line(err)
    assert _files(run_dir) == before


def test_a_config_error_in_a_new_folder_leaves_nothing(run_cli, tmp_path):
    run_dir = tmp_path / "new"
    code, _, err = _train(run_cli, run_dir, *RUN, "optimizer.lr=-1")
    assert code == 2 and "optimizer.lr" in _one_line(err)
    assert not run_dir.exists()


# the lock: one process per folder


def test_a_folder_another_process_holds_is_refused_naming_its_pid(run_cli, tmp_path):
    run_dir = tmp_path / "R"
    run_dir.mkdir()
    lock = lifecycle.FolderLock(run_dir).acquire()
    try:
        code, _, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=2")
    finally:
        lock.release()
    assert code == 2
    assert f"{run_dir} is in use by another nnexp run (PID {os.getpid()} on" in _one_line(err)
    assert not (run_dir / "summary.json").exists()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_line(run_cli, tmp_path):
    run_dir = tmp_path / "R"
    run_dir.mkdir()
    (run_dir / lifecycle.LOCK_FILE).write_text("PID 999999 on elsewhere since 2026-01-01 00:00:00\n")
    code, _, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=2")
    assert code == 0, err
    assert "took over the lock left by a process that is gone (PID 999999 on elsewhere" in err
    assert lifecycle.busy(run_dir) is None and read_summary(run_dir)["status"] == "completed"


# 6. the same sweep started twice at once


def test_the_same_sweep_started_twice_runs_each_job_once(tmp_path):
    args = [sys.executable, "-m", "nnexp", "train", "-m", *RUN, "dataset.n_samples=3000", "trainer.epochs=30",
            "trainer.seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job0 = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job0 is None:
        found = [d for d in (tmp_path / "sweep").glob("0_*") if lifecycle.busy(d)]
        job0 = found[0] if found else None
        time.sleep(0.05)
    assert job0 is not None, "the first sweep never started its first job"
    second = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert "running in another process" in second.stdout, second.stdout
    for job in (tmp_path / "sweep").glob("[0-9]_*"):
        rows = (job / "metrics.csv").read_text().splitlines()[1:]
        assert [int(r.split(",")[0]) for r in rows] == list(range(1, 31)), job  # each epoch once
        assert read_summary(job)["status"] == "completed"


# 9. best.pt missing on resume


def test_best_weights_missing_on_resume_are_said_and_recorded(run_cli, tmp_path):
    run_dir = tmp_path / "R"
    args = [*RUN, "regularizer=early_stopping", "regularizer.early_stopping.patience=50", "trainer.epochs=4"]
    _unfinished(run_cli, run_dir, *args[len(RUN):])
    (run_dir / "checkpoints" / "best.pt").unlink()
    code, _, err = _train(run_cli, run_dir, *args, "trainer.epochs=6", "trainer.resume=auto")
    assert code == 0, err
    assert "best.pt is missing or unreadable: the best weights (epoch" in err
    s = read_summary(run_dir)
    assert any("best.pt is missing" in w for w in s["warnings"])
    if not s["restored_best"]:  # a later epoch may have beaten the lost best; if not, nothing claims it did
        assert s["best_epoch"] != s["epochs_run"] or s["best"] == s["final"]


def test_a_run_killed_before_its_first_checkpoint_starts_over_under_resume_auto(run_cli, tmp_path):
    """trainer.checkpoint_every_s holds checkpoints back: a SIGKILL in the first seconds leaves curves, no
    checkpoint. resume=auto then trains from epoch 1 again, keeping the earlier start, instead of failing."""
    run_dir = tmp_path / "R"
    _unfinished(run_cli, run_dir)
    shutil.rmtree(run_dir / "checkpoints")
    earlier = (run_dir / "metrics.csv").read_text()
    code, out, err = _train(run_cli, run_dir, *RUN, "trainer.epochs=3", "trainer.resume=auto")
    assert code == 0, err
    assert "no checkpoint yet, so the run starts over" in out + err
    s = read_summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == 3 and s["resumed_from"] is None
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3]
    assert (run_dir / "previous" / "1" / "metrics.csv").read_text() == earlier


# 12 (part): SIGHUP, and Ctrl-C / SIGTERM while starting


def _started(run_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nnexp", "train", *RUN, "dataset.n_samples=3000", *args,
                             f"hydra.run.dir={run_dir}"], cwd=run_dir.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_sighup_stops_a_run_like_sigterm_and_it_resumes(tmp_path):
    run_dir = tmp_path / "R"
    proc = _started(run_dir, "trainer.epochs=100000")
    deadline = time.monotonic() + 120
    metrics = run_dir / "metrics.csv"  # a few epochs done (checkpoints are held up to 5 s: the stop writes them)
    while proc.poll() is None and time.monotonic() < deadline and \
            (not metrics.is_file() or len(metrics.read_text().splitlines()) < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 129, err
    s = read_summary(run_dir)
    assert s["status"] == "interrupted" and s["signal"] == "SIGHUP"
    proc = _started(run_dir, "trainer.resume=auto", f"trainer.epochs={s['epochs_run'] + 1}")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("after", [0.3, 1.5])
def test_a_signal_while_starting_is_one_line_and_leaves_no_folder(tmp_path, sig, code, after):
    run_dir = tmp_path / "R"
    proc = _started(run_dir, "trainer.epochs=2")
    time.sleep(after)  # importing Hydra, then torch, then building
    if proc.poll() is not None:
        pytest.fail(f"the run ended within {after} s: {proc.stderr.read()}")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # it had already reached training and finished: nothing to check here
        return
    # Ctrl-C: 130, or Python ending itself by SIGINT after the line (it does so when the KeyboardInterrupt went
    # through code that torch's extensions run), which a shell reports as 130 all the same
    assert proc.returncode in ((code, -sig) if sig == signal.SIGINT else (code,)), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not run_dir.exists() or json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
