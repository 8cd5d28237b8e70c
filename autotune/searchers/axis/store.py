"""Every measurement by grid point, shared by all line searches of one search.

A point is measured at most once (unless repeats are asked for) whichever line or round
wants it; repeated values are averaged, and their spread pooled into the noise estimate.
"""
from __future__ import annotations

import math

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
        self._noise: tuple[float, int] | None = None
        self._means: dict[Point, float] = {}      # asked for in every ranking: kept, not summed
        self._best: Point | None = None   # (sigma, degrees of freedom), cached

    def start(self, trial: int, p: Point) -> None:
        self.trial_point[trial] = p
        self.first_trial.setdefault(p, trial)
        self.pending[p] = self.pending.get(p, 0) + 1

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
        self._noise = None
        if result.ok and math.isfinite(result.loss):
            vals = self.values.setdefault(p, [])
            vals.append(float(result.loss))
            before = self._means.get(p)
            self._means[p] = sum(vals) / len(vals)
            self.first_seen.setdefault(p, self.results)
            if self._best is not None:
                if p == self._best and self._means[p] > before:
                    self._best = None                    # recomputed when next asked for
                elif self._rank(p) < self._rank(self._best):
                    self._best = p
        else:
            self.failed[p] = self.failed.get(p, 0) + 1
        return p

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
        vals = self.values.get(p) or []
        if len(vals) < 2:
            return 0.0
        m = sum(vals) / len(vals)
        return math.sqrt(sum((x - m) ** 2 for x in vals) / (len(vals) - 1))

    def noise(self) -> tuple[float, int]:
        """Pooled spread over every point measured more than once (0 when none), and its
        degrees of freedom (0: no point measured twice yet)."""
        if self._noise is None:
            ss, dof = 0.0, 0
            for vals in self.values.values():
                if len(vals) > 1:
                    m = sum(vals) / len(vals)
                    ss += sum((x - m) ** 2 for x in vals)
                    dof += len(vals) - 1
            self._noise = (math.sqrt(ss / dof) if dof else 0.0, dof)
        return self._noise

    def sigma(self) -> float:
        return self.noise()[0]

    def best(self) -> Point | None:
        """The point with the lowest mean (earliest measured on ties); kept up to date by
        ``finish`` and recomputed only when the best point's own mean rises."""
        if self._best is None and self.values:
            self._best = min(self.values, key=self._rank)
        return self._best

    def _rank(self, p: Point) -> tuple[float, int]:
        return self._means[p], self.first_seen[p]

    def ranked(self) -> list[Point]:
        return sorted(self.values, key=self._rank)

    @property
    def in_flight(self) -> int:
        return sum(self.pending.values())
