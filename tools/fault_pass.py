#!/usr/bin/env python3
"""Fault-injection pass over nnexp's run life cycle (issue 14): inject faults into real ``nnexp`` commands and
print a markdown table of what each one did to the command and to the run's record.

Every scenario runs in its own folder under ``--out`` and runs nnexp as a user would
(``python -m nnexp ...``, a separate process, tiny settings). A fault is a signal at
a moment found by polling the run's files (start-up, epoch 1, mid-run, near the end,
during a checkpoint write), a file of the record damaged or removed, a folder made
read-only, a lock left behind or held, a file-size limit, an unwritable stdout, a
killed sweep parent (basic and joblib launchers), or ``nnexp report`` on damaged jobs.

The verdict is OK when the outcome keeps the README's promises (Reliability, 1-12,
and the exit-code table): the documented exit code, at most one or two stderr lines
for an error, no traceback, and no record lost or silently changed. Runs that are
interrupted are resumed and their ``metrics.csv`` (all columns but ``seconds``) must
equal an uninterrupted run of the same config; runs that must not change are
compared byte for byte (the lock file aside; ``train.log`` may only grow).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/fault_pass.py   # all, in a fresh temp folder
    python tools/fault_pass.py --list                              # ids and faults
    python tools/fault_pass.py --only F05,F23 --out /tmp/fp        # some, in a chosen folder
    python tools/fault_pass.py --jobs 1                            # one scenario at a time

Two scenarios run at once by default (each nnexp trains on one thread); the
signals are timed by polling files, not by sleeping, so load changes when they
land, not whether they are judged right. Run from the repository's virtual
environment: ``sys.executable -m nnexp`` is the nnexp under test. The table goes to
stdout and to ``<out>/faults.md``; the stderr of each FAIL row to ``<out>/fails.md``.
Exit code 0 when every row is OK, 1 when one is not, 2 when nnexp does not import.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

PY = sys.executable
COMMON = ["trainer.progress=none", "trainer.threads=1", "trainer.pictures_every=0", "trainer.histograms_every=0"]
MOONS0 = ["dataset=moons", "dataset.n_samples=400", "model.hidden=[8]", *COMMON]  # no regularizer chosen
MOONS = [*MOONS0, "regularizer=none"]
SHORT = [*MOONS, "trainer.epochs=3"]
FIVE = [*MOONS, "trainer.epochs=5"]
E = 20  # epochs of the long run, whose moments the signals hit
LONG = ["dataset=moons", "dataset.n_samples=1600", "model.hidden=[8]", "regularizer=none", *COMMON,
        f"trainer.epochs={E}"]
LONG_NO_EPOCHS = LONG[:-1]
EARLY = [*MOONS0, "regularizer=early_stopping", "regularizer.early_stopping.patience=0", "optimizer.lr=0.05",
         "trainer.epochs=200"]
LENET = ["dataset=digits", "model=lenet5", "regularizer=none", *COMMON, "trainer.epochs=6"]
XOR_SCRATCH = ["dataset=xor", "dataset.n_samples=2000", "model.hidden=[8]", "model.impl=scratch",
               "optimizer=sgd", "optimizer.impl=scratch", "optimizer.lr=0.1", "regularizer=none", *COMMON,
               "trainer.epochs=30"]
# (name shown in the table, the args it stands for), longest first
PRESETS = [(f"<moons1600 x{E}>", LONG), ("<moons1600>", LONG_NO_EPOCHS), ("<moons x3>", SHORT),
           ("<moons x5>", FIVE), ("<moons early>", EARLY), ("<moons>", MOONS), ("<moons0>", MOONS0),
           ("<lenet5 digits x6>", LENET), ("<xor scratch x30>", XOR_SCRATCH), ("<common>", COMMON)]
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129, signal.SIGKILL: -9}
OUT_DIR: Path = Path(".")  # set in main


def text_args(model: str) -> list[str]:
    path = OUT_DIR / "_data" / "text.txt"
    args = ["dataset=text", f"dataset.path={path}", "dataset.seq_len=16", f"model={model}", "regularizer=none",
            *COMMON]
    if model == "lstm":
        return [*args, "model.hidden_size=16", "model.embed_dim=8", "trainer.epochs=8"]
    return [*args, "model.d_model=16", "model.n_heads=2", "model.n_layers=1", "model.d_ff=32",
            "trainer.epochs=6"]


def all_presets() -> list[tuple[str, list[str]]]:
    return [*PRESETS, ("<text lstm x8>", text_args("lstm")), ("<text transformer x6>", text_args("transformer"))]


def make_text(path: Path) -> None:
    rng = random.Random(14)
    words = ["the", "run", "folder", "holds", "one", "life", "lock", "resume", "epoch", "signal", "summary",
             "checkpoint", "a", "of", "and", "never", "changes", "when", "its", "command", "runs", "again"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))) + "." for _ in range(90)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------------------
# processes


@dataclass
class Call:
    args: list[str]
    label: str
    code: int | str | None
    out: str
    err: str
    role: str = "fault"  # setup calls are checked but not shown in the row's chains

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]

    @property
    def traceback(self) -> bool:
        return "Traceback" in self.out or "Traceback" in self.err


class Started:
    """A running ``python -m nnexp`` in its own session (so a signal reaches it alone, and cleanup its group)."""

    def __init__(self, ctx: Ctx, args: list[str], label: str, role: str, cwd: Path | None, env: dict | None,
                 obey_modes: bool, fsize: int | None, stdout: object | None) -> None:
        self.ctx, self.args, self.label, self.role = ctx, list(args), label, role
        n = len(ctx.started) + 1
        io_dir = ctx.dir / "_io"
        io_dir.mkdir(exist_ok=True)
        self.out_path, self.err_path = io_dir / f"{n}.out", io_dir / f"{n}.err"
        out_f = open(self.out_path, "wb") if stdout is None else stdout  # noqa: SIM115
        err_f = open(self.err_path, "wb")  # noqa: SIM115
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
                    "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        # root ignores file modes: without CAP_DAC_OVERRIDE (setpriv execs the command) it obeys them like a user
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] \
            if obey_modes and os.geteuid() == 0 else []
        self.proc = subprocess.Popen([*prefix, PY, "-m", "nnexp", *args], cwd=cwd or ctx.dir, env=full_env,
                                     stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f, start_new_session=True)
        if fsize is not None:  # "disk full" for big files: writes past it fail with EFBIG (Python ignores SIGXFSZ)
            resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (fsize, fsize))
        if stdout is None:
            out_f.close()
        err_f.close()
        self.pgid = self.proc.pid
        ctx.started.append(self)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, sig: int) -> bool:
        """Signal the process itself (not its group); False when it had already ended."""
        if self.proc.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        return True

    def finish(self, timeout: float = 240) -> Call:
        try:
            code: int | str | None = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.pgid)
            self.proc.wait()
            code = "timeout"
        out = self.out_path.read_text(errors="replace") if self.out_path.exists() else ""
        err = self.err_path.read_text(errors="replace")
        call = Call(self.args, self.label, code, out, err, self.role)
        self.ctx.calls.append(call)
        return call


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies aside) of a process group: a sweep's workers that outlived their parent."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[1].split()
        if rest[0] != "Z" and int(rest[2]) == pgid:
            found.append(int(d))
    return found


def wait_for(started: Started, pred: Callable[[], bool], timeout: float = 150, interval: float = 0.01) -> bool:
    """Poll ``pred`` until it holds (True) or the process ends first (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except OSError:
            pass
        if started.proc.poll() is not None:
            return False
        if interval:
            time.sleep(interval)
    return False


# ---------------------------------------------------------------------------------------------------------
# what a run folder holds


def rows(folder: Path) -> int:
    try:
        with open(folder / "metrics.csv", "rb") as f:
            return max(0, f.read().count(b"\n") - 1)
    except OSError:
        return 0


def metrics(folder: Path) -> list[list[str]] | None:
    """metrics.csv without the wall-clock column; None when missing or not CSV text."""
    try:
        table = list(csv.reader((folder / "metrics.csv").read_text().splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not table:
        return []
    keep = [i for i, h in enumerate(table[0]) if h != "seconds"]
    return [[r[i] if i < len(r) else "<missing>" for i in keep] for r in table]


def epochs_in(folder: Path) -> list[int] | None:
    table = metrics(folder)
    if table is None:
        return None
    try:
        return [int(r[0]) for r in table[1:]]
    except ValueError:
        return None


def summary(folder: Path) -> dict | None:
    path = folder / "summary.json"
    if not path.exists() and not path.is_symlink():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data
    except (OSError, ValueError) as exc:
        return {"_damaged": type(exc).__name__}


def state(folder: Path) -> str:
    if not folder.exists():
        return "no folder"
    if not holds_run(folder):
        return "no run"
    s = summary(folder)
    if s is None:
        return "no summary"
    if "_damaged" in s:
        return f"damaged summary ({s['_damaged']})"
    words = f"{s.get('status')}@{s.get('epochs_run')}"
    return words + (f" {s['signal']}" if s.get("status") == "interrupted" and s.get("signal") else "")


def holds_run(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    names = ("summary.json", "metrics.csv", ".hydra")
    if any((folder / n).exists() for n in names):
        return True
    if any((folder / "checkpoints" / n).exists() for n in ("last.pt", "best.pt")):
        return True
    return any(folder.glob("events.out.tfevents.*"))


SKIP_FILES = (".nnexp.lock", "train.log")


def files(folder: Path, skip: tuple[str, ...] = SKIP_FILES) -> dict[str, bytes]:
    """Every file (bytes) and folder (a marker) under ``folder``, the lock file and the log aside."""
    found = {}
    if not folder.exists():
        return found
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.name in skip or rel.startswith("_io"):
            continue
        if p.is_symlink():
            found[rel] = b"<link>" + os.readlink(p).encode()
        elif p.is_dir():
            found[rel] = b"<dir>"
        else:
            try:
                found[rel] = p.read_bytes()
            except OSError as exc:
                found[rel] = f"<unreadable {exc}>".encode()
    return found


def differs(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [k + ("(gone)" if k not in after else "(new)" if k not in before else "") for k in keys
            if before.get(k) != after.get(k)]


def holder_free(folder: Path) -> bool:
    """Is nobody holding ``folder``'s lock (flock) now?"""
    path = folder / ".nnexp.lock"
    if not path.is_file():
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def jobs_of(sweep: Path) -> list[Path]:
    found = [d for d in sweep.iterdir() if d.is_dir() and d.name.split("_", 1)[0].isdigit()] \
        if sweep.is_dir() else []
    return sorted(found, key=lambda d: int(d.name.split("_", 1)[0]))


def tmp_in(folder: Path) -> bool:
    """A checkpoint being written right now: atomic_write's temporary file."""
    with os.scandir(folder) as it:
        return any(e.name.startswith(".") and ".tmp-" in e.name for e in it)


# ---------------------------------------------------------------------------------------------------------
# shared runs: prepared records copied into scenarios, and the uninterrupted references


class SetupFailed(Exception):
    pass


_BUILD = threading.Lock()  # prepared runs and references are built once, by one scenario at a time
_PREP: dict[str, Path] = {}
_REF: dict[str, list[list[str]]] = {}


def _run_plain(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([PY, "-m", "nnexp", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def prepared(name: str) -> Path:
    """A run folder (or sweep folder) made once per pass; scenarios copy it."""
    with _BUILD:
        return _prepared(name)


def _prepared(name: str) -> Path:
    if name in _PREP:
        return _PREP[name]
    where = OUT_DIR / "_prep" / name
    shutil.rmtree(where, ignore_errors=True)
    where.parent.mkdir(parents=True, exist_ok=True)
    recipes = {
        "done3": (["train", *SHORT, f"hydra.run.dir={where}"], 0),
        "unf3": (["train", *SHORT, f"hydra.run.dir={where}"], 0),  # then summary.json removed: as SIGKILL leaves
        "early": (["train", *EARLY, f"hydra.run.dir={where}"], 0),
        "div": (["train", *SHORT, "optimizer.lr=1e30", f"hydra.run.dir={where}"], 3),
        "wide3": (["train", *[a for a in SHORT if not a.startswith("model.hidden")], "model.hidden=[16]",
                   f"hydra.run.dir={where}"], 0),
        "sweep2": (["train", "-m", *SHORT, "trainer.seed=0,1", f"hydra.sweep.dir={where}"], 0),
    }
    args, code = recipes[name]
    proc = _run_plain(args, where.parent)
    if proc.returncode != code:
        raise SetupFailed(f"preparing {name}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    if name == "unf3":
        (where / "summary.json").unlink()
    _PREP[name] = where
    return where


def reference(name: str) -> list[list[str]]:
    """metrics.csv (wall clock aside) of a run never stopped."""
    with _BUILD:
        return _reference(name)


def _reference(name: str) -> list[list[str]]:
    if name in _REF:
        return _REF[name]
    recipes = {"five": FIVE, "long": LONG, "lstm": text_args("lstm"), "transformer": text_args("transformer"),
               "lenet": LENET, "xor": XOR_SCRATCH}
    where = OUT_DIR / "_ref" / name
    shutil.rmtree(where, ignore_errors=True)
    where.parent.mkdir(parents=True, exist_ok=True)
    proc = _run_plain(["train", *recipes[name], f"hydra.run.dir={where}"], where.parent)
    table = metrics(where)
    if proc.returncode != 0 or not table:
        raise SetupFailed(f"reference {name}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    _REF[name] = table
    return table


# ---------------------------------------------------------------------------------------------------------
# scenarios


@dataclass
class Row:
    id: str
    fault: str
    command: str = ""
    codes: str = ""
    err_lines: str = ""
    traceback: str = ""
    record: str = ""
    verdict: str = ""
    tails: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Ctx:
    def __init__(self, sid: str, fault: str) -> None:
        self.id, self.fault = sid, fault
        self.dir = OUT_DIR / sid
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.started: list[Started] = []
        self.calls: list[Call] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.record = ""
        self.command: list[str] | None = None
        self.tails: list[str] = []

    # -- running nnexp
    def start(self, *args: str, label: str = "", role: str = "fault", cwd: Path | None = None,
              env: dict | None = None, obey_modes: bool = False, fsize: int | None = None,
              stdout: object | None = None) -> Started:
        if self.command is None and role == "fault":
            self.command = list(args)
        return Started(self, list(args), label or args[0], role, cwd, env, obey_modes, fsize, stdout)

    def run(self, *args: str, timeout: float = 240, **kw: object) -> Call:
        return self.start(*args, **kw).finish(timeout)  # type: ignore[arg-type]

    # -- judging
    def check(self, call: Call, codes: set, max_err: int = 2, lines_note: str = "") -> bool:
        bad = []
        if call.code not in codes:
            bad.append(f"{call.label}: exit {call.code}, expected {'/'.join(map(str, sorted(codes, key=str)))}")
        if call.traceback:
            bad.append(f"{call.label}: traceback")
        if len(call.err_lines) > max_err:
            bad.append(f"{call.label}: {len(call.err_lines)} stderr lines (max {max_err}){lines_note}")
        if bad:
            self.problems.extend(bad)
            self.tails.append(f"{call.label} (exit {call.code}): " + " ".join(call.args)[-300:] + "\n"
                              + "\n".join(call.err.strip().splitlines()[-12:]))
        return not bad

    def expect(self, cond: bool, why: str) -> bool:
        if not cond:
            self.problems.append(why)
        return bool(cond)

    def unchanged(self, folder: Path, before: dict[str, bytes], log_before: bytes | None = None,
                  skip: tuple[str, ...] = SKIP_FILES) -> bool:
        diff = differs(before, files(folder, skip=skip))
        self.expect(not diff, f"{folder.name} changed: {', '.join(diff[:4])}")
        if log_before is not None:
            log = folder / "train.log"
            now = log.read_bytes() if log.is_file() else b""
            self.expect(now.startswith(log_before), f"{folder.name}/train.log lost lines")
        return not diff

    def same_as(self, folder: Path, ref: list[list[str]]) -> bool:
        got = metrics(folder)
        if got == ref:
            return True
        if got is None:
            self.problems.append(f"{folder.name}/metrics.csv unreadable")
        else:
            first = next((i for i, (a, b) in enumerate(zip(got, ref, strict=False)) if a != b), min(len(got), len(ref)))
            self.problems.append(f"{folder.name}/metrics.csv differs from the uninterrupted run "
                                 f"(row {first}; {len(got) - 1} vs {len(ref) - 1} epochs)")
        return False

    def copy(self, name: str, dest: str | Path) -> Path:
        target = self.dir / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(prepared(name), target, symlinks=True)
        return target

    def cleanup(self) -> None:
        for s in self.started:
            if s.proc.poll() is None:
                kill_group(s.pgid)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    s.proc.wait(10)
            kill_group(s.pgid)  # a worker left over
        # read-only folders made for a scenario: writable again, so the folder can be removed later
        for p in [self.dir, *self.dir.rglob("*")]:
            with contextlib.suppress(OSError):
                if p.is_dir() and not p.is_symlink():
                    p.chmod(0o755)


SCENARIOS: list[tuple[str, str, Callable[[Ctx], None]]] = []


def scenario(sid: str, fault: str) -> Callable:
    def add(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        SCENARIOS.append((sid, fault, fn))
        return fn
    return add


def short(args: list[str], base: Path) -> str:
    """The command as the table shows it: a preset's name for its arguments (with what the command adds or
    puts instead of its keys after it), paths relative to the scenario's folder."""
    args = list(args)
    fits = []  # (arguments it covers, keys the command sets otherwise), the best cover first
    for name, preset in all_presets():
        missing = sum(a not in args for a in preset)
        if missing == 0 or (missing <= 2 and len(preset) > 6):
            fits.append((len(preset) - missing, -missing, name, preset))
    if fits:
        _, _, name, preset = max(fits)
        first = min(args.index(a) for a in preset if a in args)
        args = [a for a in args[:first] if a not in preset] + [name] + [a for a in args[first:] if a not in preset]
    text = " ".join(args).replace(str(base) + "/", "").replace(str(OUT_DIR) + "/", "")
    text = "nnexp " + text.replace("hydra.run.dir=", "run.dir=").replace("hydra.sweep.dir=", "sweep.dir=")
    return text if len(text) <= 120 else text[:117] + "..."


# --- helpers shared by the signal scenarios


def no_folder_left(c: Ctx, run: Path) -> str:
    """README 5: a signal while starting leaves no folder (Hydra made it; nnexp removes what it made)."""
    if not run.exists():
        return "no folder left"
    left = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()) or ["(empty)"]
    c.expect(False, f"a signal while starting left {run.name}/ holding {', '.join(left)} (README 5: no folder left)")
    return f"left {run.name}/ with {', '.join(left)}"


def after_rows(folder: Path, n: int) -> Callable[[], bool]:
    return lambda: rows(folder) >= n


def resume_check(c: Ctx, run: Path, args: list[str], ref: list[list[str]], epochs: int, how: str = "auto",
                 label: str = "resume") -> str:
    """After a fault: continue the run and compare it with the uninterrupted one; or, if it already finished,
    check that running the command again changes nothing."""
    s = summary(run)
    if s is not None and "_damaged" not in s and s.get("status") == "completed":
        before = files(run)
        call = c.run("train", *args, f"hydra.run.dir={run}", "trainer.resume=auto", label="rerun")
        c.check(call, {0}, max_err=1)
        c.expect("already finished" in call.out, "rerun of a completed run did not say 'already finished'")
        c.unchanged(run, before)
        return f"{state(run)}, rerun: unchanged"
    spec = str(run) if how == "path" else str(run / "checkpoints" / "last.pt") if how == "file" else "auto"
    call = c.run("train", *args, f"hydra.run.dir={run}", f"trainer.resume={spec}", label=label)
    c.check(call, {0}, max_err=2)
    after = state(run)
    c.expect(after == f"completed@{epochs}", f"after resume: {after}")
    same = c.same_as(run, ref)
    return f"{after}{' = uninterrupted' if same else ''}"


def signal_run(c: Ctx, args: list[str], sig: int, when: Callable[[Path], Callable[[], bool]], ref: str,
               epochs: int, how: str = "auto", busy: bool = False, then: int | None = None) -> None:
    run = c.dir / "R"
    p = c.start("train", *args, f"hydra.run.dir={run}")
    pred = when(run)
    fired = wait_for(p, pred, interval=0 if busy else 0.01)
    at = rows(run)
    if getattr(pred, "seen", None) is False and fired:
        c.notes.append(f"no .tmp file seen: signalled at epoch {E - 3}")
    sent = p.send(sig)
    if then is not None:
        time.sleep(0.05)
        p.send(then)
    call = p.finish()
    expected = CODES[then if then is not None else sig]
    s = summary(run)
    finished_first = s is not None and s.get("status") == "completed"
    codes = {expected} | ({0} if finished_first and sig != signal.SIGKILL else set())
    if finished_first and sig == signal.SIGKILL:
        codes = {-9, 0}
    c.check(call, codes, max_err=2)
    if not fired or not sent:
        c.notes.append("the run ended before the signal")
    after = state(run)
    started = rows(run) > 0 or (run / "checkpoints").is_dir() or summary(run) is not None
    if sig != signal.SIGKILL and then is None and not finished_first and started:
        c.expect(after.startswith("interrupted") and signal.Signals(sig).name in after,
                 f"after {signal.Signals(sig).name}: {after}")
    elif sig != signal.SIGKILL and not started:  # caught while starting: one line, and no folder left (README 5)
        after = no_folder_left(c, run)
    if call.code == 0:
        c.expect(finished_first, f"exit 0 but {after}")
    c.record = f"sig at epoch {at}: {after} -> " + resume_check(c, run, args, reference(ref), epochs, how)


# --- 1. signals to a single run, timed by its files


def mapped(started: Started, name: str) -> Callable[[], bool]:
    """Has the process loaded a shared library whose path holds ``name`` (an import under way)?"""
    return lambda: name in Path(f"/proc/{started.proc.pid}/maps").read_text()


@scenario("F01", "SIGINT the moment PyYAML's C extension is mapped (Hydra/OmegaConf importing)")
def f01(c: Ctx) -> None:
    run = c.dir / "R"
    p = c.start("train", *LONG, f"hydra.run.dir={run}")
    wait_for(p, mapped(p, "_yaml.cpython"), interval=0.001)
    p.send(signal.SIGINT)
    call = p.finish()
    c.check(call, {130}, max_err=1)
    c.record = no_folder_left(c, run)


@scenario("F02", "SIGTERM the moment .nnexp.lock appears (folder just claimed, torch importing)")
def f02(c: Ctx) -> None:
    run = c.dir / "R"
    p = c.start("train", *LONG, f"hydra.run.dir={run}")
    wait_for(p, lambda: (run / ".nnexp.lock").exists(), interval=0.002)
    p.send(signal.SIGTERM)
    call = p.finish()
    c.check(call, {143}, max_err=1)
    c.record = no_folder_left(c, run)


def startup_signal(c: Ctx, sig: int, library: str) -> None:
    """A signal the moment the run's process maps ``library`` (an import under way after the folder was claimed):
    one line, its exit code, no folder left; or, had it reached training, an interrupted run that resumes."""
    run = c.dir / "R"
    p = c.start("train", *LONG, f"hydra.run.dir={run}")
    if not wait_for(p, mapped(p, library), interval=0.001):
        c.notes.append(f"{library} never seen")
    p.send(sig)
    call = p.finish()
    c.check(call, {CODES[sig]}, max_err=1)
    after = state(run)
    if summary(run) is not None:  # it had reached training: then it must be an interrupted, resumable run
        c.expect(after.startswith("interrupted") and signal.Signals(sig).name in after, f"left {after}")
        c.record = after + " -> " + resume_check(c, run, LONG, reference("long"), E)
    else:
        c.record = no_folder_left(c, run)


@scenario("F03", "SIGHUP the moment libtorch_cpu.so is mapped (torch importing, folder already claimed)")
def f03(c: Ctx) -> None:
    startup_signal(c, signal.SIGHUP, "libtorch_cpu")


@scenario("F82", "SIGTERM the moment numpy.linalg's C extension is mapped (torch's first optimizer importing)")
def f82(c: Ctx) -> None:
    startup_signal(c, signal.SIGTERM, "_umath_linalg")


@scenario("F04", "SIGINT when .hydra/config.yaml appears (first steps of epoch 1)")
def f04(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGINT, lambda r: lambda: (r / ".hydra" / "config.yaml").exists(), "long", E)


@scenario("F05", "SIGTERM just after epoch 1 (metrics.csv has 1 row)")
def f05(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGTERM, lambda r: after_rows(r, 1), "long", E)


@scenario("F06", f"SIGHUP mid-run (epoch {E // 2} of {E}), resumed with trainer.resume=<run folder>")
def f06(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGHUP, lambda r: after_rows(r, E // 2), "long", E, how="path")


@scenario("F07", f"SIGKILL mid-run (epoch {E * 3 // 8} of {E})")
def f07(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGKILL, lambda r: after_rows(r, E * 3 // 8), "long", E)


@scenario("F08", f"SIGKILL near the end (epoch {E - 2} of {E})")
def f08(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGKILL, lambda r: after_rows(r, E - 2), "long", E)


@scenario("F09", f"SIGTERM near the end (epoch {E - 1} of {E}; may land after the summary)")
def f09(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGTERM, lambda r: after_rows(r, E - 1), "long", E)


def ckpt_write(r: Path) -> Callable[[], bool]:
    """Fires while a checkpoint's temporary file exists (from epoch 3 on); near the end if it was never seen."""
    def pred() -> bool:
        n = rows(r)
        if n >= 3 and tmp_in(r / "checkpoints"):
            pred.seen = True  # type: ignore[attr-defined]
            return True
        return n >= E - 3
    pred.seen = False  # type: ignore[attr-defined]
    return pred


@scenario("F10", "SIGKILL while a checkpoint is being written (its .tmp file seen)")
def f10(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGKILL, ckpt_write, "long", E, busy=True)


@scenario("F11", "SIGINT while a checkpoint is being written (its .tmp file seen)")
def f11(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGINT, ckpt_write, "long", E, busy=True)


@scenario("F12", f"two SIGINTs 50 ms apart mid-run (epoch {E // 4}): the second stops at once")
def f12(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGINT, lambda r: after_rows(r, E // 4), "long", E, then=signal.SIGINT)


@scenario("F13", f"SIGTERM then SIGKILL 50 ms later (a scheduler's short grace) at epoch {E * 3 // 10}")
def f13(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGTERM, lambda r: after_rows(r, E * 3 // 10), "long", E, then=signal.SIGKILL)


@scenario("F14", f"SIGKILL at epoch {E // 5}, resumed, SIGKILL again at epoch {E * 5 // 8} of the resumed run, resumed")
def f14(c: Ctx) -> None:
    run = c.dir / "R"
    p = c.start("train", *LONG, f"hydra.run.dir={run}")
    wait_for(p, after_rows(run, E // 5))
    p.send(signal.SIGKILL)
    c.check(p.finish(), {-9})
    first = state(run)
    p = c.start("train", *LONG, f"hydra.run.dir={run}", "trainer.resume=auto", label="resume1")
    wait_for(p, after_rows(run, E * 5 // 8))
    p.send(signal.SIGKILL)
    c.check(p.finish(), {-9, 0})
    second = state(run)
    c.record = f"{first} -> {second} -> " + resume_check(c, run, LONG, reference("long"), E, label="resume2")


@scenario("F15", f"SIGKILL at epoch {E // 6}, resumed, SIGTERM just after the resumed run's first new epoch")
def f15(c: Ctx) -> None:
    run = c.dir / "R"
    p = c.start("train", *LONG, f"hydra.run.dir={run}")
    wait_for(p, after_rows(run, E // 6))
    p.send(signal.SIGKILL)
    c.check(p.finish(), {-9})
    last = run / "checkpoints" / "last.pt"
    mtime = last.stat().st_mtime_ns
    p = c.start("train", *LONG, f"hydra.run.dir={run}", "trainer.resume=auto", label="resume1")
    wait_for(p, lambda: last.stat().st_mtime_ns != mtime, interval=0.002)  # its first checkpoint
    p.send(signal.SIGTERM)
    call = p.finish()
    c.check(call, {143})
    mid = state(run)
    c.expect(mid.startswith("interrupted") and "SIGTERM" in mid, f"after SIGTERM: {mid}")
    c.record = f"no summary -> {mid} -> " + resume_check(c, run, LONG, reference("long"), E, label="resume2")


@scenario("F80", "SIGTERM to a resuming run the moment it rewrites .hydra/config.yaml (before its first step)")
def f80(c: Ctx) -> None:
    run = c.dir / "R"
    p = c.start("train", *LONG, f"hydra.run.dir={run}", label="setup", role="setup")
    wait_for(p, after_rows(run, E // 4))
    p.send(signal.SIGKILL)
    setup = p.finish()
    config = run / ".hydra" / "config.yaml"
    if not config.is_file() or not (run / "checkpoints" / "last.pt").is_file():
        raise SetupFailed(f"the run to resume did not start (exit {setup.code}): {setup.err.strip()[-300:]}")
    mtime = config.stat().st_mtime_ns
    skip = (*SKIP_FILES, ".hydra", "config.yaml", "hydra.yaml", "overrides.yaml")  # .hydra/ is written again
    before = files(run, skip=skip)
    p = c.start("train", *LONG, f"hydra.run.dir={run}", "trainer.resume=auto")
    wait_for(p, lambda: config.stat().st_mtime_ns != mtime, interval=0.002)
    p.send(signal.SIGTERM)
    call = p.finish()
    c.check(call, {143}, max_err=2)
    mid = state(run)
    if mid == "no summary":  # stopped while starting: the killed run must be left as it was, still resumable
        diff = differs(before, files(run, skip=skip))
        c.expect(not diff, f"the killed run's files changed: {', '.join(diff[:3])}")
    else:
        c.expect(mid.startswith("interrupted") and "SIGTERM" in mid, f"after SIGTERM: {mid}")
    c.record = f"no summary -> {mid} -> " + resume_check(c, run, LONG, reference("long"), E, label="resume2")


@scenario("F16", f"SIGKILL after epoch {E // 8}; resumed with trainer.resume=<its checkpoints/last.pt file>")
def f16(c: Ctx) -> None:
    signal_run(c, LONG, signal.SIGKILL, lambda r: after_rows(r, E // 8), "long", E, how="file")


# --- 2. other models and datasets


@scenario("F17", "model=lstm on dataset=text: SIGINT after epoch 2 of 8")
def f17(c: Ctx) -> None:
    signal_run(c, text_args("lstm"), signal.SIGINT, lambda r: after_rows(r, 2), "lstm", 8)


@scenario("F18", "model=transformer on dataset=text: SIGTERM when .hydra/config.yaml appears")
def f18(c: Ctx) -> None:
    signal_run(c, text_args("transformer"), signal.SIGTERM,
               lambda r: lambda: (r / ".hydra" / "config.yaml").exists(), "transformer", 6)


@scenario("F19", "model=lenet5 on dataset=digits: SIGKILL after epoch 2 of 6")
def f19(c: Ctx) -> None:
    signal_run(c, LENET, signal.SIGKILL, lambda r: after_rows(r, 2), "lenet", 6)


@scenario("F20", "model.impl=scratch + optimizer.impl=scratch on xor: SIGHUP at epoch 10 of 30")
def f20(c: Ctx) -> None:
    signal_run(c, XOR_SCRATCH, signal.SIGHUP, lambda r: after_rows(r, 10), "xor", 30)


# --- 3. sweeps


def sweep_cmd(sweep: Path, *extra: str, args: list[str] = LONG) -> list[str]:
    return ["train", "-m", *args, "trainer.seed=0,1", *extra, f"hydra.sweep.dir={sweep}"]


def job_rows(sweep: Path, job: int, n: int) -> Callable[[], bool]:
    def pred() -> bool:
        found = jobs_of(sweep)
        return len(found) > job and rows(found[job]) >= n
    return pred


def sweep_rerun(c: Ctx, sweep: Path, cmd: list[str], kept: dict[str, dict[str, bytes]] | None = None) -> str:
    call = c.run(*cmd, label="rerun")
    c.check(call, {0}, max_err=2)
    found = jobs_of(sweep)
    states = [state(j) for j in found]
    c.expect(len(found) == 2 and all(s == f"completed@{E}" for s in states), f"after rerun: {states}")
    if found:
        c.same_as(found[0], reference("long"))
    for name, before in (kept or {}).items():
        c.unchanged(sweep / name, before)
    return ", ".join(states)


@scenario("F21", f"basic-launcher sweep (2 jobs): SIGTERM during job 0 (epoch {E // 4}); same command again")
def f21(c: Ctx) -> None:
    sweep = c.dir / "S"
    cmd = sweep_cmd(sweep)
    p = c.start(*cmd)
    wait_for(p, job_rows(sweep, 0, E // 4))
    p.send(signal.SIGTERM)
    call = p.finish()
    c.check(call, {143}, max_err=3)
    mid = [state(j) for j in jobs_of(sweep)]
    c.expect(bool(mid) and mid[0].startswith("interrupted"), f"job 0 after SIGTERM: {mid}")
    c.record = f"{mid} -> " + sweep_rerun(c, sweep, cmd)


@scenario("F22", f"basic-launcher sweep: SIGKILL during job 1 (epoch {E // 8}); same command again")
def f22(c: Ctx) -> None:
    sweep = c.dir / "S"
    cmd = sweep_cmd(sweep)
    p = c.start(*cmd)
    wait_for(p, job_rows(sweep, 1, E // 8))
    p.send(signal.SIGKILL)
    c.check(p.finish(), {-9})
    mid = [state(j) for j in jobs_of(sweep)]
    kept = {jobs_of(sweep)[0].name: files(jobs_of(sweep)[0])}
    c.record = f"{mid} -> " + sweep_rerun(c, sweep, cmd, kept) + " (job 0 unchanged)"


def joblib_kill(c: Ctx, sig: int) -> None:
    sweep = c.dir / "S"
    cmd = sweep_cmd(sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    p = c.start(*cmd)
    wait_for(p, lambda: job_rows(sweep, 0, 3)() and job_rows(sweep, 1, 3)())
    p.send(sig)
    call = p.finish()
    c.check(call, {CODES[sig]}, max_err=4)
    t0, left = time.monotonic(), group_members(p.pgid)
    while left and time.monotonic() - t0 < 15:
        time.sleep(0.2)
        left = group_members(p.pgid)
    gone = time.monotonic() - t0
    c.expect(not left, f"{len(left)} worker(s) still alive {gone:.0f} s after the parent ended")
    kill_group(p.pgid)
    time.sleep(0.3)
    locks = [j.name for j in jobs_of(sweep) if not holder_free(j)]
    c.expect(not locks, f"job folders still locked: {locks}")
    mid = [state(j) for j in jobs_of(sweep)]
    if sig != signal.SIGKILL:
        c.expect(all(m.startswith("interrupted") or m.startswith("completed") for m in mid),
                 f"jobs after {signal.Signals(sig).name}: {mid}")
    c.record = f"workers gone in {gone:.1f} s; {mid} -> " + sweep_rerun(c, sweep, cmd)


@scenario("F23", "joblib sweep (n_jobs=2): SIGTERM to the parent while both jobs train; same command again")
def f23(c: Ctx) -> None:
    joblib_kill(c, signal.SIGTERM)


@scenario("F24", "joblib sweep (n_jobs=2): SIGKILL to the parent while both jobs train; same command again")
def f24(c: Ctx) -> None:
    joblib_kill(c, signal.SIGKILL)


@scenario("F25", "joblib sweep (n_jobs=2): SIGINT to the parent while both jobs train; same command again")
def f25(c: Ctx) -> None:
    joblib_kill(c, signal.SIGINT)


@scenario("F26", "sweep model=mlp,lenet5 on moons (lenet5 cannot take 2-D points); same command again")
def f26(c: Ctx) -> None:
    sweep = c.dir / "S"
    cmd = ["train", "-m", *[a for a in SHORT if not a.startswith("model.hidden")], "model=mlp,lenet5",
           f"hydra.sweep.dir={sweep}"]
    call = c.run(*cmd)
    c.check(call, {1}, max_err=3)
    found = jobs_of(sweep)
    first = [state(j) for j in found]
    c.expect(first[:1] == ["completed@3"] and len(first) == 2 and first[1].startswith("failed"),
             f"after the sweep: {first}")
    kept = files(found[0]) if found else {}
    again = c.run(*cmd, label="rerun")
    c.check(again, {1}, max_err=4)
    if found:
        c.unchanged(found[0], kept)
    prev = len(found) > 1 and (found[1] / "previous" / "1").is_dir()
    c.expect(prev, "the failed attempt was not kept in previous/1")
    c.record = f"{first}; rerun: job 0 unchanged, failed job run again{' (previous/1 kept)' if prev else ''}"


def damaged_sweep_rerun(c: Ctx, damage: Callable[[Path], None], expect_prev: bool) -> None:
    sweep = c.copy("sweep2", "S")
    cmd = ["train", "-m", *SHORT, "trainer.seed=0,1", f"hydra.sweep.dir={sweep}"]
    job0, job1 = jobs_of(sweep)
    before0, keep1 = files(job0), files(job1)
    damage(job0)
    call = c.run(*cmd)
    c.check(call, {0}, max_err=2)
    states = [state(j) for j in jobs_of(sweep)]
    c.expect(states == ["completed@3", "completed@3"], f"after rerun: {states}")
    c.unchanged(job1, keep1)
    m0 = metrics(job0)
    c.expect(m0 == metrics_from(before0), "job 0's metrics.csv differs from before the damage")
    prev = (job0 / "previous" / "1").is_dir()
    c.expect(prev == expect_prev, f"previous/1 {'missing' if expect_prev else 'made'}")
    c.record = f"{states}; job 1 unchanged; job 0 metrics as before" + ("; old attempt in previous/1" if prev else "")


def metrics_from(snapshot: dict[str, bytes]) -> list[list[str]] | None:
    data = snapshot.get("metrics.csv")
    if data is None:
        return None
    table = list(csv.reader(data.decode().splitlines()))
    keep = [i for i, h in enumerate(table[0]) if h != "seconds"]
    return [[r[i] for i in keep] for r in table]


@scenario("F27", "finished sweep, job 0's summary.json deleted; same sweep command again")
def f27(c: Ctx) -> None:
    damaged_sweep_rerun(c, lambda j: (j / "summary.json").unlink(), expect_prev=False)


@scenario("F28", "finished sweep, job 0's summary.json replaced by junk bytes; same sweep command again")
def f28(c: Ctx) -> None:
    damaged_sweep_rerun(c, lambda j: (j / "summary.json").write_bytes(b"\x00\xffjunk{"), expect_prev=True)


@scenario("F29", "finished sweep, job 0's summary.json deleted and last.pt truncated; same command again")
def f29(c: Ctx) -> None:
    def damage(j: Path) -> None:
        (j / "summary.json").unlink()
        last = j / "checkpoints" / "last.pt"
        data = last.read_bytes()
        last.unlink()  # best.pt may be a hard link of the same file: cut only last.pt's name
        last.write_bytes(data[: len(data) // 3])
    damaged_sweep_rerun(c, damage, expect_prev=False)


@scenario("F30", "finished sweep, job 0's .hydra/ deleted; same sweep command again")
def f30(c: Ctx) -> None:
    sweep = c.copy("sweep2", "S")
    job0, job1 = jobs_of(sweep)
    shutil.rmtree(job0 / ".hydra")
    before0, before1 = files(job0), files(job1)
    call = c.run("train", "-m", *SHORT, "trainer.seed=0,1", f"hydra.sweep.dir={sweep}")
    c.check(call, {0}, max_err=1)
    c.unchanged(job0, before0)
    c.unchanged(job1, before1)
    c.record = f"{state(job0)}, {state(job1)}; both skipped, unchanged"


def sweep_in_cwd(c: Ctx) -> tuple[Path, list[str]]:
    """A finished sweep under <scenario>/outputs/multirun, started without hydra.sweep.dir."""
    cmd = ["train", "-m", *SHORT, "trainer.seed=0,1"]
    c.check(c.run(*cmd, label="setup", role="setup"), {0}, max_err=1)
    found = list((c.dir / "outputs" / "multirun").glob("*/*"))
    if len(found) != 1:
        raise SetupFailed(f"sweep folders: {found}")
    return found[0], cmd


@scenario("F31", "a sweep's nnexp_sweep.json replaced by junk; the same sweep command (no sweep.dir) again")
def f31(c: Ctx) -> None:
    sweep, cmd = sweep_in_cwd(c)
    (sweep / "nnexp_sweep.json").write_text("{not json")
    before = files(sweep)
    call = c.run(*cmd)
    c.check(call, {0}, max_err=1)
    c.unchanged(sweep, before)
    new = [p for p in (c.dir / "outputs" / "multirun").glob("*/*") if p != sweep]
    states = [state(j) for j in jobs_of(new[0])] if len(new) == 1 else []
    c.expect(states == ["completed@3", "completed@3"], f"new sweep: {states}")
    c.record = f"old sweep unchanged; new sweep {states}"


@scenario("F32", "the same sweep command (no sweep.dir) run again at once after it finished")
def f32(c: Ctx) -> None:
    sweep, cmd = sweep_in_cwd(c)
    skip = (*SKIP_FILES, "multirun.yaml")  # Hydra's own copy of the sweep's config, written by every multirun
    before = files(sweep, skip=skip)
    call = c.run(*cmd)
    c.check(call, {0}, max_err=1)
    c.expect("already done" in call.out, "the rerun did not say the jobs were already done")
    c.unchanged(sweep, before, skip=skip)
    new = [p for p in (c.dir / "outputs" / "multirun").glob("*/*") if p != sweep]
    c.expect(not new, f"a second sweep folder was made: {[p.name for p in new]}")
    c.record = "all jobs skipped, job files unchanged (Hydra rewrites multirun.yaml), no new folder"


# --- 4. nnexp report on damaged jobs


REPORT_OUT = ("report.csv", "report.png")


def report_on(c: Ctx, damage: Callable[[Path], None], named: bool = False) -> None:
    """Every job is accounted for: reported, or listed as damaged/failed with its reason; no job file changes."""
    sweep = c.copy("sweep2", "S")
    damage(jobs_of(sweep)[0])
    before = files(sweep, skip=(*SKIP_FILES, *REPORT_OUT))
    call = c.run("report", str(sweep))
    c.check(call, {0}, max_err=1)
    found = re.search(r"nnexp report: (\d+) jobs?", call.out)
    damaged = re.search(r"(\d+) damaged jobs?", call.out)
    n, d = int(found.group(1)) if found else 0, int(damaged.group(1)) if damaged else 0
    failed = d > 0 or "failed" in call.out or "unreadable" in call.out
    c.expect(n + d == 2 or (n == 2 and failed), f"report accounts for {n} + {d} damaged of 2 jobs")
    if named:
        c.expect(failed, "the damaged job is not listed as damaged or failed")
    diff = differs(before, files(sweep, skip=(*SKIP_FILES, *REPORT_OUT)))
    c.expect(not diff, f"report changed job files: {diff[:3]}")
    c.expect((sweep / "report.csv").is_file(), "no report.csv")
    reason = ""
    if d:
        line = next((ln for ln in call.out.splitlines() if ": " in ln and str(sweep) in ln), "")
        reason = ": " + line.rsplit(": ", 1)[-1].strip()[:50] if line else ""
    c.record = f"{n} job(s) reported, {d} listed as damaged{reason}; job files unchanged"


@scenario("F33", "nnexp report: one job's summary.json cut in the middle of the JSON")
def f33(c: Ctx) -> None:
    def cut(j: Path) -> None:
        data = (j / "summary.json").read_bytes()
        (j / "summary.json").write_bytes(data[: len(data) // 2])
    report_on(c, cut, named=True)


@scenario("F34", "nnexp report: one job's summary.json replaced by a directory")
def f34(c: Ctx) -> None:
    def to_dir(j: Path) -> None:
        (j / "summary.json").unlink()
        (j / "summary.json").mkdir()
    report_on(c, to_dir, named=True)


@scenario("F35", "nnexp report: one job's metrics.csv deleted")
def f35(c: Ctx) -> None:
    report_on(c, lambda j: (j / "metrics.csv").unlink())


@scenario("F36", "nnexp report: one job's metrics.csv emptied (0 bytes)")
def f36(c: Ctx) -> None:
    report_on(c, lambda j: (j / "metrics.csv").write_bytes(b""))


@scenario("F37", "nnexp report: summary.json valid JSON with wrong types (epochs_run 'x', final a list, ...)")
def f37(c: Ctx) -> None:
    def wrong(j: Path) -> None:
        s = json.loads((j / "summary.json").read_text())
        s.update(epochs_run="x", final=[1, 2], best_value="abc", best_epoch={}, overrides="trainer.seed=0",
                 gap=None, seconds_per_epoch=[])
        (j / "summary.json").write_text(json.dumps(s))
    report_on(c, wrong, named=True)


@scenario("F38", "nnexp report: one job's summary.json a dangling symlink")
def f38(c: Ctx) -> None:
    def dangle(j: Path) -> None:
        (j / "summary.json").unlink()
        (j / "summary.json").symlink_to(j / "gone.json")
    report_on(c, dangle, named=True)


@scenario("F39", "nnexp report on a folder with no summary.json (an empty run folder)")
def f39(c: Ctx) -> None:
    (c.dir / "empty").mkdir()
    call = c.run("report", str(c.dir / "empty"))
    c.check(call, {2}, max_err=1)
    c.expect(not any((c.dir / "empty").iterdir()), "report wrote into the empty folder")
    c.record = "nothing written"


@scenario("F40", "nnexp report on a read-only sweep folder (report.csv cannot be written)")
def f40(c: Ctx) -> None:
    sweep = c.copy("sweep2", "S")
    sweep.chmod(0o555)
    before = files(sweep)
    call = c.run("report", str(sweep), obey_modes=True)
    c.check(call, {1}, max_err=1)
    c.unchanged(sweep, before)
    c.record = "table printed; nothing written; unchanged"


@scenario("F41", "SIGINT to nnexp report 0.15 s after start")
def f41(c: Ctx) -> None:
    sweep = c.copy("sweep2", "S")
    before = files(sweep)
    p = c.start("report", str(sweep))
    time.sleep(0.15)
    p.send(signal.SIGINT)
    call = p.finish()
    c.check(call, {130, 0}, max_err=1)
    diff = differs(before, files(sweep, skip=(*SKIP_FILES, *REPORT_OUT)))
    c.expect(not diff, f"changed: {diff[:3]}")
    left = [p.name for p in sweep.glob(".report*")]
    c.expect(not left, f"temporary files left: {left}")
    c.record = "job files unchanged" + (" (report finished first)" if call.code == 0 else "")


# --- 5. damaged or removed files of a single run, then the command again


def finished_rerun(c: Ctx, prep: str, damage: Callable[[Path], None], args: list[str], codes: set,
                   extra: tuple[str, ...] = ("trainer.resume=auto",), max_err: int = 1) -> Call:
    """A finished run, damaged; the command again must change nothing."""
    run = c.copy(prep, "R")
    damage(run)
    before = files(run)
    log = (run / "train.log").read_bytes() if (run / "train.log").is_file() else b""
    call = c.run("train", *args, f"hydra.run.dir={run}", *extra)
    c.check(call, codes, max_err=max_err)
    c.unchanged(run, before, log)
    c.record = f"{state(run)}, unchanged"
    return call


@scenario("F42", "completed run, summary.json truncated to 10 bytes; same command with resume=auto")
def f42(c: Ctx) -> None:
    finished_rerun(c, "done3", lambda r: (r / "summary.json").write_bytes((r / "summary.json").read_bytes()[:10]),
                   SHORT, {0, 2})


@scenario("F43", "completed run, summary.json deleted; same command with resume=auto")
def f43(c: Ctx) -> None:
    run = c.copy("done3", "R")
    (run / "summary.json").unlink()
    m = metrics(run)
    call = c.run("train", *SHORT, f"hydra.run.dir={run}", "trainer.resume=auto")
    c.check(call, {0}, max_err=1)
    c.expect(state(run) == "completed@3", f"after: {state(run)}")
    c.expect(metrics(run) == m, "metrics.csv changed")
    c.record = f"{state(run)} again, metrics.csv unchanged"


@scenario("F44", "completed run, summary.json replaced by a directory; fresh run into that folder")
def f44(c: Ctx) -> None:
    def to_dir(r: Path) -> None:
        (r / "summary.json").unlink()
        (r / "summary.json").mkdir()
    finished_rerun(c, "done3", to_dir, SHORT, {2}, extra=())


@scenario("F45", "killed run (no summary), checkpoints/last.pt and best.pt deleted; resume=auto to 5 epochs")
def f45(c: Ctx) -> None:
    run = c.copy("unf3", "R")
    for n in ("last.pt", "best.pt"):
        (run / "checkpoints" / n).unlink()
    old = (run / "metrics.csv").read_bytes()
    call = c.run("train", *FIVE, f"hydra.run.dir={run}", "trainer.resume=auto")
    c.check(call, {0}, max_err=1)
    c.expect(state(run) == "completed@5", f"after: {state(run)}")
    c.same_as(run, reference("five"))
    kept = run / "previous" / "1" / "metrics.csv"
    c.expect(kept.is_file() and kept.read_bytes() == old, "the earlier start was not kept in previous/1")
    c.record = f"started over: {state(run)} = uninterrupted; earlier start in previous/1"


def unfinished_refused(c: Ctx, damage: Callable[[Path], None], args: list[str] = FIVE,
                       extra: tuple[str, ...] = ("trainer.resume=auto",), codes: set | None = None,
                       name_in_err: str = "") -> Call:
    run = c.copy("unf3", "R")
    damage(run)
    before = files(run)
    call = c.run("train", *args, f"hydra.run.dir={run}", *extra)
    c.check(call, codes or {2}, max_err=1)
    if name_in_err:
        c.expect(name_in_err in call.err, f"stderr does not name {name_in_err!r}")
    c.unchanged(run, before)
    c.record = f"{state(run)}, unchanged"
    return call


@scenario("F46", "killed run, last.pt replaced by junk and best.pt deleted; resume=auto")
def f46(c: Ctx) -> None:
    def damage(r: Path) -> None:
        (r / "checkpoints" / "best.pt").unlink()
        (r / "checkpoints" / "last.pt").unlink()
        (r / "checkpoints" / "last.pt").write_bytes(os.urandom(3000))
    unfinished_refused(c, damage, name_in_err="last.pt")


def resumed_ok(c: Ctx, damage: Callable[[Path], None], args: list[str] = FIVE, extra: tuple[str, ...] = (),
               max_err: int = 2, cwd: Path | None = None, where: str = "R", named: bool = True) -> tuple[Path, Call]:
    run = c.copy("unf3", where)
    damage(run)
    dirs = [f"hydra.run.dir={run}"] if named else []
    call = c.run("train", *args, *dirs, "trainer.resume=auto", *extra, cwd=cwd)
    c.check(call, {0}, max_err=max_err)
    c.expect(state(run) == "completed@5", f"after: {state(run)}")
    same = c.same_as(run, reference("five"))
    c.record = f"{state(run)}{' = uninterrupted' if same else ''}"
    return run, call


def cut_file(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.unlink()  # best.pt and last.pt may be one file under two names
    path.write_bytes(data[: int(len(data) * keep)])


@scenario("F47", "killed run, best.pt truncated (last.pt intact); resume=auto to 5 epochs")
def f47(c: Ctx) -> None:
    resumed_ok(c, lambda r: cut_file(r / "checkpoints" / "best.pt"))


@scenario("F48", "killed run, metrics.csv deleted; resume=auto to 5 epochs")
def f48(c: Ctx) -> None:
    run = c.copy("unf3", "R")
    (run / "metrics.csv").unlink()
    call = c.run("train", *FIVE, f"hydra.run.dir={run}", "trainer.resume=auto")
    c.check(call, {0}, max_err=2)
    c.expect(state(run) == "completed@5", f"after: {state(run)}")
    ep = epochs_in(run)
    c.expect(ep is not None and ep == sorted(set(ep)) and ep[-1:] == [5], f"metrics.csv epochs {ep}")
    c.record = f"{state(run)}, metrics.csv epochs {ep[0] if ep else '-'}..{ep[-1] if ep else '-'}"


@scenario("F49", "killed run, metrics.csv replaced by binary junk; resume=auto to 5 epochs")
def f49(c: Ctx) -> None:
    run = c.copy("unf3", "R")
    (run / "metrics.csv").write_bytes(b"\xff\xfe\x00junk\x80\n\x01,\x02\n")
    before = files(run)
    call = c.run("train", *FIVE, f"hydra.run.dir={run}", "trainer.resume=auto")
    c.check(call, {0, 2}, max_err=2)
    if call.code == 0:
        ep = epochs_in(run)
        c.expect(state(run) == "completed@5", f"after: {state(run)}")
        c.expect(ep is not None and ep == sorted(set(ep)) and ep[-1:] == [5], f"metrics.csv epochs {ep}")
        c.record = f"{state(run)}, metrics.csv epochs {ep}"
    else:
        c.unchanged(run, before)
        c.record = f"refused, {state(run)} unchanged"


@scenario("F50", "killed run, its TensorBoard event file deleted; resume=auto to 5 epochs")
def f50(c: Ctx) -> None:
    resumed_ok(c, lambda r: [p.unlink() for p in r.glob("events.out.tfevents.*")])


@scenario("F51", "killed run, .hydra/config.yaml deleted; resume=auto (named folder) to 5 epochs")
def f51(c: Ctx) -> None:
    run, _ = resumed_ok(c, lambda r: (r / ".hydra" / "config.yaml").unlink())
    c.expect((run / ".hydra" / "config.yaml").is_file(), ".hydra/config.yaml not written again")


@scenario("F52", "killed run under outputs/runs with .hydra/ deleted; resume=auto without hydra.run.dir")
def f52(c: Ctx) -> None:
    old = c.copy("unf3", "outputs/runs/2026-01-01/00-00-00_aaaaaa")
    shutil.rmtree(old / ".hydra")
    before = files(old)
    call = c.run("train", *FIVE, "trainer.resume=auto")
    c.check(call, {0}, max_err=2)
    runs = [p for p in (c.dir / "outputs" / "runs").glob("*/*") if p != old]
    if state(old) == "completed@5":  # it was recognised (by its checkpoint's config) and continued
        c.same_as(old, reference("five"))
        c.expect(not runs, f"also made {[p.name for p in runs]}")
        c.record = f"continued: {state(old)}"
    else:
        c.unchanged(old, before)
        c.expect(len(runs) == 1 and state(runs[0]) == "completed@5", f"new runs: {[state(p) for p in runs]}")
        c.record = f"old run unchanged ({state(old)}); a new run {state(runs[0]) if runs else '-'}"


@scenario("F53", "killed run under outputs/runs; the same command with resume=auto, no hydra.run.dir")
def f53(c: Ctx) -> None:
    old = c.copy("unf3", "outputs/runs/2026-01-01/00-00-00_aaaaaa")
    call = c.run("train", *FIVE, "trainer.resume=auto")
    c.check(call, {0}, max_err=2)
    runs = [p for p in (c.dir / "outputs" / "runs").glob("*/*") if p != old]
    c.expect(state(old) == "completed@5", f"old run: {state(old)}")
    c.same_as(old, reference("five"))
    c.expect(not runs, f"left another folder: {[p.name for p in runs]}")
    c.record = f"continued: {state(old)}, no other folder"


@scenario("F54", ".nnexp.lock is a directory in an empty run folder; fresh run")
def f54(c: Ctx) -> None:
    run = c.dir / "R"
    (run / ".nnexp.lock").mkdir(parents=True)
    call = c.run("train", *SHORT, f"hydra.run.dir={run}")
    c.check(call, {2}, max_err=1)
    c.expect(not holds_run(run), f"left {state(run)}")
    c.record = state(run)


@scenario("F55", "killed run whose .nnexp.lock names a dead PID (999999); resume=auto to 5 epochs")
def f55(c: Ctx) -> None:
    run, call = resumed_ok(c, lambda r: (r / ".nnexp.lock").write_text(
        "PID 999999 on gone-host since 2026-01-01 00:00:00\n"))
    c.expect("took over" in call.err, "no line about the lock taken over")


@scenario("F56", "killed run whose lock a live process holds (flock by this script); resume=auto")
def f56(c: Ctx) -> None:
    run = c.copy("unf3", "R")
    fd = os.open(run / ".nnexp.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.write(fd, f"PID {os.getpid()} on here since now\n".encode())
    try:
        before = files(run)
        call = c.run("train", *FIVE, f"hydra.run.dir={run}", "trainer.resume=auto")
    finally:
        os.close(fd)
    c.check(call, {2}, max_err=1)
    c.expect(str(os.getpid()) in call.err, "stderr does not name the holder's PID")
    c.unchanged(run, before)
    c.record = f"{state(run)}, unchanged"


@scenario("F57", "two resume=auto commands on the same killed run started together")
def f57(c: Ctx) -> None:
    run = c.copy("unf3", "R")
    a = c.start("train", *FIVE, f"hydra.run.dir={run}", "trainer.resume=auto", label="first")
    b = c.start("train", *FIVE, f"hydra.run.dir={run}", "trainer.resume=auto", label="second")
    ca, cb = a.finish(), b.finish()
    c.check(ca, {0, 2}, max_err=1)
    c.check(cb, {0, 2}, max_err=1)
    codes = sorted([ca.code, cb.code], key=str)
    c.expect(0 in codes, "neither finished the run")
    loser = cb if cb.code == 2 else ca if ca.code == 2 else None
    if loser is not None:
        c.expect("in use" in loser.err or "PID" in loser.err, "the refused one does not name the holder")
    else:
        c.expect("already finished" in ca.out + cb.out, "both exited 0 but neither said 'already finished'")
    c.expect(state(run) == "completed@5", f"after: {state(run)}")
    same = c.same_as(run, reference("five"))
    c.record = f"{state(run)}{' = uninterrupted' if same else ''}; exits {codes}"


@scenario("F58", "completed run folder made read-only (all files and folders); resume=auto with more epochs")
def f58(c: Ctx) -> None:
    run = c.copy("done3", "R")
    for p in [run, *run.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    before = files(run)
    call = c.run("train", *FIVE, f"hydra.run.dir={run}", "trainer.resume=auto", obey_modes=True)
    c.check(call, {2}, max_err=1)
    c.unchanged(run, before)
    c.record = f"{state(run)}, unchanged"


@scenario("F59", "an empty read-only run folder; fresh run into it")
def f59(c: Ctx) -> None:
    run = c.dir / "R"
    run.mkdir()
    run.chmod(0o555)
    call = c.run("train", *SHORT, f"hydra.run.dir={run}", obey_modes=True)
    c.check(call, {2}, max_err=1)
    c.expect("hydra.run.dir" in call.err or str(run) in call.err, "stderr names neither the folder nor the key")
    c.record = state(run)


@scenario("F60", "killed run whose checkpoints/ folder is replaced by a file; resume=auto")
def f60(c: Ctx) -> None:
    def to_file(r: Path) -> None:
        shutil.rmtree(r / "checkpoints")
        (r / "checkpoints").write_text("not a folder\n")
    unfinished_refused(c, to_file, codes={2, 0})
    # exit 0 would mean it started over; unchanged() above already flags any change


@scenario("F61", "a new run folder in which 'checkpoints' is already a file; fresh run")
def f61(c: Ctx) -> None:
    run = c.dir / "R"
    run.mkdir()
    (run / "checkpoints").write_text("mine\n")
    call = c.run("train", *SHORT, f"hydra.run.dir={run}")
    c.check(call, {1, 2}, max_err=1)
    c.expect((run / "checkpoints").read_text() == "mine\n", "the user's file 'checkpoints' was changed")
    s = state(run)
    c.expect(s in ("no run", "no folder") or s.startswith("failed"), f"left {s}")
    c.record = s


@scenario("F62", "completed run (3 epochs); resume=auto asking for fewer epochs (2)")
def f62(c: Ctx) -> None:
    finished_rerun(c, "done3", lambda r: None, [*MOONS, "trainer.epochs=2"], {0})


@scenario("F63", "diverged run (lr=1e30); the same command again with resume=auto")
def f63(c: Ctx) -> None:
    call = finished_rerun(c, "div", lambda r: None, [*SHORT, "optimizer.lr=1e30"], {0})
    c.expect("already finished" in call.out, "did not say 'already finished'")


@scenario("F64", "early-stopped run; the same command with trainer.resume=<its folder>")
def f64(c: Ctx) -> None:
    run = c.dir / "R"
    call = finished_rerun(c, "early", lambda r: None, EARLY, {0}, extra=(f"trainer.resume={run}",))
    c.expect("already finished" in call.out, "did not say 'already finished'")


@scenario("F65", "trainer.resume=<a copy of a run's last.pt outside any run folder> into a new folder, 5 epochs")
def f65(c: Ctx) -> None:
    src = c.copy("done3", "src")
    weights = c.dir / "weights.pt"
    shutil.copy2(src / "checkpoints" / "last.pt", weights)
    before, data = files(src), weights.read_bytes()
    new = c.dir / "R2"
    call = c.run("train", *FIVE, f"hydra.run.dir={new}", f"trainer.resume={weights}")
    c.check(call, {0}, max_err=1)
    c.unchanged(src, before)
    c.expect(weights.read_bytes() == data, "the .pt file changed")
    c.expect(state(new) == "completed@5", f"new run: {state(new)}")
    same = c.same_as(new, reference("five")[:1] + reference("five")[4:]) if state(new) == "completed@5" else False
    c.record = f"new run {state(new)}{' (epochs 4-5 = uninterrupted)' if same else ''}; source and .pt unchanged"


@scenario("F66", "trainer.resume=<last.pt of a model.hidden=[16] run> for model.hidden=[8], new folder")
def f66(c: Ctx) -> None:
    src = c.copy("wide3", "src")
    before = files(src)
    new = c.dir / "R2"
    call = c.run("train", *FIVE, f"hydra.run.dir={new}", f"trainer.resume={src / 'checkpoints' / 'last.pt'}")
    c.check(call, {2}, max_err=1)
    c.unchanged(src, before)
    c.expect(not holds_run(new), f"left {state(new)} in the new folder")
    c.record = f"source unchanged; new folder: {state(new)}"


@scenario("F67", "killed run resumed with a changed model (model.hidden=[16])")
def f67(c: Ctx) -> None:
    args = [*[a for a in FIVE if not a.startswith("model.hidden")], "model.hidden=[16]"]
    unfinished_refused(c, lambda r: None, args=args, name_in_err="model.hidden")


@scenario("F68", "killed run resumed with display-only changes (progress=plain, pictures_every=1, threads=2)")
def f68(c: Ctx) -> None:
    args = [a for a in FIVE if not a.startswith(("trainer.progress", "trainer.pictures_every", "trainer.threads"))]
    resumed_ok(c, lambda r: None, args=[*args, "trainer.progress=plain", "trainer.pictures_every=1",
                                        "trainer.threads=2"])


@scenario("F69", "a folder holding only a TensorBoard event file; fresh run into it")
def f69(c: Ctx) -> None:
    def only_events(r: Path) -> None:
        for p in list(r.iterdir()):
            if not p.name.startswith("events.out.tfevents."):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    finished_rerun(c, "done3", only_events, SHORT, {2}, extra=())


@scenario("F70", "a folder holding only someone's train.log; fresh run into it")
def f70(c: Ctx) -> None:
    run = c.dir / "R"
    run.mkdir()
    (run / "train.log").write_text("an old log line\n")
    call = c.run("train", *SHORT, f"hydra.run.dir={run}")
    c.check(call, {0}, max_err=1)
    c.expect((run / "train.log").read_text().startswith("an old log line\n"), "the old log was lost")
    c.expect(state(run) == "completed@3", f"after: {state(run)}")
    c.record = f"{state(run)}, old log kept"


# --- 6. disk, output and config faults


def size_fault(c: Ctx, limit_of: Callable[[Path], int], args: list[str]) -> None:
    """README 13: a file that cannot be written is one line, exit 1, summary.json `failed` naming the file; with
    room again, resume=auto resume_finished=true continues from the last checkpoint."""
    ref_dir = OUT_DIR / "_ref" / "long"
    reference("long")
    limit = limit_of(ref_dir)
    run = c.dir / "R"
    call = c.run("train", *args, f"hydra.run.dir={run}", fsize=limit)
    c.check(call, {1}, max_err=1)
    s = summary(run)
    c.expect(s is not None and s.get("status") == "failed", f"summary after the fault: {state(run)}")
    err = str((s or {}).get("error") or "")
    c.expect(any(k in err for k in (".pt", "events.out", "metrics.csv", "summary.json", "train.log")),
             f"the error does not name the file: {err or None}")
    after = state(run)
    again = c.run("train", *args, f"hydra.run.dir={run}", "trainer.resume=auto", "trainer.resume_finished=true",
                  label="resume")
    if (run / "checkpoints" / "last.pt").is_file() or again.code == 0:
        c.check(again, {0}, max_err=2)
        end = state(run)
        c.expect(end == f"completed@{E}", f"after resume: {end}")
        same = c.same_as(run, reference("long"))
        end += " = uninterrupted" if same else ""
    else:  # failed before its first checkpoint: nothing to continue, said in one line
        c.check(again, {2}, max_err=1)
        end = f"not resumable ({again.err.strip()[:60]})"
    c.record = f"{after} (limit {limit} B): {err[:70]} -> {end}"


@scenario("F71", "file-size limit (RLIMIT_FSIZE) at half the checkpoint's size: the first checkpoint write fails")
def f71(c: Ctx) -> None:
    size_fault(c, lambda r: (r / "checkpoints" / "last.pt").stat().st_size // 2, LONG)


@scenario("F72", "file-size limit 8 KB above the checkpoint's size, pictures every epoch: the event file hits it")
def f72(c: Ctx) -> None:
    args = [*[a for a in LONG if not a.startswith("trainer.pictures_every")], "trainer.pictures_every=1"]
    size_fault(c, lambda r: (r / "checkpoints" / "last.pt").stat().st_size + 8192, args)


@scenario("F73", "stdout is /dev/full (every write ENOSPC), trainer.progress=plain")
def f73(c: Ctx) -> None:
    run = c.dir / "R"
    args = [a for a in SHORT if a != "trainer.progress=none"]
    with open("/dev/full", "wb") as full:
        call = c.run("train", *args, "trainer.progress=plain", f"hydra.run.dir={run}", stdout=full)
    c.check(call, {0}, max_err=1)
    c.expect(state(run) == "completed@3", f"after: {state(run)}")
    c.record = state(run)


@scenario("F74", "stdout a pipe whose reader is gone before start; basic sweep of 2 jobs")
def f74(c: Ctx) -> None:
    sweep = c.dir / "S"
    r, w = os.pipe()
    os.close(r)
    with os.fdopen(w, "wb") as pipe_w:
        call = c.run("train", "-m", *SHORT, "trainer.seed=0,1", f"hydra.sweep.dir={sweep}", stdout=pipe_w)
    c.check(call, {0}, max_err=1)
    states = [state(j) for j in jobs_of(sweep)]
    c.expect(states == ["completed@3", "completed@3"], f"jobs: {states}")
    c.record = ", ".join(states)


@scenario("F75", "stderr is /dev/full; config error (optimizer.lr=-1) on a completed run with resume=auto")
def f75(c: Ctx) -> None:
    run = c.copy("done3", "R")
    before = files(run)
    p = c.start("train", *SHORT, "optimizer.lr=-1", f"hydra.run.dir={run}", "trainer.resume=auto")
    call = p.finish()  # stderr goes to a file here; the /dev/full case is the next call
    c.check(call, {2}, max_err=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONDONTWRITEBYTECODE": "1"}
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([PY, "-m", "nnexp", "train", *SHORT, "optimizer.lr=-1", f"hydra.run.dir={run}",
                               "trainer.resume=auto"], cwd=c.dir, env=env, stdout=subprocess.DEVNULL,
                              stderr=full, stdin=subprocess.DEVNULL, timeout=240)
    c.calls.append(Call(call.args, "stderr=/dev/full", proc.returncode, "", ""))
    c.expect(proc.returncode == 2, f"with stderr /dev/full: exit {proc.returncode}")
    c.unchanged(run, before)
    c.record = f"{state(run)}, unchanged"


@scenario("F76", "killed run; resume=auto with a config error (optimizer.lr=-1)")
def f76(c: Ctx) -> None:
    unfinished_refused(c, lambda r: None, args=[*FIVE, "optimizer.lr=-1"], name_in_err="optimizer.lr")


@scenario("F77", "SIGTERM to `nnexp train -m` the moment its nnexp_sweep.json appears (before job 0); again")
def f77(c: Ctx) -> None:
    sweep = c.dir / "S"
    cmd = ["train", "-m", *SHORT, "trainer.seed=0,1", f"hydra.sweep.dir={sweep}"]
    p = c.start(*cmd)
    wait_for(p, lambda: (sweep / "nnexp_sweep.json").exists(), interval=0.002)
    p.send(signal.SIGTERM)
    call = p.finish()
    c.check(call, {143}, max_err=1)
    jobs = [state(j) for j in jobs_of(sweep)]
    c.expect(all(j.startswith(("interrupted", "no run")) for j in jobs), f"jobs: {jobs}")
    again = c.run(*cmd, label="rerun")
    c.check(again, {0}, max_err=1)
    after = [state(j) for j in jobs_of(sweep)]
    c.expect(after == ["completed@3", "completed@3"], f"after rerun: {after}")
    c.record = f"jobs: {jobs or 'none'} -> {', '.join(after)}"


@scenario("F79", "trainer.resume=<a completed run's own last.pt> with hydra.run.dir=<another folder>, 5 epochs")
def f79(c: Ctx) -> None:
    src = c.copy("done3", "src")
    before = files(src)
    new = c.dir / "R2"
    call = c.run("train", *FIVE, f"hydra.run.dir={new}", f"trainer.resume={src / 'checkpoints' / 'last.pt'}")
    c.check(call, {0}, max_err=1)
    if state(src) == "completed@5":  # README 2: resume=PATH continues that run, in its own folder
        c.same_as(src, reference("five"))
        c.expect(not holds_run(new), f"also left {state(new)} in {new.name}")
        c.record = f"continued in its own folder: {state(src)}; {new.name}: {state(new)}"
    else:  # or a new run from its weights: then the source must not change
        c.unchanged(src, before)
        c.expect(state(new) == "completed@5", f"new run: {state(new)}")
        c.record = f"source unchanged; new run {state(new)}"


@scenario("F78", "killed run whose summary.json is a dangling symlink; resume=auto to 5 epochs")
def f78(c: Ctx) -> None:
    def dangle(r: Path) -> None:
        (r / "summary.json").symlink_to(r / "nowhere.json")
    run = c.copy("unf3", "R")
    dangle(run)
    call = c.run("train", *FIVE, f"hydra.run.dir={run}", "trainer.resume=auto")
    c.check(call, {0, 2}, max_err=2)
    if call.code == 0:
        c.expect(state(run) == "completed@5", f"after: {state(run)}")
        c.same_as(run, reference("five"))
    c.record = state(run)


@scenario("F81", f"checkpoints/ folder removed mid-run (epoch {E // 2} of {E})")
def f81(c: Ctx) -> None:
    run = c.dir / "R"
    p = c.start("train", *LONG, f"hydra.run.dir={run}")
    fired = wait_for(p, after_rows(run, E // 2))
    if fired:
        shutil.rmtree(run / "checkpoints", ignore_errors=True)
    call = p.finish()
    c.check(call, {0, 1}, max_err=1)
    after = state(run)
    if call.code == 0:
        c.expect(after == f"completed@{E}", f"exit 0 but {after}")
        c.expect((run / "checkpoints" / "last.pt").is_file(), "completed without a last.pt")
        c.same_as(run, reference("long"))
    else:
        c.expect(after.startswith("failed"), f"exit 1 but {after}")
    c.record = after + ("" if fired else " (the run ended first)") + \
        (", checkpoints written again" if (run / "checkpoints" / "last.pt").is_file() else "")


# ---------------------------------------------------------------------------------------------------------


def run_one(sid: str, fault: str, fn: Callable[[Ctx], None]) -> Row:
    t0 = time.monotonic()
    c = Ctx(sid, fault)
    row = Row(sid, fault)
    try:
        fn(c)
    except SetupFailed as exc:
        c.problems.append(f"setup failed: {exc}")
    except Exception:  # noqa: BLE001 - a bug of this script: a FAIL row with its traceback, the pass goes on
        c.problems.append("fault_pass error: " + traceback.format_exc().strip().splitlines()[-1])
        c.tails.append(traceback.format_exc())
    finally:
        c.cleanup()
    shown = [k for k in c.calls if k.role != "setup"]
    row.command = short(c.command or [], c.dir)
    row.codes = "→".join(str(k.code) for k in shown)
    row.err_lines = "→".join(str(len(k.err_lines)) for k in shown)
    row.traceback = "yes" if any(k.traceback for k in c.calls) else "no"
    row.record = c.record + (f" ({'; '.join(c.notes)})" if c.notes else "")
    row.verdict = "OK" if not c.problems else "FAIL: " + "; ".join(c.problems)
    row.tails = c.tails
    row.seconds = time.monotonic() - t0
    return row


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(rows_: list[Row]) -> str:
    head = "| id | fault (what, when) | command | exit | stderr lines | traceback | record after | verdict |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows_:
        lines.append("| " + " | ".join(cell(x) for x in (r.id, r.fault, f"`{r.command}`", r.codes, r.err_lines,
                                                          r.traceback, r.record, r.verdict)) + " |")
    ok = sum(r.verdict == "OK" for r in rows_)
    lines.append("")
    used = [f"`{n}` = `{' '.join(p)}`" for n, p in all_presets() if any(n in r.command for r in rows_)]
    lines.append(f"{ok} of {len(rows_)} OK. Presets: " + "; ".join(used).replace(str(OUT_DIR) + "/", ""))
    return "\n".join(lines) + "\n"


def main() -> int:
    global OUT_DIR
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="base folder (default: a new temp folder)")
    ap.add_argument("--only", default="", help="comma-separated scenario ids (F05,F23)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--jobs", type=int, default=2, help="scenarios run at once (default 2: each nnexp uses one thread)")
    opts = ap.parse_args()
    SCENARIOS.sort(key=lambda s: s[0])
    if opts.list:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `--list | head` ends quietly
        for sid, fault, _ in SCENARIOS:
            print(f"{sid}  {fault}")
        return 0
    # a pass started in the background (nohup, `&`) inherits SIGINT/SIGHUP ignored, and so would every nnexp it
    # starts: Python keeps an ignored SIGINT ignored. The commands must meet the signals a user's would.
    for sig, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGHUP, signal.SIG_DFL),
                         (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, handler)
    OUT_DIR = (opts.out or Path(tempfile.mkdtemp(prefix="nnexp-faults-"))).resolve()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(OUT_DIR, 0o755)  # the non-root scenarios must reach their folders
    make_text(OUT_DIR / "_data" / "text.txt")
    broken = subprocess.run([PY, "-c", "import nnexp.cli, nnexp.app, nnexp.report_cmd, nnexp.run"], capture_output=True,
                            text=True)
    if broken.returncode:  # the code under test does not import (a merge under way?): no row would mean anything
        print("nnexp does not import:\n" + broken.stderr.strip()[-1500:], file=sys.stderr)
        return 2
    wanted = {s.strip().upper() for s in opts.only.split(",") if s.strip()}
    unknown = wanted - {sid for sid, _, _ in SCENARIOS}
    if unknown:
        print(f"unknown scenario ids: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    todo = [s for s in SCENARIOS if not wanted or s[0] in wanted]
    print(f"fault pass: {len(todo)} scenarios in {OUT_DIR}", file=sys.stderr)
    t0 = time.monotonic()
    results = []
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        for row in pool.map(lambda s: run_one(*s), todo) if opts.jobs <= 1 else \
                (f.result() for f in as_completed([pool.submit(run_one, *s) for s in todo])):
            results.append(row)
            print(f"  {row.id} {row.seconds:5.1f}s {row.verdict[:150]}", file=sys.stderr)
    results.sort(key=lambda r: r.id)
    md = table(results)
    md += f"\nWall time {time.monotonic() - t0:.0f} s; python {sys.version.split()[0]}; folders under {OUT_DIR}\n"
    (OUT_DIR / "faults.md").write_text(md)
    fails = [r for r in results if r.verdict != "OK"]
    details = "".join(f"\n## {r.id}: {r.fault}\n\n{r.verdict}\n\n```\n" + "\n\n".join(r.tails) + "\n```\n"
                      for r in fails)
    (OUT_DIR / "fails.md").write_text(details or "no FAIL rows\n")
    print(md)
    if fails:
        print(f"{len(fails)} FAIL rows; their stderr: {OUT_DIR / 'fails.md'}")
    return 1 if fails else 0


if __name__ == "__main__":
    raise SystemExit(main())
