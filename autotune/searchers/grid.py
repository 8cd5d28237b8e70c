"""Grid search: every combination of the discrete axes, first axis slowest (row-major).

Its state is one number, how far along the row-major order it is; a recorded suggestion
moves it past that suggestion's point.
"""
from __future__ import annotations

import math

from .base import Result, Searcher, SearchSettings, Suggestion
from .registry import register


@register
class GridSearcher(Searcher):
    name = "grid"
    options = {}

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        self.axes = self.space.axes("grid search")
        self.shape = [len(values) for _, values in self.axes]
        self.total = math.prod(self.shape)
        self.position = 0                  # row-major position of the next point

    def ask(self, n: int) -> list[Suggestion]:
        out = []
        while len(out) < n and self.position < self.total:
            index = list(unravel(self.position, self.shape))
            out.append(self.suggestion(self.space.point(self.axes, index), index=index))
        return out

    def adopted(self, s: Suggestion) -> None:
        index = s.info.get("index")
        if isinstance(index, list) and len(index) == len(self.shape):
            flat = 0
            for i, n in zip(index, self.shape):
                flat = flat * n + int(i)
            self.position = max(self.position, flat + 1)

    def tell(self, result: Result) -> None:
        pass

    @property
    def finished(self) -> bool:
        return self.position >= self.total

    @property
    def bounded(self) -> bool:
        return True

    @property
    def end_reason(self) -> str:
        if not self.finished:
            return ""
        return (f"the grid's {self.total} point{'s have' if self.total != 1 else ' has'} "
                "all been proposed")


def unravel(flat: int, shape: list[int]) -> tuple[int, ...]:
    """Row-major indices of position ``flat`` (first axis slowest)."""
    out = []
    for n in reversed(shape):
        flat, i = divmod(flat, n)
        out.append(i)
    return tuple(reversed(out))
