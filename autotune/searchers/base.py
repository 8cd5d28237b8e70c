"""The searcher interface: ask for trials, tell results; no files, no jobs, no clocks.

A searcher is rebuilt on resume by replaying the history into a fresh, identically seeded
instance: every ``ask(n)`` and ``tell`` the live run made is made again in the same order.
So a searcher must be deterministic given its seed and that sequence, and an ``ask`` that
returns nothing must leave its state unchanged (the history does not record empty asks).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

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
    """Base class: numbers the trials it proposes so replay reproduces the ids."""

    name: ClassVar[str] = ""
    #: option key under ``search:`` -> kind (see config.take); validated before construction
    options: ClassVar[dict[str, str]] = {}

    def __init__(self, settings: SearchSettings):
        self.settings = settings
        self.space = settings.space
        self._next_trial = 0

    def suggestion(self, params: dict[str, Any], fidelity: int | None = None,
                   parent: int | None = None, **info: Any) -> Suggestion:
        """A new suggestion with the next trial id."""
        trial = self._next_trial
        self._next_trial += 1
        return Suggestion(trial, params, fidelity, parent, info)

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

    def summary(self) -> dict[str, Any]:
        """Searcher-specific facts for the report (e.g. the incumbent's spread)."""
        return {}
