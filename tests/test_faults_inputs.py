"""Faults in what nnexp is given (issue 14): damaged files under `nnexp report`, out-of-range seeds and learning
rates, an unwritable cache, binary text, non-ASCII paths and unusable run folders. Each ends in one line naming
the key, file or folder and its documented exit code; no traceback, nothing half-written."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from conftest import read_summary, run_subprocess

from nnexp import report_cmd as report

ROOT = os.geteuid() == 0  # permissions do not stop root: those faults are made with a file in the way instead
QUICK = ["trainer.epochs=1", "trainer.progress=none", "trainer.threads=1"]
HEADER = ["epoch", "train/loss", "val/loss", "train/acc", "val/acc", "lr", "seconds", "grad_norm/first_layer",
          "grad_norm/last_layer"]


def _only_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------------------------------------------
# 1. `nnexp report` survives damaged files


def _job(root: Path, name: str, regularizer: str, seed: int, best: float) -> Path:
    """A finished job folder as `nnexp train` leaves it: summary.json and a 5-epoch metrics.csv."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        out.writerows([e, 1.0 / e, best + 0.01 * e, 0.5, 0.6, 0.001, 0.1, 0.2, 0.3] for e in range(1, 6))
    summary = {"version": 2, "status": "completed", "epochs_run": 5, "best_epoch": 1, "monitor": "val/loss",
               "mode": "min", "best_value": best + 0.01, "final": {"val/loss": best + 0.05, "train/loss": 0.2},
               "best": {"val/loss": best + 0.01}, "gap": {"best": 0.1, "final": 0.2}, "seed": seed,
               "choices": {"regularizer": regularizer},
               "overrides": [f"regularizer={regularizer}", f"trainer.seed={seed}", "trainer.epochs=5"],
               "expect": ["final.val/loss[regularizer=l2] < final.val/loss[regularizer=none]"]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def _truncate(file: Path) -> None:
    """Cut inside the 4th number of the last line, as a write cut short leaves it."""
    head, last = file.read_text().rstrip("\n").rsplit("\n", 1)
    file.write_text(f"{head}\n{','.join(last.split(',')[:4])[:-1]}")


# (what is damaged, how, what the report must say about it)
DAMAGE = [
    ("metrics.csv", lambda f: f.write_text(f.read_text() + "garbage\n"), "line 7: 1 field where the header has 9"),
    ("metrics.csv", lambda f: f.write_text(f.read_text().replace("\n3,", "\nthree,")),
     "line 4: epoch 'three' is not a whole number"),
    ("metrics.csv", lambda f: f.write_text(f.read_text().replace("\n2,0.5,", "\n2,0.5x,")), "line 3: '0.5x' is not a number"),
    ("metrics.csv", lambda f: f.write_bytes(f.read_bytes() + b"\x89PNG\r\n\x1a\n\x00\xff"),
     "not UTF-8 text (byte 0x89 at offset"),
    ("metrics.csv", _truncate, "line 6: 4 fields where the header has 9"),
    ("metrics.csv", lambda f: f.write_bytes(b""), "line 1 is not the header"),
    ("summary.json", lambda f: f.write_text('{"status": "completed", "epochs_'), "Unterminated string"),
    ("summary.json", lambda f: f.write_bytes(b"\xff\xfe{}"), "can't decode byte 0xff"),
    ("summary.json", lambda f: f.write_text('{"status": "completed", "overrides": 3}'),
     "'overrides' holds 3, not a list of strings"),
    ("summary.json", lambda f: (f.unlink(), f.symlink_to(f.parent / "gone.json")), "gone.json, which does not exist"),
    ("summary.json", lambda f: (f.unlink(), f.mkdir()), "Is a directory"),
]


@pytest.mark.parametrize(("name", "damage", "reason"), DAMAGE,
                         ids=["junk line", "bad epoch", "bad number", "binary", "truncated", "empty",
                              "truncated json", "non-utf8 json", "wrong shape", "dangling link",
                              "a folder"])
def test_report_lists_a_damaged_job_and_reports_the_others(tmp_path, capsys, name, damage, reason):
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        _job(sweep, f"{2 * seed}_none", "none", seed, best=0.5)
        _job(sweep, f"{2 * seed + 1}_l2", "l2", seed, best=0.4)
    bad = _job(sweep, "4_l2", "l2", 2, best=0.4) / name
    damage(bad)
    assert report.main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "nnexp report: 4 jobs, 2 configurations (shared: trainer.epochs=5); 1 damaged job left out" in out
    assert "damaged jobs: 1 (left out of the table, report.png and the claims)" in out
    (line,) = [ln for ln in out.splitlines() if str(bad) in ln]
    assert line.strip().startswith(f"{bad}: ") and reason in line
    assert "│ regularizer=l2 " in out and "│ regularizer=none " in out
    assert "1 of 1 claim PASS" in out  # the claims are checked on the other jobs
    with open(sweep / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["n"] for r in rows[:2]] == ["2", "2"]  # the damaged seed is not pooled
    assert rows[2]["label"] == str(bad.parent) and rows[2]["status"] == "damaged"
    assert rows[2]["error"].startswith(f"{name}: ") and reason in rows[2]["error"]
    assert (sweep / "report.png").stat().st_size > 10_000


def test_report_through_the_real_entry_point_exits_0_without_a_traceback(tmp_path):
    sweep = tmp_path / "sweep"
    _job(sweep, "0_none", "none", 0, best=0.5)
    bad = _job(sweep, "1_l2", "l2", 0, best=0.4) / "metrics.csv"
    bad.write_bytes(bad.read_bytes()[:40] + bytes(range(256)))
    proc = run_subprocess("report", str(sweep), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{bad}: not UTF-8 text" in proc.stdout and "│ regularizer=none " in proc.stdout


def test_report_with_every_job_damaged_exits_1_with_one_line(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        (_job(sweep, f"{seed}_none", "none", seed, best=0.5) / "summary.json").write_text("{")
    assert report.main([str(sweep)]) == 1
    captured = capsys.readouterr()
    assert _only_line(captured.err) == f"nnexp report: error: every job below {sweep} is damaged; nothing to report"
    assert captured.out.count("summary.json: ") == 2
    assert not (sweep / "report.csv").exists()


# ---------------------------------------------------------------------------------------------------------------
# 2. trainer.seed: the seeds numpy accepts


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_seed_out_of_range_is_a_config_error(run_cli, tmp_path, seed):
    code, out, err = run_cli("train", *QUICK, f"trainer.seed={seed}")
    assert code == 2, (out, err)
    assert _only_line(err) == (f"nnexp: error: trainer.seed={seed} is out of range; "
                               "allowed: an integer in [0, 4294967295]")
    assert not (tmp_path / "outputs").exists()


def test_the_largest_seed_trains(run_cli, tmp_path):
    code, _, err = run_cli("train", *QUICK, "dataset=xor", "trainer.seed=4294967295",
                           f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err
    assert read_summary(tmp_path / "r")["seed"] == 4294967295


# ---------------------------------------------------------------------------------------------------------------
# 3. a learning rate whose update does not fit in float32 diverges, as one whose loss becomes Inf does


@pytest.mark.parametrize("args", [["optimizer.lr=1e300"], ["optimizer=sgd", "optimizer.lr=1e300"],
                                  ["optimizer.lr=1e38"], ["optimizer.lr=1e30"]],
                         ids=["adam 1e300", "sgd 1e300", "adam 1e38", "adam 1e30 (loss Inf)"])
def test_huge_learning_rate_diverges_with_exit_3(run_cli, tmp_path, args):
    code, out, err = run_cli("train", *QUICK, "dataset=xor", *args,
                             f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 3, (out, err)
    summary = read_summary(tmp_path / "r")
    assert summary["status"] == "diverged" and summary["epochs_run"] == 1
    line = _only_line(err)
    assert line.startswith("nnexp: error: training diverged: ") and "epoch 1, step " in line
    if args[-1] != "optimizer.lr=1e30":
        lr = args[-1].partition("=")[2]
        assert f"the optimizer's update overflowed float32 (lr={float(lr):g}) in epoch 1, step 1" in line
        assert summary["diagnosis"]["reason"] == "training diverged in epoch 1"  # its curves stay finite
    assert not (tmp_path / "r" / "checkpoints" / "last.pt").exists()  # a diverged state is never saved


@pytest.mark.parametrize("check_every_step", [True, False], ids=["cpu path", "device path"])
def test_an_overflowing_update_leaves_the_weights_as_they_were(check_every_step):
    import torch

    from nnexp.data import synthetic
    from nnexp.early_stopping import EarlyStopping
    from nnexp.loop import FitSettings, fit
    from nnexp.losses import make_objective
    from nnexp.models.mlp import MLP
    from nnexp.record import Status

    torch.manual_seed(0)
    data = synthetic.moons(n_samples=128, val_fraction=0.25, seed=0)
    objective = make_objective("auto", "classification", 2, None)
    model = MLP((2,), objective.num_outputs, hidden=[8])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e300)
    result = fit(model, data, objective, optimizer, None,
                 FitSettings(epochs=3, batch_size=16, check_every_step=check_every_step), EarlyStopping(enabled=False))
    assert result.status is Status.DIVERGED and result.epochs_run == 1
    assert result.message.startswith("the optimizer's update overflowed float32 (lr=1e+300) in epoch 1, step 1")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------------------------------------------
# 4. rl datasets: an unwritable cache folder


def test_unwritable_rl_cache_names_the_folder_and_how_to_move_it(run_cli, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    if ROOT:  # root writes through permissions: a file where the cache folder would go stops mkdir instead
        (home / ".cache").write_text("not a folder")
    else:
        home.chmod(0o500)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NNEXP_CACHE")
    try:
        code, out, err = run_cli("train", *QUICK, "dataset=rl_policy", "dataset.episodes=2")
    finally:
        home.chmod(0o700)
    assert code == 2, (out, err)
    line = _only_line(err)
    folder = home / ".cache" / "nnexp" / "rl"
    reason = "not a directory" if ROOT else "permission denied"
    assert line == (f"nnexp: error: dataset.cache=~/.cache/nnexp: cannot write into the cache folder {folder} "
                    f"({reason}); move the cache to a writable folder with dataset.cache=PATH or the NNEXP_CACHE "
                    "environment variable")
    assert not (tmp_path / "outputs").exists()


# ---------------------------------------------------------------------------------------------------------------
# 5. dataset=text: UTF-8 text only


TEXT = ("A line of plain text, long enough for a few windows.\n" * 20).encode()


@pytest.mark.parametrize(("content", "expected"), [
    (TEXT + "Größe".encode("latin-1") + TEXT, f"byte 0xf6 at offset {len(TEXT) + 2} is not UTF-8 text"),
    (TEXT + b"\x00\x00\x01\x02" + TEXT, f"byte 0x00 at offset {len(TEXT)} is not UTF-8 text (a NUL: binary data)"),
    (b"\x89PNG\r\n\x1a\n" + TEXT, "byte 0x89 at offset 0 is not UTF-8 text"),
], ids=["latin-1", "nul bytes", "png"])
def test_text_dataset_rejects_a_file_that_is_not_utf8_text(run_cli, tmp_path, content, expected):
    file = tmp_path / "corpus.txt"
    file.write_bytes(content)
    code, out, err = run_cli("train", *QUICK, "dataset=text", "model=lstm",
                             "dataset.seq_len=8", f"dataset.path={file}")
    assert code == 2, (out, err)
    assert _only_line(err) == f"nnexp: error: dataset.path={file}: {expected}; the file must be UTF-8 text"
    assert not (tmp_path / "outputs").exists()


def test_text_dataset_reads_utf8_with_non_ascii_characters(run_cli, tmp_path):
    file = tmp_path / "corpus.txt"
    file.write_text("Größe, naïve café: ünïcödé text. " * 40, encoding="utf-8")
    code, _, err = run_cli("train", *QUICK, "dataset=text", "model=lstm", "dataset.seq_len=8",
                           f"dataset.path={file}", f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err


# ---------------------------------------------------------------------------------------------------------------
# 6. a non-ASCII path in an unquoted override: how to quote it


def test_unquoted_non_ascii_path_says_how_to_quote_it_and_the_quoted_form_works(run_cli, tmp_path):
    file = tmp_path / "daten" / "größe.txt"
    file.parent.mkdir()
    file.write_text("Größe und Gewicht, Länge und Breite. " * 30, encoding="utf-8")
    args = [*QUICK, "dataset=text", "model=lstm", "dataset.seq_len=8"]
    code, out, err = run_cli("train", *args, f"dataset.path={file}")
    assert code == 2, (out, err)
    quoted = f'dataset.path="{file}"'
    assert _only_line(err) == (f"nnexp: error: cannot parse the override dataset.path={file}: 'ö' cannot appear in "
                               f"an unquoted value; quote the value: '{quoted}'")
    assert not (tmp_path / "outputs").exists()
    code, _, err = run_cli("train", *args, quoted, f"hydra.run.dir={tmp_path / 'r'}")  # what the hint says works
    assert code == 0, err
    assert read_summary(tmp_path / "r")["status"] == "completed"


# ---------------------------------------------------------------------------------------------------------------
# 7. a run folder that cannot be created or written into: the folder and the OS's reason


def test_read_only_working_folder(run_cli, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    if ROOT:
        (here / "outputs").write_text("a file where the runs would go")
    else:
        here.chmod(0o500)
    monkeypatch.chdir(here)
    try:
        code, out, err = run_cli("train", *QUICK, "dataset=xor")
    finally:
        here.chmod(0o700)
    assert code == 2, (out, err)
    line = _only_line(err)
    assert line.startswith(f"nnexp: error: cannot create the run folder {here}/outputs/runs/")
    reason = f"{here / 'outputs'} is a file, not a folder" if ROOT else f"permission denied in {here}"
    assert line.endswith(f": {reason}; run nnexp where you can write, or choose a folder with hydra.run.dir=PATH")
    assert [p.name for p in here.iterdir()] == (["outputs"] if ROOT else [])


def test_read_only_run_folder(run_cli, tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("the user's own file")
    if ROOT:
        (run_dir / ".hydra").write_text("a file where Hydra's folder would go")
    else:
        run_dir.chmod(0o500)
    before = sorted(p.name for p in run_dir.iterdir())
    try:
        code, out, err = run_cli("train", *QUICK, "dataset=xor", f"hydra.run.dir={run_dir}")
    finally:
        run_dir.chmod(0o700)
    assert code == 2, (out, err)
    reason = f"{run_dir / '.hydra'} is a file, not a folder" if ROOT else "permission denied"
    assert _only_line(err) == (f"nnexp: error: cannot write into the run folder {run_dir}: {reason}; "
                               "choose another with hydra.run.dir=PATH")
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_run_folder_name_too_long(run_cli, tmp_path):
    run_dir = tmp_path / "new" / ("a" * 300)
    code, out, err = run_cli("train", *QUICK, "dataset=xor", f"hydra.run.dir={run_dir}")
    assert code == 2, (out, err)
    assert _only_line(err) == (f"nnexp: error: cannot create the run folder {run_dir}: name too long (most file "
                               "systems allow 255 bytes per folder name); choose a shorter hydra.run.dir")
    assert not (tmp_path / "new").exists()  # the parent it created on the way is gone again


@pytest.mark.filterwarnings("ignore:Callback SweepWatcher")  # Hydra's own note of the same error, held back
def test_sweep_folder_name_too_long(run_cli, tmp_path):
    sweep_dir = tmp_path / ("s" * 300)
    code, out, err = run_cli("train", "-m", *QUICK, "dataset=xor", "trainer.seed=0,1", f"hydra.sweep.dir={sweep_dir}")
    assert code == 2, (out, err)
    assert _only_line(err) == (f"nnexp: error: cannot create the sweep folder {sweep_dir}: name too long (most file "
                               "systems allow 255 bytes per folder name); choose a shorter hydra.sweep.dir")


def test_permission_denied_reads_as_such_for_every_user(tmp_path):
    """What a user who is not root meets (root's tests above put a file in the way instead)."""
    import errno

    from nnexp.hydra_errors import folder_error

    run_dir = tmp_path / "outputs" / "runs" / "x"
    exc = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "outputs"))
    assert folder_error(exc, "hydra.run.dir", run_dir) == (
        f"nnexp: error: cannot create the run folder {run_dir}: permission denied in {tmp_path}; run nnexp where "
        "you can write, or choose a folder with hydra.run.dir=PATH")
    run_dir.mkdir(parents=True)
    exc = PermissionError(errno.EACCES, "Permission denied", str(run_dir / ".hydra"))
    assert folder_error(exc, "hydra.run.dir", run_dir) == (
        f"nnexp: error: cannot write into the run folder {run_dir}: permission denied; choose another with "
        "hydra.run.dir=PATH")


# ---------------------------------------------------------------------------------------------------------------
# a killed run's metrics.csv damaged or gone: the resume sets the damaged file aside and says what is missing

RESUMABLE = ["dataset=moons", "dataset.n_samples=400", "model.hidden=[8]", "trainer.progress=none",
             "trainer.threads=1", "trainer.pictures_every=0", "trainer.histograms_every=0"]


@pytest.mark.parametrize("damage", ["junk", "deleted"])
def test_resume_with_a_damaged_or_missing_metrics_csv(run_cli, tmp_path, damage):
    run_dir = tmp_path / "R"
    assert run_cli("train", *RESUMABLE, "trainer.epochs=3", f"hydra.run.dir={run_dir}")[0] == 0
    (run_dir / "summary.json").unlink()  # as a kill after epoch 3's checkpoint leaves it
    junk = b"\xff\xfe\x00garbage\x00" * 40
    if damage == "junk":
        (run_dir / "metrics.csv").write_bytes(junk)
    else:
        (run_dir / "metrics.csv").unlink()
    code, _, err = run_cli("train", *RESUMABLE, "trainer.epochs=5", "trainer.resume=auto", f"hydra.run.dir={run_dir}")
    assert code == 0, err
    s = read_summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == 5 and s["resumed_from"]["epoch"] == 3
    with open(run_dir / "metrics.csv", newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["4", "5"]
    assert any("has rows for 0 of the 3 epochs trained before this resume" in w for w in s["warnings"])
    if damage == "junk":  # nothing the user had is deleted
        assert (run_dir / "metrics.csv.damaged").read_bytes() == junk
        assert any("set aside as metrics.csv.damaged" in w for w in s["warnings"])
