"""Random search: every trial an independent draw from the space.

In a finite space (every free parameter a grid, a range with ``steps:``, an int range, or
fixed) a setting is drawn once: a draw that lands on a setting already proposed is drawn
again, and once every setting has been proposed the search is finished, as a grid search
is. Which settings were proposed is read from the suggestions alone (``adopted``), so a
restored searcher knows them as the live one did and draws what it would have drawn.
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np

from ..space import Fixed, Range, SearchSpace, grid_index
from .base import Result, Searcher, SearchSettings, Suggestion
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
        self.seen: set[tuple[int, ...]] = set()   # grid indices of the settings proposed

    def ask(self, n: int) -> list[Suggestion]:
        out = []
        while len(out) < n and not self.finished:
            out.append(self.suggestion(self.draw(self.rng_for(self.next_trial)),
                                       fidelity=self.epochs))
        return out

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """A draw from the space; in a finite one, a setting not proposed before."""
        params = self.space.sample(rng)
        if self.finite is None:
            return params
        for _ in range(REDRAWS):
            if self.finite.index(params) not in self.seen:
                return params
            params = self.space.sample(rng)
        # nearly every setting taken: the first unused one from a uniform starting point
        flat = int(rng.integers(self.finite.size))
        while (index := self.finite.unravel(flat)) in self.seen:
            flat = (flat + 1) % self.finite.size
        return self.finite.params(index)

    def adopted(self, s: Suggestion) -> None:
        if self.finite is not None:
            index = self.finite.index(s.params)
            if index is not None:  # a recorded point off the space cannot use up a setting
                self.seen.add(index)

    def tell(self, result: Result) -> None:
        pass  # draws do not depend on results

    @property
    def finished(self) -> bool:
        return self.finite is not None and len(self.seen) >= self.finite.size

    @property
    def end_reason(self) -> str:
        if not self.finished:
            return ""
        size = self.finite.size
        if size == 1:
            return ("the space holds a single setting (random search draws each setting of a "
                    "finite space once)")
        return (f"random search draws each setting of a finite space once, and this space's "
                f"{size} settings have all been proposed")


class FiniteSpace:
    """The settings of a space whose free parameters all take finitely many values,
    numbered row-major over the free parameters' value lists (an int range's values are
    not listed: ``range`` objects)."""

    LIMIT = 2 ** 62  # more settings than this: as good as unbounded (and beyond rng.integers)

    def __init__(self, space: SearchSpace, axes: list[tuple[str, Sequence]]):
        self.space = space
        self.axes = axes
        self.lookup = [None if isinstance(values, range) else
                       {key(v): i for i, v in enumerate(values)} for _, values in axes]
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
        for (name, values), lookup in zip(self.axes, self.lookup):
            value = params.get(name)
            if lookup is not None:  # as recorded, else as another machine's numpy had it
                i = lookup.get(key(value))
                if i is None:
                    i = grid_index(values, value)
            elif type(value) is int and values.start <= value < values.stop:
                i = value - values.start
            else:
                i = None
            if i is None:
                return None
            out.append(i)
        return tuple(out)

    def unravel(self, flat: int) -> tuple[int, ...]:
        out = []
        for n in reversed(self.shape):
            flat, i = divmod(flat, n)
            out.append(i)
        return tuple(reversed(out))

    def params(self, index: tuple[int, ...]) -> dict[str, Any]:
        values = {name: vals[i] for (name, vals), i in zip(self.axes, index)}
        return {name: (p.value if isinstance(p, Fixed) else values[name])
                for name, p in self.space.params.items()}


def key(value: Any) -> str:
    """A value as the history records it: 1, 1.0 and True stay apart."""
    return json.dumps(value)
