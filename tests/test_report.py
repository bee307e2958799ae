"""`nnexp report`: a sweep's configurations side by side, seeds pooled, failed jobs kept, claims checked."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from conftest import box_tables, screen
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nnexp import report_cmd as report
from nnexp.sweep_jobs import jobs as sweep_jobs

CLAIMS = [
    "final.val/loss[regularizer=l2] < final.val/loss[regularizer=none]",  # holds for every seed
    "best_epoch[regularizer=l2] < best_epoch[regularizer=none]",  # fails for every seed
    "final.train/acc >= 0.99",  # one-run claim, holds for every job
]


def _job(root: Path, name: str, overrides: list[str], seed: int, status: str, best_val: float, best_epoch: int,
         gap: float, val_acc: float, label: str) -> None:
    """A run directory as `nnexp train` writes it: summary.json and a metrics.csv that overfits after best_epoch."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    epochs = best_epoch + 5
    rows = [(e, 1.0 / e, best_val + 0.01 * (e - best_epoch) ** 2, min(1.0, 0.5 + 0.05 * e), val_acc)
            for e in range(1, epochs + 1)]
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["epoch", "train/loss", "val/loss", "train/acc", "val/acc", "lr", "seconds"])
        out.writerows([*r, 0.001, 0.01] for r in rows)
    final = {"train/loss": rows[-1][1], "val/loss": rows[-1][1] + gap, "train/acc": 1.0, "val/acc": val_acc}
    summary = {"status": status, "epochs_run": epochs, "best_epoch": best_epoch, "monitor": "val/loss",
               "mode": "min", "best_value": best_val, "final": final,
               "best": {"train/loss": 0.1, "val/loss": best_val, "train/acc": 0.99, "val/acc": val_acc},
               "gap": {"best": best_val - 0.1, "final": gap},
               "diagnosis": {"label": label, "reason": "r", "suggestion": "s"}, "seed": seed,
               "seconds_per_epoch": 0.5 + 0.1 * seed,
               "choices": {"model": "mlp", "dataset": "digits", "regularizer": overrides[0].split("=")[1]},
               "overrides": [*overrides, f"trainer.seed={seed}", "trainer.epochs=30", "trainer.progress=none"],
               "expect": CLAIMS}
    (run_dir / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def sweep(tmp_path) -> Path:
    """2 configurations x 3 seeds + 1 job that failed before training."""
    root = tmp_path / "sweep"
    for seed in range(3):
        _job(root, f"{seed}_none", ["regularizer=none"], seed, "completed", best_val=0.50 + 0.02 * seed,
             best_epoch=10 + 2 * seed, gap=0.30 + 0.02 * seed, val_acc=0.80 + 0.02 * seed, label="overfit")
        _job(root, f"{seed}_l2", ["regularizer=l2"], seed, "early_stopped", best_val=0.40 + 0.01 * seed,
             best_epoch=20 + seed, gap=0.10, val_acc=0.85 + 0.01 * seed,
             label="good fit" if seed < 2 else "good_fit")  # seed 2: a record from before labels were words
    (root / "6_dropout").mkdir()
    (root / "6_dropout" / "summary.json").write_text(json.dumps({
        "status": "failed", "error": "ConfigError: regularizer.dropout=1.5 is out of range [0, 1)",
        "overrides": ["regularizer=dropout", "regularizer.dropout=1.5", "trainer.seed=0", "trainer.epochs=30"],
        "choices": {"regularizer": "dropout"}}))
    return root


def _row(out: str, label: str) -> list[str]:
    (line,) = [ln for ln in out.splitlines() if ln.startswith(f"│ {label} ")]
    return [cell.strip() for cell in line.strip("│ ").split("│")]


def test_report_pools_seeds_per_configuration(sweep, capsys):
    assert report.main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "7 jobs, 2 configurations (shared: trainer.epochs=30)" in out
    assert _row(out, "regularizer=l2") == ["regularizer=l2", "3", "0.410 ± 0.010", "21", "0.138 ± 0.001", "0.100 ± 0.000",
                                           "0.860 ± 0.010", "0.600 ± 0.100", "early_stopped x3", "good fit"]
    assert _row(out, "regularizer=none") == ["regularizer=none", "3", "0.520 ± 0.020", "12", "0.379 ± 0.013",
                                             "0.320 ± 0.020",
                                             "0.820 ± 0.020", "0.600 ± 0.100", "completed x3", "overfit"]
    # sorted by the monitored metric, val/loss: lowest first
    assert out.index("│ regularizer=l2 ") < out.index("│ regularizer=none ")
    assert "sorted by best val/loss, lowest first" in out


def test_report_lists_failed_jobs(sweep, capsys):
    report.main([str(sweep)])
    out = capsys.readouterr().out
    failed = out[out.index("failed jobs: 1"):]
    assert "regularizer=dropout regularizer.dropout=1.5" in failed and "out of range [0, 1)" in failed
    assert "regularizer=dropout" not in out[:out.index("failed jobs")]  # not a row of the main table


def test_report_checks_claims_per_seed(sweep, capsys):
    report.main([str(sweep)])
    out = capsys.readouterr().out
    claims = out[out.index("claims (expect)"):]
    assert re.search(r"final\.val/loss\[regularizer=l2\] < .*PASS .*seed 0 PASS \(0\.140 vs 0\.367\)", claims)
    assert re.search(r"best_epoch\[regularizer=l2\] < .*FAIL .*seed 0 FAIL \(20 vs 10\)", claims)
    assert "seed 2 FAIL (22 vs 14)" in claims
    assert re.search(r"final\.train/acc >= 0\.99 .*PASS .*seed 0 PASS", claims)
    assert out.rstrip().splitlines()[-1] == "2 of 3 claims PASS"


def test_report_writes_csv_and_png(sweep, capsys):
    report.main([str(sweep)])
    out = capsys.readouterr().out
    assert f"Wrote {sweep / 'report.csv'} and {sweep / 'report.png'}" in out
    with open(sweep / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == ["regularizer=l2", "regularizer=none",
                                          "regularizer=dropout regularizer.dropout=1.5 trainer.seed=0"]
    l2, none, failed = rows
    assert l2["n"] == "3" and l2["monitor"] == "val/loss" and l2["status"] == "early_stopped x3"
    assert float(l2["best_mean"]) == pytest.approx(0.41) and float(l2["best_std"]) == pytest.approx(0.01)
    assert float(none["final_mean"]) == pytest.approx(0.3794, abs=1e-4) and float(l2["final_std"]) > 0
    assert float(none["best_epoch_mean"]) == 12 and float(none["gap_final_std"]) == pytest.approx(0.02)
    assert float(none["val_acc_mean"]) == pytest.approx(0.82) and none["diagnosis"] == "overfit"
    assert float(none["seconds_per_epoch_mean"]) == pytest.approx(0.6)
    assert failed["status"] == "failed" and "out of range" in failed["error"] and failed["best_mean"] == ""
    assert None not in failed and None not in failed.values()  # as many cells as the header, none shifted
    with Image.open(sweep / "report.png") as png:
        assert png.format == "PNG"
        assert 1000 <= png.width <= 1600 and 400 <= png.height <= 700
        assert png.convert("L").getextrema()[0] < 128  # something dark is drawn: axes, text, curves
        assert len(png.convert("RGB").getcolors(1 << 16) or []) > 2  # in colours: one per configuration


def test_report_on_a_real_sweep(run_cli, tmp_path, capsys):
    code, out, err = run_cli("train", "-m", "regularizer=none,l2", "trainer.seed=0,1", "trainer.epochs=3",
                             "trainer.progress=none", "dataset=xor")
    assert code == 0, err
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    assert out.splitlines()[-1] == f"Seeds pooled, claims checked:  nnexp report {sweep_dir.relative_to(tmp_path)}"
    assert report.main([str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert "4 jobs, 2 configurations" in out
    for label in ("regularizer=none", "regularizer=l2"):
        row = _row(out, label)
        assert row[1] == "2" and " ± " in row[2] and float(row[7].split(" ± ")[0]) > 0 and row[8] == "completed x2"
    assert (sweep_dir / "report.png").stat().st_size > 10_000
    # one averaged TensorBoard run per configuration: the mean of its two seeds' metrics.csv, epoch by epoch
    for label in ("regularizer=none", "regularizer=l2"):
        events = EventAccumulator(str(sweep_dir / "_mean" / label))
        events.Reload()
        seeds = [report.read_metrics(s.parent / "metrics.csv") for s in report.find_summaries(sweep_dir)
                 if label in json.loads(s.read_text())["overrides"]]
        assert len(seeds) == 2 and [e.value for e in events.Scalars("seeds")] == [2, 2, 2]
        assert [e.value for e in events.Scalars("mean/val/loss")] == pytest.approx(
            [(float(seeds[0][e]["val/loss"]) + float(seeds[1][e]["val/loss"])) / 2 for e in (1, 2, 3)], rel=1e-5)
    assert len(sweep_jobs(sweep_dir)) == 4  # a sweep run again reads no job from _mean
    # a single run directory of that sweep is a report of its own
    job = next(p.parent for p in sweep_dir.glob("*/summary.json"))
    assert report.main([str(job)]) == 0
    assert "1 job, 1 configuration" in capsys.readouterr().out
    assert not (job / "_mean").exists()  # its curves are its own: no averaged run inside a run's folder


def test_report_rejects_a_path_without_runs(tmp_path, capsys):
    missing = tmp_path / "no_such_sweep"
    assert report.main([str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err
    (tmp_path / "empty").mkdir()
    assert report.main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no summary.json" in err
    assert report.main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: nnexp report PATH")


def test_display_only_keys_do_not_split_configurations():
    """The report and the HPARAMS tab share one list of keys that change only how a run is shown."""
    from nnexp.fingerprint import DISPLAY_KEYS
    from nnexp.report_cmd import group

    jobs = [{"status": "completed", "overrides": ["regularizer=l2", f"{key}=1", f"trainer.seed={seed}"]}
            for seed, key in enumerate(sorted(DISPLAY_KEYS))]
    configs, _ = group(jobs)
    assert len(configs) == 1 and len(configs[0].done) == len(DISPLAY_KEYS)


@pytest.fixture
def long_labels(tmp_path) -> Path:
    """4 configurations of 3 overrides each (labels up to 64 columns) x 2 seeds, and a job that failed."""
    root = tmp_path / "long"
    for seed in range(2):
        for i, reg in enumerate(("none", "l2", "dropout", "early_stopping")):
            overrides = [f"regularizer={reg}", f"optimizer={'adam' if i % 2 else 'sgd'}",
                         f"model.hidden=[{64 * (i + 1)},{32 * (i + 1)}]"]
            _job(root, f"{seed}{i}_{reg}", overrides, seed, "completed", best_val=0.5 + 0.01 * i + 0.003 * seed,
                 best_epoch=10 + i, gap=0.3 - 0.05 * i, val_acc=0.8 + 0.01 * i, label="overfit")
    (root / "9_dropout").mkdir()
    (root / "9_dropout" / "summary.json").write_text(json.dumps({
        "status": "failed", "error": "ConfigError: regularizer.dropout=1.5 is out of range [0, 1)",
        "overrides": ["regularizer=dropout", "regularizer.dropout=1.5", "optimizer=sgd", "trainer.seed=0",
                      "trainer.epochs=30"]}))
    return root


def _configurations(lines: list[str]) -> dict[str, dict[str, str]]:
    """label -> {column: cell} from either layout: one table with a row per configuration, or the numbered
    list of labels and the tables of numbers keyed by that number."""
    tables = box_tables(lines)
    main = next((t for t in tables if t[0][0] == "configuration" and t[0][1] == "n"), None)
    if main is not None:
        return {row[0]: dict(zip(main[0][1:], row[1:], strict=True)) for row in main[1:]}
    start = next(i for i, line in enumerate(lines) if line.startswith("configurations, sorted by"))
    labels: dict[str, str] = {}
    for line in lines[start + 1:]:
        numbered = re.match(r"  +(\d+)  (\S.*)", line)
        if numbered:
            number = numbered.group(1)
            labels[number] = numbered.group(2)
        elif line.startswith("     ") and labels:
            labels[number] += " " + line.strip()
        else:
            break
    found: dict[str, dict[str, str]] = {label: {} for label in labels.values()}
    for t in tables:
        if t[0][0] == "#":
            for row in t[1:]:
                found[labels[row[0]]].update(zip(t[0][1:], row[1:], strict=True))
    return found


@pytest.mark.parametrize("width", [80, 100, 170])
def test_report_keeps_every_label_and_number_whole_on_a_narrow_terminal(long_labels, capsys, terminal, width):
    """Below ~160 columns rich shrank the label column to nothing and cut the numbers; now every cell of the
    wide table is found whole, each row's numbers next to its label, and no line is wider than the terminal."""
    report.main([str(long_labels)])
    wide = screen(capsys.readouterr().out)
    terminal(width)
    report.main([str(long_labels)])
    narrow = screen(capsys.readouterr().out)
    # a path stays whole: the files written, the command that shows the averaged runs
    assert max(len(line) for line in narrow if not line.startswith(("Wrote ", "  tensorboard --logdir "))) <= width
    assert any(line.endswith(f"  tensorboard --logdir {long_labels}") for line in narrow)  # whole, on some line
    expected = _configurations(wide)
    assert len(expected) == 4 and "regularizer=early_stopping optimizer=adam model.hidden=[256,128]" in expected
    assert _configurations(narrow) == expected
    if width < 170:  # the labels as a numbered list, the numbers in tables keyed by it
        assert "configurations, sorted by best val/loss, lowest first:" in narrow
        assert "  1  regularizer=none optimizer=sgd model.hidden=[64,32]" in narrow
    else:  # still one table: the labels wrapped between their overrides
        assert any(line.startswith("│ regularizer=early_stopping ") and line.endswith("│ overfit   │")
                   for line in narrow)
    (failed,) = [t for t in box_tables(narrow) if t[0] == ["configuration", "seed", "status", "error"]]
    assert failed[1] == ["regularizer=dropout regularizer.dropout=1.5 optimizer=sgd", "0", "failed",
                         "ConfigError: regularizer.dropout=1.5 is out of range [0, 1)"]
    claims = narrow[narrow.index("claims (expect), checked per seed on the mean of the jobs each side selects"):]
    assert "seed 1 FAIL (11 vs 10)" in "\n".join(claims)


def test_report_at_200_columns_is_one_row_per_configuration(long_labels, capsys, terminal):
    """Piped (a log, a file) or on a terminal of 200 columns: the table as it always was, a row per line."""
    report.main([str(long_labels)])
    piped = screen(capsys.readouterr().out)
    terminal(200)
    report.main([str(long_labels)])
    assert screen(capsys.readouterr().out) == piped
    assert piped[0] == "nnexp report: 9 jobs, 4 configurations (shared: trainer.epochs=30)"
    assert piped[2] == ("┃ configuration                                                    ┃ n ┃ best val/loss ┃ best epoch "
                        "┃ final val/loss ┃ gap (final)   ┃ val/acc (final) ┃ s/epoch       ┃ status       ┃ diagnosis ┃")
    assert piped[4] == ("│ regularizer=none optimizer=sgd model.hidden=[64,32]              │ 2 │ 0.502 ± 0.002 │         10 "
                        "│ 0.367 ± 0.000  │ 0.300 ± 0.000 │ 0.800 ± 0.000   │ 0.550 ± 0.071 │ completed x2 │ overfit   │")
    assert piped[9] == "sorted by best val/loss, lowest first; mean ± std over seeds; gap = val/loss - train/loss"
