"""Sweeps beyond one process: Hydra's joblib and submitit launchers, the Optuna sweeper, sweeps that
pick up where an earlier run of the same command left off, and the table a sweep ends with."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nnexp import report_cmd as report


def _plugin(name: str) -> None:
    """Only the tests of Hydra's launchers and sweepers need the sweep extra (the dev extra brings it)."""
    pytest.importorskip(f"hydra_plugins.{name}", reason="pip install -e '.[sweep]'")

QUICK = ["dataset=xor", "trainer.epochs=3", "trainer.progress=none"]


def _nnexp(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The real entry point in a fresh process: launchers start worker processes of their own."""
    return subprocess.run([sys.executable, "-m", "nnexp", "train", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def _sweep(cwd: Path) -> Path:
    (sweep,) = (cwd / "outputs" / "multirun").glob("*/*")
    return sweep


def _summaries(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def test_joblib_runs_the_jobs_in_parallel_processes_without_oversubscribing(tmp_path):
    _plugin("hydra_joblib_launcher")
    proc = _nnexp(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *QUICK,
                  "optimizer=sgd,adam", "trainer.seed=0,1")
    assert proc.returncode == 0, proc.stderr
    sweep = _sweep(tmp_path)  # one sweep folder, though each job resolved its config in a worker process
    summaries = _summaries(sweep)
    assert len(summaries) == 4 and {s["status"] for s in summaries} == {"completed"}
    assert len({s["seed"] for s in summaries}) == 2
    share = max(1, _cores() // 2)  # the cores shared by the 2 jobs running at once: never more threads each
    for log in sweep.glob("*/train.log"):
        threads = re.search(r"\| (\d+) torch threads? \(auto: ", log.read_text())
        assert threads is not None and 1 <= int(threads.group(1)) <= share, log.read_text()[:300]
    assert "sweep: 4 jobs" in proc.stdout and f"tensorboard --logdir {sweep.relative_to(tmp_path)}" in proc.stdout


def test_submitit_local_runs_each_job_as_its_own_process(tmp_path):
    _plugin("hydra_submitit_launcher")
    proc = _nnexp(tmp_path, "-m", "hydra/launcher=submitit_local", *QUICK, "trainer.seed=0,1")
    assert proc.returncode == 0, proc.stderr
    sweep = _sweep(tmp_path)
    summaries = _summaries(sweep)
    assert [s["seed"] for s in summaries] == [0, 1] and all(s["status"] == "completed" for s in summaries)
    assert "sweep: 2 jobs" in proc.stdout
    # submitit ran each job as a process of its own: one log per job in its folder (.submitit/<job id>)
    assert len(list((sweep / ".submitit").glob("*/*_log.out"))) == 2


def test_optuna_preset_runs_8_trials_and_reports_the_best(tmp_path, capsys):
    _plugin("hydra_optuna_sweeper")
    proc = _nnexp(tmp_path, "hparams_search=mlp_optuna", "trainer.epochs=3", "trainer.progress=none")
    assert proc.returncode == 0, proc.stderr
    sweep = _sweep(tmp_path)
    summaries = _summaries(sweep)
    assert len(summaries) == 8
    # each job returned its best val/loss to the sweeper, which optimized it
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = min(s["best_value"] for s in summaries)
    assert results["best_value"] == pytest.approx(best)
    assert f"(val/loss {best:.4g} at epoch" in proc.stdout  # nnexp names the best job too
    assert report.main([str(sweep)]) == 0
    assert "8 jobs" in capsys.readouterr().out


def test_running_a_finished_sweep_again_runs_nothing_new(run_cli, tmp_path):
    args = ("train", "-m", *QUICK, "trainer.seed=0,1")
    assert run_cli(*args)[0] == 0
    sweep = _sweep(tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")}
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert _sweep(tmp_path) == sweep  # the same folder, no new one
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")} == stamps  # nothing ran again
    assert f"All 2 jobs were already done in {sweep.relative_to(tmp_path)}: nothing new to run." in out
    assert "already done (completed), skipped" in out


def test_running_a_sweep_again_runs_only_the_failed_and_missing_jobs(run_cli, tmp_path):
    args = ("train", "-m", *QUICK, "trainer.seed=0,1,2")
    assert run_cli(*args)[0] == 0
    sweep = _sweep(tmp_path)
    jobs = sorted(sweep.glob("*/summary.json"))
    (jobs[1]).unlink()  # lost: e.g. the machine went down before it finished
    failed = json.loads(jobs[2].read_text())
    jobs[2].write_text(json.dumps({**failed, "status": "failed"}))  # as a crashed job leaves it
    kept = jobs[0].stat().st_mtime_ns
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert jobs[0].stat().st_mtime_ns == kept
    assert [json.loads(p.read_text())["status"] for p in jobs] == ["completed"] * 3
    assert "1 of 3 jobs were already done before this command and were skipped." in out


def test_another_command_or_another_config_is_another_sweep(run_cli, tmp_path):
    assert run_cli("train", "-m", *QUICK, "trainer.seed=0,1")[0] == 0
    assert run_cli("train", "-m", *QUICK, "trainer.seed=0,1,2")[0] == 0
    assert len(list((tmp_path / "outputs" / "multirun").glob("*/*"))) == 2


def test_launcher_benchmark_quick_mode_runs():
    _plugin("hydra_joblib_launcher")
    """The benchmark script must keep working; its timings are not asserted."""
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(repo / "benchmarks" / "sweep_launchers.py"), "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| joblib (hydra/launcher=joblib) |" in proc.stdout


def test_nnexp_sweeper_composes_each_job_once_and_still_checks_the_sweep_first(run_cli, tmp_path, monkeypatch):
    """Hydra's basic sweeper composes every job twice (its check, then the launcher); nnexp's, once."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    real, calls = ConfigLoaderImpl.load_sweep_config, []

    def counting(self, master_config, sweep_overrides):
        calls.append(tuple(sweep_overrides))
        return real(self, master_config, sweep_overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", counting)
    code, _, err = run_cli("train", "-m", *QUICK, "trainer.seed=0,1,2")
    assert code == 0, err
    assert len(calls) == 3 and len(set(calls)) == 3
    assert [s["seed"] for s in _summaries(_sweep(tmp_path))] == [0, 1, 2]

    calls.clear()
    code, _, err = run_cli("train", "-m", *QUICK, "hydra/sweeper=basic", "trainer.seed=3,4")
    assert code == 0 and len(calls) == 4, err  # Hydra's own: twice each (the negative control)

    calls.clear()  # a job that cannot be composed fails the sweep before any job runs, as with Hydra's sweeper
    code, _, err = run_cli("train", "-m", *QUICK, "hydra.sweep.dir=bad", "model=mlp,nosuchmodel")
    assert code != 0 and "nosuchmodel" in err and not list((tmp_path / "bad").glob("*/summary.json")), err
    assert len(calls) == 2  # both jobs composed by the check, none launched


class _CountingLoader:
    def __init__(self) -> None:
        self.calls = 0

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls += 1
        return {"job": list(sweep_overrides), "n": self.calls}


def test_compose_once_hands_each_config_back_once_and_never_pickles_what_it_holds():
    import pickle

    from hydra_plugins.nnexp_sweeper import ComposeOnce

    master, loader = object(), _CountingLoader()
    once = ComposeOnce(loader)
    once.check(master, [["a=1"], ["a=2"]])
    assert once.load_sweep_config(master, ["a=2"]) == {"job": ["a=2"], "n": 2} and loader.calls == 2
    assert once.load_sweep_config(master, ["a=2"]) == {"job": ["a=2"], "n": 3}  # handed back once only
    assert len(pickle.loads(pickle.dumps(once)).held) == 0 and len(once.held) == 1


def _finished_sweep(sweep_dir: Path) -> Path:
    """A sweep folder as `-m regularizer=none,l2,dropout,early_stopping trainer.seed=0,1 trainer.epochs=20`
    leaves it: one summary.json per job."""
    for n, (reg, seed) in enumerate((r, s) for r in ("none", "l2", "dropout", "early_stopping") for s in (0, 1)):
        job = sweep_dir / f"{n}_regularizer={reg},trainer.seed={seed}"
        job.mkdir(parents=True)
        (job / "summary.json").write_text(json.dumps({
            "status": "early_stopped" if reg == "early_stopping" else "completed", "epochs_run": 20,
            "best_epoch": 12 + n, "monitor": "val/loss", "mode": "min", "best_value": 0.1 + n / 100,
            "best": {"train/loss": 0.1, "val/loss": 0.1 + n / 100, "train/acc": 0.9, "val/acc": 0.876},
            "final": {"train/loss": 0.1, "val/loss": 0.2, "train/acc": 0.9, "val/acc": 0.8},
            "overrides": [f"regularizer={reg}", f"trainer.seed={seed}", "trainer.epochs=20"]}))
    return sweep_dir


@pytest.mark.parametrize("width", [80, 100, 200])
def test_the_sweep_table_keeps_jobs_on_one_line_and_names_the_report_command(tmp_path, capsys, terminal, width):
    """Piped, the table used to fold labels inside words (`regularizer=early_st | opping`) and, at 80 columns,
    every label onto two lines; now a job keeps one line where it fits, labels break only between overrides,
    and the commands to run next stay whole on their lines, however long the folder's path."""
    from conftest import box_tables, screen

    from nnexp import sweep_jobs as sweep

    folder = _finished_sweep(tmp_path / ("a-folder-with-a-long-name-" * 3) / "multirun" / "12-00-00")
    sweep.finish(folder, 0.0)
    piped = screen(capsys.readouterr().out)
    terminal(width)
    sweep.finish(folder, 0.0)
    lines = screen(capsys.readouterr().out)
    (expected,), (table,) = box_tables(piped), box_tables(lines)
    assert expected[0] == ["job", "status", "best epoch", "best val/loss", "best val/acc"]
    assert expected[-1] == ["regularizer=early_stopping trainer.seed=1", "early_stopped", "19", "0.1700", "0.876"]
    assert table == expected  # every label, status and number whole
    rows = [line for line in lines if line.startswith("│")]
    assert max(len(line) for line in lines if line[:1] in "┏┃│└") <= width
    assert "│ regularizer=none trainer.seed=0 " in rows[0]  # one line, at 80 columns too
    assert len(rows) == (8 if width >= 100 else 12)  # at 80, the dropout and early_stopping jobs take two
    if width == 200:
        assert lines[0] == "sweep: 8 jobs (trainer.epochs=20)"
        assert lines[2] == "┃ job                                       ┃ status        ┃ best epoch ┃ best val/loss ┃ best val/acc ┃"
    assert lines[-2:] == [f"Compare the runs:  tensorboard --logdir {folder}",
                          f"Seeds pooled, claims checked:  nnexp report {folder}"]
