"""How long a study has gone on once its driver is gone: the history stops at the driver's
last record (a driver killed just after submitting leaves only the submits, at ~0 s), but its
trials may run on alone. ``status`` takes the latest sign of their life that the study
directory itself shows, and says which it is, rather than "elapsed: 0.0 s":

- a local trial (or pretrain) whose worker still runs (``running-alone``, seen in /proc):
  the study goes on now;
- one that ended alone (``ended-alone``): the end time its worker stamped on its outcome
  (``end_t``), which the next ``run`` records as the trial's end; for a SLURM job, when it
  wrote its result;
- a SLURM job left running (not seen by ``status``): the last write in its folder or in
  submitit's (``DIR/slurm/<job id>/``, where its logs grow);
- a local trial (or pretrain) that nothing runs any more (``interrupted``: stopped by an
  interrupted driver, Ctrl-C or SIGTERM, which records no stop, or its worker killed): the
  last write in its folder, where its logs grew while it ran (the local executor stamps its
  stderr.log as it stops the worker).
"""
from __future__ import annotations

import os
import time
from typing import Any

from .history import History
from .states import job_kind
from .studydir import StudyDir

#: what each sign's time means, as ``status`` says it after the figure; ``<kind>-stage``
#: where the latest sign is the pretrain's own (a driver killed during it leaves no trial)
MEANING = {"now": "to now: trials run on without a driver",
           "end": "to the last trial's end, the driver gone",
           "log": "to the last write in a SLURM job's folder, the driver gone",
           "stopped": "to the last write in an interrupted trial's folder, the driver gone",
           "now-stage": "to now: the pretrain runs on without a driver",
           "end-stage": "to the pretrain's end, the driver gone",
           "log-stage": "to the last write in a SLURM job's folder, the driver gone",
           "stopped-stage": "to the last write in the interrupted pretrain's folder, the "
                            "driver gone"}


def last_sign(history: History, states: dict[int, str], stages: dict[str, str],
              directory: str | None) -> tuple[float, str] | None:
    """The latest sign of life of the trials and stages left without a driver, as study
    seconds and its kind (a key of ``MEANING``); None where there is none, or none later than
    the history's last record. ``states``, ``stages``: as ``states.trial_states`` and
    ``stage_states`` derived them with no driver."""
    t0 = history.study.get("t0")
    if directory is None or not isinstance(t0, (int, float)):
        return None
    folders = [(os.path.join(directory, "trials", str(t)), state, history.trials[t].job_id,
                "") for t, state in states.items() if t in history.trials]
    folders += [(os.path.join(directory, "stages", name), state, history.stages[name].job_id,
                 "-stage") for name, state in stages.items() if name in history.stages]
    signs = [(s[0], s[1] + own) for folder, state, job_id, own in folders
             if (s := folder_sign(folder, state, job_id or "")) is not None]
    if not signs:
        return None
    t, kind = max(signs, key=lambda s: (s[0], not s[1].endswith("-stage")))  # a trial's first
    if kind == "now-stage" and any(k == "now" for _, k in signs):
        kind = "now"  # trials run on too: they say it
    return (t - float(t0), kind) if t - float(t0) > history.last_t else None


def folder_sign(folder: str, state: str, job_id: str) -> tuple[float, str] | None:
    """One trial's (or stage's) latest sign of life as (wall-clock time, kind), or None."""
    slurm = job_kind(job_id) == "slurm"
    if state == "running-alone":
        if not slurm:
            return (time.time(), "now")
        # its logs grow in submitit's folder, DIR/slurm/<job id>/, until its end copies them
        # here (a pretrain's stages/pretrain/ holds nothing before)
        study = StudyDir(os.path.dirname(os.path.dirname(folder)))
        signs = [s for s in (newest_write(folder), newest_write(study.slurm_job_dir(job_id)))
                 if s]
        return max(signs) if signs else None
    if state == "interrupted" and not slurm:  # its logs, to when its worker was stopped
        sign = newest_write(folder)
        return None if sign is None else (sign[0], "stopped")
    if state == "ended-alone" and not slurm:
        end = outcome_end(folder)
        return None if end is None else (end, "end")
    if state == "ended-alone":  # its result left in submitit's folder, written as it ended
        study = StudyDir(os.path.dirname(os.path.dirname(folder)))
        try:
            return (os.path.getmtime(study.slurm_result(job_id)), "end")
        except OSError:
            return None  # cancelled: no end of its own
    return None


def outcome_end(folder: str) -> float | None:
    """The wall-clock time a local worker stamped on the outcome it left (``end_t``)."""
    from .executors.local import read_json

    stamp: Any = (read_json(os.path.join(folder, "outcome.json")) or {}).get("end_t")
    return float(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) \
        else None


def newest_write(folder: str) -> tuple[float, str] | None:
    """The latest modification time of a file in ``folder`` (a SLURM job's logs)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    times = []
    for entry in entries:
        try:
            if entry.is_file():
                times.append(entry.stat().st_mtime)
        except OSError:
            continue
    return (max(times), "log") if times else None
