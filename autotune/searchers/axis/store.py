"""Every measurement by grid point, shared by all line searches of one search.

A point is measured at most once (unless repeats are asked for) whichever line or round
wants it; repeated values are averaged, and their spread pooled into the noise estimate.

Besides the ranking of every point, the store ranks the points of the current *region*: a
search that restarts elsewhere begins a new local search that reads every measurement (its
lines use them all) but moves only to its own finds, the points first started after the
restart (and the restart point). Ranked against everything, the old valley's best would pull
the new base straight back to where it came from. The searcher may ``admit`` an earlier point
to the region (a late result that is no old valley's best: search.py's ``_late_find``).
"""
from __future__ import annotations

import bisect
import math
from typing import Iterator

from ..base import Result
from .directions import Point


class Store:
    """Every result by grid point, and what is in flight."""

    def __init__(self) -> None:
        self.values: dict[Point, list[float]] = {}
        self.failed: dict[Point, int] = {}
        self.pending: dict[Point, int] = {}
        self.trial_point: dict[int, Point] = {}
        self.first_trial: dict[Point, int] = {}  # the trial that first measured each point
        self.first_seen: dict[Point, int] = {}   # order in which points got their first value
        self.screened: set[Point] = set()       # fell out of a short screening run (no value)
        self.results = 0
        # kept up to date per result rather than recomputed over every point: the search
        # asks for rankings and the noise on every decision, and resume replays them all
        self._means: dict[Point, float] = {}
        self._m2: dict[Point, float] = {}         # Welford's sum of squared deviations
        self._order: list[tuple[float, int, Point]] = []   # (mean, first_seen, point), sorted
        self.newest_trial = -1                    # the highest trial id started so far
        self._region_after = -1                   # the region's points: first started later,
        self._region_start: Point | None = None   # or its start point
        self._admitted: set[Point] = set()        # or admitted to it (``admit``)
        # the region's part of _order; None before the first region: all of _order
        self._region: list[tuple[float, int, Point]] | None = None
        self._ss = 0.0                            # pooled over points measured twice or more
        self._dof = 0

    def start(self, trial: int, p: Point) -> None:
        self.trial_point[trial] = p
        self.first_trial.setdefault(p, trial)
        self.pending[p] = self.pending.get(p, 0) + 1
        self.newest_trial = max(self.newest_trial, trial)

    def new_region(self, start: Point) -> None:
        """From now on the region's ranking holds ``start`` and the points first started
        after now."""
        self._region_after = self.newest_trial
        self._region_start = start
        self._admitted = set()
        self._region = [(self._means[start], self.first_seen[start], start)] \
            if start in self._means else []

    def in_region(self, p: Point) -> bool:
        return self._region is None or p == self._region_start \
            or self.first_trial.get(p, -1) > self._region_after or p in self._admitted

    def admit(self, p: Point) -> None:
        """``p`` (measured, started before the region began) counts as the region's own
        from now on: the searcher's call (see search.py's ``_late_find``)."""
        if self.in_region(p) or p not in self._means:
            return
        self._admitted.add(p)
        bisect.insort(self._region, (self._means[p], self.first_seen[p], p))

    def _ranking(self, region: bool) -> list[tuple[float, int, Point]]:
        return self._order if not region or self._region is None else self._region

    def continued(self, trial: int, p: Point) -> None:
        """A trial continuing ``p``'s screening run: ``p`` stays in flight as one point."""
        self.trial_point[trial] = p

    def _release(self, p: Point) -> None:
        left = self.pending.get(p, 0) - 1
        if left > 0:
            self.pending[p] = left
        else:
            self.pending.pop(p, None)

    def screen_out(self, p: Point) -> None:
        """``p``'s short run did not pass: measured, without a value."""
        self._release(p)
        self.screened.add(p)

    def finish(self, result: Result) -> Point | None:
        p = self.trial_point.get(result.trial)
        if p is None:
            return None
        self._release(p)
        self.results += 1
        if result.ok and math.isfinite(result.loss):
            self._add(p, float(result.loss))
        else:
            self.failed[p] = self.failed.get(p, 0) + 1
        return p

    def _add(self, p: Point, x: float) -> None:
        vals = self.values.setdefault(p, [])
        vals.append(x)
        n = len(vals)
        region = self._region if self._region is not None and self.in_region(p) else None
        if n == 1:
            self.first_seen[p] = self.results
            mean, m2 = x, 0.0
        else:
            old_mean, old_m2 = self._means[p], self._m2[p]
            old = (old_mean, self.first_seen[p], p)
            del self._order[bisect.bisect_left(self._order, old)]
            if region is not None:
                del region[bisect.bisect_left(region, old)]
            mean = old_mean + (x - old_mean) / n
            m2 = old_m2 + (x - old_mean) * (x - mean)
            self._ss += m2 - old_m2
            self._dof += 1
        self._means[p], self._m2[p] = mean, m2
        bisect.insort(self._order, (mean, self.first_seen[p], p))
        if region is not None:
            bisect.insort(region, (mean, self.first_seen[p], p))

    def measured(self, p: Point) -> bool:
        """Has a result (a value, a failure, or screened out): never measured again unless
        repeated."""
        return p in self.values or p in self.failed or p in self.screened

    def known(self, p: Point) -> bool:
        return self.measured(p) or p in self.pending

    def count(self, p: Point) -> int:
        return len(self.values.get(p, ()))

    def mean(self, p: Point) -> float:
        return self._means.get(p, math.inf)

    def spread(self, p: Point) -> float:
        n = len(self.values.get(p, ()))
        return math.sqrt(self._m2[p] / (n - 1)) if n > 1 else 0.0

    def noise(self) -> tuple[float, int]:
        """Pooled spread over every point measured more than once (0 when none), and its
        degrees of freedom (0: no point measured twice yet)."""
        dof = self._dof
        return (math.sqrt(max(self._ss, 0.0) / dof) if dof else 0.0), dof

    def sigma(self) -> float:
        return self.noise()[0]

    def best(self) -> Point | None:
        """The point with the lowest mean (earliest measured on ties)."""
        return self._order[0][2] if self._order else None

    def ranked(self) -> Iterator[Point]:
        """Every point with a value, lowest mean first (an iterator: callers take a few)."""
        return (p for _, _, p in self._order)

    def below(self, target: float, region: bool = False) -> Iterator[Point]:
        """Points (of the region only: ``region``) whose mean is below ``target``, lowest
        first."""
        for mean, _, p in self._ranking(region):
            if mean >= target:
                return
            yield p

    def region_best(self) -> Point | None:
        """The region's point with the lowest mean."""
        ranking = self._ranking(True)
        return ranking[0][2] if ranking else None

    @property
    def in_flight(self) -> int:
        return sum(self.pending.values())
