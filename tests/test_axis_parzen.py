"""The global Parzen model's picks (autotune/searchers/axis/parzen.py) and their share."""
from __future__ import annotations

import numpy as np
import pytest

from autotune.bench import landscapes as bf
from autotune.errors import StudyError
from autotune.searchers import SEARCHERS, SearchSettings
from autotune.searchers.axis.parzen import ParzenPicks
from autotune.space import parse_space
from autotune.study import parse_study

from .test_axis import drive, study


def two_basins() -> tuple[np.ndarray, np.ndarray]:
    """A 21 x 21 grid measured the way a local search leaves it: densely around the basin it
    searched (values 0.10-0.30), three points in a second basin far off (0.35, 0.36, 0.37),
    and a scatter of poor points (1.0)."""
    rng = np.random.default_rng(3)
    dense = [(3 + dx, 3 + dy) for dx in range(-3, 4) for dy in range(-3, 4)]
    points = dense + [(16, 16), (17, 15), (15, 17)]
    values = [0.1 + 0.2 * (abs(dx) + abs(dy)) / 6 for dx in range(-3, 4) for dy in range(-3, 4)]
    values += [0.35, 0.36, 0.37]
    while len(points) < 100:
        p = tuple(int(x) for x in rng.integers(0, 21, size=2))
        if p not in points and min(abs(p[0] - q[0]) + abs(p[1] - q[1]) for q in points) > 2:
            points.append(p)
            values.append(1.0)
    return np.array(points), np.array(values)


def test_its_picks_reach_a_second_basin_that_the_local_search_left_alone(monkeypatch):
    """The best points of a local search all lie in the basin it searched; l is fitted to
    the best points spread out (two steps apart), so the picks go to the other basin too,
    where few points were measured. Fitted to the plain best tenth they all stay home."""
    points, values = two_basins()
    known = set(map(tuple, points.tolist()))

    def picks() -> list[tuple[int, ...]]:
        return ParzenPicks((21, 21)).picks(points, values, np.zeros((0, 2), dtype=int), 5,
                                           lambda p: p in known, np.random.default_rng(0))

    def near_second(ps) -> int:
        return sum(1 for p in ps if max(abs(p[0] - 16), abs(p[1] - 16)) <= 3)

    spread = picks()
    assert len(spread) == 5 and not known & set(spread)
    assert near_second(spread) >= 1
    monkeypatch.setattr(ParzenPicks, "_spread_out",
                        staticmethod(lambda pts, order, count, apart: order[:count]))
    assert near_second(picks()) == 0


def test_its_picks_are_new_points_and_the_same_from_the_same_draws():
    points, values = two_basins()
    pending = np.array([[10, 10], [11, 10]])
    known = set(map(tuple, points.tolist())) | {(10, 10), (11, 10)}
    model = ParzenPicks((21, 21))
    first = model.picks(points, values, pending, 7, lambda p: p in known,
                        np.random.default_rng(5))
    again = model.picks(points, values, pending, 7, lambda p: p in known,
                        np.random.default_rng(5))
    assert first == again and len(first) == len(set(first)) == 7
    assert not known & set(first)
    assert all(0 <= x < 21 for p in first for x in p)
    assert model.picks(points[:1], values[:1], pending, 3, lambda p: False,
                       np.random.default_rng(0)) == []        # one point: nothing to compare


def test_the_picks_begin_at_the_first_restart_and_keep_their_share():
    """None while the first local search runs; from its first restart on, a tenth of the new
    points handed out (``parzen_share``), and none at all with ``parzen: false``."""
    space = parse_space(bf.space("rosenbrock", 1))
    seen = []

    def run(**options):
        s = SEARCHERS["axis"](SearchSettings(space, 0, 50, 3000, options=options))
        ask = s.ask

        def watched(n):
            got = ask(n)
            seen.extend((s.restarts, sug.info.get("kind")) for sug in got)
            return got

        s.ask = watched
        drive(s, "rosenbrock", instance=1, limit=700)
        return s

    s = run()
    assert s.restarts >= 1
    assert not [k for r, k in seen if r == 0 and k == "parzen"]
    since = sum(1 for r, _ in seen if r >= 1)
    picks = sum(1 for _, k in seen if k == "parzen")
    assert picks == s.parzen_adopted
    assert abs(picks - s.parzen_share * since) <= 2 and s.parzen_share == 0.1
    seen.clear()
    run(parzen=False)
    assert not [k for _, k in seen if k == "parzen"]


def test_parzen_share_must_be_a_fraction():
    with pytest.raises(StudyError, match="search.parzen_share"):
        parse_study(study("axis", parzen_share=1.5))
    assert parse_study(study("axis", parzen_share=0.2, parzen=True)).algorithm == "axis"


def test_g_is_fitted_to_a_bounded_draw_of_the_rest(monkeypatch):
    """A long history costs a pick no more than a short one: g sees at most ``MOST_REST`` of
    the measured points (drawn at random), plus every point in flight."""
    from autotune.searchers.axis import parzen as module

    sizes = []
    real = module.KDE

    def counting(u, *args):
        sizes.append(len(u))
        return real(u, *args)

    monkeypatch.setattr(module, "KDE", counting)
    rng = np.random.default_rng(0)
    points = np.array([(i // 40, i % 40) for i in range(1600)])
    values = rng.random(len(points))
    pending = np.array([[0, 0], [1, 1], [2, 2]])
    ParzenPicks((40, 40)).picks(points, values, pending, 3, lambda p: False,
                                np.random.default_rng(1))
    assert sizes[0] <= module.MOST_GOOD and sizes[1] == module.MOST_REST + 3


def _valley(i: int, j: int) -> float:
    """Rosenbrock's curved valley over a 30 x 30 grid of indices."""
    x, y = 4 * i / 29 - 2, 4 * j / 29 - 1
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def _idle_run(budget, **options) -> tuple[int, float, int, bool]:
    """50 workers on the valley, trials of 0.8-1.2 h: (asks answered short, idle worker-hours
    before the budget was spent, picks of kind 'spare', whether the search ended itself)."""
    import heapq

    from autotune.searchers.base import Result

    space = parse_space({"a": {"values": list(range(30))}, "b": {"values": list(range(30))}})
    s = SEARCHERS["axis"](SearchSettings(space, 0, 50, budget, options=options))
    rng = np.random.default_rng(1)
    heap, clock, seq, told, short, spare, idle = [], 0.0, 0, 0, 0, 0, 0.0
    while told < (budget or 10**6):
        if not s.finished and len(heap) < 50:
            got = s.ask(50 - len(heap))
            short += len(got) < 50 - len(heap)
            for t in got:
                spare += t.info["kind"] == "spare"
                heapq.heappush(heap, (clock + 3600 * rng.uniform(0.8, 1.2), seq, t))
                seq += 1
        if not heap:
            break
        idle += (50 - len(heap)) * (heap[0][0] - clock) / 3600
        clock = heap[0][0]
        while heap and heap[0][0] <= clock:
            t = heapq.heappop(heap)[2]
            s.tell(Result(t.trial, "ok", _valley(t.params["a"], t.params["b"])))
            told += 1
    return short, idle, spare, s.finished


def test_slots_the_lines_leave_empty_get_spare_picks_where_a_budget_lets_it_go_on():
    """On a two-parameter grid the lines through a base are soon all measured or in flight:
    at 50 workers asks came back short 53 times and slots idled for 8.9 worker-hours of a
    400-trial budget. With a budget the slots get the Parzen model's picks (kind 'spare');
    ``fill_idle: false`` leaves them idle as before; without a budget there are none (the
    search ends when its base's lines do, and the drain is its end)."""
    short, idle, spare, _ = _idle_run(400)
    assert (short, idle) == (0, 0.0) and spare > 0
    short, idle, spare, _ = _idle_run(400, fill_idle=False)
    assert short > 10 and idle > 1.0 and spare == 0
    short, idle, spare, finished = _idle_run(None)
    assert spare == 0 and finished
