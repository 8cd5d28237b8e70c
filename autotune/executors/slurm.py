"""Trials as SLURM jobs through submitit: ``executor: {kind: slurm, ...}``.

One job per attempt, named ``at-<study dir>-<hash>-<trial>-<attempt>``, its submitit files
under ``<study dir>/slurm/<job id>/``. The driver learns what happened from two sources:

- the job's result pickle, looked at on disk (cheap, every half second at most): a trial that
  finished, well or with its exception, comes back at once;
- one ``sacct`` call per poll for all the jobs in flight together (never one per job), at most
  every ``poll_s`` seconds and less often (up to ``max_poll_s``) while nothing changes. It gives
  start times, requeues, and the end of jobs that left no result (cancelled, timed out, node
  failure, preempted, out of memory, lost).

Requeue: a job that SLURM or submitit requeues (preemption, time-out with submitit's
checkpointing, node failure with JobRequeue) keeps its job id and continues from the trial's
checkpoint; after ``max_requeue`` requeues it is cancelled and reported as failed with the
kind of its last interruption. The driver's own death does not touch the jobs: ``shutdown``
only stops watching, and a restarted driver ``reattach``es to them by the job ids in the
history; a job submitted but not yet recorded when the driver died is found by its name
and adopted by ``submit`` instead of being submitted twice.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import StudyError
from ..logtail import last_line
from ..ranks import rank_message
from ..studydir import StudyDir
from .base import UNREADABLE, Executor, Outcome, SubmitLimit, TrialJob, damaged_line
from .registry import register
from .slurm_job import TrialCall, left_after_sigterm
from .slurm_refusal import job_limit_line, names_submit_limit, refusal_kind, sbatch_says
from .slurm_shape import job_shape
from .slurm_query import (FAILURE_KIND, JobInfo, SlurmError, job_name, list_study_jobs,
                          pending_reasons, sacct, scancel, unrecorded_job)

CLEANUP = ("keep", "done", "all")
TEST_ONLY_S = 30.0        # sbatch --test-only before a run: longer, and the check is let be
RESULT_CHECK_S = 0.5      # how often result pickles are looked for on disk
RESULT_GRACE_S = 15.0     # a job that ended may take this long for its result to be seen (NFS):
                          # the default of result_grace_s
SUBMIT_RETRY_S = (1.0, 3.0, 9.0, None)  # pauses between tries of an sbatch that failed
LIST_RETRY_S = (2.0, 5.0, None)   # pauses between tries to list the study's jobs at start
LOST_AFTER_S = 600.0      # a job id sacct never heard of for this long is lost
REASON_EVERY_S = 10.0     # how often a pending job's reason is asked again (squeue)
#: what submitit writes in DIR/slurm/ for one submission, under a fresh uuid, before sbatch
#: answers: the pickled call (moved into the job's folder once sbatch gave a job id) and the
#: sbatch script (moved there, a link left in its place); no job reads either where it lies
SUBMISSION_LEFTOVER = re.compile(r"(?:[0-9a-f]{32}\.pkl|\.submission_file_[0-9a-f]{32}\.sh)")
#: failure kinds of jobs SLURM itself ended: they outrank an error the SIGTERM caused
SLURM_ENDS = {"cancelled", "timeout", "node", "preempted"}


@dataclass
class _Tracked:
    job: TrialJob
    job_id: str
    submitted_s: float
    start_s: float | None = None
    state: str = "PENDING"
    requeues: int = 0
    requeue_reasons: list[str] = field(default_factory=list)
    ended_seen: float | None = None     # monotonic time sacct first said it ended
    info_seen: bool = False
    limit_failure: str = ""             # set when we cancel it for too many requeues
    results: dict[int, tuple] = field(default_factory=dict)  # rank -> (status, payload) read
    reason: str = ""                    # why it pends, as squeue last said
    #: rank -> (mtime_ns, size) of an error file read and left (after SLURM's SIGTERM): read
    #: again only once it changes, not every half second of a requeue
    left: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: epoch when the job's latest requeue ended its run before (sacct): a result that run
    #: left is not the attempt's
    requeued_at: float | None = None
    #: seconds the job's runs before its latest ran (sacct): the attempt's cost counts them
    earlier_s: float = 0.0
    #: rank -> why its result file could not be unpickled when last read: half-written (NFS)
    #: until the job has ended and the grace for late files is over, damaged after that
    torn: dict[int, str] = field(default_factory=dict)


@register
class SlurmExecutor(Executor):
    kind = "slurm"
    options = {
        "partition": "str",
        "time_limit_min": "positive-int",
        "gpus_per_job": "nonneg-int",
        "cpus_per_job": "positive-int",
        "nodes": "positive-int",
        "tasks_per_node": "positive-int",
        "gpus_per_node": "nonneg-int",
        "gpus_per_task": "nonneg-int",
        "cpus_per_task": "positive-int",
        "launch": "str",
        "mem_gb": "positive-number",
        "account": "str",
        "qos": "str",
        "sbatch_extra": "mapping",
        "sbatch_flags": "list",
        "setup": "list",
        "cleanup": "str",
        "max_requeue": "nonneg-int",
        "poll_s": "positive-number",
        "max_poll_s": "positive-number",
        "result_grace_s": "nonneg-number",
        "python": "str",
        "signal_delay_s": "nonneg-int",
    }

    other_names = {
        "mem": "sbatch's --mem is mem_gb here (in GB)",
        "time": "sbatch's --time is time_limit_min here (in minutes)",
        "gres": "GPUs are gpus_per_node here (or gpus_per_task)",
        "gpus": "GPUs are gpus_per_node here (or gpus_per_task)",
        "ntasks": "a job's tasks are nodes x tasks_per_node here",
        "cpus": "CPUs are cpus_per_task here",
        "constraint": "sbatch options of no key of their own go in sbatch_extra or sbatch_flags",
        "exclusive": "sbatch options of no key of their own go in sbatch_extra or sbatch_flags",
        "reservation": "sbatch options of no key of their own go in sbatch_extra or sbatch_flags",
    }

    @classmethod
    def check_options(cls, o: dict[str, Any]) -> None:
        """Every option checked while the study file is read, before anything is written."""
        if o.get("cleanup", "done") not in CLEANUP:
            raise StudyError(f"executor.cleanup: expected one of {', '.join(CLEANUP)}, "
                             f"got {o['cleanup']!r}")
        for key in ("setup", "sbatch_flags"):
            for line in o.get(key) or []:
                if not isinstance(line, str):
                    raise StudyError(f"executor.{key}: expected a list of strings, got {line!r}")
        for flag in o.get("sbatch_flags") or []:
            if not flag.startswith("--"):
                raise StudyError(f"executor.sbatch_flags: expected '--option' or "
                                 f"'--option=value', got {flag!r}")
        check_managed(o)
        job_shape(o)  # nodes, tasks, GPUs and launch agree
        check_one_place(o)
        delay = int(o.get("signal_delay_s", 90))
        limit = int(o.get("time_limit_min") or 60)
        if limit * 60 <= delay + 60:
            raise StudyError(
                f"executor.time_limit_min: {limit} leaves no run time before "
                f"submitit's USR2 warning (signal_delay_s {delay}, which SLURM may send up to "
                f"60 s early, so a job would be requeued as it starts); give at least "
                f"{(delay + 60) // 60 + 1} or a smaller signal_delay_s")

    @classmethod
    def preflight(cls, o: dict[str, Any]) -> None:
        """Before anything is written: one quick query, so that a cluster that does not answer
        is refused in seconds instead of after a minute of sbatch retries per trial; then
        ``check_submission`` (sbatch --test-only) on the options."""
        from .slurm_query import check_cluster

        try:
            check_cluster()
        except SlurmError as exc:
            raise StudyError(f"executor.kind: slurm, but the cluster does not answer ({exc})") from None
        check_submission(o)

    @classmethod
    def preflight_more(cls, o: dict[str, Any]) -> None:
        """The pretrain's options through ``sbatch --test-only`` only: the controller has
        just answered the first ``preflight``'s ping (a second one cost up to 5 s more on a
        busy login node)."""
        check_submission(o)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        o = self.opts
        self.check_options(o)
        self.cleanup = o.get("cleanup", "done")
        self.max_requeue = int(o.get("max_requeue", 3))
        self.shape = job_shape(o)
        self.world = self.shape.processes
        self.poll_s = float(o.get("poll_s", 2.0))
        self.max_poll_s = max(self.poll_s, float(o.get("max_poll_s", 30.0)))
        # how long a job sacct says completed may take for its result file to show: a shared
        # file system's attribute cache (NFS actimeo) can hide a new file for many seconds;
        # a job that left no readable result after it is lost (or its result damaged)
        self.result_grace_s = float(o.get("result_grace_s", RESULT_GRACE_S))
        self._files = StudyDir(self.study_dir)  # where submitit's files of each job are
        self.folder = self._files.slurm
        self._tracked: dict[int, _Tracked] = {}
        self._by_id: dict[str, int] = {}
        self._known: dict[str, JobInfo] | None = None   # the study's jobs when we started
        self._unlisted = False                           # ... which SLURM would not list
        self._interval = self.poll_s
        self._next_query = 0.0
        self._next_files = 0.0
        self._warned = ""
        self._reasons_next = 0.0  # monotonic time to ask squeue why the trials' jobs wait
        self._stopped = False
        self._created = time.time()
        self._swept = False  # the submissions' leftovers of earlier drivers (_sweep)
        #: job id -> the job handed back by ``poll`` whose files stay until its outcome is
        #: recorded (``release``): a driver killed in between finds the result again
        self._unreleased: dict[str, tuple[_Tracked, Outcome]] = {}
        #: counters for benchmarks and the curious: sacct calls, sbatch calls, adoptions
        self.stats = {"queries": 0, "query_s": 0.0, "submits": 0, "adopted": 0, "reattached": 0}
        self._ex = self._make_executor()

    # ---- submitit -------------------------------------------------------------------------
    def _make_executor(self):
        try:
            from submitit import SlurmExecutor as SubmititSlurm
        except ImportError:  # pragma: no cover - a dependency
            raise StudyError("executor.kind: slurm needs the submitit package "
                             "(pip install submitit)") from None
        python = self.opts.get("python") or sys.executable
        try:
            ex = SubmititSlurm(folder=os.path.join(self.folder, "%j"),
                               max_num_timeout=self.max_requeue, python=python)
        except RuntimeError as exc:
            raise StudyError(f"executor.kind: slurm, but {exc}") from None
        ex.update_parameters(**self._parameters())
        return ex

    def _parameters(self) -> dict[str, Any]:
        return sbatch_parameters(self.opts, self._setup_lines())

    def _time_limit(self) -> int:
        return time_limit(self.opts)

    def _setup_lines(self) -> list[str]:
        """The user's lines, then: make autotune (and the objective) importable on the node."""
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        lines = list(self.opts.get("setup") or [])
        lines.append(f'export PYTHONPATH="{package_root}${{PYTHONPATH:+:$PYTHONPATH}}"')
        return lines

    # ---- submit / adopt / reattach ---------------------------------------------------------
    def _study_jobs(self) -> dict[str, JobInfo]:
        """The study's jobs SLURM knows of, listed once (two calls) per driver, tried again
        a few times while sacct or squeue fails (``_unlisted`` says when all tries did)."""
        if self._known is None:
            for pause in LIST_RETRY_S:
                self._known, errors = list_study_jobs(self.study_dir, self.t0)
                self.stats["queries"] += 1
                if not errors:
                    break
                if pause is None:
                    self._warn(f"slurm: cannot list the study's jobs ({'; '.join(errors)}); "
                               "the jobs the history records are watched as they are")
                    self._unlisted = True
                else:
                    time.sleep(pause)
        return self._known

    def submit(self, job: TrialJob) -> str:
        self._sweep()
        name = job_name(self.study_dir, job.trial, job.attempt)
        orphan = unrecorded_job(self._study_jobs(), self.study_dir, job.trial, job.attempt,
                                self._by_id, self.world)
        if orphan is not None:  # a dead driver submitted it and did not get to record it
            self.stats["adopted"] += 1
            self._track(job, orphan.job_id, orphan)
            return orphan.job_id
        os.makedirs(job.ctx.trial_dir, exist_ok=True)
        call = TrialCall(_objective_dict(job), dict(job.params), job.ctx.as_dict(),
                         launch=self.shape.launch_spec())
        self._ex.update_parameters(job_name=name)
        handle = self._sbatch(call, job.trial)
        self.stats["submits"] += 1
        self._track(job, str(handle.job_id), None)
        self._interval = self.poll_s  # something new: look soon
        self._next_query = min(self._next_query, time.monotonic() + self.poll_s)
        return str(handle.job_id)

    def _sbatch(self, call: TrialCall, trial: int) -> Any:
        """Submit, saying a refusal once, by what it means (slurm_refusal): a submit limit is
        ``SubmitLimit`` at once (it waits for a slot: submit_wait), options
        the cluster refuses, or a per-job limit of its QOS or account the job breaks, are
        one line naming them (and the limit and the key to change), untried again; anything else (the
        controller busy) is tried four times over 13 s. submitit prints sbatch's stderr on
        each failure, which said it four times before the error line said it again: that
        print goes nowhere, the line says it."""
        said = ""
        what = f"trial {trial}" if trial >= 0 else "the pretrain's job"  # stage_runner's -1
        for pause in SUBMIT_RETRY_S:
            before = self._leftovers()
            try:
                with contextlib.redirect_stderr(io.StringIO()):
                    return self._ex.submit(call)
            except Exception as exc:  # noqa: BLE001 - sbatch refused or was unreachable
                said = sbatch_says(str(exc))
                self._drop(self._leftovers() - before)  # submitit leaves them where refused
            kind = refusal_kind(said)
            if kind == "limit":
                raise SubmitLimit(f"executor: sbatch refused {what}: {said}"
                                  f"{self._left_behind()}", said, names_submit_limit(said))
            if kind in ("options", "job_limit") or pause is None:
                break
            time.sleep(pause)
        if refusal_kind(said) in ("options", "job_limit"):
            raise StudyError(f"executor: sbatch refuses the job these options ask for "
                             f"({' '.join(asked(self.opts))}): {said}"
                             f"{job_limit_line(said, self.opts)}{self._left_behind()}")
        raise StudyError(f"executor: sbatch refused {what}: {said}{self._left_behind()}")

    def _leftovers(self) -> set[str]:
        """Names of submitit's files of a submission not (yet) moved to a job's folder."""
        try:
            with os.scandir(self.folder) as entries:
                return {e.name for e in entries if SUBMISSION_LEFTOVER.fullmatch(e.name)
                        and e.is_file(follow_symlinks=False)}
        except OSError:
            return set()

    def _drop(self, names: set[str] | list[str]) -> None:
        for name in names:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.folder, name))

    def _sweep(self) -> None:
        """Once a driver, at its first submission or re-attachment (it holds the study's
        lock: no other driver submits here): drop what a submission an earlier driver was
        killed in left in DIR/slurm/ (submitit's pickle and sbatch script under a uuid, moved
        into the job's folder only once sbatch answered). No job reads them: a job reads its
        call from its own folder (``<job id>_submitted.pkl``), and SLURM keeps its own copy
        of the script. Only files older than this executor: never one a submission of this
        driver's is writing."""
        if self._swept:
            return
        self._swept = True
        old = []
        for name in self._leftovers():
            with contextlib.suppress(OSError):
                if os.lstat(os.path.join(self.folder, name)).st_mtime < self._created - 1.0:
                    old.append(name)
        self._drop(old)

    def _left_behind(self) -> str:
        """What a run stopped by a refused submission leaves: its jobs in flight run on (as
        after Ctrl-C), and the researcher must hear of them and of how to go on."""
        if not self._tracked:
            return ""
        n = len(self._tracked)
        return (f"; {n} trial job{'s' if n != 1 else ''} left queued or running on SLURM (the "
                f"next run re-attaches to them; python -m autotune cancel {self.study_dir} "
                "cancels them)")

    def _has_result(self, job_id: str) -> bool:
        return any(os.path.exists(self._result_path(job_id, rank)) for rank in range(self.world))

    def reattach(self, job: TrialJob, job_id: str) -> bool:
        self._sweep()
        info = self._study_jobs().get(job_id)
        if info is None and not self._unlisted and not self._has_result(job_id):
            return False  # SLURM never heard of it: run the trial again
        # where SLURM could not be asked, the recorded job is watched, not submitted a second
        # time: the next sacct that answers says how it is (or that it is unknown: lost)
        self.stats["reattached"] += 1
        self._track(job, job_id, info)
        return True

    def _track(self, job: TrialJob, job_id: str, info: JobInfo | None) -> None:
        submitted = job.resume_start_s if job.resume_start_s is not None else self.now()
        t = _Tracked(job, job_id, submitted)
        if info is not None:
            self._update(t, info)
        self._tracked[job.trial] = t
        self._by_id[job_id] = job.trial

    # ---- poll -------------------------------------------------------------------------------
    def poll(self, timeout: float) -> list[Outcome]:
        give_up = time.monotonic() + timeout
        while True:
            done: list[Outcome] = []
            now = time.monotonic()
            if now >= self._next_files:
                self._next_files = now + RESULT_CHECK_S
                done += self._collect_results()
            if self._tracked and time.monotonic() >= self._next_query:
                done += self._query()
            if done or not self._tracked or time.monotonic() >= give_up:
                return done
            wake = min(self._next_files, self._next_query, give_up)
            time.sleep(max(0.01, min(0.25, wake - time.monotonic())))

    def _collect_results(self) -> list[Outcome]:
        ended = []
        for t in list(self._tracked.values()):
            outcome = self._from_results(t)
            if outcome is not None:
                ended.append((t, outcome))
        self._count_requeued_runs(ended)
        return [self._finish(t, outcome) for t, outcome in ended]

    def _count_requeued_runs(self, ended: list[tuple[_Tracked, Outcome]]) -> None:
        """A job that ran again more often (SLURM_RESTART_COUNT, in its result) than sacct
        had said when it was last asked (a requeue between two polls): one sacct call for all
        such jobs, so that the outcome's cost counts the runs before its last. Jobs never
        requeued cost no call; where sacct fails the runs it said of are counted."""
        stale = [(t, o) for t, o in ended
                 if max((_restarts(r) for r in t.results.values()), default=0) > t.requeues]
        if not stale:
            return
        try:
            infos = sacct([t.job_id for t, _ in stale])
        except SlurmError:
            return
        self.stats["queries"] += 1
        for t, outcome in stale:
            info = infos.get(t.job_id)
            if info is not None:
                outcome.earlier_s = max(outcome.earlier_s, info.earlier_s)

    def _query(self) -> list[Outcome]:
        ids = [t.job_id for t in self._tracked.values()]
        began = time.monotonic()
        try:
            infos = sacct(ids)
        except SlurmError as exc:
            self._warn(f"slurm: {exc}; retrying")
            infos = None
        self.stats["queries"] += 1
        self.stats["query_s"] += time.monotonic() - began
        changed = False
        done = []
        if infos is not None:
            for t in list(self._tracked.values()):
                info = infos.get(t.job_id)
                before = (t.state, t.requeues, t.start_s)
                outcome = self._judge(t, info)
                if outcome is not None:
                    done.append(self._finish(t, outcome))
                    changed = True
                elif (t.state, t.requeues, t.start_s) != before:
                    changed = True
        # back off while nothing changes (or sacct does not answer); look soon after a change
        self._interval = self.poll_s if changed else min(self.max_poll_s, self._interval * 1.5)
        self._next_query = time.monotonic() + self._interval
        return done

    def _update(self, t: _Tracked, info: JobInfo) -> None:
        t.info_seen = True
        t.state = info.state
        t.requeues = info.requeues
        t.requeue_reasons = info.requeue_reasons
        t.earlier_s = max(t.earlier_s, info.earlier_s)
        if info.requeued_at is not None and (t.requeued_at or 0.0) < info.requeued_at:
            t.requeued_at = info.requeued_at  # the ranks run again: what they left is old
            t.results = {r: res for r, res in t.results.items() if not self._earlier(t, res)}
        if info.start is not None and info.state != "PENDING":
            # sacct's whole seconds may put the start before the submission it followed
            t.start_s = max(info.start - self.t0, t.submitted_s)

    def _judge(self, t: _Tracked, info: JobInfo | None) -> Outcome | None:
        """The outcome sacct's word implies, or None while the job is still on its way."""
        if info is None:
            if not t.info_seen and self.now() - t.submitted_s > LOST_AFTER_S:
                return self._outcome(t, None, f"job {t.job_id} unknown to SLURM for "
                                     f"{LOST_AFTER_S:g}s", "lost")
            return None
        self._update(t, info)
        if info.active:
            if t.requeues > self.max_requeue and not t.limit_failure:
                reason = t.requeue_reasons[-1] if t.requeue_reasons else "REQUEUED"
                t.limit_failure = {"TIMEOUT": "timeout", "NODE_FAIL": "node"}.get(reason, "preempted")
                with contextlib.suppress(SlurmError):
                    scancel([t.job_id])
            return None
        outcome = self._from_results(t, info.state)
        if outcome is not None:
            return outcome
        if t.ended_seen is None:
            t.ended_seen = time.monotonic()
        end_s = info.end - self.t0 if info.end is not None else self.now()
        if t.limit_failure:
            return self._outcome(t, None, f"requeued {t.requeues} times (max_requeue "
                                 f"{self.max_requeue}); last: {t.requeue_reasons[-1:]}",
                                 t.limit_failure, end_s)
        kind = FAILURE_KIND.get(info.state, "exit")
        if kind == "lost" and time.monotonic() - t.ended_seen < self.result_grace_s:
            return None  # COMPLETED: the result may still be on its way through the file system
        if kind == "lost" and t.torn:
            # it completed and its result is there, but cannot be read after the grace:
            # submitit writes it whole (renamed into place), so something else damaged it.
            # Its result is lost, not its failure: UNREADABLE, decided on as for a local one
            # (Driver._collect, StageRunner._unreadable)
            rank = min(t.torn)
            return self._outcome(t, None, damaged_line(
                f"its result {self._result_path(t.job_id, rank)}", t.torn[rank], "submitit"),
                UNREADABLE, end_s)
        return self._outcome(t, None, self._describe(t, info), kind, end_s)

    def _describe(self, t: _Tracked, info: JobInfo) -> str:
        state = info.state
        cancelled = ("cancelled by autotune cancel" if t.job_id in self.cancelled_by_autotune
                     else "cancelled (scancel or an administrator)")
        what = {"CANCELLED": cancelled,
                "TIMEOUT": f"ran past its time limit ({self._time_limit()} min)",
                "DEADLINE": "reached its deadline",
                "NODE_FAIL": "its node failed", "BOOT_FAIL": "its node failed to boot",
                "PREEMPTED": "preempted", "OUT_OF_MEMORY": "ran out of memory",
                "COMPLETED": "ended without leaving a result (lost)"}.get(state)
        if what is None:
            what = f"ended {state} (exit code {info.exit_code})"
        # a multi-rank job: the rank that left no result is the one that died
        silent = [r for r in range(self.world) if r not in t.results] or [0]
        tail = last_line(self._files.slurm_log(t.job_id, silent[0]),
                         skip=_scheduler_noise)
        if tail and self.world > 1:
            tail = f"rank {silent[0]}: {tail}"
        return f"slurm job {t.job_id} {what}" + (f": {tail}" if tail and state != "CANCELLED" else "")

    def _from_results(self, t: _Tracked, ended: str | None = None) -> Outcome | None:
        """The attempt's outcome once its ranks' result pickles say it (None: not yet).

        Every rank that ended left ``<job id>_<rank>_result.pkl``. The first rank to fail
        (by when it failed) fails the attempt at once, and the job is cancelled so that the
        other ranks do not wait on it for ever; otherwise rank 0's result is the trial's once
        every rank has ended well.

        An error left after SLURM's SIGTERM reached the job (``sigterm`` in it: a ``command:``
        killed by scancel, the time limit, a preemption), or a ``command:``'s result left after
        it (a shell that outlived its killed child and printed a result anyway), waits for
        sacct's word on the job, ``ended`` (its state once it ended): where SLURM ended the
        job (cancelled, timed out, ...) that is the attempt's outcome, as for an entry
        objective, and this says None; a requeued job runs again and leaves a new result; a
        job SLURM let complete keeps what its ranks left.

        A result a run before the job's latest requeue left (sacct's ``requeued_at``: a rank
        that ended before the preemption, an error or result marked ``sigterm``) is never the
        attempt's: every rank runs again, and their new results are waited for, even where
        sacct already says the job ended (a COMPLETED job's result may be seconds late on NFS).
        """
        from submitit.core.utils import pickle_load

        for rank in range(self.world):
            path = self._result_path(t.job_id, rank)
            if rank in t.results:
                continue
            try:
                stat = os.stat(path)
            except OSError:
                continue
            stamp = (stat.st_mtime_ns, stat.st_size)
            if ended is None and t.left.get(rank) == stamp:
                continue  # the error left after the SIGTERM, read already: a requeue is slow
            try:
                result = pickle_load(path)
            except Exception as exc:  # noqa: BLE001 - half-written (NFS): look again later
                t.torn[rank] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            t.torn.pop(rank, None)
            if self._earlier(t, result) or (ended is None and left_after_sigterm(result)):
                t.left[rank] = stamp  # not kept: a requeued job's next run leaves another
                continue
            t.results[rank] = result
        failures = []
        slurm_ended = False
        for rank, (status, payload) in t.results.items():
            if left_after_sigterm((status, payload)) \
                    and FAILURE_KIND.get(ended or "") in SLURM_ENDS:
                slurm_ended = True  # SLURM's own reason for the job's end is the outcome's
                continue
            if status != "success":  # submitit's own failure: timed out too often, ...
                text = str(payload)
                lines = [ln for ln in text.splitlines() if ln.strip()]
                reason = lines[-1].strip() if lines else "submitit reported an error"
                kind = "timeout" if "timed-out" in text or "timed out" in text else "exception"
                if kind == "timeout":  # submitit's words name neither the limit nor the key
                    reason = (f"ran past its time limit (time_limit_min {time_limit(self.opts)})"
                              f" and was requeued {self.max_requeue} times (max_requeue "
                              f"{self.max_requeue}), without ending; submitit: {reason}")
                failures.append((float("inf"), rank, reason, kind, None, None))
            elif "error" in payload:
                failures.append((payload.get("ended") or float("inf"), rank, payload["error"],
                                 payload.get("failure", "exception"), payload.get("started"),
                                 payload.get("ended")))
        if failures:
            _, rank, reason, kind, start, end = min(failures, key=lambda f: (f[0], f[1]))
            if self.world > 1:
                with contextlib.suppress(SlurmError):
                    scancel([t.job_id])  # the other ranks may be stuck waiting for this one
            return self._outcome(t, None, rank_message(rank, self.world, reason), kind,
                                 _since(end, self.t0), _since(start, self.t0))
        if slurm_ended or len(t.results) < self.world or 0 not in t.results:
            return None
        payload = t.results[0][1]
        return self._outcome(t, payload.get("result"), None, "",
                             _since(max(p.get("ended") or 0 for _, p in t.results.values()) or None,
                                    self.t0),
                             _since(payload.get("started"), self.t0))

    @staticmethod
    def _earlier(t: _Tracked, result: tuple) -> bool:
        """Whether a rank's result was left by a run of the job before its latest requeue
        (sacct's ``requeued_at``): it started before that run ended."""
        status, payload = result
        started = payload.get("started") if isinstance(payload, dict) else None
        return t.requeued_at is not None and started is not None and started < t.requeued_at

    def _outcome(self, t: _Tracked, result: dict | None, error: str | None, failure: str,
                 end_s: float | None = None, start_s: float | None = None) -> Outcome:
        start = start_s if start_s is not None else (t.start_s if t.start_s is not None else t.submitted_s)
        end = end_s if end_s is not None else self.now()
        extra = {"queued_s": max(0.0, start - t.submitted_s), "requeues": t.requeues,
                 "submitted_s": t.submitted_s}
        return Outcome(t.job.trial, t.job.attempt, result, error, start, max(start, end),
                       job_id=t.job_id, failure=failure, extra=extra, earlier_s=t.earlier_s)

    def _finish(self, t: _Tracked, outcome: Outcome) -> Outcome:
        self._tracked.pop(t.job.trial, None)
        self._by_id.pop(t.job_id, None)
        self._unreleased[t.job_id] = (t, outcome)
        return outcome

    def release(self, outcomes: list[Outcome]) -> None:
        """The outcomes are recorded: copy their jobs' logs to the trials and drop
        submitit's folders (per ``cleanup``). Not before: the folder holds the job's result,
        and removing it as ``poll`` handed the outcome back lost a finished trial to a driver
        killed before it wrote the end (the next run found the job COMPLETED with no result,
        and recorded the trial failed, lost)."""
        for o in outcomes:
            held = self._unreleased.pop(o.job_id or "", None)
            if held is not None:
                self._clean(*held)

    # ---- files ------------------------------------------------------------------------------
    def _job_dir(self, job_id: str) -> str:
        return self._files.slurm_job_dir(job_id)

    def _job_file(self, job_id: str, suffix: str) -> str:
        return self._files.slurm_job_file(job_id, suffix)

    def _result_path(self, job_id: str, rank: int = 0) -> str:
        return self._files.slurm_result(job_id, rank)

    def _clean(self, t: _Tracked, outcome: Outcome) -> None:
        """Copy the job's logs into the trial directory; drop submitit's folder per ``cleanup``."""
        job_dir = self._job_dir(t.job_id)
        with contextlib.suppress(OSError):
            for rank in range(self.world):
                tag = t.job_id if rank == 0 else f"{t.job_id}.rank-{rank}"
                for stream, name in (("out", "stdout"), ("err", "stderr")):
                    src = self._files.slurm_log(t.job_id, rank, stream)
                    if os.path.exists(src):
                        shutil.copyfile(src, os.path.join(t.job.ctx.trial_dir,
                                                          f"slurm-{tag}.{name}.log"))
        with contextlib.suppress(OSError):  # submitit's .submission_file_<uuid>.sh links
            for entry in os.scandir(self.folder):
                if entry.name.startswith(".submission_file_") and entry.is_symlink() and (
                        os.readlink(entry.path).startswith(job_dir + os.sep)
                        or not os.path.exists(entry.path)):
                    os.remove(entry.path)
        if self.cleanup == "keep" or (self.cleanup == "done" and outcome.error is not None):
            return
        shutil.rmtree(job_dir, ignore_errors=True)

    # ---- the rest -----------------------------------------------------------------------------
    def running(self) -> int:
        return len(self._tracked)

    def waiting(self) -> dict[int, str]:
        """squeue's reasons for the trials' jobs that pend: one call for all of them, at most
        every REASON_EVERY_S; the last answers while squeue fails."""
        pending = [t for t in self._tracked.values() if t.state == "PENDING"]
        if pending and time.monotonic() >= self._reasons_next:
            self._reasons_next = time.monotonic() + REASON_EVERY_S
            with contextlib.suppress(SlurmError):
                reasons = pending_reasons([t.job_id for t in pending])
                for t in pending:
                    t.reason = reasons.get(t.job_id, "")
        return {t.job.trial: t.reason for t in pending if t.reason}

    def job_ids(self) -> list[str]:
        return [t.job_id for t in self._tracked.values()]

    def shutdown(self) -> None:
        """The driver stops: leave the jobs running, a restarted driver re-attaches to them."""
        self._stopped = True
        self._tracked.clear()
        self._by_id.clear()

    def _warn(self, message: str) -> None:
        if message != self._warned:
            print(f"autotune: {message}", file=sys.stderr)
            self._warned = message


#: sbatch options autotune sets itself, and why one given in sbatch_extra or sbatch_flags
#: breaks the study: sbatch accepts them (--test-only cannot tell), and every job then fails
#: or is lost (an --array job leaves its results where no driver looks)
MANAGED = {
    "array": "each trial is one job, not an array",
    "output": "the job's log is submitit's file, which autotune reads",
    "error": "the job's log is submitit's file, which autotune reads",
    "open-mode": "the job's log is submitit's file, which autotune reads",
    "job-name": "a job's name says its study and trial (a restarted driver finds it by it)",
    "wrap": "the job runs the trial's own script",
    "signal": "give signal_delay_s instead",
}


def check_managed(o: dict[str, Any]) -> None:
    """Refuse, in one line naming the key, an extra sbatch option autotune sets itself."""
    given = [("sbatch_extra", str(k)) for k in o.get("sbatch_extra") or {}]
    given += [("sbatch_flags", f[2:].partition("=")[0]) for f in o.get("sbatch_flags") or []]
    for key, option in given:
        name = option.replace("_", "-")
        if name in MANAGED:
            raise StudyError(f"executor.{key}: --{name} is autotune's to set: {MANAGED[name]}")


#: sbatch options autotune writes for a job from a key of its own (or that key's default)
#: (the key, then its older name)
OWN_KEY = {"time": ("time_limit_min",), "nodes": ("nodes",),
           "ntasks-per-node": ("tasks_per_node",),
           "cpus-per-task": ("cpus_per_task", "cpus_per_job"), "partition": ("partition",), "account": ("account",), "qos": ("qos",),
           "mem": ("mem_gb",), "gpus-per-task": ("gpus_per_task",),
           "gres": ("gpus_per_node", "gpus_per_job")}


def check_one_place(o: dict[str, Any]) -> None:
    """One place per sbatch option: refuse, in one line naming both places, an option given
    in sbatch_extra or sbatch_flags that a key of its own writes too (``partition: debug``
    beside ``--partition=gpu``, or ``--time`` beside time_limit_min or its default), or that
    both lists give. submitit lets the list's value win silently, so the job ran under other
    resources than the ones the executor checks and counts its ranks by (``--nodes=2``
    beside ``nodes: 1``: two nodes, one rank watched), and the later list's value won over
    the earlier's likewise."""
    written = {name.replace("_", "-"): value for name, value in sbatch_parameters(
        {k: v for k, v in o.items() if k not in ("sbatch_extra", "sbatch_flags")}, []).items()}
    seen: dict[str, str] = {}
    given = [("sbatch_flags", f[2:].partition("=")[0]) for f in o.get("sbatch_flags") or []]
    given += [("sbatch_extra", str(k)) for k in o.get("sbatch_extra") or {}]
    for key, option in given:
        name = option.replace("_", "-")
        if name in seen:
            raise StudyError(f"executor.{key}: --{name} is given twice (executor.{seen[name]} "
                             "gives it too); give it once")
        seen[name] = key
        if name in OWN_KEY and name in written:
            own = next((k for k in OWN_KEY[name] if o.get(k) not in (None, "")), None)
            source = (f"executor.{own}: {o[own]!r}" if own is not None else
                      f"executor.{OWN_KEY[name][0]}'s default, --{name}={written[name]}")
            raise StudyError(f"executor.{key}: --{name} is also written from {source}; give "
                             f"it once, as {own or OWN_KEY[name][0]}")


def check_submission(o: dict[str, Any]) -> None:
    """``sbatch --test-only`` on the #SBATCH lines every job of these options carries: a
    partition, account or QOS the cluster does not have, a malformed time, an sbatch option
    it does not know, more GPUs or memory than a node holds is one line before anything is
    written. Found at the first submission instead, it came after a minute of retries, with
    the study and its pretrain already recorded. A controller too slow to answer is let be:
    the jobs' own sbatch says what is wrong."""
    script = sbatch_script(o)
    try:
        proc = subprocess.run(["sbatch", "--test-only"], input=script, capture_output=True,
                              text=True, timeout=TEST_ONLY_S)
    except FileNotFoundError:
        raise StudyError("executor.kind: slurm, but sbatch is not found "
                         "(is this a SLURM login node?)") from None
    except subprocess.TimeoutExpired:
        return
    if proc.returncode != 0:
        said = sbatch_says(proc.stderr + proc.stdout)
        raise StudyError(f"executor: sbatch refuses the job these options ask for "
                         f"({' '.join(asked_options(script))}): {said}"
                         f"{job_limit_line(said, o)}")


def sbatch_script(o: dict[str, Any]) -> str:
    """The batch script submitit writes for a job of the options ``o`` (running ``true``)."""
    from submitit.slurm.slurm import _make_sbatch_string

    try:
        return _make_sbatch_string(command="true", folder=os.path.join("/tmp", "%j"),
                                   job_name="autotune-check", **sbatch_parameters(o, []))
    except (TypeError, ValueError) as exc:
        raise StudyError(f"executor: submitit refuses these options: {exc}") from None


def asked(o: dict[str, Any]) -> list[str]:
    """The options a job of ``o`` asks sbatch for, as the user would write them."""
    return asked_options(sbatch_script(o))


def asked_options(script: str) -> list[str]:
    """The resources in an sbatch script, as the user would write them on sbatch's line."""
    skip = ("--output", "--error", "--job-name", "--open-mode", "--wckey", "--signal")
    options = [ln[len("#SBATCH "):].strip() for ln in script.splitlines()
               if ln.startswith("#SBATCH ")]
    return [opt for opt in options if not opt.startswith(skip)]


def time_limit(o: dict[str, Any]) -> int:
    return int(o["time_limit_min"]) if o.get("time_limit_min") else 60


def sbatch_parameters(o: dict[str, Any], setup: list[str]) -> dict[str, Any]:
    """submitit's parameters for the executor options ``o``: what each job's sbatch asks."""
    shape = job_shape(o)
    params: dict[str, Any] = {"time": time_limit(o), "nodes": shape.nodes,
                              "ntasks_per_node": shape.sbatch_tasks_per_node,
                              "cpus_per_task": shape.sbatch_cpus_per_task,
                              "signal_delay_s": int(o.get("signal_delay_s", 90)),
                              "setup": setup}
    if shape.multi:  # a rank that dies (segfault, killed) takes the job's other ranks along
        params["srun_args"] = ["--kill-on-bad-exit=1"]
    for key, name in (("partition", "partition"), ("account", "account"), ("qos", "qos")):
        if o.get(key):
            params[name] = o[key]
    if o.get("mem_gb"):
        params["mem"] = mem_option(float(o["mem_gb"]))
    if shape.sbatch_gpus_per_task > 0:
        params["gpus_per_task"] = shape.sbatch_gpus_per_task
    elif shape.sbatch_gpus_per_node > 0:
        params["gres"] = f"gpu:{shape.sbatch_gpus_per_node}"
    extra: dict[str, Any] = {}
    for flag in o.get("sbatch_flags") or []:
        key, sep, value = flag[2:].partition("=")
        extra[key] = value if sep else True
    extra.update({str(k): v for k, v in (o.get("sbatch_extra") or {}).items()})
    if extra:
        params["additional_parameters"] = extra
    return params


def mem_option(gb: float) -> str:
    """``--mem`` for ``mem_gb``: whole megabytes with a unit, since sbatch refuses a fraction
    (``--mem=32.0``: "Invalid --mem specification", every job) and reads a bare number as MB."""
    mb = math.ceil(gb * 1024)
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


def _restarts(result: tuple) -> int:
    """How often the job had restarted when this rank's run began (SLURM_RESTART_COUNT)."""
    payload = result[1]
    return int(payload.get("restarts") or 0) if isinstance(payload, dict) else 0


def _since(epoch: float | None, t0: float) -> float | None:
    return epoch - t0 if epoch else None


def _objective_dict(job: TrialJob) -> dict:
    return job.objective.to_dict()


#: SLURM's own report of a task's end, after the task's words: "srun: error: node: task 0:
#: Exited with exit code 2" names no cause; the line before it does ("execve(): python4: No
#: such file or directory", a traceback's last line). Its words as it ends a job (time limit,
#: scancel) say what the job's state says already.
SRUN_SAYS = re.compile(r"srun: (error: \S+: tasks? [\d,\-]+: |Job step aborted|launch/slurm: "
                       r"|forcing job termination|got SIGCONT)"
                       r"|slurmstepd\S*: error: \*\*\* (JOB|STEP) .* \*\*\*")


def _scheduler_noise(line: str) -> bool:
    """submitit's and srun's own lines in a job's log, not the job's last words."""
    return "submitit" in line or bool(SRUN_SAYS.match(line))
