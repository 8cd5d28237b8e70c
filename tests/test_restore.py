"""Searchers restored from the record (adopt + tell), never by re-running their asks."""
from __future__ import annotations

import json
import os

import pytest

from autotune.driver import Driver
from autotune.history import History
from autotune.restore import restore
from autotune.space import grid_index
from autotune.searchers import SEARCHERS
from autotune.study import parse_study

GRID = {"a": {"values": list(range(7))}, "b": {"values": list(range(6))},
        "c": {"values": [0.1, 0.2, 0.5, 1.0, 2.0]}}
MF = {"min": 1, "max": 9, "eta": 3}

# every registered searcher, with the options it needs
SETUPS = {
    "random": {},
    "grid": {},
    "axis": {},
    "axis-radial": {},
    "axis-s2018": {},
    "hyperband": {"fidelity": MF},
    "asha": {"fidelity": MF},
    "asha-bo": {"fidelity": MF, "min_points_in_model": 4},
    "optuna-tpe": {"n_startup_trials": 5},
    "optuna-cmaes": {"popsize": 4},
}


def bowl_study(algorithm: str, options: dict, *, workers: int = 6, trials: int = 60,
               seed: int = 1) -> dict:
    return {
        "name": "restore",
        "objective": {"entry": "tests.objectives:grid_bowl", "metric": "loss", "mode": "min"},
        "space": {**GRID, "noise": 0.05},
        "search": {"algorithm": algorithm, "seed": seed, "max_trials": trials, **options},
        "executor": {"kind": "simulated", "max_concurrent": workers},
    }


def run(directory, mapping: dict) -> History:
    Driver(parse_study(mapping), str(directory), progress=False).run()
    return load(directory)


def journal_events(directory) -> list[dict]:
    with open(os.path.join(str(directory), "history.jsonl")) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load(directory) -> History:
    history = History()
    for event in journal_events(directory):
        history.apply(event)
    return history


def recorded(event: dict) -> list[tuple]:
    return [(s["trial"], s["params"], s.get("fidelity"), s.get("parent")) for s in event["trials"]]


def test_every_searcher_is_covered():
    assert set(SETUPS) >= set(SEARCHERS), "a new searcher needs a restore test"


@pytest.mark.parametrize("algorithm", sorted(SETUPS))
def test_a_restored_searcher_asks_what_the_live_one_asked(tmp_path, algorithm):
    """At every ask of a finished run, a searcher restored from the history before that ask
    proposes exactly what the live searcher did: restore reaches the live state."""
    mapping = bowl_study(algorithm, SETUPS[algorithm])
    run(tmp_path, mapping)
    study = parse_study(mapping)
    history = History()
    asks = 0
    for event in journal_events(tmp_path):
        if event["e"] == "ask":
            searcher = restore(study.make_searcher(), history)
            got = searcher.ask(event["n"])
            assert [(s.trial, s.params, s.fidelity, s.parent) for s in got] == recorded(event)
            asks += 1
        history.apply(event)
    assert asks >= 3


@pytest.mark.parametrize("algorithm", ["random", "asha", "axis"])
def test_a_history_from_another_version_of_the_searcher_resumes_from_what_it_records(
        tmp_path, algorithm):
    """An older searcher proposed other points than today's would: the resumed search takes
    the recorded trials as they are (ids, configurations, lineage), with no divergence."""
    mapping = bowl_study(algorithm, SETUPS[algorithm], trials=30)
    run(tmp_path, mapping)
    path = os.path.join(str(tmp_path), "history.jsonl")
    lines, params = [], {}
    for event in journal_events(tmp_path):    # what an older version might have proposed
        if event["e"] == "ask":
            for s in event["trials"]:
                if s.get("parent") is None:
                    s["params"]["a"] = (s["params"]["a"] + 3) % 7
                    s.get("info", {}).pop("index", None)
                else:                         # a promotion continues its configuration
                    s["params"] = dict(params[s["parent"]])
                params[s["trial"]] = s["params"]
        lines.append(json.dumps(event))
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    before = load(tmp_path)
    after = run(tmp_path, {**mapping, "search": {**mapping["search"], "max_trials": 60}})
    assert len(after.trials) == 60
    for t, rec in before.trials.items():            # the old trials are untouched
        assert after.trials[t].params == rec.params and after.trials[t].value == rec.value
    for rec in after.trials.values():               # a new promotion continues its own parent
        if rec.trial not in before.trials and rec.parent is not None:
            assert rec.params == after.trials[rec.parent].params
    searcher = restore(parse_study(mapping).make_searcher(), after)
    assert searcher.next_trial == 60


def test_a_different_max_concurrent_on_resume_keeps_the_recorded_rounds(tmp_path):
    """axis-radial sizes its batches by max_concurrent: resuming with another value goes on
    from the recorded trials instead of diverging from trial 0."""
    mapping = bowl_study("axis-radial", {}, workers=8, trials=40)
    first = run(tmp_path, mapping)
    mapping["executor"]["max_concurrent"] = 3
    mapping["search"]["max_trials"] = 90
    after = run(tmp_path, mapping)
    for t, rec in first.trials.items():
        assert after.trials[t].params == rec.params
    points = [tuple(sorted(r.params.items())) for r in after.trials.values()]
    assert len(points) == len(set(points)), "a point was measured twice"
    assert max(r.trial for r in after.trials.values()) == len(after.trials) - 1


def test_lost_ids_are_never_handed_out_again():
    """The next id comes from the history, not from the searcher's own count."""
    mapping = bowl_study("random", {})
    history = History()
    history.apply({"e": "study", "identity": {"mode": "min"}, "t0": 0.0})
    history.apply({"e": "ask", "t": 0, "n": 1, "trials": [{"trial": 7, "params": {"a": 1}}]})
    searcher = restore(parse_study(mapping).make_searcher(), history)
    assert searcher.next_trial == 8
    assert [s.trial for s in searcher.ask(2)] == [8, 9]


@pytest.mark.parametrize("algorithm", ["random", "grid", "axis", "asha-bo", "optuna-tpe"])
def test_grid_values_another_machine_computed_restore_the_same_search(tmp_path, algorithm):
    """A steps: grid's values as another machine's numpy (or an older autotune, before they
    were rounded) recorded them, a few units in the last digits off: the restored searcher
    places every trial on its grid point and proposes what it would have proposed."""
    if algorithm.startswith("optuna"):
        pytest.importorskip("optuna")
    mapping = bowl_study(algorithm, SETUPS[algorithm], trials=30)
    mapping["space"] = {**mapping["space"],
                        "c": {"low": 1e-5, "high": 3e-3, "log": True, "steps": 5}}
    run(tmp_path, mapping)
    study = parse_study(mapping)
    grid = study.space.params["c"].grid()
    here, there = History(), History()
    for event in journal_events(tmp_path):
        here.apply(event)
        if event["e"] == "ask":
            event = json.loads(json.dumps(event))
            for s in event["trials"]:
                s["params"]["c"] *= 1 + 4e-13
        there.apply(event)
    assert all(r.params["c"] not in grid for r in there.trials.values())

    def asked(history):
        got = restore(study.make_searcher(), history).ask(6)
        return [(s.trial, {**s.params, "c": grid_index(grid, s.params["c"])}, s.fidelity,
                 s.parent) for s in got]

    assert asked(here) and asked(there) == asked(here)
