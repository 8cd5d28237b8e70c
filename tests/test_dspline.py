import numpy as np
import pytest

from autotune.dspline import DSpline, initial_positions


def fitted(n, data, alpha=0.1):
    s = DSpline(n, alpha)
    for pos, value in data:
        s.add(pos, value)
    return s


def test_initial_positions_spread_over_the_line():
    assert initial_positions(11) == [0, 3, 7, 10]
    assert initial_positions(10) == [0, 3, 6, 9]
    assert initial_positions(3) == [0, 1, 2]
    assert initial_positions(2) == [0, 1]
    assert initial_positions(1) == [0]


def test_fine_grid_has_two_extra_points_and_margins():
    s = DSpline(11)
    assert s.size == 10 * 3 + 1 + 2 * 3
    assert list(s._index[:2]) == [3, 6]


def test_fit_follows_a_parabola_and_finds_its_minimum():
    f = lambda x: (x - 6.0) ** 2
    s = fitted(11, [(p, f(p)) for p in (0, 3, 5, 7, 10)])
    est = s.estimates()
    assert s.best_position() == 6
    assert np.all(np.abs(est[[0, 3, 5, 7, 10]] - [f(p) for p in (0, 3, 5, 7, 10)]) < 0.5)
    # the next point is where the estimate lies below the best measured value
    assert s.next_point() == 6


def test_ranking_tiers_below_best_then_above_worst_then_bend():
    f = lambda x: (x - 6.3) ** 2
    s = fitted(11, [(p, f(p)) for p in (0, 3, 5, 7, 10)])
    order = s.ranking()
    est = s.estimates()
    assert sorted(order) == [1, 2, 4, 6, 8, 9]
    best = min(f(p) for p in (0, 3, 5, 7, 10))
    below = [p for p in order if est[p] < best]
    assert below and order[:len(below)] == sorted(below, key=lambda p: est[p])
    assert order[0] == 6
    rest = order[len(below):]
    bend = s.second_differences()
    assert all(bend[a] >= bend[b] for a, b in zip(rest, rest[1:]))
    # a curve estimated above the worst measured comes before the bend tier
    t = fitted(11, [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)])
    top = t.ranking()
    assert top[0] == 10 and t.estimates()[10] > 3.0
    eligible = np.zeros(11, bool)
    eligible[[1, 9]] = True
    assert set(s.ranking(eligible)) == {1, 9}


def test_repeats_are_averaged():
    a = fitted(5, [(0, 1.0), (2, 3.0), (2, 5.0), (4, 1.0)])
    b = fitted(5, [(0, 1.0), (2, 4.0), (4, 1.0)])
    assert a.means()[2] == pytest.approx(4.0)
    assert a.estimates()[2] == pytest.approx(4.0, abs=0.3)
    assert a.noise() == pytest.approx(np.std([3.0, 5.0], ddof=1))
    assert abs(a.estimates()[2] - b.estimates()[2]) < 0.3


def test_single_point_and_empty_fit_are_defined():
    s = DSpline(7)
    assert s.best_position() is None
    assert s.ranking() == list(range(7))
    s.add(3, 2.0)
    assert np.allclose(s.estimates(), 2.0, atol=1e-6)
    assert len(s.ranking()) == 6


def test_uncertainty_grows_away_from_measurements():
    s = fitted(11, [(0, 1.0), (1, 0.8), (2, 0.9)])
    u = s.uncertainty(sigma=1.0)
    assert u[1] < u[5] < u[10]


def test_refit_is_cheap():
    import time
    s = DSpline(11)
    began = time.perf_counter()
    for i in range(200):
        s.add(i % 11, float(i % 7))
        s.estimates()
    assert time.perf_counter() - began < 1.0


def test_the_count_of_measured_positions_follows_the_adds():
    sp = DSpline(9, 0.1)
    rng = np.random.default_rng(4)
    for pos in rng.integers(0, 9, size=30):
        sp.add(int(pos), float(rng.normal()))
        assert sp.positions_measured == int(sp.measured.sum())
