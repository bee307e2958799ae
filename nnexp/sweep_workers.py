"""A parallel sweep's worker processes stop with it and never outlive it (joblib/loky, submitit_local).

Left alone, loky's workers and submitit's job processes run on when the sweep's main process gets a
signal or dies. Two sides, joined by two environment variables the main process exports before Hydra
launches anything (:func:`main_process`, in ``app.train``) and every worker inherits:

- **the main process**: the first SIGINT, SIGTERM or SIGHUP asks the jobs running elsewhere to stop
  after their current step, waits until they did (records: interrupted, resumable), exits 128 + signal;
  Ctrl-C again stops at once. Where no job ran elsewhere (one run, the basic launcher), the signal
  goes to the handler there was before.
- **a worker** (:func:`job_starts` in ``app.task``): a daemon thread checks every ``POLL_S`` that the
  main process is still its ancestor and whether it asked for a stop, passed on to the job as the same
  signal unless the job got one itself (Ctrl-C reaches the whole terminal group; a second SIGINT means
  "at once"). Once the main process is gone (SIGKILL, a crash) the job is asked to stop with SIGTERM
  and the worker exits when it ended (``GRACE_S`` at most), at once when idle, ending first the loky
  workers beside it that run no job (those that never got one run no nnexp code to watch with). No
  job starts after a stop was asked for or the main process died.

The control folder (temporary, ``CONTROL_ENV``) holds ``stop`` (the signal's number) and ``jobs/<pid>``
(while that worker runs a job). The process tree comes from /proc (nnexp/proctree.py). No torch, no Hydra.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import CodeType, FrameType

from nnexp import proctree
from nnexp.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

PARENT_ENV = "NNEXP_SWEEP_PARENT"  # pid of the sweep's main process
CONTROL_ENV = "NNEXP_SWEEP_CONTROL"  # its control folder
POLL_S = 0.25  # how often a worker looks at its main process
GRACE_S = 10.0  # a worker whose main process died: longest it waits for its job to stop
WAIT_S = 60.0  # the main process after a signal: longest it waits for the jobs to stop
# SIGHUP: the terminal was closed; where the platform has it
STOP_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)


def _code(signum: int) -> int:
    """130 Ctrl-C, 143 SIGTERM, 129 SIGHUP: a command a signal ended."""
    return 128 + signum


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):  # not Hydra's held stderr: this is for now
        print(line, file=sys.__stderr__ or sys.stderr, flush=True)


class _MainProcess:
    """SIGINT/SIGTERM in the process that runs ``nnexp train``, for jobs that run in other processes."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.control = Path(tempfile.gettempdir()) / f"nnexp-sweep-{self.pid}-{uuid.uuid4().hex[:8]}"
        self.previous: dict[int, object] = {}
        self.environ = {name: os.environ.get(name) for name in (PARENT_ENV, CONTROL_ENV)}
        self.signum: int | None = None

    def __enter__(self) -> _MainProcess:
        os.environ[PARENT_ENV] = str(self.pid)
        os.environ[CONTROL_ENV] = str(self.control)
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for name, value in self.environ.items():
            os.environ.pop(name, None)
            os.environ.update({name: value} if value is not None else {})
        shutil.rmtree(self.control, ignore_errors=True)

    def workers(self) -> list[int]:
        """The workers of this sweep running a job now."""
        jobs = self.control / "jobs"
        names = os.listdir(jobs) if jobs.is_dir() else []
        return [int(n) for n in names if n.isdigit() and proctree.descends_from(int(n), self.pid)]

    def handle(self, signum: int, frame: FrameType | None) -> None:
        # Jobs run elsewhere once a worker started one (made jobs/). Before (workers still starting; a worker
        # whose main process is gone runs no job), or where the jobs run here, the signal does as before.
        jobs_elsewhere = (self.control / "jobs").is_dir()
        if os.getpid() != self.pid or (self.signum is None and not jobs_elsewhere):
            return self._pass_on(signum, frame)
        if self.signum is not None:  # a second signal while the jobs stop
            if signum == signal.SIGINT:
                _say("nnexp: interrupted")
                raise SystemExit(EXIT_INTERRUPTED)  # the launcher ends its workers at once
            return None
        self.signum = signum
        with contextlib.suppress(OSError):
            self.control.mkdir(parents=True, exist_ok=True)
            (self.control / "stop.tmp").write_text(str(signum))
            os.replace(self.control / "stop.tmp", self.control / "stop")
        name = signal.Signals(signum).name
        _say(f"nnexp: {name}: the sweep's running jobs stop after their current step (interrupted, "
             "resumable); Ctrl-C again stops them at once")
        deadline = time.monotonic() + WAIT_S
        while self.workers() and time.monotonic() < deadline:
            time.sleep(POLL_S / 2)
        left = len(self.workers())
        _say(f"nnexp: {left} job(s) still running after {WAIT_S:.0f} s: stopping them now" if left else
             "nnexp: the sweep stopped; run the same command again to continue it")
        raise SystemExit(_code(signum))

    def _pass_on(self, signum: int, frame: FrameType | None) -> None:
        """What the handler before this one would have done."""
        previous = self.previous.get(signum, signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)  # ends the process, as before this handler
            signal.signal(signum, self.handle)


def main_process() -> _MainProcess:
    """Around Hydra's launch in the process that runs ``nnexp train`` (a context manager): export who
    the sweep's main process is, and stop the jobs that run in other processes on SIGINT/SIGTERM.
    On leaving, the environment and the handlers are as before."""
    return _MainProcess()


class _Watcher:
    """In a worker process: the thread that watches the sweep's main process for this process's jobs."""

    def __init__(self, parent: int, control: Path) -> None:
        self.pid, self.parent, self.control = os.getpid(), parent, control
        self.lock = threading.Lock()
        self.main_ident = threading.main_thread().ident
        self.job: CodeType | None = None  # the code of the function that runs the job
        self.seen: set[int] = set()  # stop signals that reached this process during the job
        self.asked: int | None = None  # the signal this thread sent to the job, 0: none was needed
        self.handlers: list[object] = []  # the handlers that got it
        self.orphaned: float | None = None  # when the main process was found gone
        self.siblings: dict[int, str] = {}  # the other loky workers (start times), seen as a job starts
        self.wakeup = self._wakeup_fd()
        threading.Thread(target=self._run, name="nnexp-sweep-watch", daemon=True).start()
        atexit.register(self._at_exit)  # a process that ends by itself (submitit's, after its job)

    def _at_exit(self) -> None:
        self._register(False)
        if not proctree.descends_from(self.pid, self.parent):  # nobody else will clean up
            shutil.rmtree(self.control, ignore_errors=True)

    @staticmethod
    def _wakeup_fd() -> int | None:
        """Python writes each arriving signal's number here: the stop signals the job got itself."""
        if threading.current_thread() is not threading.main_thread():
            return None
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        if previous == -1:
            return read
        signal.set_wakeup_fd(previous)  # someone else's: left to them
        os.close(read)
        os.close(write)
        return None

    def job_starts(self, job: CodeType) -> None:
        self._drain()  # signals from before this job are not this job's
        if os.getppid() == self.parent:  # loky: the main process started its workers all at once
            self.siblings = {p: t for p, t in proctree.children(self.parent).items() if p != self.pid}
        with self.lock:
            self.job, self.seen, self.asked, self.handlers = job, set(), None, []
            self._register(True)  # before looking for a stop: the main process sees the job, or the job the stop
        if not proctree.descends_from(self.pid, self.parent):
            _say("nnexp: the sweep's main process is gone: this worker ends")
            self._leave()
        stop = self._stop_asked()
        if stop:  # the sweep is stopping: no new job
            with self.lock:
                self.job = None
                self._register(False)
            raise SystemExit(_code(stop))

    def _register(self, running: bool) -> None:
        path = self.control / "jobs" / str(self.pid)
        with contextlib.suppress(OSError):
            if running:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                path.touch()
            else:
                path.unlink(missing_ok=True)

    def _stop_asked(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            if (signum := int((self.control / "stop").read_text())) in STOP_SIGNALS:
                return signum
        return 0

    def _job_running(self) -> bool:
        """Whether the function that runs the job is still on the main thread's stack."""
        frame = sys._current_frames().get(self.main_ident)
        while frame is not None:
            if frame.f_code is self.job:
                return True
            frame = frame.f_back
        return False

    def _wait_for_signals(self, timeout: float) -> None:
        if self.wakeup is None:
            time.sleep(timeout)
            return
        with contextlib.suppress(OSError, ValueError):
            if select.select([self.wakeup], [], [], timeout)[0]:
                arrived = self._drain()
                with self.lock:
                    self.seen.update(b for b in arrived if b in STOP_SIGNALS)

    def _drain(self) -> bytes:
        arrived = chunk = b"-"
        while self.wakeup is not None and chunk:
            try:
                chunk = os.read(self.wakeup, 512)
            except OSError:  # BlockingIOError: nothing more
                break
            arrived += chunk
        return arrived[1:]

    def _run(self) -> None:
        while True:
            try:
                self._tick()
            except Exception:  # the watcher must not die: it is what ends this worker
                time.sleep(POLL_S)

    def _tick(self) -> None:
        self._wait_for_signals(POLL_S)
        with self.lock:  # the job ended: unregistered before the next one registers
            running = self._job_running()
            if not running and self.job is not None:
                self.job = None
                self._register(False)
        if not proctree.descends_from(self.pid, self.parent):
            self._orphan(running)
        elif running and (stop := self._stop_asked()):
            self._ask_job_to_stop(stop)

    def _orphan(self, running: bool) -> None:
        """The main process is gone: the job stops as on SIGTERM, then this process ends."""
        now = time.monotonic()
        if self.orphaned is None:
            self.orphaned = now
            if running:
                _say(f"nnexp: the sweep's main process (pid {self.parent}) is gone: stopping this job")
        if not running or now - self.orphaned > GRACE_S:
            self._leave()
        self._ask_job_to_stop(signal.SIGTERM)

    def _end_idle_siblings(self) -> None:
        """The workers beside this one that run no job (a worker that runs one ends itself): SIGTERM's
        default ends them. Only processes started with this sweep's control folder in their environment."""
        try:
            running = set(os.listdir(self.control / "jobs"))
        except OSError:
            running = set()
        for pid, start in self.siblings.items():
            if (str(pid) not in running and proctree.alive(pid, start)
                    and proctree.started_with(pid, f"{CONTROL_ENV}={self.control}")):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)

    def _ask_job_to_stop(self, signum: int) -> None:
        """Pass a stop on to the job, as the signal a single run would get. Called at every poll."""
        with self.lock:
            if self.asked is None and self.seen:  # the job got one itself: a second SIGINT means "at once"
                self.asked = 0
            asked = self.asked
        if asked is None:
            if self.wakeup is None or not callable(signal.getsignal(signum)):
                # no way to tell whether Ctrl-C reached the job too (SIGTERM is safe twice), or a signal
                # the job does not handle (SIGHUP where a run does not stop on it): as SIGTERM
                signum = signal.SIGTERM
            # Only to a Python handler: the default action would end the process before the job
            # writes its record (loky's workers have SIGTERM's default while a job starts or ends).
            if callable(signal.getsignal(signum)):
                self._send(signum)
        elif (asked == signal.SIGTERM and not _nnexp_handler(self.handlers[-1])
              and _nnexp_handler(signal.getsignal(signal.SIGTERM))):
            # It went to a handler that is not nnexp's (submitit ignores SIGTERM around the job):
            # now that nnexp's own is in place (training started), that one hears it too.
            self._send(signal.SIGTERM)

    def _send(self, signum: int) -> None:
        with self.lock:
            self.asked = signum
            self.handlers.append(signal.getsignal(signum))
        os.kill(self.pid, signum)

    def _leave(self) -> None:
        """The main process is gone: end the idle workers beside this one, clean up, and end at once."""
        self._end_idle_siblings()
        shutil.rmtree(self.control, ignore_errors=True)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(EXIT_TERMINATED)


def _nnexp_handler(handler: object) -> bool:
    return callable(handler) and str(getattr(handler, "__module__", "")).startswith("nnexp.")


_WATCHER: _Watcher | None = None


def _watcher() -> _Watcher | None:
    """This process's watcher, started once, when it is a worker of a sweep (not its main process)."""
    global _WATCHER
    pid, control = os.environ.get(PARENT_ENV, ""), os.environ.get(CONTROL_ENV, "")
    if not pid.isdigit() or not control or int(pid) == os.getpid():
        return None
    if _WATCHER is None or _WATCHER.pid != os.getpid():
        _WATCHER = _Watcher(int(pid), Path(control))
    return _WATCHER


def job_starts() -> None:
    """Called by the function that runs a job (the job runs while it is on the main thread's stack): in
    a worker, watch the sweep's main process; no job when the sweep is stopping or gone."""
    if (watcher := _watcher()) is not None:
        watcher.job_starts(sys._getframe(1).f_code)

