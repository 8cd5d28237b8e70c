"""Multi-fidelity searchers under the driver: checkpoint continuation, replay, crash and resume."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from autotune.bench import learning_curves
from autotune.driver import Driver, SimulatedCrash
from autotune.restore import restore
from autotune.history import History
from autotune.journal import Journal
from autotune.study import parse_study

FID = {"min": 1, "max": 27, "eta": 3}
ALGORITHMS = ("hyperband", "asha", "asha-bo")


def mapping(algorithm, seed=0, budget=300, workers=6):
    search = {"seed": seed, "fidelity": FID, "max_epochs_total": budget}
    if algorithm == "asha-bo":
        search["min_points_in_model"] = 4
    return learning_curves.study_mapping("lc-branin", algorithm, search, workers=workers)


def run(directory, algorithm, stop_after=None, **kw):
    study = parse_study(mapping(algorithm, **kw))
    try:
        Driver(study, str(directory), progress=False, stop_after_events=stop_after).run()
    except SimulatedCrash:
        return False
    return True


def load(directory):
    return History.load(Journal(os.path.join(str(directory), "history.jsonl")))


def events(directory):
    with open(os.path.join(str(directory), "history.jsonl")) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def facts(history):
    """Everything a run decided and measured, trial by trial (times: see same_times)."""
    return {t: (r.params, r.fidelity, r.parent, r.info, r.status, r.value, r.cost_s,
                r.metrics.get("epochs_trained"))
            for t, r in sorted(history.trials.items())}


def same_times(a, b):
    """Virtual start and end times agree (the journal keeps 6 decimals; a resumed clock
    restarts from the rounded value, so allow a few microseconds)."""
    assert a.trials.keys() == b.trials.keys()
    for t in a.trials:
        assert a.trials[t].start_s == pytest.approx(b.trials[t].start_s, abs=1e-4)
        assert a.trials[t].end_s == pytest.approx(b.trials[t].end_s, abs=1e-4)


# ---- the objective's checkpoints --------------------------------------------------------------
def ctx(tmp_path, trial, epochs, resume_from=None, seed=None):
    d = tmp_path / f"t{trial}"
    d.mkdir(exist_ok=True)
    return SimpleNamespace(trial=trial, epochs=epochs, seed=seed if seed is not None else 100 + trial,
                           trial_dir=str(d), resume_from=resume_from,
                           checkpoint_path=str(d / "checkpoint.pt"))


def test_objective_continues_from_the_parent_checkpoint(tmp_path):
    p = {"x1": 3.0, "x2": 2.5}
    first = learning_curves.lc_branin(p, ctx(tmp_path, 0, 3))
    assert (first["epochs_trained"], first["resumed_from"]) == (3, 0)
    c1 = ctx(tmp_path, 0, 3).checkpoint_path
    second = learning_curves.lc_branin(p, ctx(tmp_path, 1, 9, resume_from=c1))
    assert (second["epochs_total"], second["epochs_trained"], second["resumed_from"]) == (9, 6, 3)
    assert second["cost_s"] == pytest.approx(6 * second["sec_per_epoch"])
    # the same value as one uninterrupted 9-epoch run of the same lineage (seed of the first)
    straight = learning_curves.lc_branin(p, ctx(tmp_path, 2, 9, seed=100))
    assert straight["loss"] == second["loss"] and straight["epochs_trained"] == 9
    third = learning_curves.lc_branin(p, ctx(tmp_path, 3, 27, resume_from=ctx(tmp_path, 1, 9).checkpoint_path))
    assert (third["epochs_trained"], third["resumed_from"]) == (18, 9)
    with pytest.raises(ValueError, match="another configuration"):
        learning_curves.lc_branin({"x1": 0.0, "x2": 2.5}, ctx(tmp_path, 4, 9, resume_from=c1))


def test_benchmark_optimum_is_a_lower_bound():
    bench = learning_curves.BENCHMARKS["lc-mlp"]
    best = learning_curves.optimum("lc-mlp", 81)
    near = {"lr": 10 ** -2.0, "width": 256, "dropout": 0.2, "optimizer": "adam", "batch": 64}
    assert best <= bench.curve(near, 81) < best + 0.05
    assert learning_curves.random_median("lc-mlp", 81, draws=500) > best + 0.2
    assert learning_curves.optimum("lc-branin", 27) < learning_curves.random_median("lc-branin", 27, draws=500)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_promoted_trials_resume_and_pay_only_the_extra_epochs(tmp_path, algorithm):
    assert run(tmp_path, algorithm)
    h = load(tmp_path)
    promoted = [r for r in h.trials.values() if r.parent is not None]
    assert promoted and all(r.status == "ok" for r in h.trials.values())
    for r in h.trials.values():
        parent = h.trials.get(r.parent)
        done = parent.fidelity if parent else 0
        assert r.metrics["resumed_from"] == done and r.metrics["epochs_total"] == r.fidelity
        assert r.metrics["epochs_trained"] == r.fidelity - done
        assert r.cost_s == pytest.approx(r.metrics["epochs_trained"] * r.metrics["sec_per_epoch"])
        if parent:
            assert parent.params == r.params and parent.end_s <= r.start_s
            assert r.info["rung"] == parent.info["rung"] + 1
    epochs = sum(r.metrics["epochs_trained"] for r in h.trials.values())
    assert 300 <= epochs < 300 + 27
    if algorithm == "hyperband":  # a stage never starts before the stage below has finished
        for r in promoted:
            same_stage_below = [x for x in h.trials.values() if x.info["bracket"] == r.info["bracket"]
                                and x.fidelity == h.trials[r.parent].fidelity]
            assert max(x.end_s for x in same_stage_below) <= r.start_s
    with open(tmp_path / "trajectory.csv") as fh:
        header = fh.readline().strip().split(",")
    assert {"epochs", "parent", "rung", "bracket"} <= set(header)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_runs_are_reproducible_and_replay_reaches_the_same_state(tmp_path, algorithm):
    assert run(tmp_path / "a", algorithm, seed=4, budget=150)
    assert run(tmp_path / "b", algorithm, seed=4, budget=150)
    assert run(tmp_path / "c", algorithm, seed=5, budget=150)
    a, b, c = load(tmp_path / "a"), load(tmp_path / "b"), load(tmp_path / "c")
    assert facts(a) == facts(b)
    same_times(a, b)
    assert [r.params for r in a.trials.values()] != [r.params for r in c.trials.values()]
    study = parse_study(mapping(algorithm, seed=4, budget=150))
    one, two = restore(study.make_searcher(), a), restore(study.make_searcher(), a)
    assert one.summary() == two.summary()
    assert one.summary()["epochs_committed"] == sum(r.metrics["epochs_trained"] for r in a.trials.values())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_resume_after_abrupt_stop_neither_loses_nor_repeats(tmp_path, algorithm):
    assert run(tmp_path / "whole", algorithm, seed=1, budget=150)
    whole = load(tmp_path / "whole")
    for k in (2, 3, 21, 50):  # stop after k journal appends: ask, submit, end batches
        d = tmp_path / f"stop{k}"
        assert not run(d, algorithm, stop_after=k, seed=1, budget=150)
        before = load(d)
        told = {t for t, r in before.trials.items() if r.done}
        assert run(d, algorithm, seed=1, budget=150)  # resume to the end
        after = load(d)
        assert facts(after) == facts(whole), f"stopped after {k} appends"
        same_times(after, whole)
        ends = [e for e in events(d) if e["e"] == "end"]
        per_trial = {}
        for e in ends:
            per_trial[e["trial"]] = per_trial.get(e["trial"], 0) + 1
        assert all(n == 1 for n in per_trial.values())  # no result recorded twice
        assert set(per_trial) == set(after.trials)       # none lost
        # trials told before the stop did not run again: one submit each
        submits = {}
        for e in events(d):
            if e["e"] == "submit":
                submits[e["trial"]] = submits.get(e["trial"], 0) + 1
        assert all(submits[t] == 1 for t in told)


def grid_mapping(algorithm, seed=1):
    """The benchmark on a 3 x 3 grid: its 150 epochs start more configurations than it holds."""
    out = mapping(algorithm, seed=seed, budget=150)
    out["space"] = {"x1": {"low": -5.0, "high": 10.0, "steps": 3},
                    "x2": {"low": 0.0, "high": 15.0, "steps": 3}}
    return out


def run_grid(directory, algorithm, stop_after=None):
    study = parse_study(grid_mapping(algorithm))
    try:
        Driver(study, str(directory), progress=False, stop_after_events=stop_after).run()
    except SimulatedCrash:
        return False
    return True


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_small_grid_is_started_round_by_round_and_resumes_the_same(tmp_path, algorithm):
    """On a grid, new configurations take every setting once before any twice, and a run
    stopped abruptly and resumed makes the same decisions as one never stopped."""
    assert run_grid(tmp_path / "whole", algorithm)
    whole = load(tmp_path / "whole")
    new = [tuple(r.params.values()) for _, r in sorted(whole.trials.items()) if r.parent is None]
    assert len(new) > 9 and len(set(new[:9])) == 9
    assert len(set(new[9:18])) == len(new[9:18])
    for k in (3, 21, 40):
        d = tmp_path / f"stop{k}"
        assert not run_grid(d, algorithm, stop_after=k)
        assert run_grid(d, algorithm)
        after = load(d)
        assert facts(after) == facts(whole), f"stopped after {k} appends"
        same_times(after, whole)


def test_a_run_whose_limits_cannot_reach_max_warns_at_its_start(tmp_path, capsys):
    from autotune.cli import main
    from tests.helpers import write_study

    search = {"seed": 0, "fidelity": FID, "max_trials": 12}
    path = write_study(str(tmp_path / "short.yaml"), learning_curves.study_mapping(
        "lc-branin", "asha", search, workers=2))
    assert main(["run", path, "--dir", str(tmp_path / "d"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert ("warning: max_trials (12) is fewer than the 40 trials asha needs to take a first "
            "configuration to max (27 epochs: 27 at 1, 9 at 3, 3 at 9, 1 at 27)") in err
    # at the end and in status: why there is no best (was: no best line and no word of why)
    short = "best loss: none yet, no trial ran the full 27 epochs (the best of 12 shorter: "
    assert short in out
    assert main(["status", str(tmp_path / "d")]) == 0
    assert short in capsys.readouterr().out


def _promotions_study(tmp_path, entry):
    from tests.helpers import write_study
    return write_study(str(tmp_path / "p.yaml"), {
        "name": "promote", "objective": {"entry": entry, "metric": "loss"},
        "space": {"x": {"values": [0, 1, 2, 3, 4, 5]}},
        "search": {"algorithm": "asha", "seed": 0, "max_trials": 9,
                   "fidelity": {"min": 1, "max": 3, "eta": 3}},
        "executor": {"kind": "inline"}})


@pytest.mark.parametrize("entry, warned", [("tests.objectives:by_epochs", True),
                                           ("tests.objectives:saves_checkpoint", False)])
def test_a_promotion_whose_parent_saved_no_checkpoint_is_warned_of_once(tmp_path, capsys,
                                                                         entry, warned):
    # was: resume_from silently empty, every promotion trained from scratch at full cost
    from autotune.cli import main
    d = tmp_path / "d"
    assert main(["run", _promotions_study(tmp_path, entry), "--dir", str(d), "--quiet"]) == 0
    err = capsys.readouterr().err
    promoted = [r for r in load(d).trials.values() if r.parent is not None]
    assert len(promoted) >= 2
    first = min(promoted, key=lambda r: r.trial)
    said = (f"warning: trial {first.trial} continues trial {first.parent}, which saved no "
            f"checkpoint at {d / 'trials' / str(first.parent) / 'checkpoint.pt'}: it trains "
            "from scratch")
    assert (said in err) == warned, err
    assert err.count("saved no checkpoint") == int(warned), err
