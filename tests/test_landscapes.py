"""The benchmark landscapes: finite, and each grid minimum exactly where it is promised."""
import itertools

import numpy as np
import pytest

from autotune.bench import landscapes as bf


@pytest.mark.parametrize("fn", sorted(bf.OPTIMA))
def test_the_grid_minimum_is_the_promised_point_and_values_are_finite(fn):
    for instance in range(4):
        table = bf._table(fn, instance)
        assert np.isfinite(table).all() and table.min() == 0.0 and table.max() == 1.0
        where = bf.optimum(fn, instance)
        assert bf.grid_minimum(fn, instance)[1] == where
        assert int((table <= 1e-12).sum()) == 1, "the minimum is a single grid point"
        assert bf.spread(fn, instance) > 0.05


def test_the_kinds_of_optimum_are_what_their_names_say():
    for instance in range(6):
        for fn, kind in bf.OPTIMA.items():
            at = bf.optimum(fn, instance)
            ends = [i in (0, n - 1) for i, n in zip(at, bf.SHAPE)]
            if kind == "corner":
                assert all(ends)
            elif kind == "edge":
                assert any(ends)
    # instances move the optimum, and landscapes do not all share one
    assert len({bf.optimum("ackley", i) for i in range(10)}) >= 8
    assert len({bf.optimum(fn, 0) for fn in bf.OPTIMA}) >= 8


def local_minima(table):
    padded = np.pad(table, 1, constant_values=np.inf)
    around = [padded[tuple(slice(1 + o, 1 + o + n) for o, n in zip(off, table.shape))]
              for off in itertools.product((-1, 0, 1), repeat=table.ndim) if any(off)]
    return int((table < np.min(around, axis=0)).sum())


def test_the_multimodal_ones_are_multimodal_and_the_terraces_have_ties():
    for fn in ("styblinski-tang", "ackley", "levy", "griewank", "schwefel", "rastrigin", "corner"):
        assert local_minima(bf._table(fn, 0)) >= 2, fn
    table = bf._table("plateaus", 0)
    assert len(np.unique(table)) < 20           # a few levels shared by thousands of points
