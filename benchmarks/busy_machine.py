"""B8 busy machine: seconds per epoch alone and beside one competing CPU-bound process.

Users rarely train on an idle machine: a second terminal runs another ``nnexp train``,
a test suite or a browser. With OpenMP's default (active) wait policy, torch's worker
threads spin while the cores are taken and a small model's epoch can take hundreds of
times longer (issue 15). This case measures three models of the course, each alone,
beside a Python busy loop and beside a second nnexp run, for nnexp and for a hand-written
loop with torch's defaults (benchmarks/hand_epochs.py) under the same loads.

Every measured side is a process of its own, because the OpenMP environment is read when
torch loads: ``child_env()`` is this process's environment without the variables that
tune OpenMP, so nnexp's own default applies (and the hand loop gets torch's). The figure
is the median of the per-epoch ``seconds`` over epochs 2..N (epoch 1 pays first-call
costs), from nnexp's metrics.csv and from the hand loop's own timing of the same span
(training pass + validation pass). The helpers here (child processes, metrics.csv) serve
B9 and T1 too.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
OMP_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS")
EPOCHS, BUDGET = 10, 20.0  # epochs per measured run; past BUDGET seconds a run stops after its 2nd epoch
SIGMOID10 = ["dataset=digits", "dataset.train_fraction=1.0", "model=mlp", f"model.hidden=[{','.join(['64'] * 10)}]",
             "model.activation=sigmoid", "model.init=xavier", "model.residual=false", "optimizer=sgd",
             "regularizer=none"]  # experiment=vanishing_gradients with its arm deep_net=sigmoid_plain, one run
MODELS = {  # hand_epochs.py model: (what, nnexp overrides, dataset.train_fraction it trains on)
    "mlp": ("digits MLP 512x512, the default demo (108 train images)", [], 0.1),
    "lenet5": ("LeNet-5 on digits (108 train images)", ["model=lenet5", "dataset=digits"], 0.1),
    "sigmoid10": ("10-layer sigmoid MLP of experiment=vanishing_gradients (1,078 train images)", SIGMOID10, 1.0),
}
# the second nnexp run: CPU-bound for as long as it is left running (no checkpoints: no disk in the way);
# 2,000 epochs (10 min or more on 2 cores) outlast any measurement, and end by themselves if it is killed
COMPETITOR = ["model=lenet5", "dataset.train_fraction=1.0", "regularizer=none", "trainer.epochs=2000",
              "trainer.checkpoints=false"]
# the busy loop: `while True: pass`, leaving off once its parent (this benchmark) is gone
BUSY_LOOP = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(10**6): pass"
LOADS = ("alone", "busy loop", "nnexp run")
LOAD_TEXT = {"busy loop": "a Python busy loop", "nnexp run": "a second `nnexp train` (LeNet-5)"}


# ---------------------------------------------------------------------------------------------
# child processes (also used by beside_tensorboard.py and vs_sklearn.py)


def child_env() -> dict[str, str]:
    """This environment less the OpenMP tuning variables: a child gets nnexp's default, or torch's."""
    return {k: v for k, v in os.environ.items() if k not in OMP_KEYS}


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    """``cmd`` in a session of its own (``stop`` ends it and whatever it started), its output to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=child_env(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group ``start`` made (nnexp stops politely), SIGKILL if it lingers past 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 30)):
        with contextlib.suppress(ProcessLookupError):  # the group is gone: nothing of it left
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
            return


def nnexp_command(overrides: list[str], run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "nnexp", "train", *overrides, f"hydra.run.dir={run_dir}", "trainer.progress=none"]


def metrics(run_dir: Path) -> list[dict]:
    """The complete rows of a run's metrics.csv so far, numbers as floats (empty cells None)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]
    return [{k: float(v) if v else None for k, v in r.items()} for r in csv.DictReader(lines)]


def run_nnexp(overrides: list[str], run_dir: Path, stop_when: Callable[[float, Callable], bool] | None = None,
              timeout: float = 900) -> tuple[list[dict], float]:
    """``nnexp train`` as a child process: its metrics.csv rows and its wall seconds. ``stop_when(elapsed,
    read_rows)`` is asked every 0.25 s; when true the run is stopped (SIGTERM) and what it logged is kept."""
    began = time.perf_counter()
    log = run_dir.parent / f"{run_dir.name}.log"
    proc = start(nnexp_command(overrides, run_dir), log)
    stopped = False
    try:
        while proc.poll() is None:
            elapsed = time.perf_counter() - began
            if elapsed > timeout:
                raise RuntimeError(f"nnexp train {' '.join(overrides)} still running after {timeout:.0f} s")
            if stop_when is not None and stop_when(elapsed, lambda: metrics(run_dir)):
                stopped = True
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.25)
    finally:
        stop(proc)
    wall = time.perf_counter() - began
    if proc.returncode and not stopped:
        raise RuntimeError(f"nnexp train {' '.join(overrides)} exited {proc.returncode}: "
                           f"{log.read_text().strip()[-400:]}")
    return metrics(run_dir), wall


def epoch_median(seconds: list[float]) -> float:
    """The median epoch from the second on (the first pays first-call costs)."""
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


# ---------------------------------------------------------------------------------------------
# the two sides and the loads


def digits_split(compose: Callable, train_fraction: float, path: Path) -> Path:
    """The split ``dataset=digits dataset.train_fraction=F`` gives, made by nnexp's own dataset builder and
    saved for the hand loop (which imports torch only)."""
    import torch

    from nnexp.build import component

    data = component("dataset", compose(["dataset=digits", f"dataset.train_fraction={train_fraction}"]).dataset)
    torch.save({"train": (data.train.x, data.train.y), "val": (data.val.x, data.val.y)}, path)
    return path


def nnexp_epochs(overrides: list[str], run_dir: Path) -> tuple[list[float], float | None]:
    """nnexp's per-epoch seconds and its last epoch's val/loss."""
    rows, _ = run_nnexp(overrides, run_dir, lambda elapsed, read: elapsed > BUDGET and len(read()) >= 2)
    return [r["seconds"] for r in rows], rows[-1]["val/loss"] if rows else None


def hand_epochs(model: str, epochs: int, data: Path) -> tuple[list[float], float | None]:
    """The hand loop's per-epoch seconds and its last epoch's val/loss."""
    cmd = [sys.executable, str(HERE / "hand_epochs.py"), model, str(epochs), str(data), "--budget", str(BUDGET)]
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=900)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["seconds"], out["last"].get("val/loss")


@contextlib.contextmanager
def load(kind: str, where: Path) -> Iterator[None]:
    """Nothing, a Python busy loop or a second nnexp run, running from before the block until after it."""
    if kind == "alone":
        yield
        return
    run_dir = where / "competitor"
    cmd = [sys.executable, "-c", BUSY_LOOP] if kind == "busy loop" else nnexp_command(COMPETITOR, run_dir)
    proc = start(cmd, where / "load.log")
    try:
        began = time.perf_counter()
        # running for real: the busy loop past its start-up, the nnexp run past its first epoch
        while time.perf_counter() - began < 1.5 or (kind == "nnexp run" and not metrics(run_dir)):
            if proc.poll() is not None:
                raise RuntimeError(f"the load ({kind}) exited {proc.returncode}: "
                                   f"{(where / 'load.log').read_text()[-400:]}")
            if time.perf_counter() - began > 300:
                raise RuntimeError(f"the load ({kind}) logged no epoch within 300 s")
            time.sleep(0.25)
        yield
        if proc.poll() is not None:
            raise RuntimeError(f"the load ({kind}) ended before the measurement did: exit {proc.returncode}")
    finally:
        stop(proc)


def measure(model: str, overrides: list[str], data: Path, epochs: int, repeats: int, root: Path) -> tuple:
    """{(load, side): [the median epoch of each round]}, within a load the sides in alternating order; and the
    largest difference of the two sides' last val/loss over the rounds both trained every epoch (same work?)."""
    out: dict[tuple[str, str], list[float]] = {(k, s): [] for k in LOADS for s in ("nnexp", "hand")}
    worst = None
    for r in range(repeats):
        for kind in LOADS:
            where = root / f"r{r}" / kind.replace(" ", "_")
            where.mkdir(parents=True, exist_ok=True)
            got = {}
            with load(kind, where):
                for side in (("nnexp", "hand") if r % 2 == 0 else ("hand", "nnexp")):
                    got[side] = (nnexp_epochs(overrides, where / "nnexp") if side == "nnexp"
                                 else hand_epochs(model, epochs, data))
                    out[kind, side].append(epoch_median(got[side][0]))
            if all(len(seconds) == epochs and loss is not None for seconds, loss in got.values()):
                diff = abs(got["nnexp"][1] - got["hand"][1])
                worst = diff if worst is None else max(worst, diff)
    return out, worst


def case(quick: bool, repeats: int, root: Path, row: Callable, compose: Callable) -> list[dict]:
    """Five rows per model: alone, and per load nnexp against itself alone and against the hand loop."""
    epochs = 2 if quick else EPOCHS
    rows = []
    splits: dict[float, Path] = {}
    for model in list(MODELS)[:1 if quick else None]:
        what, overrides, fraction = MODELS[model]
        if fraction not in splits:
            splits[fraction] = digits_split(compose, fraction, root / f"digits_{fraction}.pt")
        res, worst = measure(model, [*overrides, f"trainer.epochs={epochs}"], splits[fraction], epochs, repeats,
                             root / model)
        rows += model_rows(row, f"{what}, {epochs} epochs", res, worst)
    return rows


def model_rows(row: Callable, what: str, res: dict, worst: float | None) -> list[dict]:
    med = {k: statistics.median(v) for k, v in res.items()}

    def spread(kind: str, side: str) -> str:
        return f"rounds {side} {min(res[kind, side]):.3f}-{max(res[kind, side]):.3f} s/epoch"

    alone = med["alone", "nnexp"]
    same = "no round ran every epoch on both sides" if worst is None else f"last val/loss agree to {worst:.1e}"
    rows = [row("B8", f"{what}: nnexp alone", alone, med["alone", "hand"], alone / med["alone", "hand"], "reported",
                None, f"reference: the hand loop alone; median s/epoch of epochs 2..N; {spread('alone', 'nnexp')}; "
                f"{spread('alone', 'hand')}; {same}", value_unit="s/epoch")]
    for kind in LOADS[1:]:
        ours, theirs = med[kind, "nnexp"], med[kind, "hand"]
        rows.append(row("B8", f"{what}: nnexp beside {LOAD_TEXT[kind]}, against nnexp alone", ours, alone,
                        ours / alone, "<= 2.00", ours / alone <= 2.0,
                        f"reference: nnexp alone; {spread(kind, 'nnexp')}", value_unit="s/epoch"))
        rows.append(row("B8", f"{what}: nnexp against the hand loop, both beside {LOAD_TEXT[kind]}", ours,
                        theirs, ours / theirs, "<= 1.00", ours / theirs <= 1.0,
                        f"reference: the hand loop (torch's default threads and OpenMP settings) under the same "
                        f"load; {spread(kind, 'hand')}", value_unit="s/epoch"))
    return rows
