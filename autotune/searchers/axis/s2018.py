"""``axis-s2018``: the AT study's sequential axis search, as published (see AT-SEARCH.md).

1. Measure the base; level k = 1.
2. Measure every neighbour (base +- one step) along the directions of level <= k not yet
   searched from this base.
3. Search the whole line towards the best measured neighbour (even if it is worse than the
   base): four spread points, then the d-Spline rule, until the line is done.
4. A line best strictly better than the base becomes the base (k stays); back to 2.
5. Otherwise raise k ("add axes when stalled") and go to 2, which now measures only the new,
   more diagonal neighbours; at k = d (or ``max_level``) the search stops.

It proposes one batch at a time (the base, the neighbours, a line's four points, then one
point at a time) and waits for the batch to come back before the next.
"""
from __future__ import annotations

from typing import Any

from ..base import Result, SearchSettings
from ..registry import register
from .base import AxisBase
from .directions import Point, Vec, all_directions, dir_text
from .line import Line
from .options import LINE_OPTIONS


@register
class AxisS2018(AxisBase):
    name = "axis-s2018"
    options = dict(LINE_OPTIONS)
    who = "axis-s2018 search"
    waits_for_batch = True

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        self.level = 1
        self.state = "initial"
        self.searched: set[Vec] = set()      # directions searched from the current base
        self.line: Line | None = None
        self.lines_searched = 0
        self.level_trace: list[tuple[int, int]] = []   # (results so far, level) when it rose
        self._initial = self.first_points()
        self._advance(None)

    # ---- what to measure ------------------------------------------------------------------
    def work(self, n: int = 0) -> list[tuple[Point, dict[str, Any]]]:
        st = self.store
        if self.state == "initial":
            return [(p, {"kind": "initial"}) for p in self._initial if not st.known(p)]
        info = {"round": self.moves + 1, "level": self.level}
        if self.state == "neighbours":
            return [(q, {**info, "kind": "neighbour", "direction": dir_text(v)})
                    for v in self._open_directions() for q in self.grid.neighbours(self.base, v)
                    if not st.known(q)]
        if self.state == "line":
            line = self.line
            wanted = line.wanted(st)
            if line.phase == "spline":
                wanted = wanted[:1]
            return [(p, {**info, "kind": "line", "direction": line.text}) for p in wanted]
        return []

    def _open_directions(self) -> list[Vec]:
        return [v for v in all_directions(self.grid.d, self.level)
                if v not in self.searched and self.grid.usable(v)]

    # ---- what to do with results ----------------------------------------------------------
    def told(self, p: Point, result: Result) -> None:
        if self.line is not None:
            self.observe([self.line], p, result)
        if not self.store.pending:
            self._advance(result.trial)

    def _advance(self, trial: int | None) -> None:
        """Move the state machine on while the current step's batch is complete."""
        st = self.store
        while not self.done and not st.pending and not self.work():
            if self.state == "initial":
                # all of it failed: the neighbours of the first point are measured all the
                # same (whether failures end a study is the driver's max_failures)
                self._set_base(st.best() or self._initial[0])
                self.state = "neighbours"
            elif self.state == "neighbours":
                v = self._pick_direction()
                if v is None:
                    if not self._raise_level(trial):
                        return
                    continue
                self.line = self.make_line(self.base, v)
                self.state = "line"
            elif self.state == "line":
                if not self.line.done:
                    return  # cannot happen: a line that is not done always wants a point
                line, self.line = self.line, None
                self.searched.add(line.v)
                self.lines_searched += 1
                best = line.best_point(st)
                if best is not None and st.mean(best) < st.mean(self.base):
                    self._set_base(best)
                    self.searched = {line.v}    # the line just travelled is searched
                    self.moves += 1
                    self.state = "neighbours"
                elif not self._raise_level(trial):
                    return

    def _raise_level(self, trial: int | None) -> bool:
        if self.level >= self.max_level:
            self.stop(f"no improvement at level {self.level}", trial)
            return False
        self.level += 1
        self.level_trace.append((self.store.results, self.level))
        self.state = "neighbours"
        return True

    def _pick_direction(self) -> Vec | None:
        """The open direction whose best neighbour is lowest (failed neighbours count as worst)."""
        best_v, best_val = None, None
        for v in self._open_directions():
            vals = [self.store.mean(q) for q in self.grid.neighbours(self.base, v)]
            if not vals:
                continue
            val = min(vals)
            if best_val is None or val < best_val:
                best_v, best_val = v, val
        return best_v

    def _set_base(self, p: Point) -> None:
        self.base = p

    def summary(self) -> dict[str, Any]:
        out = self.base_summary()
        out.update({"level": self.level, "lines_searched": self.lines_searched,
                    "rounds": self.moves + 1,
                    "level_rises": [{"after_results": r, "level": k} for r, k in self.level_trace]})
        return out
