"""Figures derived from a history: best-so-far traces, time and compute to the best, slot use.

Shared by the report, ``compare`` and the benchmarks, so every table measures the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from .history import History, TrialRecord


def incumbents_of(history: History, mode: str) -> list[TrialRecord]:
    """The trials that were the best so far when they ended, in the order they ended."""
    done = sorted((r for r in history.trials.values()
                   if history.counts_for_best(r) and r.end_s is not None), key=lambda r: r.end_s)
    out: list[TrialRecord] = []
    for rec in done:
        if not out or (rec.value < out[-1].value if mode == "min" else rec.value > out[-1].value):
            out.append(rec)
    return out


def best_so_far(history: History, mode: str) -> tuple[list[float], list[float]]:
    """End times of successful trials in order, with the best value reached by each."""
    done = sorted((r.end_s, r.value) for r in history.trials.values()
                  if history.counts_for_best(r) and r.end_s is not None)
    times, bests, best = [], [], None
    for t, v in done:
        if best is None or (v < best if mode == "min" else v > best):
            best = v
        times.append(t)
        bests.append(best)
    return times, bests


def compute_at(history: History, times: list[float]) -> list[float]:
    """Compute spent (summed costs of every attempt ended) by each of ``times`` (sorted)."""
    ends = sorted((r.end_s, r.cost_s) for r in history.trials.values() if r.end_s is not None)
    out, total, i = [], 0.0, 0
    for t in times:
        while i < len(ends) and ends[i][0] <= t:
            total += ends[i][1]
            i += 1
        out.append(total)
    return out


def concurrency(history: History) -> tuple[list[float], list[int]]:
    """Trials running over time, as a step function (times, running from that time on)."""
    changes = []
    for r in history.trials.values():
        if r.start_s is not None and r.end_s is not None:
            changes += [(r.start_s, 1), (r.end_s, -1)]
    changes.sort(key=lambda c: (c[0], c[1]))
    times, running, now = [], [], 0
    for t, step in changes:
        now += step
        if times and times[-1] == t:
            running[-1] = now
        else:
            times.append(t)
            running.append(now)
    return times, running


@dataclass
class RunFigures:
    best: float | None
    evaluations: int          # finished trials (each rung of a multi-fidelity run counts)
    evaluations_to_best: int
    wall_s: float             # from the first start to the last end
    wall_to_best_s: float | None
    compute_s: float
    compute_to_best_s: float | None
    slot_use: float           # busy worker-seconds / (workers x wall)

    def as_row(self) -> dict:
        return dict(self.__dict__)


def figures(history: History, mode: str, workers: int) -> RunFigures:
    finished = sorted((r for r in history.trials.values() if r.end_s is not None and r.done),
                      key=lambda r: r.end_s)
    times, bests = best_so_far(history, mode)
    start = min((r.start_s for r in finished if r.start_s is not None), default=0.0)
    end = max((r.end_s for r in finished), default=start)
    wall = max(0.0, end - start)
    busy = sum(r.end_s - r.start_s for r in finished if r.start_s is not None)
    best = bests[-1] if bests else None
    t_best = times[bests.index(best)] if bests else None
    n_best = sum(1 for r in finished if t_best is not None and r.end_s <= t_best)
    return RunFigures(
        best=best, evaluations=len(finished), evaluations_to_best=n_best, wall_s=wall,
        wall_to_best_s=None if t_best is None else t_best - start,
        compute_s=sum(r.cost_s for r in finished),
        compute_to_best_s=None if t_best is None else compute_at(history, [t_best])[0],
        slot_use=busy / (workers * wall) if wall > 0 and workers else 0.0)
