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
    # one pass, no sets: a resume asks this for every result and every base it kept
    step = 0
    sign = 0
    for x, y in zip(a, b):
        if x != y:
            size = y - x if y > x else x - y
            if not step:
                step, sign = size, (1 if y > x else -1)
            elif size != step:
                return None
    if not step:
        return None
    return tuple((y - x) // step * sign for x, y in zip(a, b))
