"""The ``nnexp`` command: subcommand dispatch and exit codes, nothing else.

Each subcommand lives in its own module, imported only when it is asked for:
``train`` in nnexp/app.py (Hydra), ``lr-find`` in nnexp/lr_find_cmd.py (the same Hydra
entry), ``report`` in nnexp/report_cmd.py, ``check`` in nnexp/check.py. ``nnexp --help``
imports neither Hydra nor torch.
"""

from __future__ import annotations

import signal
import sys

from nnexp import __version__

EXIT_USAGE = 2  # nnexp/errors.py (not imported before the signal handlers are in place)

USAGE = """\
usage: nnexp <command> [arguments]

Neural-network experiments from the command line: pick a model, dataset,
optimizer and regularizer, train with a plain PyTorch loop, and watch the
train/validation curves in TensorBoard.

commands:
  train     train one configuration, or a sweep with -m (Hydra overrides: key=value)
  lr-find   the learning-rate range test on the run `nnexp train` would make of the same overrides:
            the loss against a growing lr (lr_find.png) and the lr to paste (optimizer.lr=...)
  report    compare runs or sweeps: a table (mean ± std over seeds), claims PASS/FAIL, report.csv and report.png
  check     prove the from-scratch parts (backprop, LSTM, attention, SGD/Adam, perceptron) equal PyTorch

options:
  -h, --help     show this message; `nnexp train --help` lists the config groups
  -V, --version  print the version

examples:
  nnexp train                                    offline demo: overfitting caught by early stopping
  nnexp train dataset=moons 'model.hidden=[16,16]'
  nnexp train -m regularizer=none,l2,dropout,early_stopping trainer.epochs=50
  nnexp lr-find optimizer=sgd                    then train with the optimizer.lr it suggests
  nnexp train experiment=xor && nnexp report outputs/multirun/<date>/<time>_<id>
  nnexp check
  tensorboard --logdir outputs

exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 diverged,
            129 hung up (SIGHUP), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM)
"""

COMMANDS = ("train", "lr-find", "report", "check")


def main(argv: list[str] | None = None) -> None:
    try:
        # first: SIGTERM and SIGHUP while starting end with one line, like Ctrl-C (nnexp/signals.py)
        from nnexp.output import guard_std_streams  # light: no torch, Hydra or rich
        from nnexp.signals import terminate_politely

        with terminate_politely(), guard_std_streams():  # a closed stdout/stderr stops printing, not the run
            _dispatch(argv)
    except KeyboardInterrupt as exc:  # Ctrl-C (or SIGTERM/SIGHUP) while starting: one line, no traceback
        signum = getattr(exc, "signum", signal.SIGINT)
        name = signal.Signals(signum).name
        print("nnexp: interrupted" + ("" if signum == signal.SIGINT else f" ({name})"), file=sys.stderr)
        raise SystemExit(128 + signum) from None
    finally:
        if argv is None:  # the process's own command, not a call from Python code: its work and exit code are settled
            _late_signals_change_nothing()


def _late_signals_change_nothing() -> None:
    """A signal while the interpreter shuts down (threads joined, modules freed) would kill the process by that
    signal after the record was written and the exit code chosen: it is ignored instead, so the exit code is the
    one the command reported (issue 14: a signal after summary.json changes nothing)."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _dispatch(argv: list[str] | None) -> None:
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
    if command == "train" and any(a in ("-h", "--help") for a in rest):
        # the config tree's own words; Hydra, no torch
        from nnexp.train_help import main as help_main

        raise SystemExit(help_main(rest))
    if command == "train":
        from nnexp.app import train  # Hydra; torch only once a run starts

        raise SystemExit(train(rest))
    if command == "lr-find":
        from nnexp.lr_find_cmd import main as lr_find_main  # Hydra; torch only once the test starts

        raise SystemExit(lr_find_main(rest))
    if command == "report":
        from nnexp.report_cmd import main as report_main

        raise SystemExit(report_main(rest))
    if command == "check":
        from nnexp.check import main as check_main

        raise SystemExit(check_main(rest))
    print(f"nnexp: error: unknown command {command!r}; allowed: {', '.join(COMMANDS)} (see nnexp --help)",
          file=sys.stderr)
    raise SystemExit(EXIT_USAGE)
