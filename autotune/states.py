"""A trial's state, as every view says it (``status``, trajectory.csv, the DataFrame, the HTML
report): derived from the history, here only.

A trial that ended is ``ok``, ``failed`` or ``cancelled``. One not ended is ``running`` or
``pending`` (asked, not yet started) while a driver holds the study, or when whether one does
is unknown (a directory one may only read). With no driver, what happens to it next decides:
``running-alone``: its local process or SLURM job still runs without a driver, and the next
``run`` collects it; ``ended-alone``: its local process or SLURM job ended without a driver,
leaving its outcome, or ``autotune cancel`` cancelled its SLURM job, and the next ``run`` records that
(a cancelled job as ``cancelled``; one whose step ran to its end before SLURM stopped it, an
``entry`` outliving SLURM's SIGTERM up to its KillWait, by its result) and does not run it again; ``interrupted``: nothing runs
it (a killed driver's trial, a local trial ``cancel`` stopped, a trial asked in one's own
ask/tell loop and never told), and it runs again on resume. A trial recorded as asked whose
local worker or SLURM job a killed driver started without recording it is said as a recorded
one would be: the next ``run`` finds it (the worker by its mark, the job by its name, as the
executor does) and watches or records it, running it no second time.
"""
from __future__ import annotations

import functools
import os
import pickle
from typing import Any, Callable

from .history import History
from .studydir import StudyDir

#: seconds each SLURM call ``status`` makes to find jobs submitted but never recorded is
#: given (sacct, squeue): a controller that does not answer costs no more than twice this
SLURM_QUERY_S = 5.0

#: the states of a trial not ended, with no driver, and what the next ``run`` does with it
ALONE = {"running-alone": "still running without a driver: the next run collects them",
         "ended-alone": "ended without a driver: the next run records them",
         "interrupted": "runs again on resume"}


def trial_states(history: History, running_driver: bool | None,
                 directory: str | None) -> dict[int, str]:
    """Each trial's state by id (see the module's docstring). ``running_driver``: whether a
    driver holds the study (None: unknown, as for a driver holding it); ``directory``: the
    study directory, where a local trial's process and outcome are looked for."""
    return trial_states_found(history, running_driver, directory)[0]


def trial_states_found(history: History, running_driver: bool | None, directory: str | None
                       ) -> tuple[dict[int, str], dict[int, str]]:
    """``trial_states``, and the SLURM job ids of the trials recorded as asked that were
    found submitted by their job's name (``unrecorded_jobs``), by trial."""
    states = {t: rec.status for t, rec in history.trials.items()}
    if running_driver or running_driver is None:
        return states, {}
    from .executors.procgroup import marked_workers

    cancelled = cancelled_jobs(history)
    marked = functools.cache(marked_workers)  # one /proc pass for all trials, when needed
    found_jobs = unrecorded_jobs(history, directory)
    for t, rec in history.trials.items():
        if rec.done:
            continue
        if rec.status == "running" and still_running(rec, directory, cancelled):
            states[t] = "running-alone"
        elif rec.status == "running" and ended_alone(rec, directory, cancelled):
            states[t] = "ended-alone"
        elif rec.status == "pending" and t in found_jobs:
            states[t] = "running-alone" if found_jobs[t][1] else "ended-alone"
        elif rec.status == "pending" and (found := unrecorded_worker(rec, directory, marked)):
            states[t] = found
        else:
            states[t] = "interrupted"
    return states, {t: job_id for t, (job_id, _) in found_jobs.items()}


def study_executor(history: History) -> str:
    """The executor kind the study was recorded with (``executor.kind``, local by default)."""
    config = history.study.get("config")
    executor = config.get("executor") if isinstance(config, dict) else None
    if isinstance(executor, str):
        return executor
    kind = executor.get("kind") if isinstance(executor, dict) else None
    return kind if isinstance(kind, str) and kind else "local"


def unrecorded_jobs(history: History, directory: str | None) -> dict[int, tuple[str, bool]]:
    """The SLURM jobs a killed driver submitted for trials it recorded as asked and died
    before recording as submitted, by trial: (job id, whether SLURM still runs or queues
    it). Found as the executor finds them to adopt them (``slurm_query.unrecorded_job``: by
    the job's name, in the study's list of jobs), so what ``status`` says of them is what
    the next ``run`` does: watch the job, or record how it ended, and not submit it again.
    Only for a SLURM study with such trials, and only where a job was submitted into the
    study directory that no line of the history names (its folder, ``DIR/slurm/<job id>/``,
    which the executor's adoption requires: ``submitted_into``; the folders ``cleanup`` keeps
    of earlier attempts are named, ``History.job_ids``): trials asked and never submitted
    (held back by a submit limit when a driver stopped) have no job to ask SLURM about, and
    stopping a driver waited on sacct and squeue for them. {} where SLURM does not answer
    within ``SLURM_QUERY_S`` (the trials are then said interrupted, as the history alone
    says)."""
    pending = [rec for rec in history.trials.values() if rec.status == "pending"]
    t0 = history.study.get("t0")
    if (not pending or not directory or study_executor(history) != "slurm"
            or not isinstance(t0, (int, float))):
        return {}
    if not StudyDir(directory).slurm_job_ids() - history.job_ids:
        return {}  # no job submitted here unrecorded (earlier attempts' included): none to find
    from .executors.slurm_query import list_study_jobs, unrecorded_job

    jobs, errors = list_study_jobs(directory, float(t0), SLURM_QUERY_S)
    if len(errors) == 2:
        return {}
    taken = {rec.job_id for rec in history.trials.values() if rec.job_id}
    found = {}
    for rec in pending:
        info = unrecorded_job(jobs, directory, rec.trial, rec.next_attempt, taken)
        if info is not None:
            taken.add(info.job_id)
            found[rec.trial] = (info.job_id, info.active)
    return found


def ended_alone(rec: Any, directory: str | None, cancelled: set[str] | None = None) -> bool:
    """A local trial a dead driver left that has ended since, leaving its outcome (a result,
    an error, or its watchdog's timeout), or a SLURM job ``cancel`` cancelled (``cancelled``):
    the next run records it (the job as cancelled, as sacct says, or by the result it left
    where it ran to its end before SLURM stopped it) and does not run it."""
    job_id = rec.job_id or ""
    if job_kind(job_id) == "slurm":
        return job_id in (cancelled or set()) or slurm_result_left(directory, job_id)
    if not directory:
        return False
    from .executors.local import worker_alive, worker_ended

    trial_dir = os.path.join(directory, "trials", str(rec.trial))
    return worker_ended(trial_dir, job_id, rec.attempt) and not worker_alive(trial_dir, job_id)


def unrecorded_worker(rec: Any, directory: str | None,
                      marked: Callable[[], dict[str, int]] | None = None) -> str | None:
    """A trial recorded as asked whose local worker a driver started and was killed before
    recording the start (it records a batch's starts at once): ``running-alone`` or
    ``ended-alone`` as for a recorded one, since the next run finds it (``find_worker``, as
    the executor's ``unrecorded`` does) and watches or collects it; None when there is none.
    ``marked``: the one pass over /proc that serves every trial (none: a pass of its own)."""
    if not directory:
        return None
    from .executors.local import find_worker, read_json, worker_alive, worker_ended
    from .executors.procgroup import marked_workers

    trial_dir = os.path.join(os.path.abspath(directory), "trials", str(rec.trial))
    pid = find_worker(trial_dir, marked or marked_workers)
    job = read_json(os.path.join(trial_dir, "job.json"))
    if pid is not None and job is None:
        return "running-alone"   # found by its mark, its folder removed: a live worker
    if pid is None or (job or {}).get("ctx", {}).get("attempt") != rec.next_attempt:
        return None      # none started, or an earlier attempt's worker
    job_id = f"pid-{pid}"
    if worker_alive(trial_dir, job_id):
        return "running-alone"
    return "ended-alone" if worker_ended(trial_dir, job_id, rec.next_attempt) else None


def still_running(rec: Any, directory: str | None, cancelled: set[str]) -> bool:
    """A trial a dead driver left: its local worker process is alive, or it is a SLURM job
    that no ``cancel`` record names (``cancelled_jobs``) and that left no result yet."""
    job_id = rec.job_id or ""
    if job_kind(job_id) == "local":
        from .executors.local import worker_alive

        return bool(directory) and worker_alive(os.path.join(directory, "trials",
                                                             str(rec.trial)), job_id)
    return job_kind(job_id) == "slurm" and job_id not in cancelled \
        and not slurm_result_left(directory, job_id)


def slurm_result_left(directory: str | None, job_id: str) -> bool:
    """Whether a SLURM job has ended leaving its result (submitit's ``<job id>_0_result.pkl``
    in ``<study>/slurm/<job id>/``, a failure's included) that no driver has collected yet:
    the job runs no more, and the next run records its end."""
    return bool(directory) and os.path.exists(StudyDir(directory).slurm_result(job_id))


def result_stands(directory: str | None, job_id: str) -> bool:
    """Whether a job ``cancel`` cancelled left a result the next run takes as its outcome:
    submitit ignores SLURM's SIGTERM, so an ``entry`` runs on until SLURM's KillWait and
    may end meanwhile, its result whole. An error, or a ``command:``'s result, marked as left
    after the SIGTERM (``slurm_job.noting_sigterm``) is not: the next run records the job
    cancelled, as sacct says. A result that cannot be read here is taken to stand (the
    executor reads it again). A multi-rank job is judged as the executor judges it
    (``SlurmExecutor._from_results``): a rank's error not so marked stands (the run records
    it failed); else it stands only where every rank (each that left a log or a result)
    left a result, none so marked: one whose other ranks SLURM stopped is recorded
    cancelled."""
    from .executors.slurm_job import left_after_sigterm

    if not slurm_result_left(directory, job_id):
        return False
    study = StudyDir(directory or "")
    whole = True
    for rank in range(max(study.slurm_ranks(job_id) | {0}) + 1):
        try:
            with open(study.slurm_result(job_id, rank), "rb") as fh:
                status, payload = pickle.load(fh)
        except FileNotFoundError:
            whole = False  # this rank has not ended, or SLURM stopped it
            continue
        except Exception:  # noqa: BLE001 - half-written, or not ours to read: the run decides
            continue
        if left_after_sigterm((status, payload)):
            whole = False
        elif status != "success" or (isinstance(payload, dict) and "error" in payload):
            return True  # a rank's own failure: the attempt's outcome
    return whole


def cancelled_jobs(history: History) -> set[str]:
    """The job ids ``autotune cancel`` cancelled, as its records name them (every job of the
    study queued or running then): a job a later driver submitted is not among them and may
    well run, so a cancel record says nothing of it."""
    return {str(j) for n in history.notes if n.get("e") == "cancel" for j in n.get("jobs") or []}


def job_kind(job_id: str) -> str | None:
    """The executor kind a recorded job id belongs to: ``pid-N`` a local process, ``N`` or
    ``N_M`` a SLURM job; None for the kinds whose trials never outlive their driver."""
    if job_id.startswith("pid-"):
        return "local"
    return "slurm" if job_id and job_id.split("_")[0].isdigit() else None


def left_to_another_kind(history: History, directory: str, kind: str) -> dict[int, str]:
    """Trials a killed driver left running (or ended, not yet recorded) as jobs of another
    executor kind than ``kind``, with the kind of each (``job_kind``), in trial order: a
    resume under ``kind`` cannot watch or collect them, and would run each a second time
    beside (or after) its first run. A SLURM job ``cancel`` cancelled is not among them (it
    runs no more, and such a resume runs its trial again) unless it ran to its end before
    SLURM stopped it, leaving a result that stands. A trial recorded as asked whose
    job was submitted unrecorded (found by its name) is a SLURM job's; one whose worker was
    started unrecorded, a local one's."""
    states, found = trial_states_found(history, False, directory)
    cancelled = cancelled_jobs(history)
    left = {}
    for t, state in sorted(states.items()):
        if state not in ("running-alone", "ended-alone"):
            continue
        rec = history.trials[t]
        job_id = rec.job_id if rec.status == "running" else found.get(t)
        if job_id is not None and job_id in cancelled \
                and not result_stands(directory, job_id):
            continue
        owner = job_kind(job_id or "") if job_id is not None else "local"
        if owner is not None and owner != kind:
            left[t] = owner
    return left


#: a pretrain left in flight with no driver, and what the next ``run`` does with it
STAGE_ALONE = {"running-alone": "its job runs without a driver: the next run waits for it",
               "ended-alone": "ended without a driver: the next run records it",
               "interrupted": "nothing runs it: the next run runs it again"}


def stage_states(history: History, running_driver: bool | None,
                 directory: str | None) -> dict[str, str]:
    """Each stage's state by name (``stage_state``), for trajectory.csv's stage rows: the
    pretrain's row says what ``status`` says of it (``running-alone``, not ``running``,
    once its driver is gone)."""
    cancelled = cancelled_jobs(history)
    return {name: stage_state(st, running_driver, directory, cancelled)
            for name, st in history.stages.items()}


def stage_state(st: Any, running_driver: bool | None, directory: str | None,
                cancelled: set[str]) -> str:
    """The pretrain's state as ``status`` says it: as recorded, except one recorded as
    running with no driver, which is said as a trial's would be (``trial_states``): its
    SLURM job not cancelled and without a result, or its local worker alive, runs alone; a
    SLURM job or local worker that ended left its outcome; anything else is interrupted. A
    job ``cancel`` cancelled is interrupted (the next run records it cancelled and runs it
    again) unless its step ran to its end before SLURM stopped it (``result_stands``): the
    next run records that result, the checkpoint it built is kept."""
    if st.status != "running" or running_driver or running_driver is None:
        return st.status
    job_id = st.job_id or ""
    if job_kind(job_id) == "slurm":
        if job_id in cancelled:  # its outcome is its result where its step ran to the end
            return "ended-alone" if result_stands(directory, job_id) else "interrupted"
        return "ended-alone" if slurm_result_left(directory, job_id) else "running-alone"
    if job_kind(job_id) == "local" and directory:
        from .executors.local import worker_alive, worker_ended

        stage_dir = os.path.join(directory, "stages", st.name)
        if worker_alive(stage_dir, job_id):
            return "running-alone"
        if worker_ended(stage_dir, job_id, st.attempt):
            return "ended-alone"
    return "interrupted"


def stage_left_to_another_kind(history: History, directory: str, kind: str
                               ) -> dict[str, tuple[str, str]]:
    """The stages (the pretrain) a killed driver left ``running-alone`` or ``ended-alone``
    (``stage_state``) as a job of another executor kind than ``kind``: name -> (its job id,
    the job's kind, ``job_kind``). A resume under ``kind`` cannot re-attach to that job: it
    would find the checkpoint the job built in the cache and record it ``cached`` at no cost
    (the job's compute lost from the study's totals), or build it a second time beside the
    job still running. As for the trials (``left_to_another_kind``), a job ``cancel``
    cancelled is not among them unless its result stands; a pretrain recorded cancelled, or
    interrupted (nothing left to collect), is not."""
    cancelled = cancelled_jobs(history)
    left = {}
    for name, st in sorted(history.stages.items()):
        if stage_state(st, False, directory, cancelled) not in ("running-alone", "ended-alone"):
            continue
        owner = job_kind(st.job_id or "")
        if owner is not None and owner != kind:
            left[name] = (st.job_id, owner)
    return left
