"""Talking to SLURM's command-line tools: batched sacct queries, job names, state kinds.

Kept apart from the executor so that ``autotune cancel`` can use it without submitit.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from dataclasses import dataclass

#: states in which a job may still run (or run again)
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED",
          "CONFIGURING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD",
          "STOPPED", "SPECIAL_EXIT"}

#: terminal SLURM state -> the Outcome's failure kind, when the job left no result behind
FAILURE_KIND = {
    "CANCELLED": "cancelled",
    "TIMEOUT": "timeout",
    "DEADLINE": "timeout",
    "NODE_FAIL": "node",
    "BOOT_FAIL": "node",
    "PREEMPTED": "preempted",
    "OUT_OF_MEMORY": "exit",
    "FAILED": "exit",
    "COMPLETED": "lost",
    "REVOKED": "cancelled",
}


class SlurmError(Exception):
    """A SLURM command failed (not reachable, refused, timed out)."""


def run_command(args: list[str], timeout: float = 60.0) -> str:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SlurmError(f"{args[0]}: not found (is this a SLURM login node?)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{args[0]}: no answer within {timeout:g}s") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise SlurmError(f"{args[0]} failed (status {proc.returncode}): "
                         f"{message[-1] if message else 'no message'}")
    return proc.stdout


def name_prefix(study_dir: str) -> str:
    """``at-<dir name>-<hash of its path>-``: the study's jobs, and no other study's."""
    path = os.path.abspath(study_dir)
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(path.rstrip("/")))[:40] or "study"
    digest = hashlib.sha1(path.encode()).hexdigest()[:6]
    return f"at-{base}-{digest}-"


def job_name(study_dir: str, trial: int, attempt: int) -> str:
    return f"{name_prefix(study_dir)}{trial}-{attempt}"


def parse_time(text: str) -> float | None:
    """sacct's local time stamp (2024-11-23T03:50:10) as epoch seconds; None if unknown."""
    if not text or text in ("Unknown", "None", "N/A") or not text[0].isdigit():
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def format_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


@dataclass
class JobInfo:
    """What sacct says of one job id: its latest record, and how often it was requeued."""

    job_id: str
    name: str
    state: str          # first word: CANCELLED, not "CANCELLED by 0"
    submit: float | None
    start: float | None
    end: float | None
    exit_code: str
    requeues: int       # earlier records of the same id (requeued, preempted, node failure)
    requeue_reasons: list[str]
    #: when its latest run before this record ended (requeued): a result left by a run that
    #: started before it is that run's, not the latest's
    requeued_at: float | None = None
    #: seconds its runs before the latest record ran (each requeued run's Start to End):
    #: compute the job used too, which the latest record's times leave out
    earlier_s: float = 0.0

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"


SACCT_FIELDS = "JobIDRaw,JobName,State,Submit,Start,End,ExitCode"


def parse_sacct(text: str) -> dict[str, JobInfo]:
    """Lines of ``sacct -X -D -n -P -o SACCT_FIELDS``, in sacct's order (oldest record first)."""
    records: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 7 or not parts[0] or "." in parts[0]:
            continue
        records.setdefault(parts[0], []).append(parts)
    infos = {}
    for job_id, rows in records.items():
        rows.sort(key=lambda r: (parse_time(r[3]) or 0.0))
        last = rows[-1]
        state = last[2].split()[0] if last[2] else "UNKNOWN"
        if state == "REQUEUED":
            state = "PENDING"  # the record of its next run is not in the database yet
        earlier = [r[2].split()[0] for r in rows[:-1] if r[2]]
        ran = rows[:-1]
        if last[2].split()[0:1] == ["REQUEUED"]:
            earlier.append("REQUEUED")
            ran = rows
        ends = [t for t in (parse_time(r[5]) for r in ran) if t is not None]
        infos[job_id] = JobInfo(job_id, last[1], state, parse_time(last[3]), parse_time(last[4]),
                                parse_time(last[5]), last[6], len(earlier), earlier,
                                max(ends) if ends else None, sum(map(_ran_s, ran)))
    return infos


def _ran_s(row: list[str]) -> float:
    """How long one sacct record's run ran: Start to End (none if it never started)."""
    start, end = parse_time(row[4]), parse_time(row[5])
    return max(0.0, end - start) if start is not None and end is not None else 0.0


def sacct(job_ids: list[str]) -> dict[str, JobInfo]:
    """One sacct call for all these job ids (every record, requeues included)."""
    if not job_ids:
        return {}
    out = run_command(["sacct", "-X", "-D", "-n", "-P", "-o", SACCT_FIELDS,
                       "-j", ",".join(job_ids)])
    return parse_sacct(out)


def study_jobs(study_dir: str, since: float) -> dict[str, JobInfo]:
    """Every job of this study that SLURM knows of, by job id: sacct since ``since`` and squeue.

    Two calls, made once when a driver starts; they find the jobs a dead driver submitted but
    did not get to record (a job name says its study, trial and attempt). Raises SlurmError
    only when both fail.
    """
    found, errors = list_study_jobs(study_dir, since)
    if len(errors) == 2:
        raise SlurmError("; ".join(errors))
    return found


def list_study_jobs(study_dir: str, since: float,
                    timeout: float = 60.0) -> tuple[dict[str, JobInfo], list[str]]:
    """``study_jobs``'s list and the errors of the calls that failed: a driver re-attaching
    must know when the list may be short (a job missing from it is taken as unknown).
    ``timeout``: seconds each of the two calls is given."""
    prefix = name_prefix(study_dir)
    found: dict[str, JobInfo] = {}
    errors = []
    try:
        out = run_command(["sacct", "-X", "-D", "-n", "-P", "-o", SACCT_FIELDS,
                           "-S", format_time(since - 120), "-E", "now"], timeout)
        found.update({k: v for k, v in parse_sacct(out).items() if v.name.startswith(prefix)})
    except SlurmError as exc:
        errors.append(str(exc))
    try:  # squeue: jobs not yet started are not in sacct's time window; recent ones may lag
        out = run_command(["squeue", "-h", "-t", "all", "-o", "%i|%j|%T", "-u", _user()],
                          timeout)
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3 and parts[1].startswith(prefix) and parts[0] not in found:
                found[parts[0]] = JobInfo(parts[0], parts[1], parts[2], None, None, None, "", 0, [])
    except SlurmError as exc:
        errors.append(str(exc))
    return found, errors


def unrecorded_job(jobs: dict[str, JobInfo], study_dir: str, trial: int, attempt: int,
                   taken: set[str] | dict[str, int] = frozenset(), world: int = 1
                   ) -> JobInfo | None:
    """The job of this attempt of ``trial`` among the study's ``jobs`` (``list_study_jobs``)
    that a driver submitted and died before recording: found by its name, submitted into
    this study directory as it is now (``submitted_into``), and none of the job ids already
    ``taken`` (recorded or watched). The executor adopts it instead of submitting the
    attempt again, and ``status`` says of its trial what becomes of it (``states``)."""
    name = job_name(study_dir, trial, attempt)
    return next((i for i in jobs.values() if i.name == name and i.job_id not in taken
                 and submitted_into(study_dir, i.job_id, world)), None)


def submitted_into(study_dir: str, job_id: str, world: int = 1) -> bool:
    """Whether the job was submitted into this study directory as it is now: submitit
    keeps the pickled call there (``DIR/slurm/<job id>/``) for the job's whole life, and a
    job that ended leaves its result beside it. A job of the same name from a study that
    once lived at this path (deleted and started again) has neither here, and adopting it
    recorded its end (or its lost result) as this study's trial or pretrain. ``world``: the
    job's processes, any of whose results counts."""
    from ..studydir import StudyDir

    study = StudyDir(study_dir)
    return os.path.exists(study.slurm_submitted(job_id)) or any(
        os.path.exists(study.slurm_result(job_id, rank)) for rank in range(world))


#: why SLURM holds a job that will not start as asked: it waits for nobody but a person
#: (fixing the options, releasing it); a wait for resources, priority or a per-user limit
#: (QOSMaxJobsPerUserLimit) ends by itself and is not here
NEVER_STARTS = {
    "PartitionConfig": "it asks more than its partition allows",
    "PartitionNodeLimit": "it asks more nodes than its partition allows",
    "PartitionTimeLimit": "its time limit exceeds its partition's",
    "BadConstraints": "no node meets its constraints",
    "InvalidAccount": "its account is not valid",
    "InvalidQOS": "its QOS is not valid",
    "DependencyNeverSatisfied": "its dependency can never be met",
    "JobHeldUser": "it is held until released (scontrol release)",
    "JobHeldAdmin": "an administrator holds it",
}


def never_starts(reason: str) -> str | None:
    """What a pending reason means when it means the job will not start by itself; None for
    a wait that ends (Resources, Priority, a per-user limit). A per-job limit of an
    association or QOS (``...PerJobLimit``) is never met by waiting."""
    word = reason.split(",")[0].strip()
    if word in NEVER_STARTS:
        return NEVER_STARTS[word]
    if word.endswith("PerJobLimit") or word.endswith("PerJob"):
        return "it exceeds a per-job limit of its account or QOS"
    return None


def queue_states(job_ids: list[str], timeout: float = 30.0) -> dict[str, str]:
    """The state of each of these jobs that SLURM's queue still holds, by job id (squeue's
    %T: a cancelled job whose step runs on until KillWait shows COMPLETING); a job SLURM has
    forgotten is left out, as squeue does when it names several."""
    if not job_ids:
        return {}
    try:
        out = run_command(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i|%T"], timeout)
    except SlurmError as exc:
        if "Invalid job id" in str(exc):  # one job alone, and SLURM has forgotten it
            return {}
        raise
    states = {}
    for line in out.split():
        job_id, _, state = line.partition("|")
        if job_id in job_ids:
            states[job_id] = state
    return states


def pending_reasons(job_ids: list[str], timeout: float = 10.0) -> dict[str, str]:
    """Why each pending job of these waits, by job id (squeue's %r: sacct says 'None' of a
    held job); jobs not pending, or pending for no reason given, are left out."""
    if not job_ids:
        return {}
    out = run_command(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i|%T|%r"], timeout)
    reasons = {}
    for line in out.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) == 3 and parts[1] == "PENDING" and parts[2] not in ("", "None", "(null)"):
            reasons[parts[0]] = parts[2]
    return reasons


def scancel(job_ids: list[str]) -> None:
    if job_ids:
        run_command(["scancel", *job_ids])


def _user() -> str:
    import getpass

    return getpass.getuser()


def slurm_reachable() -> bool:
    try:
        run_command(["sinfo", "-h", "-o", "%P"], timeout=15)
        return True
    except SlurmError:
        return False


def check_cluster(timeout: float = 5.0) -> None:
    """One ``scontrol ping``: raises SlurmError unless a controller answers (a refused
    connection answers at once; an unreachable host is given ``timeout`` seconds)."""
    try:
        proc = subprocess.run(["scontrol", "ping"], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SlurmError("scontrol: not found (is this a SLURM login node?)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"scontrol ping: no answer within {timeout:g}s") from None
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if "Slurmctld" in ln]
    if not any(ln.endswith("UP") for ln in lines):
        raise SlurmError("; ".join(lines) or f"scontrol ping: status {proc.returncode}")
