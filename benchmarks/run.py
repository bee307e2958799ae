"""nnexp against a hand-written loop (and Lightning), side by side, in one process where it can be.

    python benchmarks/run.py                 # the whole suite, writes benchmarks/RESULTS.md (about 35 min on 2 cores)
    python benchmarks/run.py --only B2,B4    # some cases
    python benchmarks/run.py --quick         # seconds: every case tiny and once; checks the scripts, writes nothing

Every case runs each side once as a warm-up (discarded), then ``--repeats`` times
alternating the order, and reports medians and their ratio. nnexp runs are
``nnexp.run.run(cfg, ctx)`` on a config composed beforehand, exactly as ``nnexp train``
calls it (B1, B5, B8, B9 and T1 start real processes instead: B8, B9 and T1 in an
environment without OMP_WAIT_POLICY, GOMP_SPINCOUNT, KMP_BLOCKTIME and OMP_NUM_THREADS, so
that nnexp's own threading defaults apply; they take no warm-up round, every side being a
new process, and B8 and T1 leave start-up out of their figures). The hand-written reference is
benchmarks/hand_loop.py; it draws the same batches, so B2 and B3 also check that
both computed the same thing: every epoch's train/loss and val/loss agree to 1e-6.

| id | what | reference | target |
|---|---|---|---|
| B1 | start-up: `nnexp --help`, `nnexp train --cfg job`, a 1-epoch run (whole processes) | `python -c "import torch"` | help, cfg < 1/3; 1 epoch < torch + 1 s |
| B2 | overhead-bound: MLP on digits, 30 epochs, validation, early stopping, TensorBoard | hand loop | <= 1.10x |
| B3 | compute-bound: LeNet-5, 60,000 MNIST-shaped random images, 1 epoch | hand loop | <= 1.03x |
| B4 | logging: scalars only, default pictures, per-step scalars | TensorBoard off | default <= 1.05x |
| B5 | sweep: what each more job of a multirun of a tiny job costs (2 vs 20 jobs), basic launcher | beyond its own time | <= 0.3 s per job |
| B6 | threads: trainer.threads=0 (auto) vs 1 and 2 on MLP, LeNet-5, LSTM, Transformer; sweeps: hydra/launcher=joblib on a four-job LeNet-5 sweep and on experiment=mitigations (18 jobs) | best fixed count; the basic launcher | <= 1.10x; <= 1.0x and <= 0.8x |
| B7 | Lightning on B2 and B3 (if installed) | hand loop | reported |
| B8 | busy machine: s/epoch of the digits MLP demo, LeNet-5, the 10-layer sigmoid MLP, alone and beside a Python busy loop or a second `nnexp train` (processes; benchmarks/busy_machine.py) | nnexp alone; hand loop (torch defaults) under the same load | <= 2.0x alone; <= 1.0x hand |
| B9 | beside TensorBoard: the digits MLP while `tensorboard --logdir` serves its folder and a client polls it every 2 s (benchmarks/beside_tensorboard.py) | the same run alone | <= 1.3x |
| R1 | agents: DQN on CartPole-v1 at experiment=dqn_cartpole's settings, 20,000 steps, the environment's own share apart; each algorithm's steps per second and seconds to 475 (benchmarks/rl_loop.py) | a minimal hand-written DQN loop | <= 1.10x; reported |
| T1 | against scikit-learn: seconds until val/acc reaches `MLPClassifier(hidden_layer_sizes=(100,))`'s on the same digits split, seeds 0-2 (benchmarks/vs_sklearn.py) | the peer's fit time | < 1.0x |
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import beside_tensorboard  # noqa: E402
import busy_machine  # noqa: E402
import hand_loop  # noqa: E402
import rl_loop  # noqa: E402
import vs_sklearn  # noqa: E402
from pictures_overhead import machine  # noqa: E402

from nnexp import config as nnexp_config  # noqa: E402

RESULTS = HERE / "RESULTS.md"
TOLERANCE = 1e-6  # the loss agreement B2 and B3 require of nnexp and the hand loop


# ---------------------------------------------------------------------------------------------
# running each side


def compose(overrides: list[str]):  # noqa: ANN201 - a DictConfig
    """The config ``nnexp train <overrides>`` composes."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    nnexp_config.register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(nnexp_config.config_dir()), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def timed(body: Callable[[int], dict]) -> Callable[[], tuple[float, dict]]:
    """A side of a comparison: each call runs ``body(call number, from 1)`` and returns (seconds, its result)."""
    calls = [0]

    def go() -> tuple[float, dict]:
        calls[0] += 1
        start = time.perf_counter()
        detail = body(calls[0])
        return time.perf_counter() - start, detail

    return go


def nnexp_side(overrides: list[str], root: Path) -> Callable[[], tuple[float, dict]]:
    """Timed calls of ``nnexp.run.run`` (config composed once, outside the timing); each call a new run dir."""
    from nnexp.context import RunContext
    from nnexp.run import run

    overrides = [*overrides, "trainer.progress=none"]
    cfg = compose(overrides)
    choices = dict(o.split("=", 1) for o in overrides if o.split("=", 1)[0] in ("model", "dataset"))

    def body(call: int) -> dict:
        run_dir = root / f"nnexp{call}"
        with contextlib.redirect_stdout(io.StringIO()):  # the run's closing table, not the suite's
            summary = run(cfg, RunContext(run_dir, tuple(overrides), choices))
        if not summary.status.trained:
            raise RuntimeError(f"nnexp run {overrides}: {summary.status} {summary.message}")
        return {"run_dir": run_dir, "summary": summary.to_dict()}

    return timed(body)


def nnexp_losses(run_dir: Path) -> list[dict]:
    """Per-epoch train/loss and val/loss as nnexp logged them to TensorBoard (float32)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    by_epoch: dict[int, dict] = {}
    for tag in ("train/loss", "val/loss"):
        for event in acc.Scalars(tag):
            by_epoch.setdefault(event.step, {"epoch": event.step})[tag] = event.value
    return [by_epoch[e] for e in sorted(by_epoch)]


def same_losses(ours: list[dict], theirs: list[dict]) -> tuple[bool, float]:
    """Do both sides' per-epoch losses agree to TOLERANCE? And the largest difference."""
    if len(ours) != len(theirs):
        return False, math.inf
    worst = max(abs(a[t] - b[t]) for a, b in zip(ours, theirs, strict=True) for t in ("train/loss", "val/loss"))
    return worst <= TOLERANCE, worst


def hand_side(make: Callable[[], tuple], *, epochs: int, batch_size: int, seed: int, patience: int | None,
              root: Path) -> Callable[[], tuple[float, dict]]:
    """Timed calls of the hand loop: data, model and optimizer made inside the timing, like nnexp's."""

    def body(call: int) -> dict:
        model, optimizer, data = make()
        history = hand_loop.train(model, optimizer, (data.train.x, data.train.y), (data.val.x, data.val.y),
                                  epochs=epochs, batch_size=batch_size, seed=seed, patience=patience,
                                  log_dir=root / f"hand{call}")
        return {"history": history}

    return timed(body)


def alternate(sides: dict[str, Callable[[], tuple[float, dict]]], repeats: int) -> dict[str, dict]:
    """A discarded warm-up of each side, then ``repeats`` rounds in alternating order; medians."""
    out = {name: {"times": [], "last": None} for name in sides}
    for name, go in sides.items():
        out[name]["last"] = go()[1]  # warm-up: first-call costs (imports, kernels) are not the loop's
    names = list(sides)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            seconds, detail = sides[name]()
            out[name]["times"].append(seconds)
            out[name]["last"] = detail
    for entry in out.values():
        entry["median"] = statistics.median(entry["times"])
    return out


def _process(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return seconds


# ---------------------------------------------------------------------------------------------
# the cases; each returns rows {id, what, value, reference, ratio, target, met, note}


def b1_startup(quick: bool, repeats: int, root: Path) -> list[dict]:
    py = sys.executable
    commands = {
        "torch": [py, "-c", "import torch"],
        "torch+optimizer": [py, "-c", "import torch; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)"],
        "help": [py, "-m", "nnexp", "--help"],
        "cfg": [py, "-m", "nnexp", "train", "--cfg", "job"],
        # a new run folder each time under root/outputs (a finished run's folder is not run in again)
        "epoch": [py, "-m", "nnexp", "train", "trainer.epochs=1", "trainer.progress=none", "hydra.job.chdir=false"],
    }
    if quick:  # the start-up of a training process is measured by B5's sweep too
        for name in ("torch+optimizer", "epoch"):
            del commands[name]
    times: dict[str, list[float]] = {k: [] for k in commands}
    if not quick:  # warm-up: the file cache
        for cmd in commands.values():
            _process(cmd, root)
    for r in range(repeats):
        for name in (list(commands) if r % 2 == 0 else list(commands)[::-1]):
            times[name].append(_process(commands[name], root))
    t = {k: statistics.median(v) for k, v in times.items()}
    torch_s = t["torch"]
    rows = [
        _row("B1", "`nnexp --help` (process)", t["help"], torch_s, t["help"] / torch_s, "< 0.333",
             t["help"] < torch_s / 3, f"`python -c 'import torch'`: {torch_s:.2f} s"),
        _row("B1", "`nnexp train --cfg job` (process)", t["cfg"], torch_s, t["cfg"] / torch_s, "< 0.333",
             t["cfg"] < torch_s / 3, "composes the config without importing torch"),
    ]
    if "epoch" in t:
        optimizer_s = t["torch+optimizer"] - torch_s
        rows.append(_row("B1", "`nnexp train trainer.epochs=1` (process)", t["epoch"], torch_s, t["epoch"] - torch_s,
                         "< torch + 1 s", t["epoch"] < torch_s + 1.0,
                         f"torch's first optimizer alone takes {optimizer_s:.2f} s (torch.optim imports "
                         "torch._dynamo on first use; a hand-written script pays it too); beyond torch + optimizer: "
                         f"{t['epoch'] - t['torch+optimizer']:.2f} s", ratio_is="difference (s)"))
    return rows


def _digits_overrides(epochs: int) -> list[str]:
    return ["dataset.train_fraction=1.0", f"trainer.epochs={epochs}"]


def _make_mlp_on_digits():  # noqa: ANN202
    from nnexp.data.digits import load
    from nnexp.models.mlp import MLP

    torch.manual_seed(0)  # as nnexp seeds before it builds the model
    data = load(train_fraction=1.0)
    model = MLP(data.input_shape, 10, hidden=[512, 512])
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), data


def _make_lenet5(train_size: int):  # noqa: ANN202
    def make():  # noqa: ANN202
        from nnexp.data.shaped import random_images
        from nnexp.models.lenet5 import LeNet5

        torch.manual_seed(0)
        data = random_images(train_size=train_size, val_size=max(1, train_size // 6))
        model = LeNet5(data.input_shape, 10)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3), data

    return make


def _vs_hand(case: str, what: str, overrides: list[str], make: Callable, epochs: int, patience: int | None,
             target: float, repeats: int, root: Path) -> tuple[dict, dict]:
    root.mkdir(parents=True, exist_ok=True)
    sides = {"nnexp": nnexp_side(overrides, root),
             "hand": hand_side(make, epochs=epochs, batch_size=32, seed=0, patience=patience, root=root)}
    torch.set_num_threads(_auto_threads(make))  # the hand loop runs with the threads nnexp picks
    res = alternate(sides, repeats)
    ok, worst = same_losses(nnexp_losses(res["nnexp"]["last"]["run_dir"]), res["hand"]["last"]["history"])
    ratio = res["nnexp"]["median"] / res["hand"]["median"]
    spread = "; ".join(f"{name} {min(r['times']):.2f}-{max(r['times']):.2f} s" for name, r in res.items())
    row = _row(case, what, res["nnexp"]["median"], res["hand"]["median"], ratio, f"<= {target:.2f}",
               ratio <= target and ok, f"losses agree to {worst:.1e} ({'OK' if ok else 'NOT the same work'}); "
               f"rounds: {spread}")
    return row, res


def _auto_threads(make: Callable | None = None) -> int:
    """What trainer.threads=0 picks in a single run for the model ``make`` builds (nnexp/threads.py)."""
    from nnexp.context import cores
    from nnexp.threads import auto_threads

    if make is None:
        return cores()
    model, _, data = make()
    return auto_threads(model, data.train.x[:1], 32, cores())[0]


def b2_overhead(quick: bool, repeats: int, root: Path) -> list[dict]:
    """Three times: doing what the hand loop does (no checkpoints); nnexp's defaults (a checkpoint held in
    memory after each epoch, written at most every ``trainer.checkpoint_every_s`` = 5 s and at the end: what
    exact resume needs); and a fsynced checkpoint written after every epoch (``checkpoint_every_s=0``)."""
    epochs = 2 if quick else 30
    what = f"MLP 512x512 on digits (1,078 train), {epochs} epochs, early stopping, TensorBoard"
    same, _ = _vs_hand("B2", f"{what}; `trainer.checkpoints=false`: the hand loop's work",
                       [*_digits_overrides(epochs), "trainer.checkpoints=false"], _make_mlp_on_digits, epochs, 20,
                       1.10, repeats, root / "same")
    default, _ = _vs_hand("B2", f"{what}; defaults: checkpoints, last.pt at most every 5 s and at the end",
                          _digits_overrides(epochs), _make_mlp_on_digits, epochs, 20, 1.10, repeats,
                          root / "default")
    every, res = _vs_hand("B2", f"{what}; `trainer.checkpoint_every_s=0`: a checkpoint written every epoch",
                          [*_digits_overrides(epochs), "trainer.checkpoint_every_s=0"], _make_mlp_on_digits, epochs,
                          20, 1.10, repeats, root / "every")
    every["target"], every["met"] = "reported", None
    per_epoch = (res["nnexp"]["median"] - same["value"]) / epochs * 1000
    every["note"] += (f"; each checkpoint (model + Adam state, 3.6 MB, written and fsynced) costs about "
                      f"{per_epoch:.0f} ms against epochs of {same['value'] / epochs * 1000:.0f} ms")
    return [same, default, every]


def b3_compute(quick: bool, repeats: int, root: Path) -> list[dict]:
    n = 600 if quick else 60000
    overrides = ["model=lenet5", "dataset=random_images", f"dataset.train_size={n}",
                 f"dataset.val_size={max(1, n // 6)}", "trainer.epochs=1"]
    row, _ = _vs_hand("B3", f"LeNet-5 on {n:,} MNIST-shaped random images, 1 epoch", overrides,
                      _make_lenet5(n), 1, 20, 1.03, repeats, root)
    return [row]


def b4_logging(quick: bool, repeats: int, root: Path) -> list[dict]:
    epochs = 2 if quick else 40
    base = [*_digits_overrides(epochs), "trainer.checkpoints=false"]
    quiet = ["trainer.pictures_every=0", "trainer.histograms_every=0", "trainer.confusion_matrix=false"]
    sides = {
        "off": nnexp_side([*base, "trainer.tensorboard=false", *quiet], root / "off"),
        "scalars": nnexp_side([*base, *quiet], root / "scalars"),
        "default": nnexp_side(base, root / "default"),
        "per-step": nnexp_side([*base, "trainer.log_every_n_steps=1"], root / "step"),
    }
    res = alternate(sides, repeats)
    off = res["off"]["median"]
    what = f"MLP on digits, {epochs} epochs (pictures every 20), checkpoints off"
    rows = []
    for name, label, target in (("scalars", "scalars only (epoch)", None),
                                ("default", "default: scalars + pictures, histograms, confusion matrix", 1.05),
                                ("per-step", "default + train/loss_step every step", None)):
        ratio = res[name]["median"] / off
        rows.append(_row("B4", f"{label}; {what}", res[name]["median"], off, ratio,
                         f"<= {target:.2f}" if target else "reported", ratio <= target if target else None,
                         "reference: trainer.tensorboard=false"))
    return rows


def b5_sweep(quick: bool, repeats: int, root: Path) -> list[dict]:
    """What each more job of a multirun costs beyond its own training: sweeps of ``few`` and ``many`` jobs
    (alternating), each process's wall time less its jobs' own ``wall_seconds``; the difference over the
    extra jobs is the per-job overhead, the process start-up (paid once by any command) cancelling out."""
    few, many = (1, 2) if quick else (2, 20)
    rounds: dict[int, list[float]] = {few: [], many: []}
    for r in range(max(1, repeats // 2)):
        for jobs in (few, many):
            sweep = root / f"sweep{jobs}_{r}"
            seconds = _process([sys.executable, "-m", "nnexp", "train", "-m", f"trainer.seed=range(0,{jobs})",
                                "dataset=xor", "trainer.epochs=1", "trainer.progress=none",
                                f"hydra.sweep.dir={sweep}"], root)
            own = [json.loads(p.read_text())["wall_seconds"] for p in sweep.glob("*/summary.json")]
            if len(own) != jobs:
                raise RuntimeError(f"the sweep wrote {len(own)} summaries, not {jobs}")
            rounds[jobs].append(seconds - sum(own))
    outside = {jobs: statistics.median(v) for jobs, v in rounds.items()}
    overhead = (outside[many] - outside[few]) / (many - few)
    fixed = outside[few] - few * overhead
    return [_row("B5", f"multirun of a 1-epoch xor run, basic launcher: each more job's overhead ({few} vs {many} "
                 "jobs)", overhead, None, None, "<= 0.30 s/job", overhead <= 0.30,
                 f"beyond each job's own wall_seconds: Hydra composing its config (once: nnexp's sweeper hands "
                 f"the launcher the config its check composed), the run folder, data, model and optimizer, "
                 f"TensorBoard writer, summary; the process start-up, paid once, is {fixed:.2f} s", value_unit="s/job")]


THREAD_CASES = {  # model: overrides of a short run
    "MLP": ["dataset.train_fraction=1.0"],
    "LeNet-5": ["model=lenet5", "dataset.train_fraction=0.5"],
    "LSTM": ["model=lstm", "dataset=adding", "dataset.n_samples=2000"],
    "Transformer": ["model=transformer", "dataset=adding", "dataset.n_samples=2000"],
    # large layers (260M multiply-adds per layer and step): the case where auto takes every core
    "ResNet-20, CIFAR-shaped, batch 128": ["model=resnet", "dataset=random_images", "dataset.shape=[3,32,32]",
                                           "dataset.train_size=512", "dataset.val_size=128", "trainer.batch_size=128"],
}


def b6_threads(quick: bool, repeats: int, root: Path) -> list[dict]:
    """Threads of one run, then sweeps: joblib's parallel processes against the basic launcher's one at a time."""
    epochs = 1 if quick else 5
    rows = [*_threads_rows(quick, repeats, root, epochs), *_sweep_rows(quick, repeats)]
    return rows


def _sweep_rows(quick: bool, repeats: int) -> list[dict]:
    from sweep_launchers import SWEEPS, measure

    rows = []
    # the 18-job preset takes minutes a round: fewer rounds of it (said in the row)
    for name, target, rounds in (("lenet5", 1.0, repeats), ("mitigations", 0.8, max(1, repeats // 3))):
        if quick and name == "mitigations":
            continue
        times = measure(name, 1 if quick else rounds, quick)
        basic, joblib = (statistics.median(v) for v in times.values())  # LAUNCHERS' order
        jobs = "four-job" if name == "lenet5" else "18-job"
        rows.append(_row("B6", f"{jobs} sweep `nnexp train {' '.join(SWEEPS[name])}`: hydra/launcher=joblib",
                         joblib, basic, joblib / basic, f"<= {target:.2f}", joblib / basic <= target,
                         f"reference: the basic launcher (one job at a time); the whole process, joblib's worker "
                         f"start-up included; {len(next(iter(times.values())))} alternating rounds"))
    return rows


def _threads_rows(quick: bool, repeats: int, root: Path, epochs: int) -> list[dict]:
    """trainer.threads=0 against 1 and 2 threads, each run a `nnexp train` process of its own, as users run it
    (nnexp's OpenMP default applies: it is read when torch loads); the median epoch from the second on."""
    rows = []
    for name, overrides in list(THREAD_CASES.items())[:1 if quick else None]:
        base = [*overrides, f"trainer.epochs={epochs}", "trainer.checkpoints=false", "trainer.tensorboard=false"]
        folder = re.sub(r"[^A-Za-z0-9]+", "_", name)  # no commas: Hydra would read hydra.run.dir as a list
        sides = {str(n): _epoch_side([*base, f"trainer.threads={n}"], root / f"{folder}{n}") for n in (0, 1, 2)}
        res = alternate(sides, repeats)
        best = min(("1", "2"), key=lambda n: res[n]["median"])
        ratio = res["0"]["median"] / res[best]["median"]
        auto = res["0"]["last"]["threads"]
        rows.append(_row("B6", f"{name}, {epochs} epochs: threads=0 (auto: {auto})", res["0"]["median"],
                         res[best]["median"], ratio, "<= 1.10", ratio <= 1.10,
                         f"s/epoch, each run its own process; 1 thread {res['1']['median']:.3f} s, 2 threads "
                         f"{res['2']['median']:.3f} s; best {best}", value_unit="s/epoch"))
    return rows


def _epoch_side(overrides: list[str], root: Path) -> Callable[[], tuple[float, dict]]:
    """``nnexp train`` in a child process: (its median epoch, the threads its train.log says it used)."""
    calls = iter(range(10**6))
    root.mkdir(parents=True, exist_ok=True)

    def go() -> tuple[float, dict]:
        run_dir = root / f"run{next(calls)}"
        rows, _ = busy_machine.run_nnexp(overrides, run_dir)
        found = re.search(r"\| (\d+) torch threads?", (run_dir / "train.log").read_text())
        return busy_machine.epoch_median([r["seconds"] for r in rows]), {"threads": found.group(1) if found else "?"}

    return go


def b7_lightning(quick: bool, repeats: int, root: Path) -> list[dict]:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return [_row("B7", "PyTorch Lightning", None, None, None, "reported", None,
                     "not installed (`pip install lightning` to include it)")]
    from lightning_side import train as lightning_train

    rows = []
    epochs = 2 if quick else 30
    n = 600 if quick else 60000
    for what, make, ep in ((f"B2 setup with Lightning ({epochs} epochs)", _make_mlp_on_digits, epochs),
                           (f"B3 setup with Lightning ({n:,} images, 1 epoch)", _make_lenet5(n), 1)):
        sides = {"lightning": _lightning_side(lightning_train, make, ep, root),
                 "hand": hand_side(make, epochs=ep, batch_size=32, seed=0, patience=20, root=root)}
        torch.set_num_threads(_auto_threads(make))
        res = alternate(sides, repeats)
        ratio = res["lightning"]["median"] / res["hand"]["median"]
        rows.append(_row("B7", what, res["lightning"]["median"], res["hand"]["median"], ratio, "reported", None,
                         f"Lightning {lightning.__version__}, defaults (its DataLoader, checkpointing, "
                         "progress bar off)"))
    return rows


def _lightning_side(train: Callable, make: Callable[[], tuple], epochs: int, root: Path) -> Callable:
    """Timed Lightning runs (benchmarks/lightning_side.py) with the hand loop's batch size and patience."""
    return timed(lambda call: train(make, epochs=epochs, batch_size=32, seed=0, patience=20,
                                    root_dir=root / f"lightning{call}"))


def b8_busy_machine(quick: bool, repeats: int, root: Path) -> list[dict]:
    """Seconds per epoch alone and beside a competing process (benchmarks/busy_machine.py)."""
    return busy_machine.case(quick, repeats, root, _row, compose)


def b9_beside_tensorboard(quick: bool, repeats: int, root: Path) -> list[dict]:
    """A run alone and while TensorBoard serves its folder (benchmarks/beside_tensorboard.py)."""
    return beside_tensorboard.case(quick, repeats, root, _row)


def r1_agents(quick: bool, repeats: int, root: Path) -> list[dict]:
    """nnexp's DQN loop against a hand-written one, and every algorithm's speed (benchmarks/rl_loop.py)."""
    return rl_loop.case(quick, repeats, root, _row, compose)


def t1_vs_sklearn(quick: bool, repeats: int, root: Path) -> list[dict]:
    """Time to scikit-learn's MLPClassifier accuracy on digits (benchmarks/vs_sklearn.py)."""
    return vs_sklearn.case(quick, repeats, root, _row, compose)


CASES = {"B1": b1_startup, "B2": b2_overhead, "B3": b3_compute, "B4": b4_logging, "B5": b5_sweep,
         "B6": b6_threads, "B7": b7_lightning, "B8": b8_busy_machine, "B9": b9_beside_tensorboard,
         "R1": r1_agents, "T1": t1_vs_sklearn}


# ---------------------------------------------------------------------------------------------
# the table


def _row(case: str, what: str, value: float | None, reference: float | None, ratio: float | None, target: str,
         met: bool | None, note: str, ratio_is: str = "ratio", value_unit: str = "s") -> dict:
    return {"id": case, "what": what, "value": value, "reference": reference, "ratio": ratio,
            "ratio_is": ratio_is, "target": target, "met": met, "note": note, "unit": value_unit}


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(rows: list[dict]) -> str:
    lines = ["| id | what | nnexp / measured | reference | ratio | target | met | note |",
             "|---|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        ratio = _num(r["ratio"]) + (" s" if r["ratio_is"] != "ratio" and r["ratio"] is not None else "")
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        value = _num(r["value"]) + (f" {r['unit']}" if r["value"] is not None else "")
        lines.append(f"| {r['id']} | {r['what']} | {value} | {_num(r['reference'])} | {ratio} | {r['target']} "
                     f"| {met} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per case after the warm-up (median)")
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated case ids, e.g. B2,B3")
    parser.add_argument("--quick", action="store_true", help="tiny cases, one round: checks the scripts, writes nothing")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go (default %(default)s)")
    args = parser.parse_args(argv)
    chosen = [c.strip().upper() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        parser.error(f"--only: unknown case {', '.join(unknown)}; allowed: {', '.join(CASES)}")
    repeats = 1 if args.quick else args.repeats
    rows = []
    with tempfile.TemporaryDirectory(prefix="nnexp-bench-") as tmp:
        for case in chosen:
            start = time.perf_counter()
            (Path(tmp) / case).mkdir()
            rows += CASES[case](args.quick, repeats, Path(tmp) / case)
            print(f"{case} done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    text = table(rows)
    missed = [r for r in rows if r["met"] is False]
    if missed:
        text += "\n\nTargets not met:\n\n" + "\n".join(f"- {r['id']}, {r['what']}: {r['note']}." for r in missed)
    print(text)
    agree = all("NOT" not in r["note"] for r in rows)
    if not args.quick:
        command = " ".join(["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
        args.out.write_text(
            f"# nnexp against a hand-written loop\n\n`{command}`, {date.today()}, medians of {repeats} rounds "
            f"after a warm-up.\n\nMachine: {machine()}\n\n{text}\n")
        print(f"\nwritten to {args.out}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
