"""The process a local trial runs in: ``python -m autotune.worker JOB.json``.

Running each trial in its own process means a segfault, an ``os._exit`` or a runaway
allocation in one trial costs that trial only. The outcome is written atomically next to
the job file, so the driver can tell "finished with an error" from "died". It is stamped
with the wall-clock time the trial ended (``end_t``): a driver that collects it later (it was
killed and restarted meanwhile) records when the trial ended, not when it was collected.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback

from .errors import exception_text, is_disk_full
from .objective import Ctx, ObjectiveSpec, run_objective


#: the worker's exit status when the disk was too full to write the outcome (EX_TEMPFAIL)
DISK_FULL_STATUS = 75


#: the worker's exit status when the outcome could not be written for another reason (EX_IOERR):
#: the objective made ``outcome.json`` a directory, or the trial folder read-only
OUTCOME_UNWRITABLE_STATUS = 74
#: how the worker's one line on stderr saying so begins (the driver quotes it as the error)
UNWRITABLE_PREFIX = "autotune: the trial ended but its outcome could not be written"
#: the same line of one rank of a multi-rank trial (the launcher quotes it, naming the rank)
RANK_UNWRITABLE_PREFIX = "autotune: the rank ended but its outcome could not be written"


#: past ``timeout_s`` by this much, a trial ends itself (its driver normally ends it first)
WATCHDOG_GRACE_S = 5.0


class OutcomeFile:
    """The attempt's one outcome, written once by whichever comes first: the trial's own end
    or its watchdog (a trial that ends just as the watchdog fires keeps one of the two)."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._written = False

    def write(self, outcome: dict) -> bool:
        """Write ``outcome`` unless one was written already; True if this one was."""
        with self._lock:
            if self._written:
                return False
            write_json_atomic(self.path, outcome)
            self._written = True
            return True


def watchdog(seconds: float, timeout_s: float, outcome: OutcomeFile) -> None:
    """End this trial's whole process group after ``seconds``: a trial whose driver was
    killed and never restarted still stops at its time limit instead of running forever.
    It first leaves the outcome a live driver would have recorded (timed out), so the next
    run records the trial as failed instead of running it again."""
    def fire() -> None:
        with contextlib.suppress(OSError):
            os.write(2, f"autotune: timed out after {seconds:g}s with no driver to end "
                        "the trial; ending it\n".encode())
        with contextlib.suppress(OSError):
            outcome.write({"error": f"timed out after {timeout_s:g}s", "failure": "timeout",
                           "end_t": time.time(), "pid": os.getpid()})
        os.killpg(os.getpgrp(), signal.SIGKILL)

    if os.getpgrp() != os.getpid():  # not a trial's own session: never end someone else's
        return
    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def show_traceback(spec: ObjectiveSpec) -> None:
    """Print the exception being handled to stderr.log where its frames are the user's (an
    entry's). A command's failure is raised by autotune's own frames (the runner, on the
    command's exit status or output): printed after the command's stderr they would bury its
    own traceback in the failure summary's tail. Its reason is in the outcome either way."""
    if spec.command is None:
        traceback.print_exc()


def write_json_atomic(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` whole or not at all (a reader never sees half of it); the
    temporary file is removed where the write fails, not left in the trial's folder."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as fh:
            json.dump(data, fh, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def outcome_unwritten(exc: OSError, path: str, prefix: str = UNWRITABLE_PREFIX) -> int:
    """Say by the exit status and one line on stderr, which need no outcome file, why there
    is none: the driver re-runs a trial short of disk space once there is room instead of
    counting it as failed, and quotes any other cause as the trial's error (the worker's own
    traceback, ending in ``IsADirectoryError``, said nothing of what to fix). ``prefix``: how
    the line begins (a rank of a multi-rank trial says ``RANK_UNWRITABLE_PREFIX``)."""
    if is_disk_full(exc):
        with contextlib.suppress(OSError):
            os.write(2, f"No space left on device writing {path}\n".encode())
        return DISK_FULL_STATUS
    if not os.path.isdir(os.path.dirname(path)):
        return 1  # the trial folder is gone: the driver, seeing so, says that plainly
    reason = exc.strerror or type(exc).__name__
    with contextlib.suppress(OSError):
        os.write(2, f"{prefix} to {path} ({reason}): a trial folder's "
                    f"{os.path.basename(path)} is autotune's own, which the objective must "
                    "not create or make unwritable\n".encode())
    return OUTCOME_UNWRITABLE_STATUS


def clear_outcome(path: str) -> None:
    """Remove an earlier attempt's outcome, which must not be read as this one's. A directory
    an objective made there (which failed that attempt) is moved aside, not deleted (it may
    hold the objective's files): removing it raised IsADirectoryError in the driver, which
    stopped on the retry, and on every resume after it (and in a multi-rank trial's
    launcher, whose retry then failed with a traceback)."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        os.rename(path, f"{path}.moved-{time.time_ns()}")


def main(job_path: str) -> int:
    with open(job_path) as fh:
        job = json.load(fh)
    spec = ObjectiveSpec.from_dict(job["objective"])
    ctx = Ctx(**job["ctx"])
    outcome_file = OutcomeFile(job["outcome_path"])
    if spec.timeout_s:
        watchdog(spec.timeout_s + WATCHDOG_GRACE_S, spec.timeout_s, outcome_file)
    began = time.perf_counter()
    try:
        result = run_objective(spec, job["params"], ctx, stdout=sys.stdout, stderr=sys.stderr)
        outcome = {"result": result}
        status = 0
    except BaseException as exc:  # noqa: BLE001 - report everything, even SystemExit
        show_traceback(spec)
        outcome = {"error": exception_text(exc)}
        status = 1
    # the pid names the worker to a driver that must find it without worker.pid
    outcome.update(measured_s=time.perf_counter() - began, end_t=time.time(), pid=os.getpid())
    sys.stdout.flush()
    try:
        outcome_file.write(outcome)
    except OSError as exc:
        return outcome_unwritten(exc, job["outcome_path"])
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
