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

from .base import Result, Searcher, SearchSettings, Suggestion
from .finite import Rounds
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
        self.rounds = Rounds.of(self.space)  # None: a continuous range, no repeats to fear

    def ask(self, n: int) -> list[Suggestion]:
        out = []
        for _ in range(n):
            rng = self.rng_for(self.next_trial)
            if self.rounds is None:
                out.append(self.suggestion(self.space.sample(rng), fidelity=self.epochs))
                continue
            params = self.rounds.draw(rng)
            done = self.rounds.times(params)
            info = {"repeat": done} if done else {}
            out.append(self.suggestion(params, fidelity=self.epochs, **info))
        return out

    def adopted(self, s: Suggestion) -> None:
        if self.rounds is not None:
            self.rounds.count(s.params)

    def tell(self, result: Result) -> None:
        pass  # draws do not depend on results

    @property
    def notice(self) -> str:
        """Said at the start of a run whose budget exceeds a finite space."""
        limit = self.settings.max_trials
        if self.rounds is None or (limit is not None and limit <= self.rounds.size):
            return ""
        until = Rounds.until(self.settings)
        return self.rounds.notice("random search", "proposes", "a trial", until)
