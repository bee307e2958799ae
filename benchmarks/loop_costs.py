"""Two costs inside the training loop, each measured on/off in one process, same seed.

    python benchmarks/loop_costs.py            # full measurement, writes benchmarks/RESULTS_loop.md
    python benchmarks/loop_costs.py --quick    # seconds: checks the script still works, measures nothing

1. grad-norm tracking: every step adds the L2 norms of the first and last weight
   gradients (``grad_norm/first_layer``, ``grad_norm/last_layer``). "off" replaces
   ``nnexp.loop.end_weights`` with a function that finds no weights, so the loop
   skips the two norms and nothing else changes.
2. flushing denormal floats to zero (``torch.set_flush_denormal(True)``, which
   every run sets): weight decay drives the weights of digits' always-blank
   border pixels toward 0 through denormal numbers, which x86 CPUs handle in
   slow microcode. Measured on the L2 arm of ``experiment=mitigations``.

Runs of a pair alternate on/off so that drift on a shared machine hits both alike;
the table reports medians and the ratio on/off.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pictures_overhead import machine  # noqa: E402

from nnexp import loop  # noqa: E402
from nnexp.data.digits import load  # noqa: E402
from nnexp.early_stopping import EarlyStopping  # noqa: E402
from nnexp.losses import make_objective  # noqa: E402
from nnexp.models.mlp import MLP  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS_loop.md"


def train(epochs: int, train_fraction: float, weight_decay: float) -> tuple[float, list[dict]]:
    """Seconds of fit() for the default 512x512 MLP with Adam on digits, and its history."""
    torch.manual_seed(0)
    data = load(train_fraction=train_fraction)
    objective = make_objective("auto", data.task, data.num_classes, None)
    model = MLP(data.input_shape, objective.num_outputs, hidden=[512, 512])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)
    settings = loop.FitSettings(epochs=epochs, batch_size=32, seed=0)
    start = time.perf_counter()
    result = loop.fit(model, data, objective, optimizer, None, settings, EarlyStopping(enabled=False))
    return time.perf_counter() - start, result.history


def grad_norms(on: bool, epochs: int) -> tuple[float, list[dict]]:
    real = loop.end_weights
    if not on:
        loop.end_weights = lambda model: None
    try:
        torch.set_flush_denormal(True)
        return train(epochs, train_fraction=0.1, weight_decay=0.0)
    finally:
        loop.end_weights = real


def flush_denormal(on: bool, epochs: int) -> tuple[float, list[dict]]:
    torch.set_flush_denormal(on)
    try:
        return train(epochs, train_fraction=0.3, weight_decay=1e-3)
    finally:
        torch.set_flush_denormal(True)


CASES = {
    "grad-norm tracking (default run: 10% of digits, 512x512 MLP, Adam)": (grad_norms, 150),
    "flush denormals (experiment=mitigations, arm l2: 30% of digits, weight decay 1e-3)": (flush_denormal, 200),
}


def measure(repeats: int, quick: bool) -> list[dict]:
    rows = []
    for name, (case, epochs) in CASES.items():
        epochs = 2 if quick else epochs
        times: dict[bool, list[float]] = {True: [], False: []}
        finals: dict[bool, dict] = {}
        for r in range(repeats):
            for on in ((True, False) if r % 2 == 0 else (False, True)):
                seconds, history = case(on, epochs)
                times[on].append(seconds)
                finals[on] = history[-1]
        on, off = statistics.median(times[True]), statistics.median(times[False])
        same = all(finals[True][k] == finals[False][k] for k in ("train/loss", "val/loss", "train/acc", "val/acc"))
        close = all(abs(finals[True][k] - finals[False][k]) <= 1e-3 * max(1.0, abs(finals[False][k]))
                    for k in ("train/loss", "val/loss"))
        rows.append({"case": name, "epochs": epochs, "on": on, "off": off, "ratio": on / off,
                     "result": "identical" if same else "within 0.1%" if close else "differs"})
    return rows


def table(rows: list[dict], repeats: int) -> str:
    lines = ["| what | epochs | on (s) | off (s) | ratio on/off | final metrics on vs off |",
             "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['epochs']} | {r['on']:.2f} | {r['off']:.2f} | {r['ratio']:.3f} "
                     f"| {r['result']} |")
    lines.append("")
    lines.append(f"Medians of {repeats} alternating runs each, fit() only (no start-up, no logging), CPU. "
                 "On a shared 2-core machine ratios within about ±5% of 1 are run-to-run noise.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per setting (median)")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat: a smoke test, not a measurement")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    rows = measure(repeats, args.quick)
    text = table(rows, repeats)
    print(text)
    if not args.quick:
        command = " ".join(["python benchmarks/loop_costs.py", *(argv if argv is not None else sys.argv[1:])])
        RESULTS.write_text(f"# Costs inside the training loop\n\n`{command}`, {date.today()}\n\n"
                           f"Machine: {machine()}\n\n{text}\n")
        print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
