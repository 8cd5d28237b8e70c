"""Finite spaces drawn round by round, shared by every searcher that draws new settings.

A space whose free parameters all take finitely many values (grids, ranges with ``steps:``,
int ranges, fixed values) can be used up. Drawing with replacement there wastes budget on a
small grid: the same setting run again while others were never tried. ``Rounds`` keeps the
draws of new settings (random's trials, a multi-fidelity searcher's new configurations) going
round by round: every setting once before any twice, and a budget beyond the space measures
them again, each time with a new trial seed (``repeat`` in the suggestion's info says how
many times it ran before). Its state is counted from the adopted suggestions alone, so a
searcher restored from the history draws what the live one would have drawn.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ..space import Range, SearchSpace, grid_index
from .base import SearchSettings
from .grid import unravel

REDRAWS = 32  # draws from the declared distribution before walking to the next unused setting


class FiniteSpace:
    """The settings of a space whose free parameters all take finitely many values,
    numbered row-major over the free parameters' value lists (an int range's values are
    not listed: ``range`` objects)."""

    LIMIT = 2 ** 62  # more settings than this: as good as unbounded (and beyond rng.integers)

    def __init__(self, space: SearchSpace, axes: list[tuple[str, Sequence]]):
        self.space = space
        self.axes = axes
        self.shape = [len(values) for _, values in axes]
        self.size = math.prod(self.shape)

    @classmethod
    def of(cls, space: SearchSpace) -> FiniteSpace | None:
        """The space's settings; None where a continuous range makes them unbounded."""
        axes: list[tuple[str, Sequence]] = []
        size = 1
        for p in space.free:
            if isinstance(p, Range) and p.steps is None:
                if not p.integer:
                    return None
                values: Sequence = range(int(p.low), int(p.high) + 1)
            else:
                values = p.grid()
            size *= len(values)
            if size > cls.LIMIT:
                return None
            axes.append((p.name, values))
        return cls(space, axes)

    def index(self, params: dict[str, Any]) -> tuple[int, ...] | None:
        """The grid index of a setting; None for one off the space."""
        out = []
        for name, values in self.axes:
            value = params.get(name)
            if isinstance(values, range):
                i = value - values.start if type(value) is int and value in values else None
            else:       # as recorded, or as another machine's numpy computed a steps: grid
                i = grid_index(values, value)
            if i is None:
                return None
            out.append(i)
        return tuple(out)

    def unravel(self, flat: int) -> tuple[int, ...]:
        return unravel(flat, self.shape)

    def params(self, index: tuple[int, ...]) -> dict[str, Any]:
        return self.space.point(self.axes, index)


class Rounds:
    """How often each setting of a finite space was proposed, and the round under way: a
    setting is fresh while it was proposed no more than ``round`` times."""

    def __init__(self, finite: FiniteSpace):
        self.finite = finite
        self.runs: dict[tuple[int, ...], int] = {}  # times each setting (grid index) was proposed
        self.round = 0  # every setting has been proposed at least this many times
        self.ahead = 0  # settings proposed more than ``round`` times

    @classmethod
    def of(cls, space: SearchSpace) -> Rounds | None:
        """Rounds over ``space``; None for a space with a continuous range (no repeats to fear)."""
        finite = FiniteSpace.of(space)
        return None if finite is None else cls(finite)

    @property
    def size(self) -> int:
        return self.finite.size

    def times(self, params: dict[str, Any]) -> int:
        """How many times ``params`` was proposed before (0 for a point off the space)."""
        index = self.finite.index(params)
        return 0 if index is None else self.runs.get(index, 0)

    def fresh(self, params: dict[str, Any]) -> bool:
        """Not yet proposed in this round."""
        return self.times(params) <= self.round

    def draw(self, rng: np.random.Generator,
             sample: Callable[[np.random.Generator], dict[str, Any]] | None = None
             ) -> dict[str, Any]:
        """A setting not yet proposed this round: ``sample`` (default: the space's declared
        distribution) redrawn while it lands on a used one, then, when nearly every setting is
        taken, the first one left from a uniform starting point."""
        sample = sample or self.finite.space.sample
        params = sample(rng)
        for _ in range(REDRAWS):
            if self.fresh(params):
                return params
            params = sample(rng)
        flat = int(rng.integers(self.size))
        while self.runs.get(index := self.finite.unravel(flat), 0) > self.round:
            flat = (flat + 1) % self.size
        return self.finite.params(index)

    def count(self, params: dict[str, Any]) -> None:
        """``params`` was proposed (live or in the record): a round ends once every setting
        has been proposed once more."""
        index = self.finite.index(params)
        if index is None:  # a recorded point off the space uses up no setting
            return
        runs = self.runs[index] = self.runs.get(index, 0) + 1
        if runs == self.round + 1:
            self.ahead += 1
        while self.ahead >= self.size:  # every setting proposed again: the next round
            self.round += 1
            self.ahead = sum(1 for n in self.runs.values() if n > self.round)

    @staticmethod
    def until(settings: SearchSettings, *limits: str) -> str:
        """The limit that ends the proposals, in words: max_trials, the searcher's own
        ``limits`` (already worded), max_compute_s, or nothing (the run is stopped)."""
        if settings.max_trials is not None:
            return f"max_trials ({settings.max_trials})"
        if limits:
            return limits[0]
        if settings.max_compute_s is not None:
            return f"max_compute_s ({settings.max_compute_s:g} s) is spent"
        return "the run is stopped"

    def notice(self, who: str, proposes: str, unit: str, until: str) -> str:
        """What a run over this space says at its start when its budget may go past it:
        ``who`` ``proposes`` each setting once, then each again as ``unit``, until ``until``."""
        if self.size == 1:
            return (f"the space holds a single setting: {who} runs it again and again, each "
                    f"run {unit} with its own seed, until {until}")
        return (f"the space holds {self.size} settings: {who} {proposes} each once, then each "
                f"again ({unit} with its own seed, marked 'repeat'), until {until}")
