"""The study directory: its paths, and the lock that lets one driver at a time run it.

The driver lock is an OS file lock (``filelock``), so it dies with its process: a driver
killed with SIGKILL never blocks the resume. Who holds it is written beside it, so a second
``run`` can name the holder.
"""
from __future__ import annotations

import json
import os
import socket
import time

from filelock import FileLock, Timeout

from .errors import StudyBusy


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
        os.makedirs(self.path, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise StudyBusy(f"{self.path} is being run by {self.holder()}; "
                            "wait for it to finish or stop that driver first") from None
        with open(self._holder, "w") as fh:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, fh)

    def release(self) -> None:
        try:
            os.remove(self._holder)
        except FileNotFoundError:
            pass
        self._lock.release()

    def holder(self) -> str:
        try:
            with open(self._holder) as fh:
                info = json.load(fh)
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
            return f"pid {info['pid']} on host {info['host']} (since {since})"
        except (OSError, ValueError, KeyError):
            return "another driver (holder unknown)"

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
