"""What an ask/tell loop (``Study.ask``/``tell``) takes over from a run before it hands out
trials: the pretrain a run built, and the ends of SLURM jobs ``autotune cancel`` cancelled.

A loop of the caller's own runs no job: it cannot build the pretrain (a job with its own
resources, hours long) nor watch a SLURM job. What a run left recorded it can use, though:
a pretrain recorded as built whose checkpoint is still whole is given to its trials as
``ctx.pretrained``, as a run gives it; and a job ``cancel`` cancelled has ended, as the
cancel record says, so the loop records it cancelled, as the next run would, rather than
leave its trial in flight with nothing to end it.
"""
from __future__ import annotations

import dataclasses
import os

from . import events as ev
from .errors import StudyError
from .executors import Outcome
from .history import History
from .stage_cache import building, built, built_in, checkpoint_of, final_dir
from .stage_runner import seconds_of
from .states import cancelled_jobs, job_kind, result_stands
from .study import Study as StudySettings


@dataclasses.dataclass
class Pretrain:
    """The pretrain an ask/tell loop gives its trials: its checkpoint, and the record to
    write where another study (sharing ``cache_dir``) built it and this one has not
    recorded it yet (as a run records it: ``cached``, at no cost)."""

    checkpoint: str
    cached: dict | None = None


def built_pretrain(settings: StudySettings, history: History, study_dir: str, now: float,
                   caller: str) -> Pretrain | None:
    """The study's pretrain as built (None: the study has none): recorded as built by a
    run with its checkpoint still whole, or found built in the cache. A StudyError saying how
    to build it otherwise: the loop's trials would start without it (``ctx.pretrained``
    None). ``now``: the study's clock, for a ``cached`` record."""
    stage = settings.objective.pretrain
    if stage is None:
        return None
    # its cache key reads relative data paths from where the runs start, as the driver does
    launch = history.study.get("launch_dir") or os.getcwd()
    stage = dataclasses.replace(stage, launch_dir=launch)
    rec = history.stages.get(stage.name)
    done = built(stage, study_dir)
    if rec is not None and rec.ready:  # as StageRunner.run takes a recorded build
        if rec.key == stage.key() and done is not None:
            return Pretrain(checkpoint_of(stage, study_dir))
        if rec.key and rec.key != stage.key() \
                and built_in(final_dir(stage, study_dir, rec.key)) is not None:
            return Pretrain(checkpoint_of(stage, study_dir, rec.key))  # older key, still whole
    if done is not None and not building(stage, study_dir):
        path = checkpoint_of(stage, study_dir)
        return Pretrain(path, ev.stage_cached(round(now, 6), stage.name, stage.key(), path,
                                              seconds_of(done)))
    if rec is not None and rec.ready:
        why = (f"its checkpoint {checkpoint_of(stage, study_dir)} is missing or not the size "
               "it was built with")
    elif rec is None or rec.status == "pending":
        why = "it has not been built yet"
    elif rec.status == "running":  # left by a stopped run: nothing builds it now
        why = "its build was left unfinished by a stopped run"
    else:
        why = f"its last build {rec.status}" + (f" ({rec.error})" if rec.error else "")
    raise StudyError(f"{caller}: stages.pretrain: {why}, and an ask/tell loop does not build "
                     "it (its trials would start without it, ctx.pretrained None); build it "
                     "first with build_pretrain() (or run(), optimize(), `python -m autotune "
                     "run`), then ask() again")


def cancelled_outcomes(history: History, study_dir: str) -> list[Outcome]:
    """The trials in flight whose SLURM job ``autotune cancel`` cancelled and that left no
    result that stands (one that ran to its end before SLURM stopped it is the next run's to
    record, by its result): ended, cancelled, at the time of the cancel's record (the
    run's record would take SLURM's end time, seconds later at most)."""
    cancels = [n for n in history.notes if n.get("e") == "cancel"]
    cancelled = cancelled_jobs(history)
    found = []
    for rec in sorted(history.in_flight(), key=lambda r: r.trial):
        job = rec.job_id or ""
        if rec.status != "running" or job_kind(job) != "slurm" or job not in cancelled \
                or result_stands(study_dir, job):
            continue
        at = next(float(n.get("t") or 0.0) for n in cancels if job in (n.get("jobs") or []))
        start = rec.start_s if rec.start_s is not None else at
        found.append(Outcome(rec.trial, rec.attempt, None,
                             f"slurm job {job} cancelled by autotune cancel", start,
                             max(start, at), job_id=job, failure="cancelled"))
    return found
