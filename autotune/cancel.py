"""``python -m autotune cancel DIR``: stop a study's driver and cancel its SLURM jobs.

Order:

1. the driver of the study, if one runs on this host (SIGTERM: it stops gracefully; under
   the slurm executor it leaves its jobs alone), so that it cannot submit more while the
   jobs are being cancelled; an ask/tell loop, the user's own Python process, is asked to
   stop by a note instead (a signal would kill that process);
2. every job of the study that is queued or running, in one ``scancel``: the job ids of the
   unfinished trials in the history, and any job named after the study (one a dead driver
   submitted and did not record); a recorded job SLURM lists as ended, one a cancel before
   cancelled, is not, so a second cancel says nothing was left;
3. a ``cancel`` record in the history naming those jobs, where there were any: it is what
   says them cancelled by autotune, not by someone else, to ``status`` and the next run (a
   cancel that cancelled no job has nothing to record; the driver is stopped by its signal
   and ``cancel_mark``, not by the record);
4. a wait (up to ``ENDING_S``) for those jobs to leave SLURM's queue; local trials a dead
   driver left are stopped;
5. trajectory.csv written again from the history (a killed driver's last one says
   ``running``).

A ``compare`` DIR, no study itself, is cancelled whole: each of its studies (the runs, the
shared pretrain), the one a driver holds first (``cancel_comparison``). A driver started
again later re-attaches to those jobs, finds them cancelled, records the trials as cancelled
and goes on with the search.

A cancelled job is not over at once: SLURM sends SIGTERM, then SIGKILL after its KillWait
(30 s by default), and submitit ignores the SIGTERM, so an ``entry`` runs on meanwhile and
may end, its result whole (a pretrain's checkpoint in the cache). That result is the job's
outcome: the next run records it (a pretrain ``ok``, its checkpoint kept, not built again), as
``status`` says (``ended-alone``, not ``interrupted``). The wait is what makes ``status``
right as soon as ``cancel`` returns (before, a job still ending was said ``interrupted`` and
then recorded ``ok``), and ``cancel`` names the jobs that so ended.
"""
from __future__ import annotations

import functools

import json
import os
import signal
import socket
import time

from . import cancel_mark
from . import events as ev
from .cancel_mark import CANCELLED
from .driver import EXTERNAL
from .errors import StudyError
from .executors.slurm_query import ACTIVE, SlurmError, list_study_jobs, queue_states, scancel
from .history import History
from .journal import Journal
from .states import cancelled_jobs, result_stands
from .studydir import StudyDir, no_study, require

DRIVER_STOP_S = 60.0
#: how long cancel waits for the jobs it cancelled to end: their steps may run on until
#: SLURM's KillWait (30 s by default) and end meanwhile, leaving a result that stands
ENDING_S = 90.0
ENDING_POLL_S = 0.5


def cancel_study(study_dir: str) -> str:
    """Cancel the study's queued and running jobs and record it; a line saying what was done."""
    sdir = StudyDir(study_dir)
    if not sdir.exists():
        runs = comparison_studies(study_dir)
        if runs:
            return cancel_comparison(study_dir, runs)
        raise no_study(study_dir)
    try:
        return _cancel(sdir, study_dir)
    finally:
        cancel_mark.clear(sdir.path)  # written as the driver was stopped (stop_driver)


def comparison_studies(path: str) -> list[str]:
    """The studies of a ``compare`` DIR (its runs, ``<algorithm>-s<seed>/``, and the shared
    pretrain's ``pretrain/``); [] for any other directory (a folder of unrelated studies is
    not cancelled whole)."""
    from .compare import comparison_part
    from .studydir import studies_in

    names = studies_in(path)
    return names if names and all(comparison_part(n) for n in names) else []


def cancel_comparison(out_dir: str, names: list[str]) -> str:
    """``cancel DIR`` for a comparison: every study in it, as ``cancel`` one study. The one a
    driver holds first (the ``compare`` process runs its runs one at a time, the pretrain
    first): stopped, it stops the comparison, so no later run starts; then the others, whose
    jobs a killed ``compare`` may have left. A line per outcome, not per study: the studies
    that fared alike (most often all of them: nothing to cancel, a read-only DIR) share one
    (``said_once``). Where any failed, the failures come first, then what was done, raised
    as the failure of one study would be (exit status 2)."""
    said: list[tuple[str, str]] = []
    failed: list[tuple[str, StudyError]] = []

    def held(names: list[str]) -> list[str]:
        return [n for n in names if StudyDir(os.path.join(out_dir, n)).driver_running()]

    def cancel(names: list[str]) -> None:
        for name in names:
            try:
                said.append((name, cancel_study(os.path.join(out_dir, name))))
            except StudyError as exc:
                failed.append((name, exc))

    first = held(names)
    cancel(first + [n for n in names if n not in first])
    if not first:  # compare was between two runs as this looked: the next may be held now
        cancel(held(comparison_studies(out_dir)))
    total = len(comparison_studies(out_dir))
    if failed:
        lines = said_once(out_dir, [(n, str(exc)) for n, exc in failed], total)
        kinds = {type(exc) for _, exc in failed}
        kind = kinds.pop() if len(kinds) == 1 else StudyError  # its exit status, as for one
        raise kind("\n".join(lines + said_once(out_dir, said, total)))
    return "\n".join(said_once(out_dir, said, total))


def said_once(out_dir: str, said: list[tuple[str, str]], total: int) -> list[str]:
    """What cancel said of each study of a comparison (folder name, text), a line per text:
    ``DIR/<name>: text`` for a study alone, else ``DIR: each of its N studies (a, b, ...):
    text`` (``N of its M`` where not all), each study's own path in the text written
    ``DIR/<study>``. Four runs with nothing to cancel said the same line four times over."""
    mark = "\0study\0"
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, text in said:
        path = os.path.join(out_dir, name)
        key = text.replace(os.path.abspath(path), f"{mark}abs").replace(path, f"{mark}rel")
        groups.setdefault(key, []).append((name, text))
    lines = []
    for key, members in groups.items():
        if len(members) == 1:
            name, text = members[0]
            lines.append(f"{os.path.join(out_dir, name)}: {text}")
            continue
        text = key.replace(f"{mark}abs", os.path.join(os.path.abspath(out_dir), "<study>")) \
            .replace(f"{mark}rel", os.path.join(out_dir, "<study>"))
        which = (f"each of its {len(members)}" if len(members) >= total
                 else f"{len(members)} of its {total}")
        lines.append(f"{out_dir}: {which} studies ({', '.join(n for n, _ in members)}): {text}")
    return lines


def _cancel(sdir: StudyDir, study_dir: str) -> str:
    check_recordable(sdir)
    said = []
    card = sdir.card() if sdir.driver_running() else {}
    loop = card.get("by") == "ask/tell"  # the user's own process: asked, not signalled
    driver = stop_loop(sdir, card) if loop else stop_driver(sdir)
    if driver:
        said.append(driver)
    journal = Journal(sdir.history)
    history = History.load(journal)
    if not history.study and not history.trials:
        raise StudyError(f"{study_dir}: history.jsonl holds no study record")
    t0 = history.start_time()
    if t0 is None:  # a damaged study record: look for the study's jobs at any time
        t0 = 0.0
    in_flight = [rec.job_id for rec in history.trials.values() if not rec.done and rec.job_id]
    in_flight += [st.job_id for st in history.stages.values()  # the pretrain's own job
                  if st.status == "running" and st.job_id]
    recorded = sorted({j for j in in_flight if _is_slurm_id(j)})
    others = sorted(j for j in in_flight if not _is_slurm_id(j) and j != EXTERNAL)
    jobs = list(recorded)
    failed = ""
    slurm_study = history.study.get("config", {}).get("executor", {})
    slurm_study = isinstance(slurm_study, dict) and slurm_study.get("kind") == "slurm"
    if recorded or slurm_study:
        try:
            jobs = still_queued(sdir, t0, recorded)
        except SlurmError as exc:
            failed = f" (could not list the study's jobs: {exc})"
        try:
            scancel(jobs)
        except SlurmError as exc:
            raise StudyError(f"cancel: scancel failed: {exc}") from None
    if jobs:  # only a record naming jobs is read (``states.cancelled_jobs``): no empty one
        journal.append([ev.cancel(time.time() - t0, jobs)])
    journal.close()
    stopped = 0 if driver and not loop else stop_local_trials(sdir, history)
    local = []
    if stopped:
        local.append(f"stopped {stopped} local trial(s) left running by a dead driver")
    if jobs:
        said.append(f"cancelled {len(jobs)} slurm job(s): {' '.join(jobs)}{failed}")
        said += settled(sdir, history, jobs)
    elif failed or (recorded or slurm_study) and (driver or local):
        said.append(f"no queued or running slurm jobs{failed}")  # a local study has none
    said += local
    if not said:  # nothing ran: say so rather than print nothing (a second cancel included)
        runs = ("none of its SLURM jobs is queued or running" if recorded or slurm_study
                else f"none of the {len(others)} local trial(s) it left in flight still runs"
                if others else "none of its trials runs")
        before = [j for j in recorded if j in cancelled_jobs(history)]
        before_said = (f" (cancelled before: {' '.join(before)}; the next run records them)"
                       if before else "")
        said.append(f"nothing to cancel: no driver holds the study and {runs}{before_said}")
    rewrite_trajectory(sdir)
    return "; ".join(said)


def check_recordable(sdir: StudyDir) -> None:
    """Refuse, before the driver is stopped or a job cancelled, a study whose history this
    user cannot append the cancel to (a read-only copy, another user's study): it failed
    after all that, naming the history's lock file. A directory that may not be added to
    but whose files may be written (``chmod a-w DIR``) is taken: the lock and history are
    there, and only trajectory.csv is left as it was (``rewrite_trajectory``). A lock file
    made a directory is refused so too: the record's append failed on it after the
    ``scancel``, the jobs cancelled and not recorded."""
    lock = Journal(sdir.history).lock.lock_file
    if os.path.isdir(lock):  # a copy gone wrong, a mkdir by hand: no lock can be taken there
        raise StudyError(f"cannot access {lock} (Is a directory)")
    if not (_blocked(sdir.path, lock) or _blocked(sdir.path, sdir.history)):
        return
    hint = "; cancel records the cancel in its history.jsonl: nothing was cancelled"
    require(sdir.path, write=True, hint=f": the study directory is read-only{hint}")
    require(sdir.history, write=True, folder=False, hint=hint)
    raise StudyError(f"cannot write {sdir.path}: its files are read-only{hint}")


def _blocked(directory: str, path: str) -> bool:
    """Whether ``path`` (in ``directory``) can be neither written nor made."""
    if os.path.exists(path):
        return not os.access(path, os.W_OK)
    return not os.access(directory, os.W_OK | os.X_OK)


def still_queued(sdir: StudyDir, t0: float, recorded: list[str]) -> list[str]:
    """The study's jobs SLURM still queues or runs, recorded or not (orphans a dead driver
    submitted), to be cancelled. A recorded job SLURM lists as ended (a cancel before this
    one cancelled it, or it ran to its end) is none: cancelled again, it was said cancelled
    again. One SLURM's list may lack because sacct or squeue failed is cancelled all the
    same; raises SlurmError where both failed."""
    found, errors = list_study_jobs(sdir.path, t0)
    if len(errors) == 2:
        raise SlurmError("; ".join(errors))
    active = {job_id for job_id, info in found.items() if info.active}
    unknown = {job_id for job_id in recorded if job_id not in found} if errors else set()
    return sorted(active | unknown, key=_id_key)


def settled(sdir: StudyDir, history: History, jobs: list[str]) -> list[str]:
    """Wait for the cancelled ``jobs`` to end; what is to be said of those that ran to
    their end meanwhile (their results stand: the next run records them, not a cancel) and
    of any still ending when the wait gave up."""
    said = []
    still = ending(jobs)
    late = ("; one that runs to its end before SLURM stops it leaves its result, which the "
            "next run records")
    if still is None:
        said.append(f"could not see whether the cancelled jobs ended (squeue failed){late}")
    elif still:
        said.append(f"{len(still)} job(s) still ending after {ENDING_S:g} s: "
                    f"{' '.join(still)}{late}")
    for st in history.stages.values():
        if st.status == "running" and st.job_id in jobs and result_stands(sdir.path, st.job_id):
            said.append(f"the {st.name}'s job {st.job_id} ran to its end before SLURM stopped "
                        "it: the next run records its result, not a cancel (a checkpoint it "
                        "built is kept, not built again)")
    ran = [rec.trial for rec in history.trials.values()
           if not rec.done and rec.job_id in jobs and result_stands(sdir.path, rec.job_id)]
    if ran:
        said.append(f"{len(ran)} trial(s) ({', '.join(map(str, sorted(ran)))}) ran to their "
                    "end before SLURM stopped their jobs: the next run records their "
                    "results, not a cancel")
    return said


def ending(jobs: list[str], give_up_s: float = ENDING_S) -> list[str] | None:
    """Wait until none of ``jobs`` is in SLURM's queue any more (a cancelled job that ran
    shows COMPLETING while its step runs on, up to KillWait); those still there when
    ``give_up_s`` passed ([] once all ended), None where squeue could not say."""
    give_up = time.monotonic() + give_up_s
    while True:
        try:
            states = queue_states(jobs)
        except SlurmError:
            return None
        still = sorted((j for j, state in states.items() if state in ACTIVE), key=_id_key)
        if not still or time.monotonic() >= give_up:
            return still
        time.sleep(ENDING_POLL_S)


def rewrite_trajectory(sdir: StudyDir) -> None:
    """trajectory.csv as the history now says, as ``report`` writes it: a killed driver's
    last one still says ``running`` for the trials cancel stopped (now ``ended-alone``, a
    cancelled SLURM job the next run records as cancelled; ``interrupted``, a local trial).
    Only while no driver holds the study (one started meanwhile writes its own); a CSV that
    cannot be written costs the view only, the cancel is recorded."""
    from .states import stage_states, trial_states
    from .trajectory import table, write_csv_atomic

    try:
        sdir.acquire()
    except StudyError:  # StudyBusy: a driver runs again; or the lock cannot be taken here
        return
    try:
        history = History.load(Journal(sdir.history))
        if history.study:
            write_csv_atomic(sdir.trajectory, *table(history,
                                                     trial_states(history, False, sdir.path),
                                                     stage_states(history, False, sdir.path)))
    except OSError:
        pass
    finally:
        sdir.release()


def stop_local_trials(sdir: StudyDir, history: History) -> int:
    """End the process groups of local trials whose driver died (they run on otherwise):
    those recorded as started, and those it started without living to record it (found as
    the next run would find them, ``latest_worker``)."""
    from .executors.local import latest_worker
    from .executors.procgroup import end_group, marked_workers

    marked = functools.cache(marked_workers)  # one /proc pass for every pending trial

    stopped = 0
    for rec in history.trials.values():
        if rec.done:
            continue
        tdir = sdir.trial_dir(rec.trial)
        if rec.job_id.startswith("pid-") and rec.job_id[4:].isdigit():
            stopped += end_group(int(rec.job_id[4:]), tdir) > 0
        elif rec.status == "pending" and (pid := latest_worker(tdir, marked)) is not None:
            stopped += end_group(pid, tdir) > 0
    for st in history.stages.values():
        if st.status == "running" and st.job_id.startswith("pid-") and st.job_id[4:].isdigit():
            stopped += end_group(int(st.job_id[4:]), os.path.join(sdir.path, "stages", st.name)) > 0
    return stopped


def stop_driver(sdir: StudyDir) -> str:
    """SIGTERM the study's driver if it runs on this host, and wait for it to let go."""
    if not sdir.driver_running():
        return ""
    try:
        with open(os.path.join(sdir.path, "driver.json")) as fh:
            holder = json.load(fh)
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        raise StudyError(f"{sdir.path}: a driver runs but driver.json does not say which; "
                         "stop it first") from None
    if host != socket.gethostname():
        raise StudyError(f"{sdir.path}: its driver runs on host {host} (pid {pid}); "
                         "run cancel there, or stop that driver first")
    cancel_mark.mark(sdir.path, pid)  # so that it says its jobs are cancelled, not left
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return ""
    give_up = time.monotonic() + DRIVER_STOP_S
    while sdir.driver_running():
        if time.monotonic() > give_up:
            raise StudyError(f"{sdir.path}: driver pid {pid} did not stop within "
                             f"{DRIVER_STOP_S:g}s of SIGTERM; nothing cancelled")
        time.sleep(0.1)
    return f"stopped the driver (pid {pid})"


def stop_loop(sdir: StudyDir, card: dict) -> str:
    """Ask the ask/tell loop holding the study to stop: it runs in the user's own Python
    process (a notebook's kernel, a script), which a SIGTERM would kill with all it holds.
    Its next ``ask()`` returns None, ``finished`` True, and the trials it holds may still
    be told; it keeps the directory until it closes, on whatever host it runs."""
    try:
        cancel_mark.stop_asking(sdir.path, card)
    except OSError as exc:
        raise StudyError(f"{sdir.path}: cannot leave the note that stops its ask/tell loop "
                         f"({exc}); nothing cancelled") from None
    return (f"asked the ask/tell loop holding the study (pid {card.get('pid')} on host "
            f"{card.get('host')}) to stop, without a signal: its next ask() returns None "
            f"(finished, end_reason '{CANCELLED}')")


def _is_slurm_id(job_id: str) -> bool:
    head, _, tail = job_id.partition("_")
    return head.isdigit() and (not tail or tail.isdigit())


def _id_key(job_id: str) -> tuple:
    head, _, tail = job_id.partition("_")
    return (int(head) if head.isdigit() else 0, tail)
