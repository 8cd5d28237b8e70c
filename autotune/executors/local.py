"""Trials as processes on this machine: the embedded default.

Each attempt runs ``python -m autotune.worker`` in its own session (process group), with its
stdout and stderr kept in the trial directory, up to ``max_concurrent`` at once and killed
(the whole group) when it passes the objective's ``timeout_s``. When an attempt ends, well or
not, whatever it left running in its group (``cmd &``, a ``Popen``) is ended with it.

A trial outlives a driver killed with SIGKILL: the next driver re-attaches to the workers
still running (found by the pid in the history, checked against the trial's mark) and
collects those that finished meanwhile from their outcome file, as the SLURM executor does;
``autotune cancel`` stops them when no driver will come back. An interrupted driver (Ctrl-C,
SIGTERM) ends its trials itself; they run again on resume.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

from ..logtail import last_line
from ..worker import (DISK_FULL_STATUS, OUTCOME_UNWRITABLE_STATUS, UNWRITABLE_PREFIX,
                      clear_outcome, write_json_atomic)
from .base import UNREADABLE, Executor, Outcome, TrialJob, damaged_line
from .gpus import cap_concurrency, check_packing, make_pool
from .procgroup import MARK, alive, end_group, environ_of, kill_group, marked_workers
from .registry import register

#: how long one pass over /proc for marked workers serves the trials a resume asks about
SCAN_TTL_S = 2.0
#: where this autotune is imported from: a worker started in the launch directory finds it
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Adopted:
    """A worker a dead driver started: not our child, so watched through /proc."""

    def __init__(self, pid: int, trial_dir: str):
        self.pid = pid
        self.trial_dir = trial_dir
        self.returncode: int | None = None  # never known: nobody waits for it but init

    def poll(self) -> int | None:
        return None if alive(self.pid, self.trial_dir) else 0

    def wait(self, timeout: float = 5.0) -> None:
        give_up = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < give_up:
            time.sleep(0.01)


@dataclass
class _Running:
    job: TrialJob
    proc: subprocess.Popen | _Adopted
    start_s: float
    deadline: float | None  # monotonic
    outcome_path: str
    logs: tuple


@register
class LocalExecutor(Executor):
    kind = "local"
    options = {"gpus_per_trial": "nonneg-int", "trials_per_gpu": "positive-int",
               "tasks_per_trial": "positive-int", "launch": "str"}

    @classmethod
    def check_options(cls, options: dict) -> None:
        check_ranks(options)
        check_packing(options)

    @classmethod
    def preflight(cls, options: dict) -> None:
        """The GPUs asked for must be visible here (a trial's ranks need one each by default)."""
        make_pool(options, check_ranks(options))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._running: dict[int, _Running] = {}
        self._scan: tuple[float, dict[str, int]] | None = None  # _marked_workers'
        self._ranks = check_ranks(self.opts)
        # each trial its own GPUs (gpus.py); never more trials at once than the GPUs hold
        self._gpus = make_pool(self.opts, self._ranks)
        self.max_concurrent = cap_concurrency(self._gpus, self.max_concurrent)

    def submit(self, job: TrialJob) -> str:
        tdir = job.ctx.trial_dir
        os.makedirs(tdir, exist_ok=True)
        kill_orphan(tdir, self._marked_workers)
        job_path = os.path.join(tdir, "job.json")
        outcome_path = os.path.join(tdir, "outcome.json")
        clear_outcome(outcome_path)
        objective = job.objective.to_dict()
        gpus = self._gpus.acquire(job.trial)
        write_json_atomic(job_path, {"objective": objective, "params": job.params,
                                     "ctx": job.ctx.as_dict(), "outcome_path": outcome_path,
                                     "ranks": self._ranks, "gpus": gpus,
                                     "launch": self.opts.get("launch", "task")})
        out = open(os.path.join(tdir, "stdout.log"), "a")
        err = open(os.path.join(tdir, "stderr.log"), "a")
        # only autotune's own root goes on PYTHONPATH: the study's directories (an entry's
        # folder) are put on sys.path by load_entry once the worker has started, as
        # ``python script.py`` puts the script's folder; on PYTHONPATH a types.py there
        # would shadow the standard library's while the interpreter starts up
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [PACKAGE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]),
            **self._gpus.environ(job.trial), MARK: tdir,
            "PYTHONUNBUFFERED": "1"}  # an entry's prints reach stdout.log as they happen
        multi = self._ranks > 1 or self.opts.get("launch", "task") == "node"
        module = "autotune.launch" if multi else "autotune.worker"  # launch: one process a rank
        proc = subprocess.Popen([sys.executable, "-m", module, job_path],  # noqa: S603
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env,
                                cwd=job.ctx.launch_dir or None)
        with open(os.path.join(tdir, "worker.pid"), "w") as fh:
            fh.write(str(proc.pid))
        timeout = job.objective.timeout_s
        deadline = time.monotonic() + timeout if timeout else None
        self._running[job.trial] = _Running(job, proc, self.now(), deadline, outcome_path, (out, err))
        return f"pid-{proc.pid}"

    def unrecorded(self, job: TrialJob) -> str | None:
        """The worker of the trial's latest start (``latest_worker``): ``submit`` starts it
        before the driver records the start with the others of its batch. Where the trial's
        folder was removed (job.json with it), a live worker carrying its mark."""
        pid = find_worker(job.ctx.trial_dir, self._marked_workers)
        return None if pid is None else f"pid-{pid}"

    def _marked_workers(self) -> dict[str, int]:
        """``marked_workers``, one pass over /proc for all the trials a resume asks about or
        runs again (a pass per trial is a second or more on a busy login node), taken again
        once ``SCAN_TTL_S`` old."""
        now = time.monotonic()
        if self._scan is None or now - self._scan[0] > SCAN_TTL_S:
            self._scan = (now, marked_workers())
        return self._scan[1]

    def reattach(self, job: TrialJob, job_id: str) -> bool:
        """Watch again a worker a dead driver left running, or collect what it finished
        meanwhile; False (run it again) when it died without an outcome, or left one that
        cannot be read (its worker writes it whole, so something else damaged it: its result
        is lost, not its failure), as ``status`` says (``worker_ended``: interrupted)."""
        if not job_id.startswith("pid-") or not job_id[4:].isdigit():
            return False
        pid, tdir = int(job_id[4:]), job.ctx.trial_dir
        outcome_path = os.path.join(tdir, "outcome.json")
        recorded = read_json(os.path.join(tdir, "job.json"))
        if recorded is None:  # its folder (or job.json) was removed while it ran
            return self._adopt_unfiled(job, pid)
        if recorded.get("ctx", {}).get("attempt") != job.attempt:
            return False
        if not alive(pid, tdir) and read_json(outcome_path) is None:
            return False
        if recorded.get("gpus"):
            self._gpus.claim(job.trial, recorded["gpus"])
        self._watch(job, pid)
        return True

    def _adopt_unfiled(self, job: TrialJob, pid: int) -> bool:
        """A worker whose trial folder was removed while it ran, job.json with it: watched
        again when it still runs, known by the trial's mark in its environment (the pid is
        the one recorded for this attempt, or found carrying the mark). Run again instead,
        the trial ran twice side by side, the first run's outcome overwriting the second's.
        The folder is made again so that the worker's outcome (a path it holds) can be
        written; the logs it had written went with the old folder."""
        tdir = job.ctx.trial_dir
        os.makedirs(tdir, exist_ok=True)  # before the check: a worker ending now keeps its outcome
        if not alive(pid, tdir):
            return False
        gpus = [d for d in environ_of(pid).get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
        if gpus:
            self._gpus.claim(job.trial, gpus)
        self._watch(job, pid)
        return True

    def _watch(self, job: TrialJob, pid: int) -> None:
        """Watch a worker this driver did not start, its timeout counted from its start."""
        tdir = job.ctx.trial_dir
        start = (job.resume_start_s if job.resume_start_s is not None
                 else self._unrecorded_start(tdir))
        timeout = job.objective.timeout_s
        deadline = (time.monotonic() + max(0.0, timeout - (self.now() - start))
                    if timeout else None)
        self._running[job.trial] = _Running(job, _Adopted(pid, tdir), start, deadline,
                                            os.path.join(tdir, "outcome.json"), ())

    def _unrecorded_start(self, trial_dir: str) -> float:
        """When a worker whose start the history lacks started, on the study clock: its
        job.json is written just before it starts. Taking the moment it was found instead
        would charge a trial that ended meanwhile nothing at all, and restart its timeout."""
        try:
            stamp = os.path.getmtime(os.path.join(trial_dir, "job.json")) - self.t0
        except OSError:
            return self.now()
        return min(self.now(), max(0.0, stamp))

    def started_s(self, trial: int) -> float | None:
        r = self._running.get(trial)
        return None if r is None else r.start_s

    def poll(self, timeout: float) -> list[Outcome]:
        give_up = time.monotonic() + timeout
        pause = 0.002
        while True:
            done = [self._finish(r) for r in list(self._running.values()) if self._ended(r)]
            if done or not self._running or time.monotonic() >= give_up:
                return done
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _ended(self, r: _Running) -> bool:
        if r.proc.poll() is not None:
            return True
        if r.deadline is not None and time.monotonic() > r.deadline:
            kill_group(r.proc.pid)
            r.proc.wait()
            return True
        return False

    def _finish(self, r: _Running) -> Outcome:
        del self._running[r.job.trial]
        if isinstance(r.proc, _Adopted):
            end_group(r.proc.pid, r.job.ctx.trial_dir)
        else:
            kill_group(r.proc.pid)  # the attempt is over: so is anything it left running
        self._gpus.release(r.job.trial)
        for fh in r.logs:
            fh.close()
        data = read_json(r.outcome_path)
        if data is not None and not is_outcome(data):
            data = None  # written over by something else with another object (unreadable)
        end = self._end_of(r, data)
        job_id = f"pid-{r.proc.pid}"
        make = lambda result, error, failure: Outcome(  # noqa: E731
            r.job.trial, r.job.attempt, result, error, r.start_s, end, job_id, failure)
        timed_out = r.deadline is not None and time.monotonic() > r.deadline and data is None
        if timed_out:
            return make(None, f"timed out after {r.job.objective.timeout_s:g}s", "timeout")
        if data is None:
            damage = unreadable(r.outcome_path)
            if damage is not None:  # not the trial's failure: its result is lost (see driver)
                return make(None, damage, UNREADABLE)
            return make(None, died_message(r.proc.returncode, r.job.ctx.trial_dir), "exit")
        if "error" in data:  # the trial's exception, or its watchdog's timeout
            failure = data.get("failure")
            return make(None, data["error"], failure if isinstance(failure, str) else "exception")
        limit = r.job.objective.timeout_s
        if isinstance(r.proc, _Adopted) and limit and end - r.start_s > limit:
            # it ran on past its timeout_s with no driver to end it (its watchdog waits
            # WATCHDOG_GRACE_S more, for the driver to go first): a live driver would have
            # ended it at the limit, so it is timed out, not a result the limit allows
            return make(None, f"timed out after {limit:g}s", "timeout")
        return make(data["result"], None, "")

    def _end_of(self, r: _Running, data: dict | None) -> float:
        """When the attempt ended, on the study clock: the time its worker stamped on the
        outcome where there is one, so that a trial that ended while no driver ran is not
        charged (cost, end time, compute budget) for the wait until a driver collected it."""
        now = self.now()
        stamp = (data or {}).get("end_t")
        if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
            return now
        return min(now, max(r.start_s, stamp - self.t0))

    def running(self) -> int:
        return len(self._running)

    def shutdown(self) -> None:
        for r in list(self._running.values()):
            kill_group(r.proc.pid)
            r.proc.wait()
            # the history records no stop: its stderr.log's time says when the trial last
            # ran (status's elapsed, lifesigns), its words left as the trial wrote them
            with contextlib.suppress(OSError):
                os.utime(os.path.join(r.job.ctx.trial_dir, "stderr.log"))
            for fh in r.logs:
                fh.close()
            self._gpus.release(r.job.trial)
        self._running.clear()


def check_ranks(opts: dict) -> int:
    """Processes per trial (``tasks_per_trial``), refusing a ``launch`` it does not know."""
    from ..errors import StudyError
    from ..ranks import LAUNCH

    launch = opts.get("launch", "task")
    if launch not in LAUNCH:
        raise StudyError(f"executor.launch: expected one of {', '.join(LAUNCH)}, got {launch!r}")
    return int(opts.get("tasks_per_trial", 1))


def read_json(path: str) -> dict | None:
    """A JSON object a trial's files hold (its job, the outcome its worker left), or None
    when there is none (the worker died, or never ended)."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_outcome(data: object) -> bool:
    """Whether what outcome.json holds is a worker's outcome: a JSON object with a result or
    an error. One test for the executor (``_finish``) and the reason it gives (``unreadable``),
    so that what it collects and what it calls damaged can never disagree."""
    return isinstance(data, dict) and ("result" in data or "error" in data)


def unreadable(path: str) -> str | None:
    """Why the outcome file at ``path`` cannot be read, where it is a file that holds no JSON
    object (cut short, written over); None where it is one, or there is none (a worker that
    died first), or it is no file (a directory the objective made: the worker said so)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        why = "empty" if not raw.strip() else "not valid JSON"
    else:
        if is_outcome(data):
            return None
        why = ("a JSON object with neither a result nor an error" if isinstance(data, dict)
               else f"a JSON {type(data).__name__}, not an object")
    return damaged_line(f"its outcome {path}", why, "its worker")


def died_message(returncode: int | None, trial_dir: str) -> str:
    if returncode is None:
        reason = "ended without an outcome while no driver watched"
    elif returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        reason = f"killed by {name}"
    elif returncode == DISK_FULL_STATUS:
        return "No space left on device: the worker could not write its outcome"
    else:
        reason = f"exited with status {returncode}"
    if not os.path.isdir(trial_dir):  # its stderr.log went with it: do not point there
        return (f"{reason}: its trial folder {trial_dir} was removed while it ran (by the "
                "objective?), so its outcome and logs could not be kept")
    tail = last_line(os.path.join(trial_dir, "stderr.log"), limit=1000)
    if returncode == OUTCOME_UNWRITABLE_STATUS and tail.startswith(UNWRITABLE_PREFIX):
        return tail[len("autotune: "):]  # the worker's own line says what and why
    tail = tail[:200]
    return f"{reason}" + (f": {tail}" if tail else " (see stderr.log)")


def worker_pid(trial_dir: str) -> int | None:
    """The pid of the trial's latest worker, as ``submit`` wrote it; None when there is none."""
    try:
        with open(os.path.join(trial_dir, "worker.pid")) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def latest_worker(trial_dir: str,
                  marked: Callable[[], dict[str, int]] = marked_workers) -> int | None:
    """The pid of the worker of the trial's latest start, however far its driver got in
    recording it: one still running (found in /proc by ``marked``: a driver killed just
    after starting it never wrote worker.pid), else the one whose outcome is there, else
    worker.pid's. None when the trial was never handed to a worker (no job.json)."""
    if not os.path.exists(os.path.join(trial_dir, "job.json")):
        return None
    pid = marked().get(trial_dir)
    if pid is None:
        stamped = (read_json(os.path.join(trial_dir, "outcome.json")) or {}).get("pid")
        pid = stamped if isinstance(stamped, int) and not isinstance(stamped, bool) else None
    return pid if pid is not None else worker_pid(trial_dir)


def find_worker(trial_dir: str, marked: Callable[[], dict[str, int]]) -> int | None:
    """The trial's worker however it was left: ``latest_worker``, or where the trial's
    folder was removed (job.json with it) a live worker carrying its mark. ``marked``
    (``marked_workers``, a pass over /proc) is cached by the caller for all the trials it
    asks about."""
    if not os.path.exists(os.path.join(trial_dir, "job.json")):
        return marked().get(trial_dir)
    return latest_worker(trial_dir, marked)


def kill_orphan(trial_dir: str,
                marked: Callable[[], dict[str, int]] = marked_workers) -> None:
    """A worker a dead driver left behind, or what its processes left running, must not
    write into a re-run of its trial: its whole group is ended (the one worker.pid names,
    and one running unrecorded there, see ``latest_worker``)."""
    for pid in {worker_pid(trial_dir), latest_worker(trial_dir, marked)} - {None}:
        end_group(pid, trial_dir)


def worker_ended(trial_dir: str, job_id: str, attempt: int) -> bool:
    """For ``status``: the local trial's worker left an outcome for this attempt while no
    driver ran (finished, failed, or timed out by its watchdog): the next run records it."""
    if not job_id.startswith("pid-") or not job_id[4:].isdigit():
        return False
    job = read_json(os.path.join(trial_dir, "job.json")) or {}
    return (job.get("ctx", {}).get("attempt") == attempt
            and read_json(os.path.join(trial_dir, "outcome.json")) is not None)


def worker_alive(trial_dir: str, job_id: str) -> bool:
    """For ``status``: the local trial's worker still runs although its driver is gone."""
    return job_id.startswith("pid-") and job_id[4:].isdigit() and alive(int(job_id[4:]), trial_dir)
