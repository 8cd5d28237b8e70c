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
