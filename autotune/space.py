"""The search space: ordered grids, ranges and fixed values.

Searchers that walk a grid (grid, the axis searches) work on integer indices into each
parameter's ordered value list; a range joins them only when it is discretised with
``steps:``. Everything here is plain data so that it can be fingerprinted and stored in the
history: a study directory refuses a space other than the one it was started with.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from .config import check, describe, hint, is_finite, is_number, reject_unknown, require_mapping
from .errors import StudyError

Scalar = Any  # int | float | str | bool

INT_AXIS_MOST = 100  # a linear int range without steps: is a grid of its integers up to this
GRID_DIGITS = 12  # significant digits of a computed (steps:) grid value
MATCH_REL = 1e-9  # a recorded number this close to a grid value is that value
ZERO_REL = 1e-15  # or this close, against the grid's largest magnitude (a few of its ulps)


def steps_grid(low: float, high: float, steps: int, log: bool) -> list[Decimal]:
    """``steps`` points from ``low`` to ``high``, evenly spaced (in log space with ``log``),
    to 34 digits in decimal arithmetic: correctly rounded, so the same on every machine."""
    with localcontext() as ctx:
        ctx.prec = 34
        # the bounds as written (0.1, not the binary 0.1000000000000000055...): from the
        # binary value the 34-digit span left the middle of -0.1..0.1 at -2.1e-36, not 0
        lo, hi, n = Decimal(repr(float(low))), Decimal(repr(float(high))), steps - 1
        if log:
            span = (hi / lo).ln()
            return [lo * (span * i / n).exp() for i in range(steps)]
        return [lo + (hi - lo) * i / n for i in range(steps)]


def to_digits(value: Decimal, digits: int) -> float:
    """``value`` to ``digits`` significant digits, as the float nearest that decimal."""
    return float(format(value, f".{digits - 1}e"))


def grid_index(values: Sequence, value: Any) -> int | None:
    """Where a recorded value lies among a grid's ``values``: the same value (1 and 1.0 alike,
    True not 1), else the nearest number within a relative ``MATCH_REL`` (a value a history
    got from another machine's numpy, or from before grid values were rounded), or within
    ``ZERO_REL`` of the grid's largest magnitude (a point at or near 0, which older versions
    computed from the bounds' binary values: the middle of -0.1..0.1 as -2.1e-36, of
    -1.3..11.7 as -1.1e-16); None if none is."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    for i, v in enumerate(values):
        if v == value and (type(v) is type(value)
                           or number and isinstance(v, (int, float)) and not isinstance(v, bool)):
            return i
    if not number or not is_finite(value):
        return None
    numbers = [(i, v) for i, v in enumerate(values)
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return None
    floor = ZERO_REL * max(abs(v) for _, v in numbers)
    best, gap = None, math.inf
    for i, v in numbers:
        d = abs(v - value)
        if d <= max(MATCH_REL * max(abs(v), abs(value)), floor) and d < gap:
            best, gap = i, d
    return best


@dataclass(frozen=True)
class Choice:
    """An ordered list of values: the AT study's kind of axis."""

    name: str
    values: tuple

    def grid(self) -> tuple | None:
        return self.values

    def sample(self, rng: np.random.Generator) -> Scalar:
        return self.values[int(rng.integers(len(self.values)))]

    def spec(self) -> dict:
        return {"values": list(self.values)}


@dataclass(frozen=True)
class Range:
    """A numeric interval, linear or log, float or int; ``steps`` turns it into a grid."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False
    steps: int | None = None

    def grid(self) -> tuple | None:
        return self._grid

    @cached_property
    def _grid(self) -> tuple | None:
        """The ``steps:`` grid, the same on every machine: computed in decimal arithmetic
        (numpy's geomspace differs in the last bit between CPUs, by their SIMD code paths,
        and between versions), each value rounded to ``GRID_DIGITS`` significant digits
        (1e-05, not 9.999999999999999e-06), the bounds as given; a grid so fine that this
        would move a value by a thousandth of its spacing keeps more digits. An int grid
        is numpy's, rounded, as it always was (only a value at exactly k + 0.5 could round
        either way, and its histories record the integers)."""
        if self.steps is None:
            return None
        if self.integer:
            raw = (np.geomspace if self.log else np.linspace)(self.low, self.high, self.steps)
            return tuple(dict.fromkeys(int(round(v)) for v in raw))
        exact = steps_grid(self.low, self.high, self.steps, self.log)
        spacing = min(abs(b - a) for a, b in zip(exact, exact[1:]))
        for digits in (GRID_DIGITS, 15, 17):
            values = [to_digits(v, digits) for v in exact]
            values[0], values[-1] = float(self.low), float(self.high)
            if max(abs(Decimal(a) - b) for a, b in zip(values, exact)) <= spacing / 1000:
                break
        return tuple(values)

    def sample(self, rng: np.random.Generator) -> Scalar:
        grid = self.grid()
        if grid is not None:
            return grid[int(rng.integers(len(grid)))]
        if self.integer:
            if self.log:  # log-uniform over [low, high + 1), floored: each integer gets its share
                value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
                return int(min(math.floor(value), self.high))
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def spec(self) -> dict:
        out: dict = {"low": self.low, "high": self.high, "log": self.log, "int": self.integer}
        if self.steps is not None:
            out["steps"] = self.steps
        return out


@dataclass(frozen=True)
class Fixed:
    """A value every trial gets; part of the space so that the history records it."""

    name: str
    value: Scalar

    def grid(self) -> tuple:
        return (self.value,)

    def sample(self, rng: np.random.Generator) -> Scalar:
        return self.value

    def spec(self) -> dict:
        return {"fixed": self.value}


Param = Choice | Range | Fixed


class SearchSpace:
    """Named parameters in the order the study file gives them."""

    def __init__(self, params: Sequence[Param]):
        self.params: dict[str, Param] = {p.name: p for p in params}

    @property
    def names(self) -> list[str]:
        return list(self.params)

    @property
    def free(self) -> list[Param]:
        """The parameters a search varies (everything but fixed values)."""
        return [p for p in self.params.values() if not isinstance(p, Fixed)]

    @property
    def fixed(self) -> dict[str, Scalar]:
        return {p.name: p.value for p in self.params.values() if isinstance(p, Fixed)}

    def sample(self, rng: np.random.Generator) -> dict[str, Scalar]:
        return {name: p.sample(rng) for name, p in self.params.items()}

    def axes(self, who: str = "this search") -> list[tuple[str, tuple]]:
        """The free parameters as ordered value lists. A float range needs ``steps:``; a
        linear int range without it is every integer in it, up to ``INT_AXIS_MOST`` of them
        (``width: {low: 1, high: 8, int: true}`` has an obvious grid, and random already
        treats it as finite); a log one needs ``steps:`` to say how coarse its grid is."""
        out = []
        for p in self.free:
            grid = p.grid()
            if grid is None and isinstance(p, Range) and p.integer and not p.log:
                count = int(p.high) - int(p.low) + 1
                if count > INT_AXIS_MOST:
                    raise StudyError(
                        f"space.{p.name}: {who} needs a grid, and this int range holds "
                        f"{count:,} integers (every one is a grid only up to {INT_AXIS_MOST}); "
                        f"give it 'steps:' or list its values")
                grid = tuple(range(int(p.low), int(p.high) + 1))
            if grid is None:
                raise StudyError(f"space.{p.name}: {who} needs a grid; give the range 'steps:' "
                                 "or list its values")
            out.append((p.name, grid))
        return out

    def point(self, axes: list[tuple[str, tuple]], index: Sequence[int]) -> dict[str, Scalar]:
        """Parameters (fixed ones included) at a grid index."""
        params = dict(self.fixed)
        for (name, values), i in zip(axes, index):
            params[name] = values[i]
        return {name: params[name] for name in self.params}

    def spec(self) -> dict:
        return {name: p.spec() for name, p in self.params.items()}

    def fingerprint(self) -> str:
        text = json.dumps(self.spec(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


PARAM_KEYS = ["values", "low", "high", "log", "int", "steps", "value"]   # every shape's keys


def parse_space(raw: Any, where: str = "space") -> SearchSpace:
    raw = require_mapping(raw, where)
    if not raw:
        raise StudyError(f"{where}: empty (expected at least one parameter)")
    if "" in raw:  # no column, no {placeholder} and no params key a trial could read it by
        raise StudyError(f"{where}: a parameter with an empty name (give it a name)")
    return SearchSpace([parse_param(name, value, f"{where}.{name}") for name, value in raw.items()])


def parse_param(name: str, raw: Any, where: str) -> Param:
    if isinstance(raw, dict):
        if "values" in raw:
            return parse_choice(name, raw, where)
        if "low" in raw or "high" in raw:
            return parse_range(name, raw, where)
        if "value" in raw:
            reject_unknown(raw, ["value"], where)
            return parse_fixed(name, raw["value"], where)
        shapes = "expected {values: [...]}, {low: .., high: ..} or a fixed value"
        if raw:     # a misspelt key is what a user needs to hear of (vales:, lo:)
            key = next(iter(raw))
            raise StudyError(f"{where}.{key}: unknown key{hint(key, PARAM_KEYS)} ({shapes})")
        raise StudyError(f"{where}: {shapes}")
    if isinstance(raw, list):
        raise StudyError(f"{where}: a bare list is ambiguous; write {{values: {describe(raw)}}}")
    return parse_fixed(name, raw, where)


def parse_fixed(name: str, value: Any, where: str) -> Fixed:
    if not (is_number(value) or isinstance(value, (str, bool))):
        raise StudyError(f"{where}: expected a number, string or boolean, got {describe(value)}")
    if is_number(value) and not is_finite(value):
        raise StudyError(f"{where}: expected a finite number, got {describe(value)}")
    return Fixed(name, value)


def parse_choice(name: str, raw: dict, where: str) -> Choice:
    reject_unknown(raw, ["values"], where)
    values = raw["values"]
    check(values, "list", f"{where}.values")
    if not values:
        raise StudyError(f"{where}.values: empty list (expected at least one value)")
    for v in values:
        parse_fixed(name, v, f"{where}.values")
    numbers = [v for v in values if is_number(v)]
    if numbers and len(numbers) != len(values):
        other = next(v for v in values if not is_number(v))
        raise StudyError(f"{where}.values: {describe(other)} in a grid of numbers (expected every "
                         f"value a number, e.g. {describe(numbers[0])}; write 1.0e-4 or 1e-4 "
                         "unquoted)")
    seen: dict[Any, Any] = {}
    for v in values:
        if same_value(v) in seen:
            same = seen[same_value(v)]
            alike = "" if repr(v) == repr(same) else f" ({same!r} and {v!r} are one number)"
            raise StudyError(f"{where}.values: repeated values in {describe(values)}{alike}")
        seen[same_value(v)] = v
    return Choice(name, tuple(values))


def same_value(value: Any) -> Any:
    """What makes two grid values one: a number by its value (``1`` and ``1.0``, ``0.0`` and
    ``-0.0`` are one point, as ``grid_index`` maps a recorded value to the first of them; as
    two, a grid search ran the same setting twice), anything else by its JSON text."""
    return ("number", float(value)) if is_number(value) else json.dumps(value)


#: the largest bound of an int range: numpy draws and spaces it as 64-bit integers, and its
#: settings are counted with ``len(range(low, high + 1))``, which must fit one too (a bound
#: of 10**30 raised a numpy casting error or an OverflowError, a traceback)
INT_BOUND = 2**62 - 1


def parse_range(name: str, raw: dict, where: str) -> Range:
    reject_unknown(raw, ["low", "high", "log", "int", "steps"], where)
    for bound in ("low", "high"):
        if bound not in raw:
            raise StudyError(f"{where}.{bound}: missing (expected a number)")
        check(raw[bound], "number", f"{where}.{bound}")
    low, high = raw["low"], raw["high"]
    log = raw.get("log", False)
    integer = raw.get("int", False)
    check(log, "bool", f"{where}.log")
    check(integer, "bool", f"{where}.int")
    if low >= high:
        raise StudyError(f"{where}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise StudyError(f"{where}: a log range must lie above 0, got low {low}")
    if not log and not integer and not math.isfinite(float(high) - float(low)):
        # a draw (numpy's uniform, Optuna's, TPE's) took high - low and raised OverflowError
        raise StudyError(f"{where}: the range {describe(low)}..{describe(high)} is wider than "
                         f"the largest float (high - low overflows); narrow it, make it a log "
                         f"range, or rescale the parameter")
    if integer and (low != int(low) or high != int(high)):
        raise StudyError(f"{where}: an int range needs whole-number bounds, got {low}..{high}")
    if integer and max(abs(low), abs(high)) > INT_BOUND:
        raise StudyError(f"{where}: an int range's bounds must lie within +-{INT_BOUND:.2e} "
                         f"(2**62, so that its settings can be counted and drawn as 64-bit "
                         f"integers), got {describe(low)}..{describe(high)}")
    steps = raw.get("steps")
    if steps is not None:
        check(steps, "positive-int", f"{where}.steps")
        if steps < 2:
            raise StudyError(f"{where}.steps: expected at least 2, got {steps}")
    if integer:
        low, high = int(low), int(high)
    return Range(name, low, high, log, integer, steps)
