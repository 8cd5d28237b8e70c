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
import itertools
from typing import Iterable

import numpy as np

from .directions import Point


class AdditiveModel:
    def __init__(self, shape: tuple[int, ...], alpha: float = 0.1):
        self.shape = shape
        self.alpha = alpha
        self.offsets = np.concatenate([[0], np.cumsum(shape)[:-1]]).astype(int)
        self.effects: list[np.ndarray] | None = None
        self.mu = 0.0

    def fit(self, points: list[Point], values: list[float]) -> bool:
        """Least squares with per-axis smoothness; False when there is too little to fit."""
        n = len(points)
        if n < 2:
            self.effects = None
            return False
        k = int(sum(self.shape))
        y = np.asarray(values, dtype=float)
        scale = float(np.std(y)) or 1.0
        self.mu = float(np.mean(y))
        x = np.zeros((n, k))
        rows = np.arange(n)
        idx = np.asarray(points, dtype=int)
        for axis, off in enumerate(self.offsets):
            x[rows, off + idx[:, axis]] = 1.0
        penalty = np.zeros((k, k))
        for axis, m in enumerate(self.shape):
            off = int(self.offsets[axis])
            for j in range(m - 2):            # second differences along the axis
                d = np.zeros(k)
                d[off + j], d[off + j + 1], d[off + j + 2] = 1.0, -2.0, 1.0
                penalty += np.outer(d, d)
        # a small ridge keeps axis values nobody measured at the axis's mean effect
        lhs = x.T @ x + self.alpha * penalty + 1e-6 * np.eye(k)
        beta = np.linalg.solve(lhs, x.T @ ((y - self.mu) / scale)) * scale
        parts = [beta[off:off + m] for off, m in zip(self.offsets, self.shape)]
        self.mu += float(sum(np.mean(part) for part in parts))   # centred effects, same sums
        self.effects = [part - float(np.mean(part)) for part in parts]
        return True

    def predict(self, p: Point) -> float:
        assert self.effects is not None
        return self.mu + float(sum(e[i] for e, i in zip(self.effects, p)))

    def best(self, count: int, skip: Iterable[Point] = ()) -> list[tuple[float, Point]]:
        """The ``count`` lowest predictions (value, point) among points not in ``skip``,
        lowest first, found without enumerating the grid (best-first over sorted axes)."""
        if self.effects is None or count <= 0:
            return []
        skip = set(skip)
        order = [np.argsort(e, kind="stable") for e in self.effects]
        sorted_vals = [e[o] for e, o in zip(self.effects, order)]
        start = (0,) * len(order)
        heap = [(float(sum(v[0] for v in sorted_vals)), start)]
        seen = {start}
        out: list[tuple[float, Point]] = []
        while heap and len(out) < count:
            value, ranks = heapq.heappop(heap)
            p = tuple(int(o[r]) for o, r in zip(order, ranks))
            if p not in skip:
                out.append((self.mu + value, p))
            for axis in range(len(ranks)):      # the next-ranked value on one axis
                if ranks[axis] + 1 < len(order[axis]):
                    nxt = ranks[:axis] + (ranks[axis] + 1,) + ranks[axis + 1:]
                    if nxt not in seen:
                        seen.add(nxt)
                        delta = sorted_vals[axis][nxt[axis]] - sorted_vals[axis][ranks[axis]]
                        heapq.heappush(heap, (value + float(delta), nxt))
            if len(seen) > 50 * (count + len(skip)) + 1000:   # a safety bound, never reached
                break
        return out


def all_points(shape: tuple[int, ...]) -> Iterable[Point]:
    """Every grid point (tests only: the model never enumerates the grid)."""
    return itertools.product(*(range(n) for n in shape))
