"""What do the TensorBoard pictures cost? Default settings vs scalars only, same seed.

    python benchmarks/pictures_overhead.py              # full measurement, writes benchmarks/RESULTS_pictures.md
    python benchmarks/pictures_overhead.py --quick      # seconds: checks the script still works, measures nothing

Every run is a fresh ``python -m nnexp train`` process, as a user starts it, so
one-off costs of the pictures (imports, a font, kernels for a new batch shape)
count. Two ratios: the whole process (what a user waits for, including the
start-up that is the same for both) and the training time alone, ``wall_seconds``
of summary.json (the loop plus the end-of-run pictures; the stricter number).
"off" is ``trainer.pictures_every=0 trainer.histograms_every=0 trainer.confusion_matrix=false``.
Runs alternate on/off so that drift on a shared machine hits both alike; the
table reports medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

CASES = {"nnexp train (default: digits, mlp)": [], "nnexp train dataset=moons": ["dataset=moons"]}
OFF = ["trainer.pictures_every=0", "trainer.histograms_every=0", "trainer.confusion_matrix=false"]
RESULTS = Path(__file__).resolve().parent / "RESULTS_pictures.md"


def run_once(args: list[str], run_dir: Path) -> tuple[float, dict]:
    """Seconds for one ``python -m nnexp train`` process, and its summary.json."""
    cmd = [sys.executable, "-m", "nnexp", "train", "trainer.progress=none", *args, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[2:])} exited {proc.returncode}: {proc.stderr.strip()}")
    return seconds, json.loads((run_dir / "summary.json").read_text())


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cores} cores (nproc), {cpu}{gpu}, torch {torch.__version__}, Python {platform.python_version()}, "
            f"{platform.system()}")


def measure(repeats: int, extra: list[str], root: Path) -> list[dict]:
    rows = []
    for name, case in CASES.items():
        times: dict[str, list[float]] = {"on": [], "off": []}
        walls: dict[str, list[float]] = {"on": [], "off": []}
        summaries: dict[str, dict] = {}
        modes = {"on": [*case, *extra], "off": [*case, *extra, *OFF]}
        for r in range(repeats):
            for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
                seconds, summary = run_once(modes[mode], root / f"{len(rows)}_{mode}_{r}")
                times[mode].append(seconds)
                walls[mode].append(summary["wall_seconds"])
                summaries[mode] = summary
        on, off = statistics.median(times["on"]), statistics.median(times["off"])
        rows.append({
            "run": name, "device": summaries["on"]["device"], "epochs": summaries["on"]["epochs_run"], "off": off, "on": on, "ratio": on / off,
            "wall_ratio": statistics.median(walls["on"]) / statistics.median(walls["off"]),
            # pictures only read the model: the same seed must give the same training
            "same": summaries["on"]["final"] == summaries["off"]["final"],
        })
    return rows


def table(rows: list[dict], repeats: int) -> str:
    lines = ["| run | device | epochs | process, scalars only (s) | process, pictures at defaults (s) | process ratio "
             "| training time ratio | same metrics |",
             "|---|---|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        lines.append(f"| `{r['run']}` | {r['device']} | {r['epochs']} | {r['off']:.2f} | {r['on']:.2f} | {r['ratio']:.3f} "
                     f"| {r['wall_ratio']:.3f} | {'yes' if r['same'] else 'NO'} |")
    lines.append("")
    lines.append(f"Medians of {repeats} alternating runs each. *process ratio*: wall time of the whole "
                 "`python -m nnexp train` process; *training time ratio*: `wall_seconds` of summary.json "
                 "(training loop and end-of-run pictures, without start-up). *same metrics*: the final "
                 "train/val loss and accuracy are identical with and without pictures.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="more overrides for every run, e.g. trainer.device=cpu")
    parser.add_argument("--repeats", type=int, default=7, help="runs per setting (median)")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat: a smoke test, not a measurement")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"Markdown results file (default: {RESULTS.name} beside this script; none with --quick)")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    extra = [*args.overrides, *(["trainer.epochs=2"] if args.quick else [])]
    out = args.out or (None if args.quick else RESULTS)

    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(repeats, extra, Path(tmp))
    text = table(rows, repeats)
    print(text)
    if out is not None:
        command = " ".join(["python benchmarks/pictures_overhead.py", *(argv if argv is not None else sys.argv[1:])])
        out.write_text(f"# Cost of the TensorBoard pictures\n\n`{command}`, {date.today()}\n\n"
                       f"Machine: {machine()}\n\n{text}\n")
        print(f"\nwritten to {out}")
    return 0 if all(r["same"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
