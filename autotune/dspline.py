"""The d-Spline: a discrete smoothing spline over the points of one search line.

The curve is represented by its values on a fine, equally spaced grid laid over the line:
every grid position of the line, ``extra`` (two) points between neighbouring positions, and
a margin of one position's width at both ends. It is fitted by least squares to what has
been measured plus a smoothness penalty ``alpha`` times the squared second differences of
the fine values, so it needs no derivatives and one small linear solve refits it after
every new measurement. Repeated measurements of a position are averaged (a position counts
as often as it was measured, which is the same least-squares problem as fitting every
measurement on its own).

The next-point rule of the AT line search lives here too (``ranking``): unmeasured
positions whose estimate lies below the best measured value first (lowest estimate first),
then those whose estimate lies above the worst measured (highest first), then the rest by
how sharply the fitted curve bends there (largest absolute second difference first).

``uncertainty`` reads the fit as a Gaussian posterior (the penalty as an improper
smoothness prior, the measurements with a common noise level): the square root of the
diagonal of the inverse normal matrix, scaled by a noise level. It is small at measured
positions and grows with the distance from them; the asynchronous axis search uses it to
pick the "most uncertain but promising" filler points.
"""
from __future__ import annotations

import functools
import math

import numpy as np

RIDGE = 1e-9  # keeps the normal matrix regular when fewer than two positions are measured


class DSpline:
    """A d-Spline over ``n`` equally spaced positions 0 .. n-1 of a line."""

    def __init__(self, n: int, alpha: float = 0.1, extra: int = 2, margin: int = 1):
        if n < 1:
            raise ValueError("a d-Spline needs at least one position")
        if alpha <= 0:
            raise ValueError("alpha must be positive")
        self.n = n
        self.alpha = float(alpha)
        self.sub = extra + 1                      # fine intervals per grid interval
        self.offset = margin * self.sub           # fine index of position 0
        self.size = (n - 1) * self.sub + 1 + 2 * self.offset
        self._penalty = _penalty(self.size, self.alpha)
        self._index = self.offset + self.sub * np.arange(n)
        self.sums = np.zeros(n)
        self.counts = np.zeros(n)
        self.sqsums = np.zeros(n)
        self.positions_measured = 0   # of ``measured``, counted as they come (asked often)
        self._fine: np.ndarray | None = None
        self._normal: np.ndarray | None = None
        # the posterior's standard deviations per unit noise, kept until the next
        # measurement: the axis search asks for them on every ask while a line is filler
        self._sd: np.ndarray | None = None

    # ---- data -----------------------------------------------------------------------------
    def add(self, pos: int, value: float) -> None:
        """One more measurement at ``pos``."""
        if not self.counts[pos]:
            self.positions_measured += 1
        self.sums[pos] += value
        self.sqsums[pos] += value * value
        self.counts[pos] += 1
        self._fine = None
        self._sd = None

    @property
    def measured(self) -> np.ndarray:
        """Boolean mask of positions with at least one measurement."""
        return self.counts > 0

    def means(self) -> np.ndarray:
        """Mean measured value per position (NaN where unmeasured)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)

    # ---- the fit --------------------------------------------------------------------------
    def fit(self) -> np.ndarray:
        """The fine-grid values (refitted only when data changed)."""
        if self._fine is not None:
            return self._fine
        m = self.size
        weight = np.zeros(m)
        rhs = np.zeros(m)
        weight[self._index] = self.counts
        rhs[self._index] = self.sums
        normal = self._penalty + np.diag(weight)
        total = self.counts.sum()
        level = self.sums.sum() / total if total else 0.0
        normal[np.diag_indices(m)] += RIDGE
        rhs = rhs + RIDGE * level
        self._normal = normal
        self._fine = np.linalg.solve(normal, rhs)
        return self._fine

    def estimates(self) -> np.ndarray:
        """The fitted curve at the line's positions."""
        return self.fit()[self._index]

    def second_differences(self) -> np.ndarray:
        """|f[j-1] - 2 f[j] + f[j+1]| on the fine grid, at the line's positions."""
        fine = self.fit()
        j = self._index
        if self.size < 3:
            return np.zeros(self.n)
        left = fine[np.maximum(j - 1, 0)]
        right = fine[np.minimum(j + 1, self.size - 1)]
        return np.abs(left - 2.0 * fine[j] + right)

    def noise(self) -> float:
        """Pooled spread of repeated measurements (0 when nothing was repeated)."""
        dof = float(np.sum(np.maximum(self.counts - 1, 0)))
        if dof <= 0:
            return 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), 0.0)
        ss = float(np.sum(self.sqsums - self.counts * means * means))
        return math.sqrt(max(ss, 0.0) / dof)

    def uncertainty(self, sigma: float | None = None) -> np.ndarray:
        """Posterior standard deviation of the curve at each position.

        ``sigma`` is the noise level of one measurement; by default the spread of the
        measured values around the fit, or a tenth of the measured range when the fit
        passes through every point.
        """
        if self._sd is None:
            self.fit()
            cov = np.linalg.inv(self._normal)
            self._sd = np.sqrt(np.maximum(np.diag(cov)[self._index], 0.0))
        sd = self._sd
        if sigma is None:
            sigma = self.noise()
            if sigma <= 0:
                means = self.means()[self.measured]
                sigma = 0.1 * float(np.ptp(means)) if means.size > 1 else 1.0
                if sigma <= 0:
                    sigma = 1.0
        return sigma * sd

    def best_position(self) -> int | None:
        """The position with the lowest estimate (None before any measurement)."""
        if not self.measured.any():
            return None
        return int(np.argmin(self.estimates()))

    # ---- the next-point rule --------------------------------------------------------------
    def ranking(self, eligible: np.ndarray | None = None) -> list[int]:
        """Eligible positions (default: unmeasured) in the order the line search wants them.

        1. estimate below the best measured mean, lowest estimate first;
        2. estimate above the worst measured mean, highest estimate first;
        3. the rest, largest absolute second difference first.
        Ties go to the lower position, so the order is deterministic.
        """
        if eligible is None:
            eligible = ~self.measured
        candidates = [int(p) for p in np.flatnonzero(eligible)]
        if not candidates:
            return []
        if not self.measured.any():
            return candidates
        est = self.estimates()
        means = self.means()[self.measured]
        best, worst = float(means.min()), float(means.max())
        tol = 1e-12 * max(1.0, abs(best), abs(worst))
        below = sorted((p for p in candidates if est[p] < best - tol), key=lambda p: (est[p], p))
        above = sorted((p for p in candidates if est[p] > worst + tol and p not in below),
                       key=lambda p: (-est[p], p))
        taken = set(below) | set(above)
        bend = self.second_differences()
        rest = sorted((p for p in candidates if p not in taken), key=lambda p: (-bend[p], p))
        return below + above + rest

    def next_point(self) -> int | None:
        """The one position the rule measures next (None when all are measured)."""
        order = self.ranking()
        return order[0] if order else None


@functools.lru_cache(maxsize=64)
def _penalty(m: int, alpha: float) -> np.ndarray:
    """``alpha`` times D'D for the second-difference matrix D of ``m`` fine values: the same
    for every line of one length, and a search builds thousands of lines (read-only)."""
    diff = np.zeros((max(m - 2, 0), m))
    for j in range(m - 2):
        diff[j, j:j + 3] = (1.0, -2.0, 1.0)
    out = alpha * diff.T @ diff
    out.flags.writeable = False
    return out


def initial_positions(n: int) -> list[int]:
    """The four points a line search starts with: both ends and about 1/3 and 2/3 of the way."""
    picks = [0, int(round((n - 1) / 3)), int(round(2 * (n - 1) / 3)), n - 1]
    return list(dict.fromkeys(picks))
