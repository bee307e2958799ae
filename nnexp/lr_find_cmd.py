"""``nnexp lr-find [overrides]``: the learning-rate range test (nnexp/lr_find.py) from the command line.

The Hydra entry of ``nnexp train`` (nnexp/app.py) composes conf/lr_find.yaml (train.yaml and the ``lr_find``
node) with the same overrides and error handling (a bad override: one line, exit 2) and runs :func:`task`,
which builds the run (nnexp/build.py), runs the test on copies of its model and optimizer, writes the folder
and prints the suggestion as the override to paste. Light at import: torch comes with the task.
"""

from __future__ import annotations

import csv
import io
import logging
import shlex
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from nnexp import lifecycle, rundir, signals
from nnexp.config import check_ranges
from nnexp.context import RunContext
from nnexp.errors import EXIT_FAILED, EXIT_USAGE, ConfigError, NnexpError, WriteError
from nnexp.output import log_note

if TYPE_CHECKING:  # torch: imported when the test starts
    from nnexp.build import Components
    from nnexp.lr_find import Curve

log = logging.getLogger("nnexp")

CSV_COLUMNS = ("step", "lr", "loss", "smoothed")


def main(args: list[str]) -> int:
    """``nnexp lr-find ARGS``: the exit code."""
    if any(a in ("-m", "--multirun") or a.startswith("hydra.mode=") for a in args):
        print("nnexp: error: lr-find runs one range test, not a sweep: drop -m (sweeps are `nnexp train -m ...`)",
              file=sys.stderr)
        return EXIT_USAGE
    from nnexp.app import train  # Hydra; torch only once the test starts

    return train(args, command="lr-find")


def task(cfg: DictConfig) -> None:
    """One range test in the folder Hydra made for it; raises SystemExit with the exit code unless it is 0."""
    from nnexp import app

    ctx = app.context()
    log_file = ctx.run_dir / "lr_find.log"
    made_log = not log_file.exists()

    def forget() -> None:  # nothing was tested: what this command made goes (its log, the folder if empty)
        rundir.close_log(ctx.run_dir)
        if made_log:
            log_file.unlink(missing_ok=True)
        rundir.discard(ctx.run_dir, keep_log=True)

    try:
        check_ranges(cfg)
        _check(cfg, ctx.run_dir)
        with signals.exit_at_once(forget):
            from nnexp.build import build  # torch

            parts = build(cfg, ctx)
        app.save_config(cfg, ctx.run_dir)
    except Exception as exc:  # nothing tested yet: one line, the folder as it was
        code = _one_line(exc, ctx.run_dir)
        forget()
        raise SystemExit(code) from None
    except KeyboardInterrupt:  # Ctrl-C before building (while building, exit_at_once ends the command at once)
        forget()
        raise
    try:
        code = _run(cfg, ctx, parts)
    except Exception as exc:  # a failure while testing or writing (disk full): one line, the traceback in the log
        code = _one_line(exc, ctx.run_dir)
    if code:
        raise SystemExit(code)


def _check(cfg: DictConfig, run_dir: Path) -> None:
    """What the rule table cannot see: keys that must go together, and a folder already used."""
    lf = cfg.lr_find
    if lf.end <= lf.start:
        raise ConfigError(f"lr_find.end={lf.end} must be greater than lr_find.start={lf.start}")
    if cfg.trainer.strategy == "ddp":
        raise ConfigError("trainer.strategy=ddp: lr-find runs in one process; drop it (the suggestion holds for "
                          "the same global batch size)")
    if (run_dir / "lr_find.csv").is_file() or lifecycle.holds_run(run_dir):
        raise ConfigError(f"{run_dir} holds a range test or a run already; choose another hydra.run.dir")


def _one_line(exc: Exception, run_dir: Path) -> int:
    if isinstance(exc, NnexpError):
        print(f"nnexp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    log.info("traceback:\n%s", traceback.format_exc())
    print(f"nnexp: error: {type(exc).__name__}: {exc}{log_note(run_dir)}", file=sys.stderr)
    return EXIT_FAILED


def _run(cfg: DictConfig, ctx: RunContext, parts: Components) -> int:
    from nnexp.lr_find import range_test

    lf = cfg.lr_find
    log.info("range test: lr %g to %g over %d steps on %s", lf.start, lf.end, lf.steps, parts.device)
    with signals.StopSignals() as stop:  # Ctrl-C: the steps so far are written, then exit 130
        curve = range_test(parts, lf.start, lf.end, lf.steps, lf.stop_factor, lf.smoothing, lf.skip_start,
                           stop_requested=stop)
    log.info("stopped after %d steps: %s", len(curve.losses), curve.stopped)
    # a test cut short by Ctrl-C suggests nothing: the range it covered may end before the loss fell at all
    suggested = None if curve.suggested_lr is None or stop() else as_override(curve.suggested_lr)
    if curve.losses:
        _write(ctx.run_dir, curve, suggested, " ".join(ctx.overrides) or "the default run",
               tensorboard=cfg.trainer.tensorboard)
    print(f"Range test: {len(curve.losses)} of {lf.steps} steps, lr {lf.start:g} to {lf.end:g}; "
          f"stopped: {curve.stopped}")
    if suggested is not None:
        print(f"Suggested: optimizer.lr={suggested}   (where the smoothed loss falls fastest)")
        print(f"  {train_command(ctx.overrides, suggested)}")
    if curve.losses:
        folder = _shown(ctx.run_dir)
        print(f"The curve: {folder / 'lr_find.png'} (each step in lr_find.csv)"
              + (f"; tensorboard --logdir {folder}" if cfg.trainer.tensorboard else ""))
    if stop():
        print(f"nnexp: interrupted ({stop.name})" if stop.name != "SIGINT" else "nnexp: interrupted", file=sys.stderr)
        return signals.exit_code(stop.name)
    if suggested is None:
        where = f" between lr {curve.lrs[0]:.3g} and {curve.lrs[-1]:.3g}" if curve.lrs else ""
        print(f"nnexp: error: no suggestion: the smoothed loss did not fall{where} after the first "
              f"{lf.skip_start} steps; widen the range (lr_find.start, lr_find.end) or take more lr_find.steps",
              file=sys.stderr)
        return EXIT_FAILED
    return 0


def _shown(folder: Path) -> Path:
    """The folder as typed from here (relative, under the current folder), else in full."""
    try:
        return Path(folder).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(folder)


def as_override(lr: float) -> str:
    """The lr with two significant digits, as one would type it: 3e-3, 1.5e-4, 0.03, 2."""
    mantissa, exponent = f"{lr:.1e}".split("e")
    if int(exponent) >= -2:
        return f"{float(f'{lr:.2g}'):g}"
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def train_command(overrides: tuple[str, ...] | list[str], lr: str) -> str:
    """``nnexp train`` with the same overrides, less lr-find's own and any lr given, plus the suggestion."""
    kept = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] not in ("optimizer.lr",)
            and not o.lstrip("+~").startswith("lr_find.")]
    return " ".join(["nnexp", "train", *(shlex.quote(o) for o in kept), f"optimizer.lr={lr}"])


def _write(run_dir: Path, curve: Curve, suggested: str | None, title: str, tensorboard: bool) -> None:
    """lr_find.csv, lr_find.png and (``tensorboard``) an event file with the curve and the picture."""
    from nnexp.atomic import atomic_write
    from nnexp.lr_find_plot import draw

    text = io.StringIO()
    rows = csv.writer(text)
    rows.writerow(CSV_COLUMNS)
    rows.writerows(zip(range(1, len(curve.lrs) + 1), curve.lrs, curve.losses, curve.smoothed, strict=True))
    png, pixels = draw(curve, f"nnexp lr-find {title}", suggested)
    for name, data in (("lr_find.csv", text.getvalue().encode()), ("lr_find.png", png)):
        try:
            atomic_write(run_dir / name, data)
        except OSError as exc:
            raise WriteError(run_dir / name, exc) from exc
    if tensorboard:
        _events(run_dir, curve, pixels)


def _events(run_dir: Path, curve: Curve, pixels: Any) -> None:
    from torch.utils.tensorboard import SummaryWriter

    try:
        writer = SummaryWriter(log_dir=str(run_dir))
        for step, (lr, loss, smoothed) in enumerate(zip(curve.lrs, curve.losses, curve.smoothed, strict=True), 1):
            writer.add_scalar("lr_find/loss", loss, step)
            writer.add_scalar("lr_find/smoothed", smoothed, step)
            writer.add_scalar("lr_find/lr", lr, step)
        writer.add_image("lr_find", pixels, 0, dataformats="HWC")
        writer.close()
    except OSError as exc:
        raise WriteError(run_dir, exc, note=" (the TensorBoard event file)") from exc
