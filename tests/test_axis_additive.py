"""The axis search's global additive model: exact on separable data, ordered proposals."""
import itertools

import numpy as np

from autotune.searchers.axis.additive import AdditiveModel


def all_points(shape):
    return itertools.product(*(range(n) for n in shape))


def test_a_separable_landscape_is_fitted_and_its_best_points_come_in_order():
    shape = (5, 7, 4)
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=n) for n in shape]
    value = lambda p: 3.0 + sum(e[i] for e, i in zip(parts, p))
    pts = list(all_points(shape))
    sample = [pts[i] for i in rng.choice(len(pts), size=60, replace=False)]
    model = AdditiveModel(shape, alpha=1e-6)
    assert model.fit(sample, [value(p) for p in sample])
    for p in pts:
        assert abs(model.predict(p) - value(p)) < 1e-3
    got = model.best(10, skip=lambda p: p in sample[:5])
    brute = sorted((value(p), p) for p in pts if p not in sample[:5])[:10]
    assert [p for _, p in got] == [p for _, p in brute]
    assert [v for v, _ in got] == sorted(v for v, _ in got)
    known = np.zeros(shape, dtype=bool)          # the whole-grid path agrees
    for p in sample[:5]:
        known[p] = True
    whole = model.best_on_grid(10, known)
    assert [p for _, p in whole] == [p for _, p in brute]


def test_too_little_data_gives_no_proposal():
    model = AdditiveModel((3, 3))
    assert not model.fit([(0, 0)], [1.0])
    assert model.best(3) == []


def test_a_fit_after_every_add_and_one_fit_after_all_agree_to_the_last_bit():
    # a live run fits after a few adds at a time, a resume once after thousands: the
    # searcher restored from the history must hold exactly the live run's model
    shape = (6, 9, 4)
    rng = np.random.default_rng(3)
    pts = [tuple(int(rng.integers(n)) for n in shape) for _ in range(500)]
    values = [float(v) for v in rng.normal(size=len(pts)) * 1e3 + 0.1]
    live, resumed = AdditiveModel(shape), AdditiveModel(shape)
    for i, (p, v) in enumerate(zip(pts, values)):
        live.add(p, v)
        resumed.add(p, v)
        if i % 37 in (0, 3, 5, 30):      # gaps of 2, 25 and 7 adds
            live.fit()
    assert live.fit() and resumed.fit()
    assert np.array_equal(live.xtx, resumed.xtx) and np.array_equal(live.xty, resumed.xty)
    assert all(np.array_equal(a, b) for a, b in zip(live.effects, resumed.effects))
    brute_xtx = np.zeros_like(live.xtx)
    for p in pts:
        cols = live.offsets + np.asarray(p)
        brute_xtx[np.ix_(cols, cols)] += 1.0
    assert np.array_equal(brute_xtx, live.xtx)
