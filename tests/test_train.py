"""`nnexp train` end to end: the run directory contract, every group option, sweeps."""

from __future__ import annotations

import csv
import json
import math
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, SHRINK, compose_cfg, read_summary, run_subprocess
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nnexp.config import config_dir

TAGS = ("train/loss", "val/loss", "train/acc", "val/acc")


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The default `nnexp train`, unshrunk, as a user runs it (separate process, real exit code)."""
    root = tmp_path_factory.mktemp("demo")
    run_dir = root / "run"
    proc = run_subprocess("train", f"hydra.run.dir={run_dir}", cwd=root)
    return proc, run_dir


def test_default_demo_overfits_and_stops_early(demo_run):
    proc, run_dir = demo_run
    assert proc.returncode == 0, proc.stderr
    s = read_summary(run_dir)
    assert s["status"] == "early_stopped"
    assert s["best_epoch"] < s["epochs_run"] == s["stopped_epoch"]
    assert s["restored_best"] is True
    assert s["monitor"] == "val/loss" and s["best_value"] == pytest.approx(s["best"]["val/loss"])
    # the course's picture: after the val/loss minimum, val/loss rises while train/loss keeps falling
    assert s["final"]["val/loss"] > s["best"]["val/loss"]
    assert s["final"]["train/loss"] < s["best"]["train/loss"]
    assert s["diagnosis"]["label"] == "overfit"
    assert s["num_params"] > 100_000 and s["device"] == "cpu"
    grad_norms = {"grad_norm/first_layer", "grad_norm/last_layer"}
    assert set(s["final"]) == set(TAGS) | grad_norms and set(s["best"]) == set(TAGS) | grad_norms


def test_default_demo_summary_says_it_in_words(demo_run):
    proc, run_dir = demo_run
    s = read_summary(run_dir)
    out = proc.stdout
    assert f"restored the weights of epoch {s['best_epoch']}" in out.replace("\n", " ")
    assert f"stopped at epoch {s['epochs_run']}" in out.replace("\n", " ")
    assert "generalization gap" in out.replace("\n", " ")
    assert out.rstrip().splitlines()[-1] == f"See the curves:  tensorboard --logdir {run_dir}"


def test_default_demo_writes_the_run_directory(demo_run):
    _, run_dir = demo_run
    s = read_summary(run_dir)
    n = s["epochs_run"]
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / ".hydra" / "overrides.yaml").is_file()
    assert (run_dir / "train.log").read_text().count("epoch ") >= n
    rows = _csv_rows(run_dir)
    assert list(rows[0]) == ["epoch", "train/loss", "val/loss", "train/acc", "val/acc", "lr", "seconds",
                             "grad_norm/first_layer", "grad_norm/last_layer"]
    assert [int(r["epoch"]) for r in rows] == list(range(1, n + 1))
    # TensorBoard: every tag for every epoch, in the run dir itself (hparams too: no subfolders)
    scalars = _scalars(run_dir)
    for tag in (*TAGS, "lr"):
        assert [step for step, _ in scalars[tag]] == list(range(1, n + 1)), tag
    assert [v for _, v in scalars["val/loss"]] == pytest.approx([float(r["val/loss"]) for r in rows], rel=1e-5)
    assert {p.name for p in run_dir.iterdir() if p.is_dir()} == {".hydra", "checkpoints"}
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    assert "_hparams_/experiment" in acc.PluginTagToContent("hparams")
    assert "custom_scalars__config__" in acc.PluginTagToContent("custom_scalars")


def test_hparams_reads_the_curves_and_scalars_holds_no_one_point_charts(demo_run):
    """HPARAMS shows the final value of each curve and the best val/loss; SCALARS gets no chart of one point
    for them (best_epoch, final/*): best/val/loss is the running best, one point per epoch."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    _, run_dir = demo_run
    n = read_summary(run_dir)["epochs_run"]
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert not [t for t in tags if t.startswith("final/") or t == "best_epoch"]
    best = [e.value for e in acc.Scalars("best/val/loss")]
    val = [e.value for e in acc.Scalars("val/loss")]
    assert len(best) == n and best == pytest.approx([min(val[:i + 1]) for i in range(n)], rel=1e-6)
    data = plugin_data_pb2.HParamsPluginData.FromString(acc.PluginTagToContent("hparams")["_hparams_/experiment"])
    metrics = [m.name.tag for m in data.experiment.metric_infos]
    assert metrics == ["best/val/loss", "train/loss", "val/loss", "train/acc", "val/acc"]
    assert all(m in tags for m in metrics)


def test_default_demo_checkpoints(demo_run):
    _, run_dir = demo_run
    s = read_summary(run_dir)
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)
    for ckpt in (last, best):
        assert {"model", "optimizer", "scheduler", "epoch", "early_stopping", "config"} <= set(ckpt)
        assert ckpt["config"]["model"]["hidden"] == [512, 512]
    assert last["epoch"] == s["epochs_run"] and best["epoch"] == s["best_epoch"]
    assert best["early_stopping"]["best_epoch"] == s["best_epoch"]
    assert not any(p.name.startswith(".") for p in (run_dir / "checkpoints").iterdir())


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


# torchvision datasets need files on disk: tests/test_vision.py builds them and trains through the CLI
VISION = {p.stem for p in (config_dir() / "dataset").glob("*.yaml") if "nnexp.data.vision" in p.read_text()}
# rl datasets collect from Gymnasium (an extra): tests/test_rl.py trains each through the CLI on a few episodes
RL = {p.stem for p in (config_dir() / "dataset").glob("*.yaml") if "nnexp.data.rl" in p.read_text()}
GRID = (
    [f"dataset={o}" for o in _options("dataset") if o not in VISION | RL]
    + [f"optimizer={o}" for o in _options("optimizer")]
    + [f"scheduler={o}" for o in _options("scheduler")]
    + [f"regularizer={o}" for o in _options("regularizer")]
    + [f"model={o}" for o in _options("model")]
    # presets that sweep by themselves are run whole in tests/test_presets.py
    + [f"experiment={o}" for o in _options("experiment")
       if "mode: MULTIRUN" not in (config_dir() / "experiment" / f"{o}.yaml").read_text()]
    + ["optimizer=momentum optimizer.nesterov=true", "loss=mse", "loss=nll", "loss=cross_entropy dataset=moons",
       "trainer.grad_clip=0.5", "trainer.deterministic=true", "model.activation=sigmoid", "trainer.progress=rich",
       "trainer.progress=plain", "trainer.checkpoints=false"]
)


# Options that need a partner of another group: sequence data needs a sequence model and back,
# single units need two classes, text needs a file.
SEQUENCE_DATA = {"adding", "copy", "parity", "text"}
PARTNER = {
    **{f"dataset={d}": "model=lstm dataset.n_samples=200" for d in SEQUENCE_DATA},
    "dataset=text": "model=lstm dataset.path=corpus.txt dataset.seq_len=16",
    "model=lstm": "dataset=adding dataset.n_samples=200",
    "model=rnn": "dataset=adding dataset.n_samples=200",
    "model=transformer": "dataset=adding dataset.n_samples=200",
    "model=perceptron": "dataset=xor",
    "model=sigmoid_unit": "dataset=xor",
    "dataset=random_images": "dataset.train_size=256 dataset.val_size=64",
}


@pytest.mark.parametrize("choice", GRID)
def test_every_option_trains(run_cli, tmp_path, choice, monkeypatch):
    from nnexp import run as run_module

    seen = {}

    def spy(model, data, objective, optimizer, scheduler, settings, stopper, **kwargs):
        seen.update(model=model, optimizer=optimizer, scheduler=scheduler, settings=settings,
                    deterministic=torch.are_deterministic_algorithms_enabled())
        return real_fit(model, data, objective, optimizer, scheduler, settings, stopper, **kwargs)

    real_fit = run_module.fit
    monkeypatch.setattr(run_module, "fit", spy)
    run_dir = tmp_path / "run"
    (tmp_path / "corpus.txt").write_text("a small corpus of characters to predict. " * 30)
    partner = PARTNER.get(choice, "").split()
    try:
        code, out, err = run_cli("train", *SHRINK, *choice.split(), *partner, f"hydra.run.dir={run_dir}")
    finally:
        torch.use_deterministic_algorithms(False)  # a run leaves it on for the process
    assert code == 0, err
    s = read_summary(run_dir)
    assert s["status"] in ("completed", "early_stopped")
    assert s["epochs_run"] >= 1 and math.isfinite(s["final"]["val/loss"])
    assert len(_csv_rows(run_dir)) == s["epochs_run"]
    assert (run_dir / "checkpoints" / "last.pt").is_file() == ("checkpoints=false" not in choice)
    # the option reached the run, not only the command line
    for item in choice.split():
        key, value = item.split("=", 1)
        if "." not in key and key != "loss":
            assert s["choices"][key] == value
    if choice.startswith("loss="):
        assert s["loss"] == choice.split()[0].split("=")[1]
    assert seen["settings"].grad_clip == (0.5 if choice == "trainer.grad_clip=0.5" else None)
    assert seen["deterministic"] == (choice == "trainer.deterministic=true")
    if "nesterov=true" in choice:
        assert seen["optimizer"].param_groups[0]["nesterov"] is True
    if choice.startswith("scheduler=") and choice != "scheduler=none":
        assert seen["scheduler"] is not None
    if choice == "model.activation=sigmoid":
        assert any(isinstance(m, torch.nn.Sigmoid) for m in seen["model"].modules())


def test_plain_progress_prints_one_line_per_epoch(run_cli, tmp_path):
    code, out, _ = run_cli("train", "trainer.epochs=3", "trainer.progress=plain", "dataset=xor",
                           f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0
    lines = [line for line in out.splitlines() if re.match(r"epoch +\d+/3 ", line)]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert "val/loss" in lines[0] and "val/acc" in lines[0]


def test_sweep_makes_one_run_dir_per_job(run_cli, tmp_path):
    code, out, err = run_cli("train", "-m", "regularizer=none,l2,dropout,early_stopping", "trainer.epochs=5",
                             "trainer.progress=none")
    assert code == 0, err
    summaries = sorted((tmp_path / "outputs" / "multirun").glob("*/*/*/summary.json"))
    assert len(summaries) == 4
    jobs = {json.loads(p.read_text())["choices"]["regularizer"] for p in summaries}
    assert jobs == {"none", "l2", "dropout", "early_stopping"}
    names = sorted(p.parent.name for p in summaries)
    assert names[0] == "0_regularizer=none,trainer.epochs=5"
    assert "sweep: 4 jobs" in out and "tensorboard --logdir outputs/multirun/" in out


def test_sweep_goes_on_after_a_bad_job_and_exits_nonzero(run_cli, tmp_path):
    code, out, err = run_cli("train", "-m", "optimizer.lr=0.01,-1", "trainer.epochs=2", "trainer.progress=none",
                             "dataset=xor")
    assert code == 1
    assert "optimizer.lr=-1 is out of range" in err
    assert "job failed (optimizer.lr=-1" in err
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "outputs" / "multirun").glob("*/*/*/summary.json")]
    assert sorted(s["status"] for s in summaries) == ["completed", "failed"]  # the failed job is recorded
    (failed,) = [s for s in summaries if s["status"] == "failed"]
    assert "optimizer.lr=-1 is out of range" in failed["error"] and "optimizer.lr=-1" in failed["overrides"]


def test_runs_started_together_get_their_own_folders(run_cli, tmp_path):
    for _ in range(2):
        code, _, _ = run_cli("train", *SHRINK, "dataset=xor")
        assert code == 0
    runs = list((tmp_path / "outputs" / "runs").glob("*/*"))
    assert len(runs) == 2 and all((r / "summary.json").is_file() for r in runs)


def test_a_run_folder_is_named_by_its_model_dataset_and_overrides(run_cli, tmp_path):
    """TensorBoard lists runs by folder: the name says what ran, after the time and the random id."""
    code, _, err = run_cli("train", *SHRINK, "dataset=moons", "model.hidden=[4,4]", "optimizer.lr=0.01")
    assert code == 0, err
    (run,) = (tmp_path / "outputs" / "runs").glob("*/*")
    assert re.fullmatch(r"\d\d-\d\d-\d\d_[0-9a-f]{6}_mlp-moons_model\.hidden=4,4_optimizer\.lr=0\.01_trainer\.epochs=2"
                        r"(_trainer\.threads=1)?", run.name), run.name


def test_a_run_label_stays_short_and_safe_in_a_shell():
    from nnexp.config import LABEL_LENGTH, run_label

    assert run_label("mlp", "digits") == "mlp-digits"
    label = run_label("transformer", "text", "dataset.path=/home/me/My Book.txt,expect=['final.val/acc > 0.5'],"
                      "model.hidden=[64,64,64,64,64,64,64,64]")
    assert len(label) <= LABEL_LENGTH and label.startswith("transformer-text_dataset.path=-home-me-My_Book.txt")
    assert not set(label) & set("/ '\"[]*?$<>|&;")


def test_same_seed_same_curves_other_seed_differs(run_cli, tmp_path):
    def losses(seed: int, name: str) -> list[str]:
        run_cli("train", *SHRINK, "trainer.epochs=3", f"trainer.seed={seed}", f"hydra.run.dir={tmp_path / name}")
        return [r["train/loss"] + r["val/loss"] for r in _csv_rows(tmp_path / name)]

    assert losses(0, "a") == losses(0, "b")
    assert losses(0, "a") != losses(1, "c")
    weights = {name: torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=True)["model"]
               for name in "abc"}
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])  # bit-identical
    assert not all(torch.equal(weights["a"][k], weights["c"][k]) for k in weights["a"])


def test_cosine_schedule_lowers_the_logged_lr(run_cli, tmp_path):
    code, _, _ = run_cli("train", *SHRINK, "trainer.epochs=4", "scheduler=cosine", "optimizer.lr=0.01",
                         f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0
    lrs = [float(r["lr"]) for r in _csv_rows(tmp_path / "r")]
    assert lrs[0] == pytest.approx(0.01) and lrs == sorted(lrs, reverse=True) and lrs[-1] < lrs[0]


def test_regularizer_values_reach_the_model_and_optimizer():
    from hydra.utils import instantiate

    from nnexp.build import component, param_groups

    cfg = compose_cfg(["regularizer=all"])
    model = component("model", cfg.model, input_shape=(1, 8, 8), num_outputs=10)
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(d.p == 0.5 for d in drops)
    opt = instantiate(cfg.optimizer)(param_groups(model, cfg.optimizer.weight_decay))
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == pytest.approx(1e-3) and all(p.ndim > 1 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.ndim == 1 for p in plain["params"])
    assert cfg.regularizer.l1 > 0 and cfg.regularizer.early_stopping.enabled


def test_l1_penalty_shrinks_weights(run_cli, tmp_path):
    def weight_l1(extra: list[str], name: str) -> float:
        code, _, err = run_cli("train", *SHRINK, "trainer.epochs=5", "dataset=moons", "model.hidden=[32]",
                               "regularizer=none", *extra, f"hydra.run.dir={tmp_path / name}")
        assert code == 0, err
        state = torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=False)["model"]
        return sum(v.abs().sum().item() for k, v in state.items() if k.endswith("weight"))

    assert weight_l1(["regularizer.l1=0.05"], "l1") < 0.8 * weight_l1([], "none")


def test_experiment_preset_applies_its_overrides():
    cfg = compose_cfg(["experiment=xor_mlp"])
    assert cfg.dataset._target_.endswith("synthetic.xor")
    assert list(cfg.model.hidden) == [8] and cfg.regularizer.early_stopping.enabled is False


def test_conf_is_the_repository_tree_in_an_editable_checkout():
    assert config_dir() == REPO / "conf"


def test_divergence_exits_3_and_never_checkpoints_nan(run_cli, tmp_path):
    run_dir = tmp_path / "r"
    code, _, err = run_cli("train", "dataset=moons", "optimizer=sgd", "optimizer.lr=1e30", "regularizer=none",
                           "trainer.epochs=20", "trainer.progress=none", f"hydra.run.dir={run_dir}")
    assert code == 3
    assert "training diverged: train/loss became nan in epoch 1" in err
    s = read_summary(run_dir)
    assert (s["status"], s["epochs_run"], s["diagnosis"]["label"]) == ("diverged", 1, "diverged")
    assert s["final"]["train/loss"] == "nan"  # JSON has no NaN: kept readable as a string
    assert not (run_dir / "checkpoints" / "last.pt").exists()
    assert len(_csv_rows(run_dir)) == 1  # the bad epoch is still logged, so the curve shows it


@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_signal_stops_cleanly_with_its_exit_code(tmp_path, sig, code, name):
    run_dir = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "nnexp", "train", "regularizer=none", "trainer.epochs=100000",
                             "model.hidden=[32,32]", "trainer.progress=none", f"hydra.run.dir={run_dir}"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until a few epochs are on disk
            if (run_dir / "metrics.csv").is_file() and len(_csv_rows(run_dir)) >= 3:
                break
            time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    s = read_summary(run_dir)
    assert s["status"] == "interrupted" and s["signal"] == name
    # the summary says how to go on: the run's own overrides, quoted for the shell, and its folder
    (line,) = [ln for ln in out.splitlines() if ln.startswith("To continue it where it stopped:")]
    command = shlex.split(line.split(":", 1)[1])
    assert command == ["nnexp", "train", "regularizer=none", "trainer.epochs=100000", "model.hidden=[32,32]",
                       "trainer.progress=none", f"trainer.resume={run_dir}"]
    assert "'model.hidden=[32,32]'" in line
    assert s["epochs_run"] >= 3 and s["epochs_run"] < 100000
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert [step for step, _ in _scalars(run_dir)["val/loss"]] == list(range(1, s["epochs_run"] + 1))


def test_sweep_job_folders_stay_flat_when_values_hold_slashes(run_cli, tmp_path):
    corpus = tmp_path / "data" / "corpus.txt"
    corpus.parent.mkdir()
    corpus.write_text("a few words to predict, again and again. " * 30)
    code, _, err = run_cli("train", "-m", "model=lstm,transformer", "dataset=text", f"dataset.path={corpus}",
                           "dataset.seq_len=16", "trainer.epochs=1", "trainer.progress=none")
    assert code == 0, err
    jobs = sorted(p.parent for p in (tmp_path / "outputs" / "multirun").glob("*/*/*/summary.json"))
    assert len(jobs) == 2 and all("dataset.path=-" in j.name for j in jobs)


def test_the_end_of_a_run_reads_whole_at_80_columns(run_cli, tmp_path, terminal):
    """The run's first line names its folder, the summary table, the sentences and the TensorBoard command:
    at 80 columns each reads whole; the folder and the command stay on one line, longer than the terminal;
    a claim's brackets are printed, not taken for rich markup."""
    from conftest import box_tables, screen

    run_dir = tmp_path / ("a-folder-with-a-long-name-" * 3) / "run"
    terminal(80)
    code, out, err = run_cli("train", "dataset=xor", "trainer.epochs=2", "trainer.progress=plain",
                             "trainer.threads=1", f"hydra.run.dir={run_dir}",
                             "expect=['final.val/loss[dataset=xor] > 0']")
    assert code == 0, err
    lines = screen(out)
    assert lines[0].startswith("nnexp: mlp on xor (") and lines[0].endswith(" parameters, cpu")
    assert lines[1] == f"  -> {run_dir}" and len(lines[1]) > 80  # whole, never broken inside the path
    (table,) = box_tables(lines)
    assert [row[0] for row in table] == ["", "train/loss", "val/loss", "train/acc", "val/acc", "gap (val - train loss)"]
    assert all(re.fullmatch(r"-?\d+\.\d{4}", cell) for row in table[1:] for cell in row[1:])
    assert max(len(line) for line in lines[2:-1] if not line.startswith("epoch ")) <= 80
    assert "Check PASS: final.val/loss[dataset=xor] > 0" in " ".join(lines)
    assert lines[-1] == f"See the curves:  tensorboard --logdir {run_dir}"
