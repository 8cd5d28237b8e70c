"""Random search: every trial an independent draw from the space.

In a finite space (every free parameter a grid, a range with ``steps:``, an int range, or
fixed) the draws go round by round: a draw that lands on a setting already proposed in this
round is drawn again, so every setting is proposed once before any is proposed twice; a
budget larger than the space then measures the settings again, each a new trial with its own
seed (marked ``repeat`` in its info), and the run says so at its start. Which settings were
proposed is read from the suggestions alone (``adopted``), so a restored searcher knows them
as the live one did and draws what it would have drawn.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..space import Range, SearchSpace, grid_index
from .base import Result, Searcher, SearchSettings, Suggestion
from .grid import unravel
from .mf_common import parse_fidelity
from .registry import register

REDRAWS = 32  # draws from the declared distribution before walking to the next unused setting


@register
class RandomSearcher(Searcher):
    name = "random"
    options = {"fidelity": "mapping"}

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        # with a fidelity (to compare with the multi-fidelity searchers) every draw runs full length
        fidelity = settings.options.get("fidelity")
        self.epochs = None if fidelity is None else parse_fidelity(settings.options, self.name).max
        self.finite = FiniteSpace.of(self.space)  # None: a continuous range, no repeats to fear
        self.runs: dict[tuple[int, ...], int] = {}  # times each setting (grid index) was proposed
        self.round = 0  # every setting has been proposed at least this many times
        self.ahead = 0  # settings proposed more than ``round`` times

    def ask(self, n: int) -> list[Suggestion]:
        out = []
        for _ in range(n):
            params = self.draw(self.rng_for(self.next_trial))
            done = 0 if self.finite is None else self.runs.get(self.finite.index(params), 0)
            info = {"repeat": done} if done else {}
            out.append(self.suggestion(params, fidelity=self.epochs, **info))
        return out

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """A draw from the space; in a finite one, a setting not yet proposed this round."""
        params = self.space.sample(rng)
        if self.finite is None:
            return params
        for _ in range(REDRAWS):
            if self.runs.get(self.finite.index(params), 0) <= self.round:
                return params
            params = self.space.sample(rng)
        # nearly every setting taken: the first one left from a uniform starting point
        flat = int(rng.integers(self.finite.size))
        while self.runs.get(index := self.finite.unravel(flat), 0) > self.round:
            flat = (flat + 1) % self.finite.size
        return self.finite.params(index)

    def adopted(self, s: Suggestion) -> None:
        if self.finite is None:
            return
        index = self.finite.index(s.params)
        if index is None:  # a recorded point off the space uses up no setting
            return
        runs = self.runs[index] = self.runs.get(index, 0) + 1
        if runs == self.round + 1:
            self.ahead += 1
        while self.ahead >= self.finite.size:  # every setting proposed again: the next round
            self.round += 1
            self.ahead = sum(1 for n in self.runs.values() if n > self.round)

    def tell(self, result: Result) -> None:
        pass  # draws do not depend on results

    @property
    def notice(self) -> str:
        """Said at the start of a run whose budget exceeds a finite space."""
        limit = self.settings.max_trials
        if self.finite is None or (limit is not None and limit <= self.finite.size):
            return ""
        size = self.finite.size
        until = f"max_trials ({limit})" if limit is not None else "the budget"
        if size == 1:
            return (f"the space holds a single setting: random search runs it again and again, "
                    f"each run a trial with its own seed, until {until}")
        return (f"the space holds {size} settings: random search proposes each once, then each "
                f"again (a trial with its own seed, marked 'repeat'), until {until}")


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
