"""Submissions the scheduler refuses at a submit limit (``SubmitLimit``): when to offer them
again, the one warning of why they wait, and when such a wait is given up. One rule for the
trials (Driver) and the shared pretrain (StageRunner), so a user whose queue is full of their
other jobs sees both wait alike.

A refusal is offered again as soon as one of the study's jobs ends (its slot may take it) and
every ``RETRY_S`` all the same (the limit may be held by the user's jobs elsewhere). sbatch's
words naming the submit limit (``QOSMaxSubmitJobPerUserLimit``) clear for certain once jobs
end: that wait is as long as it takes, and Ctrl-C ends it. SLURM's generic line alone ("Job
violates accounting/QOS policy") is also what a site that denies jobs past a per-job limit
(``DenyOnLimit``: too many GPUs, too long a time) says, and that never clears (where sbatch
names the per-job limit beside it, ``QOSMaxWallDurationPerJobLimit``, the executor stops at
once and no wait starts: slurm_refusal): while none of
the study's jobs is in flight, such a refusal that lasts ``UNSURE_LIMIT_S`` stops the run with
one line saying what sbatch said and what to check; what waited stays recorded, so the next
run submits it.
"""
from __future__ import annotations

import time

from .errors import StudyError
from .executors.base import SubmitLimit
from .progress import clock

RETRY_S = 30.0
#: how long a refusal in SLURM's generic words alone may last with none of the study's jobs
#: in flight before the run stops (a slot held by jobs elsewhere frees within minutes as a
#: rule; a job the QOS never takes is refused for ever)
UNSURE_LIMIT_S = 600.0


class SubmitWait:
    """The state of one set of held submissions: the trials' (the driver) or the pretrain's."""

    def __init__(self) -> None:
        self._next = 0.0                    # time.monotonic() to offer them again
        self._said = False                  # the one warning given
        self._alone_since: float | None = None  # generic refusals with nothing in flight

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def slot_freed(self) -> None:
        """One of the study's jobs ended: its slot may take a held submission now."""
        self._next = 0.0

    def submitted(self) -> None:
        """The scheduler took a job: whatever refused before was a limit that cleared."""
        self._alone_since = None

    def refused(self, refusal: SubmitLimit, in_flight: int, what: str, kept: str) -> bool:
        """Note a refusal of ``what`` ("trial 3", "the pretrain's job"); True the first time
        (the caller warns once). Raises StudyError where the generic words alone have lasted
        UNSURE_LIMIT_S with none of the study's jobs in flight; ``kept``: what stays for the
        next run, said in that line."""
        now = time.monotonic()
        self._next = now + RETRY_S
        if refusal.sure or in_flight:  # a limit, or one our own jobs may be holding
            self._alone_since = None
        elif self._alone_since is None:
            self._alone_since = now
        elif now - self._alone_since >= UNSURE_LIMIT_S:
            raise StudyError(never_cleared(refusal.reason, what, now - self._alone_since, kept))
        first, self._said = not self._said, True
        return first

    def note(self, refusal: SubmitLimit) -> str:
        """What the warning adds where the wait is bounded (sbatch's generic words alone)."""
        if refusal.sure:
            return ""
        return (f"; sbatch's words may also mean a job the QOS never takes: refused so for "
                f"{clock(UNSURE_LIMIT_S)} with none of this study's jobs in flight, the run "
                "stops")


def never_cleared(reason: str, what: str, waited_s: float, kept: str) -> str:
    """The one line that ends a wait on SLURM's generic refusal."""
    return (f"sbatch still refuses {what} after {clock(waited_s)} with none of this "
            f"study's jobs in flight ({reason}): the job may be larger or longer than the QOS "
            "or account ever takes; check their limits (sacctmgr show qos; sacctmgr show assoc "
            "user=$USER) against the job's nodes, GPUs, CPUs, memory and time_limit_min, and "
            f"your jobs queued elsewhere (squeue -u $USER); {kept}")

