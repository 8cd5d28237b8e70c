"""What the three axis searches share: the grid of indices, directions, measurements, lines.

The searches work on integer indices into each free parameter's ordered value list. A
direction is a step vector in {-1, 0, +1}^d, kept in a canonical form (its first non-zero
entry is +1, so v and -v are one direction); its level is its number of non-zero entries.
A line search (``Line``) runs along one direction through one base point, to the grid's edge
on both sides: first the four spread points, then the d-Spline's next-point rule, until the
estimated best position has stayed put for ``patience`` new measurements in a row, or
``max_line_points`` of its points are measured, or all of them are.

Measurements live in one ``Store`` shared by every line, so a point is measured at most once
(unless repeats are asked for) whichever line or round wants it.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Iterable, Sequence

import numpy as np

from ..dspline import DSpline, initial_positions
from ..errors import StudyError
from ..space import SearchSpace
from .base import Result, Searcher, SearchSettings

Point = tuple[int, ...]
Vec = tuple[int, ...]


# ---- directions -----------------------------------------------------------------------------
def directions(d: int, level: int) -> list[Vec]:
    """Every direction of one level, canonical (first non-zero +1), in a fixed order."""
    out = []
    for axes in itertools.combinations(range(d), level):
        for signs in itertools.product((1, -1), repeat=level - 1):
            v = [0] * d
            v[axes[0]] = 1
            for a, s in zip(axes[1:], signs):
                v[a] = s
            out.append(tuple(v))
    return out


def all_directions(d: int, max_level: int | None = None) -> list[Vec]:
    """Level-1 directions first, then level 2, ... up to ``max_level`` (default d)."""
    top = d if max_level is None else min(d, max_level)
    return [v for k in range(1, top + 1) for v in directions(d, k)]


def level_of(v: Vec) -> int:
    return sum(1 for x in v if x)


def dir_text(v: Vec) -> str:
    return "".join("+" if x > 0 else "-" if x < 0 else "0" for x in v)


def direction_between(a: Point, b: Point) -> Vec | None:
    """The canonical direction of the line through a and b, if they lie on one."""
    delta = [y - x for x, y in zip(a, b)]
    steps = {abs(x) for x in delta if x}
    if len(steps) != 1:
        return None
    t = steps.pop()
    v = [x // t for x in delta]
    first = next(x for x in v if x)
    return tuple(x * first for x in v)


# ---- the grid -------------------------------------------------------------------------------
class Grid:
    """The free parameters as index axes."""

    def __init__(self, space: SearchSpace, who: str):
        self.space = space
        self.axes = space.axes(who)
        self.names = [name for name, _ in self.axes]
        self.shape = tuple(len(values) for _, values in self.axes)
        self.d = len(self.shape)
        if self.d == 0:
            raise StudyError(f"space: {who} needs at least one parameter that is not fixed")
        self._lines: dict[tuple[Point, Vec], list[Point]] = {}

    def centre(self) -> Point:
        return tuple(n // 2 for n in self.shape)

    def inside(self, p: Sequence[int]) -> bool:
        return all(0 <= x < n for x, n in zip(p, self.shape))

    def params(self, p: Point) -> dict[str, Any]:
        return self.space.point(self.axes, p)

    def line(self, base: Point, v: Vec) -> list[Point]:
        """The points of the line through ``base`` along ``v``, from one edge to the other
        (remembered: the searches ask for the same lines again and again; do not modify)."""
        key = (base, v)
        if key not in self._lines:
            self._lines[key] = self._walk(base, v)
        return self._lines[key]

    def _walk(self, base: Point, v: Vec) -> list[Point]:
        lo = 0
        while self.inside(tuple(b - (lo + 1) * s for b, s in zip(base, v))):
            lo += 1
        hi = 0
        while self.inside(tuple(b + (hi + 1) * s for b, s in zip(base, v))):
            hi += 1
        return [tuple(b + t * s for b, s in zip(base, v)) for t in range(-lo, hi + 1)]

    def neighbours(self, base: Point, v: Vec) -> list[Point]:
        out = []
        for sign in (1, -1):
            q = tuple(b + sign * s for b, s in zip(base, v))
            if self.inside(q):
                out.append(q)
        return out

    def usable(self, v: Vec) -> bool:
        """A direction along an axis with a single value has no line to search."""
        return all(n > 1 for x, n in zip(v, self.shape) if x)

    def index_of(self, name: str, value: Any) -> int | None:
        values = dict(self.axes)[name]
        for i, candidate in enumerate(values):
            if same_value(candidate, value):
                return i
        return None


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return a == b


def short_values(values: Iterable[Any], limit: int = 12) -> str:
    values = list(values)
    text = ", ".join(repr(v) for v in values[:limit])
    return text + (", ..." if len(values) > limit else "")


# ---- options --------------------------------------------------------------------------------
def parse_start(grid: Grid, raw: Any) -> Point | None:
    """``start:``: a mapping of parameter -> value on the grid; missing ones take the centre."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise StudyError(f"search.start: expected a mapping of parameter to value, got {raw!r}")
    fixed = grid.space.fixed
    point = list(grid.centre())
    for name, value in raw.items():
        if name in fixed:
            if not same_value(fixed[name], value):
                raise StudyError(f"search.start: {name}={value!r} but {name} is fixed at "
                                 f"{fixed[name]!r}")
            continue
        if name not in grid.names:
            raise StudyError(f"search.start: {name} is not a parameter of the space "
                             f"(parameters: {', '.join(grid.names)})")
        i = grid.index_of(name, value)
        if i is None:
            values = dict(grid.axes)[name]
            raise StudyError(f"search.start: {name}={value!r} is not on the grid "
                             f"(values: {short_values(values)})")
        point[grid.names.index(name)] = i
    return tuple(point)


def parse_initial(raw: Any) -> str:
    if raw is None:
        return "centre"
    if raw not in ("centre", "center", "latin"):
        raise StudyError(f"search.initial: expected 'centre' or 'latin', got {raw!r}")
    return "centre" if raw == "center" else raw


def positive(options: dict, key: str, default: float, *, integer: bool = False,
             minimum: float | None = None) -> Any:
    value = options.get(key, default)
    if minimum is not None and value < minimum:
        raise StudyError(f"search.{key}: expected at least {minimum:g}, got {value!r}")
    return int(value) if integer else float(value)


def latin_points(grid: Grid, count: int, seed: int) -> list[Point]:
    """A Latin hypercube of ``count`` grid points: every axis cut in ``count`` strata."""
    rng = np.random.default_rng([seed, 0xA815])
    columns = []
    for n in grid.shape:
        strata = rng.permutation(count)
        u = rng.random(count)
        columns.append([min(n - 1, int((s + x) / count * n)) for s, x in zip(strata, u)])
    return list(dict.fromkeys(tuple(int(c[i]) for c in columns) for i in range(count)))


# ---- measurements ---------------------------------------------------------------------------
class Store:
    """Every result by grid point, and what is in flight."""

    def __init__(self) -> None:
        self.values: dict[Point, list[float]] = {}
        self.failed: dict[Point, int] = {}
        self.pending: dict[Point, int] = {}
        self.trial_point: dict[int, Point] = {}
        self.first_trial: dict[Point, int] = {}  # the trial that first measured each point
        self.first_seen: dict[Point, int] = {}   # order in which points got their first value
        self.screened: set[Point] = set()       # fell out of a short screening run (no value)
        self.results = 0
        self._noise: tuple[float, int] | None = None   # (sigma, degrees of freedom), cached

    def start(self, trial: int, p: Point) -> None:
        self.trial_point[trial] = p
        self.first_trial.setdefault(p, trial)
        self.pending[p] = self.pending.get(p, 0) + 1

    def continued(self, trial: int, p: Point) -> None:
        """A trial continuing ``p``'s screening run: ``p`` stays in flight as one point."""
        self.trial_point[trial] = p

    def _release(self, p: Point) -> None:
        left = self.pending.get(p, 0) - 1
        if left > 0:
            self.pending[p] = left
        else:
            self.pending.pop(p, None)

    def screen_out(self, p: Point) -> None:
        """``p``'s short run did not pass: measured, without a value."""
        self._release(p)
        self.screened.add(p)

    def finish(self, result: Result) -> Point | None:
        p = self.trial_point.get(result.trial)
        if p is None:
            return None
        self._release(p)
        self.results += 1
        self._noise = None
        if result.ok and math.isfinite(result.loss):
            self.values.setdefault(p, []).append(float(result.loss))
            self.first_seen.setdefault(p, self.results)
        else:
            self.failed[p] = self.failed.get(p, 0) + 1
        return p

    def measured(self, p: Point) -> bool:
        """Has a result (a value, a failure, or screened out): never measured again unless
        repeated."""
        return p in self.values or p in self.failed or p in self.screened

    def known(self, p: Point) -> bool:
        return self.measured(p) or p in self.pending

    def count(self, p: Point) -> int:
        return len(self.values.get(p, ()))

    def mean(self, p: Point) -> float:
        vals = self.values.get(p)
        return sum(vals) / len(vals) if vals else math.inf

    def spread(self, p: Point) -> float:
        vals = self.values.get(p) or []
        if len(vals) < 2:
            return 0.0
        m = sum(vals) / len(vals)
        return math.sqrt(sum((x - m) ** 2 for x in vals) / (len(vals) - 1))

    def noise(self) -> tuple[float, int]:
        """Pooled spread over every point measured more than once (0 when none), and its
        degrees of freedom (0: no point measured twice yet)."""
        if self._noise is None:
            ss, dof = 0.0, 0
            for vals in self.values.values():
                if len(vals) > 1:
                    m = sum(vals) / len(vals)
                    ss += sum((x - m) ** 2 for x in vals)
                    dof += len(vals) - 1
            self._noise = (math.sqrt(ss / dof) if dof else 0.0, dof)
        return self._noise

    def sigma(self) -> float:
        return self.noise()[0]

    def best(self) -> Point | None:
        """The point with the lowest mean (earliest measured on ties)."""
        if not self.values:
            return None
        return min(self.values, key=lambda p: (self.mean(p), self.first_seen[p]))

    def ranked(self) -> list[Point]:
        return sorted(self.values, key=lambda p: (self.mean(p), self.first_seen[p]))

    @property
    def in_flight(self) -> int:
        return sum(self.pending.values())


# ---- one line search ------------------------------------------------------------------------
class Line:
    """The search along one direction through one base point."""

    def __init__(self, grid: Grid, base: Point, v: Vec, store: Store, *, alpha: float,
                 patience: int, max_points: int):
        self.base = base
        self.v = v
        self.level = level_of(v)
        self.points = grid.line(base, v)
        self.pos = {p: i for i, p in enumerate(self.points)}
        self.n = len(self.points)
        self.init = [self.points[i] for i in initial_positions(self.n)]
        self.spline = DSpline(self.n, alpha)
        self.patience = patience
        self.max_points = max_points
        self.phase = "init"
        self.done = False
        self.stale = 0
        self.est_best: int | None = None
        self.seen = 0          # results this line has taken in
        self._order: list[int] | None = None
        for p in self.points:
            for value in store.values.get(p, ()):
                self.spline.add(self.pos[p], value)
        self._enter_spline(store)

    @property
    def text(self) -> str:
        return dir_text(self.v)

    def measured_count(self, store: Store) -> int:
        return sum(1 for p in self.points if store.measured(p))

    def observe(self, p: Point, value: float | None, store: Store) -> None:
        """A result at one of this line's points (value None: it failed)."""
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
            self.est_best = self.spline.best_position()
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


# ---- the common searcher plumbing -----------------------------------------------------------
LINE_OPTIONS = {"start": "mapping", "initial": "str", "alpha": "positive-number",
                "patience": "positive-int", "max_line_points": "positive-int",
                "max_level": "positive-int"}


class AxisBase(Searcher):
    """Options, the start point, the store and the trial bookkeeping all axis searches share."""

    who = "axis search"

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        opts = settings.options
        self.grid = Grid(self.space, self.who)
        self.start_point = parse_start(self.grid, opts.get("start"))
        self.initial = parse_initial(opts.get("initial"))
        self.alpha = positive(opts, "alpha", 0.1)
        self.patience = positive(opts, "patience", 3, integer=True, minimum=1)
        self.max_line_points = positive(opts, "max_line_points", 30, integer=True, minimum=2)
        self.max_level = positive(opts, "max_level", self.grid.d, integer=True, minimum=1)
        if self.max_level > self.grid.d:
            raise StudyError(f"search.max_level: expected at most {self.grid.d} (the number of "
                             f"free parameters), got {self.max_level}")
        self.store = Store()
        self.done = False
        self.stop_reason = ""
        self.ended_at_trial: int | None = None
        self.base: Point | None = None
        self.moves = 0

    def make_line(self, base: Point, v: Vec) -> Line:
        return Line(self.grid, base, v, self.store, alpha=self.alpha, patience=self.patience,
                    max_points=self.max_line_points)

    def first_points(self) -> list[Point]:
        """The initial sample: the start point, or a Latin hypercube (plus the start point)."""
        start = self.start_point or self.grid.centre()
        if self.initial == "centre":
            return [start]
        count = max(self.grid.shape)
        pts = latin_points(self.grid, count, self.settings.seed)
        if self.start_point is not None and self.start_point not in pts:
            pts.insert(0, self.start_point)
        return pts

    def trial_of(self, p: Point | None) -> int | None:
        """The trial that first measured ``p`` (the trajectory's ``base`` column)."""
        return None if p is None else self.store.first_trial.get(p)

    def observe(self, lines: Iterable[Line], p: Point, result: Result) -> None:
        """Give a result at ``p`` to every line through it (no value when it failed)."""
        ok = result.ok and math.isfinite(result.loss)
        for line in lines:
            if p in line.pos:
                line.observe(p, float(result.loss) if ok else None, self.store)

    def propose(self, p: Point, **info: Any):
        return self.suggestion(self.grid.params(p), index=list(p), **info)

    def adopted(self, s) -> None:
        p = self.point_of(s)
        if p is not None:
            self.adopted_point(s, p)

    def adopted_point(self, s, p: Point) -> None:
        """Hook: ``s`` measures grid point ``p`` (by default a new measurement in flight)."""
        self.store.start(s.trial, p)

    def point_of(self, s) -> Point | None:
        """The grid point a suggestion measures: its recorded index, checked against its
        parameters (a record the grid cannot place is not this search's)."""
        index = s.info.get("index")
        if isinstance(index, list) and len(index) == self.grid.d and self.grid.inside(index) \
                and all(isinstance(i, int) for i in index):
            p = tuple(index)
            if all(same_value(v, s.params.get(name)) for name, v in self.grid.params(p).items()):
                return p
        found = [self.grid.index_of(name, s.params.get(name)) for name in self.grid.names]
        return None if None in found else tuple(found)

    def stop(self, reason: str, trial: int | None) -> None:
        self.done = True
        self.stop_reason = reason
        self.ended_at_trial = trial

    @property
    def finished(self) -> bool:
        return self.done

    def base_summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"evaluations": self.store.results, "moves": self.moves,
                               "stop_reason": self.stop_reason or "running",
                               "ended_at_trial": self.ended_at_trial}
        if self.base is not None:
            out["base"] = self.grid.params(self.base)
            out["base_index"] = list(self.base)
            out["base_mean"] = None if self.store.count(self.base) == 0 else self.store.mean(self.base)
            out["base_repeats"] = self.store.count(self.base)
            out["base_spread"] = self.store.spread(self.base)
        return out

    def tell(self, result: Result) -> None:  # pragma: no cover - each search defines it
        raise NotImplementedError
