"""``axis``: the AT axis search made asynchronous, busy and noise-aware (autotune's default).

The search is axis-radial's (rounds of line searches along every direction from a base, the
base moving to the best point measured when a round's lines are all done, the search ending
on a round without improvement), but no batch ever waits: every ``ask(n)`` hands out the n
most useful points there are right now, in this order of priority:

1. points that gate the end of a round (repeats of the base and of the candidate next base,
   when ``repeats`` > 1), and the base itself while unmeasured; with ``neighbours: true``
   (off by default: it slowed the bench) the base's +-1 neighbours along every direction;
2. points a fitted d-Spline (of this round's lines or the speculative ones) predicts to beat
   the best value measured so far, lowest prediction first (``promise``, on by default);
3. the round's line candidates in radial order (start points, or each d-Spline line's next
   point when it has nothing in flight);
4. repeats of the base up to ``repeats`` (to measure the noise before it matters);
5. speculative lines from the best point seen so far, when that beats the base: the likely
   next base, whose round is thus well under way when the current one ends (``speculate``);
6. more points of the current lines in flight at once (up to ``line_parallel`` a line, in
   the d-Spline's order), then more speculative points;
7. filler (``fill``): the spline's most promising-but-uncertain points of the lines still
   running (lowest estimate minus one posterior standard deviation), current lines first.

Every point is measured at most once, except the repeats asked for with ``repeats``. With
repeats, the base moves only when the candidate's mean beats the base's by more than
``noise_margin`` times the measured spread (pooled over repeated points), and both have been
measured ``repeats`` times; ``summary()`` reports the final setting's mean and spread.
"""
from __future__ import annotations

from typing import Any

from ..errors import StudyError
from .axis_common import (LINE_OPTIONS, AxisBase, Line, Point, direction_between,
                          interleave, positive)
from .axis_radial import RoundMixin
from .base import Result, SearchSettings, Suggestion
from .registry import register


@register
class AxisAsync(RoundMixin, AxisBase):
    name = "axis"
    options = {**LINE_OPTIONS, "repeats": "positive-int", "noise_margin": "number",
               "line_parallel": "positive-int", "speculate": "bool", "fill": "bool", "promise": "bool",
               "neighbours": "bool"}
    who = "axis search"

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        opts = settings.options
        self.repeats = positive(opts, "repeats", 1, integer=True, minimum=1)
        self.noise_margin = float(opts.get("noise_margin", 1.0))
        if self.noise_margin < 0:
            raise StudyError(f"search.noise_margin: expected a number >= 0, got "
                             f"{opts['noise_margin']!r}")
        self.line_parallel = positive(opts, "line_parallel", 2, integer=True, minimum=1)
        self.speculate = bool(opts.get("speculate", True))
        self.fill = bool(opts.get("fill", True))
        self.promise = bool(opts.get("promise", True))
        self.neighbours_first = bool(opts.get("neighbours", False))
        self.lines: list[Line] = []
        self.spec_base: Point | None = None
        self.spec_lines: list[Line] = []
        self.rounds = 0
        self.lines_searched = 0
        self.spec_started = 0
        self.spec_used = 0
        self.kinds: dict[str, int] = {}
        self._initial = self.first_points()
        self.state = "initial"
        if self.initial == "centre":
            self._new_round(self._initial[0], None)

    # ---- rounds ---------------------------------------------------------------------------
    def _new_round(self, base: Point, travelled: Any) -> None:
        self.base = base
        self.rounds += 1
        self.state = "round"
        if self.spec_base == base and self.spec_lines:
            self.lines = self.spec_lines
            self.spec_used += 1
        else:
            self.lines = self.round_lines(base, travelled)
        self.spec_base, self.spec_lines = None, []

    def _margin(self) -> float:
        return self.noise_margin * self.store.sigma() if self.repeats > 1 else 0.0

    def _beats_base(self, p: Point) -> bool:
        st = self.store
        if p == self.base or p not in st.values:
            return False
        if self.base not in st.values:
            return self.base in st.failed
        return st.mean(p) < st.mean(self.base) - self._margin()

    def _update_spec(self) -> None:
        if not self.speculate or self.state != "round":
            return
        best = self.store.best()
        if best is None or best == self.spec_base or not self._beats_base(best):
            return
        self.spec_base = best
        self.spec_lines = self.round_lines(best, direction_between(self.base, best))
        self.spec_started += 1

    def _gate(self) -> list[Point]:
        """Points that must be repeated before the round can end (repeats > 1)."""
        if self.repeats <= 1 or self.state != "round" or not all(l.done for l in self.lines):
            return []
        st = self.store
        out = []
        cand = st.best()
        for p in (self.base, cand):
            if p is not None and p in st.values and st.count(p) < self.repeats and p not in out:
                out.append(p)
        return out

    # ---- asking ---------------------------------------------------------------------------
    def _work(self, n: int) -> list[tuple[Point, dict[str, Any]]]:
        """Up to n (point, info) in priority order; reads the state, changes nothing."""
        st = self.store
        out: list[tuple[Point, dict[str, Any]]] = []
        chosen: set[Point] = set()
        extra_repeats: dict[Point, int] = {}

        def full() -> bool:
            return len(out) >= n

        def take(p: Point, info: dict[str, Any]) -> None:
            if not full() and not st.known(p) and p not in chosen:
                out.append((p, info))
                chosen.add(p)

        def repeat(p: Point, info: dict[str, Any], upto: int) -> None:
            have = st.count(p) + st.pending.get(p, 0) + extra_repeats.get(p, 0)
            while not full() and have < upto:
                out.append((p, info))
                extra_repeats[p] = extra_repeats.get(p, 0) + 1
                have += 1

        def lines_tier(lines: list[Line], offers: list[list[Point]], kind: Any,
                       limit: int | None = None) -> None:
            kinds = kind if isinstance(kind, list) else [kind] * len(lines)
            owner: dict[Point, tuple[Line, str]] = {}
            for line, offer, k in zip(lines, offers, kinds):
                for p in offer:
                    owner.setdefault(p, (line, k))
            for p in interleave(offers):
                if full() or (limit is not None and len(out) >= limit):
                    return
                line, k = owner[p]
                take(p, {"kind": k, "round": self.rounds, "level": line.level,
                         "direction": line.text})

        if self.state == "initial":
            for p in self._initial:
                take(p, {"kind": "initial"})
            return out
        if self.state != "round":
            return out
        base_info = {"round": self.rounds}
        # 1. what gates the round's end, and the base itself
        for p in self._gate():
            repeat(p, {**base_info, "kind": "repeat"}, self.repeats)
        take(self.base, {**base_info, "kind": "base"})
        # 1a. the base's neighbours along every direction (the next levels' early)
        if self.neighbours_first and self.base in st.values:
            for line in self.lines:
                for q in self.grid.neighbours(self.base, line.v):
                    take(q, {"kind": "neighbour", "round": self.rounds, "level": line.level,
                             "direction": line.text})
        # 1b. points the fitted lines predict to beat the best value measured so far
        if self.promise:
            for p, line, kind in self._promising(spec_too=True):
                take(p, {"kind": kind, "round": self.rounds, "level": line.level,
                         "direction": line.text, "predicted": True})
        # 2. the round's own line candidates, radial order
        spec = self.spec_lines if self.spec_base is not None else []
        lines_tier(self.lines, self.line_offers(self.lines), "line")
        # 3. repeats of the base
        if self.repeats > 1 and self.base in st.values:
            repeat(self.base, {**base_info, "kind": "repeat"}, self.repeats)
        # 4. the speculative next round
        if spec:
            lines_tier(spec, self.line_offers(spec), "speculative")
        # 5. more points of the running lines at once, then of the speculative ones
        lines_tier(self.lines, self._parallel_offers(self.lines), "line")
        if spec:
            if self.repeats > 1:
                repeat(self.spec_base, {**base_info, "kind": "repeat"}, self.repeats)
            lines_tier(spec, self._parallel_offers(spec), "speculative")
        # 6. filler: promising-but-uncertain points of the lines still running
        if self.fill:
            lines_tier(self.lines, [l.uncertain(st) for l in self.lines], "uncertain")
            if spec:
                lines_tier(spec, [l.uncertain(st) for l in spec], "uncertain")
        return out

    def _promising(self, spec_too: bool) -> list[tuple[Point, Line, str]]:
        st = self.store
        best = st.best()
        if best is None:
            return []
        target = st.mean(best)
        found: list[tuple[float, int, Point, Line, str]] = []
        groups = [(self.lines, "line")]
        if spec_too and self.spec_base is not None:
            groups.append((self.spec_lines, "speculative"))
        k = 0
        for lines, kind in groups:
            for line in lines:
                if line.done or line.phase != "spline":
                    continue
                est = line.spline.estimates()
                for i, p in enumerate(line.points):
                    if est[i] < target and not st.known(p):
                        found.append((float(est[i]), k, p, line, kind))
                        k += 1
        found.sort(key=lambda x: (x[0], x[1]))
        return [(p, line, kind) for _, _, p, line, kind in found]

    def _parallel_offers(self, lines: list[Line]) -> list[list[Point]]:
        """Per d-Spline line: its next points beyond the first, up to line_parallel in flight."""
        out = []
        for line in lines:
            if line.done or line.phase != "spline":
                out.append([])
                continue
            wanted = line.wanted(self.store)
            own = line.in_flight(self.store)
            first = 1 if own == 0 else 0
            out.append(wanted[first:max(first, self.line_parallel - own)])
        return out

    def ask(self, n: int) -> list[Suggestion]:
        if self.done or n <= 0:
            return []
        picks = self._work(n)
        if not picks:
            return []
        base_trial = None if self.base is None else self.trial_of(self.base)
        out = []
        for p, info in picks:
            if base_trial is not None:
                info["base"] = base_trial
            self.kinds[info["kind"]] = self.kinds.get(info["kind"], 0) + 1
            out.append(self.propose(p, **info))
        return out

    # ---- telling --------------------------------------------------------------------------
    def tell(self, result: Result) -> None:
        p = self.store.finish(result)
        if p is None or self.done:
            return
        self.observe(self.lines, p, result.ok, result.loss)
        if self.spec_lines:
            self.observe(self.spec_lines, p, result.ok, result.loss)
        self._advance(result.trial)

    def _advance(self, trial: int) -> None:
        st = self.store
        while not self.done:
            if self.state == "initial":
                if any(not st.measured(p) for p in self._initial):
                    return
                best = st.best()
                if best is None:
                    self.stop("every initial point failed", trial)
                    return
                self._new_round(best, None)
                continue
            self._update_spec()
            if not all(line.done for line in self.lines):
                return
            gate = self._gate()
            if gate:
                return   # repeats of the base / candidate first (see _work, tier 1)
            self.lines_searched += len(self.lines)
            best = st.best()
            if best is None:
                self.stop("every point failed", trial)
                return
            if self._beats_base(best):
                self.moves += 1
                self._new_round(best, direction_between(self.base, best))
                continue
            self.stop(f"no improvement in round {self.rounds}", trial)
            return

    # ---- report ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        out = self.base_summary()
        out.update({"rounds": self.rounds, "lines_searched": self.lines_searched,
                    "speculative_rounds": self.spec_started, "speculation_used": self.spec_used,
                    "noise_sigma": self.store.sigma(), "repeats": self.repeats,
                    "work": dict(sorted(self.kinds.items()))})
        return out
