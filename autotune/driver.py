"""The driver: the one loop. Ask the searcher, submit to the executor, record, tell.

Order of work, chosen so that a SIGKILL at any instant loses nothing and repeats nothing:
a result is fsynced to the journal before the searcher hears of it; a trial is recorded as
asked before it is submitted; a resumed driver restores a fresh searcher from the recorded
suggestions and results (restore.py), then re-attaches to or re-runs the trials that were
in flight under their own ids. Trial ids are the driver's: the searcher numbers its
suggestions from the history's next id.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from . import callables
from . import events as ev
from .cancel_mark import CANCELLED, asking_stopped, clear_asking, stopped_by_cancel
from .errors import DiskFull, StudyError, in_python_api, is_disk_full, term
from .executors import EXECUTORS, Executor, Outcome, TrialJob
from .executors.base import SubmitLimit
from .executors.base import UNREADABLE
from .history import History, TrialRecord, newer_schema
from .journal import Journal
from .objective import Ctx, extras, judge, trial_seed
from .runner import reported_cost, unused_cost
from .progress import Progress, budget_reached, start_lines
from .recovery import rebuild_study_record
from .restore import restore, result_of, suggestion_event
from .search_threads import one_blas_thread
from .slurm_waits import QueueWatch
from .stage_runner import StageRunner
from . import submit_wait
from .submit_wait import SubmitWait
from .stages import as_stage_error, pretrain_changes, stage_options
from .study import Study, recorded_objective, unfilled_refusal, unfilled_warning
from .studydir import StudyDir
from .states import (cancelled_jobs, left_to_another_kind, stage_left_to_another_kind,
                     stage_state, stage_states, trial_states)
from .trajectory import write_trajectory

TRAJECTORY_EVERY_S = 2.0
EXTERNAL = "external"  # the job id of a trial the caller runs itself (ask/tell from Python)


@dataclass
class RunSummary:
    trials: int
    counts: dict[str, int]
    best: TrialRecord | None
    stopped: str  # "finished" | "interrupted" | "failing" (max_failures reached) |
    #   "failed" (a stage, the pretrain, failed: error says why)
    searcher: dict[str, Any] = field(default_factory=dict)  # the searcher's own summary()
    error: str = ""
    tail: str = ""  # a failed stage's stderr tail
    #: interrupted by ``autotune cancel`` (its SIGTERM), which cancels the SLURM jobs left
    by_cancel: bool = False


class Driver:
    def __init__(self, study: Study, directory: str, executor: Executor | None = None,
                 progress: bool = True, stop_after_events: int | None = None,
                 retry_failed: bool = False, accept_objective: bool = False,
                 stages_only: bool = False, prepare: Callable[[], None] | None = None,
                 more_trials: int | None = None, timeout_s: float | None = None,
                 caller: str = "run", said: set[str] | None = None):
        self.study = study
        #: the start's warnings (of the study's setting and directory) said already to this
        #: caller, not said again: a Python Study passes one set to each of its runs and
        #: ask/tell sessions, where a second run() repeated them all (see ``_warn_once``)
        self._said = set() if said is None else said
        #: the Python call that made this driver (``run``, ``optimize``), which a message on
        #: how to go on names with its argument: the user's own call, not another one
        self.caller = caller
        # limits of this run only, on top of the study's own (Study.optimize's n_trials and
        # timeout): never recorded, so the next run has the study's limits alone
        self._more_trials = more_trials
        self._timeout_s = timeout_s
        self._trial_cap: int | None = None   # len(trials) this run stops asking at
        self._deadline: float | None = None  # time.monotonic() this run stops asking at
        # run once the directory is held and the start's checks passed, before the first
        # record: what the trials need written there (a Python function's pickle) is written
        # by its holder only, and not at all where run() refuses (an executor's preflight, a
        # busy directory, another search or objective, trials left to another executor kind)
        self._prepare = prepare
        self.dir = StudyDir(directory)
        self.journal = Journal(self.dir.history)
        self._executor = executor
        self.progress = Progress(study.objective.mode, enabled=progress,
                                 shown=[p.name for p in study.space.free],
                                 total=study.max_trials, budget_s=study.max_compute_s)
        self._stop: str | None = None
        self._stop_after = stop_after_events  # tests: stop as if killed after N appends
        self._appends = 0
        self._phase = "setup"  # setup | loop | closing: what a second signal may interrupt
        self.retry_failed = retry_failed          # run the failed trials again
        self.accept_objective = accept_objective  # go on although entry/command changed
        self._ended = {"ok": 0, "failed": 0}      # trials this driver saw end: max_failures
        self.stages_only = stages_only  # run the stages (the pretrain), no trials
        self.pretrained: str | None = None  # the pretrain's checkpoint, once it is ready
        self._failure = ("", "")
        self._end_said = ""  # why the searcher ended the study, said after the last progress line
        self._cost_said = False  # a result's cost_s that is no duration: warned of once a run
        self._no_checkpoint_said = False  # a promotion whose parent saved none: warned of once
        #: trials this run ran again because their outcome file could not be read (damaged
        #: by something else): once each, a second such end is recorded as its failure
        self._unreadable: set[int] = set()
        self._by_cancel = False  # the stopping signal came from `autotune cancel`
        self.queue = QueueWatch(self.progress, self.dir.path)  # trials' jobs that wait
        #: trials asked (recorded) but held back by the scheduler's submit limit, in order;
        #: submitted as slots free up (a stopped run leaves them pending: the next runs them)
        self._held: list[TrialRecord] = []
        self._held_wait = SubmitWait()  # when they are offered again, said once (submit_wait)
        self._stages: StageRunner | None = None  # the pretrain's, while it runs
        self._card: dict[str, Any] = {}  # an ask/tell session's holder card (driver.json)

    # ---- set-up ---------------------------------------------------------------------------
    def run(self) -> RunSummary:
        if self._executor is None:
            self._preflight()
        if self.study.unfilled:  # before the directory is made: a refusal leaves nothing
            check_unfilled(self.study, History.load(self.journal))
        self.dir.check_run()
        self.dir.acquire()
        old_handlers = self._trap_signals()
        try:
            return self._run()
        except OSError as exc:
            if is_disk_full(exc):  # one line naming the path; the journal stays whole
                raise DiskFull(exc.filename or self.dir.path) from None
            raise
        finally:
            self._restore_signals(old_handlers)
            self.journal.close()
            self.dir.release()

    def _preflight(self) -> None:
        """The executor's checks (a cluster that answers, options it accepts) for the trials
        and for the pretrain's own resources, before anything is written."""
        kind = EXECUTORS[self.study.executor]
        kind.preflight(self.study.executor_options)
        stage = self.study.objective.pretrain
        if stage is None or not stage.executor:
            return
        try:
            kind.preflight_more(stage_options(self.study.executor_options, stage.executor))
        except StudyError as exc:
            raise as_stage_error(exc) from None

    def _run(self) -> RunSummary:
        self._start()
        self._set_run_limits()
        self._write_trajectory()  # from the start: a pretrain may keep trials waiting for hours
        try:
            self._phase = "loop"
            if self._stop is None:  # a signal while starting: nothing more is started
                self._run_stages()
            if self._stop is None and not self.stages_only:
                self._restart_in_flight()
                self._loop()
        except KeyboardInterrupt:
            if self._stop is None:  # not a second signal of ours
                raise
        finally:
            self._phase = "closing"  # from here on a signal can no longer cut anything short
            self.executor.shutdown()
            left = self._close_views()
        if self._end_said:
            self.progress.say(self._end_said)
        # counted as `status` and trajectory.csv say them once this driver is gone: a trial
        # it leaves in flight is interrupted (or running-alone, ...), not "running"
        counts = dict(Counter(left.values()))
        return RunSummary(len(self.history.trials), counts,
                          self.history.best(self.study.objective.mode),
                          self._stop or "finished", self.searcher.summary(), *self._failure,
                          by_cancel=self._by_cancel)

    def _run_stages(self) -> None:
        """The pretrain as its own job before any trial (stage_runner); a failure stops the
        study. Its executor: the study's kind and options, with the stage's overrides."""
        stage = self.study.objective.pretrain
        if stage is None:
            return
        # its relative data paths read (and its cache key made) where the runs start
        stage = replace(stage, launch_dir=self.launch_dir)

        def make(overrides: dict) -> Executor:
            ex = self._executor or EXECUTORS[self.study.executor](
                self.dir.path, 1, self.t0, stage_options(self.study.executor_options, overrides))
            ex.restore_clock(self.history.last_t)
            ex.cancelled_by_autotune = cancelled_jobs(self.history)
            return ex

        self._stages = StageRunner(stage, self.study.objective.python_path, self.dir.path,
                                   self.history, self._record_stage, self.progress, make,
                                   lambda: self._stop is not None,
                                   owns_executor=self._executor is None,
                                   launch_dir=self.launch_dir)
        result = self._stages.run()
        if result.error:
            self._stop = "failed"
            self._failure = (result.error, result.tail)
        self.pretrained = result.checkpoint
        self.executor.restore_clock(self.history.last_t)

    def _start(self, executor_kind: str | None = None) -> None:
        """Load the history, record the start or the resume, restore the searcher."""
        self.history = History.load(self.journal)
        self._check_schema()  # refused in one line, before any warning of what it reads
        for warning in self.history.brief_warnings():
            if warning != newer_schema(self.history.version):
                self._warn_once(warning)
        record = self._study_record()  # checks first: a refused study writes nothing
        changed = {} if record is not None else objective_change(
            self.history, self.study, self.dir.path, self.accept_objective, self.caller)
        if self.study.unfilled:
            check_unfilled(self.study, self.history)
            self._warn_once(unfilled_warning(self.study.unfilled))
        self.t0 = float((record or self.history.study)["t0"])
        # the executor before the first record: options it cannot meet (GPUs) write nothing
        self.executor = self._executor or EXECUTORS[executor_kind or self.study.executor](
            self.dir.path, self.study.max_concurrent, self.t0, self.study.executor_options)
        self.study.max_concurrent = min(self.study.max_concurrent, self.executor.max_concurrent)
        self.executor.cancelled_by_autotune = cancelled_jobs(self.history)
        if executor_kind is None and (record is None or record.get("recovered")):
            self._check_left_running()  # a run; an ask/tell loop (open) reruns nothing
        # every check passed: what the trials need (a Python function's pickle) is written
        # now, before the first record, and not at all by a run refused above
        self._prepared()
        # new: its record written now, or by create_study(load_if_exists=False) with nothing
        # after it (that study has not run yet: no resume to speak of)
        fresh = (record is not None and not record.get("recovered")) or \
            (record is None and self.history.events == 1)
        if record is None:
            note = ev.resume(time.time(), socket.gethostname(), os.getpid(), self.t0,
                             self.study.identity())
            if changed:
                note["objective"] = changed  # the accepted new entry/command
            was = (self.history.study.get("identity") or {}).get("pretrain")
            now = self.study.identity()["pretrain"]
            if was != now:  # one check_compatible let pass: none built, no trial ran
                note["pretrain"], note["stages"] = now, self.study.raw.get("stages")
                tried = "pretrain" in self.history.stages  # or recorded, never run
                self.progress.say(
                    f"pretrain: changed since it was "
                    f"{'last tried' if tried else 'recorded (never run)'} "
                    f"({pretrain_changes(was, now)}); "
                    f"{'no attempt of it succeeded and ' if tried else ''}no trial ran, so it "
                    "runs with the new settings")
            self._record([note])
            failed = sorted(r.trial for r in self.history.trials.values() if r.status == "failed")
            if self.retry_failed and failed:
                self._record([ev.retry(time.time(), failed)])
        else:
            self._record([record])
            if record.get("recovered"):
                check_compatible(self.history.study, self.study, self.dir.path)
                self.progress.warn(f"the study record in {self.dir.history} was damaged; rebuilt "
                                   f"it from {self.study.source or term('study')}, which "
                                   f"matches the {len(self.history.trials)} recorded trial(s)")
        # commands run where the study was first launched, wherever it is resumed from
        self.launch_dir = self.history.study.get("launch_dir") or os.getcwd()
        until_stopped = (executor_kind is None  # not an ask/tell loop, nor a limited run
                         and not self.stages_only  # nor a build of the pretrain alone
                         and self._more_trials is None and self._timeout_s is None)
        for line in start_lines(self.study, self.history, self.dir.path, fresh,
                                self.executor.kind, self.retry_failed, until_stopped):
            if line.startswith("warning: "):
                self._warn_once(line.removeprefix("warning: "))
            else:
                self.progress.say(line)
        self.executor.restore_clock(self.history.last_t)
        self.searcher = restore(self.study.make_searcher(), self.history)
        if self.searcher.notice and not budget_reached(self.study, self.history):
            self.progress.say(self.searcher.notice)
        if self.searcher.warning:
            self._warn_once(self.searcher.warning)
        self._last_csv = 0.0

    def _warn_once(self, text: str) -> None:
        """A warning of the start (the study's setting, its directory), unless said already
        to this caller (``said``): the same text is the same fact, and a warning repeated at
        each call buries a new one. What happens during a run (a trial failed) is warned of
        as it happens, each time."""
        if text not in self._said:
            self._said.add(text)
            self.progress.warn(text)

    def _set_run_limits(self) -> None:
        """``more_trials`` counts new trials from what the history holds now (trials left in
        flight run again on top, as on any resume); ``timeout_s`` counts from now."""
        if self._more_trials is not None:
            self._trial_cap = len(self.history.trials) + self._more_trials
            # the progress line's done/total (and its ETA) counts to where this run stops
            limit = self.study.max_trials
            self.progress.total = (self._trial_cap if limit is None
                                   else min(limit, self._trial_cap))
        if self._timeout_s is not None:
            self._deadline = time.monotonic() + self._timeout_s

    def _within_run_limits(self, n: int) -> int:
        """``n`` cut to what this run's own limits leave (0: ask nothing more)."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return 0
        if self._trial_cap is not None:
            n = min(n, self._trial_cap - len(self.history.trials))
        return n

    def _check_left_running(self) -> None:
        """Refuse, before the resume is recorded, to resume under another executor kind a
        study whose killed driver left trials running as jobs of its own kind (local
        processes, SLURM jobs): this executor can neither watch nor collect them, and ran
        them a second time, both writing into the same trial folders. So for the pretrain's
        job (``stage_left_to_another_kind``): this executor would find its checkpoint in the
        cache and record it ``cached`` at no cost, or build it again beside the job."""
        kind = self.executor.kind
        check_left_running(self.history, self.dir.path, kind, "executor.kind",
                           f"executor kind {kind}", "Resume with executor kind",
                           builds_again=True)

    # ---- a loop of the caller's own (ask/tell from Python) --------------------------------
    def open(self) -> None:
        """Hold the study directory for trials the caller runs itself (``ask_external`` and
        ``tell_external``): the same lock, history and searcher as ``run``, no executor loop."""
        if self.study.unfilled:  # before the directory is made: a refusal leaves nothing
            check_unfilled(self.study, History.load(self.journal))
        self.dir.check_run()
        self.dir.acquire(by="ask/tell")
        self._card = self.dir.card()  # what `autotune cancel` names to stop this session
        try:
            self._start(executor_kind="inline")  # only its clock is used: wall time since t0
        except BaseException:
            self.journal.close()
            self.dir.release()
            raise

    def _prepared(self) -> None:
        if self._prepare is not None:
            self._prepare()

    def close(self) -> None:
        self._close_views()
        self.journal.close()
        clear_asking(self.dir.path, self._card)
        self.dir.release()

    def ask_external(self, n: int) -> list[TrialRecord]:
        """Up to ``n`` new trials, recorded as asked and as started outside the driver."""
        return self.ask_trials(n, started_by=EXTERNAL)

    def left_to_rerun(self) -> list[TrialRecord]:
        """Trials a stopped ``run`` left that nothing runs any more (``interrupted``), in id
        order: a resumed run runs them again, and so does a loop of the caller's own. One
        whose process or job still runs, or ended leaving its outcome, is left to ``run``."""
        states = trial_states(self.history, False, self.dir.path)
        return sorted((r for r in self.history.in_flight()
                       if r.job_id != EXTERNAL and states[r.trial] == "interrupted"),
                      key=lambda r: r.trial)

    def start_external(self, rec: TrialRecord) -> TrialRecord:
        """Record ``rec`` as started again, now, by the caller (the attempt a run would make)."""
        now = round(self.executor.now(), 6)
        self._record([ev.submit(now, rec.trial, rec.next_attempt, EXTERNAL)])
        return self.history.trials[rec.trial]

    def asking_ended(self) -> str:
        """Why ``ask_trials`` will never hand out a trial again (see ``asking_ended``), or,
        in an ask/tell session, why it hands out none any more: ``autotune cancel`` asked it
        to stop (a signal would have killed the caller's own process)."""
        if self._card and asking_stopped(self.dir.path, self._card):
            return CANCELLED
        return asking_ended(self.study, self.history, self.searcher)

    def take_over(self, pretrained: str | None, records: list[dict],
                  ended: list[Outcome]) -> None:
        """What an ask/tell session takes over from the runs before it (``api_loop``): the
        pretrain's checkpoint for its trials (``records``: its ``cached`` record, where it
        was found built and not recorded), and trials whose end a run would record (jobs
        ``autotune cancel`` cancelled), recorded and told to the searcher as a run does."""
        self.pretrained = pretrained
        if records:
            self._record_stage(records)
        for outcome in ended:
            self._collect_one(outcome)
        if ended:
            self._write_trajectory()

    def tell_external(self, trial: int, result: dict | None, error: str | None = None
                      ) -> TrialRecord:
        """Record the end of a trial the caller ran, then tell the searcher, as for any trial."""
        rec = self.history.trials.get(trial)
        if rec is None or rec.done:
            raise StudyError(f"tell: trial {trial} is "
                             f"{'unknown' if rec is None else 'already finished'} in this study")
        now = self.executor.now()
        start = rec.start_s if rec.start_s is not None else now
        self._collect_one(Outcome(trial, rec.attempt, result, error, start, now, job_id=rec.job_id,
                                  failure="exception" if error is not None else ""))
        self._trajectory_as_it_goes()
        return rec

    def _trajectory_as_it_goes(self) -> None:
        """trajectory.csv every ``TRAJECTORY_EVERY_S`` as ``run`` or a loop of the caller's
        own goes: a notebook reading it mid-run sees the trials told so far."""
        if time.monotonic() - self._last_csv >= TRAJECTORY_EVERY_S:
            self._write_trajectory()

    def _write_trajectory(self) -> None:
        """trajectory.csv now, as a driver holding the study sees it. A full disk costs the
        view, not the result, which is already in the history."""
        try:
            write_trajectory(self.history, self.study, self.dir.trajectory)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
        self._last_csv = time.monotonic()

    def _record_stage(self, events: list[dict]) -> None:
        """A stage's record (its submit, its end), then trajectory.csv at once: no trial's
        tick rewrites it while the pretrain runs, and a user watching the file would see
        nothing of the pretrain until its end."""
        self._record(events)
        self._write_trajectory()

    def context(self, rec: TrialRecord) -> Ctx:
        """What a trial is given besides its parameters (directory, seed, fidelity, ...)."""
        return self._job(rec).ctx

    def _check_schema(self) -> None:
        h = self.history
        if h.study and h.version > ev.SCHEMA:
            raise StudyError(f"{self.dir.history}: written by a newer autotune (history "
                             f"schema {h.version}; this one reads up to {ev.SCHEMA}); "
                             "upgrade autotune to resume it")

    def _study_record(self) -> dict | None:
        """The study record to write: a new one, or one rebuilt in place of a damaged one;
        None when the history's own record is there (and the study file matches it)."""
        h = self.history
        if h.study:
            self._check_schema()
            check_compatible(h.study, self.study, self.dir.path, h)
            return None
        if h.events or h.damaged or h.lost:
            return rebuild_study_record(h, self.study, self.dir.path)
        return new_study_record(self.study)

    def _close_views(self) -> dict[int, str]:
        """The trajectory and the last progress line; a full disk costs these, not the study.
        Returns the trials' states as this driver leaves them (for its summary)."""
        # the last view of this driver: what is left in flight, it leaves, and the file
        # says so as `status` will (interrupted, running-alone, ...)
        left = trial_states(self.history, False, self.dir.path)
        try:
            write_trajectory(self.history, self.study, self.dir.trajectory, left,
                             stage_states(self.history, False, self.dir.path))
        except OSError as exc:
            if not is_disk_full(exc):
                raise
        self.progress.close(self.history)
        return left

    # ---- the loop -------------------------------------------------------------------------
    def _loop(self) -> None:
        while self._stop is None:
            asked = self._fill_slots()
            if self.executor.running() == 0:
                if self._held:  # a limit held by jobs elsewhere: wait for it to go
                    time.sleep(0.5)
                    self._tick()
                elif not asked:  # nothing running and nothing more to ask: the study is done
                    self._end_said = self._end_reason()
                    return
                continue
            outcomes = self.executor.poll(timeout=0.5)
            if outcomes:
                self._held_wait.slot_freed()  # a job ended: its slot may take a held trial
                self._collect(outcomes)
            self._tick()

    def _end_reason(self) -> str:
        """Why a search that its searcher ended stopped short of ``max_trials``, in a line;
        "" where the limits stopped it (or it goes without saying)."""
        reason = self.searcher.end_reason if self.searcher.finished else ""
        if not reason or budget_reached(self.study, self.history):
            return ""
        limit, trials = self.study.max_trials, len(self.history.trials)
        short = f", before max_trials ({limit})" if limit is not None else ""
        return f"the search ended after {trials} trial{'s' if trials != 1 else ''}{short}: {reason}"

    def _fill_slots(self) -> bool:
        if self._held:  # trials asked before any new one
            if not self._held_wait.due():
                return False
            held, self._held = self._held, []
            self._submit(held)
            if self._held:
                return False
        free = self.study.max_concurrent - self.executor.running()
        if free <= 0:
            return False
        records = self.ask_trials(free)
        if not records:
            return False
        self._submit(records)
        return True

    def ask_trials(self, n: int, started_by: str | None = None) -> list[TrialRecord]:
        """Ask the searcher for up to ``n`` trials within the study's limits; record them (and,
        with ``started_by``, their start under that job id, in the same journal append)."""
        if self.study.max_trials is not None:
            n = min(n, self.study.max_trials - len(self.history.trials))
        n = self._within_run_limits(n)
        if n <= 0 or self.asking_ended():
            return []
        first = self.history.next_id
        self.searcher.next_trial = first
        with one_blas_thread():
            suggestions = self.searcher.ask(n)
        if not suggestions:
            return []
        if [s.trial for s in suggestions] != list(range(first, first + len(suggestions))):
            raise RuntimeError(f"searcher {self.study.algorithm} numbered its suggestions "
                               f"{[s.trial for s in suggestions]}, not from {first}")
        now = round(self.executor.now(), 6)
        events = [ev.ask(now, n, [suggestion_event(s) for s in suggestions])]
        if started_by is not None:
            events += [ev.submit(now, s.trial, 0, started_by) for s in suggestions]
        self._record(events)
        return [self.history.trials[s.trial] for s in suggestions]

    def _submit(self, records: list[TrialRecord]) -> None:
        """Start these trials and record their starts in one append; where the executor
        refuses one (sbatch at a submit limit), the starts made before it are recorded all
        the same: their jobs run on, and the next run must re-attach to them."""
        if self._held:  # behind the trials already waiting for a slot
            self._held += records
            return
        events = []
        try:
            for i, rec in enumerate(records):
                job = self._job(rec)
                if not self.executor.virtual_clock:
                    job.resume_start_s = None  # started again: run and timeout count from now
                try:
                    job_id = self.executor.submit(job)
                except SubmitLimit as exc:
                    self._hold(records[i:], exc)
                    return
                self._held_wait.submitted()
                start = job.resume_start_s if job.resume_start_s is not None else self.executor.now()
                events.append(ev.submit(round(start, 6), rec.trial, job.attempt, job_id))
        finally:
            self._record(events)

    def _hold(self, records: list[TrialRecord], refused: SubmitLimit) -> None:
        """The scheduler takes no more jobs for now: these trials wait, recorded as asked,
        and go when a job ends (or every submit_wait.RETRY_S); the jobs in flight run on. Said
        once a run: the refusal recurs with every slot the search would fill. SLURM's
        generic words alone, lasting with nothing in flight, stop the run (submit_wait)."""
        self._held = list(records)
        running = self.executor.running()
        kept = (f"the {len(records)} trial(s) waiting are recorded as asked and the next run "
                "submits them")
        if not self._held_wait.refused(refused, running, f"trial {records[0].trial}", kept):
            return
        self.progress.warn(f"sbatch takes no more jobs for now ({refused.reason}): the next "
                           f"trials wait and are submitted as jobs end ({running} of this "
                           f"study's in flight; tried again every {submit_wait.RETRY_S:g} s); said "
                           "once, and a run stopped meanwhile leaves them to the next"
                           f"{self._held_wait.note(refused)}")

    def _restart_in_flight(self) -> None:
        """Trials a dead driver left unfinished: re-attach where possible, else run again.
        A trial recorded as asked but never as started may have been started all the same
        (the driver records a batch's starts once all are started): the executor is asked
        for it, and one it finds is recorded as started and watched, not run twice."""
        rerun, found = [], []
        for rec in sorted(self.history.in_flight(), key=lambda r: r.trial):
            if (rec.status == "running" and rec.job_id not in ("", EXTERNAL)
                    and self.executor.reattach(self._job(rec), rec.job_id)):
                continue
            if rec.status == "pending":
                job = self._job(rec)
                job_id = self.executor.unrecorded(job)
                if job_id is not None and self.executor.reattach(job, job_id):
                    started = self.executor.started_s(rec.trial)  # before it was found
                    found.append(ev.submit(round(self.executor.now() if started is None
                                                 else started, 6), rec.trial, job.attempt, job_id))
                    continue
            rerun.append(rec)
        if found:
            self._record(found)
            self.progress.say(f"resuming: {len(found)} trial(s) started but not recorded as "
                              f"started are watched again")
        if rerun:
            self.progress.say(f"resuming: {len(rerun)} trial(s) that were in flight run again")
            self._submit(rerun)

    def _job(self, rec: TrialRecord) -> TrialJob:
        """The next attempt of a trial: the same attempt again if a dead driver left it running."""
        attempt = rec.next_attempt
        resume_start = rec.start_s if rec.status == "running" else None
        ctx = Ctx(trial=rec.trial, trial_dir=self.dir.trial_dir(rec.trial),
                  seed=trial_seed(self.study.seed, rec.trial), attempt=attempt,
                  epochs=rec.fidelity, study_dir=self.dir.path, pretrained=self.pretrained,
                  resume_from=self._parent_checkpoint(rec), launch_dir=self.launch_dir,
                  study_file_dir=os.path.dirname(self.study.source) or self.launch_dir)
        return TrialJob(rec.trial, attempt, dict(rec.params), ctx, self.study.objective,
                        resume_start_s=resume_start)

    def _parent_checkpoint(self, rec: TrialRecord) -> str | None:
        if rec.parent is None:
            return None
        path = os.path.join(self.dir.trial_dir(rec.parent), "checkpoint.pt")
        if os.path.exists(path):
            return path
        if not self._no_checkpoint_said:  # else every promotion silently trains from scratch
            self._no_checkpoint_said = True
            self.progress.warn(
                f"trial {rec.trial} continues trial {rec.parent}, which saved no checkpoint at "
                f"{path}: it trains from scratch (its resume_from is empty), paying all "
                f"{rec.fidelity} epochs; save ctx.checkpoint_path ({{checkpoint_path}} in a "
                f"command) so a promotion costs only the extra epochs (said for the first such "
                f"trial only)")
        return None

    def _collect(self, outcomes: list[Outcome]) -> None:
        events, tells, retry = [], [], []
        full = [o for o in outcomes if o.error and disk_full_path(o.error) is not None]
        # an outcome something else damaged: the result is lost, not the trial's failure; it
        # runs again at once, as a resume would (README, "Trial states": interrupted)
        lost = [o for o in outcomes if o.failure == UNREADABLE and o.trial not in self._unreadable
                and o not in full]
        outcomes = [o for o in outcomes if o not in full and o not in lost]
        for o in lost:
            self._unreadable.add(o.trial)
            retry.append(self.history.trials[o.trial])
            self.progress.warn(f"trial {o.trial}: {o.error}; its result is lost, not its "
                               "failure: it runs again (once a run; a second time it is "
                               "recorded as failed)")
        for o in outcomes:
            rec = self.history.trials[o.trial]
            event = self._end_event(o)
            if event["status"] == "failed" and o.attempt < self.study.retries:
                event["final"] = False
                retry.append(rec)
            else:
                tells.append(o.trial)
            events.append(event)
        self._record(events)
        self.executor.release(outcomes)
        for trial in tells:
            rec = self.history.trials[trial]
            self._tell(rec)
            if rec.status in self._ended:
                self._ended[rec.status] += 1
                if rec.status == "failed" and self._ended["failed"] == 1:  # said at once
                    self.progress.warn(f"trial {rec.trial} failed: {rec.error} (logs in "
                                       f"{self.dir.trial_dir(rec.trial)})")
        if full:  # not the trial's failure: it stays in flight and runs again on resume
            o = full[0]
            raise DiskFull(disk_full_path(o.error) or self.dir.trial_dir(o.trial))
        limit = self.study.max_failures
        if limit and self._stop is None and not self._ended["ok"] and self._ended["failed"] >= limit:
            self._stop = "failing"
            self.progress.say(f"stopping: the first {self._ended['failed']} trials to end all "
                              f"failed (max_failures: {limit})")
        if retry:
            self._submit(retry)

    def _collect_one(self, o: Outcome) -> None:
        """An attempt that ends for good (no retry): record it, then tell the searcher."""
        self._record([self._end_event(o)])
        self._tell(self.history.trials[o.trial])

    def _tell(self, rec: TrialRecord) -> None:
        with one_blas_thread():
            self.searcher.tell(result_of(rec, self.study.objective.mode))

    def _end_event(self, o: Outcome) -> dict[str, Any]:
        """The durable record of an attempt's end; the value is read from its metrics on replay."""
        metrics, extra, error = {}, {}, o.error
        if o.result is not None:
            metrics, _, error = judge(o.result, self.study.objective)
            extra = extras(o.result, self.study.objective)
            self._say_unused_cost(o.trial, o.result)
        reported = reported_cost(metrics.pop("cost_s", None))  # stored once, as the event's
        cost = reported if reported is not None else o.run_s
        status = "cancelled" if o.failure == "cancelled" else ("ok" if error is None else "failed")
        job_id = o.job_id if o.job_id != self.history.trials[o.trial].job_id else None
        return ev.end(o.trial, o.attempt, status, round(o.start_s, 6), round(o.end_s, 6),
                      round(cost, 6), metrics, error, o.failure, job_id=job_id, extra=extra)

    def _say_unused_cost(self, trial: int, result: dict) -> None:
        """Warn, once a run, of a result whose ``cost_s`` gives way to the measured run time
        (a string "5", NaN, a negative number): an objective that means it to be the cost
        would otherwise never learn that the budget counts something else."""
        why = unused_cost(result)
        if why is not None and not self._cost_said:
            self._cost_said = True
            self.progress.warn(f"trial {trial}'s result: {why} (said for the first such trial "
                               "only)")

    # ---- recording ------------------------------------------------------------------------
    def _record(self, events: list[dict]) -> None:
        """Make events durable, then let them change the state: never the other way round."""
        if not events:
            return
        self.journal.append(events)
        for event in events:
            self.history.apply(event)
        self._appends += 1
        if self._stop_after is not None and self._appends >= self._stop_after:
            raise SimulatedCrash()

    def _tick(self) -> None:
        self.queue.update(self.executor.waiting(), self.history)
        self.progress.update(self.history, self.executor.running(), self.held())
        self._trajectory_as_it_goes()

    def held(self) -> int:
        """How many trials wait for a submit slot (``_hold``), for the progress line."""
        return len(self._held)

    # ---- signals --------------------------------------------------------------------------
    def _trap_signals(self) -> dict:
        old = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: the caller handles interruption
            pass
        return old

    def _restore_signals(self, old: dict) -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        """First signal: stop starting trials, end the running ones, leave. A second one
        hurries: it cuts short a trial running inside the driver's own process (inline,
        simulated), but never the ending of trial processes, which always runs to the end."""
        name = signal.Signals(signum).name
        in_process = getattr(self._executor_in_use(), "in_process", False)
        if self._stop is None:
            self._stop = "interrupted"
            self._by_cancel = signum == signal.SIGTERM and stopped_by_cancel(self.dir.path)
            self._tell_now(f"{name}: stopping once the trial running in this process ends (it "
                           "is recorded); again to stop it now (it runs again on resume)"
                           if in_process and self._phase == "loop" else
                           f"{name}: stopping; {self._left_in_flight()}")
            return
        if self._phase == "loop" and in_process:
            raise KeyboardInterrupt  # the trial runs in this very process: stop it
        self._tell_now(f"{name}: already stopping; ending the running trials")

    def _left_in_flight(self) -> str:
        """What becomes of the work in flight: SLURM jobs (trials' and the pretrain's alike)
        are left to run, since the next run re-attaches to them and a pretrain may be hours
        of work; local processes are ended and run again. Stopped by ``autotune cancel``,
        the SLURM jobs are not left: that cancel cancels them once this driver is gone."""
        if self.study.executor != "slurm":
            return "trials in flight will run again on resume"
        if self._stages is not None and self._stages.held:
            return ("the pretrain waits for a submit slot, its job not submitted: the next run "
                    "submits it")
        if self._stages is not None and self._stages.in_flight:  # no trial runs before its end
            if self._by_cancel:
                return ("autotune cancel cancels the pretrain's SLURM job (the next run records "
                        "it as cancelled and runs it again, unless it runs to its end before "
                        "SLURM stops it: cancel says so)")
            return ("the pretrain's SLURM job is left queued or running (the next run "
                    "re-attaches to it)")
        held = (f"; the {len(self._held)} trial(s) waiting for a submit slot are submitted by "
                "the next run" if self._held else "")
        if self._by_cancel:
            return (f"autotune cancel cancels its SLURM jobs in flight (the next run records "
                    f"those trials as cancelled, but by their results those whose jobs run to "
                    f"their end before SLURM stops them: cancel names them){held}")
        return (f"its SLURM jobs in flight are left queued or running (the next run re-attaches "
                f"to them){held}")

    def _executor_in_use(self) -> Executor | None:
        return getattr(self, "executor", None)

    def _tell_now(self, text: str) -> None:
        """Said from a signal handler: one unbuffered write, which cannot collide with a
        buffered print the handler interrupted."""
        if self.progress.enabled:
            try:
                os.write(2, ("\n" + text + "\n").encode())
            except OSError:
                pass


class SimulatedCrash(Exception):
    """Raised in tests to stop a driver as abruptly as a kill between two journal appends."""


def asking_ended(study: Study, history: History, searcher: Any) -> str:
    """Why no trial will be asked again, in words; "" while one may (a searcher that proposes
    nothing now may propose more once results come in)."""
    reached = budget_reached(study, history)
    if reached or not searcher.finished:
        return reached
    reason = searcher.end_reason
    return f"the search ended: {reason}" if reason else "the search ended"


def disk_full_path(error: str) -> str | None:
    """Whether a trial failed only because the disk (or quota) was full: the path it names,
    '' when it names none; None when the failure is the trial's own."""
    if not any(mark in error for mark in DISK_FULL_MARKS):
        return None
    found = re.search(r"\[Errno (?:28|122)\][^']*'([^']+)'", error)
    return found.group(1) if found else ""


DISK_FULL_MARKS = ("No space left on device", "Disk quota exceeded", "[Errno 28]", "[Errno 122]")


def check_unfilled(study: Study, history: History) -> None:
    """Command fields no trial fills (``Study.unfilled``) are refused in a new study. In one
    an older autotune started with this very command (it accepted them) a half-done search is
    not lost to the newer check: the driver warns once and goes on as it was started. A
    command changed since must pass today's checks; a damaged study record, rebuilt from the
    study file over the older trials, is taken as started so."""
    if history.study:
        started = recorded_objective(history)["command"]
    elif history.events or history.damaged or history.lost:
        started = study.objective.command
    else:
        started = None
    if started != study.objective.command:
        raise StudyError(unfilled_refusal(*study.unfilled[0]))


def objective_change(history: History, study: Study, path: str, accept: bool,
                     caller: str = "run") -> dict:
    """Refuse a changed entry or command (results would mix silently) unless accepted;
    returns the new one when accepted, to be recorded. ``caller``: the Python call the
    refusal names with its ``accept_objective_change=True`` (``run``, ``optimize``)."""
    now = {"entry": study.objective.entry, "command": study.objective.command}
    was = recorded_objective(history)
    if was == now or now["entry"] == callables.NO_ENTRY:
        return {}       # an ask/tell loop of one's own: its objective is the user's to know
    if was["entry"] == callables.NO_ENTRY:
        return now      # a study fed by ask and tell, now run by its objective: recorded
    key = "command" if was["command"] != now["command"] else "entry"
    if not accept:
        accept_it = (f", or {caller}(accept_objective_change=True)" if in_python_api() else
                     ", or --accept-objective-change") + " if the change does not alter results"
        raise StudyError(f"objective.{key}: {path} was started with "
                         f"{callables.shown(was[key])!r}, {term('study')} says "
                         f"{callables.shown(now[key])!r}; results would mix: use another "
                         f"{term('dir')}{accept_it}")
    return now


def new_study_record(study: Study) -> dict:
    """The record that starts a study's history: what it searches, as given, and where it
    was launched (its commands run there, wherever it is resumed from)."""
    return ev.study(study.name, time.time(), study.identity(), study.raw, study.source,
                    study.compared, launch_dir=os.getcwd())


def check_compatible(started: dict, study: Study, path: str,
                     history: History | None = None) -> None:
    """Refuse a study file that would mix a different search into this directory's history.
    ``history``: the directory's, read (from ``path``) where only the pretrain differs."""
    before = started.get("identity", {})
    now = study.identity()
    if before.get("space") != now["space"]:
        old, new = before.get("space", {}), now["space"]
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise StudyError(f"space: differs from the one {path} was started with "
                         f"(parameters {', '.join(diff)}); use another {term('dir')} for a new "
                         "search")
    changes = search_changes(before, now)
    if changes:  # the first: one line, as for any other key
        key, old, new = changes[0]
        raise StudyError(f"{key}: {path} was started with {old!r}, {term('study')} says "
                         f"{new!r}; use another {term('dir')} for a new search")
    if before.get("pretrain") != now["pretrain"]:  # the keys that differ, not both whole
        if history is None and isinstance(before.get("pretrain"), dict):
            history = History.load(Journal(StudyDir(path).history))
        why = pretrain_refusal(history, before.get("pretrain"), now["pretrain"], path)
        if why is not None:
            raise StudyError(f"stages.pretrain: {path} was started with another pretrain "
                             f"({pretrain_changes(before.get('pretrain'), now['pretrain'])})"
                             f"{why}; use another {term('dir')} for a new search")


#: the study file's key of each entry of a study's identity (``Study.identity``)
IDENTITY_KEYS = {"algorithm": "search.algorithm", "seed": "search.seed",
                 "metric": "objective.metric", "mode": "objective.mode"}


def search_changes(before: dict, now: dict) -> list[tuple[str, Any, Any]]:
    """(key, recorded, given) of each search setting that differs, the key the study file's
    own (``search.seed``, ``search.eta``), as every other refusal names its key: ``seed:``
    and ``metric:`` named no key of the file, ``search_options:`` a name of the code's."""
    changes = []
    for key in ("algorithm", "seed", "search_options", "metric", "mode"):
        old, new = before.get(key), now[key]
        if old == new:
            continue
        found = option_changes(old, new) if key == "search_options" else []
        changes += found or [(IDENTITY_KEYS.get(key, "search"), old, new)]
    return changes


def option_changes(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """The search options that differ, each under its own key; [] where either is no
    mapping (then the search section is named as a whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    return [(f"search.{k}", old.get(k), new.get(k)) for k in sorted({*old, *new})
            if old.get(k) != new.get(k)]


def pretrain_refusal(history: History | None, old: Any, new: Any, path: str) -> str | None:
    """None where a changed pretrain may take the place of the one a study was started with:
    no attempt of it succeeded (none ok or cached, none in flight) and no trial started, so no
    checkpoint of the old settings exists and nothing was fine-tuned from one (a pretrain
    that failed of its params is fixed in place, as its failure says). Else why not, as the
    words that follow the settings that differ ('' for a pretrain added or dropped)."""
    if not isinstance(old, dict) or not isinstance(new, dict) or history is None:
        return ""
    if history.trials:
        return ", and trials have run"
    rec = history.stages.get("pretrain")
    if rec is not None and rec.ready:
        return f", and its checkpoint was built ({rec.status})"
    if rec is not None and stage_state(rec, False, path, cancelled_jobs(history)) in (
            "running-alone", "ended-alone"):  # it may yet build the old settings' checkpoint
        return (f", and its job {rec.job_id} may still run or has ended unrecorded (python -m "
                f"autotune run with the study file it was started with records it, python -m "
                f"autotune cancel {path} ends it)")
    return None


def check_left_running(history: History, path: str, kind: str, prefix: str, who: str,
                       resume: str, builds_again: bool = False,
                       again: str = "they then run again") -> None:
    """One refusal, in one wording wherever a study is resumed (``run`` under another
    executor kind, an ask/tell loop of the caller's own), of a study whose killed driver
    left the pretrain's job, or trials, running (or ended, not yet recorded) as jobs that
    ``kind`` can neither watch nor record. ``who`` names what resumes it, ``resume`` how to
    resume it instead; ``builds_again``: say what resuming would do (it would run them, or
    the pretrain, again); ``again``: what becomes of the trials a cancel stops."""
    stages = stage_left_to_another_kind(history, path, kind)
    if stages:  # one line, for the first (the pretrain)
        name, (job_id, owner) = next(iter(stages.items()))
        would = (f": it would build the {name} again or take its checkpoint at no cost"
                 if builds_again else "")
        raise StudyError(
            f"{prefix}: {path} has the {name}'s {owner} job {job_id}, left running (or ended, "
            f"not yet recorded) with no driver, which {who} can neither watch nor record"
            f"{would}. {resume} {owner} (it collects it), or, while it still runs, stop it "
            f"with: python -m autotune cancel {path} (the {name} then runs again)")
    left = left_to_another_kind(history, path, kind)
    if not left:
        return
    shown = ", ".join(map(str, list(left)[:10])) + (" ..." if len(left) > 10 else "")
    kinds = " and ".join(sorted(set(left.values())))
    would = ": it would run them again" if builds_again else ""
    raise StudyError(
        f"{prefix}: {path} has trial(s) {shown} that a killed driver left running (or ended, "
        f"not yet recorded) as {kinds} jobs, which {who} can neither watch nor record{would}. "
        f"{resume} {kinds} (it collects them), or stop those still running with: "
        f"python -m autotune cancel {path} ({again})")
