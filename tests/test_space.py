import numpy as np
import pytest

from autotune.errors import StudyError
from autotune.space import Choice, Fixed, Range, parse_space


def test_each_kind_parses():
    space = parse_space({"x": {"values": [0, 1, 2, 3]},
                         "lr": {"low": 1e-5, "high": 1e-1, "log": True},
                         "n": {"low": 1, "high": 8, "int": True},
                         "w1": 0.1})
    assert isinstance(space.params["x"], Choice)
    assert isinstance(space.params["lr"], Range) and space.params["lr"].log
    assert space.params["n"].integer
    assert isinstance(space.params["w1"], Fixed)
    assert [p.name for p in space.free] == ["x", "lr", "n"]
    assert space.fixed == {"w1": 0.1}


def test_samples_stay_in_range_and_have_the_right_type():
    space = parse_space({"lr": {"low": 1e-5, "high": 1e-1, "log": True},
                         "n": {"low": 1, "high": 8, "int": True},
                         "m": {"low": 2, "high": 64, "int": True, "log": True},
                         "c": {"values": ["a", "b"]}})
    rng = np.random.default_rng(0)
    draws = [space.sample(rng) for _ in range(2000)]
    assert all(1e-5 <= d["lr"] <= 1e-1 for d in draws)
    assert {d["n"] for d in draws} == set(range(1, 9))
    assert all(isinstance(d["m"], int) and 2 <= d["m"] <= 64 for d in draws)
    assert {d["c"] for d in draws} == {"a", "b"}
    # log-uniform: about as many draws below 1e-3 as above
    below = sum(d["lr"] < 1e-3 for d in draws)
    assert 800 < below < 1200


def test_steps_discretise_a_range():
    space = parse_space({"lr": {"low": 1e-4, "high": 1e-1, "log": True, "steps": 4},
                         "n": {"low": 1, "high": 3, "int": True, "steps": 5}})
    assert np.allclose(space.params["lr"].grid(), [1e-4, 1e-3, 1e-2, 1e-1])
    assert space.params["n"].grid() == (1, 2, 3)  # repeats after rounding are dropped


def test_axes_refuse_a_continuous_range():
    space = parse_space({"x": {"low": 0.0, "high": 1.0}})
    with pytest.raises(StudyError, match="space.x: grid search needs a grid"):
        space.axes("grid search")


def test_fingerprint_follows_the_space():
    a = parse_space({"x": {"values": [1, 2]}})
    assert a.fingerprint() == parse_space({"x": {"values": [1, 2]}}).fingerprint()
    assert a.fingerprint() != parse_space({"x": {"values": [1, 2, 3]}}).fingerprint()


@pytest.mark.parametrize("raw, message", [
    ({}, "space: empty"),
    ({"x": {"values": []}}, "space.x.values: empty list"),
    ({"x": {"values": [1, 1]}}, "space.x.values: repeated values"),
    ({"x": {"low": 2, "high": 1}}, r"space.x: low \(2\) must be below high \(1\)"),
    ({"x": {"low": 0, "high": 1, "log": True}}, "space.x: a log range must lie above 0"),
    ({"x": {"low": "a", "high": 1}}, "space.x.low: expected a number"),
    ({"x": {"low": 0}}, "space.x.high: missing"),
    ({"x": {"low": 0, "high": 1, "steps": 1}}, "space.x.steps: expected at least 2"),
    ({"x": {"low": 0, "high": 1, "bogus": 1}}, "space.x.bogus: unknown key"),
    ({"x": [1, 2]}, "space.x: a bare list is ambiguous"),
    ({"x": {"low": 0.5, "high": 3, "int": True}}, "space.x: an int range needs whole-number bounds"),
    ({"x": None}, "space.x: expected a number, string or boolean"),
])
def test_bad_spaces_name_the_key(raw, message):
    with pytest.raises(StudyError, match=message):
        parse_space(raw)
