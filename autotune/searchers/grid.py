"""Grid search: every combination of the discrete axes, first axis slowest (row-major)."""
from __future__ import annotations

import itertools

from .base import Result, Searcher, SearchSettings, Suggestion
from .registry import register


@register
class GridSearcher(Searcher):
    name = "grid"
    options = {}

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        self.axes = self.space.axes("grid search")
        self._points = itertools.product(*(range(len(values)) for _, values in self.axes))
        self._exhausted = False

    def ask(self, n: int) -> list[Suggestion]:
        out = []
        for index in itertools.islice(self._points, n):
            out.append(self.suggestion(self.space.point(self.axes, index), index=list(index)))
        if len(out) < n:
            self._exhausted = True
        return out

    def tell(self, result: Result) -> None:
        pass

    @property
    def finished(self) -> bool:
        return self._exhausted
