"""The searcher interface: ask for trials, tell results; no files, no jobs, no clocks.

A searcher is restored on resume from what the history records, never by calling its own
``ask`` again: a fresh, identically configured instance is handed every recorded suggestion
(``adopt``) and every recorded result (``tell``) in the order they happened. That makes the
record, not the searcher's code, the on-disk format: a later version of a searcher that
would now propose something else still ends up with the state the history implies.

The contract that makes this work: everything ``ask`` changes, it changes through
``adopt(suggestion)`` (``suggestion()`` calls it), and ``adopt`` reads nothing but the
suggestion itself (its parameters, fidelity, parent and info) and the state built so far.
Randomness is drawn from ``rng_for(trial)``, a generator seeded by the study seed and the
trial id, so a draw does not depend on how many draws an earlier process made. Trial ids
are the driver's: it sets ``next_trial`` before every ``ask``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..space import SearchSpace


@dataclass(frozen=True)
class Suggestion:
    """One trial to run: parameters plus, for multi-fidelity, its length and lineage."""

    trial: int
    params: dict[str, Any]
    fidelity: int | None = None       # e.g. fine-tune epochs; reaches the objective as ctx.epochs
    parent: int | None = None         # the trial whose checkpoint this one continues
    info: dict[str, Any] = field(default_factory=dict)  # shown in trajectory.csv (round, ...)


@dataclass(frozen=True)
class Result:
    """What the searcher learns of a finished trial. ``loss`` is always to be minimised."""

    trial: int
    status: str                       # "ok" | "failed" | "cancelled"
    loss: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    cost_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.loss is not None


@dataclass(frozen=True)
class SearchSettings:
    """What every searcher is built from; ``options`` are its own keys from ``search:``."""

    space: SearchSpace
    seed: int = 0
    workers: int = 1                  # max_concurrent of the executor: a batch method's batch size
    max_trials: int | None = None
    max_compute_s: float | None = None  # the driver stops starting trials past this budget
    options: dict[str, Any] = field(default_factory=dict)


class Searcher(ABC):
    """Base class: numbers suggestions from the driver's next id and adopts them."""

    name: ClassVar[str] = ""
    #: option key under ``search:`` -> kind (see config.take); validated before construction
    options: ClassVar[dict[str, str]] = {}

    def __init__(self, settings: SearchSettings):
        self.settings = settings
        self.space = settings.space
        self.next_trial = 0               # the id the next suggestion gets (set by the driver)

    def suggestion(self, params: dict[str, Any], fidelity: int | None = None,
                   parent: int | None = None, **info: Any) -> Suggestion:
        """A new suggestion with the next trial id, adopted at once."""
        s = Suggestion(self.next_trial, params, fidelity, parent, info)
        self.adopt(s)
        return s

    def adopt(self, s: Suggestion) -> None:
        """Take ``s`` as proposed: live from ``suggestion()``, on resume from the record."""
        self.next_trial = max(self.next_trial, s.trial + 1)
        self.adopted(s)

    def adopted(self, s: Suggestion) -> None:
        """Hook: the bookkeeping a proposal implies (which point is in flight, which
        configuration a promotion continues, ...), derived from ``s`` alone."""

    def rng_for(self, trial: int, *salt: int) -> np.random.Generator:
        """The random stream of one trial's draws: the same whichever process makes them."""
        return np.random.default_rng([self.settings.seed, trial, *salt])

    @abstractmethod
    def ask(self, n: int) -> list[Suggestion]:
        """Up to ``n`` trials to start now; fewer (or none) when nothing useful is ready."""

    @abstractmethod
    def tell(self, result: Result) -> None:
        """A trial this searcher proposed has finished (or failed for good)."""

    @property
    def finished(self) -> bool:
        """True when the searcher will never propose anything again."""
        return False

    @property
    def bounded(self) -> bool:
        """True when the search ends by itself whatever max_trials and max_compute_s say (a
        grid, a hyperband iteration, an epoch budget): a run without those limits is then no
        run "until stopped", and is not warned of or refused as one."""
        return False

    @property
    def notice(self) -> str:
        """A line worth saying when a run starts, about how this search will use its budget
        ("" for none)."""
        return ""

    @property
    def warning(self) -> str:
        """A warning worth giving when a run starts: its limits defeat this search ("" for
        none)."""
        return ""

    @property
    def end_reason(self) -> str:
        """Once ``finished``: why, in words for the run's output ("" where it goes without
        saying)."""
        return ""

    def summary(self) -> dict[str, Any]:
        """Searcher-specific facts for the report (e.g. the incumbent's spread)."""
        return {}
