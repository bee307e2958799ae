"""Two git revisions of nnexp on the same benchmark cases, in one run: did a change make training slower?

    python benchmarks/revisions.py BASE                     # BASE against HEAD, cases B2 and B3
    python benchmarks/revisions.py BASE NEW --only B2 --rounds 5
    python benchmarks/revisions.py HEAD --quick             # tiny: checks the script, writes nothing

Each revision is checked out into a temporary git worktree, and its own
``benchmarks/run.py --only CASES`` runs there (its nnexp on the path, its hand
loop as the reference), the revisions alternating over ``--rounds`` rounds so a
change in the machine's load falls on both. For every row of the cases it
reports the median over the rounds of nnexp's time and of its ratio to the hand
loop; the ratio is the fairer comparison, as both sides of it ran together.
Writes benchmarks/RESULTS_revisions.md (not with ``--quick``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from pictures_overhead import machine  # noqa: E402

RESULTS = HERE / "RESULTS_revisions.md"
ROW = re.compile(r"^\| (B\d) \| (.+?) \| ([\d.]+) s \| ([\d.]+) \| ([\d.]+) \|", re.M)


def _git(*args: str) -> str:
    proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def measure(tree: Path, cases: str, repeats: int, quick: bool) -> dict[tuple[str, str], tuple[float, float]]:
    """One run of ``tree``'s benchmarks/run.py: (id, what) -> (nnexp seconds, ratio to the hand loop)."""
    command = [sys.executable, "benchmarks/run.py", "--only", cases, "--repeats", str(repeats)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([*command, *(["--quick"] if quick else [])], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=3600)
    if proc.returncode:
        raise SystemExit(f"{tree}: benchmarks/run.py exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return {(m[0], m[1]): (float(m[2]), float(m[4])) for m in ROW.findall(proc.stdout)}


def table(names: dict[str, str], rounds: list[dict[str, dict]]) -> str:
    a, b = names["base"], names["new"]
    lines = [f"| id | what | {a}: nnexp | {a}: ratio | {b}: nnexp | {b}: ratio | new / base (nnexp) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for key in rounds[0]["base"]:
        values = {side: [r[side][key] for r in rounds if key in r[side]] for side in ("base", "new")}
        (ta, ra), (tb, rb) = ((statistics.median(v[0] for v in values[side]),
                               statistics.median(v[1] for v in values[side])) for side in ("base", "new"))
        lines.append(f"| {key[0]} | {key[1]} | {ta:.3f} s | {ra:.3f} | {tb:.3f} s | {rb:.3f} | {tb / ta:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the revision to compare against (a commit, tag or branch)")
    parser.add_argument("new", nargs="?", default="HEAD", help="the revision measured (default: HEAD)")
    parser.add_argument("--only", default="B2,B3", help="benchmarks/run.py cases (default: B2,B3)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each revision (medians)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds inside each run.py run")
    parser.add_argument("--quick", action="store_true", help="run.py --quick, one round: checks the script")
    args = parser.parse_args(argv)
    revisions = {"base": args.base, "new": args.new}
    names = {side: f"{rev} ({_git('rev-parse', '--short', rev)})" for side, rev in revisions.items()}
    rounds: list[dict[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="nnexp-revisions-") as tmp:
        trees = {side: Path(tmp) / side for side in revisions}
        for side, rev in revisions.items():
            _git("worktree", "add", "--detach", "--quiet", str(trees[side]), rev)
        try:
            for r in range(1 if args.quick else args.rounds):
                order = ("base", "new") if r % 2 == 0 else ("new", "base")
                rounds.append({side: measure(trees[side], args.only, args.repeats, args.quick) for side in order})
                print(f"round {r + 1} done", file=sys.stderr, flush=True)
        finally:
            for tree in trees.values():
                _git("worktree", "remove", "--force", str(tree))
    text = table(names, rounds)
    print(text)
    if not args.quick:
        RESULTS.write_text(f"# nnexp at two revisions\n\n`python benchmarks/revisions.py "
                           f"{' '.join(argv if argv is not None else sys.argv[1:])}`, {date.today()}: medians over "
                           f"{args.rounds} alternating rounds, each `benchmarks/run.py --only {args.only} "
                           f"--repeats {args.repeats}` of that revision (ratio: nnexp over the hand-written loop "
                           f"in the same run).\n\nMachine: {machine()}\n\n{text}\n")
        print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
