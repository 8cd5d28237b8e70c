"""Run trials in the driver's own process, one at a time: for tests and debugging."""
from __future__ import annotations

import contextlib
import os
import time
import traceback

from ..errors import exception_text
from ..objective import run_objective
from .base import Executor, Outcome, TrialJob
from .registry import register


def call_in_process(job: TrialJob) -> tuple[dict | None, str | None, str, float]:
    """Run the objective here; (result, error, failure kind, measured seconds)."""
    began = time.perf_counter()
    try:
        result = run_objective(job.objective, job.params, job.ctx)
        return result, None, "", time.perf_counter() - began
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a trial's exception is data, not a
        # driver crash; so is sys.exit() (argparse's on a bad option): under local it ends
        # only the trial's process, and so it ends only the trial here
        with contextlib.suppress(OSError):
            with open(os.path.join(job.ctx.trial_dir, "traceback.txt"), "w") as fh:
                fh.write(traceback.format_exc())
        return None, exception_text(exc), "exception", time.perf_counter() - began


def past_timeout(job: TrialJob, measured: float, result: dict | None, error: str | None,
                 failure: str) -> tuple[dict | None, str | None, str]:
    """A trial that ran past ``timeout_s`` failed, timed out, as under ``local`` (which ends
    it there): in the driver's own process it cannot be cut short, so it is judged as it
    ends (it was recorded ok), its run time its cost."""
    timeout = job.objective.timeout_s
    if timeout is None or measured <= timeout:
        return result, error, failure
    return None, (f"timed out after {timeout:g}s (it ran {measured:.1f}s: the inline executor "
                  f"runs it in the driver's process, which cannot end it sooner)"), "timeout"


@register
class InlineExecutor(Executor):
    """``submit`` only queues the trial; ``poll`` runs what is queued to completion, in
    order, and hands it back. The trial runs after its submit is recorded, as a local or
    SLURM trial does: one interrupted (Ctrl-C, kill -9) counts as started when it runs again."""

    kind = "inline"
    in_process = True
    options = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._queued: list[TrialJob] = []

    def submit(self, job: TrialJob) -> str:
        self._queued.append(job)
        return f"inline-{job.trial}"

    def poll(self, timeout: float) -> list[Outcome]:
        done = []
        while self._queued:
            job = self._queued.pop(0)
            start = self.now()
            result, error, failure, measured = call_in_process(job)
            result, error, failure = past_timeout(job, measured, result, error, failure)
            done.append(Outcome(job.trial, job.attempt, result, error, start, self.now(),
                                job_id=f"inline-{job.trial}", failure=failure))
        return done

    def running(self) -> int:
        return len(self._queued)
