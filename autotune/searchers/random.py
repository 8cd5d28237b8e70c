"""Random search: every trial an independent draw from the space."""
from __future__ import annotations

import numpy as np

from .base import Result, Searcher, SearchSettings, Suggestion
from .registry import register


@register
class RandomSearcher(Searcher):
    name = "random"
    options = {"fidelity": "mapping"}

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        self.rng = np.random.default_rng(settings.seed)
        fidelity = settings.options.get("fidelity") or {}
        self.epochs = fidelity.get("max")  # run every draw at full length, if a fidelity is set

    def ask(self, n: int) -> list[Suggestion]:
        return [self.suggestion(self.space.sample(self.rng), fidelity=self.epochs) for _ in range(n)]

    def tell(self, result: Result) -> None:
        pass  # draws do not depend on results
