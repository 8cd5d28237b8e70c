"""The study directory: its paths, and the lock that lets one driver at a time run it.

The driver lock is an OS file lock (``filelock``), so it dies with its process: a driver
killed with SIGKILL never blocks the resume. Who holds it is written beside it, so a second
``run`` can name the holder.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time

from filelock import FileLock, Timeout

from .errors import StudyBusy, StudyError

HOLDER_WAIT_S = 2.0


class StudyDir:
    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.history = os.path.join(self.path, "history.jsonl")
        self.trajectory = os.path.join(self.path, "trajectory.csv")
        self.trials = os.path.join(self.path, "trials")
        self.cache = os.path.join(self.path, "cache")
        self.plots = os.path.join(self.path, "plots")
        self._lock = FileLock(os.path.join(self.path, "driver.lock"))
        self._holder = os.path.join(self.path, "driver.json")

    def exists(self) -> bool:
        return os.path.exists(self.history)

    def trial_dir(self, trial: int) -> str:
        return os.path.join(self.trials, str(trial))

    def acquire(self) -> None:
        """Take the driver lock; a directory that cannot be made or written is one line."""
        made = not os.path.isdir(self.path)
        try:
            os.makedirs(self.path, exist_ok=True)
            self._lock.acquire(timeout=0)
        except Timeout:
            raise StudyBusy(f"{self.path} is being run by {self.holder()}; "
                            "wait for it to finish or stop that driver first") from None
        except OSError as exc:
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(self.path)
            raise StudyError(f"--dir: cannot write a study into {self.path} "
                             f"({exc.strerror or exc})") from None
        self._write_holder()

    def _write_holder(self) -> None:
        """Written atomically, so a second driver never reads it half-written ("holder
        unknown" while the first driver is alive)."""
        tmp = f"{self._holder}.tmp{os.getpid()}"
        with open(tmp, "w") as fh:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, fh)
        os.replace(tmp, self._holder)

    def release(self) -> None:
        try:
            os.remove(self._holder)
        except FileNotFoundError:
            pass
        self._lock.release()

    def holder(self) -> str:
        """Who holds the lock. The holder writes driver.json just after taking the lock, so a
        missing file, or one left by a dead driver, is read again for a moment."""
        give_up = time.monotonic() + HOLDER_WAIT_S
        while True:
            try:
                with open(self._holder) as fh:
                    info = json.load(fh)
                pid, host = int(info["pid"]), str(info["host"])
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
                if host != socket.gethostname() or _alive(pid) or time.monotonic() > give_up:
                    return f"pid {pid} on host {host} (since {since})"
            except (OSError, ValueError, KeyError, TypeError):
                if time.monotonic() > give_up:
                    return "another driver (holder unknown: driver.json is missing)"
            time.sleep(0.05)

    def driver_running(self) -> bool:
        """Whether some driver holds the lock right now (for ``status``)."""
        if not os.path.exists(self.path):
            return False
        probe = FileLock(os.path.join(self.path, "driver.lock"))
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        probe.release()
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
