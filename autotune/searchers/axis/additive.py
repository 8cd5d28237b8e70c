"""A global additive model of everything measured: one smooth curve per axis, summed.

The line searches see one line at a time; with many workers they also leave slots that the
lines cannot use yet. This model looks at all measurements at once, as a sum of per-axis
effects f(x) = mu + g_1(x_1) + ... + g_d(x_d), each g_i a discrete curve over axis i's
values with a second-difference smoothness penalty (the d-Spline's idea, per axis). It is a
least-squares fit with a few dozen unknowns (the sum of the axis lengths), so refitting it
after every result costs next to nothing, and repeated measurements are averaged by it.

Why additive: a line search through a base measures exactly such per-axis slices, and when
the landscape is (nearly) separable the combination of every axis's best value is the
optimum, which the lines would otherwise reach one base move at a time. Where the axes
interact the model is only a proposal generator: each of its picks costs one trial, and the
search caps how many are in flight (see search.py).
"""
from __future__ import annotations

import heapq
from typing import Callable

import numpy as np

from .directions import Point


class AdditiveModel:
    def __init__(self, shape: tuple[int, ...], alpha: float = 0.1):
        self.shape = shape
        self.alpha = alpha
        self.offsets = np.concatenate([[0], np.cumsum(shape)[:-1]]).astype(int)
        k = int(sum(shape))
        # the normal equations, kept up to date one measurement at a time: refitting after
        # every result then costs one small solve, however long the history
        self.xtx = np.zeros((k, k))
        self.xty = np.zeros(k)
        # adds wait here until a fit reads them: a resume tells thousands of results and
        # fits once, and one vectorised update costs what a handful of single ones do
        self._pending: list[Point] = []
        self._pending_values: list[float] = []
        self.n = 0
        self.total = 0.0
        self.penalty = np.zeros((k, k))
        for off, m in zip(self.offsets, shape):
            for j in range(int(off), int(off) + m - 2):     # second differences along an axis
                d = np.zeros(k)
                d[j], d[j + 1], d[j + 2] = 1.0, -2.0, 1.0
                self.penalty += np.outer(d, d)
        self.effects: list[np.ndarray] | None = None
        self.mu = 0.0

    def add(self, p: Point, value: float) -> None:
        self._pending.append(p)
        self._pending_values.append(value)
        self.n += 1
        self.total += value

    def _flush(self) -> None:
        """Fold the waiting adds into the normal equations."""
        if not self._pending:
            return
        k = self.xtx.shape[0]
        cols = self.offsets + np.asarray(self._pending, dtype=int)        # (adds, d)
        # one column per axis, all different: each add is a d x d block of ones
        flat = (cols[:, :, None] * k + cols[:, None, :]).ravel()
        self.xtx += np.bincount(flat, minlength=k * k).reshape(k, k)
        values = np.repeat(np.asarray(self._pending_values, dtype=float), cols.shape[1])
        # in order, one add at a time, as a fit after every add would have summed them: the
        # same floats whether a run fitted often or a resume fits once
        np.add.at(self.xty, cols.ravel(), values)
        self._pending.clear()
        self._pending_values.clear()

    def fit(self, points: list[Point] | None = None, values: list[float] | None = None) -> bool:
        """Least squares with per-axis smoothness over what was added (plus ``points`` and
        ``values``, if given); False when there is too little to fit."""
        for p, v in zip(points or (), values or ()):
            self.add(p, v)
        if self.n < 2:
            self.effects = None
            return False
        self._flush()
        k = len(self.xty)
        self.mu = self.total / self.n
        counts = np.diag(self.xtx)                 # one-hot columns: X^T 1 is the diagonal
        lhs = self.xtx + self.alpha * self.penalty + 1e-6 * np.eye(k)
        beta = np.linalg.solve(lhs, self.xty - self.mu * counts)
        parts = [beta[off:off + m] for off, m in zip(self.offsets, self.shape)]
        self.mu += float(sum(np.mean(part) for part in parts))   # centred effects, same sums
        self.effects = [part - float(np.mean(part)) for part in parts]
        return True

    def predict(self, p: Point) -> float:
        assert self.effects is not None
        return self.mu + float(sum(e[i] for e, i in zip(self.effects, p)))

    def best_on_grid(self, count: int, known: np.ndarray) -> list[tuple[float, Point]]:
        """``best`` for a grid small enough to predict whole: every point at once, the
        ``known`` ones (a boolean array of the grid's shape) left out."""
        if self.effects is None or count <= 0:
            return []
        pred = np.full(self.shape, self.mu)
        for axis, e in enumerate(self.effects):
            pred = pred + e.reshape([-1 if a == axis else 1 for a in range(len(self.shape))])
        flat = np.where(known, np.inf, pred).ravel()
        free = int(flat.size - np.count_nonzero(known))
        count = min(count, free)
        if count <= 0:
            return []
        top = np.argpartition(flat, count - 1)[:count]
        top = top[np.lexsort((top, flat[top]))]
        return [(float(flat[i]), tuple(int(x) for x in np.unravel_index(i, self.shape)))
                for i in top]

    def best(self, count: int, skip: Callable[[Point], bool] = lambda p: False
             ) -> list[tuple[float, Point]]:
        """The ``count`` lowest predictions (value, point) among points ``skip`` does not
        reject, lowest first, found without enumerating the grid (best-first over the
        sorted axes)."""
        if self.effects is None or count <= 0:
            return []
        # plain lists: the walk reads single values thousands of times a decision, and a
        # numpy scalar costs several times a float to read and to subtract (same values)
        order = [np.argsort(e, kind="stable").tolist() for e in self.effects]
        sorted_vals = [e[o].tolist() for e, o in zip(self.effects, order)]
        sizes = [len(o) for o in order]
        start = (0,) * len(order)
        heap = [(float(sum(v[0] for v in sorted_vals)), start)]
        seen = {start}
        out: list[tuple[float, Point]] = []
        while heap and len(out) < count:
            value, ranks = heapq.heappop(heap)
            p = tuple([o[r] for o, r in zip(order, ranks)])
            if not skip(p):
                out.append((self.mu + value, p))
            for axis, r in enumerate(ranks):      # the next-ranked value on one axis
                if r + 1 < sizes[axis]:
                    nxt = ranks[:axis] + (r + 1,) + ranks[axis + 1:]
                    if nxt not in seen:
                        seen.add(nxt)
                        vals = sorted_vals[axis]
                        heapq.heappush(heap, (value + (vals[r + 1] - vals[r]), nxt))
            if len(seen) > 20 * count + 400:   # the model's best are measured: it has no news
                break
        return out

