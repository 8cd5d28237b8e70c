"""The executor interface: run trials somewhere, report them back; no idea of search.

It mirrors concurrent.futures in spirit: ``submit`` starts a trial and returns its job id,
``poll`` hands back whatever finished. ``submit`` must return before the trial does its work:
the driver records the submit then, and a trial that is never seen to end (the driver was
killed) counts as started when it runs again. An executor that runs trials in the driver's
own process (``inline``, ``simulated``) therefore only queues in ``submit`` and runs in
``poll``. Times are seconds since the study started, on the
executor's clock (virtual seconds for the simulated executor).
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import StudyError
from ..objective import Ctx, ObjectiveSpec


class SubmitLimit(StudyError):
    """The scheduler takes no more jobs for now (SLURM's MaxSubmitJobs of a user, account
    or QOS): nothing is wrong with the trial, and a slot frees when one of the jobs in flight
    ends. The driver holds the trial back and submits it then; ``reason`` is the scheduler's
    own words; ``sure``: they name the submit limit itself, where SLURM's generic line alone
    may also mean a job the QOS never takes (submit_wait bounds that wait)."""

    def __init__(self, message: str, reason: str, sure: bool = True):
        super().__init__(message)
        self.reason = reason
        self.sure = sure


@dataclass
class TrialJob:
    """Everything needed to run one attempt of one trial."""

    trial: int
    attempt: int
    params: dict[str, Any]
    ctx: Ctx
    objective: ObjectiveSpec
    #: on resume, when the attempt a dead driver left started: a re-attached one counts its
    #: run time and timeout from there (and a virtual clock restarts a re-run there)
    resume_start_s: float | None = None


@dataclass
class Outcome:
    """A finished attempt: a raw result mapping, or the reason it failed."""

    trial: int
    attempt: int
    result: dict[str, Any] | None
    error: str | None
    start_s: float
    end_s: float
    job_id: str = ""
    failure: str = ""  # kind of failure: exception, exit, timeout, cancelled, node, preempted
    extra: dict[str, Any] = field(default_factory=dict)
    #: seconds earlier runs of the same job ran before ``start_s`` (a requeued SLURM job's
    #: runs before its latest): compute the attempt used, which start_s..end_s leaves out
    earlier_s: float = 0.0

    @property
    def run_s(self) -> float:
        """The compute the attempt used: its (last) run, and any run of its job before."""
        return max(0.0, self.end_s - self.start_s) + self.earlier_s


class Executor(ABC):
    kind: ClassVar[str] = ""
    #: option key under ``executor:`` -> kind (see config.take)
    options: ClassVar[dict[str, str]] = {}
    #: a key from the scheduler's own vocabulary (sbatch's ``mem``) -> what to write here
    #: instead, for the line that refuses it as unknown
    other_names: ClassVar[dict[str, str]] = {}
    #: trials run inside the driver's own process (a second Ctrl-C interrupts them there)
    in_process: ClassVar[bool] = False
    #: time is virtual: a trial a crash cut short starts again at the virtual time it first
    #: started, so that a resumed run goes as the uninterrupted one would have
    virtual_clock: ClassVar[bool] = False

    def __init__(self, study_dir: str, max_concurrent: int, t0: float,
                 options: dict[str, Any] | None = None):
        self.study_dir = study_dir
        self.max_concurrent = max_concurrent
        self.t0 = t0
        self.opts = options or {}
        #: job ids ``autotune cancel`` cancelled (its records in the history, set by the
        #: driver): an attempt found cancelled is said to be that cancel's doing, not a
        #: stranger's, so that the researcher who ran it is not sent looking for one
        self.cancelled_by_autotune: set[str] = set()

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Refuse bad option values (StudyError) while the study file is read."""

    @classmethod
    def preflight(cls, options: dict[str, Any]) -> None:
        """Make sure trials can run here at all before a study directory is written
        (``run`` calls it; ``status`` and ``report`` do not)."""

    @classmethod
    def preflight_more(cls, options: dict[str, Any]) -> None:
        """``preflight`` for another set of options after the first passed (the pretrain's
        own resources): what depends on the options only, not what was asked of the
        cluster once already. By default the whole ``preflight`` again."""
        cls.preflight(options)

    def now(self) -> float:
        """Seconds since the study started."""
        return time.time() - self.t0

    def restore_clock(self, t: float) -> None:
        """On resume: the latest time the history saw (only a virtual clock needs it)."""

    @abstractmethod
    def submit(self, job: TrialJob) -> str:
        """Start the attempt (or queue it, in-process); return its job id."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Outcome]:
        """Finished attempts, waiting up to ``timeout`` seconds for at least one."""

    def release(self, outcomes: list[Outcome]) -> None:
        """The outcomes ``poll`` handed back are recorded in the history: what the executor
        kept of them for a restarted driver to collect (a SLURM job's result) may go."""

    @abstractmethod
    def running(self) -> int:
        """Attempts submitted and not yet handed back by ``poll``."""

    def waiting(self) -> dict[int, str]:
        """Why the scheduler has not started these trials' jobs yet, by trial (those that
        wait for no reason given are left out; {} for a kind with no queue): the run's
        progress line counts them, a pretrain that waits says why (not just 'running'),
        and a wait that never ends by itself is a warning."""
        return {}

    def reattach(self, job: TrialJob, job_id: str) -> bool:
        """Pick up an attempt a dead driver left running; False means: run it again."""
        return False

    def unrecorded(self, job: TrialJob) -> str | None:
        """The job id of an attempt of ``job`` this executor may have started although the
        history never recorded it (the driver died between starting it and writing its
        start); ``reattach`` decides whether it is really that attempt. None: nothing to
        look for, so the attempt runs again."""
        return None

    def started_s(self, trial: int) -> float | None:
        """When the attempt of ``trial`` this executor watches started, on the study clock,
        where it knows better than now (one found started but not recorded as started)."""
        return None

    def shutdown(self) -> None:
        """Stop everything still running (driver interrupted or finished)."""


#: an Outcome's failure kind for a trial whose result file (a local worker's outcome.json, a
#: SLURM job's result pickle) cannot be read after it ended: its writer writes it whole, so
#: something else damaged it, and the trial's result is lost, not a failure of its own (the
#: driver runs it again)
UNREADABLE = "unreadable"


def damaged_line(what: str, why: str, writer: str) -> str:
    """The one line for a trial's result file that cannot be read, under any executor (the
    local worker's outcome.json, a SLURM job's result pickle): ``writer`` writes it whole, so
    something else damaged it. One wording, so that the driver and the stage runner, which
    act on ``UNREADABLE`` alike, say it alike."""
    return (f"the trial ended but {what} could not be read ({why}): {writer} writes it whole, "
            "so something else damaged it")
