"""The quadratic of the best points: where the good region bottoms out, and its picks."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from autotune.errors import StudyError
from autotune.searchers.axis.elite import BestPointsQuadratic
from autotune.searchers.axis.quadratic import LocalQuadratic
from autotune.searchers.axis.search import MODEL_PATIENCE
from tests.test_axis import budgeted, drive, make, watch_picks

SHAPE = (9, 11, 10)
LOW = np.array([3.0, 7.0, 4.0])


def rough_rotated_bowl(p) -> float:
    """A rotated bowl (valley along (2, 1, -1)) with a grid-rough floor: every point but the
    minimum carries a bump, so nothing near the bottom points the way down locally."""
    x = np.asarray(p, dtype=float) - LOW
    along = np.array([2.0, 1.0, -1.0]) / np.sqrt(6.0)
    bump = 0.0 if not x.any() else 3.0 * (np.sin(7.0 * float(np.dot(p, [1, 3, 5]))) + 1.0)
    return float(x @ x - 0.9 * (x @ along) ** 2) + bump


def test_fitted_to_the_best_points_it_names_the_bottom_they_surround():
    points = LocalQuadratic(SHAPE)
    grid = list(itertools.product(*map(range, SHAPE)))
    rng = np.random.default_rng(0)
    for i in rng.choice(len(grid), size=150, replace=False):
        p = grid[i]
        if p != tuple(int(v) for v in LOW):          # the minimum itself is not measured
            points.set(p, rough_rotated_bowl(p))
    ranked = BestPointsQuadratic(points, SHAPE).ranked(seed=0, known=None)
    assert ranked[0][0] == (3, 7, 4)
    assert [v for _, v in ranked] == sorted(v for _, v in ranked)
    known = np.zeros(SHAPE, dtype=bool)
    known[3, 7, 4] = True                            # a point handed out is not offered
    again = BestPointsQuadratic(points, SHAPE).ranked(seed=0, known=known)
    assert (3, 7, 4) not in [p for p, _ in again] and again


def test_too_few_points_fit_nothing():
    points = LocalQuadratic(SHAPE)
    for p in list(itertools.product(range(3), range(3), range(4)))[:30]:
        points.set(p, rough_rotated_bowl(p))
    assert BestPointsQuadratic(points, SHAPE).ranked(seed=0, known=None) == []   # 40 needed


def test_its_picks_stay_within_elite_in_flight():
    """It proposes, never more than ``elite_in_flight`` out at once (2 at 50 workers), one
    at a time after ten misses in a row, and nothing with ``elite: false``."""
    s = budgeted("rastrigin", instance=0)
    seen = watch_picks(s, "elite")
    drive(s, "rastrigin", instance=0, limit=600)
    assert seen["picks"] > 0 and seen["most"] == s.elite_in_flight == 2
    # in a state with two picks to make and none out (the first this trajectory reaches,
    # neighbours in level order), ten misses in a row leave one
    fresh = budgeted("rastrigin", instance=0, neighbour_order=False)
    tell, found = fresh.tell, []

    def told(result):
        tell(result)
        if not found and not fresh.elite_out and len(fresh._elite_picks()) == 2:
            misses, fresh.elite_misses = fresh.elite_misses, MODEL_PATIENCE
            found.append(len(fresh._elite_picks()))
            fresh.elite_misses = misses

    fresh.tell = told
    drive(fresh, "rastrigin", instance=0, limit=600)
    assert found == [1]
    off = budgeted("rastrigin", instance=0, elite=False)
    drive(off, "rastrigin", instance=0, limit=300)
    assert off.kinds.get("elite", 0) == 0


def noise_gate_log(s):
    """Wrap ``s.ask``: for every ask made once the noise showed, (elite picks it made,
    pooled noise sd, sd of the best points' means)."""
    ask, log = s.ask, []

    def logged(n):
        got = ask(n)
        if s._spread_seen():
            log.append((sum(g.info.get("kind") == "elite" for g in got), s.store.sigma(),
                        s.elite.spread()))
        return got

    s.ask = logged
    return log


def test_under_noise_it_proposes_only_while_the_best_points_differ_by_far_more():
    """Under noise the best points are partly the luckiest ones: it proposes while the
    noise's sd is under ELITE_NOISE times the sd of the best points' means (a small noise
    early in a search), never after, and never under a noise as large as their
    differences."""
    from autotune.searchers.axis.search import ELITE_NOISE
    small = make("axis", "bowl", instance=0, noise=0.01)
    log = noise_gate_log(small)
    drive(small, "bowl", instance=0, noise=0.01, limit=600)
    made = [(sigma, spread) for picks, sigma, spread in log if picks]
    assert made and all(sigma < ELITE_NOISE * spread for sigma, spread in made)
    assert any(spread is not None and sigma >= ELITE_NOISE * spread and not picks
               for picks, sigma, spread in log)      # closed late, as the search settles
    large = make("axis", "bowl", instance=0, noise=0.5)
    log = noise_gate_log(large)
    drive(large, "bowl", instance=0, noise=0.5, limit=400)
    assert log and sum(picks for picks, _, _ in log) == 0 and large.kinds.get("elite", 0) == 0


def test_elite_in_flight_must_be_a_positive_integer():
    with pytest.raises(StudyError, match="elite_in_flight"):
        budgeted("bowl", elite_in_flight=0)


def test_restore_with_its_picks_out_continues_as_the_live_search():
    """Its state (picks in flight, misses in a row) comes from adopt and tell alone: a
    searcher handed the record asks what the live one asks."""
    from tests.test_axis import replay
    calls = []
    live = budgeted("rastrigin", instance=0)
    drive(live, "rastrigin", instance=0, calls=calls, limit=250)
    assert live.kinds.get("elite", 0) > 0
    fresh = replay(budgeted("rastrigin", instance=0), calls)
    assert (fresh.elite_out, fresh.elite_misses) == (live.elite_out, live.elite_misses)
    assert fresh.summary() == live.summary()
    for n in (1, 9):
        assert [(x.trial, x.params, x.info) for x in fresh.ask(n)] == \
            [(x.trial, x.params, x.info) for x in live.ask(n)]
