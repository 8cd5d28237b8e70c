"""The options every axis search shares, and its first points."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import StudyError
from .directions import Point
from .grid import Grid, same_value, short_values

LINE_OPTIONS = {"start": "mapping", "initial": "str", "alpha": "positive-number",
                "patience": "positive-int", "max_line_points": "positive-int",
                "max_level": "positive-int"}


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
