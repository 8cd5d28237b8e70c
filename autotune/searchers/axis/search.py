"""``axis``: the AT axis search made asynchronous, busy and noise-aware (autotune's default).

The building blocks are the study's (line searches along every direction through a base,
four spread points then the d-Spline rule, see AT-SEARCH.md), but there are no rounds and no
batch ever waits:

* The base moves as soon as a measured point beats it (by more than the measured noise when
  ``repeats`` > 1 or when the objective proved noisy, see below), and the line searches are
  planned afresh from the new base at once; what
  is still in flight for the old lines lands in the shared store and is used by every line
  it lies on. The search ends when every line through the base is done, nothing is in flight
  and (with repeats) the base has been measured ``repeats`` times.
* Every ``ask(n)`` hands out the n most useful points there are now, most promising first:

  1. the base while unmeasured, and (with ``repeats``) repeats of a base that every line is
     done with; without ``repeats`` (``noise_check``, on by default): the noise probe (the
     first base measured twice, in the first batch) and, once the probe shows noise, a second
     measurement of every new base and of the ``challengers`` (3) best points measured once
     whose value beats the base's mean;
  2. points a line's fitted d-Spline predicts to beat the base, lowest prediction first: the
     predicted line minima (``promise``), at most two of a line at a time, those in flight
     counted, the nearest to the line's base first (under noise the lowest;
     ``promise_per_line``). A line through a new base borrows the shape
     of the measured line parallel to it through an earlier base (shifted by the difference
     of the two bases' values, ``transfer``), so its predicted minimum is measured before its
     spread points;
  3. the base's neighbours (+-1 step along every direction, level 1 first; ``neighbours``):
     the cheapest test of whether the base can move; where the local quadratic (below)
     orders the points it was fitted to almost perfectly, those it predicts lowest first
     (``neighbour_order``): in four dimensions a base has 80 neighbours, which at 50 workers
     take one and a half waves of results, and once the base is a step from the optimum
     that one is among them;
  4. the lines' own next points (interior spread points, then the ends; then each d-Spline
     line's next point), lines ordered by the gain their fit predicts, then by level;
  5. more points of the running d-Spline lines at once (up to ``line_parallel`` a line);
  6. filler (``fill``): the spline's most promising-but-uncertain points (lowest estimate
     minus one posterior standard deviation);
  7. repeats of the base up to ``repeats``.

Noise without ``repeats`` (``noise_check``): the probe costs one evaluation. If the two
measurements agree the objective is taken as noise-free and nothing else is repeated. If
they differ, a point measured once becomes the base only when it beats the base's mean by
more than ``noise_margin`` standard errors (pooled spread of all repeats), otherwise only
after its second measurement still beats it; so a single lucky value neither moves the base
nor becomes the reported setting, which is then always a point measured at least twice.

Under noise (found by the probe, repeats not asked for) the reported setting is chosen among
the bases and the 20 best points measured twice by a value that weighs each point's own mean
against the local quadratic fitted to its neighbours (quadratic.py): on a smooth landscape
the neighbours expose the luckiest of many twice-measured points; on a rugged one the fit is
poor and the point's own mean decides.

With a budget under noise (``max_trials``, or ``max_compute_s`` counted in trials of the mean
cost so far), the last tenth of it (at most 2 x max_concurrent trials) measures the five
best candidates for the reported setting again (``final``), the least measured first, and
as a race (the best three in its second half, the best two in its last quarter), instead of
exploring: the reported setting comes with its spread from several
measurements, not two.

A point that failed is not asked for again, and a failed start (or a first sample that all
failed) is searched around all the same, its neighbours and lines first: with one worker
the start is all there is in flight, and whether failures end a study is the driver's
call (``max_failures``), not the searcher's.

Every point is measured at most once, except the repeats asked for with ``repeats`` and,
with ``noise_check`` (default; ``noise_check: false`` turns it off), the probe and -- only
when the objective proved noisy -- the second measurements above. The reported setting is
the base: the best mean among those measured ``repeats`` times when repeats are asked for;
``summary()`` gives its mean and spread, the pooled noise and whether noise was found.

With many workers (``explore``: a fifth of them, so 10 at 50) the first wave also measures
a Latin hypercube over the whole grid: lines through the start see nothing of a basin off
them, and the design's results reach the additive model, the challengers and the choice of
a restart point (see ``_exploration``).

Three models look at all results at once and each has a few picks in flight beside the
lines: a global additive model (additive.py: the combination of every axis's best values),
a quadratic fitted to the best points measured anywhere (elite.py: the bottom of the
envelope the best points surround, such as the centre of rings or of a rotated, rough
bowl; ``elite_in_flight`` picks, 2 at 50 workers; under noise only while the noise is
small beside how much the best points differ) -- each of these two
keeps one pick at a time after ten of its picks in a row missed the base, until one beats
it -- and a local quadratic around the base (quadratic.py: the direction of an oblique
valley, which no line has; fitted to the values under the monotone warp that makes them a
bowl, such as an exponential undoing a log scale, where one does (``quadratic_warp``); it
stops for a base after ``d + 4`` picks that did not move it).

Once the first local search has settled (its first restart, below), a third model takes a
share of the new points (``parzen_share``, a tenth): a global Parzen density ratio in the
manner of TPE (parzen.py), which proposes points off every line searched so far, near good
points of other basins: a basin away from the start and off its lines is otherwise found
only by a restart that happens to land in it.

Where one axis is short beside another (one of its steps spans three or more of the
other's: a batch size of three values beside a learning rate of forty), the lines of the long
axis through the short ones' neighbours (their diagonals too, while few) are searched after
the base's own lines (``slide``; grid.py): a valley at a slant moves the long axis's best
value many steps for one step of the short axis, so every neighbour of a base on its floor
is worse, and a diagonal moves one step; only the line through the neighbour finds where
the valley went (without them such a search settled short of the minimum, see
tests/test_axis.py; a rotated discus on 3 x 3 x 3 x 40, docs/benchmarks.md).

With a budget, slots that nothing above wants (few parameters and many workers: the lines
through the base all measured or in flight) get the same model's picks near the best points
(kind ``spare``, ``fill_idle``) from the start, instead of idling until the base's last
points land or the stall's restart.

With a budget (``max_trials`` or ``max_compute_s``; ``restarts``) a settled search does not
stop: it starts again from the best measured point outside the boxes around its bases (or an
unmeasured one drawn there), at the first level again, as a new local search. It restarts
too when ``stall`` results (2 x max_concurrent) went by without a move, even with lines
through the base still open: their last points rarely move a settled base, and a wave of
workers spent on them is a wave not spent elsewhere. For the same reason a clean stall
restarts rather than adding a higher level through the same base (with six or more
parameters only the first levels are searched from the start), once level 3 is searched and
unless the last level added moved the base: an ill-conditioned rotated bowl needs the
diagonals of three axes, and the next level's where those found a way down (at eight
parameters, restarting before level 3 lost the rotated discus). Under noise the levels come
first, as when settled: a base then stands still while its challengers are confirmed, and
the levels' neighbours still refine the region the reported setting comes from (at 10%
noise on a 6-parameter grid, restarting first raised the regret on four of eight
landscapes). The new search reads every measurement
but moves only to points of its own region (store.py), and the additive model's picks must
then promise a new best overall; the reported setting stays the best verified base of all
regions. A point handed out before the restart that comes back after it as a new best
overall, away from the earlier regions' bases, joins the new region (``_late_find``): a
global model's find, not the old valley's.

With ``fidelity: {min, max, eta}`` every new point is screened by successive halving before
it may count (axis_screen.py): short runs first, continued from their checkpoints while
they stay promising, so most points that would not move the base cost a fraction of a full
run. Continuations of screened points go before all other work.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Iterator

import numpy as np

from ...dspline import DSpline
from ...errors import StudyError
from ..base import Result, SearchSettings, Suggestion
from ..mf_common import parse_fidelity
from ..registry import register
from .additive import AdditiveModel
from .base import AxisBase
from .directions import Point, Vec, all_directions, direction_between, directions, level_of
from .elite import BestPointsQuadratic
from .line import Line, interleave
from .options import LINE_OPTIONS, latin_points, positive
from .parzen import ParzenPicks
from .quadratic import IDENTITY, WARP_TRUST, LocalQuadratic
from .screen import Screening


MAX_LINES = 200    # lines searched at once from a base before higher levels wait their turn
MAX_ALL_LINES = 1000   # the most lines through one base, levels added when stalled included
#: a clean stall restarts rather than adding a level once this one is searched: its
#: diagonals of three axes are what an ill-conditioned rotated bowl needs (see _advance)
RESTART_FROM_LEVEL = 3
OLD_LINES = 80     # unfinished lines of earlier bases kept as filler
TRANSFER_BASES = 4  # earlier bases whose parallel lines may lend a new line their shape
MODEL_PATIENCE = 10        # a global model's picks in a row that missed: then one at a time
ELITE_NOISE = 0.25         # the best points' quadratic under noise: while the noise's sd is
                           # under this fraction of the sd of the best points' means
PROMISE_PER_LINE = 2       # a line's predicted points below the base out at once (0: all)
FINALISTS = 5              # candidates measured again at the end of a budget under noise
CANDIDATES = 20            # twice-measured points judged beside the bases for the report
RESTART_CANDIDATES = 256   # measured points tried as a restart on a grid too large for a mask
EXPLORE_SALT = 7919        # the exploration's Latin design differs from a Latin initial sample


@register
class AxisAsync(AxisBase):
    name = "axis"
    options = {**LINE_OPTIONS, "repeats": "positive-int", "noise_margin": "number",
               "line_parallel": "positive-int", "fill": "bool", "promise": "bool",
               "neighbours": "bool", "transfer": "bool", "noise_check": "bool",
               "challengers": "int", "fidelity": "mapping", "screen_predicted": "bool",
               "model": "bool", "model_in_flight": "positive-int", "sweep": "bool",
               "restarts": "int", "quadratic": "bool", "quadratic_in_flight": "positive-int", "quadratic_warp": "bool",
               "stall": "positive-int", "parzen": "bool", "parzen_share": "number",
               "explore": "int", "elite": "bool", "elite_in_flight": "positive-int",
               "neighbour_order": "bool", "fill_idle": "bool", "slide": "bool",
               "promise_per_line": "int"}
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
        self.fill = bool(opts.get("fill", True))
        self.promise = bool(opts.get("promise", True))
        self.promise_per_line = int(opts.get("promise_per_line", PROMISE_PER_LINE))
        if self.promise_per_line < 0:
            raise StudyError(f"search.promise_per_line: expected an integer >= 0 (0: no "
                             f"limit), got {opts['promise_per_line']!r}")
        self.neighbours_first = bool(opts.get("neighbours", True))
        self.neighbour_order = bool(opts.get("neighbour_order", True))
        self.transfer = bool(opts.get("transfer", True))
        self.slide = bool(opts.get("slide", True))
        self.noise_check = bool(opts.get("noise_check", True))
        self.challengers = int(opts.get("challengers", 3))
        if self.challengers < 0:
            raise StudyError(f"search.challengers: expected an integer >= 0, got "
                             f"{opts['challengers']!r}")
        self.screen = (Screening(parse_fidelity(opts, self.name))
                       if opts.get("fidelity") is not None else None)
        self.screen_predicted = bool(opts.get("screen_predicted", False))
        self._fits: dict[tuple[Point, tuple[int, ...]], tuple[list, np.ndarray]] = {}
        # an earlier base's parallel line: its points (by position) and what is known on it,
        # kept until a result lands on one of them (every line looks back on every result)
        self._lent: dict[tuple[Point, Vec], tuple[dict[Point, int], list]] = {}
        self.use_model = bool(opts.get("model", True))
        self.model_in_flight = int(opts.get("model_in_flight", max(1, settings.workers // 10)))
        self.sweep = bool(opts.get("sweep", True))
        self.model = AdditiveModel(self.grid.shape, self.alpha)
        self._model_fitted_at = -1
        self._promise_cache: tuple[tuple, list[tuple[Point, Line]]] | None = None
        # every point ever proposed, as a grid-shaped mask, where the grid is small enough
        # for the model to predict all of it at once (d = 4: 13,310 points)
        size = int(np.prod(self.grid.shape))
        self._known = np.zeros(self.grid.shape, dtype=bool) if size <= 500_000 else None
        self._near = np.zeros(self.grid.shape, dtype=bool) if size <= 500_000 else None
        self.model_out: set[int] = set()      # trials of the model's picks still in flight
        self.model_misses = 0                 # its picks told in a row that missed the base
        self.use_quadratic = bool(opts.get("quadratic", True))
        self.quadratic_in_flight = int(opts.get("quadratic_in_flight",
                                                max(1, settings.workers // 10)))
        self.quadratic = LocalQuadratic(self.grid.shape)
        self.quadratic_out: set[int] = set()  # trials of the quadratic's picks in flight
        self.quadratic_misses = 0             # its picks told since the base last moved
        self.quadratic_warp = bool(opts.get("quadratic_warp", True))   # see quadratic.py
        self._quadratic_cache: tuple[tuple, list[tuple[Point, float]]] | None = None
        self._quadratic_fit_cache: tuple[tuple, tuple | None] | None = None
        self.use_elite = bool(opts.get("elite", True))
        self.elite_in_flight = positive(opts, "elite_in_flight",
                                        max(1, settings.workers // 25), integer=True, minimum=1)
        self.elite = BestPointsQuadratic(self.quadratic, self.grid.shape)
        self.elite_out: set[int] = set()      # trials of its picks still in flight
        self.elite_misses = 0                 # its picks told in a row that missed the base
        self._elite_cache: tuple[int, list[tuple[Point, float]]] | None = None
        self._elite_spread: tuple[int, float | None] | None = None   # (results, spread)
        self.use_parzen = bool(opts.get("parzen", True))
        self.fill_idle = bool(opts.get("fill_idle", True))
        self.parzen_share = float(opts.get("parzen_share", 0.1))
        if not 0 <= self.parzen_share <= 1:
            raise StudyError(f"search.parzen_share: expected a number from 0 to 1, got "
                             f"{opts['parzen_share']!r}")
        self.parzen = ParzenPicks(self.grid.shape)
        # a fifth of the first wave, none with a Latin initial sample (already global) or
        # a handful of workers (every slot is worth more to the descent)
        default = 0 if self.initial == "latin" else settings.workers // 5
        self.explore = opts.get("explore", default)
        if not isinstance(self.explore, int) or isinstance(self.explore, bool) \
                or self.explore < 0:
            raise StudyError(f"search.explore: expected an integer >= 0, got "
                             f"{opts['explore']!r}")
        self._explore_points: list[Point] | None = None
        self.handed_out = 0                    # new points handed out (not continuations)
        self.parzen_adopted = 0               # ... of them the Parzen model's picks
        self.parzen_from: int | None = None   # handed_out at the first restart
        self._reported_cache: tuple[tuple, Point] | None = None
        self._finalists_cache: tuple[tuple[int, int], list[Point]] | None = None
        self.spent_s = 0.0        # compute the told results report, and how many report one
        self.costed = 0
        budget = settings.max_trials is not None or settings.max_compute_s is not None
        restarts = opts.get("restarts", -1 if budget else 0)
        if not isinstance(restarts, int) or restarts < -1:
            raise StudyError(f"search.restarts: expected an integer >= 0 (or -1: as many as "
                             f"the budget allows), got {restarts!r}")
        self.restarts_left = restarts        # -1: until max_trials / max_compute_s stops it
        # results without a move after which a search that may restart does so, however
        # many of its lines are still open: their last points rarely move a settled base
        self.stall = positive(opts, "stall", max(20, 2 * settings.workers), integer=True,
                              minimum=1)
        self.moved_at = 0                    # the store's result count at the last move
        self.restarts = 0
        self.moves_at_raise = 0              # the move count when the last level was added
        self.lines: list[Line] = []
        # the long axes' lines through the base's neighbours on short ones (grid.py's
        # slides): searched from the base too, but not through it; none on most grids
        self.slides: list[Line] = []
        # the levels searched from the start: all of them while that is a few hundred lines
        # at most (d = 4: 40); with many parameters the higher levels come when settled or
        # stalled (see _advance)
        self.level = 1
        while self.level < self.max_level and \
                sum(len(directions(self.grid.d, k)) for k in range(1, self.level + 2)) <= MAX_LINES:
            self.level += 1
        self.first_level = self.level       # a restart begins at it again
        self.old_lines: list[Line] = []       # unfinished lines of earlier bases, newest first
        # lines not built yet, by base and direction (see _build_lines_through)
        self._by_base: dict[Point, dict[Vec, list[Line]]] = {}
        self._at: dict[Point, list[Line]] = {}  # _lines_at's answers while _by_base holds
        self.bases: list[Point] = []          # every base so far, oldest first
        self.region_bases = 0                 # how many of them (the first) are earlier regions'
        self.lines_searched = 0
        self.kinds: dict[str, int] = {}
        self._initial = self.first_points()
        self.state = "initial"
        if self.initial == "centre":
            self._move(self._initial[0])

    # ---- the base -------------------------------------------------------------------------
    def _move(self, base: Point) -> None:
        if self.base is not None:
            self.moves += 1
            # a line that took no result since it started is kept unread (it is lazy: see
            # line.py); whether it is done is asked only of lines that took one
            self.lines_searched += sum(1 for line in self.lines + self.slides if line.seen)
            self.old_lines = [line for line in self.lines + self.slides + self.old_lines
                              if not line.seen or not line.done]
            # filler from earlier bases: the most recent ones only, so a long search does not
            # pay for every line it ever started on each ask
            self.old_lines = self.old_lines[:OLD_LINES]
        self.base = base
        self.bases.append(base)
        lending = set(self.bases[-1 - TRANSFER_BASES:-1])
        self._lent = {key: found for key, found in self._lent.items() if key[0] in lending}
        self.quadratic_misses = 0
        self.moved_at = self.store.results
        if self._near is not None:
            self._near[tuple(slice(max(0, b - 1), b + 2) for b in base)] = True
        self.state = "search"
        self.lines = self._lines_through(base, 1, self.level)
        self.slides = [self.make_line(q, v, lazy=True) for q, v in self.grid.slides(base)] \
            if self.slide else []
        self._by_base = {}
        self._index(self.lines + self.slides + self.old_lines)

    def _index(self, lines: list[Line]) -> None:
        self._at = {}
        for line in lines:
            self._by_base.setdefault(line.base, {}).setdefault(line.v, []).append(line)

    def _lines_through(self, base: Point, low: int, high: int) -> list[Line]:
        return [self.make_line(base, v, lazy=True) for v in all_directions(self.grid.d, high)
                if low <= level_of(v) and self.grid.usable(v)]

    def _lines_at(self, p: Point) -> list[Line]:
        """The lines (of the base's and the earlier ones kept) that pass through ``p``: found
        by the direction from each line's base to ``p``, not by asking every line (a search
        with many parameters keeps hundreds). Remembered until the lines change: a result's
        tell asks twice, once to build and once to observe. Do not modify the list."""
        out = self._at.get(p)
        if out is not None:
            return out
        out = []
        for base, by_direction in self._by_base.items():
            if p == base:
                for lines in by_direction.values():
                    out += lines
            else:
                out += by_direction.get(direction_between(base, p), ())
        self._at[p] = out
        return out

    def _raise_level(self) -> bool:
        """Add the next level's lines through the base (the study's "add axes when
        stalled"); False when every level is already searched, or when the next would
        take the lines through one base past ``MAX_ALL_LINES`` (sixteen parameters have
        2,240 directions of level 3 and 14,560 of level 4: every move would plan them all,
        and a settled search does better to restart or stop)."""
        if self.level >= self.max_level or len(self.lines) + len(
                directions(self.grid.d, self.level + 1)) > MAX_ALL_LINES:
            return False
        self.level += 1
        added = self._lines_through(self.base, self.level, self.level)
        self.lines += added
        self._index(added)
        return True

    def _margin(self) -> float:
        return self.noise_margin * self.store.sigma() if self.repeats > 1 else 0.0

    # ---- noise without asked-for repeats (noise_check) -------------------------------------
    def _checking(self) -> bool:
        """Automatic noise handling applies (repeats not asked for, noise_check on)."""
        return self.repeats == 1 and self.noise_check

    def _probed(self) -> bool:
        """Has a point been measured twice, or is a second measurement in flight?"""
        st = self.store
        return st.noise()[1] > 0 or any(p in st.values for p in st.pending)

    def _noisy(self) -> bool:
        """Repeated measurements of a point disagree, and the search handles noise itself
        (no ``repeats`` asked for): the objective is noisy."""
        return self._checking() and self._spread_seen()

    def _spread_seen(self) -> bool:
        """Repeated measurements of a point disagree (whoever asked for the repeats)."""
        st = self.store
        scale = max(1.0, abs(st.mean(self.base))) if self.base in st.values else 1.0
        return st.sigma() > 1e-12 * scale

    def _global_target(self) -> float:
        """What a global model's pick must predict to be worth a trial: below the base, and
        after a restart below the best overall (only a new best overall is worth it)."""
        st = self.store
        target = st.mean(self.base)
        return min(target, st.mean(st.best())) if self.restarts else target

    def _challenger_list(self) -> list[Point]:
        """When noisy: the points measured once whose value beats the base's mean, best first
        (each is measured a second time before the base may move to it), at most
        ``challengers`` of them."""
        st = self.store
        if not self._noisy() or self.base not in st.values or self.challengers <= 0:
            return []
        found = []
        for p in st.below(st.mean(self.base), region=True):
            if p != self.base and st.count(p) < 2:
                found.append(p)
                if len(found) == self.challengers:
                    break
        return found

    def _beats_base(self, p: Point) -> bool:
        st = self.store
        if p == self.base or p not in st.values:
            return False
        if self.base not in st.values:
            return self.base in st.failed
        mean_p, mean_b = st.mean(p), st.mean(self.base)
        if self._noisy():
            # a clear win on the measurements so far, or any win once measured twice
            sigma = st.sigma()
            se = sigma * (1.0 / st.count(p) + 1.0 / st.count(self.base)) ** 0.5
            return mean_p < mean_b - self.noise_margin * se or \
                (st.count(p) >= 2 and mean_p < mean_b)
        return mean_p < mean_b - self._margin()

    def _move_target(self) -> Point | None:
        """The point the base moves to now, if any: the best by mean of those that beat it,
        among the points of the region (since the last restart: see store.py)."""
        st = self.store
        if self._noisy() and self.base in st.values:
            # beating the base needs a lower mean first: the best such point that beats it
            return next((p for p in st.below(st.mean(self.base), region=True)
                         if self._beats_base(p)), None)
        best = st.region_best()
        return best if best is not None and self._beats_base(best) else None

    # ---- predictions ----------------------------------------------------------------------
    def _estimates(self, line: Line) -> np.ndarray | None:
        """The line's predicted values: its own fit, or a parallel line's shifted to it."""
        st = self.store
        own = line.spline.positions_measured
        if line.phase == "spline" or own >= 3:
            return line.spline.estimates()
        # lent by parallel lines of earlier bases: the axes and their pairs only (with many
        # parameters the higher levels hold thousands of lines, and each would look back)
        # (aligned at the base: a slide's line, through a neighbour, has none to lend)
        if not self.transfer or line.level > 2 or self.base not in st.values \
                or self.base not in line.pos:
            return None
        # the nearest earlier base whose parallel line has a fit with at least four points
        for old in reversed(self.bases[-1 - TRANSFER_BASES:-1]):
            if old not in st.values:
                continue
            pts = self.grid.line(old, line.v)
            lent = self._lent.get((old, line.v))
            if lent is None:
                lent = self._lent[(old, line.v)] = (
                    {p: i for i, p in enumerate(pts)},
                    [(i, st.mean(p)) for i, p in enumerate(pts) if p in st.values])
            known = lent[1]
            if len(known) < 4:
                continue
            # align positions: the offset of the two bases along the line must match
            here = line.pos[self.base]
            there = pts.index(old)
            est_old = self._fit(old, line.v, len(pts), known)
            shift = st.mean(self.base) - est_old[there]
            out = np.full(line.n, np.inf)
            for i in range(line.n):
                j = i - here + there
                if 0 <= j < len(pts):
                    out[i] = est_old[j] + shift
            return out
        return None

    def _fit(self, old: Point, v: tuple[int, ...], n: int,
             known: list[tuple[int, float]]) -> np.ndarray:
        """The d-Spline of an earlier base's line (refitted only when its points changed:
        asked for on every ``ask``)."""
        key = (old, v)
        cached = self._fits.get(key)
        if cached is not None and cached[0] == known:
            return cached[1]
        sp = DSpline(n, self.alpha)
        for i, value in known:
            sp.add(i, value)
        est = sp.estimates()
        self._fits[key] = (known, est)
        return est

    def _promising(self) -> list[tuple[Point, Line]]:
        """Unknown points of the base's lines predicted to beat the base, lowest first."""
        st = self.store
        if self.base not in st.values:
            return []
        key = (st.results, self.base, len(self.lines))
        if self._promise_cache is None or self._promise_cache[0] != key:
            target = st.mean(self.base)
            found: list[tuple[float, int, Point, Line]] = []
            for line in self.lines + (self.slides if self._slides_open() else []):
                if line.done:
                    continue
                est = self._estimates(line)
                if est is None:
                    continue
                for i in np.flatnonzero(est < target):   # most of a line's points are not
                    p = line.points[i]
                    if not st.measured(p):
                        found.append((float(est[i]), len(found), p, line))
            found.sort(key=lambda x: (x[0], x[1]))
            if self.promise_per_line:
                found = self._limit_per_line(found)
            # results change it, asks do not: cached until the next result
            self._promise_cache = (key, [(p, line) for _, _, p, line in found])
        return [(p, line) for p, line in self._promise_cache[1] if p not in st.pending]

    def _limit_per_line(self, found: list[tuple[float, int, Point, Line]]
                        ) -> list[tuple[float, int, Point, Line]]:
        """Of each line's points predicted below the base, ``promise_per_line`` at a time,
        those in flight counted; ``found`` and the result are sorted by prediction. A fit
        (or a parallel line's lent shape) that slopes down to a line's end predicts a whole
        stretch of it below the base, and handing all of it out at once took the slots of
        the base's neighbours and the models' picks for points of one line that stand or
        fall together.

        On a clean objective the nearest to the line's base go first (the lowest first
        among equally near ones): the far end is the least sure prediction (the slope
        carried on past the points it was fitted to, or another base's line shifted here),
        so the two next to the base test the slope first and the refitted line carries it
        on (the rotated Styblinski-Tang: 5.4 h to the minimum instead of 6.5 h with the two
        lowest, on such a line its far end). Under noise the lowest go first: a point next
        to the base differs from it by less than the noise, and the far end is the test the
        noise does not blur (nearest first, the regret at 10% noise was worse on 77 seeds
        and better on 63 of 370; docs/benchmarks.md)."""
        by_line: dict[int, list[tuple[float, int, Point, Line]]] = {}
        for item in found:
            by_line.setdefault(id(item[3]), []).append(item)
        nearest = not self._spread_seen()
        kept = []
        for items in by_line.values():
            if nearest:
                line = items[0][3]
                at = line.pos[line.base]
                items.sort(key=lambda it: (abs(line.pos[it[2]] - at), it[0], it[1]))
            kept += items[:self.promise_per_line]
        kept.sort(key=lambda it: (it[0], it[1]))
        return kept

    def _model_picks(self) -> list[Point]:
        """The additive model's lowest predictions below the base, while fewer than
        ``model_in_flight`` of its picks are out; its single lowest one even beyond that
        (up to three times as many out): the first picks go out on the first few results,
        and the model that has seen every axis whole must not wait an hour for them. After
        ``MODEL_PATIENCE`` misses in a row, one pick at a time (``_judge_model_pick``)."""
        st = self.store
        out = len(self.model_out)
        room = self.model_in_flight - out
        if room <= 0 and out < 3 * self.model_in_flight:
            room = 1
        if self.model_misses >= MODEL_PATIENCE:
            room = min(room, 1 - out)
        if room <= 0 or self.base not in st.values or len(st.values) < 2 * self.grid.d:
            return []
        if self._model_fitted_at != st.results:
            self.model.fit()
            self._model_fitted_at = st.results
        target = self._global_target()
        if self._known is not None:
            picks = self.model.best_on_grid(room, self._known)
        else:
            picks = self.model.best(room, st.known)
        return [p for value, p in picks if value < target]

    def _elite_picks(self) -> list[Point]:
        """The best-points quadratic's lowest predictions below the base (below the best
        overall after a restart), while fewer than ``elite_in_flight`` of its picks are
        out; after ``MODEL_PATIENCE`` misses in a row, one at a time (as the additive
        model's, ``_judge_pick``). Under noise (repeated measurements disagree) only while
        ``_elite_heard`` says the best points' differences stand well above the noise."""
        st = self.store
        out = len(self.elite_out)
        room = self.elite_in_flight - out
        if self.elite_misses >= MODEL_PATIENCE:
            room = min(room, 1 - out)
        if room <= 0 or self.base not in st.values or not self._elite_heard():
            return []
        if self._elite_cache is None or self._elite_cache[0] != st.results:
            # results change it, asks do not: cached until the next result
            self._elite_cache = (st.results, self.elite.ranked(self.settings.seed, self._known))
        target = self._global_target()
        picks: list[Point] = []
        for p, value in self._elite_cache[1]:
            if value >= target or len(picks) == room:
                break
            if not st.known(p):
                picks.append(p)
        return picks

    def _elite_heard(self) -> bool:
        """Whether the best points' quadratic can be trusted: always on a clean objective;
        under noise while the pooled noise's sd is under ``ELITE_NOISE`` times the sd of the
        best points' means. The best points are partly the luckiest ones, and a fit
        through them chases the noise once it is a fair part of how much they differ
        (kept under all noise, the reported settings at 10% were worse on 10 of 37
        held-out landscapes, better on 6); while they differ by far more (a small noise,
        or early in a search), their bottom is still where they say (off under all noise,
        10 seeds: 285 and 271 of the 370 held-out seeds at least as good as the best
        peer's at 2% and 10% noise; with this rule 297 and 281, docs/benchmarks.md).
        From the store alone, so a restored search decides alike."""
        if not self._spread_seen():
            return True
        st = self.store
        if self._elite_spread is None or self._elite_spread[0] != st.results:
            self._elite_spread = (st.results, self.elite.spread())
        spread = self._elite_spread[1]
        return spread is not None and st.sigma() < ELITE_NOISE * spread

    def _quadratic_picks(self) -> list[Point]:
        """The local quadratic's lowest predictions near the base below the base's value,
        while fewer than ``quadratic_in_flight`` of its picks are out and fewer than
        ``d + 4`` of them failed to move this base."""
        st = self.store
        room = self.quadratic_in_flight - len(self.quadratic_out)
        if room <= 0 or self.base not in st.values \
                or self.quadratic_misses >= self.grid.d + 4:
            return []
        picks = []
        for q, _ in self._quadratic_ranked():
            if not st.known(q) and q not in picks:
                picks.append(q)
                if len(picks) == room:
                    break
        return picks

    def _quadratic_fit(self) -> tuple[np.ndarray, Any, float] | None:
        """The local quadratic around the base: its coefficients, the warp they predict
        values under, and how well it orders the points it was fitted to (Spearman; 0
        without the warps); computed once per result and base, None while too few points."""
        st = self.store
        key = (st.results, self.base)
        if self._quadratic_fit_cache is None or self._quadratic_fit_cache[0] != key:
            if self.quadratic_warp:
                found = self.quadratic.fit_warped(self.base)
                fit = None if found is None else (*found, self.quadratic.trust)
            else:
                plain = self.quadratic.fit(self.base)
                fit = None if plain is None else (plain, IDENTITY, 0.0)
            self._quadratic_fit_cache = (key, fit)     # results change it, asks do not
        return self._quadratic_fit_cache[1]

    def _quadratic_ranked(self) -> list[tuple[Point, float]]:
        """The local quadratic's predictions below the base's value near the base, lowest
        first (computed once per result and base)."""
        st = self.store
        key = (st.results, self.base)
        if self._quadratic_cache is None or self._quadratic_cache[0] != key:
            ranked: list[tuple[Point, float]] = []
            fit = self._quadratic_fit()
            if fit is not None:
                coef, warp, _ = fit     # predictions of warped values: the base's too
                target = float(warp(st.mean(self.base)))
                points, pred = self.quadratic.candidates(self.base, coef, self.settings.seed)
                for q, value in zip(points, pred):
                    if value >= target:
                        break
                    ranked.append((tuple(int(x) for x in q), float(value)))
            self._quadratic_cache = (key, ranked)   # results change it, asks do not
        return self._quadratic_cache[1]

    def _by_quadratic(self, points: list[Point]) -> list[Point]:
        """``points`` (the base's neighbours) with those a trusted local quadratic predicts
        below the base first, lowest first, the rest in their order; as they are where the
        fit does not order its own points almost perfectly (``WARP_TRUST``)."""
        fit = self._quadratic_fit() if len(points) > 1 else None
        if fit is None or fit[2] < WARP_TRUST:
            return points
        coef, warp, _ = fit
        pred = self.quadratic.features(np.asarray(points) - np.asarray(self.base)) @ coef
        target = float(warp(self.store.mean(self.base)))
        below = sorted((float(v), i) for i, v in enumerate(pred) if v < target)
        first = [points[i] for _, i in below]
        taken = {i for _, i in below}
        return first + [p for i, p in enumerate(points) if i not in taken]

    def _parzen_picks(self, free: int, chosen: set[Point]) -> list[Point]:
        """The global Parzen model's best picks (parzen.py), as many as keep its share of
        the trials at ``parzen_share`` counting this batch's free slots; none until the
        first local search has settled (its first restart). Until then every slot is worth
        more to the first descent: picks from the start took its neighbour checks and slowed
        it (concentric ripples: 325 -> 492 evaluations to the minimum at ten seeds, the same
        when the picks could not move the base). After it, the picks look off every line
        searched so far for a better basin, and where the next restart goes."""
        st = self.store
        if self.parzen_from is None:
            return []
        room = int(self.parzen_share * (self.handed_out - self.parzen_from + free)) \
            - self.parzen_adopted
        room = min(room, free)
        if room <= 0 or self.base not in st.values:
            return []
        return self._parzen(room, chosen)

    def _parzen(self, count: int, chosen: set[Point], salt: int = 0x9A12,
                spread: bool = True) -> list[Point]:
        """Up to ``count`` of the Parzen model's picks, none of them handed out already."""
        st = self.store
        points, means = self.quadratic.table()
        pending = np.array(list(st.pending), dtype=int).reshape(-1, self.grid.d)
        mask = self._known      # every point handed out, where the grid is small enough

        def known(p: Point) -> bool:
            if mask is not None:
                return p in chosen or bool(mask[p])
            return p in chosen or st.known(p) or p in st.pending

        rng = np.random.default_rng([self.settings.seed, salt, st.results, self.handed_out])
        return self.parzen.picks(points, means, pending, count, known, rng, spread)

    def _exploration(self) -> list[Point]:
        """A Latin hypercube of ``explore`` points over the whole grid, measured with the
        first wave (they come right after the base). A line search sees only the lines
        through its bases: a basin off them (several wells, the deepest narrow) was found
        only by a restart that happened to land in it, and under noise within a few hundred
        evaluations rarely at all. Measured at 50 workers: Shekel-like wells 296 -> 191
        evaluations to the minimum (12 seeds), regret at 2% noise 0.17 -> 0 (10 seeds).
        The price is a fifth of the first wave's neighbour checks, and an additive model
        fitted to points off the lines too: Levy 138 -> 155 evaluations (20 seeds). Later
        waves or fewer points were worse on both counts (the design then comes after the
        descent has chosen its basin)."""
        if self.explore <= 0 or self.restarts:
            return []
        if self._explore_points is None:
            design = latin_points(self.grid, self.explore, self.settings.seed + EXPLORE_SALT)
            self._explore_points = [p for p in design if p != self.base]
        st = self.store
        return [p for p in self._explore_points if not st.known(p)]

    def _line_order(self, lines: list[Line]) -> list[Line]:
        """Lines by the gain their fit predicts (most first), then in their order."""
        st = self.store
        keyed = []
        for k, line in enumerate(lines):
            gain = 0.0
            # a line that is done offers nothing, wherever it stands (and its fit costs)
            if not line.done and line.phase == "spline" and self.base in st.values:
                gain = min(0.0, float(np.min(line.spline.estimates())) - st.mean(self.base))
            keyed.append((gain, k, line))
        keyed.sort(key=lambda x: (x[0], x[1]))
        return [line for _, _, line in keyed]

    def _offers(self, lines: list[Line]) -> list[list[Point]]:
        """Per line: its spread points (interior ones first), or the d-Spline's next point."""
        st = self.store
        out = []
        for line in lines:
            wanted = line.wanted(st)
            if line.in_flight(st):
                wanted = []
            else:
                wanted = wanted[:1]
            out.append(wanted)
        return out

    def _parallel_offers(self, lines: list[Line]) -> list[list[Point]]:
        """Per d-Spline line: its next points beyond the first, up to line_parallel in flight."""
        out = []
        for line in lines:
            if line.done:
                out.append([])
                continue
            wanted = line.wanted(self.store)
            if line.phase == "init":     # spread points come one at a time (see _rest)
                out.append([])
                continue
            own = line.in_flight(self.store)
            first = 1 if own == 0 else 0
            out.append(wanted[first:max(first, self.line_parallel - own)])
        return out

    def _slides_open(self) -> bool:
        """Whether the lines a short axis opens (grid.py) get slots: once the base stood
        still for half a stall, or its own lines are done. Before that their fits' picks
        crowd out the base's neighbours and models where the base's own lines lead down (on
        3 x 3 x 3 x 40, Styblinski-Tang and Rastrigin took 0.3-0.4 h longer in the median)."""
        if not self.slides:
            return False
        return self.store.results - self.moved_at >= self.stall // 2 or \
            all(line.done for line in self.lines)

    def _settled(self) -> bool:
        """Every line of the base (its slides too) is done and none of their points is in
        flight."""
        st = self.store
        lines = self.lines + self.slides
        return all(line.done for line in lines) and \
            not any(p in st.pending for line in lines for p in line.points)

    def _rest(self, lines: list[Line]) -> list[list[Point]]:
        """Per line in its start phase: the spread points beyond the one it has going."""
        out = []
        for line in lines:
            if line.done or line.phase != "init":
                out.append([])
                continue
            wanted = self._offers([line])[0]
            rest = line.wanted(self.store)
            out.append([p for p in rest if p not in wanted])
        return out

    def _gate(self) -> bool:
        """Repeats of the base are what the search waits for (repeats > 1, lines all done)."""
        st = self.store
        return (self.repeats > 1 and self.base in st.values
                and st.count(self.base) + st.pending.get(self.base, 0) < self.repeats
                and all(line.done for line in self.lines + self.slides))

    # ---- asking ---------------------------------------------------------------------------
    def work(self, n: int, idle: bool = True) -> list[tuple[Point, dict[str, Any]]]:
        """Up to n (point, info) in priority order; reads the state, changes nothing.
        ``idle``: slots nothing else wants go to the Parzen model (``_idle_picks``)."""
        st = self.store
        out: list[tuple[Point, dict[str, Any]]] = []
        chosen: set[Point] = set()
        extra: dict[Point, int] = {}
        info0 = {"move": self.moves}

        def full() -> bool:
            return len(out) >= n

        if self.screen is not None:     # points that passed a screen go on first
            for p, rung in self.screen.waiting[:n]:
                out.append((p, {**info0, "kind": "promote", "rung": rung}))

        def take(p: Point, info: dict[str, Any]) -> None:
            if not full() and not st.known(p) and p not in chosen:
                out.append((p, info))
                chosen.add(p)

        def repeat(p: Point, upto: int) -> None:
            if p in st.failed and p not in st.values:   # failed, never measured: not again
                return
            have = st.count(p) + st.pending.get(p, 0) + extra.get(p, 0) + (p in chosen)
            while not full() and have < upto:
                out.append((p, {**info0, "kind": "repeat"}))
                extra[p] = extra.get(p, 0) + 1
                have += 1

        def tier(lines: list[Line], offers: list[list[Point]], kind: str) -> None:
            owner: dict[Point, Line] = {}
            for line, offer in zip(lines, offers):
                for p in offer:
                    owner.setdefault(p, line)
            for p in interleave(offers):
                if full():
                    return
                line = owner[p]
                take(p, {**info0, "kind": kind, "level": line.level, "direction": line.text})

        def stages() -> Iterator[None]:
            """The work, most useful first; a batch that is full stops at the next yield
            (the later stages cost the most to work out)."""
            if self.state == "initial":
                for p in self._initial:
                    take(p, {"kind": "initial"})
                return
            if self.state != "search":
                return
            finalists = self._finalists()
            if finalists:      # the end of a trial budget under noise: confirm, not explore
                while not full():
                    p = min(finalists, key=lambda q: (st.count(q) + st.pending.get(q, 0)
                                                      + extra.get(q, 0), finalists.index(q)))
                    out.append((p, {**info0, "kind": "final"}))
                    extra[p] = extra.get(p, 0) + 1
                return
            take(self.base, {**info0, "kind": "base"})
            if self._checking() and (self._noisy() or not self._probed()):
                repeat(self.base, 2)       # the noise probe; when noisy, every base is verified
            for p in self._challenger_list():
                repeat(p, 2)
            if self._gate():
                repeat(self.base, self.repeats)
            for p in self._exploration():
                take(p, {**info0, "kind": "explore"})
            yield
            if self.promise:
                for p, line in self._promising():
                    take(p, {**info0, "kind": "predicted", "level": line.level,
                             "direction": line.text})
            yield
            if self.use_elite:
                for p in self._elite_picks():
                    take(p, {**info0, "kind": "elite"})
            if self.use_quadratic:
                for p in self._quadratic_picks():
                    take(p, {**info0, "kind": "quadratic"})
            yield
            if self.use_model:
                for p in self._model_picks():
                    take(p, {**info0, "kind": "model"})
            yield
            if self.use_parzen:
                for p in self._parzen_picks(n - len(out), chosen):
                    take(p, {**info0, "kind": "parzen"})
            yield
            if self.neighbours_first and self.base in st.values:
                owner: dict[Point, Line] = {}
                for line in self.lines:
                    for q in self.grid.neighbours(self.base, line.v):
                        if not st.known(q):
                            owner.setdefault(q, line)
                nbrs = list(owner)
                for q in self._by_quadratic(nbrs) if self.neighbour_order else nbrs:
                    take(q, {**info0, "kind": "neighbour", "level": owner[q].level,
                             "direction": owner[q].text})
            yield
            # the base's own lines first, its slides after them; the fillers below take
            # both, by the gain their fits predict
            ordered = self._line_order(self.lines + self.slides)
            own = [line for line in ordered if line.base == self.base]
            slides = [line for line in ordered if line.base != self.base]
            tier(own, self._offers(own), "line")
            yield
            if self.sweep:      # the whole of every axis line through the base
                for line in self.lines:
                    if line.level == 1 and not line.done:
                        for q in sorted(line.points,
                                        key=lambda q: abs(line.pos[q] - line.pos[self.base])):
                            take(q, {**info0, "kind": "sweep", "level": 1,
                                     "direction": line.text})
            yield
            tier(own, self._parallel_offers(own), "line")
            yield
            if slides and self._slides_open():
                tier(slides, self._offers(slides), "slide")
                tier(slides, self._parallel_offers(slides), "slide")
            yield
            if self.fill:
                tier(ordered, [line.uncertain(st) for line in ordered], "uncertain")
            yield
            if self.repeats > 1 and self.base in st.values:
                repeat(self.base, self.repeats)
            yield
            tier(ordered, self._rest(ordered), "line")
            yield
            if self.fill and self.old_lines:
                old = [line for line in self.old_lines if not line.done]
                tier(old, self._offers(old), "earlier")
                tier(old, self._parallel_offers(old), "earlier")

        for _ in stages():
            if full():
                break
        if idle and not full() and self.state == "search":   # (a final phase fills them all)
            for p in self._idle_picks(n - len(out), chosen):
                take(p, {**info0, "kind": "spare"})
        return out

    def _idle_picks(self, count: int, chosen: set[Point]) -> list[Point]:
        """Points for slots the base's own work leaves empty (``fill_idle``): the Parzen
        model's best picks, its l fitted to the plain best tenth (picks near the best
        points, as TPE's, not the spread-out ones its share uses to look for other basins),
        beyond its share and from the start. On a small or low-dimensional grid the lines
        through a base are soon all measured or in flight, and until their last points land
        (or the stall's restart) workers sat idle: a 30 x 30 Rosenbrock at 50 workers was
        handed nothing in most of 60 asks between its first good base and the restart.
        Only where the search may go on past its base's end (a budget: restarts); without
        one, the drain is the search's end."""
        if not (self.use_parzen and self.fill_idle) or self.restarts_left == 0 or count <= 0 \
                or self.base not in self.store.values:
            return []
        return self._parzen(count, chosen, salt=0x1D1E, spread=False)

    def propose_point(self, p: Point, info: dict[str, Any]) -> Suggestion:
        """A trial measuring ``p``: with screening, a new point starts at the bottom rung, a
        promoted one continues its run; a repeat, and (unless ``screen_predicted``) a point
        a line's fit predicts to beat the base, run the full length from scratch."""
        screen = self.screen
        if screen is None:
            return self.propose(p, **info)
        params = self.grid.params(p)
        if info["kind"] == "promote":
            rung = info.pop("rung")
            return self.suggestion(params, fidelity=screen.epochs_at(rung),
                                   parent=screen.chain[p][rung - 1], index=list(p), rung=rung,
                                   **info)
        full_length = ("repeat",) if self.screen_predicted else ("repeat", "predicted")
        if info["kind"] in full_length or self.store.known(p):
            return self.suggestion(params, fidelity=screen.fidelity.max, index=list(p), **info)
        return self.suggestion(params, fidelity=screen.epochs_at(0), index=list(p), rung=0,
                               **info)

    def adopted_point(self, s: Suggestion, p: Point) -> None:
        if self._known is not None:
            self._known[p] = True
        kind = s.info.get("kind", "")
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if s.parent is None:
            self.handed_out += 1
            self.parzen_adopted += kind == "parzen"
        if kind == "model":
            self.model_out.add(s.trial)
        elif kind == "elite":
            self.elite_out.add(s.trial)
        elif kind == "quadratic":
            self.quadratic_out.add(s.trial)
        screen = self.screen
        if screen is None:
            self.store.start(s.trial, p)
            return
        rungs = screen.fidelity.rungs
        rung = rungs.index(s.fidelity) if s.fidelity in rungs else screen.top
        if s.parent is not None and s.parent in screen.trial_rung:   # a screened point goes on
            if (p, rung) in screen.waiting:
                screen.waiting.remove((p, rung))
            screen.started(s.trial, p, rung)
            self.store.continued(s.trial, p)
            return
        if s.fidelity == screen.fidelity.max and s.info.get("rung") is None:
            screen.started_full()
        else:
            screen.started(s.trial, p, rung)
        self.store.start(s.trial, p)

    # ---- telling --------------------------------------------------------------------------
    def tell(self, result: Result) -> None:
        judged = not (self.screen is not None and self.screen.is_screen(result.trial))
        if result.trial in self.model_out:
            self.model_out.discard(result.trial)
            if judged:
                self.model_misses = self._judge_pick(result, self.model_misses)
        if result.trial in self.elite_out:
            self.elite_out.discard(result.trial)
            if judged:
                self.elite_misses = self._judge_pick(result, self.elite_misses)
        if result.cost_s > 0:                  # for a compute budget's final phase
            self.spent_s += result.cost_s
            self.costed += 1
        p = self.store.trial_point.get(result.trial)
        if p is not None:       # lazy lines through p read the store before p's result
            for line in self._lines_at(p):
                line.build()
            for key in [key for key, (pos, _) in self._lent.items() if p in pos]:
                del self._lent[key]
        quadratic, moves = result.trial in self.quadratic_out, self.moves
        self.quadratic_out.discard(result.trial)
        if self.screen is not None and self.screen.is_screen(result.trial) and result.ok \
                and math.isfinite(result.loss):
            self._screened(result)
        else:
            super().tell(result)
        if quadratic and self.moves == moves:      # a pick that did not move the base
            self.quadratic_misses += 1

    def _judge_pick(self, result: Result, misses: int) -> int:
        """A global model's misses in a row (the additive model's, the best-points
        quadratic's), after one more of its picks came back. The additive model has no
        interactions: where the axes interact (an oblique valley, a rotated landscape) its
        combinations keep missing, and at every move of the base its picks, which go before
        the neighbour checks, took the few slots just freed (Zakharov: 60 of 197 trials, 2
        of them moves); the best-points quadratic misses where the best points straddle
        basins. After ``MODEL_PATIENCE`` misses in a row a model keeps one pick in flight
        until one beats the base again (or a restart begins a new region). A pick beats the
        base when its value is below the base's mean; it misses when it is worse by more
        than the noise (``noise_margin`` standard errors, under noise); one within the noise
        says neither. A short run of a screened pick is not judged: it is no full-length
        value."""
        st = self.store
        if self.base not in st.values:
            return misses
        ok = result.ok and result.loss is not None and math.isfinite(result.loss)
        mean = st.mean(self.base)
        if ok and result.loss < mean:
            return 0
        se = st.sigma() * (1.0 + 1.0 / st.count(self.base)) ** 0.5 if self._noisy() else 0.0
        if not ok or result.loss > mean + self.noise_margin * se:
            return misses + 1
        return misses

    def told(self, p: Point, result: Result) -> None:
        if result.ok and math.isfinite(result.loss):
            self.model.add(p, float(result.loss))
            self.quadratic.set(p, self.store.mean(p))
            if self._late_find(p):
                self.store.admit(p)
        if self.done:
            # a filler result that arrives after the end still counts for the reported setting
            if self.repeats == 1 and not self._noisy() and self._beats_base(p):
                self.base = p
            return
        self.observe(self._lines_at(p), p, result)
        self._advance(result.trial)

    def _late_find(self, p: Point) -> bool:
        """Whether ``p``, handed out before the last restart and measured after it, joins
        the new region: only as a new best overall (its first value below every value
        measured before) and off the boxes around the earlier regions' bases. Such a point
        was a global model's pick, a find of neither valley; a new best beside an old base
        is that valley's own, which the restart left (Schaffer's rings: a neighbour of the
        first region's base, better by 1%, pulled the second region back onto its ring).
        A 3 x 3 x 3 x 40 discus's spare pick came back at a quarter of the best base's
        value and was ignored while the new region went on from a worse point."""
        st = self.store
        if not self.restarts or st.in_region(p) or st.count(p) != 1 or st.best() != p:
            return False
        return all(max(abs(a - b) for a, b in zip(p, base)) >= 2
                   for base in self.bases[:self.region_bases])

    def _screened(self, result: Result) -> None:
        """A short run's result: on to the next rung, or out (measured, no value)."""
        p = self.store.trial_point[result.trial]
        if self.screen.judge(result.trial, p, float(result.loss), self.base) or self.done:
            return
        self.store.screen_out(p)
        self.observe(self._lines_at(p), p, Result(result.trial, "failed", None))
        self._advance(result.trial)

    def _advance(self, trial: int) -> None:
        st = self.store
        if self.state == "initial":
            if any(not st.measured(p) for p in self._initial):
                return
            # all of them failed: search from the first (its neighbours and lines) all the
            # same; whether failures end the study is the driver's call (max_failures)
            self._move(st.best() or self._initial[0])
        target = self._move_target()
        if target is not None:
            self._move(target)
        stalled = self.restarts_left != 0 and st.results - self.moved_at >= self.stall \
            and not self._gate()
        if stalled or (self._settled() and not self._gate()
                       and not any(p in st.values for p in st.pending)   # no repeat in flight
                       and not self._current_work()):
            # a clean stall restarts elsewhere once level 3's oblique lines were searched:
            # more levels through a base that has not moved in ``stall`` results search the
            # same region again (the next level still comes where the last one added moved
            # the base: it found a way down that the lower ones did not)
            last_raise_idle = self.level == self.first_level or self.moves == self.moves_at_raise
            fresh = self._restart_point() if stalled and self.level >= RESTART_FROM_LEVEL \
                and last_raise_idle and not self._noisy() else None
            if fresh is None and self._raise_level():
                self.moved_at = st.results        # the new level's lines get their turn
                self.moves_at_raise = self.moves
                return
            if fresh is None and self.restarts_left != 0:
                fresh = self._restart_point()
            if fresh is None:
                self._finish(trial)
                return
            self.restarts += 1
            self.model_misses = self.elite_misses = 0
            if self.parzen_from is None:
                self.parzen_from = self.handed_out
            self.restarts_left -= 1 if self.restarts_left > 0 else 0
            self.store.new_region(fresh)
            self.region_bases = len(self.bases)
            self.level = self.first_level
            self._move(fresh)

    def _restart_point(self) -> Point | None:
        """Where a settled search starts again: the best measured point at least two steps
        (on some axis) from every base so far, i.e. outside the region already searched;
        when there is none, an unmeasured point drawn at random outside it."""
        if self._near is not None:         # the boxes around the bases, as a grid mask
            def outside(points: np.ndarray) -> np.ndarray:
                return ~self._near[tuple(points.T)]
        else:
            bases = np.asarray(self.bases)

            def outside(points: np.ndarray) -> np.ndarray:
                return np.abs(points[:, None, :] - bases[None, :, :]).max(axis=2).min(axis=1) >= 2

        if self._near is not None:
            far = next((p for p in self.store.ranked() if not self._near[p]), None)
            if far is not None:
                return far
        else:          # the best few hundred only (a large grid's history can be long)
            ranked = list(itertools.islice(self.store.ranked(), RESTART_CANDIDATES))
            if ranked:
                hits = np.flatnonzero(outside(np.asarray(ranked)))
                if hits.size:
                    return ranked[int(hits[0])]
        rng = np.random.default_rng([self.settings.seed, 0x5EED, self.restarts])
        draws = np.stack([rng.integers(n, size=256) for n in self.grid.shape], axis=1)
        for i in np.flatnonzero(outside(draws)):
            p = tuple(int(x) for x in draws[i])
            if not self.store.known(p):
                return p
        return None

    def reported(self) -> Point | None:
        """The setting the search stands by: the best mean among its bases, counting only
        those measured as often as a setting must be (``repeats``; twice once the objective
        proved noisy) while any is; the current base when it is no worse."""
        st = self.store
        pool = [p for p in dict.fromkeys(self.bases + [self.base]) if p in st.values]
        need = self.repeats if self.repeats > 1 else (2 if self._noisy() else 1)
        pool = [p for p in pool if st.count(p) >= need] or pool
        if not pool:
            return self.base
        if self.repeats == 1 and self._noisy():
            return self._smoothed_choice(pool)
        return min(pool, key=lambda p: (st.mean(p), p != self.base, st.first_seen[p]))

    def _finalists(self) -> list[Point]:
        """Under noise, once no more than a tenth of the budget is left to ask (at most
        2 x max_concurrent trials: beyond, more measurements of five points tell little
        more): the few best candidates for the reported setting (by the same judgement as
        ``reported``), which those trials measure again instead of exploring. A setting
        picked among many twice-measured points is the luckiest of them; more measurements
        of the few best tell them apart (the AT study's second aim: a stable setting). At 10%
        noise a finalist gets four to six measurements, too few to tell apart values a third
        of the noise's spread apart; the race gives the last of them to the two best (levy,
        20 seeds: 0.0076 -> 0.0067)."""
        if self.repeats > 1 or not self._noisy():
            return []
        left = self._trials_left()
        if left is None:
            return []
        final = self._final_trials(left[1])
        if left[0] > final:
            return []
        # a race: the last half of the phase measures the best three, its last quarter the
        # best two, so the trials that decide go to the candidates still in contention
        keep = FINALISTS if left[0] > final // 2 else (3 if left[0] > final // 4 else 2)
        st = self.store
        key = (st.results, keep)    # results change the ranking, asks the stage of the race
        if self._finalists_cache is not None and self._finalists_cache[0] == key:
            return self._finalists_cache[1]
        pool = [p for p in self.bases if p in st.values]
        judged = self._judged(pool + list(itertools.islice(st.ranked(), FINALISTS)))
        best = sorted(judged, key=lambda p: (judged[p], st.first_seen[p]))[:keep]
        self._finalists_cache = (key, best)
        return best

    def _trials_left(self) -> tuple[int, int] | None:
        """(trials still to be started, the whole budget in trials) under ``max_trials`` or
        ``max_compute_s``, whichever ends first; None without a budget. A compute budget is
        counted in trials of the mean cost so far (the results' ``cost_s``; the trials in
        flight will spend theirs too), once a result has reported one."""
        found = []
        budget = self.settings.max_trials
        if budget is not None:
            found.append((budget - self.next_trial, budget))
        seconds = self.settings.max_compute_s
        if seconds is not None and self.costed:
            mean = self.spent_s / self.costed
            in_flight = sum(self.store.pending.values())
            found.append((int((seconds - self.spent_s) / mean) - in_flight, int(seconds / mean)))
        return min(found) if found else None

    def _judged(self, points: list[Point]) -> dict[Point, float]:
        """``points`` and the best few measured at least twice (by mean), each valued by its
        own mean and its neighbours' quadratic together (quadratic.py). The twice-measured
        are kept few: each is judged with a least-squares fit, and with many parameters one
        fit is a solve of hundreds of unknowns."""
        st = self.store
        twice = []
        for p in itertools.islice(st.ranked(), 20 * CANDIDATES):
            if st.count(p) >= 2:
                twice.append(p)
                if len(twice) == CANDIDATES:
                    break
        sigma = st.sigma()
        return {p: self.quadratic.smoothed(p, st.mean(p), st.count(p), sigma)
                for p in dict.fromkeys(points + twice)}

    def _final_trials(self, budget: int) -> int:
        # a tenth, not a wave of workers: at 50 workers and 363 trials a wave is 14% of the
        # budget, taken from the search for re-measuring points that are rarely closer
        return max(1, min(budget // 10, 2 * self.settings.workers))

    def _smoothed_choice(self, bases: list[Point]) -> Point:
        """Under noise: of the bases and the best points measured twice, the lowest value as
        judged by its own mean and its neighbours' quadratic together (quadratic.py)."""
        st = self.store
        key = (st.results, tuple(bases))
        if self._reported_cache is None or self._reported_cache[0] != key:
            judged = self._judged(bases)
            best = min(judged, key=lambda p: (judged[p], p != self.base, st.first_seen[p]))
            self._reported_cache = (key, best)
        return self._reported_cache[1]

    def _current_work(self) -> bool:
        """Is there work for the base's own lines (not filler from earlier bases)?"""
        saved, self.old_lines = self.old_lines, []
        try:
            return bool(self.work(1, idle=False))
        finally:
            self.old_lines = saved

    def _finish(self, trial: int) -> None:
        self.lines_searched += len(self.lines) + len(self.slides)
        st = self.store
        if self.repeats > 1:
            pool = [p for p in st.values if st.count(p) >= self.repeats]
            if pool:
                self.base = min(pool, key=lambda p: (st.mean(p), st.first_seen[p]))
        self.stop(f"no improvement after {self.moves} moves", trial)

    # ---- report ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        out = self.base_summary()
        out.update({"rounds": self.moves + 1, "lines_searched": self.lines_searched,
                    "restarts": self.restarts,
                    "noise_sigma": self.store.sigma(), "noisy": self._noisy(),
                    "repeats": self.repeats,
                    "work": dict(sorted(self.kinds.items()))})
        if self.screen is not None:
            out["screening"] = self.screen.summary()
        return out
