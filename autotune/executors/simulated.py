"""A virtual-clock executor: replay fifty hour-long workers in seconds.

Each trial's objective runs here, in-process, at the next ``poll`` after its ``submit`` (so
after the driver recorded the submit, as for a trial on a real cluster); the trial is then
held until the virtual clock reaches its start plus the ``cost_s`` the objective reported, so
the order in which results come back, and every time in the trajectory, is what a real
cluster of ``max_concurrent`` workers would have shown. Deterministic: no wall time enters it.
"""
from __future__ import annotations

import heapq

from .base import Executor, Outcome, TrialJob
from ..runner import reported_cost
from .inline import call_in_process
from .registry import register


@register
class SimulatedExecutor(Executor):
    kind = "simulated"
    in_process = True
    virtual_clock = True
    options = {"default_cost_s": "positive-number"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = 0.0
        self._heap: list[tuple[float, int, Outcome]] = []
        self._queued: list[tuple[TrialJob, float]] = []  # submitted, not run yet: (job, start)
        self._seq = 0
        self.default_cost = self.opts.get("default_cost_s")

    def now(self) -> float:
        return self.clock

    def restore_clock(self, t: float) -> None:
        self.clock = max(self.clock, t)

    def submit(self, job: TrialJob) -> str:
        start = self.clock if job.resume_start_s is None else job.resume_start_s
        self._queued.append((job, start))
        return f"sim-{job.trial}-{job.attempt}"

    def _run(self, job: TrialJob, start: float) -> None:
        """Run the objective now and hold its outcome until the clock reaches its end."""
        result, error, failure, measured = call_in_process(job)
        cost = measured if self.default_cost is None else self.default_cost
        if result is not None:
            reported = reported_cost(result.get("cost_s"))
            if reported is not None:
                cost = reported
        timeout = job.objective.timeout_s
        if timeout is not None and cost > timeout:
            result, error, failure, cost = None, f"timed out after {timeout:g}s", "timeout", timeout
        job_id = f"sim-{job.trial}-{job.attempt}"
        # times as the history stores them (microseconds), so a resumed run is bit-identical
        start, end = round(start, 6), round(start + cost, 6)
        outcome = Outcome(job.trial, job.attempt, result, error, start, end,
                          job_id=job_id, failure=failure)
        heapq.heappush(self._heap, (end, self._seq, outcome))
        self._seq += 1

    def poll(self, timeout: float) -> list[Outcome]:
        """Run the trials submitted since the last poll, in order; advance the clock to the
        next completion; return everything ending then."""
        while self._queued:
            self._run(*self._queued.pop(0))
        if not self._heap:
            return []
        end = self._heap[0][0]
        self.clock = max(self.clock, end)
        done = []
        while self._heap and self._heap[0][0] <= end:
            done.append(heapq.heappop(self._heap)[2])
        return done

    def running(self) -> int:
        return len(self._queued) + len(self._heap)
