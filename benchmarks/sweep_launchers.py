"""Wall time of one sweep, Hydra's basic launcher (one job after another) against joblib (parallel processes).

    python benchmarks/sweep_launchers.py            # full measurement, writes benchmarks/RESULTS_sweeps.md
    python benchmarks/sweep_launchers.py --quick    # seconds: checks the script still works, measures nothing

The sweep is the one the README shows: ``nnexp train -m optimizer=sgd,adam trainer.seed=0,1`` (four jobs of
the default demo). Each measurement is a fresh ``python -m nnexp`` process in an empty folder, so the joblib
numbers include starting its worker processes. Runs alternate basic/joblib; the table reports medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pictures_overhead import machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS_sweeps.md"
SWEEPS = {  # the README's four-job sweep of the demo, and the small LeNet-5 sweep issue 15 timed (B6 small sweep)
    "demo": ["-m", "optimizer=sgd,adam", "trainer.seed=0,1", "trainer.progress=none"],
    "lenet5": ["-m", "dataset=digits", "model=lenet5", "trainer.epochs=10", "optimizer=sgd,adam", "trainer.seed=0,1",
               "trainer.progress=none"],
    "mitigations": ["experiment=mitigations", "trainer.progress=none"],  # a sweep preset: 18 jobs
}
JOBS = {"demo": 4, "lenet5": 4, "mitigations": 18}
LAUNCHERS = {"basic (one at a time)": [], "joblib (hydra/launcher=joblib)": ["hydra/launcher=joblib"]}


def once(sweep: list[str], extra: list[str], expected: int = 4) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nnexp", "train", *sweep, *extra], cwd=tmp,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode:
            raise RuntimeError(f"{' '.join(extra)} exited {proc.returncode}: {proc.stderr[-500:]}")
        jobs = len(list(Path(tmp).glob("outputs/multirun/*/*/*/summary.json")))
        if jobs != expected:
            raise RuntimeError(f"{' '.join(extra)}: {jobs} job summaries, expected {expected}")
    return seconds


def measure(name: str, repeats: int, quick: bool = False) -> dict[str, list[float]]:
    """Seconds of each launcher running the sweep ``name`` (``repeats`` alternating rounds)."""
    extra = ["trainer.epochs=2"] if quick else []
    times: dict[str, list[float]] = {launcher: [] for launcher in LAUNCHERS}
    for r in range(repeats):
        for launcher in (list(LAUNCHERS) if r % 2 == 0 else list(reversed(LAUNCHERS))):
            times[launcher].append(once(SWEEPS[name], [*LAUNCHERS[launcher], *extra], JOBS[name]))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat: a smoke test, not a measurement")
    parser.add_argument("--sweep", choices=SWEEPS, default="demo", help="which sweep (default %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go (default %(default)s)")
    args = parser.parse_args(argv)
    sweep = SWEEPS[args.sweep]
    repeats = 1 if args.quick else args.repeats
    times = measure(args.sweep, repeats, args.quick)
    basic = statistics.median(times["basic (one at a time)"])
    lines = ["| launcher | wall time (s) | ratio to basic |", "|---|---:|---:|"]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.2f} | {median / basic:.3f} |")
    lines += ["", f"`nnexp train {' '.join(sweep)}` plus the launcher; medians of {repeats} alternating runs; "
              "the whole process, worker start-up included."]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        command = " ".join(["python benchmarks/sweep_launchers.py", *(argv if argv is not None else sys.argv[1:])])
        args.out.write_text(f"# Sweep launchers\n\n`{command}`, {date.today()}\n\nMachine: {machine()}\n\n{text}\n")
        print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
