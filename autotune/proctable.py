"""This machine's processes as Linux's /proc shows them: one reader of ``/proc/<pid>/stat``
for the local executor's process groups (executors/procgroup.py) and for ending a
command's processes (runner.py), which cannot import the executors package."""
from __future__ import annotations

import contextlib
import os
from typing import NamedTuple


class Stat(NamedTuple):
    state: str      # R, S, Z, ...
    ppid: int
    pgid: int


def stat(pid: int) -> Stat | None:
    """``pid``'s state, parent and process group, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # the name, in parentheses, may hold spaces
    try:
        return Stat(fields[0], int(fields[1]), int(fields[2]))
    except (IndexError, ValueError):
        return None


def pids() -> list[int]:
    """Every process id /proc lists now ([] where it cannot be read)."""
    with contextlib.suppress(OSError):
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return []


def descendants(pid: int) -> list[int]:
    """The live processes ``pid`` started, and theirs, all found before the caller acts on
    any ([] where there is none)."""
    children: dict[int, list[int]] = {}
    for p in pids():
        s = stat(p)
        if s is not None and s.state != "Z":
            children.setdefault(s.ppid, []).append(p)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
