"""The driver's stage phase: the pretrain as its own recorded job, before any fine-tune.

The stage runs on the study's executor (its own instance, with the study's executor options
overridden by ``stages.pretrain.executor``: a longer time limit, more CPUs, another partition),
one job, journaled like a trial: ``stage`` events say when it was submitted (with its job id),
when it ended, what it cost and why it failed. Fine-tunes are submitted only once its
checkpoint is in the cache, so no trial holds a GPU waiting for it and no trial's cost
includes it; the study's compute counts it once.

After a dead driver, a stage recorded as running is re-attached to its job, a SLURM job or a
local process alike, and run again only where that job cannot be found (a local process that
died), so two never run at once. A job ``autotune cancel`` cancelled is recorded cancelled and
run again, unless it ran to its end before SLURM stopped it (submitit ignores the SIGTERM
until KillWait): its result is recorded, its checkpoint kept, as ``status`` said.
A checkpoint already in the cache (built by an earlier run or by another study sharing
``cache_dir``) is recorded as ``cached`` and costs this study nothing. One another study is
building (the key's lock held) is waited for in the driver, no job submitted, and then recorded
``cached`` (a job that waited on the lock all the same is recorded so too, at no cost). A
failed stage stops the study with its reason; the next ``run`` tries it again as a new attempt.
A job whose outcome file cannot be read (something else damaged it) lost its result, not failed:
recorded from the cache's done.json where it built the checkpoint (so too, at its build's cost,
one that ended so while no driver ran), else run again once a run; under either executor.
A job the scheduler refuses at a submit limit (a queue full of the user's other jobs) waits for
a slot as the trials do (submit_wait): said once, tried again every 30 s, ended by Ctrl-C with
nothing recorded of it, so the next run submits it.
"""
from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass
from typing import Callable

from . import events as ev
from .contract import Ctx, ObjectiveSpec, StageSpec
from .errors import StudyError
from .executors import Executor, Outcome, TrialJob
from .executors.base import UNREADABLE, SubmitLimit
from .slurm_waits import stuck_warning
from .history import History, StageRecord
from .progress import Progress
from .runner import as_float, reported_cost, unused_cost
from .stage_cache import (STAGE_ENTRY, built, built_by, built_in, building, checkpoint_of,
                          damaged, final_dir, stage_result)
from .stages import as_stage_error
from . import submit_wait
from .submit_wait import SubmitWait

STAGE_TRIAL = -1   # the stage's id with the executors: never a trial's
POLL_S = 0.5
OTHER_BUILD_POLL_S = 2.0  # how often a driver looks whether another study's build ended
TAIL_LINES = 15


@dataclass
class StageResult:
    checkpoint: str | None = None     # ready: give it to every trial as ctx.pretrained
    error: str = ""                   # failed: the reason (one line)
    tail: str = ""                    # failed: the end of the stage job's stderr
    interrupted: bool = False
    cancelled: bool = False           # failed because its job was cancelled


class StageRunner:
    def __init__(self, stage: StageSpec, python_path: tuple[str, ...], study_dir: str,
                 history: History, record: Callable[[list[dict]], None], progress: Progress,
                 make_executor: Callable[[dict], Executor], stopped: Callable[[], bool],
                 owns_executor: bool = True, launch_dir: str | None = None):
        self.stage = stage
        self.python_path = python_path
        self.study_dir = study_dir
        self.history = history
        self.record = record
        self.progress = progress
        self.make_executor = make_executor
        self.stopped = stopped
        self.owns_executor = owns_executor
        self.launch_dir = launch_dir  # where it runs, as the trials do (relative data paths)
        self.dir = os.path.join(study_dir, "stages", stage.name)
        self._attempt = 0
        self.held = False  # its job waits for a submit slot (nothing of it submitted yet)
        self.in_flight = False  # its job is submitted (or re-attached to) and has not ended
        self._lost = False  # its job was run again this run, its outcome unreadable (_wait)

    def run(self) -> StageResult:
        stage, rec = self.stage, self.history.stages.get(self.stage.name)
        done = built(stage, self.study_dir)
        if done is not None and rec is not None and rec.ready and rec.key == stage.key():
            return StageResult(checkpoint_of(stage, self.study_dir))
        if done is None and rec is not None and rec.ready and rec.key and rec.key != stage.key():
            # the same settings (the driver refuses changed ones), another key: one written
            # before the key read paths absolute and 4.0 as 4 (stages.py). This study's
            # trials were fine-tuned from that entry: while it is whole, the rest are too
            if built_in(final_dir(stage, self.study_dir, rec.key)) is not None:
                self.progress.say(f"{stage.name}: kept the checkpoint this study recorded under "
                                  f"the older cache key {rec.key} (now {stage.key()}), which "
                                  "its earlier trials were fine-tuned from")
                return StageResult(checkpoint_of(stage, self.study_dir, rec.key))
            self.progress.warn(f"{stage.name}: recorded under cache key {rec.key}, now "
                               f"{stage.key()} (data paths read as absolute ones, whole numbers "
                               f"as ints), and the entry under the old key is gone or damaged; "
                               "building it again")
        elif rec is not None and rec.ready and damaged(stage, self.study_dir):
            self.progress.warn(f"{stage.name}: its checkpoint {checkpoint_of(stage, self.study_dir)}"
                               " is missing or not the size it was built with; building it "
                               "again before any fine-tune")
        ex = self.make_executor(stage.executor)
        try:
            left = rec is not None and rec.status == "running" and bool(rec.job_id)
            if left and ex.reattach(self._job(rec.attempt, rec.start_s), rec.job_id):
                self._attempt = rec.attempt
                self.in_flight = True
                if rec.job_id not in ex.cancelled_by_autotune:  # else: said cancelled below
                    self.progress.say(f"{stage.name}: re-attached to job {rec.job_id}")
                result = self._wait(ex)
                if rec.job_id in ex.cancelled_by_autotune and result.checkpoint is not None:
                    # submitit ignores SLURM's SIGTERM: its step ran on and ended before
                    # KillWait, the checkpoint whole (status said ended-alone, cancel said so)
                    self.progress.say(f"{stage.name}: its job {rec.job_id}, cancelled by "
                                      "autotune cancel, ran to its end before SLURM stopped "
                                      "it: recorded ok, its checkpoint kept")
                if not (result.cancelled and rec.job_id in ex.cancelled_by_autotune):
                    return result
                # ``autotune cancel`` stopped it: running the study again means going on,
                # and nothing goes on without the pretrain
                if not self._submit(ex, self.history.stages.get(stage.name)):
                    return StageResult(interrupted=True)
            elif left and done is not None and built_by(done, rec.job_id):
                # its job ended while no driver ran, its outcome unreadable or missing, but
                # it built the checkpoint: its build's cost is the study's, not ``cached``'s 0
                return self._finish(self._ended_alone(ex, rec, done))
            elif done is not None:
                return self._cached(ex, done)
            else:
                if building(stage, self.study_dir):  # another study builds it: wait here
                    if not self._wait_for_other_build():
                        return StageResult(interrupted=True)
                    done = built(stage, self.study_dir)
                    if done is not None:
                        return self._cached(ex, done)
                    self.progress.say(f"{stage.name}: the other build ended without a "
                                      "checkpoint; building it here")
                if not self._submit(ex, rec):
                    return StageResult(interrupted=True)
            return self._wait(ex)
        finally:
            if self.owns_executor:
                ex.shutdown()

    def _cached(self, ex: Executor, done: dict) -> StageResult:
        """Found built (an earlier run, another study sharing ``cache_dir``): recorded as
        ``cached``, at no cost to this study."""
        stage = self.stage
        path = checkpoint_of(stage, self.study_dir)
        self.record([ev.stage_cached(round(ex.now(), 6), stage.name, stage.key(), path,
                                     seconds_of(done))])
        self.progress.say(f"{stage.name}: reused from the cache "
                          f"({final_dir(stage, self.study_dir)})")
        return StageResult(path)

    def _wait_for_other_build(self) -> bool:
        """Wait, in the driver, while another builder holds the key's lock (another study
        sharing ``cache_dir`` builds it): nothing of this study's is submitted meanwhile, so no
        job holds a GPU waiting on the lock. False where the run stopped meanwhile (nothing
        recorded: the next run looks again)."""
        name, where = self.stage.name, final_dir(self.stage, self.study_dir)
        self.progress.say(f"{name}: another study is building it ({where}.partial); waiting "
                          "for that build, no job of this study's submitted meanwhile")
        self.progress.stage_notes[name] = "waiting for another study's build"
        try:
            checked = time.monotonic()
            while not self.stopped():
                if time.monotonic() - checked >= OTHER_BUILD_POLL_S:
                    if not building(self.stage, self.study_dir):
                        return True
                    checked = time.monotonic()
                time.sleep(POLL_S)
                self.progress.update(self.history, 0)
            return False
        finally:
            self.progress.stage_notes.pop(name, None)

    def _job(self, attempt: int, resume_start: float | None = None) -> TrialJob:
        stage = self.stage
        params = {"stage": stage.to_dict(), "study_dir": self.study_dir,
                  "python_path": list(self.python_path)}
        spec = ObjectiveSpec(metric="built", entry=STAGE_ENTRY, timeout_s=stage.timeout_s,
                             python_path=self.python_path)
        ctx = Ctx(trial=STAGE_TRIAL, trial_dir=self.dir, seed=stage.seed, attempt=attempt,
                  epochs=stage.epochs, study_dir=self.study_dir, launch_dir=self.launch_dir)
        return TrialJob(STAGE_TRIAL, attempt, params, ctx, spec, resume_start_s=resume_start)

    def _submit(self, ex: Executor, rec) -> bool:
        """Submit the next attempt and record it; False where the run stopped while its job
        waited for a submit slot (nothing recorded: the next run submits it)."""
        if rec is None:
            attempt, resume = 0, None
        elif rec.status == "running":  # a dead driver's job that cannot be re-attached
            attempt, resume = rec.attempt, None
            self.progress.say(f"{self.stage.name}: was running when the driver stopped; "
                              "running it again")
        else:
            attempt, resume = rec.attempt + 1, None
            if rec.status == "cancelled":  # by autotune cancel, scancel, an administrator
                self.progress.say(f"{self.stage.name}: {rec.error or 'cancelled'}; running it "
                                  "again")
            elif rec.status == "failed":
                self.progress.say(f"{self.stage.name}: failed last time ({rec.error}); "
                                  "trying again")
        self._attempt = attempt
        job = self._job(attempt, resume)
        os.makedirs(self.dir, exist_ok=True)
        job_id = self._submit_when_taken(ex, job)
        if job_id is None:
            return False
        self.record([ev.stage_submit(round(ex.now(), 6), self.stage.name, self.stage.key(),
                                     attempt, job_id)])
        self.in_flight = True
        self.progress.say(f"{self.stage.name}: job {job_id} submitted; fine-tunes start when "
                          "it ends")
        return True

    def _submit_when_taken(self, ex: Executor, job: TrialJob) -> str | None:
        """``ex.submit``, waiting for a submit slot while the scheduler refuses at a submit
        limit (the trials' rule: submit_wait); None where the run stopped meanwhile. A
        refusal that never clears stops the run with submit_wait's one line; any other refusal
        names the stage's executor options (``stages.pretrain.executor: sbatch refuses
        ...``), as the preflight's does."""
        wait, name = SubmitWait(), self.stage.name
        try:
            while True:
                if wait.due():
                    try:
                        return ex.submit(job)
                    except SubmitLimit as exc:
                        self._held_back(wait, exc, ex.running())
                    except StudyError as exc:  # its options refused: the stage's, as at preflight
                        raise as_stage_error(exc) from None
                if self.stopped():
                    return None
                time.sleep(POLL_S)
                self.progress.update(self.history, 0)
        finally:
            self.held = False
            self.progress.stage_notes.pop(name, None)

    def _held_back(self, wait: SubmitWait, refused: SubmitLimit, in_flight: int) -> None:
        """Note one refusal: the progress line and a stopping run say the pretrain waits,
        the first refusal is warned of, the one that ends a hopeless wait names the stage."""
        self.held = True
        self.progress.stage_notes[self.stage.name] = "waiting for a submit slot"
        kept = "its job is not submitted, nothing of it recorded: the next run submits it"
        try:
            first = wait.refused(refused, in_flight, f"the {self.stage.name}'s job", kept)
        except StudyError as exc:
            raise StudyError(f"{self.stage.name}: {exc}") from None
        if first:
            self.progress.warn(f"{self.stage.name}: sbatch takes no more jobs for now "
                               f"({refused.reason}): its job waits for a submit slot (tried "
                               f"again every {submit_wait.RETRY_S:g} s; Ctrl-C stops the run, "
                               f"and the next submits it){wait.note(refused)}")

    def _wait(self, ex: Executor) -> StageResult:
        while not self.stopped():
            outcomes = [o for o in ex.poll(timeout=POLL_S) if o.trial == STAGE_TRIAL]
            if outcomes and outcomes[-1].failure == UNREADABLE:
                o = self._unreadable(outcomes[-1], ex.t0)
                if o is None:  # run again: nothing of the lost run recorded but its new start
                    if not self._rerun(ex):
                        return StageResult(interrupted=True)
                    continue
                outcomes[-1] = o
            if outcomes:
                return self._finish(outcomes[-1], ex)
            if ex.running() == 0:
                return self._finish(Outcome(STAGE_TRIAL, self._attempt, None,
                                            "the executor lost the stage's job", ex.now(),
                                            ex.now(), failure="lost"))
            self._say_pending(ex)
            self.progress.update(self.history, 0)
        return StageResult(interrupted=True)

    def _unreadable(self, o: Outcome, t0: float) -> Outcome | None:
        """The stage's job ended leaving an outcome file that cannot be read (its worker
        writes it whole, so something else damaged it: a disk error, an older version killed
        mid-write). Its result is lost, not a failure of the pretrain's own, so it is not
        recorded failed (which stopped the study), as a trial so ended is not (Driver._collect):
        - where this very job built the checkpoint (the cache's done.json names its process),
          the build is whole and the record holds its result: recorded from there, not built
          again (run again, the job would find it built and be recorded as another's, at no
          cost);
        - else it runs again, once a run (None here; ``_rerun``);
        - damaged again in the same run, it fails with one line saying so."""
        stage, error = self.stage, (o.error or "").replace(
            "the trial ended", f"the {self.stage.name}'s job ended", 1)
        done = built(stage, self.study_dir)
        if done is not None and built_by(done, o.job_id):
            return self._from_record(o, done, error, t0)
        if not self._lost:
            self._lost = True
            self.progress.warn(f"{error}; its result is lost, not its failure: "
                               "it runs again (once a run; a second time it is recorded as "
                               "failed)")
            return None
        return Outcome(o.trial, o.attempt, None, f"{error} (a second time this run)", o.start_s,
                       o.end_s, o.job_id, "result", o.extra, o.earlier_s)

    def _from_record(self, o: Outcome, done: dict, why: str, t0: float) -> Outcome:
        """The outcome of a job whose own result was lost but whose build is whole: its
        result from the build's done.json, as ``run_stage`` had returned it, at its own
        cost (said in one line). One path for a live driver (``_unreadable``) and for a job
        that ended while no driver ran (``_ended_alone``). Its span covers at least the build
        as the record times it (``built`` less ``seconds``, on the study clock from ``t0``):
        without its result the executor's times may be coarser (sacct's whole seconds, a
        run under one second read as none), and the build's compute is the study's."""
        self.progress.warn(f"{why}; its checkpoint is whole in the cache, built by this job "
                           f"({final_dir(self.stage, self.study_dir)}/done.json): recorded "
                           "from that record, not built again")
        start, end = o.start_s, o.end_s
        stamp, seconds = seconds_of(done, "built"), seconds_of(done)
        if stamp is not None:
            end = max(end, stamp - t0)
            if seconds is not None:
                start = max(0.0, min(start, stamp - seconds - t0))
        return Outcome(o.trial, o.attempt, stage_result(done, True), None, start, end,
                       o.job_id, "", o.extra, o.earlier_s)

    def _ended_alone(self, ex: Executor, rec: StageRecord, done: dict) -> Outcome:
        """A dead driver's stage job that the executor cannot re-attach to (it ended leaving
        no outcome it can read) but that built the checkpoint (done.json names it): recorded
        from the record, from its recorded start to the build's end, as a live driver records
        it (``_unreadable``); ``cached`` at no cost would leave the build out of the study's
        compute."""
        start = rec.start_s or 0.0
        stamp = seconds_of(done, "built")
        end = stamp - ex.t0 if stamp is not None else ex.now()
        lost = Outcome(STAGE_TRIAL, rec.attempt, None, None, start,
                       min(ex.now(), max(start, end)), rec.job_id)
        return self._from_record(lost, done, f"{self.stage.name}: its job {rec.job_id} ended "
                                 "while no driver ran and its outcome could not be read "
                                 "(damaged or missing)", ex.t0)

    def _rerun(self, ex: Executor) -> bool:
        """Submit the stage's job again, the same attempt (its lost run recorded no end), and
        record its new start; False where the run stopped while it waited for a submit slot
        (the history then says it was running: the next run runs it again)."""
        job_id = self._submit_when_taken(ex, self._job(self._attempt))
        if job_id is None:
            return False
        self.record([ev.stage_submit(round(ex.now(), 6), self.stage.name, self.stage.key(),
                                     self._attempt, job_id)])
        self.in_flight = True
        self.progress.say(f"{self.stage.name}: job {job_id} submitted again")
        return True

    def _say_pending(self, ex: Executor) -> None:
        """While its job pends, the progress line says why; a reason that means it will not
        start by itself is a warning, once per reason: else a pretrain asking more than its
        partition allows looks like a long 'running' that no one is told of."""
        name, reason = self.stage.name, ex.waiting().get(STAGE_TRIAL, "")
        was = self.progress.stage_notes.pop(name, "")
        if not reason:
            return
        self.progress.stage_notes[name] = f"pending ({reason})"
        if was == f"pending ({reason})":
            return
        job_id = (self.history.stages.get(name) or StageRecord(name)).job_id
        stuck = stuck_warning(name, [job_id], reason)
        if stuck is None:
            self.progress.say(f"{name}: job {job_id} pending ({reason})")
        else:
            self.progress.warn(f"{stuck}; fix stages.pretrain.executor, then: "
                               f"python -m autotune cancel {self.study_dir} and run again")

    def _finish(self, o: Outcome, ex: Executor | None = None) -> StageResult:
        stage = self.stage
        self.in_flight = False
        self.progress.stage_notes.pop(stage.name, None)
        error, failure = o.error, o.failure
        metrics = dict(o.result or {}) if error is None else {}
        if error is None and built(stage, self.study_dir) is None:
            error, failure = "the stage's job ended but its checkpoint is not in the cache", "result"
        why = unused_cost(metrics)
        if why is not None:  # as for a trial's (Driver._say_unused_cost)
            self.progress.warn(f"{stage.name}'s result: {why}")
        reported = reported_cost(metrics.pop("cost_s", None))
        cost = reported if reported is not None else o.run_s
        status = "ok" if error is None else ("cancelled" if failure == "cancelled" else "failed")
        cached = error is None and metrics.get("built") == 0.0
        if cached:
            # its job found it built by another (it waited on the lock while that one built
            # it): no build of this study's; the time its job held waiting is said, not spent
            cost = 0.0
            metrics["waited_s"] = round(o.run_s, 6)
        numbers = {k: as_float(v) for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        done = built(stage, self.study_dir) if cached else None
        self.record([ev.stage_end(stage.name, stage.key(), o.attempt, status, round(o.start_s, 6),
                                  round(o.end_s, 6), round(cost, 6), o.job_id, numbers, error,
                                  failure)]
                    + ([{**ev.stage_cached(round(o.end_s, 6), stage.name, stage.key(),
                                           checkpoint_of(stage, self.study_dir),
                                           seconds_of(done)),
                         "metrics": numbers}] if cached else []))
        if ex is not None:  # recorded: the job's result may go (its logs come to self.dir)
            ex.release([o])
        if error is not None and failure == "timeout" and "time_limit_min" in error:
            # its job's time limit: the stage's own key to raise (each requeue ran it anew
            # unless it continues from ctx.checkpoint_path)
            error += (f"; give it more time: stages.{stage.name}.executor.time_limit_min")
        if error is not None:
            cancelled = failure == "cancelled"  # SLURM's words on cancelling are no reason
            return StageResult(error=f"{stage.name} failed: {error}", cancelled=cancelled,
                               tail="" if cancelled else self.tail())
        if cached:
            self.progress.say(f"{stage.name}: built meanwhile by another study; its job "
                              f"{o.job_id} waited {o.run_s:.1f} s for it")
        else:
            self.progress.say(f"{stage.name}: done in {o.run_s:.1f} s (job {o.job_id})")
        return StageResult(checkpoint_of(stage, self.study_dir))

    def tail(self) -> str:
        """The end of the stage job's stderr: the local worker's log or SLURM's copy of it."""
        logs = glob.glob(os.path.join(self.dir, "stderr.log")) + \
            glob.glob(os.path.join(self.dir, "slurm-*.stderr.log"))
        if not logs:
            return ""
        newest = max(logs, key=os.path.getmtime)
        try:
            with open(newest, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 8192))
                lines = fh.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(without_tracebacks(lines)[-TAIL_LINES:])


def without_tracebacks(lines: list[str]) -> list[str]:
    """The job's own messages: Python's frames say where, the reason already says what."""
    keep = []
    for line in lines:
        if line.startswith(("Traceback (most recent call last)", "  ")) or not line.strip() \
                or line.startswith(("The above exception", "During handling of")):
            continue
        keep.append(line)
    return keep


def seconds_of(done: dict | None, key: str = "seconds") -> float | None:
    """A number a build's done record holds: what the build took (``seconds``), or when it
    ended (``built``, epoch seconds); None where it says nothing usable."""
    value = (done or {}).get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


