"""Why SLURM has not started a study's jobs yet, as ``status`` says it (the pretrain's job and
the trials' alike) and as ``run`` says it of its trials while it works (``QueueWatch``).

The history records a job as running from its submission (the driver cannot know when SLURM
starts it without asking), so a trial whose job sits in the queue behind a partition limit or
a hold reads as plain ``running``. One ``squeue`` call for every job in flight tells why each
one pending waits; a reason that means it will never start by itself (``never_starts``) is a
warning, since waiting does not help.
"""
from __future__ import annotations

from .executors.slurm_query import SlurmError, never_starts, pending_reasons
from .history import History
from .progress import Progress
from .states import job_kind

#: trial states whose SLURM job may sit in the queue
IN_FLIGHT = ("running", "running-alone")
SHOWN_IDS = 5  # job ids named in one warning line; the rest are counted


def queued_reasons(job_ids: list[str]) -> dict[str, str]:
    """Why each pending SLURM job of these waits, by job id, in one squeue call; ids of other
    kinds (local processes) are not asked about, and a squeue that fails says nothing: the
    view then shows the jobs as the history records them."""
    ids = sorted({j for j in job_ids if job_kind(j or "") == "slurm"})
    if not ids:
        return {}
    try:
        return pending_reasons(ids)
    except SlurmError:
        return {}


def stuck_warning(who: str, job_ids: list[str], reason: str) -> str | None:
    """The warning for jobs pending for a reason that never ends by itself (a hold, a
    partition limit), None for a wait that ends (Resources, Priority). ``who``: "pretrain",
    "trial 3", "trials"; one wording for the pretrain's job and the trials', one job or many."""
    never = never_starts(reason)
    if never is None or not job_ids:
        return None
    if len(job_ids) == 1:
        return f"{who}: job {job_ids[0]} pending ({reason}): {never}, so it will not start by itself"
    return (f"{who}: {len(job_ids)} jobs ({id_list(job_ids)}) pending ({reason}), each: "
            f"{never}, so none will start by itself")


def id_list(job_ids: list[str]) -> str:
    """The first few job ids, and how many more: a warning for 50 held jobs stays one line."""
    shown = ", ".join(job_ids[:SHOWN_IDS])
    more = len(job_ids) - SHOWN_IDS
    return shown + (f" and {more} more" if more > 0 else "")


def trial_wait_lines(history: History, states: dict[int, str],
                     reasons: dict[str, str]) -> list[str]:
    """How many of the trials in flight wait in SLURM's queue, by reason, then a warning per
    reason that never ends by itself; nothing when none waits."""
    in_flight = [t for t, state in states.items()
                 if state in IN_FLIGHT and job_kind(history.trials[t].job_id or "") == "slurm"]
    waits = {t: reasons[history.trials[t].job_id] for t in in_flight
             if history.trials[t].job_id in reasons}
    if not waits:
        return []
    by_reason = trials_by_reason(waits)
    order = sorted(by_reason, key=lambda r: (-len(by_reason[r]), r))
    lines = [f"trial jobs pending on SLURM: {len(waits)} of {len(in_flight)} ("
             + ", ".join(f"{r}: {len(by_reason[r])}" for r in order) + ")"]
    for reason in order:
        warning = trials_stuck(history, by_reason[reason], reason)
        if warning is not None:
            lines.append(f"warning: {warning}")
    return lines


def trials_by_reason(waits: dict[int, str]) -> dict[str, list[int]]:
    """The waiting trials (reason by trial) grouped by reason, each group in trial order."""
    by_reason: dict[str, list[int]] = {}
    for trial, reason in sorted(waits.items()):
        by_reason.setdefault(reason, []).append(trial)
    return by_reason


def trials_stuck(history: History, trials: list[int], reason: str) -> str | None:
    """``stuck_warning`` for these trials' jobs, all pending for ``reason``."""
    who = f"trial {trials[0]}" if len(trials) == 1 else "trials"
    return stuck_warning(who, [history.trials[t].job_id for t in trials], reason)


def job_ids_in_flight(history: History, states: dict[int, str]) -> list[str]:
    """The job ids worth asking squeue about (``queued_reasons`` keeps SLURM's): the trials'
    in flight and the pretrain's recorded as running (one call serves both)."""
    ids = [history.trials[t].job_id for t, s in states.items() if s in IN_FLIGHT]
    return ids + [st.job_id for st in history.stages.values() if st.status == "running"]


class QueueWatch:
    """What ``run`` says of the trials' jobs while they wait: the progress line counts them
    (``4 running (2 queued)``), and a reason that never ends by itself is a warning, once per
    reason and run, as the pretrain's is: else fifty held jobs read as fifty trials running."""

    def __init__(self, progress: Progress, study_dir: str):
        self.progress = progress
        self.study_dir = study_dir
        self.warned: set[str] = set()

    def update(self, waits: dict[int, str], history: History) -> None:
        """``waits``: the executor's reasons by trial (``Executor.waiting``)."""
        self.progress.queued = len(waits)
        for reason, trials in trials_by_reason(waits).items():
            if reason in self.warned:
                continue
            stuck = trials_stuck(history, trials, reason)
            if stuck is not None:
                self.warned.add(reason)
                self.progress.warn(f"{stuck} (python -m autotune cancel {self.study_dir} "
                                   "cancels them)")
