"""Notes in the study directory from ``autotune cancel`` to the process that holds the study.

A driver's: ``cancel`` is stopping it (the note below, ``mark``). An ask/tell loop's
(``stop_asking``): a loop is the user's own Python session, which a signal would kill, so
``cancel`` asks it instead to hand out no more trials; its next ``ask()`` reads the note.

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


ASKING = "cancel-asking.json"
CANCELLED = "cancelled by autotune cancel"  # an ask/tell session's end_reason after a cancel


def _session(card: dict) -> list:
    """What tells one ask/tell session from another, the same process's later one too."""
    return [card.get("host"), card.get("pid"), card.get("since")]


def stop_asking(study_dir: str, card: dict) -> None:
    """Ask the ask/tell session whose holder's card (driver.json) is ``card`` to hand out
    no more trials. An OSError is the caller's to report: the loop would not stop."""
    path = os.path.join(study_dir, ASKING)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump({"session": _session(card)}, fh)
    os.replace(tmp, path)


def asking_stopped(study_dir: str, card: dict) -> bool:
    """Whether ``autotune cancel`` asked this session (``card``: its own holder's card) to
    stop; a note for an earlier session, a dead one's or this process's before, is not."""
    try:
        with open(os.path.join(study_dir, ASKING)) as fh:
            note = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(note, dict) and bool(card) and note.get("session") == _session(card)


def clear_asking(study_dir: str, card: dict) -> None:
    """Remove the note once the session it names ends."""
    if asking_stopped(study_dir, card):
        with contextlib.suppress(OSError):
            os.remove(os.path.join(study_dir, ASKING))
