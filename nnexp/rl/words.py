"""An agent's finished run in sentences (nnexp/words.py says a supervised run's)."""

from __future__ import annotations

from nnexp.checks import verdict
from nnexp.record import RunSummary, Status
from nnexp.words import number, resume_command


def in_words(s: RunSummary) -> list[str]:
    rl = s.rl or {}
    steps = f"{rl.get('env_steps', 0):,} environment steps, {rl.get('episodes', 0):,} episodes"
    best = f"eval/return was best in round {s.best_epoch} ({s.best_value:.4g})" if s.best_epoch else "no evaluation"
    restored = f", weights of round {s.best_epoch} restored" if s.restored_best else ""
    if s.status is Status.EARLY_STOPPED:
        lines = [f"Solved: {s.message}; {best}{restored}."]
    elif s.status is Status.COMPLETED:
        lines = [f"Completed all {s.epochs_run} rounds ({steps}); {best}{restored}."]
    else:
        lines = [f"Run {s.status}: {s.message}."]
    if s.status is Status.INTERRUPTED and s.run_dir:
        lines.append(f"To continue it where it stopped:  {resume_command(s)}")
    threshold = rl.get("threshold")
    if threshold is not None and s.status.trained:
        reached = rl.get("steps_to_threshold")
        lines.append(f"Threshold {threshold:g}: " + (
            f"eval/return first reached it after {reached:,} environment steps ({rl['episodes_to_threshold']:,} "
            f"episodes, {rl['seconds_to_threshold']:.1f} s)." if reached is not None else
            f"eval/return never reached it in {steps}."))
    if s.eval:
        weights = f"the weights of round {s.best_epoch}" if s.restored_best else "the final weights"
        lines.append(f"Final evaluation of {weights} over {int(s.eval['episodes'])} episodes from new starts: "
                     f"return {s.eval['return']:.4g} ± {s.eval['return_std']:.3g} (\"eval\" in summary.json).")
    for c in s.checks:
        lines.append(f"Check {verdict(c['pass'])}: {c['expect']} (here {number(c['left'])} vs {number(c['right'])}).")
    return lines
