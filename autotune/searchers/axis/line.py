"""One line search: along one direction through one base point, to the grid's edges.

First the four spread points, then the d-Spline's next-point rule, until the estimated best
position has stayed put for ``patience`` new measurements in a row, or ``max_line_points``
of its points are measured, or all of them are.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...dspline import DSpline, initial_positions
from .directions import Point, Vec, dir_text, level_of
from .grid import Grid
from .store import Store


class Line:
    """The search along one direction through one base point."""

    def __init__(self, grid: Grid, base: Point, v: Vec, store: Store, *, alpha: float,
                 patience: int, max_points: int):
        self.base = base
        self.v = v
        self.level = level_of(v)
        self.points = grid.line(base, v)
        self.pos = {p: i for i, p in enumerate(self.points)}
        self.n = len(self.points)
        self.init = [self.points[i] for i in initial_positions(self.n)]
        self.spline = DSpline(self.n, alpha)
        self.patience = patience
        self.max_points = max_points
        self.phase = "init"
        self.done = False
        self.stale = 0
        self.est_best: int | None = None
        self.seen = 0          # results this line has taken in
        self._order: list[int] | None = None
        for p in self.points:
            for value in store.values.get(p, ()):
                self.spline.add(self.pos[p], value)
        self._enter_spline(store)

    @property
    def text(self) -> str:
        return dir_text(self.v)

    def measured_count(self, store: Store) -> int:
        return sum(1 for p in self.points if store.measured(p))

    def observe(self, p: Point, value: float | None, store: Store) -> None:
        """A result at one of this line's points (value None: it failed)."""
        if value is not None:
            self.spline.add(self.pos[p], value)
        self._order = None
        self.seen += 1
        if self.done:
            return
        if self.phase == "init":
            self._enter_spline(store)
            return
        best = self.spline.best_position()
        self.stale = self.stale + 1 if best == self.est_best else 0
        self.est_best = best
        self._check_done(store)

    def _enter_spline(self, store: Store) -> None:
        if all(store.measured(p) for p in self.init):
            self.phase = "spline"
            self.est_best = self.spline.best_position()
            self.stale = 0
            self._check_done(store)

    def _check_done(self, store: Store) -> None:
        measured = self.measured_count(store)
        if self.stale >= self.patience or measured >= self.max_points or measured >= self.n:
            self.done = True

    def order(self, store: Store) -> list[Point]:
        """Unmeasured points in the order the line wants them (pending ones included)."""
        if self.phase == "init":
            return [p for p in self.init if not store.measured(p)]
        if self._order is None:
            eligible = np.array([not store.measured(p) for p in self.points])
            self._order = self.spline.ranking(eligible)
        return [self.points[i] for i in self._order]

    def wanted(self, store: Store) -> list[Point]:
        """What the line would start now: its ordered points not yet measured nor in flight."""
        if self.done:
            return []
        return [p for p in self.order(store) if p not in store.pending]

    def in_flight(self, store: Store) -> int:
        return sum(1 for p in self.points if p in store.pending)

    def best_point(self, store: Store) -> Point | None:
        measured = [p for p in self.points if p in store.values]
        if not measured:
            return None
        return min(measured, key=lambda p: (store.mean(p), store.first_seen[p]))

    def uncertain(self, store: Store, kappa: float = 1.0) -> list[Point]:
        """Unknown points by a lower confidence bound of the fit (promising and uncertain)."""
        if self.done or self.phase == "init" or not self.spline.measured.any():
            return []
        est = self.spline.estimates()
        unc = self.spline.uncertainty(store.sigma() or None)
        free = [i for i, p in enumerate(self.points) if not store.known(p)]
        free.sort(key=lambda i: (est[i] - kappa * unc[i], i))
        return [self.points[i] for i in free]


def interleave(lists: Sequence[Sequence[Point]]) -> list[Point]:
    """The lists' items taken in turn: every list's first, then every list's second, ..."""
    out = []
    longest = max((len(x) for x in lists), default=0)
    for j in range(longest):
        for items in lists:
            if j < len(items):
                out.append(items[j])
    return out
