"""A finished run told in plain sentences, for the terminal, train.log and TensorBoard's TEXT tab."""

from __future__ import annotations

import shlex
from typing import Any

from nnexp.checks import parse, verdict
from nnexp.record import RunSummary, Status


def number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def in_words(s: RunSummary, patience: int) -> list[str]:
    """``patience``: the early-stopping patience the run had (the first sentence names it)."""
    b, e, mon = s.best_epoch, s.epochs_run, s.monitor
    if s.status is Status.EARLY_STOPPED:
        lines = [f"Early stopping: {mon} was best at epoch {b} ({s.best_value:.4f}) and did not improve for "
                 f"{patience} epochs, so the run stopped at epoch {e}"
                 + (f" and restored the weights of epoch {b}." if s.restored_best else ".")]
    elif s.status is Status.COMPLETED:
        lines = [f"Completed all {e} epochs; {mon} was best at epoch {b} ({s.best_value:.4f})"
                 + (f", weights of epoch {b} restored." if s.restored_best else ".")]
    else:
        lines = [f"Run {s.status}: {s.message}."]
    if s.status is Status.INTERRUPTED and s.run_dir:
        lines.append(f"To continue it where it stopped:  {resume_command(s)}")
    for label, m, ep in (("best", s.best, b), ("final", s.final, e)):
        if m:
            acc = (f"; train/acc {m['train/acc']:.3f} vs val/acc {m['val/acc']:.3f}"
                   if m.get("train/acc") is not None else "")
            lines.append(f"At the {label} epoch ({ep}): train/loss {m['train/loss']:.4f} vs val/loss "
                         f"{m['val/loss']:.4f}, generalization gap {s.gap[label]:.4f}{acc}.")
    if s.test:
        acc = f", test/acc {s.test['test/acc']:.3f}" if s.test.get("test/acc") is not None else ""
        weights = f"the restored weights of epoch {b}" if s.restored_best else f"the weights of epoch {e}"
        lines.append(f"Held-out test set with {weights}: test/loss {s.test['test/loss']:.4f}{acc}.")
    if s.eval:
        lines.append("In the environment (eval/* in TensorBoard, \"eval\" in summary.json): "
                     + ", ".join(f"{k} {number(v)}" for k, v in s.eval.items()) + ".")
    d = s.diagnosis or {}
    lines.append(f"Diagnosis: {d.get('label')} ({d.get('reason')}). Suggestion: {d.get('suggestion')}.")
    for c in s.checks:
        lines.append(f"Check {verdict(c['pass'])}: {c['expect']} (here {number(c['left'])} vs {number(c['right'])}).")
    if any(parse(text).across_jobs for text in s.expect):
        lines.append("Claims that compare the jobs of a sweep are checked by: nnexp report <sweep dir>.")
    return lines


def resume_command(s: RunSummary) -> str:
    """The command that continues a stopped run exactly where it stopped: its own overrides (the same config)
    and ``trainer.resume=<its folder>``, each word quoted where bash or zsh would read it otherwise."""
    keep = [o for o in s.overrides if o.split("=", 1)[0].lstrip("+~") not in ("trainer.resume", "hydra.run.dir")]
    return shlex.join(["nnexp", "train", *keep, f"trainer.resume={s.run_dir}"])
