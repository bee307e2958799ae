"""The process tree as Linux's /proc shows it: who descends from whom, which processes one started.

Used by nnexp/sweep_workers.py. Where there is no /proc, a process only knows whether a pid exists.
No torch, no Hydra.
"""

from __future__ import annotations

import os
from pathlib import Path

HAS_PROC = Path("/proc/self/stat").exists()


def stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process; None when it is gone or /proc cannot say."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces
    return fields[0], int(fields[1]), fields[19]


def alive(pid: int, start: str | None = None) -> bool:
    """Whether ``pid`` runs (a zombie does not), and is the process that started at ``start``."""
    if not HAS_PROC:
        return exists(pid)
    found = stat(pid)
    return found is not None and found[0] not in ("Z", "X") and start in (None, found[2])


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` runs and ``ancestor`` is among its ancestors: false from the moment ``ancestor``
    died (its children get another parent at once), and a reused pid is never taken for it."""
    if not HAS_PROC:
        return exists(pid) and exists(ancestor)
    found = stat(pid) if alive(pid) else None
    while found is not None and found[1] > 1:
        if found[1] == ancestor:
            return True
        found = stat(found[1])
    return False


def children(pid: int) -> dict[int, str]:
    """The processes ``pid`` started that run now, with their start times."""
    found = {}
    for entry in os.listdir("/proc") if HAS_PROC else ():
        if entry.isdigit() and (info := stat(int(entry))) is not None and info[1] == pid:
            found[int(entry)] = info[2]
    return found


def started_with(pid: int, variable: str) -> bool:
    """Whether ``pid`` was started with ``variable`` (``NAME=value``) in its environment."""
    try:
        return variable.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: it exists
        pass
    return True
