"""The Optuna peers (optuna-tpe, optuna-cmaes) as ordinary searchers."""
import builtins
import subprocess
import sys

import pytest

from autotune.cli import main
from autotune.driver import Driver
from autotune.history import History
from autotune.journal import Journal
from autotune.searchers import SEARCHERS, Result, SearchSettings
from autotune.space import parse_space
from autotune.study import parse_study
from tests.helpers import study_dict, write_study

GRID = {"a": {"values": list(range(7))}, "b": {"values": list(range(6))},
        "c": {"values": [0.1, 0.2, 0.5, 1.0, 2.0]}}


def bowl(directory, algorithm, trials=90, workers=4, **options):
    study = parse_study({
        "name": "peer",
        "objective": {"entry": "tests.objectives:grid_bowl", "metric": "loss", "mode": "min"},
        "space": GRID,
        "search": {"algorithm": algorithm, "seed": 3, "max_trials": trials, **options},
        "executor": {"kind": "simulated", "max_concurrent": workers},
    })
    Driver(study, str(directory), progress=False).run()
    return History.load(Journal(str(directory / "history.jsonl")))


def test_tpe_finds_the_minimum_of_a_small_bowl_through_the_driver(tmp_path):
    history = bowl(tmp_path, "optuna-tpe")
    best = min((r for r in history.trials.values() if r.value is not None), key=lambda r: r.value)
    assert best.params == {"a": 4, "b": 2, "c": 1.0}
    assert len(history.trials) == 90


def test_cmaes_gets_to_the_bowl_s_floor_and_records_its_generations(tmp_path):
    history = bowl(tmp_path, "optuna-cmaes", trials=120, popsize=6)
    best = min(r.value for r in history.trials.values() if r.value is not None)
    assert best <= 1.0                     # one grid step from the minimum at most
    generations = {r.info.get("generation") for r in history.trials.values()}
    assert len(generations - {None}) >= 3  # the optimizer moved on, its state in the record
    assert any("cma:optimizer:0" in r.info.get("_optuna", {}) for r in history.trials.values())
    with open(tmp_path / "trajectory.csv") as fh:   # the pickled optimizer is no column
        header, *lines = fh.read().splitlines()
    assert "generation" in header.split(",") and "_optuna" not in header
    assert max(len(line) for line in lines) < 400


def test_a_cmaes_generation_of_one_is_refused_before_anything_is_written(tmp_path, capsys):
    """popsize 1 used to run one trial, then fail on an assertion inside the cmaes package."""
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        search={"algorithm": "optuna-cmaes", "popsize": 1, "max_trials": 12}))
    d = tmp_path / "d"
    assert main(["run", path, "--dir", str(d), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "search.popsize: expected at least 2" in err[0], err
    assert not d.exists()
    history = bowl(tmp_path / "two", "optuna-cmaes", trials=16, workers=2, popsize=2,
                   n_startup_trials=1)  # the smallest generation it takes: several of them
    assert all(r.status == "ok" for r in history.trials.values()) and len(history.trials) == 16
    assert len({r.info.get("generation") for r in history.trials.values()} - {None}) >= 3


def test_ranges_map_onto_optuna_distributions_and_come_back_inside_the_space():
    space = parse_space({"lr": {"low": 1e-5, "high": 1e-1, "log": True},
                         "layers": {"low": 1, "high": 6, "int": True},
                         "w": {"low": 0.0, "high": 1.0, "steps": 5}, "tag": "x"})
    for name in ("optuna-tpe", "optuna-cmaes"):
        s = SEARCHERS[name](SearchSettings(space, seed=0, workers=4))
        dists = s.encoding.distributions
        assert dists["lr"].log and type(dists["lr"]).__name__ == "FloatDistribution"
        assert type(dists["layers"]).__name__ == "IntDistribution"
        assert (dists["w"].low, dists["w"].high) == (0, 4)       # a grid is an index
        for _ in range(15):
            for sug in s.ask(2):
                p = sug.params
                assert list(p) == ["lr", "layers", "w", "tag"] and p["tag"] == "x"
                assert 1e-5 <= p["lr"] <= 1e-1 and isinstance(p["layers"], int)
                assert p["w"] in (0.0, 0.25, 0.5, 0.75, 1.0)
                s.tell(Result(sug.trial, "ok", (p["lr"] - 1e-3) ** 2 + p["w"]))


def test_failed_and_unknown_trials_are_told_without_harm():
    s = SEARCHERS["optuna-tpe"](SearchSettings(parse_space(GRID), seed=1, workers=2))
    first = s.ask(2)
    s.tell(Result(first[0].trial, "failed", None))
    s.tell(Result(first[1].trial, "ok", float("inf")))
    s.tell(Result(99, "ok", 1.0))          # never adopted: nothing to complete
    assert [x.trial for x in s.ask(1)] == [2]
    assert s.summary() == {"told": 2}


def hide_optuna(monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "optuna" or name.startswith("optuna."):
            raise ImportError("No module named 'optuna'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


@pytest.mark.parametrize("algorithm", ["optuna-tpe", "optuna-cmaes"])
def test_without_optuna_choosing_a_peer_is_one_line_naming_the_extra(tmp_path, capsys,
                                                                     monkeypatch, algorithm):
    path = str(tmp_path / "s.yaml")
    write_study(path, study_dict(search={"algorithm": algorithm}))
    hide_optuna(monkeypatch)
    out = tmp_path / "out"
    assert main(["run", path, "--dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{algorithm} needs Optuna" in err and ".[peers]" in err
    assert not out.exists()


def test_the_engine_imports_and_runs_without_optuna(tmp_path):
    code = ("import sys; sys.modules['optuna'] = None\n"
            "import autotune, autotune.driver, autotune.cli\n"
            "from autotune.searchers import SEARCHERS\n"
            "assert {'optuna-tpe', 'optuna-cmaes', 'axis'} <= set(SEARCHERS)\n"
            "assert 'optuna' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_no_random_start_is_a_valid_choice_for_tpe(tmp_path):
    """Optuna takes n_startup_trials: 0 (its model from the first trial); so do we."""
    history = bowl(tmp_path, "optuna-tpe", trials=12, n_startup_trials=0)
    assert len(history.trials) == 12 and all(r.status == "ok" for r in history.trials.values())
