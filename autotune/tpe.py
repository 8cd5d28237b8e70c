"""Tree-structured-Parzen-style densities over a SearchSpace (as used by BOHB).

Every free parameter is encoded on [0, 1] (continuous and ordered kinds) or as a category
index (``values:`` lists):
  - float range: linear or log scaled to [0, 1];
  - int range: the cell of each integer (linear: [k-0.5, k+0.5]; log: [log k, log(k+1)),
    matching SearchSpace's log-int sampler), decoded back by rounding/flooring;
  - range with ``steps:``: an ordered grid, index i at (i + 0.5) / m;
  - ``values:`` list: a category (Aitchison-Aitken kernel);
  - fixed values are not modelled.

A ``KDE`` is a product-kernel density of a set of encoded points: a Gaussian truncated to
[0, 1] per ordered dimension, bandwidth by Scott's rule (floored at ``min_bandwidth``), and
an Aitchison-Aitken kernel per categorical one. ``propose`` fits l(x) on the best results and
g(x) on the rest, draws candidates from l with widened bandwidths and returns the candidate
that maximises l(x)/g(x). Pure numpy; every draw comes from the generator it is given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from .space import Choice, Fixed, Range, SearchSpace, grid_index

_SQRT2 = math.sqrt(2.0)


def _phi_cdf(z: np.ndarray) -> np.ndarray:
    flat = [0.5 * (1.0 + math.erf(float(v) / _SQRT2)) for v in np.ravel(z)]
    return np.asarray(flat, dtype=float).reshape(np.shape(z))


@dataclass(frozen=True)
class _Dim:
    name: str
    kind: str                          # "cont" | "int" | "ilog" | "grid" | "cat"
    low: float = 0.0                   # encoded-scale bounds for cont/int/ilog
    high: float = 1.0
    log: bool = False
    values: tuple = ()                 # grid or categories
    lo_int: int = 0
    hi_int: int = 0


class Encoder:
    """Maps parameter dicts to (ordered vector in [0,1]^dc, category indices) and back."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.ordered: list[_Dim] = []
        self.categorical: list[_Dim] = []
        for p in space.free:
            if isinstance(p, Choice):
                self.categorical.append(_Dim(p.name, "cat", values=p.values))
            elif isinstance(p, Range):
                grid = p.grid()
                if grid is not None:
                    self.ordered.append(_Dim(p.name, "grid", values=grid))
                elif p.integer and p.log:
                    self.ordered.append(_Dim(p.name, "ilog", math.log(p.low), math.log(p.high + 1),
                                             lo_int=int(p.low), hi_int=int(p.high)))
                elif p.integer:
                    self.ordered.append(_Dim(p.name, "int", p.low - 0.5, p.high + 0.5,
                                             lo_int=int(p.low), hi_int=int(p.high)))
                elif p.log:
                    self.ordered.append(_Dim(p.name, "cont", math.log(p.low), math.log(p.high), True))
                else:
                    self.ordered.append(_Dim(p.name, "cont", p.low, p.high))
            elif not isinstance(p, Fixed):  # pragma: no cover - a new kind of parameter
                raise TypeError(f"cannot model parameter {p!r}")
        self.cards = [len(d.values) for d in self.categorical]

    @property
    def dims(self) -> int:
        return len(self.ordered) + len(self.categorical)

    def encode(self, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        u = np.empty(len(self.ordered))
        for j, d in enumerate(self.ordered):
            x = params[d.name]
            if d.kind == "grid":
                u[j] = (_index(d.values, x) + 0.5) / len(d.values)
                continue
            if d.kind == "ilog":
                v = math.log(float(x) + 0.5)
            elif d.kind == "cont" and d.log:
                v = math.log(float(x))
            else:
                v = float(x)
            u[j] = min(1.0, max(0.0, (v - d.low) / (d.high - d.low)))
        c = np.array([_index(d.values, params[d.name]) for d in self.categorical], dtype=int)
        return u, c

    def decode(self, u: np.ndarray, c: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.space.fixed)
        for j, d in enumerate(self.ordered):
            x = min(1.0, max(0.0, float(u[j])))
            if d.kind == "grid":
                out[d.name] = d.values[min(len(d.values) - 1, int(x * len(d.values)))]
                continue
            v = d.low + x * (d.high - d.low)
            if d.kind == "ilog":
                out[d.name] = int(min(d.hi_int, max(d.lo_int, math.floor(math.exp(v)))))
            elif d.kind == "int":
                out[d.name] = int(min(d.hi_int, max(d.lo_int, round(v))))
            elif d.log:
                out[d.name] = float(math.exp(v))
            else:
                out[d.name] = float(v)
        for j, d in enumerate(self.categorical):
            out[d.name] = d.values[int(c[j])]
        return {name: out[name] for name in self.space.names}


def _index(values: Sequence, x: Any) -> int:
    i = grid_index(values, x)  # a recorded grid value, also one another numpy computed
    if i is None:
        raise ValueError(f"{x!r} is not one of {list(values)!r}")
    return i


class KDE:
    """Product-kernel density of encoded points (rows of ``u`` and ``c``)."""

    def __init__(self, u: np.ndarray, c: np.ndarray, cards: list[int], min_bandwidth: float):
        self.u = np.atleast_2d(u)
        self.c = np.atleast_2d(c).astype(int) if c.size else np.zeros((len(self.u), 0), dtype=int)
        self.cards = cards
        n = len(self.u)
        dims = self.u.shape[1] + self.c.shape[1]
        shrink = n ** (-1.0 / (dims + 4))
        if self.u.shape[1]:
            sd = self.u.std(axis=0) if n >= 2 else np.full(self.u.shape[1], 0.3)
            sd = np.where(sd > 0, sd, 0.3 if n < 2 else min_bandwidth / shrink)
            self.bw = np.maximum(min_bandwidth, sd * shrink)
            # mass of each kernel inside [0, 1]: the truncated kernels integrate to one
            lo = _phi_cdf((0.0 - self.u) / self.bw)
            hi = _phi_cdf((1.0 - self.u) / self.bw)
            self.log_mass = np.log(np.maximum(hi - lo, 1e-300))
        else:
            self.bw = np.zeros(0)
            self.log_mass = np.zeros((n, 0))
        self.bw_cat = np.array([min((m - 1) / m, max(min_bandwidth, 0.5 * (m - 1) / m * shrink))
                                for m in cards]) if cards else np.zeros(0)

    def log_pdf(self, u: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Log density at each row of ``u``/``c`` (candidates)."""
        u = np.atleast_2d(u)
        m = len(u)
        total = np.zeros((m, len(self.u)))
        if self.u.shape[1]:
            z = (u[:, None, :] - self.u[None, :, :]) / self.bw
            total += (-0.5 * z ** 2 - np.log(self.bw) - 0.5 * math.log(2 * math.pi)
                      - self.log_mass[None, :, :]).sum(axis=2)
        if self.c.shape[1]:
            c = np.atleast_2d(c)
            same = c[:, None, :] == self.c[None, :, :]
            cards = np.asarray(self.cards, dtype=float)
            k = np.where(same, 1.0 - self.bw_cat, self.bw_cat / np.maximum(cards - 1, 1))
            total += np.log(np.maximum(k, 1e-300)).sum(axis=2)
        top = total.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(total - top).mean(axis=1, keepdims=True)))[:, 0]

    def sample(self, rng: np.random.Generator, count: int, widen: float
               ) -> tuple[np.ndarray, np.ndarray]:
        """Draws around randomly chosen points, bandwidths multiplied by ``widen``."""
        n = len(self.u)
        picks = rng.integers(n, size=count)
        u = np.empty((count, self.u.shape[1]))
        c = np.empty((count, self.c.shape[1]), dtype=int)
        for row, j in enumerate(picks):
            for d in range(self.u.shape[1]):
                mean, sd = self.u[j, d], self.bw[d] * widen
                x = rng.normal(mean, sd)
                tries = 0
                while not 0.0 <= x <= 1.0 and tries < 20:
                    x = rng.normal(mean, sd)
                    tries += 1
                u[row, d] = min(1.0, max(0.0, x))
            for d, m in enumerate(self.cards):
                keep = self.c[j, d]
                change = min((m - 1) / m, self.bw_cat[d] * widen)
                if m > 1 and rng.random() < change:
                    other = int(rng.integers(m - 1))
                    keep = other if other < keep else other + 1
                c[row, d] = keep
        return u, c


class TPEModel:
    """l(x) on the best ``gamma`` share of the points (at least one), g(x) on the rest;
    ``losses`` may hold inf (failed trials: always bad). ``encoded`` skips re-encoding."""

    def __init__(self, encoder: Encoder, points: Sequence[dict[str, Any]], losses: Sequence[float],
                 gamma: float = 0.15, min_bandwidth: float = 1e-2,
                 encoded: Sequence[tuple[np.ndarray, np.ndarray]] | None = None):
        self.encoder = encoder
        order = sorted(range(len(losses)), key=lambda i: (losses[i], i))
        finite = sum(1 for i in order if math.isfinite(losses[i]))
        n_good = max(1, min(finite, int(math.ceil(gamma * finite))))
        good, bad = order[:n_good], order[n_good:]
        enc = list(encoded) if encoded is not None else [encoder.encode(p) for p in points]
        cards, width = encoder.cards, len(encoder.ordered)

        def stack(idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
            u = np.array([enc[i][0] for i in idx], dtype=float).reshape(len(idx), width)
            c = np.array([enc[i][1] for i in idx], dtype=int).reshape(len(idx), len(cards))
            return u, c

        self.good = KDE(*stack(good), cards, min_bandwidth)
        self.bad = KDE(*stack(bad), cards, min_bandwidth) if bad else None

    def propose(self, rng: np.random.Generator, candidates: int = 64, widen: float = 3.0
                ) -> dict[str, Any]:
        """Draw candidates from l (bandwidths times ``widen``); return the best l/g."""
        u, c, score = self._scored(rng, candidates, widen)
        best = int(np.argmax(score))
        return self.encoder.decode(u[best], c[best])

    def ranked(self, rng: np.random.Generator, candidates: int = 64, widen: float = 3.0
               ) -> Iterator[dict[str, Any]]:
        """The same candidates as ``propose`` draws, best l/g first (its pick leads), so a
        caller that cannot use the best (a setting already run) takes the next; each is
        decoded only when the caller comes to it (the first usually serves)."""
        u, c, score = self._scored(rng, candidates, widen)
        order = sorted(range(len(score)), key=lambda i: (-score[i], i))  # argmax's tie rule
        return (self.encoder.decode(u[i], c[i]) for i in order)

    def _scored(self, rng: np.random.Generator, candidates: int, widen: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u, c = self.good.sample(rng, candidates, widen)
        score = self.good.log_pdf(u, c)
        if self.bad is not None:
            score = score - self.bad.log_pdf(u, c)
        return u, c, score


def propose(encoder: Encoder, points: list[dict[str, Any]], losses: Sequence[float],
            rng: np.random.Generator, gamma: float = 0.15, candidates: int = 64,
            widen: float = 3.0, min_bandwidth: float = 1e-2) -> dict[str, Any]:
    """One-shot: fit a TPEModel on ``points`` and propose one configuration."""
    return TPEModel(encoder, points, losses, gamma, min_bandwidth).propose(rng, candidates, widen)
