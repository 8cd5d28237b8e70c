"""Run trials in the driver's own process, one at a time: for tests and debugging."""
from __future__ import annotations

import contextlib
import os
import time
import traceback

from ..objective import run_objective
from .base import Executor, Outcome, TrialJob
from .registry import register


def call_in_process(job: TrialJob) -> tuple[dict | None, str | None, str, float]:
    """Run the objective here; (result, error, failure kind, measured seconds)."""
    began = time.perf_counter()
    try:
        result = run_objective(job.objective, job.params, job.ctx)
        return result, None, "", time.perf_counter() - began
    except Exception as exc:  # noqa: BLE001 - a trial's exception is data, not a driver crash
        with contextlib.suppress(OSError):
            with open(os.path.join(job.ctx.trial_dir, "traceback.txt"), "w") as fh:
                fh.write(traceback.format_exc())
        return None, f"{type(exc).__name__}: {exc}", "exception", time.perf_counter() - began


@register
class InlineExecutor(Executor):
    """Each submit runs the trial to completion before returning; poll hands it back."""

    kind = "inline"
    in_process = True
    options = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._done: list[Outcome] = []

    def submit(self, job: TrialJob) -> str:
        start = self.now()
        result, error, failure, _ = call_in_process(job)
        self._done.append(Outcome(job.trial, job.attempt, result, error, start, self.now(),
                                  job_id=f"inline-{job.trial}", failure=failure))
        return f"inline-{job.trial}"

    def poll(self, timeout: float) -> list[Outcome]:
        done, self._done = self._done, []
        return done

    def running(self) -> int:
        return len(self._done)
