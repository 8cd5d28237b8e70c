"""Analytic test functions on the AT study's grid, for the axis-search bench and tests.

The grid is the study's (10 x 11 x 11 x 11: lr, w2, w3, w4 with the study's values). A
function sees the grid indices mapped onto [-1, 1] per axis and is rescaled so that its
values over the whole grid run from 0 (the grid's true minimum, known by enumeration) to 1.
``instance`` moves the function's optimum so that seeds give different problems.

The objective entry ``autotune.bench.landscapes:objective`` reads which function from the fixed
parameters of the space (``fn``, ``instance``, ``noise``, ``cost_s``, ``fail``), adds Gaussian
noise of sd ``noise`` (drawn from the trial's seed) and returns a cost drawn around ``cost_s``
with a spread of about 20% (uniform in 0.8 .. 1.2 times), for the simulated executor.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

STUDY_AXES: list[tuple[str, list[float]]] = [
    ("lr", [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2]),
    ("w2", [0.0, 1e-2, 5e-2, 1e-1, 5e-1, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0]),
    ("w3", [0.0, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1]),
    ("w4", [0.0, 1e-2, 5e-2, 1e-1, 5e-1, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0]),
]
SHAPE = tuple(len(v) for _, v in STUDY_AXES)
_INDEX = {name: {v: i for i, v in enumerate(values)} for name, values in STUDY_AXES}


def _centre(instance: int, d: int, spread: float = 1.0) -> np.ndarray:
    """Where an instance puts its optimum (in [-1, 1] coordinates).

    Like the AT study's result (three of four parameters 3-4 grid steps away from the
    conventional setting), the optimum lies away from the grid centre: 40% to 90% of the
    way to an edge on every axis, the side drawn at random.
    """
    rng = np.random.default_rng([instance, 7])
    size = rng.uniform(0.4, 0.9, size=d) * spread
    sign = rng.choice([-1.0, 1.0], size=d)
    return size * sign


def bowl(x: np.ndarray, instance: int) -> np.ndarray:
    """Separable convex quadratic: axis-wise search finds its minimum exactly."""
    c = _centre(instance, x.shape[-1])
    w = np.array([1.0, 2.0, 0.7, 1.4, 1.1, 0.9][: x.shape[-1]])
    return np.sum(w * (x - c) ** 2, axis=-1)


def convex(x: np.ndarray, instance: int) -> np.ndarray:
    """A correlated (rotated) convex ellipsoid: diagonal directions matter."""
    d = x.shape[-1]
    c = _centre(instance, d)
    z = x - c
    rng = np.random.default_rng([instance, 11])
    a = rng.normal(size=(d, d))
    q, _ = np.linalg.qr(a)
    scales = np.geomspace(1.0, 6.0, d)
    h = q @ np.diag(scales) @ q.T
    return np.einsum("...i,ij,...j->...", z, h, z)


def rosenbrock(x: np.ndarray, instance: int) -> np.ndarray:
    """Rosenbrock's banana valley, mapped so that its optimum lies inside the grid."""
    c = _centre(instance, x.shape[-1], 0.6)
    u = 1.0 + 1.6 * (x - c)          # the optimum (u = 1) sits at x = c
    total = np.zeros(x.shape[:-1])
    for i in range(x.shape[-1] - 1):
        total = total + 100.0 * (u[..., i + 1] - u[..., i] ** 2) ** 2 + (1.0 - u[..., i]) ** 2
    return np.log1p(total)


def multimodal(x: np.ndarray, instance: int) -> np.ndarray:
    """Rastrigin-like: a bowl with cosine ripples, about two local minima along each axis."""
    c = _centre(instance, x.shape[-1])
    z = x - c
    return np.sum(2.0 * z ** 2 + 0.6 * (1.0 - np.cos(2.5 * math.pi * z)), axis=-1) \
        + 0.3 * z[..., 0] * z[..., 1]


# ---- the search benchmark's landscapes (scripts/bench_search.py) ----------------------------
# Standard test functions from the optimisation literature (Jamil & Yang 2013, "A literature
# survey of benchmark functions for global optimisation problems"; Surjanovic & Bingham's
# virtual library), each scaled so that its ripples show on an 11-point axis. Unlike the
# functions above, each puts its global optimum exactly on a grid point, ``optimum(fn,
# instance)``: so the grid's minimum is known by construction (and checked by enumeration in
# the tests), and "reached the exact minimum" is well defined. ``instance`` picks that point.


def _grid_shape(d: int) -> tuple[int, ...]:
    return SHAPE if d == len(SHAPE) else (11,) * d


def optimum_index(kind: str, instance: int, shape: tuple[int, ...] = SHAPE,
                  salt: int = 0) -> tuple[int, ...]:
    """Where a landscape of ``kind`` puts its optimum for ``instance`` (grid indices).

    interior: like the AT study's result, 40% to 90% of the way from the centre to an edge on
    every axis, the side drawn at random; corner: a corner drawn at random; edge: one axis at
    one of its ends, the others interior; schwefel: where Schwefel's function has its optimum
    (0.842 of the way to an edge, rounded to the grid), the side drawn at random.
    """
    d = len(shape)
    rng = np.random.default_rng([instance, 13, d, salt])
    sign = rng.choice([-1.0, 1.0], size=d)
    if kind == "interior":
        where = rng.uniform(0.4, 0.9, size=d) * sign
    elif kind == "corner":
        where = sign
    elif kind == "edge":
        where = rng.uniform(0.4, 0.9, size=d) * sign
        where[int(rng.integers(d))] = sign[0]
    elif kind == "schwefel":
        where = 0.8421 * sign
    else:
        raise ValueError(f"unknown optimum kind {kind!r}")
    n = np.asarray(shape, dtype=float)
    return tuple(int(i) for i in np.clip(np.rint((where + 1.0) * (n - 1) / 2.0), 0, n - 1))


def _offset(x: np.ndarray, instance: int, fn: str) -> np.ndarray:
    """x minus the optimum's grid coordinates: zero exactly at the optimum's grid point."""
    shape = _grid_shape(x.shape[-1])
    return x - coords(optimum(fn, instance, shape), shape)


def _rotation(instance: int, d: int, salt: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng([instance, salt]).normal(size=(d, d)))
    return q


def styblinski_tang(x: np.ndarray, instance: int) -> np.ndarray:
    """Styblinski-Tang: separable multimodal; per axis a global and a local basin (the local
    one, 14 units shallower per axis, lies towards the grid's other side). Optimum: interior."""
    z = _offset(x, instance, "styblinski-tang")
    c = x - z
    toward = -np.sign(np.where(c == 0, 1.0, c))      # the local basin lies across the grid
    u = -2.903534 + 4.0 * toward * z
    return 0.5 * np.sum(u ** 4 - 16.0 * u ** 2 + 5.0 * u, axis=-1)


def ackley(x: np.ndarray, instance: int) -> np.ndarray:
    """Ackley: a cone pitted with regular dimples, nearly flat far out. Optimum: interior."""
    u = 3.2 * _offset(x, instance, "ackley")
    d = u.shape[-1]
    return (-20.0 * np.exp(-0.2 * np.sqrt(np.sum(u ** 2, axis=-1) / d))
            - np.exp(np.sum(np.cos(2.0 * math.pi * u), axis=-1) / d) + 20.0 + math.e)


def levy(x: np.ndarray, instance: int) -> np.ndarray:
    """Levy: ripples along each axis and between neighbouring axes. Optimum: interior."""
    w = 1.0 + 1.5 * _offset(x, instance, "levy")
    first = np.sin(math.pi * w[..., 0]) ** 2
    mid = np.sum((w[..., :-1] - 1.0) ** 2 * (1.0 + 10.0 * np.sin(math.pi * w[..., :-1] + 1.0) ** 2),
                 axis=-1)
    last = (w[..., -1] - 1.0) ** 2 * (1.0 + np.sin(2.0 * math.pi * w[..., -1]) ** 2)
    return first + mid + last


def banana(x: np.ndarray, instance: int) -> np.ndarray:
    """Rosenbrock's curved valley (log-scaled, as above). Optimum: interior."""
    u = 1.0 + 1.6 * _offset(x, instance, "banana")
    total = np.zeros(x.shape[:-1])
    for i in range(x.shape[-1] - 1):
        total = total + 100.0 * (u[..., i + 1] - u[..., i] ** 2) ** 2 + (1.0 - u[..., i]) ** 2
    return np.log1p(total)


def griewank(x: np.ndarray, instance: int) -> np.ndarray:
    """Griewank: a wide bowl times a product of cosines that couples every axis. Optimum:
    interior."""
    u = 40.0 * _offset(x, instance, "griewank")
    k = np.sqrt(np.arange(1, u.shape[-1] + 1, dtype=float))
    return 1.0 + np.sum(u ** 2, axis=-1) / 4000.0 - np.prod(np.cos(u / k), axis=-1)


def schwefel(x: np.ndarray, instance: int) -> np.ndarray:
    """Schwefel 2.26: deceptive, the second-best basin far from the best, which lies near an
    edge. Optimum: schwefel."""
    z = _offset(x, instance, "schwefel")
    side = np.sign(x - z)                           # mirrored where the optimum is at -0.84
    u = 420.9687 + 500.0 * side * z
    return 418.9829 * u.shape[-1] - np.sum(u * np.sin(np.sqrt(np.abs(u))), axis=-1)


def rastrigin(x: np.ndarray, instance: int) -> np.ndarray:
    """Rastrigin: a bowl under a dense egg-crate of local minima. Optimum: interior."""
    u = 3.3 * _offset(x, instance, "rastrigin")
    return np.sum(u ** 2 - 10.0 * np.cos(2.0 * math.pi * u) + 10.0, axis=-1)


def plateaus(x: np.ndarray, instance: int) -> np.ndarray:
    """A bowl in terraces (a rounded-up distance per axis): flat steps two grid points wide,
    many ties, one point at the bottom. Optimum: interior."""
    z = np.abs(_offset(x, instance, "plateaus"))
    return np.sum(np.ceil(2.5 * z - 1e-9), axis=-1)


def ellipsoid(x: np.ndarray, instance: int) -> np.ndarray:
    """An ill-conditioned, rotated bowl (condition number 1000). Optimum: interior."""
    z = _offset(x, instance, "ellipsoid")
    d = z.shape[-1]
    q = _rotation(instance, d, 17)
    h = q @ np.diag(np.geomspace(1.0, 1000.0, d)) @ q.T
    return np.einsum("...i,ij,...j->...", z, h, z)


def ridge(x: np.ndarray, instance: int) -> np.ndarray:
    """Interacting axes: a narrow ridge along the diagonal (neighbouring axes must move
    together), gently sloping towards the optimum. Optimum: interior."""
    z = _offset(x, instance, "ridge")
    return 20.0 * np.sum((z[..., :-1] - z[..., 1:]) ** 2, axis=-1) + 0.5 * np.sum(z ** 2, axis=-1)


def corner(x: np.ndarray, instance: int) -> np.ndarray:
    """A bowl centred on a corner of the grid, with a shallower dip halfway across as a trap.
    Optimum: corner."""
    z = _offset(x, instance, "corner")
    w = np.array([1.0, 1.2, 0.9, 1.3, 1.1, 0.8][: z.shape[-1]])
    c = x - z
    trap = np.sum((x + 0.5 * c) ** 2, axis=-1)
    return np.sum(w * z ** 2, axis=-1) - 6.0 * np.exp(-trap / 0.12)


def edge(x: np.ndarray, instance: int) -> np.ndarray:
    """A rotated bowl with light ripples, its optimum on one face of the grid (one axis at an
    end of its range). Optimum: edge."""
    z = _offset(x, instance, "edge")
    d = z.shape[-1]
    q = _rotation(instance, d, 19)
    h = q @ np.diag(np.geomspace(1.0, 5.0, d)) @ q.T
    return (np.einsum("...i,ij,...j->...", z, h, z)
            + 0.15 * np.sum(1.0 - np.cos(3.0 * math.pi * z), axis=-1))


FUNCTIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "bowl": bowl, "convex": convex, "rosenbrock": rosenbrock, "multimodal": multimodal,
    "styblinski-tang": styblinski_tang, "ackley": ackley, "levy": levy, "banana": banana,
    "griewank": griewank, "schwefel": schwefel, "rastrigin": rastrigin, "plateaus": plateaus,
    "ellipsoid": ellipsoid, "ridge": ridge, "corner": corner, "edge": edge,
}

#: the benchmark's landscapes and where each puts its optimum (see ``optimum_index``)
OPTIMA: dict[str, str] = {
    "styblinski-tang": "interior", "ackley": "interior", "levy": "interior",
    "banana": "interior", "griewank": "interior", "schwefel": "schwefel",
    "rastrigin": "interior", "plateaus": "interior", "ellipsoid": "interior",
    "ridge": "interior", "corner": "corner", "edge": "edge",
}


def optimum(fn: str, instance: int, shape: tuple[int, ...] = SHAPE) -> tuple[int, ...]:
    """The grid point a benchmark landscape puts its global optimum on (each landscape draws
    its own, so that one instance number does not put them all in the same place)."""
    return optimum_index(OPTIMA[fn], instance, shape, salt=list(OPTIMA).index(fn))


def spread(fn: str, instance: int, shape: tuple[int, ...] = SHAPE) -> float:
    """The interquartile range of the (rescaled) values over the grid: the noise scale."""
    q1, q3 = np.percentile(_table(fn, instance, tuple(shape)), [25, 75])
    return float(q3 - q1)


def coords(index: Any, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """Grid indices mapped onto [-1, 1] per axis."""
    idx = np.asarray(index, dtype=float)
    n = np.asarray(shape, dtype=float)
    return 2.0 * idx / (n - 1) - 1.0


@functools.lru_cache(maxsize=64)
def _table(fn: str, instance: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """The function over the whole grid, rescaled to [0, 1]."""
    grids = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    index = np.stack(grids, axis=-1)
    raw = FUNCTIONS[fn](coords(index, shape), instance)
    lo, hi = float(raw.min()), float(raw.max())
    return (raw - lo) / (hi - lo if hi > lo else 1.0)


def true_value(fn: str, instance: int, index: Any, shape: tuple[int, ...] = SHAPE) -> float:
    return float(_table(fn, instance, tuple(shape))[tuple(int(i) for i in index)])


def grid_minimum(fn: str, instance: int, shape: tuple[int, ...] = SHAPE) -> tuple[float, tuple]:
    table = _table(fn, instance, tuple(shape))
    flat = int(np.argmin(table))
    return float(table.flat[flat]), tuple(int(i) for i in np.unravel_index(flat, table.shape))


def index_of(params: dict) -> tuple[int, ...]:
    return tuple(_INDEX[name][params[name]] for name, _ in STUDY_AXES)


def space(fn: str, instance: int = 0, noise: float = 0.0, cost_s: float = 3600.0,
          fail: float = 0.0) -> dict:
    """The study-file ``space:`` mapping for one bench problem."""
    out: dict[str, Any] = {name: {"values": list(values)} for name, values in STUDY_AXES}
    out.update({"fn": fn, "instance": instance, "noise": noise, "cost_s": cost_s, "fail": fail})
    return out


def _fails(index: tuple[int, ...], instance: int, rate: float) -> bool:
    if rate <= 0:
        return False
    h = 0
    for i in index:
        h = (h * 1_000_003 + i + 1) % 2_147_483_647
    u = np.random.default_rng([h, instance, 99]).random()
    return bool(u < rate)


def objective(params: dict, ctx: Any) -> dict:
    """The bench entry: value = rescaled function + noise; cost drawn around ``cost_s``."""
    fn = params["fn"]
    instance = int(params.get("instance", 0))
    noise = float(params.get("noise", 0.0))
    index = index_of(params)
    if _fails(index, instance, float(params.get("fail", 0.0))):
        raise RuntimeError(f"simulated failure at {index}")
    rng = np.random.default_rng([int(ctx.seed), 3])
    value = true_value(fn, instance, index)
    if noise > 0:
        value += float(rng.normal(0.0, noise))
    cost = float(params.get("cost_s", 3600.0)) * float(rng.uniform(0.8, 1.2))
    return {"value": value, "cost_s": cost}
