"""Re-make the README's pictures from real runs:
python docs/make_figures.py [moons] [attention] [report] [resnet_depth] [lstm_vs_rnn] [dqn_cartpole] [pg_cartpole]
python docs/make_figures.py dqn_cartpole|pg_cartpole --from <sweep dir>   (the picture of a sweep already run)

(All seven: about 14 minutes on 2 CPU cores.)

- docs/tensorboard_moons.png: the IMAGES tab of `nnexp train dataset=moons model.hidden=[16,16]`,
  the decision boundary at three steps of its slider, and the validation confusion matrix.
- docs/tensorboard_attention.png: the attention maps of `nnexp train model=transformer dataset=adding`.
- docs/report.png: `nnexp report` of `nnexp train experiment=mitigations`.
- docs/resnet_depth.png: `nnexp report` of `nnexp train experiment=resnet_depth`.
- docs/lstm_vs_rnn.png: the IMAGES tab's pictures/step_gradients of the RNN and the LSTM at T=50 (seed 0,
  last epoch) of `nnexp train experiment=lstm_vs_rnn`.
- docs/dqn_cartpole.png: the SCALARS tab's custom chart "return" of `nnexp train experiment=dqn_cartpole`, one
  panel per seed: train/episodic_return per episode and eval/return per round against environment steps.
- docs/pg_cartpole.png: of `nnexp train experiment=pg_cartpole`, eval/return per round of each arm and seed,
  and the REINFORCE arms' train/grad_var (with the baseline's train/grad_var_no_baseline on the same episodes).

Each picture is read back from the run's TensorBoard event file (or the report's PNG), exactly
what a user sees.
"""

from __future__ import annotations

import io
import json
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
    args = sys.argv[1:]
    if "--from" in args:  # a sweep already run: only its picture
        sweep = Path(args[args.index("--from") + 1])
        pg_figure(sweep) if "pg_cartpole" in args else dqn_returns(sweep)
        return 0
    which = set(args) or {"moons", "attention", "report", "resnet_depth", "lstm_vs_rnn", "dqn_cartpole",
                          "pg_cartpole"}
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
        if "dqn_cartpole" in which:
            dqn_returns(sweep_of(root / "dqn_cartpole", "dqn_cartpole"))
        if "pg_cartpole" in which:
            pg_figure(sweep_of(root / "pg_cartpole", "pg_cartpole"))
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


def scalars(run_dir: Path, tag: str) -> tuple[list[int], list[float]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    events = acc.Scalars(tag) if tag in acc.Tags()["scalars"] else []
    return [e.step for e in events], [e.value for e in events]


def dqn_returns(sweep: Path) -> None:
    """Per seed, what TensorBoard's custom chart "return" overlays: each training episode's return (exploring)
    and each round's greedy evaluation, against environment steps, with the threshold."""
    jobs = sorted((d for d in sweep.iterdir() if (d / "summary.json").is_file()), key=lambda d: d.name)
    fig = Figure(figsize=(13, 3.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(jobs), squeeze=False, sharey=True)[0]
    for ax, job in zip(axes, jobs, strict=True):
        seed = job.name.rsplit("trainer.seed=", 1)[-1]
        ax.plot(*scalars(job, "train/episodic_return"), ".", markersize=2, alpha=0.5, color="C0",
                label="train/episodic_return (each episode, exploring)")
        ax.plot(*scalars(job, "eval/return"), "o-", markersize=3, color="C1", label="eval/return (greedy, 10 episodes)")
        ax.axhline(475, color="grey", linestyle=":", linewidth=1.2, label="threshold 475")
        ax.set(title=f"DQN on CartPole-v1, seed {seed}", xlabel="environment steps", ylabel="return")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.savefig(DOCS / "dqn_cartpole.png")
    print(f"wrote {DOCS / 'dqn_cartpole.png'}")


def pg_figure(sweep: Path) -> None:
    """Left: eval/return of each arm and seed against environment steps. Right: the variance of the one-episode
    gradient estimates per round, REINFORCE without a baseline, with it, and with it on the same episodes
    weighted as if it were not there (train/grad_var_no_baseline)."""
    jobs = sorted((d for d in sweep.iterdir() if (d / "summary.json").is_file()), key=lambda d: d.name)
    arms = {"reinforce": ("C0", "REINFORCE"), "reinforce_baseline": ("C2", "REINFORCE with baseline"),
            "ppo": ("C3", "PPO")}
    fig = Figure(figsize=(13, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    returns, variance = fig.subplots(1, 2)
    labelled: set[str] = set()
    for job in jobs:
        arm = json.loads((job / "summary.json").read_text())["choices"]["experiment/pg"]
        color, name = arms[arm]
        first = name not in labelled
        labelled.add(name)
        returns.plot(*scalars(job, "eval/return"), "o-", markersize=2, color=color, alpha=0.8,
                     label=name if first else None)
        if arm == "reinforce":
            variance.plot(*scalars(job, "train/grad_var"), "o-", markersize=2, color=color,
                          label="train/grad_var, no baseline" if first else None)
        elif arm == "reinforce_baseline":
            variance.plot(*scalars(job, "train/grad_var"), "o-", markersize=2, color=color,
                          label="train/grad_var, with baseline" if first else None)
            variance.plot(*scalars(job, "train/grad_var_no_baseline"), "x--", markersize=3, color=color, alpha=0.6,
                          label="train/grad_var_no_baseline (same episodes)" if first else None)
    returns.axhline(475, color="grey", linestyle=":", linewidth=1.2, label="threshold 475")
    returns.set(title="CartPole-v1, seeds 0, 1, 2: eval/return (deterministic, 10 episodes)",
                xlabel="environment steps", ylabel="return")
    variance.set(title="variance of the one-episode policy-gradient estimates", xlabel="environment steps",
                 ylabel="trace of the covariance", yscale="log")
    for ax in (returns, variance):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is returns else "upper left")
    fig.savefig(DOCS / "pg_cartpole.png")
    print(f"wrote {DOCS / 'pg_cartpole.png'}")


if __name__ == "__main__":
    sys.exit(main())
