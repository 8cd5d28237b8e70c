"""The free parameters as integer index axes: what the axis searches move on."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

from ...errors import StudyError
from ...space import SearchSpace, grid_index
from .directions import Point, Vec, directions

REMEMBERED = 16384  # lines (and neighbour pairs) kept for reuse, the most recently used
#: an axis is short beside another when one of its steps spans at least this many of the
#: other's (in steps per range): a valley at a slant then moves several steps along the long
#: axis for one step on the short one, beyond what a diagonal through a neighbour reaches
SLIDE_RATIO = 3
SLIDE_LINES = 60   # the most such lines along one long axis (before the grid's edges cut some)


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
        self._lines = Recent(self._walk)
        self._neighbours = Recent(self._step)

    def centre(self) -> Point:
        return tuple(n // 2 for n in self.shape)

    def inside(self, p: Sequence[int]) -> bool:
        return all(0 <= x < n for x, n in zip(p, self.shape))

    def params(self, p: Point) -> dict[str, Any]:
        return self.space.point(self.axes, p)

    def line(self, base: Point, v: Vec) -> list[Point]:
        """The points of the line through ``base`` along ``v``, from one edge to the other
        (remembered: the searches ask for the same lines again and again; do not modify)."""
        return self._lines.get(base, v)

    def _walk(self, base: Point, v: Vec) -> list[Point]:
        # steps that stay inside, backwards (lo) and forwards (hi), axis by axis
        moving = [(b, s, n) for b, s, n in zip(base, v, self.shape) if s]
        lo = min((b // s if s > 0 else (n - 1 - b) // -s) for b, s, n in moving)
        hi = min(((n - 1 - b) // s if s > 0 else b // -s) for b, s, n in moving)
        coords = [range(b - lo * s, b + (hi + 1) * s, s) if s else [b] * (lo + hi + 1)
                  for b, s in zip(base, v)]
        return list(zip(*coords))

    def neighbours(self, base: Point, v: Vec) -> list[Point]:
        """base +- one step along v, inside the grid (remembered, like the lines)."""
        return self._neighbours.get(base, v)

    def _step(self, base: Point, v: Vec) -> list[Point]:
        out = []
        for sign in (1, -1):
            q = tuple(b + sign * s for b, s in zip(base, v))
            if self.inside(q):
                out.append(q)
        return out

    def slides(self, base: Point) -> list[tuple[Point, Vec]]:
        """The lines a step on short axes opens: along each long axis (``SLIDE_RATIO``),
        through ``base``'s neighbours on the axes short beside it (their diagonals too, as
        many levels as stay within ``SLIDE_LINES``). With a batch size of three values and
        a learning rate of forty, the best learning rate moves with the batch size by many
        steps; the diagonals through the base move it by one, so from a base at the valley's
        floor every neighbour looks worse, and only a line through the neighbour finds where
        the valley went."""
        out = []
        for j, n_j in enumerate(self.shape):
            short = [i for i, n_i in enumerate(self.shape)
                     if i != j and n_i > 1 and n_j - 1 >= SLIDE_RATIO * (n_i - 1)]
            if not short:
                continue
            v = tuple(1 if k == j else 0 for k in range(self.d))
            steps: list[Vec] = []
            for level in range(1, len(short) + 1):
                more = directions(len(short), level)
                if steps and 2 * (len(steps) + len(more)) > SLIDE_LINES:   # +-u each
                    break
                steps += more
            for u in steps:
                for sign in (1, -1):
                    q = list(base)
                    for i, x in zip(short, u):
                        q[i] += sign * x
                    if self.inside(q):
                        out.append((tuple(q), v))
        return out

    def usable(self, v: Vec) -> bool:
        """A direction along an axis with a single value has no line to search."""
        return all(n > 1 for x, n in zip(v, self.shape) if x)

    def index_of(self, name: str, value: Any) -> int | None:
        return grid_index(dict(self.axes)[name], value)


class Recent:
    """``make(base, v)`` remembered for the keys used lately: two generations of at most
    REMEMBERED entries, the older dropped when the newer fills (a long search walks ever new
    bases, so remembering everything grows without end, and forgetting everything at once
    makes a search with thousands of lines recompute them all on every ask)."""

    def __init__(self, make: Callable[[Point, Vec], list[Point]]):
        self.make = make
        self.new: dict[tuple[Point, Vec], list[Point]] = {}
        self.old: dict[tuple[Point, Vec], list[Point]] = {}

    def get(self, base: Point, v: Vec) -> list[Point]:
        key = (base, v)
        found = self.new.get(key)
        if found is None:
            found = self.old.get(key)
            if found is None:
                found = self.make(base, v)
            if len(self.new) >= REMEMBERED:
                self.old, self.new = self.new, {}
            self.new[key] = found
        return found


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
