"""trainer.precision, trainer.channels_last and trainer.compile on ResNet-20 with CIFAR-shaped data.

    python benchmarks/speed_options.py                 # on the best device present; writes benchmarks/RESULTS_speed_options.md
    python benchmarks/speed_options.py --quick         # seconds: checks the script works, writes nothing

Each option is one ``nnexp.run.run`` in this process on ``dataset=random_images
dataset.shape=[3,32,32]`` (50,000 training images on a GPU, fewer on a CPU, where
an epoch of ResNet-20 takes minutes), batch 128, 3 epochs; the first epoch
(autotuning, compilation) is left out of the per-epoch time. Samples/s counts
training images over the epoch's wall time, validation included. Options the
device cannot run (float16 autocast needs CUDA) are listed as refused, with
nnexp's message.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pictures_overhead import machine  # noqa: E402
from run import nnexp_side  # noqa: E402

from nnexp.errors import ConfigError  # noqa: E402

RESULTS = HERE / "RESULTS_speed_options.md"
OPTIONS = {
    "float32 (default)": [],
    "bf16 autocast": ["trainer.precision=bf16"],
    "fp16 autocast + GradScaler": ["trainer.precision=16"],
    "channels_last": ["trainer.channels_last=true"],
    "bf16 + channels_last": ["trainer.precision=bf16", "trainer.channels_last=true"],
    "torch.compile": ["trainer.compile=true"],
    "torch.compile + bf16 + channels_last": ["trainer.compile=true", "trainer.precision=bf16",
                                             "trainer.channels_last=true"],
}


def measure(train_size: int, epochs: int, root: Path, compile_too: bool = True) -> list[dict]:
    base = ["model=resnet", "model.depth=20", "dataset=random_images", "dataset.shape=[3,32,32]",
            f"dataset.train_size={train_size}", f"dataset.val_size={max(1, train_size // 5)}",
            f"trainer.epochs={epochs}", "trainer.batch_size=128", "regularizer=none",
            "trainer.checkpoints=false", "trainer.tensorboard=false"]
    rows = []
    for name, extra in OPTIONS.items():
        if "trainer.compile=true" in extra and not compile_too:
            continue
        try:
            _, detail = nnexp_side([*base, *extra], root / str(len(rows)))()
        except ConfigError as exc:
            rows.append({"option": name, "refused": str(exc)})
            continue
        run_dir = detail["run_dir"]
        seconds = [float(line.split(",")[6]) for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
        later = seconds[1:] or seconds  # the first epoch carries autotuning and compilation
        epoch_s = statistics.median(later)
        rows.append({"option": name, "first": seconds[0], "epoch": epoch_s, "samples_per_s": train_size / epoch_s,
                     "val_loss": detail["summary"]["final"]["val/loss"]})
    return rows


def table(rows: list[dict]) -> str:
    ref = next((r for r in rows if "epoch" in r), None)
    lines = ["| option | first epoch (s) | later epochs (s) | samples/s | speed-up | final val/loss |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['option']} | refused: {r['refused']} | | | | |")
            continue
        lines.append(f"| {r['option']} | {r['first']:.2f} | {r['epoch']:.2f} | {r['samples_per_s']:,.0f} "
                     f"| {ref['epoch'] / r['epoch']:.2f}x | {r['val_loss']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=None, help="training images (default: 50,000 on a GPU, "
                        "2,000 on a CPU)")
    parser.add_argument("--quick", action="store_true",
                        help="64 images, 2 epochs, no torch.compile (it takes a minute): a smoke test, writes nothing")
    args = parser.parse_args(argv)
    gpu = torch.cuda.is_available()
    train_size = 64 if args.quick else args.train_size or (50000 if gpu else 2000)
    epochs = 2 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="nnexp-speed-") as tmp:
        rows = measure(train_size, epochs, Path(tmp), compile_too=not args.quick)
    text = table(rows)
    print(text)
    if not args.quick:
        command = " ".join(["python benchmarks/speed_options.py", *(argv if argv is not None else sys.argv[1:])])
        RESULTS.write_text(
            f"# Speed options: ResNet-20 on CIFAR-shaped random images\n\n`{command}`, {date.today()}: "
            f"{train_size:,} training images, batch 128, {epochs} epochs, on "
            f"{'the GPU' if gpu else 'the CPU'}.\n\nMachine: {machine()}\n\n{text}\n")
        print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
