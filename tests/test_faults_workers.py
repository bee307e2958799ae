"""A parallel sweep's workers stop with it (issue 14, item 8; nnexp/sweep_workers.py).

Each test starts a real `nnexp train -m` sweep of two long jobs with a launcher that runs them in other
processes (joblib's loky workers, submitit_local's job processes), waits until both jobs train, notes
every process of the sweep, and signals the sweep's main process. SIGTERM/SIGINT: the jobs end as a
signal ends a single run (status interrupted, resumable) and the command exits 143/130 with no process
left. SIGKILL: no worker outlives the main process by more than a few seconds, and the same command run
again continues the jobs instead of skipping them. Before the fix, loky's workers and submitit's job
processes trained on after the main process was gone. Linux (/proc).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")

# two jobs far longer than a test: they are always stopped, never finish
SWEEP = ["dataset=xor", "regularizer=none", "trainer.epochs=100000", "trainer.progress=none",
         "trainer.tensorboard=false", "trainer.pictures_every=0", "trainer.histograms_every=0",
         "trainer.threads=1", "trainer.resume=auto", "trainer.seed=0,1"]
LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    # three workers for two jobs: one never gets a job (as when n_jobs, one per core by default, exceeds the jobs)
    "joblib_idle": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"],
    "submitit_local": ["hydra/launcher=submitit_local"],
}
GONE_WITHIN_S = 15.0  # a few seconds: the watchers look twice a second; the rest is the job's last step


def _plugin(launcher: str) -> None:
    name = "hydra_submitit_launcher" if launcher.startswith("submitit") else "hydra_joblib_launcher"
    pytest.importorskip(f"hydra_plugins.{name}", reason="pip install -e '.[sweep]'")


class Sweep:
    """`nnexp train -m ...` in its own process group; its output in files (the workers share them)."""

    def __init__(self, cwd: Path, launcher: str, name: str) -> None:
        self.cwd, self.name = cwd, name
        self.out, self.err = cwd / f"{name}.out", cwd / f"{name}.err"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "nnexp", "train", "-m", *LAUNCHERS[launcher], *SWEEP],
                                         cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)

    def output(self) -> str:
        return f"--- stdout\n{self.out.read_text()}\n--- stderr\n{self.err.read_text()}"

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the sweep did not end within {timeout:.0f} s\n{self.output()}")

    def kill_all(self) -> None:
        """Whatever is left of the sweep's process group (the test's own clean-up)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


@pytest.fixture
def sweeps():
    started: list[Sweep] = []
    yield started
    for sweep in started:
        sweep.kill_all()


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name: [state, ppid, ...], or None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` now, with its start time (so that a reused pid is not taken for it)."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
            started[int(entry)] = fields[19]
    found, todo = {}, list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found[child] = started[child]
        todo.extend(children.get(child, []))
    return found


def _alive(processes: dict[int, str]) -> list[int]:
    alive = []
    for pid, start in processes.items():
        fields = _stat(pid)
        if fields is not None and fields[0] not in ("Z", "X") and fields[19] == start:
            alive.append(pid)
    return alive


def _jobs(cwd: Path) -> list[Path]:
    return sorted(p for p in (cwd / "outputs" / "multirun").glob("*/*/*") if p.is_dir() and not p.name.startswith("."))


def _rows(job: Path) -> int:
    try:
        return max(0, len((job / "metrics.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def _wait_until_training(sweep: Sweep, more_than: dict[Path, int] | None = None, timeout: float = 240) -> dict[Path, int]:
    """Both jobs have written epochs (more than ``more_than``); their rows now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = _jobs(sweep.cwd)
        rows = {job: _rows(job) for job in jobs}
        if len(jobs) == 2 and all(n > (more_than or {}).get(job, 0) for job, n in rows.items()):
            return rows
        if sweep.proc.poll() is not None:
            pytest.fail(f"the sweep ended before its jobs trained (exit {sweep.proc.returncode})\n{sweep.output()}")
        time.sleep(0.2)
    pytest.fail(f"the jobs did not train within {timeout:.0f} s\n{sweep.output()}")


def _workers(sweep: Sweep) -> dict[int, str]:
    processes = _descendants(sweep.proc.pid)
    assert len(processes) >= 2, processes  # at least the two processes running the jobs
    return processes


def _assert_all_gone(processes: dict[int, str], sweep: Sweep, within: float = GONE_WITHIN_S) -> float:
    """Seconds until the last of ``processes`` ended."""
    started = time.monotonic()
    while (alive := _alive(processes)) and time.monotonic() - started < within:
        time.sleep(0.1)
    assert not alive, f"still running {within:.0f} s after: {alive}\n{sweep.output()}"
    # nor the sweep's control folder (nnexp/sweep_workers.py)
    assert not list(Path(tempfile.gettempdir()).glob(f"nnexp-sweep-{sweep.proc.pid}-*"))
    return time.monotonic() - started


def _summaries(jobs: list[Path]) -> list[dict]:
    return [json.loads((job / "summary.json").read_text()) for job in jobs]


def _assert_stopped_like_a_run(jobs: list[Path], signal_name: str, sweep: Sweep) -> list[dict]:
    for job in jobs:
        assert (job / "summary.json").exists(), f"{job.name}: no summary.json\n{sweep.output()}"
    summaries = _summaries(jobs)
    assert [s["status"] for s in summaries] == ["interrupted", "interrupted"], sweep.output()
    assert [s["signal"] for s in summaries] == [signal_name, signal_name], sweep.output()
    for job in jobs:
        assert (job / "checkpoints" / "last.pt").exists()  # resumable
    return summaries


@pytest.mark.parametrize(("launcher", "signum", "group"), [
    ("joblib", signal.SIGTERM, False),  # `kill PID`, a scheduler's SIGTERM: the main process passes it on
    ("submitit_local", signal.SIGINT, False),
    # Ctrl-C in a terminal signals every process of its group: each job gets SIGINT from it, and the main
    # process must not pass on a second one (that would mean "stop at once")
    ("joblib", signal.SIGINT, True),
])
def test_a_signal_to_the_sweep_stops_its_jobs_as_a_run_and_leaves_no_worker(launcher, signum, group, tmp_path,
                                                                             sweeps):
    _plugin(launcher)
    sweep = Sweep(tmp_path, launcher, "first")
    sweeps.append(sweep)
    _wait_until_training(sweep)
    processes = _workers(sweep)
    if group:
        os.killpg(sweep.proc.pid, signum)
    else:
        os.kill(sweep.proc.pid, signum)
    assert sweep.wait() == 128 + signum, sweep.output()
    _assert_all_gone(processes, sweep, within=5)  # the command waited for its jobs: nothing is left behind
    summaries = _assert_stopped_like_a_run(_jobs(tmp_path), signal.Signals(signum).name, sweep)
    assert all(s["error"] is None for s in summaries), summaries  # after a step, not by KeyboardInterrupt
    assert "the sweep stopped; run the same command again to continue it" in sweep.err.read_text()


def test_sigkill_of_the_sweep_leaves_no_worker_and_the_same_command_continues_its_jobs(tmp_path, sweeps):
    _plugin("joblib")
    sweep = Sweep(tmp_path, "joblib_idle", "first")
    sweeps.append(sweep)
    _wait_until_training(sweep)
    processes = _workers(sweep)
    workers = [pid for pid in processes if b"popen_loky" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 3, processes  # the idle one too
    os.kill(sweep.proc.pid, signal.SIGKILL)
    assert sweep.wait() == -signal.SIGKILL
    _assert_all_gone(processes, sweep)
    jobs = _jobs(tmp_path)
    # before they ended, the workers stopped their jobs as SIGTERM stops a run: records and checkpoints
    epochs = [s["epochs_run"] for s in _assert_stopped_like_a_run(jobs, "SIGTERM", sweep)]

    again = Sweep(tmp_path, "joblib_idle", "again")  # the same command: the same sweep, its jobs continued
    sweeps.append(again)
    rows = _wait_until_training(again, more_than={job: _rows(job) for job in jobs})
    assert _jobs(tmp_path) == jobs and set(rows) == set(jobs)
    processes = _workers(again)
    os.kill(again.proc.pid, signal.SIGINT)
    assert again.wait() == 130, again.output()
    _assert_all_gone(processes, again, within=5)
    summaries = _assert_stopped_like_a_run(jobs, "SIGINT", again)
    assert [s["resumed_from"]["epoch"] for s in summaries] == epochs  # continued where each one stopped
    assert "already done (" not in again.out.read_text()  # no job skipped as finished


def test_sigkill_of_a_submitit_sweep_leaves_no_job_process(tmp_path, sweeps):
    """submitit_local: a controller process per job, the job in a process below it."""
    _plugin("submitit_local")
    sweep = Sweep(tmp_path, "submitit_local", "first")
    sweeps.append(sweep)
    _wait_until_training(sweep)
    processes = _workers(sweep)
    assert len(processes) == 4, processes
    os.kill(sweep.proc.pid, signal.SIGKILL)
    assert sweep.wait() == -signal.SIGKILL
    _assert_all_gone(processes, sweep)
    _assert_stopped_like_a_run(_jobs(tmp_path), "SIGTERM", sweep)


def test_where_no_job_runs_elsewhere_the_signals_do_what_they_did_before(tmp_path):
    """One run, or the basic launcher: the main process's handler passes each signal on to the one before
    it (SIGTERM's default ends the process, Ctrl-C raises KeyboardInterrupt), and leaving puts back the
    handlers and the environment."""
    code = """if True:
        import os, signal, sys, time
        from nnexp import sweep_workers
        before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), os.environ.get("NNEXP_SWEEP_PARENT")
        with sweep_workers.main_process():
            assert os.environ["NNEXP_SWEEP_PARENT"] == str(os.getpid())
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                print("KeyboardInterrupt", flush=True)
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
                os.environ.get("NNEXP_SWEEP_PARENT")) == before
        with sweep_workers.main_process():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        print("not reached")
    """
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("NNEXP_SWEEP")})
    assert proc.stdout == "KeyboardInterrupt\n", proc.stderr
    assert proc.returncode == -signal.SIGTERM, proc.stderr
