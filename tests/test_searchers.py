import pytest

from autotune.errors import StudyError
from autotune.searchers import SEARCHERS, Result, SearchSettings
from autotune.space import parse_space


def settings(space, **kw):
    return SearchSettings(parse_space(space), **kw)


def test_random_is_seeded_and_numbers_trials():
    space = {"x": {"low": 0.0, "high": 1.0}, "c": {"values": [1, 2, 3]}, "k": 5}
    a = SEARCHERS["random"](settings(space, seed=3))
    b = SEARCHERS["random"](settings(space, seed=3))
    c = SEARCHERS["random"](settings(space, seed=4))
    sa, sb, sc = a.ask(5), b.ask(2) + b.ask(3), c.ask(5)
    assert [s.params for s in sa] == [s.params for s in sb]
    assert [s.params for s in sa] != [s.params for s in sc]
    assert [s.trial for s in sb] == [0, 1, 2, 3, 4]
    assert all(s.params["k"] == 5 for s in sa)


def test_grid_visits_every_point_once_first_axis_slowest():
    space = {"a": {"values": [1, 2]}, "b": {"values": ["x", "y", "z"]}, "w": 0.1}
    grid = SEARCHERS["grid"](settings(space))
    got = grid.ask(4) + grid.ask(4)
    assert [(s.params["a"], s.params["b"]) for s in got] == [
        (1, "x"), (1, "y"), (1, "z"), (2, "x"), (2, "y"), (2, "z")]
    assert grid.finished and grid.ask(3) == []
    grid.tell(Result(0, "ok", 1.0))


def test_grid_takes_ranges_with_steps_and_refuses_others():
    grid = SEARCHERS["grid"](settings({"lr": {"low": 1e-3, "high": 1e-1, "log": True, "steps": 3}}))
    assert [round(s.params["lr"], 6) for s in grid.ask(10)] == [0.001, 0.01, 0.1]
    with pytest.raises(StudyError, match="space.x: grid search needs a grid"):
        SEARCHERS["grid"](settings({"x": {"low": 0.0, "high": 1.0}}))


def test_random_with_a_fidelity_runs_every_draw_at_full_length():
    space = {"x": {"low": 0.0, "high": 1.0}}
    rnd = SEARCHERS["random"](settings(space, options={"fidelity": {"min": 1, "max": 27, "eta": 3}}))
    assert {s.fidelity for s in rnd.ask(5)} == {27}
    with pytest.raises(StudyError, match="search.fidelity.max: expected a positive integer"):
        SEARCHERS["random"](settings(space, options={"fidelity": {"min": 1, "max": "x"}}))
