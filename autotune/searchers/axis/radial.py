"""``axis-radial``: the AT study's parallel round method, as published (see AT-SEARCH.md).

Each round starts one line search from the base for every direction of every level not yet
searched from this base (40 lines for four parameters). The candidates of all lines form one
list: the base first (while unmeasured), then the lines' next points taken in turn -- every
line's first candidate, then every line's second, ... with the lines ordered level 1 first,
then level 2, and so on. A line in its start phase offers its (up to four) spread points; a
line in its d-Spline phase offers the one point its rule picks. The top N of the list
(N = max_concurrent) run at once; when the whole batch is back the lines update and the next
batch is formed. When every line is done, the base moves to the best point measured if that
is strictly better, and the direction just travelled is not searched again; otherwise the
search stops.
"""
from __future__ import annotations

from typing import Any

from ..base import Result, SearchSettings, Suggestion
from ..registry import register
from .base import AxisBase
from .directions import Point, Vec, all_directions, direction_between
from .line import Line, interleave
from .options import LINE_OPTIONS


class RoundMixin:
    """Rounds of line searches from one base, shared by axis-radial and axis."""

    def round_lines(self, base: Point, exclude: Vec | None) -> list[Line]:
        return [self.make_line(base, v) for v in all_directions(self.grid.d, self.max_level)
                if v != exclude and self.grid.usable(v)]

    def line_offers(self, lines: list[Line]) -> list[list[Point]]:
        """Per line: its start points (all of them), or the d-Spline's one next point."""
        out = []
        for line in lines:
            wanted = line.wanted(self.store)
            if line.phase == "spline":
                wanted = wanted[:1] if line.in_flight(self.store) == 0 else []
            out.append(wanted)
        return out


@register
class AxisRadial(RoundMixin, AxisBase):
    name = "axis-radial"
    options = dict(LINE_OPTIONS)
    who = "axis-radial search"
    waits_for_batch = True

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        self.batch_size = max(1, settings.workers)
        self.lines: list[Line] = []
        self.rounds = 0
        self.lines_searched = 0
        self.batch_sizes: dict[int, int] = {}     # batch number -> trials in it
        self._initial = self.first_points()
        if self.initial == "centre":
            self._new_round(self._initial[0], None)
        else:
            self.state = "initial"

    def _new_round(self, base: Point, exclude: Vec | None) -> None:
        self.base = base
        self.rounds += 1
        self.state = "round"
        self.lines = self.round_lines(base, exclude)

    def _candidates(self) -> list[tuple[Point, dict[str, Any]]]:
        st = self.store
        if self.state == "initial":
            return [(p, {"kind": "initial"}) for p in self._initial if not st.known(p)]
        if self.state != "round":
            return []
        out: list[tuple[Point, dict[str, Any]]] = []
        seen: set[Point] = set()
        if not st.known(self.base):
            out.append((self.base, {"kind": "base", "round": self.rounds}))
            seen.add(self.base)
        offers = self.line_offers(self.lines)
        owner: dict[Point, Line] = {}
        for line, offer in zip(self.lines, offers):
            for p in offer:
                owner.setdefault(p, line)
        for p in interleave(offers):
            if p in seen:
                continue
            seen.add(p)
            line = owner[p]
            out.append((p, {"kind": "line", "round": self.rounds, "level": line.level,
                            "direction": line.text}))
        return out

    def work(self, n: int) -> list[tuple[Point, dict[str, Any]]]:
        return self._candidates()[:min(n, self.batch_size)]

    def stamp(self) -> dict[str, Any]:
        return {"batch": self.batches + 1, **super().stamp()}

    @property
    def batches(self) -> int:
        return max(self.batch_sizes, default=0)

    def adopted_point(self, s: Suggestion, p: Point) -> None:
        super().adopted_point(s, p)
        batch = int(s.info.get("batch", self.batches + 1))
        self.batch_sizes[batch] = self.batch_sizes.get(batch, 0) + 1

    def told(self, p: Point, result: Result) -> None:
        self.observe(self.lines, p, result)
        if not self.store.pending:
            self._advance(result.trial)

    def _advance(self, trial: int | None) -> None:
        st = self.store
        while not self.done and not st.pending and not self._candidates():
            if self.state == "initial":
                # all of it failed: a round through the first point all the same (whether
                # failures end a study is the driver's max_failures)
                self._new_round(st.best() or self._initial[0], None)
                continue
            # every line of the round is done
            self.lines_searched += len(self.lines)
            best = st.best()
            if best is None:
                self.stop("every point failed", trial)
                return
            if self.base in st.values and st.mean(best) < st.mean(self.base) or \
                    self.base not in st.values and best != self.base:
                travelled = direction_between(self.base, best)
                self.moves += 1
                self._new_round(best, travelled)
            else:
                self.stop(f"no improvement in round {self.rounds}", trial)
                return

    def summary(self) -> dict[str, Any]:
        out = self.base_summary()
        out.update({"rounds": self.rounds, "batches": self.batches,
                    "lines_searched": self.lines_searched,
                    "mean_batch": (sum(self.batch_sizes.values()) / len(self.batch_sizes)
                                   if self.batch_sizes else 0.0)})
        return out
