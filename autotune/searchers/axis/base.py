"""What the three axis searches share: options, the start, the store, the ask/tell skeleton."""
from __future__ import annotations

import math
from typing import Any, ClassVar, Iterable

from ...errors import StudyError
from ..base import Result, Searcher, SearchSettings, Suggestion
from .directions import Point, Vec
from .grid import Grid, same_value
from .line import Line
from .options import latin_points, parse_initial, parse_start, positive
from .store import Store


class AxisBase(Searcher):
    """Options, the start point, the store and the ask/tell skeleton all axis searches share.

    A search says what it wants measured now (``work``) and what a result means to it
    (``told``); asking, proposing, stamping and the store's bookkeeping are done here once.
    """

    who = "axis search"
    #: a batch method (the study's own) proposes nothing while a trial of its batch is out
    waits_for_batch: ClassVar[bool] = False

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        opts = settings.options
        self.grid = Grid(self.space, self.who)
        self.start_point = parse_start(self.grid, opts.get("start"))
        self.initial = parse_initial(opts.get("initial"))
        self.alpha = positive(opts, "alpha", 0.1)
        self.patience = positive(opts, "patience", 3, integer=True, minimum=1)
        self.max_line_points = positive(opts, "max_line_points", 30, integer=True, minimum=2)
        self.max_level = positive(opts, "max_level", self.grid.d, integer=True, minimum=1)
        if self.max_level > self.grid.d:
            raise StudyError(f"search.max_level: expected at most {self.grid.d} (the number of "
                             f"free parameters), got {self.max_level}")
        self.store = Store()
        self.done = False
        self.stop_reason = ""
        self.ended_at_trial: int | None = None
        self.base: Point | None = None
        self.moves = 0

    def make_line(self, base: Point, v: Vec, lazy: bool = False) -> Line:
        return Line(self.grid, base, v, self.store, alpha=self.alpha, patience=self.patience,
                    max_points=self.max_line_points, lazy=lazy)

    def first_points(self) -> list[Point]:
        """The initial sample: the start point, or a Latin hypercube (plus the start point)."""
        start = self.start_point or self.grid.centre()
        if self.initial == "centre":
            return [start]
        count = max(self.grid.shape)
        pts = latin_points(self.grid, count, self.settings.seed)
        if self.start_point is not None and self.start_point not in pts:
            pts.insert(0, self.start_point)
        return pts

    def trial_of(self, p: Point | None) -> int | None:
        """The trial that first measured ``p`` (the trajectory's ``base`` column)."""
        return None if p is None else self.store.first_trial.get(p)

    def observe(self, lines: Iterable[Line], p: Point, result: Result) -> None:
        """Give a result at ``p`` to every line through it (no value when it failed); a lazy
        line not built yet has no result to take in (its owner built every line through
        ``p`` before this result entered the store)."""
        ok = result.ok and math.isfinite(result.loss)
        for line in lines:
            if line.built and p in line.pos:
                line.observe(p, float(result.loss) if ok else None, self.store)

    def propose(self, p: Point, **info: Any):
        return self.suggestion(self.grid.params(p), index=list(p), **info)

    def adopted(self, s) -> None:
        p = self.point_of(s)
        if p is not None:
            self.adopted_point(s, p)

    def adopted_point(self, s, p: Point) -> None:
        """Hook: ``s`` measures grid point ``p`` (by default a new measurement in flight)."""
        self.store.start(s.trial, p)

    def point_of(self, s) -> Point | None:
        """The grid point a suggestion measures: its recorded index, checked against its
        parameters (a record the grid cannot place is not this search's)."""
        index = s.info.get("index")
        if isinstance(index, list) and len(index) == self.grid.d and self.grid.inside(index) \
                and all(isinstance(i, int) for i in index):
            p = tuple(index)
            params = s.params
            # the free parameters only (a fixed one has no index to check); the exact type
            # and value first, the tolerant comparison for the rest
            if all((type(v := values[i]) is type(w := params.get(name)) and v == w)
                   or same_value(v, w) for (name, values), i in zip(self.grid.axes, p)):
                return p
        found = [self.grid.index_of(name, s.params.get(name)) for name in self.grid.names]
        return None if None in found else tuple(found)

    def stop(self, reason: str, trial: int | None) -> None:
        self.done = True
        self.stop_reason = reason
        self.ended_at_trial = trial

    @property
    def finished(self) -> bool:
        return self.done

    def base_summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"evaluations": self.store.results, "moves": self.moves,
                               "stop_reason": self.stop_reason or "running",
                               "ended_at_trial": self.ended_at_trial}
        chosen = self.reported()
        if chosen is not None:
            out["base"] = self.grid.params(chosen)
            out["base_index"] = list(chosen)
            out["base_mean"] = None if self.store.count(chosen) == 0 else self.store.mean(chosen)
            out["base_repeats"] = self.store.count(chosen)
            out["base_spread"] = self.store.spread(chosen)
        return out

    def reported(self) -> Point | None:
        """The setting the search stands by (the report's "base")."""
        return self.base

    # ---- the skeleton ---------------------------------------------------------------------
    def ask(self, n: int) -> list[Suggestion]:
        if self.done or n <= 0 or (self.waits_for_batch and self.store.pending):
            return []
        picks = self.work(n)[:n]
        if not picks:
            return []
        stamp = self.stamp()
        return [self.propose_point(p, {**info, **stamp}) for p, info in picks]

    def work(self, n: int) -> list[tuple[Point, dict[str, Any]]]:
        """Up to ``n`` points to measure now, most useful first, with what they are for;
        reads the state and changes nothing."""
        raise NotImplementedError

    def stamp(self) -> dict[str, Any]:
        """Info every suggestion of one ask carries: the trial that measured the base."""
        base = self.trial_of(self.base)
        return {} if base is None else {"base": base}

    def propose_point(self, p: Point, info: dict[str, Any]) -> Suggestion:
        return self.propose(p, **info)

    def tell(self, result: Result) -> None:
        p = self.store.finish(result)
        if p is not None:
            self.told(p, result)

    def told(self, p: Point, result: Result) -> None:
        """A result at ``p`` is in the store: update the lines, move on."""
        raise NotImplementedError
