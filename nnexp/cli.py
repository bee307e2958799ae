"""The ``nnexp`` command: subcommand dispatch and exit codes.

Keep this module light: ``nnexp --help``, ``nnexp train --help`` and
``nnexp train --cfg job`` must answer without importing torch.
"""

from __future__ import annotations

import sys

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


def train(args: list[str]) -> int:
    """Hand the arguments to Hydra; return the exit code."""
    import hydra

    from nnexp import config

    config.register()
    config.new_run_id()
    started = False
    jobs: list[dict] = []  # one entry per job Hydra runs in this process

    def hydra_task(cfg):  # noqa: ANN001 - Hydra passes a DictConfig
        nonlocal started
        started = True
        held.release()
        from nnexp.run import task  # torch is imported here, only when a run starts

        return task(cfg, jobs)

    held: _HeldStderr
    app = hydra.main(config_path=str(config.config_dir()), config_name="train", version_base="1.3")(hydra_task)
    saved_argv, saved_stderr = sys.argv, sys.stderr
    sys.argv = ["nnexp train", *args]  # Hydra parses sys.argv
    held = _HeldStderr(saved_stderr)  # Hydra's messages wait until we know whether a task started
    sys.stderr = held
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_FAILED)
        # Hydra exits 1 for its own errors (unknown group option or key, bad override
        # syntax, a value of the wrong type), all before any task starts: a usage error.
        if code == 1 and not started:
            held.release(condense=True, args=args)
            return EXIT_USAGE
        return code
    finally:
        held.release()
        sys.argv, sys.stderr = saved_argv, saved_stderr
    if not started:
        return 0
    return _after_sweep(jobs)


def _after_sweep(jobs: list[dict]) -> int:
    """After a multirun: one line per job, the failures named, non-zero if any job failed."""
    sweep = [j for j in jobs if j.get("sweep_dir")]
    if not sweep:
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    labels, common = sweep_labels([j["overrides"] for j in sweep])
    title = f"sweep: {len(sweep)} jobs" + (f" ({' '.join(common)})" if common else "")
    table = Table(title=title, title_justify="left")
    for col in ("job", "status", "best epoch", "best val/loss", "best val/acc"):
        table.add_column(col)
    for j, label in zip(sweep, labels, strict=True):
        s = j.get("summary") or {}
        best = s.get("best") or {}
        table.add_row(
            label, j.get("status", "?"), str(s.get("best_epoch") or "-"),
            f"{best['val/loss']:.4f}" if best.get("val/loss") is not None else "-",
            f"{best['val/acc']:.3f}" if best.get("val/acc") is not None else "-",
        )
    console.print(table)
    failed = [j for j in sweep if j.get("code")]
    for j in failed:
        print(f"nnexp: job failed ({' '.join(j['overrides'])}): {j.get('message', '')}", file=sys.stderr)
    print(f"Compare the runs:  tensorboard --logdir {sweep[0]['sweep_dir']}")
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
