"""A local trial's processes: one session (process group) per attempt, ended as a whole.

A trial's worker starts in its own session, and everything it starts (a shell, the user's
training, its ``cmd &`` or ``Popen`` children) stays in that group unless it leaves on
purpose. Each process also inherits ``AUTOTUNE_TRIAL_GROUP=<trial dir>`` in its environment:
a group found after the driver died is only killed when one of its members carries the mark
of that very trial, so a recycled process id can never bring down an unrelated group.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time

from ..proctable import pids, stat

MARK = "AUTOTUNE_TRIAL_GROUP"


def kill_group(pgid: int) -> None:
    """SIGKILL a group we know is ours (a child just reaped, a worker we watch)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (zombies left out)."""
    found = []
    for pid in pids():
        s = stat(pid)
        if s is not None and s.pgid == pgid and s.state != "Z":
            found.append(pid)
    return found


def marked(pid: int, trial_dir: str) -> bool:
    """Whether process ``pid`` belongs to the trial whose directory is ``trial_dir``."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = fh.read()
    except OSError:
        return False
    return f"{MARK}={trial_dir}".encode() in env.split(b"\0")


def end_group(pgid: int, trial_dir: str, wait_s: float = 2.0) -> int:
    """Kill the group ``pgid`` if it is this trial's; returns how many processes it had."""
    mine = [p for p in members(pgid) if marked(p, trial_dir)]
    if not mine:
        return 0
    kill_group(pgid)
    give_up = time.monotonic() + wait_s
    while members(pgid) and time.monotonic() < give_up:  # not our children: watch /proc
        time.sleep(0.01)
    return len(mine)


def marked_workers() -> dict[str, int]:
    """Every live trial worker on this machine, by the trial directory its mark names, in
    one pass over /proc: a group leader (a worker starts its own session) carrying a trial's
    mark and running that trial's job.json. A driver killed between starting a worker and
    writing its pid to worker.pid leaves no other trace of it while it runs (and none at all
    where the trial folder was removed while it ran), and a worker left unfound would run a
    second time beside the new one. One pass serves every trial a caller asks about."""
    found: dict[str, int] = {}
    for pid in _leaders():
        trial_dir = environ_of(pid).get(MARK)
        if trial_dir and _runs(pid, os.path.join(trial_dir, "job.json")):
            found.setdefault(trial_dir, pid)
    return found


def _leaders() -> list[int]:
    """Live process-group leaders (a worker starts its own session, so leads its group),
    zombies left out."""
    out = []
    for pid in pids():
        s = stat(pid)
        if s is not None and s.pgid == pid and s.state != "Z":
            out.append(pid)
    return out


def _runs(pid: int, job_path: str) -> bool:
    """Whether ``pid`` was started on ``job_path`` (a worker's or launcher's argument)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return job_path.encode() in fh.read().split(b"\0")
    except OSError:
        return False


def environ_of(pid: int) -> dict[str, str]:
    """The environment ``pid`` was started with; {} when it cannot be read (gone, or not
    ours to read)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


def alive(pid: int, trial_dir: str) -> bool:
    """The trial's worker ``pid`` still runs (not a zombie, and it is that trial's)."""
    s = stat(pid)
    return s is not None and s.state != "Z" and marked(pid, trial_dir)
