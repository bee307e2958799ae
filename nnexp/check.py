"""`nnexp check`: every from-scratch part in nnexp/scratch/ against torch, value by value, in float64.

Each check builds random float64 inputs from a fixed seed (its own, so checks
do not depend on each other's order), runs the scratch code and an independent
torch reference, and reports the largest absolute difference over every output
and gradient it compares. Exit code 0 only when every row passes.

The comparisons live in check_feedforward.py (backprop, SGD/Adam, perceptron) and
check_sequence.py (LSTM, plain RNN, attention); a row and how its error is measured in check_row.py.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from nnexp import check_feedforward as feedforward
from nnexp import check_sequence as sequence
from nnexp.check_row import Row

if TYPE_CHECKING:  # rich is imported when the table is printed
    from rich.table import Table

USAGE = """\
usage: nnexp check [-h]

Compare the from-scratch references in nnexp/scratch/ (the course seed's backpropagation,
LSTM and RNN cells, attention, SGD/Adam, perceptron rule) with torch on random float64 inputs
(fixed seed) and print one row per comparison: max abs error, tolerance, PASS/FAIL.
Exit code 0 if every row passes, 1 otherwise.
"""

# (the row's name should the check crash, the check), in the table's order
CHECKS: list[tuple[str, Callable[[], list[Row]]]] = [
    ("backprop", feedforward.check_backprop),
    ("ScratchMLPFunction", feedforward.check_scratch_mlp_function),
    ("SGD per sample (seed)", feedforward.check_sgd_per_sample),
    ("LSTM standard form", sequence.check_lstm_standard),
    ("LSTM seed form", sequence.check_lstm_seed),
    ("RNN (Elman) cell", sequence.check_rnn),
    ("attention", sequence.check_attention),
    ("multi-head attention", sequence.check_multi_head_attention),
    ("optimizers", feedforward.check_optimizers),
    ("perceptron", feedforward.check_perceptron),
]


def run_checks(seed: int = 0) -> list[Row]:
    """Every check, each from ``seed`` in a forked RNG (the caller's random state is left alone)."""
    import torch

    rows: list[Row] = []
    for name, check in CHECKS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                rows.extend(check())
            except Exception as exc:  # a broken or missing component is a failed row, not a crash
                rows.append(Row(name, "-", math.inf, 0.0, note=f"{type(exc).__name__}: {exc}"))
    return rows


def main(args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(USAGE)
        return 0
    if args:
        sys.stderr.write(f"nnexp check: error: unexpected arguments: {' '.join(args)}\n{USAGE}")
        return 2
    from nnexp.terminal import fits, stdout_console

    rows = run_checks()
    console = stdout_console()  # a terminal's width; piped or captured, wide: one row per line in a log
    table = _table(rows, reference_apart=True)
    if not fits(console, table):  # the reference under its component: the numbers keep their columns
        table = _table(rows, reference_apart=False)
    console.print(table)
    failed = [r for r in rows if not r.passed]
    for r in failed:
        console.print(f"FAIL {r.component}: {r.note or f'error {r.error:.3e} > tolerance {r.tolerance:.0e}'}")
    console.print(f"{len(rows) - len(failed)} of {len(rows)} checks passed" + (f", {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _table(rows: list[Row], reference_apart: bool) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="nnexp check: nnexp/scratch vs torch (float64, seed 0)", title_justify="left",
                  caption="max abs error: the largest difference from torch over every output and gradient "
                          "compared", caption_justify="left")
    first = ("component", "reference") if reference_apart else ("component (vs reference)",)
    for col in (*first, "max abs error", "tolerance", "result"):
        table.add_column(col, justify="right" if col in ("max abs error", "tolerance") else "left",
                         no_wrap=col not in first)
    for r in rows:
        result = Text("PASS", style="green") if r.passed else Text("FAIL", style="bold red")
        error = f"{r.error:.1e}" if math.isfinite(r.error) else "-"
        names = (r.component, r.reference) if reference_apart else (f"{r.component}\n  vs {r.reference}",)
        table.add_row(*names, error, f"{r.tolerance:.0e}", result)
    return table
