"""ASHA: asynchronous successive halving (Li et al., "A System for Massively Parallel
Hyperparameter Tuning").

Whenever a worker is free: look at the rungs from the top down and promote, to the next
rung, a configuration that is in the top 1/eta of the results its rung has so far and was
not promoted before; if there is none, start a new configuration at the bottom rung. It
never waits for a rung to fill, so no worker idles. A promotion is a new trial whose parent
is the trial it continues (fidelity: the next rung's epochs; it trains only the extra ones).
A failed or cancelled trial ranks as the worst result of its rung and is never promoted.

Options (``search:``): ``fidelity`` {min, max, eta} (required), ``max_epochs_total`` (stop
proposing once this many epochs are committed; default: none, max_trials stops it).
"""
from __future__ import annotations

import bisect
from itertools import islice
from typing import Any

from .base import Result, SearchSettings, Suggestion
from .mf_common import INF, MultiFidelitySearcher, top_count
from .registry import register


@register
class ASHASearcher(MultiFidelitySearcher):
    name = "asha"
    options = {"fidelity": "mapping", "max_epochs_total": "positive-number"}
    starts_while_promoting = True

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        levels = len(self.fidelity.rungs)
        self.ranked: list[list[tuple[float, int]]] = [[] for _ in range(levels)]  # (loss, config)
        self.promoted: list[set[int]] = [set() for _ in range(levels)]
        self.promotions = 0

    # ---- ask ------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Suggestion]:
        out: list[Suggestion] = []
        while len(out) < n and self.budget_left():
            out.append(self.next_job())
        return out

    def next_job(self) -> Suggestion:
        found = self.promotable()
        if found is not None:
            config, rung = found
            return self.propose(config, rung + 1)
        params, info = self.sample_new()
        return self.propose(None, 0, params, **info)

    def adopted_run(self, s: Suggestion, run, before) -> None:
        if before is not None:
            self.promoted[before.rung].add(run.config)
            self.promotions += 1

    def promotable(self) -> tuple[int, int] | None:
        """The best not-yet-promoted configuration in the top 1/eta of the highest rung."""
        for rung in range(self.fidelity.top - 1, -1, -1):
            ranked = self.ranked[rung]
            for loss, config in islice(ranked, top_count(len(ranked), self.fidelity.eta)):
                if loss < INF and config not in self.promoted[rung]:
                    return config, rung
        return None

    def sample_new(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A new configuration for the bottom rung: a random draw (asha-bo: a model's pick),
        and what the suggestion's info should say of it."""
        return self.new_params(self.rng_for(self.next_trial))

    # ---- tell -----------------------------------------------------------------------------
    def tell(self, result: Result) -> None:
        run = self.record(result)
        if run is None:
            return
        bisect.insort(self.ranked[run.rung], (run.loss, run.config))
        self.observed(run)

    def observed(self, run) -> None:
        """Hook for subclasses: a rung result arrived."""

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out["promotions"] = self.promotions
        return out
