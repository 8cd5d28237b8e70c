"""A local quadratic model around the base: the valley's own direction, which no line has.

The line searches move along directions with steps of -1, 0 or +1 per axis. A long, narrow
valley that runs obliquely (an ill-conditioned, rotated bowl; a ridge; interacting
hyperparameters such as a learning rate and a loss weight that must grow together) has no
such direction: every line through the base rises, the search settles short of the bottom,
and the additive model, which has no interactions, cannot see it either. A full quadratic
fitted by least squares to the measured points nearest the base has the valley's direction
in its cross terms; its lowest predictions on the grid around the base (and at its own
minimum, and a step of a few points towards it) are measured as proposals, a few at a time.
On a bowl it is exact; elsewhere it is a local guess that costs one trial per pick, like the
additive model's. Its points must determine every coefficient: a search measures along lines
and their neighbours, and the nearest points can all lie where some cross term is zero; the
fit then takes more points (up to four times as many) or is not made. Above four parameters
the box of two steps is sampled, but at five and six the points a step from the base and a
step from the model's own minimum are all proposed.

Many bowls are not quadratic in their values but in a monotone map of them: a loss on a log
scale, an ill-conditioned bowl seen through a log (log(1 + q)), a cone (|x|, the root of a
quadratic). A quadratic fitted to such values is bent towards the steep walls and names
the bottom late. The fit is therefore tried on the values under a few monotone warps (the
identity, exponential ones that undo a log, logarithmic ones that undo a power) and the warp
under which the fit orders the measured points best (Spearman's correlation of fit and
values: the same yardstick under every warp) is kept -- but only where that fit orders them
almost perfectly (``WARP_TRUST``): there the landscape near the base is a warped bowl, and
its warped quadratic is exact too. Where no fit orders them that well (rings, ripples,
several basins) the plain fit is used: a warp chosen on a rugged landscape only makes more
of its predictions fall below the base, and the picks then take slots from the lines
(measured: docs/benchmarks.md, "The local quadratic's warps").

The points and their means are kept in arrays updated per result (means of repeated points
are replaced in place), so a fit costs one distance computation over the measured points
and one singular value decomposition of its ``1 + d + d(d+1)/2`` columns, which both checks
that its points determine every coefficient and solves it under every warp.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from .directions import Point

BOX = 2               # proposals: the grid points within this many steps of the base
MAX_BOX_POINTS = 2_000    # beyond that, a seeded sample of the box (d > 4) ...
MAX_STEP_BOX = 729        # ... and every point a step away while they are this many (d <= 6)
REACH = 4             # a step towards the model's own minimum goes at most this far
JUDGE_WIDTHS = (3, 6, 12)   # judging a point: fits on this many times the unknowns' count
JUDGE_POINTS = 600    # ... the wider ones only while within this many points
FEATURES_AT_ONCE = 600   # rows up to which a decision's features are built in one product
WIDEST = 4            # a fit whose nearest points leave a coefficient open takes up to 4x more


#: the warps tried: 0 the identity; above 0 exponential (convex: undoes a log), below 0
#: logarithmic (concave: undoes a power); larger means stronger over the fitted values' range
WARPS = (0.0, 1.0, 2.0, 4.0, 8.0, -2.0, -8.0)
#: a warp other than the identity is used only where its fit orders the points this well
#: (Spearman): bowls seen through a log or a root reached 0.98-1.0, ringed and rugged
#: landscapes 0.8-0.9
WARP_TRUST = 0.95


@functools.lru_cache(maxsize=None)
def _offsets(steps: range, d: int) -> np.ndarray:
    """Every offset with each of ``d`` coordinates in ``steps``: built once per shape, as
    each decision asked for the same few hundred again (read-only, so no caller alters it)."""
    offsets = np.array(list(itertools.product(steps, repeat=d)))
    offsets.setflags(write=False)
    return offsets


class LeastSquares:
    """A design matrix's singular value decomposition, kept to solve it for several value
    vectors: the fit under every warp shares its points, and one decomposition (about
    0.6 ms at eight parameters) replaced a rank check and seven separate solves (3.3 ms).
    Singular values at most ``eps x max(rows, columns)`` times the largest count as zero,
    numpy's own cutoff for ``matrix_rank`` and ``lstsq``, so the coefficients are
    ``lstsq``'s minimum-norm ones up to rounding."""

    def __init__(self, x: np.ndarray):
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        keep = s > s[0] * max(x.shape) * np.finfo(float).eps
        self.rank = int(np.count_nonzero(keep))
        self._u, self._s, self._vt = u[:, keep], s[keep], vt[keep]

    def solve(self, y: np.ndarray) -> np.ndarray:
        """The coefficients for values ``y`` (one column of them, or several)."""
        uy = self._u.T @ y
        return self._vt.T @ (uy / (self._s if y.ndim == 1 else self._s[:, None]))


@dataclass(frozen=True)
class Warp:
    """A monotone increasing map of values: the identity at ``strength`` 0, else
    expm1(strength x (y - low) / span) / strength, so that its shape does not depend on the
    values' scale. Monotone, so that the lowest prediction is the lowest either way."""

    low: float = 0.0
    span: float = 1.0
    strength: float = 0.0

    def __call__(self, y: np.ndarray | float) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if self.strength == 0.0:
            return y
        return np.expm1(self.strength * (y - self.low) / self.span) / self.strength


IDENTITY = Warp()


def rank_agreement(pred: np.ndarray, y: np.ndarray) -> float:
    """Spearman's correlation of a fit's predictions with the measured values: how well the
    fit orders the points, the same yardstick under every warp (a residual is not: each
    warp has its own units)."""
    a = np.argsort(np.argsort(pred, kind="stable"), kind="stable").astype(float)
    b = np.argsort(np.argsort(y, kind="stable"), kind="stable").astype(float)
    a -= a.mean()
    b -= b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else 0.0


class LocalQuadratic:
    """Measured points and means as arrays, and the quadratic fitted near a point."""

    def __init__(self, shape: tuple[int, ...]):
        self.trust = 0.0     # how well the last fit_warped ordered its points (Spearman)
        self.shape = np.asarray(shape)
        self.d = len(shape)
        self.unknowns = 1 + self.d + self.d * (self.d + 1) // 2
        self._pts = np.zeros((64, self.d), dtype=np.int64)
        self._vals = np.zeros(64)
        self._row: dict[Point, int] = {}
        self._pairs = [(i, j) for i in range(self.d) for j in range(i, self.d)]
        self._first = np.array([i for i, _ in self._pairs], dtype=np.intp)
        self._second = np.array([j for _, j in self._pairs], dtype=np.intp)
        # the coefficients the grid can determine at all: an axis of two values has no
        # square term apart from its linear one (offsets 0 and 1), one of a single value none
        varies = int(np.sum(self.shape >= 2))
        self.determinable = 1 + varies + int(np.sum(self.shape >= 3)) + varies * (varies - 1) // 2

    def set(self, p: Point, mean: float) -> None:
        """The point's current mean (a new point, or a repeat's new mean)."""
        row = self._row.get(p)
        if row is None:
            row = len(self._row)
            if row == len(self._vals):
                self._pts = np.concatenate([self._pts, np.zeros_like(self._pts)])
                self._vals = np.concatenate([self._vals, np.zeros_like(self._vals)])
            self._row[p] = row
            self._pts[row] = p
        self._vals[row] = mean

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every measured point (grid indices, one row each) and its mean, as arrays (views:
        valid until the next ``set``)."""
        n = len(self._row)
        return self._pts[:n], self._vals[:n]

    def features(self, offsets: np.ndarray) -> np.ndarray:
        """1, the offsets and their products in pairs (``_pairs``' order), a row each:
        written into one array, as a decision builds them for thousands of candidates."""
        x = offsets.astype(float)
        out = np.empty((len(x), self.unknowns))
        out[:, 0] = 1.0
        out[:, 1:1 + self.d] = x
        if len(x) < FEATURES_AT_ONCE:
            np.multiply(x[:, self._first], x[:, self._second], out=out[:, 1 + self.d:])
        else:       # a product a column: two gathered copies of thousands of rows cost more
            xt = x.T
            for col, (i, j) in enumerate(self._pairs, 1 + self.d):
                np.multiply(xt[i], xt[j], out=out[:, col])
        return out

    def fit(self, base: Point) -> np.ndarray | None:
        """The quadratic's coefficients in offsets from ``base``, fitted to the measured
        points nearest it (three times as many as it has unknowns); None while too few."""
        found = self._fit_near(base)
        return None if found is None else found[0]

    def fit_warped(self, base: Point) -> tuple[np.ndarray, Warp] | None:
        """As ``fit``, to the values under the warp that the fit orders best when it orders
        them almost perfectly (``WARP_TRUST``), else to the plain values; the coefficients
        predict warped values, so the warp comes with them (see the module)."""
        found = self._design(base, 3 * self.unknowns)
        if found is None:
            return None
        near, x, lsq = found
        y = self._vals[near]
        low, span = float(y.min()), float(y.max() - y.min())
        self.trust = 0.0
        if not span > 0:
            return lsq.solve(y), IDENTITY
        warps = [IDENTITY] + [Warp(low, span, k) for k in WARPS if k != 0.0]
        coefs = lsq.solve(np.column_stack([w(y) for w in warps]))
        plain = coefs[:, 0]
        best = (rank_agreement(x @ plain, y), plain, IDENTITY)
        for i, warp in enumerate(warps[1:], 1):
            coef = coefs[:, i]
            score = rank_agreement(x @ coef, y)
            if score > best[0] + 1e-12:
                best = (score, coef, warp)
        self.trust = best[0]
        if best[0] < WARP_TRUST:
            return plain, IDENTITY
        return best[1], best[2]

    def smoothed(self, p: Point, mean: float, count: int, sigma: float) -> float:
        """``p``'s value judged by its own measurements and by its neighbours together: the
        point's mean and the quadratic fitted to the points nearest it (``p`` left out),
        weighted by how far each is to be trusted. The mean's variance is sigma^2/count;
        the fit's is its residual variance beyond the noise (how far the landscape is from
        a quadratic there: large on a rugged one, which leaves the point's own mean to
        decide) plus the noise it averages (sigma^2 x unknowns / points). The fit is tried
        on 3, 6 and 12 times as many points as it has unknowns and the most trusted is used:
        a wide fit averages more noise where the landscape is smooth, a narrow one follows it
        where it is not. Under noise, a setting chosen by its own two measurements is the
        luckiest of many; the neighbours tell how lucky."""
        if not (sigma > 0 and count > 0):
            return mean
        fit, fit_var = None, np.inf
        for times in JUDGE_WIDTHS:
            need = times * self.unknowns
            if times > JUDGE_WIDTHS[0] and need > JUDGE_POINTS:
                break
            found = self._fit_near(p, leave_out=True, need=need)
            if found is None:
                break
            coef, spread = found
            var = max(spread - sigma ** 2, 0.0) + sigma ** 2 * self.unknowns / need
            if var < fit_var:
                fit, fit_var = coef[0], var
        if fit is None:
            return mean
        own_var = sigma ** 2 / count
        w_fit, w_own = 1.0 / max(fit_var, 1e-300), 1.0 / own_var
        return float((w_own * mean + w_fit * fit) / (w_own + w_fit))

    def _fit_near(self, centre: Point, leave_out: bool = False, need: int | None = None
                  ) -> tuple[np.ndarray, float] | None:
        """Least squares over the ``need`` (default 3 x unknowns) measured points nearest
        ``centre`` (itself left out, if asked): the coefficients, in offsets from ``centre``,
        and the residual variance; None while there are too few points."""
        found = self._design(centre, need or 3 * self.unknowns, leave_out)
        if found is None:
            return None
        near, x, lsq = found
        y = self._vals[near]
        coef = lsq.solve(y)
        resid = y - x @ coef
        return coef, float(resid @ resid) / max(1, len(near) - self.unknowns)

    def _design(self, centre: Point, need: int, leave_out: bool = False
                ) -> tuple[np.ndarray, np.ndarray, LeastSquares] | None:
        """Rows of the measured points nearest ``centre``, their features and the features'
        decomposition (to solve the fit), as few as
        ``need`` but as many more (doubling) as it takes for them to determine every
        coefficient; None while there are too few points, or none that do. A search
        measures along lines and their neighbours, so the nearest points can leave some
        cross terms undetermined: the least-squares fit then passes through every point
        (it looks perfectly trusted) and is arbitrary between them (a 6-parameter bowl's
        fit named points two steps away as far below the base, and ordered the base's
        neighbours by them for hundreds of results)."""
        available = len(self._row) - (leave_out and centre in self._row)
        most = min(WIDEST * need, available)
        while True:
            near = self._nearest(centre, need, leave_out)
            if near is None:
                return None
            x = self.features(self._pts[near] - np.asarray(centre))
            lsq = LeastSquares(x)
            if lsq.rank == self.determinable:
                return near, x, lsq
            if need >= most:
                return None
            need = min(2 * need, most)

    def _nearest(self, centre: Point, need: int, leave_out: bool = False) -> np.ndarray | None:
        """Rows of the ``need`` measured points nearest ``centre`` (itself left out, if
        asked); None while there are too few."""
        n = len(self._row)
        row = self._row.get(centre) if leave_out else None
        if n - (row is not None) < need:
            return None
        offsets = self._pts[:n] - np.asarray(centre)
        dist = np.einsum("ij,ij->i", offsets, offsets)
        if row is not None:
            dist = dist.astype(float)
            dist[row] = np.inf
        return np.argpartition(dist, need - 1)[:need] if n > need else np.arange(n)

    def minimum(self, coef: np.ndarray) -> np.ndarray | None:
        """Where the fitted quadratic is lowest (an offset), when it is a bowl."""
        d = self.d
        grad = coef[1:1 + d]
        hess = np.zeros((d, d))
        for (i, j), c in zip(self._pairs, coef[1 + d:]):
            if i == j:
                hess[i, i] = 2.0 * c
            else:
                hess[i, j] = hess[j, i] = c
        try:
            if np.linalg.eigvalsh(hess).min() <= 0:
                return None
            return -np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return None

    def candidates(self, base: Point, coef: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid points near ``base`` (the box; the model's own minimum and a step towards it)
        and the model's predictions there, lowest first (a point may come twice)."""
        d = self.d
        whole_box = (2 * BOX + 1) ** d <= MAX_BOX_POINTS
        if whole_box:
            offsets = _offsets(range(-BOX, BOX + 1), d)
        else:
            rng = np.random.default_rng([seed, 0x0AD])
            offsets = rng.integers(-BOX, BOX + 1, size=(MAX_BOX_POINTS, d))
        # where the box is sampled, every point a step from the base all the same (a sample
        # of 2,000 of 6 parameters' 15,625 holds one in eight of them), up to six parameters
        # (at eight, their 6,561 made each decision a seventh dearer)
        step_box = None if whole_box or 3 ** d > MAX_STEP_BOX else _offsets(range(-1, 2), d)
        if step_box is not None:
            offsets = np.vstack([offsets, step_box])
        low = self.minimum(coef)
        if low is not None and np.all(np.isfinite(low)):
            # the model's own minimum, clipped to the grid, and a step of at most REACH
            # towards it (a trust region: how far the fit is believed)
            far = np.clip(np.rint(low), -np.asarray(base), self.shape - 1 - np.asarray(base))
            reach = np.abs(low).max()
            near = np.rint(low * min(1.0, REACH / reach)) if reach > 0 else far
            offsets = np.vstack([offsets, far.astype(offsets.dtype), near.astype(offsets.dtype)])
            if step_box is not None:
                # and the points a step from it: an ill-conditioned bowl's lowest grid point
                # need not be the rounded minimum
                offsets = np.vstack([offsets, step_box + far.astype(offsets.dtype)])
        points = offsets + np.asarray(base)
        inside = np.all((points >= 0) & (points < self.shape), axis=1)
        points, offsets = points[inside], offsets[inside]
        pred = self.features(offsets) @ coef
        order = np.argsort(pred, kind="stable")
        return points[order], pred[order]
