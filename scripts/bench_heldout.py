"""Bench: the search bench (bench_search.py) on landscapes the axis search was not tuned on.

bench_search.py's twelve landscapes are the ones every change to ``axis`` was measured on;
a method tuned against them can fit them and nothing else. The first nine come from other
standard test functions and from shapes a real tuning problem has, and were first run only
after the search was written (docs/benchmarks.md, "Held-out landscapes", says what they
showed and what changed because of them):

  zakharov     a bowl plus the square and fourth power of a weighted sum: every axis
               interacts, the bottom is wide and flat (thousands of points within 2%)
  dixon-price  Dixon-Price, log-scaled: a curved valley between neighbouring axes
  salomon      Salomon: concentric ripples around the optimum (a ring is a basin)
  sum-powers   sum of |x_i|^(i+2): a bottom that flattens more along every later axis
  low-dim      two axes that matter (coupled), two that barely do
  cliff        a rotated bowl whose learning rate diverges past the optimum (a step up by
               three times the bowl's range two steps beyond it)
  wells        Shekel-like: a narrow deepest well and four wider, shallower ones elsewhere
  powell       Powell's singular function, log-scaled: a quartic, flat bottom, axes in pairs
  cone         a rotated, anisotropic L1 cone (no quadratic fits its tip), optimum on a face

and four more of several basins, added when a Latin first wave (``explore``) was, to see
whether what it did for ``wells`` holds where the search never looked:

  shekel       Shekel's shape: ten wells of heavy-tailed 1/(1 + r^2/w), the deepest narrow
  hartmann     Hartmann-like: four anisotropic Gaussian bumps, the deepest not the widest
  valleys      Michalewicz-like: per axis a narrow valley and a shallower one, flat between
  langermann   Langermann-like: rippled wells (a cosine of the squared distance inside each)

and fourteen more, written after the final race was added and first run only then, from
further standard functions and shapes of real tuning:

  trid                 Trid: a convex bowl coupling every axis with the next
  qing                 Qing-like: per axis a pair of minima, the global one on the optimum's side
  alpine               Alpine: non-smooth ripples of |u sin u| on a cone
  bent-cigar           a rotated bent cigar, log-scaled: one direction 1,000 times flatter
                       than the others, so the bottom is a narrow oblique valley
  ripples              Weierstrass-like: three octaves of ripples on a bowl
  steps                a floored bowl: plateaus of equal value, a faint slope inside each
  happycat             HappyCat-like: a ring-shaped valley, rotated, the optimum on it
  rastrigin-rotated    Rastrigin rotated: its grid of local minima along no axis
  easom                Easom-like: a narrow hole in an almost flat plain
  perm                 Perm(0, d, beta), log-scaled: coupled powers of every axis
  griewank-rosenbrock  the expanded Griewank-of-Rosenbrock (F8F2), log-scaled
  drop-wave            Drop-Wave: decaying concentric waves, a single-point optimum
  slope                a tilted L1 cone whose optimum is a corner, one axis almost flat
  lr-bowl              a learning rate's shape: flat below its optimum, steep above and a
                       step up (divergence) beyond; the other axes follow it

and ten more, written after the additive model's patience was added and first run only
then; most are rotated, so that no axis and no diagonal of the grid follows their valleys:

  levy-rotated         Levy rotated: its ripples along no axis
  bohachevsky          Bohachevsky-like: a bowl with cosine ripples, axes coupled in pairs
  schaffer             Schaffer-like: concentric rings in every pair of neighbouring axes
  styblinski-rotated   Styblinski-Tang rotated: 16 basins, the deepest in no axis's direction
  discus               a rotated discus, log-scaled: one direction 1,000 times steeper
  sharp-ridge          a rotated sharp ridge: a parabola along one direction, a cone across
  plateau-cliff        stepped rings of equal value inside a radius, a tilted plain outside
  rosen-rotated        Rosenbrock rotated, log-scaled: its curved valley along no axis
  xinsheyang           Xin-She Yang-like: |u| weighted by exp(-sum sin(u^2)), a cusp at the
                       optimum among ripples that grow towards the edges
  lr-wall              a learning rate with a wall: a bowl coupling it to the next axis, a
                       step up by three beyond it, a faint interaction of the last two axes

Everything else (grid, starts, workers, noise, figures, targets, the cache) is
bench_search.py's; its options apply (``--landscapes`` takes these names). The cache lives
under bench_results/held-out/, keyed also by this file.

    python scripts/bench_heldout.py --noise 0,0.02,0.1 --horizons 363 --seeds 6 \\
        --methods axis,optuna-tpe,optuna-cmaes            # ~28 min on 2 cores
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_search  # noqa: E402  (first: it sets the BLAS threads before numpy loads)
import numpy as np  # noqa: E402

from autotune.bench import landscapes  # noqa: E402


def _offset(x: np.ndarray, instance: int, fn: str) -> np.ndarray:
    return landscapes._offset(x, instance, fn)


def zakharov(x: np.ndarray, instance: int) -> np.ndarray:
    u = 2.0 * _offset(x, instance, "zakharov")
    s = np.sum(0.5 * np.arange(1, u.shape[-1] + 1) * u, axis=-1)
    return np.sum(u ** 2, axis=-1) + s ** 2 + s ** 4


def dixon_price(x: np.ndarray, instance: int) -> np.ndarray:
    u = 1.5 * _offset(x, instance, "dixon-price")
    total = u[..., 0] ** 2
    for i in range(1, u.shape[-1]):
        total = total + (i + 1) * (2.0 * u[..., i] ** 2 - u[..., i - 1]) ** 2
    return np.log1p(10.0 * total)


def salomon(x: np.ndarray, instance: int) -> np.ndarray:
    r = np.sqrt(np.sum((3.0 * _offset(x, instance, "salomon")) ** 2, axis=-1))
    return 1.0 - np.cos(2.0 * math.pi * r) + 0.1 * r


def sum_powers(x: np.ndarray, instance: int) -> np.ndarray:
    z = np.abs(1.5 * _offset(x, instance, "sum-powers"))
    return sum(z[..., i] ** (i + 2) for i in range(z.shape[-1]))


def low_dim(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "low-dim")
    return (50.0 * z[..., 0] ** 2 + 30.0 * (z[..., 1] - 0.5 * z[..., 0]) ** 2
            + 0.3 * np.sum(z[..., 2:] ** 2, axis=-1))


def cliff(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "cliff")
    q = landscapes._rotation(instance, z.shape[-1], 23)
    h = q @ np.diag(np.geomspace(1.0, 8.0, z.shape[-1])) @ q.T
    return np.einsum("...i,ij,...j->...", z, h, z) + np.where(z[..., 0] > 0.45, 3.0, 0.0)


def wells(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "wells")
    rng = np.random.default_rng([instance, 31])
    value = -np.exp(-np.sum(z ** 2, axis=-1) / 0.15)
    for _ in range(4):
        centre = rng.uniform(-1.0, 1.0, size=z.shape[-1])
        depth, width = rng.uniform(0.5, 0.85), rng.uniform(0.2, 0.5)
        value = value - depth * np.exp(-np.sum((x - centre) ** 2, axis=-1) / width)
    return value + 0.1 * np.sum(z ** 2, axis=-1)


def powell(x: np.ndarray, instance: int) -> np.ndarray:
    u = 1.5 * _offset(x, instance, "powell")
    a, b, c, d = (u[..., i] for i in range(4))
    return np.log1p(10.0 * ((a + 10.0 * b) ** 2 + 5.0 * (c - d) ** 2 + (b - 2.0 * c) ** 4
                            + 10.0 * (a - d) ** 4))


def cone(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "cone")
    q = landscapes._rotation(instance, z.shape[-1], 37)
    return np.sum(np.abs(z @ q.T) * np.geomspace(1.0, 8.0, z.shape[-1]), axis=-1)


def shekel(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "shekel")
    rng = np.random.default_rng([instance, 41])
    value = -1.0 / (np.sum(z ** 2, axis=-1) / 0.05 + 1.0)
    for _ in range(9):
        centre = rng.uniform(-1.0, 1.0, size=z.shape[-1])
        depth, width = rng.uniform(0.3, 0.8), rng.uniform(0.05, 0.3)
        value = value - depth / (np.sum((x - centre) ** 2, axis=-1) / width + 1.0)
    return value


def hartmann(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "hartmann")
    rng = np.random.default_rng([instance, 43])
    value = -1.2 * np.exp(-np.sum(rng.uniform(1.0, 12.0, size=z.shape[-1]) * z ** 2, axis=-1))
    for height in (1.0, 0.9, 0.7):
        centre = rng.uniform(-1.0, 1.0, size=z.shape[-1])
        scale = rng.uniform(1.0, 12.0, size=z.shape[-1])
        value = value - height * np.exp(-np.sum(scale * (x - centre) ** 2, axis=-1))
    return value


def valleys(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "valleys")
    rng = np.random.default_rng([instance, 53])
    total = np.zeros(z.shape[:-1])
    for i in range(z.shape[-1]):
        other = rng.uniform(0.4, 1.2) * rng.choice([-1.0, 1.0])
        total = total - np.exp(-(z[..., i] / 0.15) ** 2) \
            - 0.7 * np.exp(-((z[..., i] - other) / 0.15) ** 2)
    return total


def langermann(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "langermann")
    rng = np.random.default_rng([instance, 47])
    r2 = np.sum(z ** 2, axis=-1)
    value = -1.5 * np.exp(-r2 / 0.1) * np.cos(math.pi * r2 / 0.4)
    for _ in range(4):
        s = np.sum((x - rng.uniform(-1.0, 1.0, size=z.shape[-1])) ** 2, axis=-1)
        value = value - rng.uniform(0.5, 1.0) * np.exp(-s / 0.3) * np.cos(math.pi * s / 0.6)
    return value + 0.05 * r2


def trid(x: np.ndarray, instance: int) -> np.ndarray:
    u = 3.0 * _offset(x, instance, "trid")
    return np.sum(u ** 2, axis=-1) - 0.9 * np.sum(u[..., 1:] * u[..., :-1], axis=-1)


def qing(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "qing")
    c = x - z
    side = np.sign(np.where(c == 0, 1.0, c))
    u = 1.0 + 1.4 * side * z      # 1 at the optimum; the other minimum, -1, across the grid
    return np.sum((u ** 2 - 1.0) ** 2 - 0.15 * u, axis=-1)


def alpine(x: np.ndarray, instance: int) -> np.ndarray:
    u = 6.0 * _offset(x, instance, "alpine")
    return np.sum(np.abs(u * np.sin(u) + 0.1 * u) + 0.3 * np.abs(u), axis=-1)


def bent_cigar(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "bent-cigar") @ landscapes._rotation(instance, x.shape[-1], 61).T
    return np.log1p(100.0 * (z[..., 0] ** 2 + 1e3 * np.sum(z[..., 1:] ** 2, axis=-1)))


def ripples(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "ripples")
    waves = sum(0.5 ** k * (1.0 - np.cos(2.0 * math.pi * 3 ** k * z)) for k in range(3))
    return np.sum(waves + 2.0 * z ** 2, axis=-1)


def steps(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "steps")
    return np.sum(np.floor(np.abs(4.0 * z) + 0.5) ** 2 + 0.05 * z ** 2, axis=-1)


def happycat(x: np.ndarray, instance: int) -> np.ndarray:
    z = 1.5 * _offset(x, instance, "happycat") @ landscapes._rotation(instance, x.shape[-1], 67).T
    d = x.shape[-1]
    ring = np.abs(np.sum((z + 0.5) ** 2, axis=-1) - 0.25 * d) ** 0.25
    return ring + (0.5 * np.sum(z ** 2, axis=-1) + 0.3 * np.sum(z, axis=-1) ** 2) / d


def rastrigin_rotated(x: np.ndarray, instance: int) -> np.ndarray:
    z = 2.5 * _offset(x, instance, "rastrigin-rotated") \
        @ landscapes._rotation(instance, x.shape[-1], 71).T
    return np.sum(z ** 2 - 3.0 * np.cos(2.0 * math.pi * z) + 3.0, axis=-1)


def easom(x: np.ndarray, instance: int) -> np.ndarray:
    r2 = np.sum(_offset(x, instance, "easom") ** 2, axis=-1)
    return -np.exp(-r2 / 0.08) + 0.05 * np.sqrt(r2)


def perm(x: np.ndarray, instance: int) -> np.ndarray:
    u = 1.2 * _offset(x, instance, "perm")
    j = np.arange(1, u.shape[-1] + 1)
    total = sum(np.sum((j + 2.0) * ((u + 1.0 / j) ** k - (1.0 / j) ** k), axis=-1) ** 2
                for k in range(1, u.shape[-1] + 1))
    return np.log1p(total)


def griewank_rosenbrock(x: np.ndarray, instance: int) -> np.ndarray:
    u = 1.0 + 1.2 * _offset(x, instance, "griewank-rosenbrock")
    total = np.zeros(u.shape[:-1])
    for k in range(u.shape[-1]):
        a, b = u[..., k], u[..., (k + 1) % u.shape[-1]]
        r = 100.0 * (a ** 2 - b) ** 2 + (a - 1.0) ** 2
        total = total + r ** 2 / 4000.0 - np.cos(r) + 1.0
    return np.log1p(total)


def drop_wave(x: np.ndarray, instance: int) -> np.ndarray:
    r = np.sqrt(np.sum((3.0 * _offset(x, instance, "drop-wave")) ** 2, axis=-1))
    return -(1.0 + np.cos(3.0 * r)) / (0.5 * r ** 2 + 2.0)


def slope(x: np.ndarray, instance: int) -> np.ndarray:
    z = np.abs(_offset(x, instance, "slope"))
    return np.sum(np.array([1.0, 0.2, 0.05, 3.0])[:z.shape[-1]] * z, axis=-1) \
        + 0.3 * z[..., 0] * z[..., 1]


def lr_bowl(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "lr-bowl")
    lr = z[..., 0]
    core = np.where(lr > 0, 5.0 * lr ** 2 + 2.0 * lr, 0.6 * np.abs(lr))
    return core + 0.4 * np.sum((z[..., 1:] - 0.3 * lr[..., None]) ** 2, axis=-1) \
        + np.where(lr > 0.5, 2.0, 0.0)



def levy_rotated(x: np.ndarray, instance: int) -> np.ndarray:
    u = 3.0 * _offset(x, instance, "levy-rotated") \
        @ landscapes._rotation(instance, x.shape[-1], 79).T
    w = 1.0 + u / 4.0
    total = np.sin(math.pi * w[..., 0]) ** 2 \
        + (w[..., -1] - 1.0) ** 2 * (1.0 + np.sin(2.0 * math.pi * w[..., -1]) ** 2)
    for i in range(w.shape[-1] - 1):
        ripple = 1.0 + 10.0 * np.sin(math.pi * w[..., i] + 1.0) ** 2
        total = total + (w[..., i] - 1.0) ** 2 * ripple
    return total


def bohachevsky(x: np.ndarray, instance: int) -> np.ndarray:
    z = 3.0 * _offset(x, instance, "bohachevsky")
    total = np.zeros(z.shape[:-1])
    for k in range(z.shape[-1] - 1):
        a, b = z[..., k], z[..., k + 1]
        total = total + a ** 2 + 2.0 * b ** 2 - 0.3 * np.cos(3.0 * math.pi * a) \
            - 0.4 * np.cos(4.0 * math.pi * b) + 0.7
    return total


def schaffer(x: np.ndarray, instance: int) -> np.ndarray:
    z = 4.0 * _offset(x, instance, "schaffer")
    total = np.zeros(z.shape[:-1])
    for k in range(z.shape[-1] - 1):
        s = z[..., k] ** 2 + z[..., k + 1] ** 2
        total = total + 0.5 + (np.sin(np.sqrt(s)) ** 2 - 0.5) / (1.0 + 0.001 * s) ** 2 + 0.02 * s
    return total


def styblinski_rotated(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "styblinski-rotated") \
        @ landscapes._rotation(instance, x.shape[-1], 83).T
    u = -2.903534 + 4.0 * z
    return 0.5 * np.sum(u ** 4 - 16.0 * u ** 2 + 5.0 * u, axis=-1)


def discus(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "discus") @ landscapes._rotation(instance, x.shape[-1], 89).T
    return np.log1p(1e3 * z[..., 0] ** 2 + np.sum(z[..., 1:] ** 2, axis=-1))


def sharp_ridge(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "sharp-ridge") @ landscapes._rotation(instance, x.shape[-1], 97).T
    return z[..., 0] ** 2 + 10.0 * np.sqrt(np.sum(z[..., 1:] ** 2, axis=-1))


def plateau_cliff(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "plateau-cliff")
    r = np.sqrt(np.sum(z ** 2, axis=-1))
    return np.where(r < 0.5, np.round(4.0 * r) / 4.0 + 0.1 * r, 1.0 + 0.05 * np.sum(z, axis=-1))


def rosen_rotated(x: np.ndarray, instance: int) -> np.ndarray:
    u = 1.0 + 1.5 * _offset(x, instance, "rosen-rotated") \
        @ landscapes._rotation(instance, x.shape[-1], 101).T
    total = np.zeros(u.shape[:-1])
    for k in range(u.shape[-1] - 1):
        total = total + 100.0 * (u[..., k + 1] - u[..., k] ** 2) ** 2 + (1.0 - u[..., k]) ** 2
    return np.log1p(total)


def xinsheyang(x: np.ndarray, instance: int) -> np.ndarray:
    z = 2.0 * _offset(x, instance, "xinsheyang")
    return np.sum(np.abs(z), axis=-1) * np.exp(-np.sum(np.sin(z ** 2), axis=-1))


def lr_wall(x: np.ndarray, instance: int) -> np.ndarray:
    z = _offset(x, instance, "lr-wall")
    lr, wd = z[..., 0], z[..., 1]
    bowl = 0.5 * lr ** 2 + 0.3 * (wd - 0.4 * lr) ** 2 + 0.2 * np.sum(z[..., 2:] ** 2, axis=-1)
    return bowl + np.where(lr > 0.25, 3.0 + lr, 0.0) + 0.1 * np.abs(z[..., 2] * z[..., 3])

#: name: (function, where its optimum lies (landscapes.optimum_index), the default start)
HELD_OUT: dict[str, tuple[Callable[[np.ndarray, int], np.ndarray], str, str]] = {
    "zakharov": (zakharov, "interior", "centre"),
    "dixon-price": (dixon_price, "interior", "corner"),
    "salomon": (salomon, "interior", "conventional"),
    "sum-powers": (sum_powers, "interior", "centre"),
    "low-dim": (low_dim, "interior", "conventional"),
    "cliff": (cliff, "interior", "conventional"),
    "wells": (wells, "interior", "centre"),
    "powell": (powell, "interior", "corner"),
    "cone": (cone, "edge", "conventional"),
    "shekel": (shekel, "interior", "centre"),
    "hartmann": (hartmann, "interior", "conventional"),
    "valleys": (valleys, "interior", "corner"),
    "langermann": (langermann, "interior", "centre"),
    "trid": (trid, "interior", "corner"),
    "qing": (qing, "interior", "centre"),
    "alpine": (alpine, "interior", "conventional"),
    "bent-cigar": (bent_cigar, "interior", "centre"),
    "ripples": (ripples, "interior", "conventional"),
    "steps": (steps, "interior", "centre"),
    "happycat": (happycat, "interior", "conventional"),
    "rastrigin-rotated": (rastrigin_rotated, "interior", "centre"),
    "easom": (easom, "interior", "conventional"),
    "perm": (perm, "interior", "centre"),
    "griewank-rosenbrock": (griewank_rosenbrock, "interior", "corner"),
    "drop-wave": (drop_wave, "interior", "centre"),
    "slope": (slope, "corner", "centre"),
    "lr-bowl": (lr_bowl, "edge", "conventional"),
    "levy-rotated": (levy_rotated, "interior", "centre"),
    "bohachevsky": (bohachevsky, "interior", "corner"),
    "schaffer": (schaffer, "interior", "conventional"),
    "styblinski-rotated": (styblinski_rotated, "interior", "centre"),
    "discus": (discus, "interior", "conventional"),
    "sharp-ridge": (sharp_ridge, "interior", "centre"),
    "plateau-cliff": (plateau_cliff, "interior", "corner"),
    "rosen-rotated": (rosen_rotated, "interior", "centre"),
    "xinsheyang": (xinsheyang, "interior", "conventional"),
    "lr-wall": (lr_wall, "edge", "conventional"),
}


def register() -> None:
    """Make the held-out landscapes known to landscapes.py and the bench (this process and
    the worker processes it forks). The twelve keep their optima: each landscape's optimum
    is salted by its position, and these come after them."""
    for name, (fn, kind, start) in HELD_OUT.items():
        landscapes.FUNCTIONS[name] = fn
        landscapes.OPTIMA[name] = kind
        bench_search.DEFAULT_START[name] = start


def cache_dir() -> str:
    with open(os.path.abspath(__file__), "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()[:12]
    return os.path.join(bench_search.REPO, "bench_results", "held-out", digest)


def main(argv: list[str] | None = None) -> int:
    register()
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--landscapes" or a.startswith("--landscapes=") for a in args):
        args += ["--landscapes", ",".join(HELD_OUT)]
    if not any(a == "--cache" or a.startswith("--cache=") for a in args):
        args += ["--cache", cache_dir()]
    return bench_search.main(args)


if __name__ == "__main__":
    sys.exit(main())
