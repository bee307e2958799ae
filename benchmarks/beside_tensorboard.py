"""B9 beside TensorBoard: a run alone, and while TensorBoard serves its folder to a polling client.

nnexp tells users to watch their runs with ``tensorboard --logdir``; that server reloads
the event files every few seconds and answers the browser tab's requests, on the same
cores as the training. This case trains the digits MLP (the demo's model) as a child
process (benchmarks/busy_machine.py: environment without OpenMP tuning variables) alone,
and beside ``python -m tensorboard.main --logdir <the runs' folder>`` on loopback with a
client thread asking it every 2 s what a browser tab asks (the runs, the scalar tags, one
tag's scalars). TensorBoard answers before the run starts and is killed after it, whatever
happens. Two figures per side: the training seconds (the sum of metrics.csv's ``seconds``)
and the process's wall time (start-up, checkpoints and event files included).
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from busy_machine import run_nnexp, start, stop

EPOCHS, QUICK_EPOCHS = 150, 10  # about 10 s of training on 2 cores
# the demo's MLP 512x512 on all 1,078 training digits; no early stopping, so every run trains every epoch
RUN = ["dataset.train_fraction=1.0", "regularizer=none"]
POLL_EVERY = 2.0  # seconds between a client's rounds of requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def _poll(base: str, halt: threading.Event, stats: dict) -> None:
    """A browser tab: every POLL_EVERY seconds the runs, the scalar tags and one tag's scalars."""
    while True:
        stats["polls"] += 1
        try:
            _get(f"{base}/data/runs")
            tags = _get(f"{base}/data/plugin/scalars/tags")
            run = next((r for r in sorted(tags) if "train/loss" in tags[r]), None)
            if run is not None:
                query = urllib.parse.urlencode({"run": run, "tag": "train/loss"})
                _get(f"{base}/data/plugin/scalars/scalars?{query}")
                stats["answered"] += 1
        except (OSError, ValueError):  # still starting, or busy: a browser tab tries again later too
            pass
        if halt.wait(POLL_EVERY):
            return


@contextlib.contextmanager
def tensorboard(logdir: Path, log: Path) -> Iterator[dict]:
    """TensorBoard serving ``logdir`` on loopback, answering, with a polling client; both gone afterwards."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
                  "--port", str(port)], log)
    stats = {"polls": 0, "answered": 0}
    halt = threading.Event()
    client = threading.Thread(target=_poll, args=(base, halt, stats), daemon=True)
    try:
        began = time.perf_counter()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tensorboard exited {proc.returncode}: {log.read_text()[-400:]}")
            with contextlib.suppress(OSError, ValueError):
                _get(f"{base}/data/runs")
                break
            if time.perf_counter() - began > 120:
                raise RuntimeError(f"tensorboard did not answer on {base} within 120 s")
            time.sleep(0.5)
        client.start()
        yield stats
    finally:
        halt.set()
        if client.is_alive():
            client.join(timeout=10)
        stop(proc)


def one_run(overrides: list[str], run_dir: Path) -> dict:
    rows, wall = run_nnexp(overrides, run_dir)
    return {"training": sum(r["seconds"] for r in rows), "wall": wall, "epochs": len(rows)}


def case(quick: bool, repeats: int, root: Path, row: Callable) -> list[dict]:
    """Two rows: the training seconds and the process wall time, beside TensorBoard against alone."""
    epochs = QUICK_EPOCHS if quick else EPOCHS
    overrides = [*RUN, f"trainer.epochs={epochs}"]
    outputs = root / "outputs"  # TensorBoard's --logdir: every run of this case, as a user's outputs/runs
    outputs.mkdir(parents=True, exist_ok=True)
    res: dict[str, list[dict]] = {"alone": [], "beside": []}
    polls = []
    for r in range(repeats):
        for side in (("alone", "beside") if r % 2 == 0 else ("beside", "alone")):
            run_dir = outputs / f"{side}{r}"
            if side == "alone":
                res[side].append(one_run(overrides, run_dir))
                continue
            with tensorboard(outputs, root / f"tensorboard{r}.log") as stats:
                res[side].append(one_run(overrides, run_dir))
            polls.append(f"{stats['answered']}/{stats['polls']}")
    rows = []
    for key, what in (("training", "training seconds (sum of metrics.csv `seconds`)"),
                      ("wall", "process wall time (start-up, checkpoints, event files included)")):
        alone = statistics.median(x[key] for x in res["alone"])
        beside = statistics.median(x[key] for x in res["beside"])
        rows.append(row("B9", f"digits MLP 512x512, 1,078 train images, {epochs} epochs, beside TensorBoard "
                        f"serving its folder, a client polling every {POLL_EVERY:.0f} s: {what}", beside, alone,
                        beside / alone, "<= 1.30", beside / alone <= 1.30,
                        f"reference: the same run alone; client rounds answered per run: {', '.join(polls)}"))
    return rows
