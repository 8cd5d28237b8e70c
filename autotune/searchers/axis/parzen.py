"""A global density-ratio model over the grid: where the best points gather and the rest do not.

Every other part of the search looks near a base: the lines through it, the quadratic
around it, and restarts from the best point outside the boxes around the bases so far. The
additive model sees the whole grid, but only as a sum of per-axis effects. A landscape of
a few separate basins, the best of them narrow and off every line through the start, is
then found late or never: nothing proposes points between the lines.

This model does what TPE does (Bergstra et al., 2011), on grid indices: one Parzen density
l over the best measured points, one g over the rest (a random 400 of them in a long
history: a density needs a sample, and its cost then stays flat) and the points in flight
(a point in flight counts as a poor result, so that picks made while others run spread
out), each mixed with a uniform prior. Its picks are candidates drawn from l, rounded to the
grid, unknown so far, with the highest l/g. l's points are a tenth of the measured ones (at
most 25), taken from the better half, best first, each a fifth of an axis's range (two
steps or more) from every better one taken: a local search measures densely around its
bases, and the plain best tenth would all lie in the basin it searched last, where g is
dense too and l/g points back at that basin's rim. A pick that beats the base moves it
there like any other point; one that lands in a better basin is where the next local search
runs. The search gives the model a fixed share of its trials once its first local search
has settled (search.py).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ...tpe import KDE
from .directions import Point

GOOD_SHARE = 0.1      # l is fitted to this share of the measured points ...
MOST_GOOD = 25        # ... but to at most this many (TPE's default)
CANDIDATES = 128      # draws from l per pick
MOST_REST = 400       # g from a random draw of this many of the rest: a flat cost per pick
APART = 0.2           # l's points: a fifth of an axis's range apart on some axis (2+ steps)


class ParzenPicks:
    """Proposals from l/g over the grid's cells (indices mapped to cell centres in [0, 1])."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = np.asarray(shape)
        # kernels no narrower than half the finest axis's step
        self.min_bandwidth = 0.5 / float(self.shape.max())
        self.apart = np.maximum(2, np.rint(APART * (self.shape - 1))).astype(int)

    def _cells(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=float) + 0.5) / self.shape

    def picks(self, points: np.ndarray, means: np.ndarray, pending: np.ndarray, count: int,
              known: Callable[[Point], bool], rng: np.random.Generator,
              spread: bool = True) -> list[Point]:
        """Up to ``count`` unknown grid points with the highest l/g, best first.

        ``points`` (n x d grid indices) and ``means`` are the measured points; ``pending``
        the points in flight; ``known(p)`` says whether p was measured or handed out.
        ``spread``: l's points kept apart (the share's look for other basins); else the plain
        best tenth, whose picks stay near the best points as TPE's do (spare slots)."""
        n = len(points)
        if n < 2 or count <= 0:
            return []
        good_n = max(1, min(MOST_GOOD, math.ceil(GOOD_SHARE * n)))
        order = np.argsort(means, kind="stable")
        if spread:
            chosen = self._spread_out(points, order[:max(good_n, n // 2)], good_n, self.apart)
        else:
            chosen = order[:good_n]
        good = self._cells(points[chosen])
        rest_rows = np.setdiff1d(np.arange(n), chosen)
        if len(rest_rows) > MOST_REST:     # a density needs a sample, not the whole history
            rest_rows = rng.choice(rest_rows, MOST_REST, replace=False)
        rest = [self._cells(points[rest_rows])]
        if len(pending):
            rest.append(self._cells(pending))
        bad = np.vstack(rest)
        none = np.zeros((0, 0), dtype=int)
        l_kde = KDE(good, np.zeros((len(good), 0), dtype=int), [], self.min_bandwidth)
        draws, _ = l_kde.sample(rng, CANDIDATES, 1.0)
        cells = np.minimum(np.floor(draws * self.shape), self.shape - 1).astype(int)
        cells = np.unique(cells, axis=0)
        fresh = [i for i, c in enumerate(cells) if not known(tuple(int(x) for x in c))]
        if not fresh:
            return []
        cells = cells[fresh]
        u = self._cells(cells)
        log_l = self._log_mixed(l_kde.log_pdf(u, none), len(good))
        if len(bad):
            g_kde = KDE(bad, np.zeros((len(bad), 0), dtype=int), [], self.min_bandwidth)
            log_g = self._log_mixed(g_kde.log_pdf(u, none), len(bad))
        else:
            log_g = np.zeros(len(u))
        score = log_l - log_g
        best = np.argsort(-score, kind="stable")[:count]
        return [tuple(int(x) for x in cells[i]) for i in best]

    @staticmethod
    def _spread_out(points: np.ndarray, order: np.ndarray, count: int, apart: np.ndarray
                    ) -> np.ndarray:
        """Rows of the best points (``order``: the better half, best first), each ``apart``
        steps or more (on some axis) from every better one kept: the local searches measure
        densely around their bases, and the plain best points would all lie in the basin
        searched last."""
        kept: list[int] = []
        for row in order:
            if kept and not (np.abs(points[kept] - points[row]) >= apart).any(axis=1).all():
                continue
            kept.append(int(row))
            if len(kept) == count:
                break
        return np.asarray(kept, dtype=int)

    @staticmethod
    def _log_mixed(log_kde: np.ndarray, n: int) -> np.ndarray:
        """The density mixed with the uniform prior on [0, 1]^d, the prior weighing as one
        point: far from every point both l and g fall to the prior, not to nothing."""
        w = n / (n + 1.0)
        return np.logaddexp(np.log(w) + log_kde, math.log(1.0 - w))
