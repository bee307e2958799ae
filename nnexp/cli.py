"""The ``nnexp`` command: subcommand dispatch and exit codes.

Keep this module light: ``nnexp --help``, ``nnexp train --help`` and
``nnexp train --cfg job`` must answer without importing torch.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback

from nnexp import __version__
from nnexp.errors import EXIT_FAILED, EXIT_USAGE

USAGE = """\
usage: nnexp <command> [arguments]

Neural-network experiments from the command line: pick a model, dataset,
optimizer and regularizer, train with a plain PyTorch loop, and watch the
train/validation curves in TensorBoard.

commands:
  train     train one configuration, or a sweep with -m (Hydra overrides: key=value)
  report    compare runs or sweeps: a table (mean ± std over seeds), claims PASS/FAIL, report.csv and report.png
  check     prove the from-scratch parts (backprop, LSTM, attention, SGD/Adam, perceptron) equal PyTorch

options:
  -h, --help     show this message; `nnexp train --help` lists the config groups
  -V, --version  print the version

examples:
  nnexp train                                    offline demo: overfitting caught by early stopping
  nnexp train dataset=moons model.hidden=[16,16]
  nnexp train -m regularizer=none,l2,dropout,early_stopping trainer.epochs=50
  nnexp train experiment=xor && nnexp report outputs/multirun/<date>/<time>_<id>
  nnexp check
  tensorboard --logdir outputs

exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 diverged,
            130 interrupted (Ctrl-C), 143 terminated (SIGTERM)
"""

COMMANDS = ("train", "report", "check")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        sys.stderr.write(USAGE)
        raise SystemExit(EXIT_USAGE)
    command, rest = args[0], args[1:]
    if command in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        raise SystemExit(0)
    if command in ("-V", "--version"):
        print(f"nnexp {__version__}")
        raise SystemExit(0)
    if command == "train":
        raise SystemExit(train(rest))
    if command == "report":
        from nnexp.report import main as report_main

        raise SystemExit(report_main(rest))
    if command == "check":
        from nnexp.check import main as check_main

        raise SystemExit(check_main(rest))
    print(f"nnexp: error: unknown command {command!r}; allowed: {', '.join(COMMANDS)} (see nnexp --help)",
          file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


# What Hydra's task function shares with train(): module-level, so that launchers that run jobs in
# other processes (joblib, submitit) can pickle the task by reference. In those processes the task
# runs with this state's defaults; train() then reads the jobs' outcomes from their summary.json.
SWEEP_RECORD = "nnexp_sweep.json"  # in each sweep folder: the command's overrides
_STATE: dict = {"started": False, "held": None, "jobs": [], "sweep_dir": None}


def _hydra_task(cfg):  # noqa: ANN001, ANN202 - Hydra passes a DictConfig
    _STATE["started"] = True
    if _STATE["held"] is not None:
        _STATE["held"].release()
    from nnexp.run import task  # torch is imported here, only when a run starts

    return task(cfg, _STATE["jobs"])


def train(args: list[str]) -> int:
    """Hand the arguments to Hydra; return the exit code."""
    import hydra

    from nnexp import config

    config.register()
    config.new_run_id()
    _STATE.update(started=False, jobs=[], sweep_dir=None, started_at=time.time())
    scratch = None
    if int(os.environ.get("RANK", "0")) > 0 and "WORLD_SIZE" in os.environ:
        # a DDP rank other than 0 (torchrun): rank 0 owns the run folder, this one writes nowhere
        import tempfile

        scratch = tempfile.mkdtemp(prefix=f"nnexp-rank{os.environ['RANK']}-")
        args = [*args, f"hydra.run.dir={scratch}", "hydra.output_subdir=null"]
    app = hydra.main(config_path=str(config.config_dir()), config_name="train", version_base="1.3")(_hydra_task)
    saved_argv, saved_stderr = sys.argv, sys.stderr
    sys.argv = ["nnexp train", *args]  # Hydra parses sys.argv
    held = _HeldStderr(saved_stderr)  # Hydra's messages wait until we know whether a task started
    _STATE["held"] = held
    sys.stderr = held
    sweep_dir = None
    try:
        app()
        sweep_dir = _sweep_dir()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_FAILED)
        # Hydra exits 1 for its own errors (unknown group option or key, bad override
        # syntax, a value of the wrong type), all before any task starts: a usage error.
        if code == 1 and not _STATE["started"] and _sweep_dir() is None:
            held.release(condense=True, args=args)
            return EXIT_USAGE
        return code
    finally:
        held.release()
        _STATE["held"] = None
        sys.argv, sys.stderr = saved_argv, saved_stderr
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    if sweep_dir is None:
        return 0
    return _after_sweep(sweep_dir, _STATE["jobs"])


class SweepWatcher(Callback):
    """A Hydra callback (``hydra.callbacks`` in conf/train.yaml): records the sweep folder in this process,
    where Hydra starts a multirun, even when a launcher runs the jobs elsewhere."""

    def on_multirun_start(self, config, **kwargs) -> None:  # noqa: ANN001 - Hydra passes a DictConfig
        from omegaconf import read_write

        hydra_overrides = [str(o) for o in config.hydra.overrides.hydra]
        chosen = any(o.startswith("hydra.sweep.dir=") for o in hydra_overrides)
        before = None if chosen else _same_sweep_before(config)
        if before is not None:
            # continue there: the jobs already done are skipped (nnexp/run.py task). The override also
            # reaches launchers that compose each job's config again in another process.
            with read_write(config):
                config.hydra.sweep.dir = str(before)
                config.hydra.overrides.hydra.append(f"hydra.sweep.dir={before}")
            print(f"nnexp: this sweep ran before in {before}: continuing there, jobs already done are skipped")
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # the command that started it, found again when the same command runs again (any sweeper)
        record = {"task": [str(o) for o in config.hydra.overrides.task]}
        (sweep_dir / SWEEP_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        _STATE["sweep_dir"] = sweep_dir


def _same_sweep_before(config) -> Path | None:  # noqa: ANN001 - the sweep's DictConfig
    """The newest earlier sweep folder (``<multirun>/<date>/<time>_<id>``) started by the same command."""
    task = sorted(str(o) for o in config.hydra.overrides.task)
    root = Path(str(config.hydra.sweep.dir)).parent.parent
    candidates = sorted(root.glob(f"*/*/{SWEEP_RECORD}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            before = json.loads(path.read_text())["task"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if sorted(str(o) for o in before) == task:
            return path.parent
    return None


def _sweep_dir() -> Path | None:
    """The sweep folder of the multirun Hydra just ran, or None after a single run or an error."""
    path = _STATE.get("sweep_dir")
    return path if path is not None and path.is_dir() else None


def _sweep_jobs(sweep_dir: Path, in_process: list[dict]) -> list[dict]:
    """Every job of the sweep, read from the job folders' summary.json (launchers may run jobs in other
    processes), in job-number order; what this process saw of a job (its error message) is added."""
    import json

    seen = {str(Path(j["run_dir"]).resolve()): j for j in in_process if j.get("run_dir")}
    jobs = []
    for folder in sorted((d for d in sweep_dir.iterdir() if d.is_dir() and d.name.split("_", 1)[0].isdigit()),
                         key=lambda d: int(d.name.split("_", 1)[0])):
        mine = seen.get(str(folder.resolve()), {})
        try:
            summary = json.loads((folder / "summary.json").read_text())
        except (OSError, ValueError):
            summary = {}
        overrides = summary.get("overrides") or mine.get("overrides") or _overrides_of(folder)
        status = summary.get("status") or mine.get("status") or "no summary"
        message = mine.get("message") or summary.get("error") or summary.get("message") or (
            "" if summary else f"no summary.json in {folder}: the job did not finish")
        # a summary older than this command: the job was done by an earlier run of the same sweep
        before = bool(summary) and (folder / "summary.json").stat().st_mtime < _STATE.get("started_at", 0)
        jobs.append({"overrides": overrides, "summary": summary, "status": status, "message": message,
                     "before": before,
                     "failed": status in ("failed", "config_error", "diverged", "no summary", "interrupted")})
    return jobs


def _overrides_of(folder: Path) -> list[str]:
    try:
        import yaml

        return list(yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or [])
    except (OSError, ValueError, ImportError):
        return [folder.name]


def _after_sweep(sweep_dir: Path, in_process: list[dict]) -> int:
    """After a multirun: one line per job, the failures named, non-zero if any job failed."""
    sweep = _sweep_jobs(sweep_dir, in_process)
    if not sweep:
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    labels, common = sweep_labels([j["overrides"] for j in sweep])
    title = f"sweep: {len(sweep)} jobs" + (f" ({' '.join(common)})" if common else "")
    table = Table(title=title, title_justify="left")
    for col in ("job", "status", "best epoch", "best val/loss", "best val/acc"):
        table.add_column(col, overflow="fold")
    for j, label in zip(sweep, labels, strict=True):
        s = j["summary"]
        best = s.get("best") or {}
        table.add_row(
            label, j["status"] + (" (before)" if j["before"] else ""), str(s.get("best_epoch") or "-"),
            f"{best['val/loss']:.4f}" if best.get("val/loss") is not None else "-",
            f"{best['val/acc']:.3f}" if best.get("val/acc") is not None else "-",
        )
    console.print(table)
    failed = [j for j in sweep if j["failed"]]
    for j in failed:
        print(f"nnexp: job failed ({' '.join(j['overrides'])}): {j['message']}", file=sys.stderr)
    ranked = [(j["summary"]["best_value"], label, j["summary"]) for j, label in zip(sweep, labels, strict=True)
              if not j["failed"] and isinstance(j["summary"].get("best_value"), (int, float))]
    if len(ranked) > 1:
        mode = ranked[0][2].get("mode", "min")
        value, label, best = (max if mode == "max" else min)(ranked, key=lambda r: r[0])
        print(f"Best job: {label}  ({best.get('monitor', 'val/loss')} {value:.4g} at epoch {best.get('best_epoch')})")
    before = sum(j["before"] for j in sweep)
    if before == len(sweep):
        print(f"All {len(sweep)} jobs were already done in {sweep_dir}: nothing new to run.")
    elif before:
        print(f"{before} of {len(sweep)} jobs were already done before this command and were skipped.")
    print(f"Compare the runs:  tensorboard --logdir {sweep_dir}")
    return EXIT_FAILED if failed else 0


def sweep_labels(overrides: list[list[str]]) -> tuple[list[str], list[str]]:
    """Name each job by the overrides that differ between jobs; return the shared ones apart."""
    shared = [o for o in overrides[0] if all(o in job for job in overrides[1:])] if overrides else []
    # '+group=option' (an addition to the defaults) reads as 'group=option' in a label
    labels = [" ".join(o.lstrip("+") for o in job if o not in shared) or "(defaults)" for job in overrides]
    return labels, shared


# Lines of Hydra's error reports that name no key or value: the search path, the
# structured-config internals and the hint about HYDRA_FULL_ERROR.
_NOISE = ("Set the environment variable HYDRA_FULL_ERROR", "reference_type=", "object_type=", "full_key:",
          "Config search path:", "provider=", "See https://hydra.cc")


class _HeldStderr:
    """Holds what is written to stderr until ``release``; then passes everything straight through."""

    def __init__(self, target) -> None:  # noqa: ANN001 - a text stream
        self.target, self.held, self.holding = target, [], True

    def write(self, text: str) -> int:
        if self.holding:
            self.held.append(text)
        else:
            self.target.write(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def __getattr__(self, name: str):  # noqa: ANN204 - fileno, encoding, ...: the real stream's
        return getattr(self.target, name)

    def release(self, condense: bool = False, args: list[str] = ()) -> None:
        if not self.holding:
            return
        self.holding = False
        text = "".join(self.held)
        self.held.clear()
        if condense:
            text = condense_hydra_error(text, args)
        self.target.write(text)
        self.target.flush()


def condense_hydra_error(text: str, args: list[str] = ()) -> str:
    """Keep the lines of a Hydra error that say what is wrong; join an options list onto one line.

    Where Hydra's message does not quote the offending override, the overrides
    given are named first; a traceback (Hydra prints one for a few parse
    errors) shrinks to its final line.
    """
    if "Traceback (most recent call last)" in text:
        text = [ln for ln in text.splitlines() if ln.strip() and not ln[0].isspace()
                and not ln.startswith(("Traceback", "Set the environment"))][-1]
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or any(stripped.startswith(n) for n in _NOISE):
            continue
        if line.startswith("\t") and lines and lines[-1].startswith("Available options"):
            lines[-1] += (" " if lines[-1].endswith(":") else ", ") + stripped
            continue
        lines.append(line.rstrip())
    named = [a for a in args if a and any(a.partition("=")[0] and a.partition("=")[0] in ln for ln in lines)]
    if args and not named:
        lines.insert(0, f"nnexp: error: cannot use the overrides: {' '.join(args)}")
    return "\n".join(lines) + "\n" if lines else ""
