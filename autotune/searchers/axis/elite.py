"""A quadratic fitted to the best points measured anywhere: where the good region bottoms out.

The local quadratic (quadratic.py) is fitted to the points nearest the base, so it sees the
slope the base stands on and nothing beyond; the additive model sees everything but has no
interactions. Where the landscape's envelope is a rotated bowl under ripples, rings or a
grid-rough floor (a discus or a sharp ridge along no axis, concentric rings, an oblique
valley), the best points found so far lie around its bottom on several sides, and a full
quadratic fitted to them alone has its minimum near the middle of them: often a point no
line and no neighbour check would reach soon (measured: the rotated discus 14.7 h -> 7.0 h,
Schaffer's and Drop-Wave's rings reached in the median where they were not; docs/
benchmarks.md). On a multimodal landscape the best points straddle basins and the fit is
a guess; each pick costs one trial and the search keeps only a few in flight.

The fit uses the measured means kept by the local quadratic (one row per point), so it
costs a sort, one least-squares solve of ``1 + d + d(d+1)/2`` unknowns and one prediction
over the candidates.

Under noise the best points are partly the luckiest ones, and a fit through them chases the
noise once the noise is a fair part of how much their means differ; while it is small
beside that (``spread``), the bottom they surround is still where they say.
"""
from __future__ import annotations

import numpy as np

from .directions import Point
from .quadratic import LocalQuadratic

BEST = 3              # the fit uses this many times its unknowns' count of the best points
MIN_POINTS = 4        # ... and waits for this many times the unknowns measured in all
MAX_CANDIDATES = 20_000   # the box around the best points, whole up to this size
SAMPLE = 4_000        # ... else a seeded sample of it this large (many parameters)
PICKS = 20            # the lowest predictions kept per fit


class BestPointsQuadratic:
    """Proposals from a quadratic fitted to the best measured points."""

    def __init__(self, points: LocalQuadratic, shape: tuple[int, ...]):
        self.points = points
        self.shape = np.asarray(shape)

    def spread(self) -> float | None:
        """The standard deviation of the means the fit would use (None while too few are
        measured): how much the best points differ, against which the noise is judged."""
        q = self.points
        _, means = q.table()
        if len(means) < MIN_POINTS * q.unknowns:
            return None
        return float(np.std(np.partition(means, BEST * q.unknowns - 1)[:BEST * q.unknowns]))

    def ranked(self, seed: int, known: np.ndarray | None) -> list[tuple[Point, float]]:
        """Grid points in the box around the best points (one step wider), lowest
        prediction first, with the predictions; ``known`` (a grid-shaped boolean mask, or
        None) removes the points already handed out. Empty while too few are measured."""
        q = self.points
        pts, means = q.table()
        need = BEST * q.unknowns
        if len(means) < MIN_POINTS * q.unknowns:
            return []
        best = np.argsort(means, kind="stable")[:need]
        chosen = pts[best]
        centre = np.rint(chosen.mean(axis=0)).astype(np.int64)
        coef, *_ = np.linalg.lstsq(q.features(chosen - centre), means[best], rcond=None)
        lo = np.maximum(chosen.min(axis=0) - 1, 0)
        hi = np.minimum(chosen.max(axis=0) + 1, self.shape - 1)
        cand = self._box(lo, hi, seed)
        low = q.minimum(coef)
        if low is not None and np.all(np.isfinite(low)):   # a bowl: its own minimum too
            cand = np.vstack([cand, np.clip(np.rint(low) + centre, lo, hi).astype(np.int64)])
        if known is not None:
            cand = cand[~known[tuple(cand.T)]]
        if len(cand) == 0:
            return []
        pred = q.features(cand - centre) @ coef
        order = np.argsort(pred, kind="stable")
        out: list[tuple[Point, float]] = []
        seen: set[Point] = set()
        for i in order:
            p = tuple(int(x) for x in cand[i])
            if p not in seen:
                seen.add(p)
                out.append((p, float(pred[i])))
                if len(out) == PICKS:
                    break
        return out

    def _box(self, lo: np.ndarray, hi: np.ndarray, seed: int) -> np.ndarray:
        sides = hi - lo + 1
        if int(np.prod(sides.astype(float))) <= MAX_CANDIDATES:
            grids = np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi)], indexing="ij")
            return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
        rng = np.random.default_rng([seed, 0xE11E])
        return (lo + rng.integers(0, sides, size=(SAMPLE, len(sides)))).astype(np.int64)
