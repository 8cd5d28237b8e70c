"""One line search: along one direction through one base point, to the grid's edges.

First the four spread points, then the d-Spline's next-point rule, until the estimated best
position has stayed put for ``patience`` new measurements in a row, or ``max_line_points``
of its points are measured, or all of them are.

A line can be built lazily. The search that moves often (``axis``) starts dozens of lines
at every move, and most of them never get a result before the next move; building each in
full (its points, its d-Spline fitted to what is already measured) on a resume of thousands
of trials cost more than everything else together. A line's built state depends only on the
store's results at its points, so building it at any moment before the next result on one of
its points lands gives the same line: the owner builds the lines through a point before that
point's result enters the store, and anything else that reads the line builds it on first use.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...dspline import DSpline, initial_positions
from .directions import Point, Vec, dir_text, level_of
from .grid import Grid
from .store import Store

#: what a lazy line works out when it is built (read before that, any of them builds it)
BUILT = frozenset({"points", "pos", "n", "init", "spline", "phase", "done", "stale",
                   "est_best", "_best_due", "_order"})


class Line:
    """The search along one direction through one base point."""

    def __init__(self, grid: Grid, base: Point, v: Vec, store: Store, *, alpha: float,
                 patience: int, max_points: int, lazy: bool = False):
        self.base = base
        self.v = v
        self.level = level_of(v)
        self.text = dir_text(v)
        self.alpha = alpha
        self.patience = patience
        self.max_points = max_points
        self.seen = 0          # results this line has taken in (none before it is built)
        self.built = False
        self._grid, self._store = grid, store
        if not lazy:
            self.build()

    def __getattr__(self, name: str):
        # only called for attributes not set yet: the built state of a lazy line
        if name in BUILT and not self.__dict__.get("built", True):
            self.build()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def build(self) -> None:
        """Work out the line from what the store holds at its points (once)."""
        if self.built:
            return
        self.built = True
        store = self._store
        self.points = self._grid.line(self.base, self.v)
        self.pos = {p: i for i, p in enumerate(self.points)}
        self.n = len(self.points)
        self.init = [self.points[i] for i in initial_positions(self.n)]
        self.spline = DSpline(self.n, self.alpha)
        self.phase = "init"
        self.done = False
        self.stale = 0
        self.est_best: int | None = None
        self._best_due = False
        self._order: list[int] | None = None
        for p in self.points:
            for value in store.values.get(p, ()):
                self.spline.add(self.pos[p], value)
        self._enter_spline(store)


    def measured_count(self, store: Store) -> int:
        return sum(1 for p in self.points if store.measured(p))

    def observe(self, p: Point, value: float | None, store: Store) -> None:
        """A result at one of this line's points (value None: it failed)."""
        if self._best_due:         # the estimate the line entered its d-Spline phase with
            self.est_best = self.spline.best_position()
            self._best_due = False
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
            # the fit's best position, worked out when the next result arrives (before that
            # result is added): most lines never see another result, and the fit costs
            self._best_due = True
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
