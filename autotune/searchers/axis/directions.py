"""Directions on the index grid: step vectors in {-1, 0, +1}^d.

A direction is kept in a canonical form (its first non-zero entry is +1, so v and -v are one
direction); its level is its number of non-zero entries (1: one axis, 2: a diagonal of two).
"""
from __future__ import annotations

import itertools

Point = tuple[int, ...]
Vec = tuple[int, ...]


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
