"""T1 against scikit-learn: how long nnexp trains to reach MLPClassifier's accuracy on digits.

Someone who wants a digit classifier fast may fit scikit-learn's ``MLPClassifier`` instead.
Both sides get the same data: all 1,797 digits cut 80/20 into train and validation by
nnexp's own dataset builder (``dataset=digits dataset.train_fraction=1.0
dataset.test_fraction=0``, keys of conf/dataset/digits.yaml; pixels scaled to [0, 1]),
flattened to 64 features for scikit-learn. The peer is ``MLPClassifier(hidden_layer_sizes=
(100,), random_state=seed)`` with every other default (Adam, lr 1e-3, batches of 200, up to
200 iterations, L2 alpha 1e-4), fitted in this process: its fit seconds and validation
accuracy. nnexp trains ``model.hidden=[100] regularizer=none`` with the seed (its defaults
otherwise: Adam, lr 1e-3, batches of 32) as a child process (benchmarks/busy_machine.py);
its figure is the sum of metrics.csv's ``seconds`` (training + validation passes) up to
and including the first epoch whose val/acc reaches the peer's. Neither side's start-up
(imports, process) is counted. The run is stopped once it has reached the peer.

The peer's fit is also timed with numpy's BLAS limited to 1 thread (in the note): OpenBLAS
spins its threads like OpenMP does, and beside another busy process the default fit was
found 6x slower (17 s against 2.5 s), which would flatter nnexp.

Two nnexp arms: its defaults (batches of 32, lr 1e-3), and ``experiment=digits_fast`` (the
same split and model with scikit-learn's batch of 200 and Adam at lr 0.01), the preset made
because the defaults do not reach the peer in less than its fit time.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from busy_machine import run_nnexp

SEEDS = (0, 1, 2)
SPLIT = ["dataset=digits", "dataset.train_fraction=1.0", "dataset.test_fraction=0"]
ARMS = {  # what nnexp trains: its defaults, and the preset that is fast on this task
    "`model.hidden=[100] regularizer=none`": [*SPLIT, "model.hidden=[100]", "regularizer=none"],
    "`experiment=digits_fast`": ["experiment=digits_fast"],
}
EPOCHS, QUICK_EPOCHS = 200, 30  # the most nnexp gets to reach the peer


def split(compose: Callable) -> tuple:
    """(x_train, y_train, x_val, y_val) as numpy arrays, features flattened: nnexp's split of SPLIT."""
    from nnexp.build import component

    data = component("dataset", compose(SPLIT).dataset)

    def flat(part) -> tuple:  # noqa: ANN001 - nnexp.data.Split
        return part.x.reshape(len(part.x), -1).numpy(), part.y.numpy()

    return (*flat(data.train), *flat(data.val))


def peer_fit(data: tuple, seed: int, blas_threads: int | None = None) -> tuple[float, float]:
    """Fit seconds and validation accuracy of scikit-learn's MLPClassifier with its defaults; ``blas_threads``:
    numpy's BLAS limited to that many threads (default: its own choice, every core)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    x, y, x_val, y_val = data
    clf = MLPClassifier(hidden_layer_sizes=(100,), random_state=seed)
    with warnings.catch_warnings(), threadpool_limits(limits=blas_threads, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)  # 200 iterations may end before its tolerance
        start = time.perf_counter()
        clf.fit(x, y)
        seconds = time.perf_counter() - start
    return seconds, float(clf.score(x_val, y_val))


def reached(rows: list[dict], target: float) -> tuple[float, int] | None:
    """(training seconds, epoch) where val/acc first reaches ``target``; None if it has not."""
    total = 0.0
    for r in rows:
        total += r["seconds"]
        if r["val/acc"] is not None and r["val/acc"] >= target:
            return total, int(r["epoch"])
    return None


def nnexp_reach(arm: list[str], seed: int, target: float, epochs: int,
                run_dir: Path) -> tuple[tuple[float, int] | None, float]:
    """nnexp's (seconds, epoch) to reach ``target``, or None; and the best val/acc it logged."""
    rows, _ = run_nnexp([*arm, f"trainer.seed={seed}", f"trainer.epochs={epochs}"], run_dir,
                        lambda elapsed, read: reached(read(), target) is not None)
    return reached(rows, target), max((r["val/acc"] or 0.0 for r in rows), default=0.0)


def case(quick: bool, repeats: int, root: Path, row: Callable, compose: Callable) -> list[dict]:
    """One row per seed and nnexp arm: nnexp's seconds to the peer's accuracy against the peer's fit seconds."""
    data = split(compose)
    epochs = QUICK_EPOCHS if quick else EPOCHS
    rows = []
    for seed in SEEDS[:1 if quick else None]:
        fits, fits1, accs = [], [], []
        reach: dict[str, list] = {name: [] for name in ARMS}
        best = dict.fromkeys(ARMS, 0.0)
        for r in range(repeats):
            sides = ["peer", *ARMS]
            for side in (sides if r % 2 == 0 else sides[::-1]):
                if side == "peer":
                    seconds, acc = peer_fit(data, seed)
                    fits.append(seconds)
                    accs.append(acc)
                    fits1.append(peer_fit(data, seed, blas_threads=1)[0])
                    continue
                target = accs[-1] if accs else peer_fit(data, seed)[1]  # the accuracy is the same every fit
                got, top = nnexp_reach(ARMS[side], seed, target, epochs, root / f"seed{seed}_r{r}_{len(reach[side])}"
                                       f"_{list(ARMS).index(side)}")
                reach[side].append(got)
                best[side] = max(best[side], top)
        fit, fit1, acc = statistics.median(fits), statistics.median(fits1), accs[-1]
        peer = (f"reference: MLPClassifier fit seconds (in process, its defaults; with numpy's BLAS on 1 thread "
                f"{fit1:.2f} s)")
        for name, got in reach.items():
            what = (f"digits {len(data[1]):,} train / {len(data[3])} val, seed {seed}: nnexp {name} seconds to "
                    f"reach MLPClassifier(100)'s val acc {acc:.4f}")
            rows.append(_row_of(row, what, got, fit, fit1, peer, epochs, best[name]))
    return rows


def _row_of(row: Callable, what: str, got: list, fit: float, fit1: float, peer: str, epochs: int,
            best: float) -> dict:
    if any(g is None for g in got):
        return row("T1", what, None, fit, None, "< 1.00", False,
                   f"{peer}; nnexp never reached it within {epochs} epochs in {sum(g is None for g in got)} of "
                   f"{len(got)} runs (best val/acc {best:.4f})")
    seconds = statistics.median(g[0] for g in got)
    epochs_at = sorted({g[1] for g in got})
    return row("T1", what, seconds, fit, seconds / fit, "< 1.00", seconds < fit,
               f"{peer}; nnexp reached it at epoch {'/'.join(map(str, epochs_at))} ({seconds / fit1:.2f}x the "
               f"1-thread fit); training + validation seconds, start-up not counted on either side")
