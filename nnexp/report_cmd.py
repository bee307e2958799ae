"""``nnexp report PATH ...``: the jobs of a sweep side by side, seeds pooled, claims checked.

Jobs whose overrides are equal except ``trainer.seed`` form one configuration; each configuration gets one row
(mean ± std across seeds), failed jobs get a table of their own, and the ``expect`` claims of the jobs are
checked per seed. A job whose summary.json or metrics.csv cannot be read (junk, binary bytes, cut short) is
damaged: left out of all of it and listed apart, one line naming the file and why; the report of the other jobs
stands (exit 0). ``report.csv``, ``report.png`` (each configuration's mean curves, shaded min..max over seeds)
and, unless it is a run's own folder, ``_mean/`` (the same as one TensorBoard run per configuration:
nnexp/report_tensorboard.py) go into the first PATH. From Python, ``nnexp.report(path)`` (nnexp/api.py).
"""

from __future__ import annotations

import csv
import math
import os
import shlex
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from rich.cells import cell_len
from rich.text import Text

from nnexp import record
from nnexp.checks import check_sweep, labels_of, parse, split_override, value_at, verdict
from nnexp.fingerprint import DISPLAY_KEYS
from nnexp.record import Outcome, Status
from nnexp.report_plot import as_number as _num
from nnexp.report_plot import read_metrics, write_plot
from nnexp.report_table import print_configurations, print_failed, table
from nnexp.report_tensorboard import MARKER, MEAN_DIR, foreign, write_mean_runs
from nnexp.sweep_jobs import labels as sweep_labels
from nnexp.terminal import stdout_console

USAGE = """\
usage: nnexp report PATH [PATH ...]

Compare the jobs of one or more sweeps (or single runs): one row per configuration,
seeds pooled as mean ± std, failed jobs listed, the `expect` claims checked per seed.
PATH is a run directory or a sweep directory; every summary.json below it is read.
A job whose summary.json or metrics.csv cannot be read is listed as damaged and left out.
Writes report.csv, report.png and (unless PATH is a run directory) _mean/ into the first
PATH: _mean/<configuration> is one TensorBoard run per configuration, the mean, min and max
over its seeds of every per-epoch curve (replaced at each report; tensorboard --logdir PATH).

example:
  nnexp train -m regularizer=none,l2 trainer.seed=0,1,2
  nnexp report outputs/multirun/<date>/<time>_<id>
"""

# overrides that do not make a different configuration: the seed, the claims, and keys that change only
# how a run looks
_NOT_CONFIG = DISPLAY_KEYS | {"trainer.seed", "expect"}
_CSV_COLUMNS = ("label", "n", "monitor", "best_mean", "best_std", "best_epoch_mean", "final_mean", "final_std",
                "gap_final_mean",
                "gap_final_std", "val_acc_mean", "val_acc_std", "seconds_per_epoch_mean", "seconds_per_epoch_std",
                "status", "diagnosis", "error")
_RL_CSV_COLUMNS = ("eval_return_mean", "eval_return_std", "reached_threshold", "steps_to_threshold_mean",
                   "steps_to_threshold_std", "seconds_to_threshold_mean", "seconds_to_threshold_std",
                   "env_steps_mean", "env_steps_std")
Stat = tuple[float | None, float | None]  # mean, std (std None for one value)


@dataclass
class Config:
    overrides: list[str]
    done: list[dict[str, Any]] = field(default_factory=list)  # summaries of jobs that ran
    failed: list[dict[str, Any]] = field(default_factory=list)
    label: str = ""


def _stat(values: list[float | None]) -> Stat:
    found = [v for v in values if v is not None]
    if not found:
        return None, None
    if not all(math.isfinite(v) for v in found):  # a diverged seed: say so rather than hide it
        return math.nan, None
    return mean(found), (stdev(found) if len(found) > 1 else None)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if x == 0 or not math.isfinite(x) or abs(x) >= 0.01 else f"{x:.2g}"


def _plain(value: Any) -> str:
    """20 rather than 20.000 (epochs); other numbers as _fmt writes them."""
    x = _num(value)
    return str(int(x)) if x is not None and x.is_integer() else _fmt(x)


def _epoch(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.1f}".removesuffix(".0")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _pm(stat: Stat) -> str:
    """``0.471 ± 0.012``: mean and std with the same decimals, enough for the larger of the two."""
    m, s = stat
    if m is None or s is None or not (math.isfinite(m) and math.isfinite(s)):
        return _fmt(m) if s is None else f"{_fmt(m)} ± {_fmt(s)}"
    scale = max(abs(m), s)
    digits = 3 if scale == 0 or scale >= 0.01 else 1 - math.floor(math.log10(scale))
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def find_summaries(path: Path) -> list[Path]:
    """Every ``summary.json`` at or below ``path``, readable or not: a dangling link or a folder of that name is
    a damaged job to list, never one to leave out unsaid (pathlib's glob skips both)."""
    if not path.is_dir():
        return [path] if path.name == "summary.json" and (path.exists() or path.is_symlink()) else []
    found = []
    for folder, subdirs, files in os.walk(path):
        if "summary.json" in files or "summary.json" in subdirs:
            found.append(Path(folder) / "summary.json")
        subdirs[:] = [d for d in subdirs if d != "summary.json"]
    return sorted(found)


@dataclass
class Damaged:
    """A job left out of the report: the file of it that cannot be read, and why."""
    file: Path
    reason: str


def load_job(path: Path) -> dict[str, Any] | Damaged:
    """A job's summary.json as read by nnexp/record.py (any version), as its JSON object, with its metrics.csv
    (``_metrics``, for the plot) when it has a result; Damaged when either file cannot be read."""
    summary = record.read(path)
    if summary is None:  # a link to nothing, or gone since the search
        return Damaged(path, f"a link to {os.readlink(path)}, which does not exist" if path.is_symlink()
                       else "no longer there")
    if summary.status is Status.FAILED and (summary.error or "").startswith(record.UNREADABLE):
        return Damaged(path, summary.error.removeprefix(f"{record.UNREADABLE}: "))
    job = summary.to_dict()
    job["_dir"], job["_metrics"] = path.parent, None
    metrics = path.parent / "metrics.csv"
    if _finished(job) and (metrics.exists() or metrics.is_symlink()):
        try:
            job["_metrics"] = read_metrics(metrics)
        except ValueError as exc:
            return Damaged(metrics, str(exc))
    return job


def _finished(job: dict[str, Any]) -> bool:
    """Has a result to pool (completed, early stopped, diverged); failed and interrupted jobs are listed apart."""
    return Status.of(job.get("status")).outcome is Outcome.FINISHED


def group(jobs: list[dict[str, Any]]) -> tuple[list[Config], list[str]]:
    """Configurations (first-seen order, labelled by the overrides that differ) and the shared overrides."""
    configs: dict[tuple[str, ...], Config] = {}
    for job in jobs:
        own = [o for o in job.get("overrides") or [] if split_override(o)[0] not in _NOT_CONFIG and not o.startswith("hydra.")]
        config = configs.setdefault(tuple(sorted(own)), Config(own))
        (config.done if _finished(job) else config.failed).append(job)
    result = list(configs.values())
    if len(result) == 1:  # nothing differs: name the configuration by all of its overrides
        result[0].label = " ".join(o.lstrip("+") for o in result[0].overrides) or "(defaults)"
        return result, []
    labels, shared = sweep_labels([c.overrides for c in result])
    for config, label in zip(result, labels, strict=True):
        config.label = label
    return result, shared


def _most_common(values: list[Any], default: Any) -> Any:
    counts = Counter(v for v in values if v is not None)
    return counts.most_common(1)[0][0] if counts else default


def summarize(config: Config, monitor: str) -> dict[str, Any]:
    """One row: the configuration's numbers pooled over its seeds."""
    jobs = config.done
    statuses = Counter(j.get("status", "?") for j in jobs + config.failed)
    # labels are words ("good fit"); records from before were identifiers ("good_fit"): pooled as the same
    diagnoses = Counter(str((j.get("diagnosis") or {}).get("label", "?")).replace("_", " ") for j in jobs)
    diagnosis = "-"
    if diagnoses:
        label, count = diagnoses.most_common(1)[0]
        diagnosis = label if count == len(jobs) else f"{label} ({count}/{len(jobs)})"
    return {
        "label": config.label, "n": len(jobs), "monitor": monitor,
        "best": _stat([_num(value_at(j, f"best.{monitor}")) for j in jobs]),
        "best_epoch": _stat([_num(j.get("best_epoch")) for j in jobs])[0],
        "final": _stat([_num(value_at(j, f"final.{monitor}")) for j in jobs]),
        "gap": _stat([_num(value_at(j, "gap.final")) for j in jobs]),
        "val_acc": _stat([_num(value_at(j, "final.val/acc")) for j in jobs]),
        "seconds": _stat([_num(j.get("seconds_per_epoch")) for j in jobs]),
        "status": ", ".join(f"{s} x{n}" for s, n in statuses.most_common()),
        "diagnosis": diagnosis,
        # agents (nnexp/rl/): the final evaluation, and how long the seeds that reached the threshold took
        "eval_return": _stat([_num(value_at(j, "eval.return")) for j in jobs]),
        "reached": sum(_num(value_at(j, "rl.steps_to_threshold")) is not None for j in jobs),
        "steps_to_threshold": _stat([_num(value_at(j, "rl.steps_to_threshold")) for j in jobs]),
        "seconds_to_threshold": _stat([_num(value_at(j, "rl.seconds_to_threshold")) for j in jobs]),
        "env_steps": _stat([_num(value_at(j, "rl.env_steps")) for j in jobs]),
    }


def _sort_key(row: dict[str, Any], mode: str) -> tuple[bool, float]:
    m = row["best"][0]
    missing = m is None or math.isnan(m)  # last
    return missing, 0.0 if missing else -m if mode == "max" else m


def check_claims(jobs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(claim, PASS/FAIL/N/A, per-seed detail) for the union of the jobs' ``expect`` lists."""
    rows = []
    for text in dict.fromkeys(e for j in jobs for e in j.get("expect") or []):
        try:
            parse(text)
        except ValueError as exc:
            rows.append((text, "N/A", f"not a claim: {exc}"))
            continue
        # a claim is checked on the jobs that carry it: a second sweep given to the same report does not dilute it
        (r,) = check_sweep([text], [j for j in jobs if text in (j.get("expect") or [])])
        details = []
        for seed, ok in r["per_seed"].items():
            sides = (r["values"] or {}).get(seed)
            numbers = f" ({_plain(sides[0])} vs {_plain(sides[1])})" if sides else ""
            details.append(f"{f'seed {seed}' if seed else 'all'} {verdict(ok)}{numbers}")
        rows.append((r["expect"], verdict(r["pass"]), "\n".join(details) or "no job it applies to"))
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], failed: list[tuple[str, str, str, str]],
              agents: bool = False) -> None:
    """One row per configuration; agents' runs (``agents``) add the final evaluation and the threshold's numbers."""
    extra = _RL_CSV_COLUMNS if agents else ()
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(_CSV_COLUMNS + extra)
        for r in rows:
            more = [*r["eval_return"], r["reached"], *r["steps_to_threshold"], *r["seconds_to_threshold"],
                    *r["env_steps"]] if agents else []
            out.writerow([r["label"], r["n"], r["monitor"], *r["best"], r["best_epoch"], *r["final"], *r["gap"],
                          *r["val_acc"], *r["seconds"], r["status"], r["diagnosis"], "", *more])
        for label, seed, status, error in failed:
            out.writerow([f"{label} trainer.seed={seed}" if seed else label, 1, *[""] * 12, status, "", error,
                          *[""] * len(extra)])


def _summaries(args: list[str]) -> tuple[list[Path], list[Path]] | int:
    """The PATHs given and every summary.json below them; an exit code for bad arguments."""
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(USAGE)
        return 0
    unknown = [a for a in args if a.startswith("-")]
    if not args or unknown:
        what = f"unknown option {unknown[0]}" if unknown else "no PATH given"
        sys.stderr.write(f"nnexp report: error: {what}\n{USAGE}")
        return 2
    paths, found = [Path(a) for a in args], {}
    for path in paths:
        summaries = find_summaries(path)
        if not summaries:
            why = "no summary.json below it (a run or sweep directory)" if path.exists() else "no such directory"
            print(f"nnexp report: error: {path}: {why}", file=sys.stderr)
            return 2
        found.update({s.resolve(): s for s in summaries})
    return paths, list(found.values())


def main(args: list[str]) -> int:
    given = _summaries(args)
    if isinstance(given, int):
        return given
    paths, found = given
    loaded = [load_job(p) for p in found]
    damaged = [j for j in loaded if isinstance(j, Damaged)]
    jobs = [j for j in loaded if not isinstance(j, Damaged)]
    if not jobs:
        _print_damaged(damaged)
        print(f"nnexp report: error: every job below {paths[0]} is damaged; nothing to report", file=sys.stderr)
        return 1
    configs, shared = group(jobs)
    done = [j for c in configs for j in c.done]
    monitor = _most_common([j.get("monitor") for j in done], "val/loss")
    mode = _most_common([j.get("mode") for j in done if j.get("monitor") == monitor], "min")
    rows = sorted((summarize(c, monitor) for c in configs if c.done), key=lambda r: _sort_key(r, mode))
    order = {r["label"]: i for i, r in enumerate(rows)}
    configs.sort(key=lambda c: order.get(c.label, len(order)))
    failed = [(c.label, labels_of(j)["trainer.seed"], j["status"], j.get("error") or j.get("message") or "")
              for c in configs for j in c.failed]
    claims = check_claims(done)
    title = f"nnexp report: {_count(len(jobs), 'job')}, {_count(len(rows), 'configuration')}" + (
        f" (shared: {' '.join(shared)})" if shared else "") + (f"; {_count(len(damaged), 'damaged job')} left out"
                                                                if damaged else "")
    _print(title, rows, failed, claims, monitor, mode, agents=_agents(done))
    _print_damaged(damaged)
    if paths[0].is_dir():
        csv_path, png_path = paths[0] / "report.csv", paths[0] / "report.png"
        # the averaged runs: not inside a run's own folder, where they would be that run again in TensorBoard
        mean_dir = None if (paths[0] / record.FILE).exists() else paths[0] / MEAN_DIR
        if mean_dir is not None and foreign(mean_dir):  # replaced: only the folder a report wrote
            print(f"nnexp report: error: {mean_dir} is not the folder of averaged runs nnexp report writes (no "
                  f"{MARKER} in it); move it away, or report into another folder", file=sys.stderr)
            return 2
        failed += [(str(d.file.parent), "", "damaged", f"{d.file.name}: {d.reason}") for d in damaged]
        try:
            write_csv(csv_path, rows, failed, agents=_agents(done))
            plotted = write_plot(png_path, configs, rows, title)
            averaged = write_mean_runs(mean_dir, configs) if mean_dir is not None else 0
        except OSError as exc:
            print(f"nnexp report: error: cannot write into {paths[0]}: {exc}", file=sys.stderr)
            return 1
        print(f"Wrote {csv_path}" + (f" and {png_path}" if plotted else " (no metrics.csv to plot)"))
        if averaged:
            _print_averaged(averaged, paths[0])
    if claims:
        print(f"{sum(v == 'PASS' for _, v, _ in claims)} of {_count(len(claims), 'claim')} PASS")
    return 0


def _print_averaged(runs: int, folder: Path) -> None:
    """What _mean holds and the command that shows it: on one line where it fits, else the command on a line
    of its own; a command to copy is never wrapped."""
    sentence = f"Seeds averaged into {_count(runs, 'TensorBoard run')} ({MEAN_DIR}/: mean, min, max per epoch):"
    command = f"tensorboard --logdir {shlex.quote(str(folder))}"
    if cell_len(f"{sentence}  {command}") <= stdout_console().width:
        print(f"{sentence}  {command}")
    else:
        print(f"{sentence}\n  {command}")


def _print_damaged(damaged: list[Damaged]) -> None:
    """One line per damaged job, naming the file: apart from the tables, so a long path is never folded."""
    if damaged:
        print(f"damaged jobs: {len(damaged)} (left out of the table, report.png and the claims)")
        for d in damaged:
            print(f"  {d.file}: {d.reason}")


def _agents(jobs: list[dict[str, Any]]) -> bool:
    """Runs of agents learning from reward (nnexp/rl/): their table has columns of its own."""
    return bool(jobs) and all(j.get("rl") for j in jobs)


def _reached(r: dict[str, Any], key: str) -> str:
    """Mean ± std over the seeds that reached the threshold, and how many did when not all."""
    if not r["reached"]:
        return "never"
    shown = _pm(r[key]) if key == "seconds_to_threshold" else _pm_int(r[key])
    return shown if r["reached"] == r["n"] else f"{shown} ({r['reached']}/{r['n']})"


def _pm_int(stat: Stat) -> str:
    m, s = stat
    return "-" if m is None else f"{m:,.0f}" + ("" if s is None else f" ± {s:,.0f}")


def _print(title: str, rows: list[dict[str, Any]], failed: list[tuple[str, str, str, str]],
           claims: list[tuple[str, str, str]], monitor: str, mode: str, agents: bool = False) -> None:
    console = stdout_console()  # a terminal's width; piped or captured, wide: one row per line in a log
    order = f"sorted by best {monitor}, {'highest' if mode == 'max' else 'lowest'} first"
    if agents:
        print_configurations(
            console, title, ("configuration", "n", f"best {monitor}", "best round", "final evaluation",
                             "env steps to threshold", "s to threshold", "env steps", "status"),
            [(r["label"], str(r["n"]), _pm(r["best"]), _epoch(r["best_epoch"]), _pm(r["eval_return"]),
              _reached(r, "steps_to_threshold"), _reached(r, "seconds_to_threshold"), _pm_int(r["env_steps"]),
              r["status"]) for r in rows],
            order=order, notes="mean ± std over seeds; final evaluation: the return of the policy each run ends "
                               "with over its final_eval_episodes (\"eval\" in summary.json); to threshold: "
                               "over the seeds that reached it")
    else:
        print_configurations(
            console, title, ("configuration", "n", f"best {monitor}", "best epoch", f"final {monitor}", "gap (final)",
                             "val/acc (final)", "s/epoch", "status", "diagnosis"),
            [(r["label"], str(r["n"]), _pm(r["best"]), _epoch(r["best_epoch"]), _pm(r["final"]), _pm(r["gap"]),
              _pm(r["val_acc"]), _pm(r["seconds"]), r["status"], r["diagnosis"]) for r in rows],
            order=order, notes="mean ± std over seeds; gap = val/loss - train/loss")
    if failed:
        what = "failed" if all(f[2] == Status.FAILED for f in failed) else "failed or unfinished"
        print_failed(console, f"{what} jobs: {len(failed)}",
                     [(label, seed or "-", status, error) for label, seed, status, error in failed])
    if claims:
        colour = {"PASS": "green", "FAIL": "bold red", "N/A": "yellow"}
        console.print(table("claims (expect), checked per seed on the mean of the jobs each side selects",
                            ("claim", "result", "per seed"), [(c, Text(v, style=colour[v]), d) for c, v, d in claims]))

