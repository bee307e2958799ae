"""How torch's OpenMP threads wait: chosen once, before torch is imported.

Between two parallel regions (two matrix products) OpenMP's worker threads of
GNU libgomp, the runtime of torch's Linux and macOS builds, spin on their core
for a while before they sleep. On an idle machine that saves a wake-up; on a
machine where another process wants the same cores (a second run, a test suite,
a browser) the spinning threads and the other process take turns at the core
and every parallel region waits for a thread that is not running: training
gets tens to hundreds of times slower (issue 15 saw 300x; benchmarks/RESULTS.md,
B8: a hand-written loop 30-390x slower than nnexp beside one busy process). With the wait policy
``PASSIVE`` a thread with no work sleeps at once, and a competing load costs a
run at most its share of the cores.

libgomp reads its environment once, when it is loaded (when torch is imported),
so the choice is made by ``import nnexp``, before any of nnexp's modules import
torch. The user's own setting always wins: any of ``OMP_WAIT_POLICY``,
``GOMP_SPINCOUNT`` or ``KMP_BLOCKTIME`` in the environment leaves it alone.
Child processes (parallel sweep workers) inherit the choice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

POLICY = "PASSIVE"
# what a user sets to choose themselves: the standard variable, libgomp's spin count, Intel OpenMP's block time
USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

# what choose() found, for the run's log line: "PASSIVE (nnexp's default)", "yours: OMP_WAIT_POLICY=ACTIVE", ...
choice = ""


def choose(environ: MutableMapping[str, str] | None = None, modules: Mapping[str, object] | None = None) -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy or torch is already loaded; say what holds."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    mine = [f"{name}={environ[name]}" for name in USER_VARIABLES if name in environ]
    if mine:
        return "yours: " + ", ".join(mine)
    if "torch" in modules:  # libgomp has read its environment already: setting it now would change nothing
        return "OpenMP's default (torch was imported before nnexp)"
    environ["OMP_WAIT_POLICY"] = POLICY
    return f"{POLICY} (nnexp's default)"


def apply() -> None:
    """Called once, by ``import nnexp``: every nnexp module (the run's log line) sees ``choice`` set."""
    global choice
    choice = choose()
