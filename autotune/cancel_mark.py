"""A note in the study directory that ``autotune cancel`` is stopping its driver.

A SIGTERM does not say who sent it. A driver under ``executor: slurm`` that is stopped says
its jobs are left queued or running for the next run to re-attach to (true after Ctrl-C);
stopped by ``cancel``, which cancels those very jobs as soon as the driver lets go, that was
the opposite of the truth. ``cancel`` writes this note (naming the driver it stops and
itself) before the signal and removes it when done; the driver reads it when the signal
comes. A note whose writer is gone (a cancel killed half-way) or that names another driver
is not believed.
"""
from __future__ import annotations

import contextlib
import json
import os

NAME = "cancelling.json"


def mark(study_dir: str, driver_pid: int) -> None:
    """Say that this process is about to stop ``driver_pid`` and cancel the study's jobs; a
    note that cannot be written costs only the driver's words, not the cancel."""
    path = os.path.join(study_dir, NAME)
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        with open(tmp, "w") as fh:
            json.dump({"driver": driver_pid, "by": os.getpid()}, fh)
        os.replace(tmp, path)


def clear(study_dir: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(os.path.join(study_dir, NAME))


def stopped_by_cancel(study_dir: str) -> bool:
    """Whether a live ``autotune cancel`` says it is stopping this very process."""
    try:
        with open(os.path.join(study_dir, NAME)) as fh:
            note = json.load(fh)
        driver, by = int(note["driver"]), int(note["by"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if driver != os.getpid():
        return False
    try:
        os.kill(by, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's: the cancel of a study one may write
    return True
