"""The axis search's first-wave exploration (``explore``): a Latin hypercube over the whole
grid measured beside the start's first line points."""
from __future__ import annotations

import numpy as np
import pytest

from autotune.bench import landscapes as bf
from autotune.errors import StudyError
from autotune.searchers import SEARCHERS, SearchSettings
from autotune.space import parse_space
from autotune.study import parse_study

from .test_axis import drive, study


def searcher(workers: int = 50, **options):
    space = parse_space(bf.space("bowl"))
    return SEARCHERS["axis"](SearchSettings(space, 0, workers, None, options=options))


def test_the_first_wave_holds_a_latin_hypercube_over_the_whole_grid():
    """A fifth of the first wave (10 at 50 workers) explores: every axis cut in as many
    strata as there are points, one point in each, so on every axis the points take nearly
    as many values as there are points, from both ends, and lie mostly off every line
    through the start."""
    s = searcher()
    wave = s.ask(50)
    explored = [s.point_of(sug) for sug in wave if sug.info.get("kind") == "explore"]
    assert len(explored) == 10 == s.explore
    start = s.base
    for axis, n in enumerate(s.grid.shape):
        values = {p[axis] for p in explored}
        assert len(values) >= 8 and min(values) <= 1 and max(values) >= n - 2, (axis, values)
    off_lines = [p for p in explored if sum(a != b for a, b in zip(p, start)) >= 2]
    assert len(off_lines) >= 8
    # nothing more of it later: the design is measured once, in the first wave
    later = s.ask(50)
    assert not [sug for sug in later if sug.info.get("kind") == "explore"]


def test_few_workers_explore_little_and_one_worker_not_at_all():
    """A sequential search has no slots to spare: its first points go to the descent."""
    assert searcher(workers=1).explore == 0
    assert searcher(workers=20).explore == 4
    wave = searcher(explore=0).ask(50)
    assert len(wave) == 50 and not [sug for sug in wave if sug.info.get("kind") == "explore"]


def test_a_deep_well_off_the_start_s_lines_is_found_through_the_design(monkeypatch):
    """A slope down to a corner, and one grid point far deeper at a design point that no
    line through the start passes: with the design measured the search stands on the well;
    without it, the local search ends at the corner it can see."""
    shape = bf.SHAPE
    grid_points = np.indices(shape).reshape(len(shape), -1).T
    s0 = searcher()
    start = s0.base
    design = s0._exploration()
    well = next(p for p in design if sum(a != b for a, b in zip(p, start)) >= 3)
    table = grid_points.sum(axis=1).astype(float).reshape(shape)   # down to index (0,0,0,0)
    table[well] = -100.0
    monkeypatch.setattr(bf, "true_value", lambda fn, instance, idx, shape=shape:
                        float(table[tuple(int(i) for i in idx)]))

    with_design = searcher()
    drive(with_design, "bowl")
    assert with_design.finished and with_design.reported() == well

    without = searcher(explore=0)
    drive(without, "bowl")
    assert without.finished and without.reported() == (0, 0, 0, 0)


@pytest.mark.parametrize("bad", [-1, "lots", 2.5, True])
def test_explore_must_be_a_count(bad):
    with pytest.raises(StudyError, match="search.explore"):
        parse_study(study("axis", explore=bad))
    assert parse_study(study("axis", explore=0)).algorithm == "axis"
