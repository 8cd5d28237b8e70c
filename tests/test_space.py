import os

import numpy as np
import pytest

from autotune.errors import StudyError
from autotune.space import Choice, Fixed, Range, grid_index, parse_space
from tests.helpers import REPO


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


def test_a_steps_grid_is_rounded_to_12_significant_digits_with_the_bounds_as_given():
    grid = Range("lr", 1e-6, 1.0, log=True, steps=13).grid()
    assert grid[:5] == (1e-06, 3.16227766017e-06, 1e-05, 3.16227766017e-05, 0.0001)
    assert grid[-1] == 1.0 and len(grid) == 13
    assert Range("lr", 1e-5, 3e-3, log=True, steps=7).grid() == (
        1e-05, 2.58734023677e-05, 6.69432950082e-05, 0.000173205080757, 0.000448140474656,
        0.0011594918818, 0.003)
    assert Range("m", 0.0, 1.0, steps=11).grid()[3] == 0.3  # not 0.30000000000000004
    low = 0.123456789012345  # bounds with more digits than the grid keeps: as given
    assert Range("m", low, 0.5, steps=3).grid() == (low, 0.311728394506, 0.5)
    fine = Range("m", 1.0, 1.0000000001, steps=5).grid()  # 12 digits would skew it: more
    assert fine == (1.0, 1.000000000025, 1.00000000005, 1.000000000075, 1.0000000001)


def test_a_steps_grid_is_the_same_whatever_simd_code_numpy_runs():
    """numpy's geomspace differs in the last bit between CPUs (AVX-512, AVX2 or neither):
    a history written on one machine must find its grid points on another."""
    import json
    import subprocess
    import sys

    from numpy._core import _multiarray_umath as umath  # numpy 2

    found = [f for f in getattr(umath, "__cpu_dispatch__", [])
             if getattr(umath, "__cpu_features__", {}).get(f)]
    if not found:
        pytest.skip("numpy runs no optional SIMD code on this CPU")
    rng = np.random.default_rng(0)
    cases = [(1e-6, 1.0, 13), (1e-5, 3e-3, 7), (0.1, 10.0, 21), (1e-3, 0.37, 17)] + [
        (float(f"{lo:.3g}"), float(f"{lo * 10 ** rng.uniform(0.5, 5):.2g}"), int(rng.integers(3, 40)))
        for lo in 10 ** rng.uniform(-8, 0, 200)]
    code = ("import json, sys\nfrom autotune.space import Range\n"
            "print(json.dumps([Range('p', lo, hi, True, False, n).grid() "
            "for lo, hi, n in json.loads(sys.argv[1])]))")
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(found)}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], env=env,
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        pytest.skip(f"numpy refuses NPY_DISABLE_CPU_FEATURES here: {proc.stderr[-200:]}")
    plain = json.loads(proc.stdout)
    here = [list(Range("p", lo, hi, True, False, n).grid()) for lo, hi, n in cases]
    assert here == plain


def test_grid_index_finds_recorded_values_as_another_machine_computed_them():
    grid = (1e-06, 3.16227766017e-06, 1e-05, 1.0)
    assert grid_index(grid, 9.999999999999999e-06) == 2   # numpy's value, one machine
    assert grid_index(grid, 3.1622776601683795e-06) == 1  # before grids were rounded
    assert grid_index(grid, 1) == 3 and grid_index(grid, 2e-05) is None
    assert grid_index((0, 1), True) is None and grid_index((True, False), 1) is None
    assert grid_index(("a", "b"), "b") == 1
    # the nearest, not the first within the tolerance
    assert grid_index((1.0, 1.0 + 4e-10, 1.0 + 8e-10), 1.0 + 5e-10) == 1


def test_axes_refuse_a_continuous_range():
    space = parse_space({"x": {"low": 0.0, "high": 1.0}})
    with pytest.raises(StudyError, match="space.x: grid search needs a grid"):
        space.axes("grid search")


def test_a_linear_int_range_is_the_grid_of_its_integers_up_to_a_hundred():
    space = parse_space({"n": {"low": 1, "high": 4, "int": True},
                         "m": {"low": -2, "high": 97, "int": True}})
    assert space.axes("grid search") == [("n", (1, 2, 3, 4)), ("m", tuple(range(-2, 98)))]
    with pytest.raises(StudyError, match=r"space.n: axis search needs a grid, and this int "
                                         r"range holds 101 integers .*give it 'steps:'"):
        parse_space({"n": {"low": 0, "high": 100, "int": True}}).axes("axis search")
    with pytest.raises(StudyError, match="space.b: grid search needs a grid; give the range"):
        parse_space({"b": {"low": 16, "high": 64, "int": True, "log": True}}).axes("grid search")


def test_grid_and_axis_run_over_an_int_range_without_steps(tmp_path):
    from autotune.driver import Driver
    from autotune.study import parse_study

    from .helpers import history, study_dict
    for algorithm in ("grid", "axis"):
        study = parse_study(study_dict(space={"x": {"low": 0, "high": 3, "int": True},
                                              "y": {"values": [0.0, 1.0]}},
                                       search={"algorithm": algorithm, "max_trials": 8}))
        d = str(tmp_path / algorithm)
        Driver(study, d, progress=False).run()
        xs = {rec.params["x"] for rec in history(d).trials.values()}
        assert xs <= {0, 1, 2, 3} and all(type(x) is int for x in xs)
        if algorithm == "grid":
            assert len(history(d).trials) == 8 and xs == {0, 1, 2, 3}


def test_fingerprint_follows_the_space():
    a = parse_space({"x": {"values": [1, 2]}})
    assert a.fingerprint() == parse_space({"x": {"values": [1, 2]}}).fingerprint()
    assert a.fingerprint() != parse_space({"x": {"values": [1, 2, 3]}}).fingerprint()


@pytest.mark.parametrize("raw, message", [
    ({}, "space: empty"),
    ({"x": {"values": []}}, "space.x.values: empty list"),
    ({"x": {"values": [1, 1]}}, "space.x.values: repeated values"),
    # one number twice: a grid search ran the setting twice
    ({"x": {"values": [1, 2, 1.0]}}, r"space.x.values: repeated values in \[1, 2, 1.0\] "
                                     r"\(1 and 1.0 are one number\)"),
    ({"x": {"values": [0.0, -0.0]}}, r"repeated values .*\(0.0 and -0.0 are one number\)"),
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


FLOAT_SEARCHES = [("random", {}), ("asha", {"fidelity": {"min": 1, "max": 9}}),
                  ("hyperband", {"fidelity": {"min": 1, "max": 9}}),
                  ("asha-bo", {"fidelity": {"min": 1, "max": 9}}), ("optuna-tpe", {}),
                  ("optuna-cmaes", {})]


@pytest.mark.parametrize("algorithm, options", FLOAT_SEARCHES, ids=[a for a, _ in FLOAT_SEARCHES])
@pytest.mark.parametrize("x", [{"low": -1e308, "high": 1e308},
                               {"low": -1.7e308, "high": 1.7e308, "steps": 5}],
                         ids=["range", "steps"])
def test_a_float_range_wider_than_the_largest_float_is_refused_naming_it(x, algorithm, options):
    """high - low overflowed: every searcher that draws floats (numpy's uniform, Optuna's,
    the TPE of asha-bo) raised OverflowError in the driver, a traceback after the study had
    started; a steps: grid's middle point came out as 5.8e+274, not 0, and its plots could
    not be drawn. Refused when the file is read, naming the parameter."""
    from autotune.study import parse_study
    from tests.helpers import study_dict

    if algorithm.startswith("optuna"):
        pytest.importorskip("optuna")
    data = study_dict(space={"x": x, "y": {"values": [0.0, 0.5]}},
                      search={"algorithm": algorithm, **options})
    with pytest.raises(StudyError) as err:
        parse_study(data)
    assert str(err.value).startswith(f"space.x: the range {x['low']:g}..{x['high']:g} is "
                                     "wider than the largest float (high - low overflows)")


def test_a_report_on_values_out_to_the_largest_float_draws_what_it_can(tmp_path):
    """A grid out to 1.7e308 (and a log grid out to 1e300) is searched, but matplotlib cannot
    lay out axes that wide: report died with a traceback ('Axis limits cannot be NaN or
    Inf', 'arange: cannot compute length'); a plot that cannot be drawn says so instead."""
    from autotune.driver import Driver
    from autotune.report import plot_all
    from autotune.study import parse_study
    from tests.helpers import history, study_dict

    d = str(tmp_path / "d")
    study = parse_study(study_dict(
        objective={"entry": "tests.objectives:noop"},
        space={"x": {"values": [-1.7e308, 0.0, 1.7e308]}, "y": {"values": [1e-300, 1.0, 1e300]}},
        search={"algorithm": "axis", "max_trials": 6}))
    Driver(study, d, progress=False).run()
    written = plot_all(history(d), str(tmp_path / "plots"))
    assert {os.path.basename(p) for p in written} >= {"loss_along_x.png", "loss_along_y.png",
                                                      "search_path.png"}
    assert all(os.path.getsize(p) > 1000 for p in written)


def test_a_steps_grid_through_zero_holds_zero_and_takes_the_old_near_zero_values():
    """The grid was computed from the bounds' binary values (0.1000000000000000055...): the
    middle of -0.1..0.1 came out as -2.11815834045e-36, of -1.3..11.7 in 40 steps as
    -1.11022302463e-16, and trials were given that instead of 0. Now 0; the values older
    versions recorded are taken as that point, so their histories resume on the same grid."""
    assert Range("x", -0.1, 0.1, steps=3).grid() == (-0.1, 0.0, 0.1)
    assert Range("x", -0.3, 0.3, steps=5).grid() == (-0.3, -0.15, 0.0, 0.15, 0.3)
    wide = Range("x", -1.3, 11.7, steps=41).grid()
    assert wide[4] == 0.0 and wide[:3] == (-1.3, -0.975, -0.65)
    assert grid_index(Range("x", -0.1, 0.1, steps=3).grid(), -2.11815834045e-36) == 1
    assert grid_index(wide, -1.11022302463e-16) == 4 and grid_index(wide, 2.2e-16) == 4
    assert grid_index(wide, 1e-3) is None and grid_index((0.0, 1e-20, 1.0), 1e-20) == 1
