"""Re-make the README's pictures from real runs:
python docs/make_figures.py [moons] [attention] [report] [resnet_depth] [lstm_vs_rnn]

(All five: about 7 minutes on 2 CPU cores.)

- docs/tensorboard_moons.png: the IMAGES tab of `nnexp train dataset=moons model.hidden=[16,16]`,
  the decision boundary at three steps of its slider, and the validation confusion matrix.
- docs/tensorboard_attention.png: the attention maps of `nnexp train model=transformer dataset=adding`.
- docs/report.png: `nnexp report` of `nnexp train experiment=mitigations`.
- docs/resnet_depth.png: `nnexp report` of `nnexp train experiment=resnet_depth`.
- docs/lstm_vs_rnn.png: the IMAGES tab's pictures/step_gradients of the RNN and the LSTM at T=50 (seed 0,
  last epoch) of `nnexp train experiment=lstm_vs_rnn`.

Each picture is read back from the run's TensorBoard event file (or the report's PNG), exactly
what a user sees.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

DOCS = Path(__file__).resolve().parent


def nnexp(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "nnexp", *args, "trainer.progress=none"], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


def images(run_dir: Path, tag: str) -> list[tuple[int, Image.Image]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0}).Reload()
    return [(e.step, Image.open(io.BytesIO(e.encoded_image_string)).convert("RGB")) for e in acc.Images(tag)]


def panel(pictures: list[tuple[str, Image.Image]], path: Path, width: float, stacked: bool = False) -> None:
    """Side by side, or one above the other (``stacked``), each titled."""
    w, h = pictures[0][1].size
    n = len(pictures)
    aspect = h / w * (n if stacked else 1 / n)
    fig = Figure(figsize=(width, width * aspect + 0.4 * (n if stacked else 1)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n if stacked else 1, 1 if stacked else n, squeeze=False).ravel()
    for ax, (title, image) in zip(axes, pictures, strict=True):
        ax.imshow(image)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.savefig(path)
    print(f"wrote {path}")


def main() -> int:
    which = set(sys.argv[1:]) or {"moons", "attention", "report", "resnet_depth", "lstm_vs_rnn"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "moons" in which:
            moons(root)
        if "attention" in which:
            attention(root)
        if "report" in which:
            report(root / "mitigations", "mitigations", DOCS / "report.png")
        if "resnet_depth" in which:
            report(root / "resnet_depth", "resnet_depth", DOCS / "resnet_depth.png")
        if "lstm_vs_rnn" in which:
            lstm_vs_rnn(root / "lstm_vs_rnn")
    return 0


def moons(root: Path) -> None:
    nnexp("train", "dataset=moons", "model.hidden=[16,16]", f"hydra.run.dir={root / 'moons'}", cwd=root)
    steps = images(root / "moons", "pictures/decision_boundary")
    picked = [steps[0], steps[len(steps) // 2], steps[-1]]
    (_, matrix), = images(root / "moons", "pictures/confusion_matrix")
    panel([(f"decision_boundary, epoch {s}", im) for s, im in picked] + [("confusion_matrix", matrix)],
          DOCS / "tensorboard_moons.png", width=14)


def attention(root: Path) -> None:
    nnexp("train", "model=transformer", "dataset=adding", f"hydra.run.dir={root / 'attention'}", cwd=root)
    layers = [images(root / "attention", f"pictures/attention/layer{i}")[-1] for i in range(2)]
    panel([(f"attention/layer{i}, epoch {s}", im) for i, (s, im) in enumerate(layers)],
          DOCS / "tensorboard_attention.png", width=12, stacked=True)


def sweep_of(root: Path, preset: str) -> Path:
    """The folder of a preset's sweep, run in ``root``, with its report written."""
    root.mkdir()
    nnexp("train", f"experiment={preset}", cwd=root)
    (sweep,) = (root / "outputs" / "multirun").glob("*/*")
    subprocess.run([sys.executable, "-m", "nnexp", "report", str(sweep)], check=True, stdout=subprocess.DEVNULL)
    return sweep


def report(root: Path, preset: str, path: Path) -> None:
    """The report.png of a preset's sweep, as `nnexp report` writes it."""
    shutil.copy(sweep_of(root, preset) / "report.png", path)
    print(f"wrote {path}")


def lstm_vs_rnn(root: Path) -> None:
    sweep = sweep_of(root, "lstm_vs_rnn")
    pictures = []
    for model in ("rnn", "lstm"):  # the job folders are named by their overrides
        (job,) = [d for d in sweep.iterdir() if f"model={model}" in d.name and "dataset.length=50" in d.name
                  and "trainer.seed=0" in d.name]
        step, image = images(job, "pictures/step_gradients")[-1]
        pictures.append((f"{model}, adding T=50, seed 0: pictures/step_gradients, epoch {step}", image))
    panel(pictures, DOCS / "lstm_vs_rnn.png", width=12)


if __name__ == "__main__":
    sys.exit(main())
