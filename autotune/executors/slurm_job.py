"""What a SLURM job runs: one attempt of one trial, pickled by submitit and unpickled on the node.

``TrialCall`` is submitit-checkpointable: when the job is told it is about to be preempted or
to run out of time (submitit's USR2 signal), submitit calls ``checkpoint`` and requeues the job
with what it returns: the same trial, with ``ctx.extra["requeues"]`` one higher. The objective
itself continues from its own checkpoint (``ctx.checkpoint_path``, in the trial directory),
which is the same file whether the job was requeued by submitit, by ``scontrol requeue``, by
a preemption or after a node failure.

A trial's exception is returned as data (``{"error": ...}``), not raised, so the driver gets
the one-line reason and its kind; only submitit's own control flow (requeue exit, "timed out
too many times") is let through.

In a multi-task job (``nodes``, ``tasks_per_node``) every task runs the same ``TrialCall`` as
one rank (``ranks.run_rank``: the torch.distributed variables derived from SLURM's), and
each leaves its own result pickle, ``<job id>_<rank>_result.pkl``; the driver reads them all.
Only rank 0 checkpoints and requeues on submitit's signal (submitit's rule); SLURM requeues
the whole job, so every rank starts again and the objective continues from its checkpoint.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import traceback
from typing import Any, Iterator

from ..errors import exception_text
from ..objective import Ctx, ObjectiveSpec, run_objective
from ..ranks import run_rank, slurm_env
from ..worker import show_traceback


class TrialTimeout(Exception):
    """The objective ran past its ``timeout_s``."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise TrialTimeout in the main thread after ``seconds`` (none: no limit)."""
    if not seconds:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TrialTimeout(f"timed out after {seconds:g}s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def left_after_sigterm(result: tuple) -> bool:
    """A rank's result (submitit's ``(status, payload)``) that is an error, or a
    ``command:``'s result, left after SLURM's SIGTERM reached its job (``noting_sigterm``
    marks it ``sigterm``): SLURM's word on how the job ended decides, not this."""
    status, payload = result
    return status == "success" and isinstance(payload, dict) and "sigterm" in payload


#: how long a command's result waits for a SIGTERM that SLURM sent the job as the command
#: ended, where SLURM cannot be asked (``slurm_ending``): slurmstepd signals the job's
#: processes one by one, and under load the shell that outlived its killed child printed its
#: result before this process was signalled
SIGTERM_GRACE_S = 0.5
#: how long the job's one ``squeue`` about itself may take before the grace stands in for it
STATE_QUERY_S = 10.0


def late_sigterm(noted: list[float], grace_s: float = SIGTERM_GRACE_S) -> None:
    """Give a SIGTERM on its way to this process ``grace_s`` to be noted (``noting_sigterm``)
    before a command's result is written: a trial's command takes minutes to hours, this
    half a second. Only where SLURM cannot be asked (``settle_sigterm``): a wait narrows
    the race, it cannot close it."""
    end = time.monotonic() + grace_s
    while not noted and time.monotonic() < end:
        time.sleep(0.05)


def slurm_ending(job_id: str, timeout: float = STATE_QUERY_S) -> bool | None:
    """Whether SLURM is ending this job (squeue's state of it is no longer RUNNING: a
    scancel, its time limit or a preemption makes it CANCELLED, TIMEOUT, ... COMPLETING in
    the controller before any of its processes is signalled); None where squeue cannot say
    (not found on the node, no answer within ``timeout``, the job not listed)."""
    from .slurm_query import SlurmError, queue_states

    if not job_id:
        return None
    try:
        state = queue_states([job_id], timeout).get(job_id)
    except SlurmError:
        return None
    return None if state is None else state != "RUNNING"


def settle_sigterm(noted: list[float], job_id: str) -> None:
    """Before a ``command:``'s result is kept: note the SIGTERM (``noting_sigterm``'s list)
    where SLURM is ending the job (``slurm_ending``). The shell that outlived its child
    killed by the job's SIGTERM may print a result before this process is signalled; the
    controller changed the job's state before any signal was sent, so asking it after the
    command ended closes that race: a job it says RUNNING was not being ended as the
    command ended (a SIGTERM after that comes late, and the result is whole). Where it
    cannot be asked, ``late_sigterm``'s grace; outside SLURM (no job id), nothing."""
    if noted or not job_id:
        return
    ending = slurm_ending(job_id)
    if ending is None:
        late_sigterm(noted)
    elif ending and not noted:
        noted.append(time.time())


@contextlib.contextmanager
def noting_sigterm() -> Iterator[list[float]]:
    """Note when SLURM's SIGTERM reaches the job (scancel, its time limit, a preemption or a
    node going down signal every process of the job), leaving submitit's own handler to act on
    it (it lets the job run on to SLURM's SIGKILL). A ``command:`` objective's process has no
    such handler and dies of it at once, and its "killed by signal 15" must not pass for the
    trial's own failure: the driver asks sacct how the job ended instead. Yields the list the
    signal's time is appended to; outside submitit (no handler of its own) nothing is changed."""
    noted: list[float] = []
    try:
        before = signal.getsignal(signal.SIGTERM)
    except ValueError:  # not the main thread
        before = None
    if not callable(before):
        yield noted
        return

    def note(signum: int, frame: Any) -> None:
        noted.append(time.time())
        before(signum, frame)

    signal.signal(signal.SIGTERM, note)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGTERM, before)


def _restarts() -> int:
    """How often SLURM had started this job before this run (requeues): the driver asks sacct
    for the earlier runs' times where it had not seen them all."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    except ValueError:
        return 0


class TrialCall:
    """The callable submitted to SLURM (must stay importable on the compute nodes)."""

    def __init__(self, objective: dict, params: dict, ctx: dict, requeues: int = 0,
                 launch: dict | None = None):
        self.objective = objective
        self.params = params
        self.ctx = ctx
        self.requeues = requeues
        #: a multi-rank trial: {"mode": "task" | "node", "nproc_per_node": n}; None: one task
        self.launch = launch

    def __call__(self) -> dict:
        spec = ObjectiveSpec.from_dict(self.objective)
        ctx = Ctx(**self.ctx)
        ctx.extra = {**(ctx.extra or {}), "requeues": self.requeues,
                     "slurm_job_id": os.environ.get("SLURM_JOB_ID", "")}
        started = time.time()
        with noting_sigterm() as sigterm:
            return self._run(spec, ctx, started, sigterm)

    def _run(self, spec: ObjectiveSpec, ctx: Ctx, started: float, sigterm: list[float]) -> dict:
        from submitit.core.utils import UncompletedJobError

        rank_env = None
        try:
            if self.launch is not None:  # every task of the job runs this, as one rank
                rank_env = slurm_env(os.environ, self.launch["mode"],
                                     int(self.launch.get("nproc_per_node", 1)))
            with deadline(spec.timeout_s):
                if rank_env is None:
                    result = run_objective(spec, self.params, ctx, stdout=sys.stdout,
                                           stderr=sys.stderr)
                else:
                    result = run_rank(spec, self.params, ctx, rank_env, stdout=sys.stdout,
                                      stderr=sys.stderr)
            payload = {"result": result, "started": started, "ended": time.time(),
                       "rank": rank_env.rank if rank_env else 0, "restarts": _restarts()}
            if spec.command is not None:
                settle_sigterm(sigterm, os.environ.get("SLURM_JOB_ID", ""))
            if sigterm and spec.command is not None:
                # a shell that outlived its child's SIGTERM may print a result the killed child
                # never reached (`sleep 30; echo ...`): SLURM's word on the job decides
                payload["sigterm"] = sigterm[0]
            return payload
        except UncompletedJobError:
            raise  # submitit: preempted or timed out and not requeued any more
        except Exception as exc:  # noqa: BLE001 - a trial's exception is data
            trace = traceback.format_exc()
            show_traceback(spec)  # an entry's; a command's stderr ends with its own words
            rank = rank_env.rank if rank_env else 0
            with contextlib.suppress(OSError):
                os.makedirs(ctx.trial_dir, exist_ok=True)
                name = "traceback.txt" if rank == 0 else f"traceback-rank-{rank}.txt"
                with open(os.path.join(ctx.trial_dir, name), "w") as fh:
                    fh.write(trace)
            timed_out = isinstance(exc, TrialTimeout)
            failure = "timeout" if timed_out else "exception"
            # a timeout in the words a local trial's has (no class name of ours before them)
            payload = {"error": str(exc) if timed_out else exception_text(exc),
                       "failure": failure,
                       "started": started, "ended": time.time(), "rank": rank,
                       "restarts": _restarts()}
            if spec.command is not None:
                # a command dies of the job's SIGTERM at once, and slurmstepd may signal it
                # before this process: its "killed by signal 15" came back un-noted and was
                # recorded as the trial's own failure, not the scancel's (a CI run)
                settle_sigterm(sigterm, os.environ.get("SLURM_JOB_ID", ""))
            if sigterm:  # SLURM was ending the job: its state, not this error, says why
                payload["sigterm"] = sigterm[0]
            return payload
        finally:
            sys.stdout.flush()
            sys.stderr.flush()

    def checkpoint(self, *args: Any, **kwargs: Any):
        """submitit: the job is being preempted or timing out; requeue this same trial."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(TrialCall(self.objective, self.params, self.ctx,
                                           self.requeues + 1, self.launch), *args, **kwargs)
