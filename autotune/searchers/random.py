"""Random search: every trial an independent draw from the space."""
from __future__ import annotations

from .base import Result, Searcher, SearchSettings, Suggestion
from .mf_common import parse_fidelity
from .registry import register


@register
class RandomSearcher(Searcher):
    name = "random"
    options = {"fidelity": "mapping"}

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        # with a fidelity (to compare with the multi-fidelity searchers) every draw runs full length
        fidelity = settings.options.get("fidelity")
        self.epochs = None if fidelity is None else parse_fidelity(settings.options, self.name).max

    def ask(self, n: int) -> list[Suggestion]:
        return [self.suggestion(self.space.sample(self.rng_for(self.next_trial)),
                                fidelity=self.epochs) for _ in range(n)]

    def tell(self, result: Result) -> None:
        pass  # draws do not depend on results
