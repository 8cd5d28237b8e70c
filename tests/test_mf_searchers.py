"""Multi-fidelity searchers: rung and bracket arithmetic, the promotion rules, options."""
from __future__ import annotations

import math

import numpy as np
import pytest

from autotune.errors import StudyError
from autotune.searchers import SEARCHERS, Result, SearchSettings
from autotune.searchers.hyperband import bracket_plan
from autotune.searchers.mf_common import rung_epochs
from autotune.space import parse_space
from autotune.study import parse_study
from autotune.tpe import Encoder, TPEModel

SPACE = {"x": {"low": -3.0, "high": 3.0}, "lr": {"low": 1e-4, "high": 1.0, "log": True},
         "n": {"low": 1, "high": 64, "int": True, "log": True}, "k": {"low": 0, "high": 4, "int": True},
         "opt": {"values": ["adam", "sgd", "rms"]}, "g": {"low": 0.0, "high": 1.0, "steps": 5},
         "fixed": 7}
F81 = {"min": 1, "max": 81, "eta": 3}


def make(algorithm, fidelity=F81, seed=0, space=SPACE, max_trials=None, **opts):
    opts = {"fidelity": fidelity, **opts}
    return SEARCHERS[algorithm](SearchSettings(parse_space(space), seed=seed, workers=4,
                                               max_trials=max_trials, options=opts))


def loss_of(s):
    """A deterministic loss that depends on the configuration and, less, on the epochs."""
    return (s.params["x"] - 1.0) ** 2 + 1.0 / s.fidelity


# ---- arithmetic -----------------------------------------------------------------------------
def test_rungs_are_anchored_at_max():
    assert rung_epochs(1, 81, 3.0) == (1, 3, 9, 27, 81)
    assert rung_epochs(1, 100, 3.0) == (1, 4, 11, 33, 100)
    assert rung_epochs(2, 16, 2.0) == (2, 4, 8, 16)
    assert rung_epochs(5, 5, 3.0) == (5,)


def test_hyperband_brackets_r81_eta3():
    plans = [bracket_plan(4, 3.0, s) for s in (4, 3, 2, 1, 0)]
    assert [p[0] for p in plans] == [81, 34, 15, 8, 5]
    assert plans == [[81, 27, 9, 3, 1], [34, 11, 3, 1], [15, 5, 1], [8, 2], [5]]
    hb = make("hyperband")
    first = hb.ask(1000)  # overlap: every bracket's first stage starts at once
    by_bracket = {}
    for s in first:
        by_bracket.setdefault(s.info["bracket"], []).append(s)
    assert [len(by_bracket[b]) for b in range(5)] == [81, 34, 15, 8, 5]
    assert [{s.fidelity for s in by_bracket[b]} for b in range(5)] == [{1}, {3}, {9}, {27}, {81}]
    assert all(s.parent is None for s in first)
    assert hb.ask(10) == [] and not hb.finished
    # run every stage to the end; record the stage sizes and resources
    stages: dict[tuple[int, int], list] = {}
    pending = list(first)
    while pending:
        for s in pending:
            stages.setdefault((s.info["bracket"], s.fidelity), []).append(s)
            hb.tell(Result(s.trial, "ok", loss_of(s)))
        pending = hb.ask(1000)
    assert hb.finished
    got = {b: [(e, len(v)) for (bb, e), v in sorted(stages.items()) if bb == b] for b in range(5)}
    assert got == {0: [(1, 81), (3, 27), (9, 9), (27, 3), (81, 1)],
                   1: [(3, 34), (9, 11), (27, 3), (81, 1)],
                   2: [(9, 15), (27, 5), (81, 1)],
                   3: [(27, 8), (81, 2)],
                   4: [(81, 5)]}
    # each promotion continues its configuration's trial one stage below, and takes the best
    trials = {s.trial: s for v in stages.values() for s in v}
    for (b, e), v in stages.items():
        for s in v:
            if s.parent is not None:
                parent = trials[s.parent]
                assert parent.params == s.params and parent.info["bracket"] == b
                assert parent.fidelity == e // 3
    stage0 = sorted(stages[(0, 1)], key=lambda s: (loss_of(s), s.info["config"]))
    assert {s.trial for s in stage0[:27]} == {s.parent for s in stages[(0, 3)]}
    epochs = sum(s.fidelity - (trials[s.parent].fidelity if s.parent is not None else 0)
                 for s in trials.values())
    assert hb.summary()["epochs_committed"] == epochs


def test_hyperband_waits_for_a_stage_and_an_empty_ask_changes_nothing():
    hb = make("hyperband", fidelity={"min": 1, "max": 9, "eta": 3}, overlap=False)
    a = hb.ask(5) + hb.ask(100)
    assert [s.fidelity for s in a] == [1] * 9  # bracket 0: 9 configs at 1 epoch
    for s in a[:-1]:
        hb.tell(Result(s.trial, "ok", float(s.trial)))
    assert hb.ask(4) == [] and hb.ask(4) == []  # waiting; no bracket starts (overlap off)
    hb.tell(Result(a[-1].trial, "failed", None))
    b = hb.ask(100)
    assert [s.parent for s in b] == [0, 1, 2] and {s.fidelity for s in b} == {3}
    assert [s.trial for s in b] == [9, 10, 11]  # the empty asks used no ids


def test_hyperband_failed_stage_closes_the_bracket():
    hb = make("hyperband", fidelity={"min": 1, "max": 3, "eta": 3}, brackets=2, overlap=False)
    a = hb.ask(10)
    assert len(a) == 3 and {s.fidelity for s in a} == {1}
    for s in a:
        hb.tell(Result(s.trial, "failed", None))
    b = hb.ask(10)  # bracket 1 (s=0): 2 configs at 3 epochs
    assert len(b) == 2 and {s.fidelity for s in b} == {3} and all(s.parent is None for s in b)
    for s in b:
        hb.tell(Result(s.trial, "ok", 1.0))
    assert hb.finished and hb.ask(5) == []


# ---- ASHA's promotion rule ----------------------------------------------------------------------
def test_asha_promotes_top_third_never_twice_never_waits():
    asha = make("asha", fidelity={"min": 1, "max": 9, "eta": 3})
    a = asha.ask(3)
    assert [(s.trial, s.fidelity, s.parent) for s in a] == [(0, 1, None), (1, 1, None), (2, 1, None)]
    assert asha.ask(0) == []
    for s, loss in zip(a, (3.0, 1.0, 2.0)):
        asha.tell(Result(s.trial, "ok", loss))
    p = asha.ask(1)[0]  # trial 1 is the top third (1 of 3) of rung 0
    assert (p.parent, p.fidelity, p.params) == (1, 3, a[1].params)
    assert p.info["rung"] == 1 and p.info["config"] == 1
    q = asha.ask(2)  # nothing else promotable: new configurations, no waiting
    assert [(s.fidelity, s.parent) for s in q] == [(1, None), (1, None)]
    asha.tell(Result(q[0].trial, "failed", None))
    asha.tell(Result(q[1].trial, "ok", 0.5))  # rung 0: 5 results, top 1 = 0.5 (trial 4)
    r = asha.ask(1)[0]
    assert (r.parent, r.fidelity) == (q[1].trial, 3)
    asha.tell(Result(p.trial, "ok", 0.9))
    asha.tell(Result(r.trial, "ok", 0.4))
    # rung 1: two results, top third = 0: no promotion to 9 epochs; rung 0 top 1 already promoted
    s = asha.ask(1)[0]
    assert s.parent is None and s.fidelity == 1


def test_asha_invariants_under_asynchronous_results():
    rng = np.random.default_rng(5)
    asha = make("asha", fidelity={"min": 1, "max": 27, "eta": 3}, seed=3)
    running, told, evaluated = [], {}, set()
    for _ in range(400):
        got = asha.ask(int(rng.integers(1, 4)))
        assert got  # never waits
        for s in got:
            key = (s.info["config"], s.fidelity)
            assert key not in evaluated  # never evaluated (promoted) twice
            evaluated.add(key)
            if s.parent is not None:
                # the promoted trial was in the top floor(n/3) of its rung's results at ask time
                below = [(loss, t) for t, (loss, e) in told.items() if e == s.fidelity // 3]
                below.sort()
                top = [t for _, t in below[:math.floor(len(below) / 3)]]
                assert s.parent in top
            running.append(s)
        # finish a random subset, out of order; some fail
        for _ in range(int(rng.integers(0, len(running) + 1))):
            s = running.pop(int(rng.integers(len(running))))
            if rng.random() < 0.05:
                asha.tell(Result(s.trial, "failed", None))
                told[s.trial] = (math.inf, s.fidelity)
            else:
                loss = loss_of(s) + 0.1 * rng.normal()
                asha.tell(Result(s.trial, "ok", loss))
                told[s.trial] = (loss, s.fidelity)
    assert any(s[1] == 27 for s in evaluated)


def test_budget_stops_proposals():
    for algorithm in ("asha", "asha-bo"):
        m = make(algorithm, fidelity={"min": 1, "max": 9, "eta": 3}, max_epochs_total=20)
        got = m.ask(100)
        assert 20 <= sum(s.fidelity for s in got) < 20 + 9 and len(got) < 100
        assert m.ask(5) == []


def test_hyperband_budget_lets_started_brackets_finish():
    # bracket s=2 (9@1, 3@3, 1@9) trains 9 + 3*2 + 1*6 = 21 epochs: the budget of 30 is
    # promised to it after its first stage, so bracket s=1 starts only once it is done
    hb = make("hyperband", fidelity={"min": 1, "max": 9, "eta": 3}, max_epochs_total=30)
    seen = []
    while not hb.finished:
        got = hb.ask(100)
        assert got, "waiting with nothing in flight"
        seen += got
        for s in got:
            hb.tell(Result(s.trial, "ok", loss_of(s)))
    assert [s.info["bracket"] for s in seen].count(0) == 13
    assert hb.summary()["epochs_committed"] >= 30 and hb.committed == sum(
        s.fidelity - (3 if s.fidelity == 9 and s.parent is not None else 1 if s.parent is not None else 0)
        for s in seen)


def test_hyperband_max_trials_lets_started_brackets_finish():
    """max_trials = bracket s=3's 27 + 9 + 3 + 1 trials with 4 workers: while it waits for a
    stage, the free workers may start bracket s=2 only with trials it does not need (they
    took 4 of them, and no configuration reached max: the run had no full-length result)."""
    hb = make("hyperband", fidelity={"min": 1, "max": 27, "eta": 3}, max_trials=40)
    seen, running = [], []
    while True:
        got = hb.ask(min(4 - len(running), 40 - hb.next_trial))  # as the driver caps it
        seen += got
        running += got
        if not running:
            break
        done = running.pop(0)                      # one result at a time, oldest first
        hb.tell(Result(done.trial, "ok", loss_of(done)))
    assert len(seen) == 40 and [s.info["bracket"] for s in seen].count(0) == 40
    assert [s.fidelity for s in seen].count(27) == 1


def _reaches_max(algorithm, fidelity, trials, workers, seed):
    """A run driven as the driver drives it, results told in a random order of the ones in
    flight: whether any trial ran the full length."""
    import random

    s = SEARCHERS[algorithm](SearchSettings(parse_space(SPACE), seed=seed, workers=workers,
                                            max_trials=trials, options={"fidelity": fidelity}))
    order, seen, running = random.Random(seed), [], []
    while True:
        got = s.ask(min(workers - len(running), trials - s.next_trial))
        seen += got
        running += got
        if not running:
            return any(x.fidelity == fidelity["max"] for x in seen)
        done = running.pop(order.randrange(len(running)))
        s.tell(Result(done.trial, "ok", loss_of(done)))


def test_asha_with_workers_needs_more_trials_than_one_at_a_time_and_is_warned_of_it():
    """ASHA starts a new configuration on every free worker while a promotion waits for its
    results: at exactly the trials one at a time needs (13 for 9 at 1, 3 at 3, 1 at 9), 4
    workers rarely take a configuration to max, and the start said nothing. The warning's
    allowance (workers - 1 per rung) makes it the rule; Hyperband serves its first bracket
    first and needs none."""
    f = {"min": 1, "max": 9, "eta": 3}
    runs = range(20)
    assert sum(_reaches_max("asha", f, 13, 4, seed) for seed in runs) <= 5
    assert sum(_reaches_max("asha", f, 13 + 3 * 2, 4, seed) for seed in runs) >= 14
    assert sum(_reaches_max("hyperband", f, 13, 4, seed) for seed in runs) == 20
    assert make("asha", fidelity=f, max_trials=18).warning.startswith(
        "max_trials (18) leaves asha little room")
    assert make("asha", fidelity=f, max_trials=19).warning == ""


def test_limits_that_cannot_take_a_configuration_to_max_are_warned_of():
    """max_trials or max_epochs_total below what a first configuration needs to reach max:
    the run could only end without a full-length result (so without a best); said at start."""
    f = {"min": 1, "max": 27, "eta": 3}           # 27 at 1, 9 at 3, 3 at 9, 1 at 27
    for algorithm in ("asha", "asha-bo", "hyperband"):
        assert make(algorithm, fidelity=f, max_trials=39).warning == (
            f"max_trials (39) is fewer than the 40 trials {algorithm} needs to take a first "
            "configuration to max (27 epochs: 27 at 1, 9 at 3, 3 at 9, 1 at 27): no result "
            "will be full length, and only full-length results count as best")
        crowded = make(algorithm, fidelity=f, max_trials=40).warning  # 4 workers
        if algorithm == "hyperband":  # its first bracket is served first
            assert crowded == ""
        else:
            assert crowded == (
                f"max_trials (40) leaves {algorithm} little room to take a configuration to "
                "max (27 epochs): one trial at a time needs 40 (27 at 1, 9 at 3, 3 at 9, 1 at "
                "27), but with 4 at once it starts new configurations while a promotion waits "
                "for results, about 3 more per rung (49 in all): the run may end with no "
                "full-length result, and only full-length results count as best")
        assert make(algorithm, fidelity=f, max_trials=49).warning == ""
        # 27 + 9*2 + 3*6 + 1*18 = 81 epochs; proposing goes on while fewer than the budget
        # are committed, so a budget above 63 starts the last one
        assert make(algorithm, fidelity=f, max_epochs_total=64).warning == ""
        assert make(algorithm, fidelity=f, max_epochs_total=63, max_trials=10).warning.startswith(
            "max_trials (10) is fewer than the 40 trials and max_epochs_total (63) is less than "
            f"the 81 epochs {algorithm} needs")
    # hyperband's first bracket with R=81: 81, 27, 9, 3, 1; ASHA needs as many
    assert "121 trials" in make("hyperband", max_trials=100).warning
    assert "121 trials" in make("asha", max_trials=100).warning
    assert make("asha", fidelity={"min": 9, "max": 9}, max_trials=1).warning == ""
    # eta 2.5: m promotions need ceil(2.5 m) results: 1 at 27 <- 3 at 11 <- 8 at 4 <- 20 at 2
    assert "(27 epochs: 20 at 2, 8 at 4, 3 at 11, 1 at 27)" in make(
        "asha", fidelity={"min": 1, "max": 27, "eta": 2.5}, max_trials=3).warning


# ---- asha-bo's model ----------------------------------------------------------------------------
def test_encoder_round_trips_every_kind():
    space = parse_space(SPACE)
    enc = Encoder(space)
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = space.sample(rng)
        back = enc.decode(*enc.encode(p))
        assert back["opt"] == p["opt"] and back["n"] == p["n"] and back["k"] == p["k"]
        assert back["g"] == p["g"] and back["fixed"] == 7
        assert math.isclose(back["x"], p["x"], abs_tol=1e-9)
        assert math.isclose(back["lr"], p["lr"], rel_tol=1e-9)


def test_tpe_model_prefers_the_good_region():
    space = parse_space({"x": {"low": 0.0, "high": 1.0}, "c": {"values": ["a", "b", "c"]}})
    rng = np.random.default_rng(1)
    points = [space.sample(rng) for _ in range(60)]
    losses = [abs(p["x"] - 0.2) + (0.0 if p["c"] == "b" else 0.5) for p in points]
    model = TPEModel(Encoder(space), points, losses, gamma=0.2)
    picks = [model.propose(rng) for _ in range(40)]
    assert sum(p["x"] < 0.45 for p in picks) > 32  # where the good results are (random: 18)
    assert sum(p["c"] == "b" for p in picks) > 30


def test_asha_bo_uses_the_model_once_a_rung_has_enough_results():
    bo = make("asha-bo", fidelity={"min": 1, "max": 9, "eta": 3}, seed=2, random_fraction=0.0,
              min_points_in_model=8)
    first = bo.ask(8)
    assert bo.summary()["model_picks"] == 0
    for s in first[:7]:
        bo.tell(Result(s.trial, "ok", loss_of(s)))
    bo.ask(1)
    assert bo.summary()["model_picks"] == 0  # 7 < 8 results
    bo.tell(Result(first[7].trial, "ok", loss_of(first[7])))
    new = [s for s in bo.ask(30) if s.parent is None]
    assert bo.summary()["model_picks"] == len(new) > 20
    assert np.median([abs(s.params["x"] - 1.0) for s in new]) < 1.0  # random: ~1.5


def test_same_seed_same_proposals_different_seed_different():
    def run(algorithm, seed):
        m = make(algorithm, seed=seed)
        out = []
        for _ in range(12):
            got = m.ask(7)
            out += [(s.trial, s.params, s.fidelity, s.parent) for s in got]
            for s in got[::2]:
                m.tell(Result(s.trial, "ok", loss_of(s)))
        return out
    for algorithm in ("hyperband", "asha", "asha-bo"):
        assert run(algorithm, 1) == run(algorithm, 1)
        assert run(algorithm, 1) != run(algorithm, 2)


# ---- options ------------------------------------------------------------------------------------
def study(algorithm, **search):
    return {"name": "t", "objective": {"entry": "autotune.bench.learning_curves:lc_branin", "metric": "loss"},
            "space": {"x1": {"low": -5.0, "high": 10.0}, "x2": {"low": 0.0, "high": 15.0}},
            "search": {"algorithm": algorithm, **search},
            "executor": {"kind": "simulated", "max_concurrent": 4}}


@pytest.mark.parametrize("fidelity, message", [
    (None, "search.fidelity: missing"),
    ({"min": 1, "max": 81, "eta": 1}, "search.fidelity.eta: expected a number > 1, got 1"),
    ({"min": 1, "max": 81, "eta": "3"}, "search.fidelity.eta: expected a number > 1, got '3'"),
    ({"min": 0, "max": 81}, "search.fidelity.min: expected a positive integer, got 0"),
    ({"min": 1.5, "max": 81}, "search.fidelity.min: expected a positive integer, got 1.5"),
    ({"max": 81}, "search.fidelity.min: missing"),
    ({"min": 1, "max": 1e3}, "search.fidelity.max: expected a positive integer, got 1000.0 "
     "(write 1000: a number with a dot or an exponent, such as 1e3, is read as a float)"),
    ({"min": 9, "max": 3}, "search.fidelity.max: expected at least min (9), got 3"),
    ({"min": 1, "max": 9, "step": 2}, "search.fidelity.step: unknown key"),
    (5, "search.fidelity: expected a mapping, got 5"),
    # rungs are computed one division by eta at a time: this eta would take 4 million (and
    # 1.000000000001 hung the run for hours) before the first line
    ({"min": 1, "max": 81, "eta": 1.000001}, "search.fidelity.eta: 1.000001 is too close to 1: "
     "max (81) reaches min (1) only after 4,394,451 divisions by eta, more than 1,000; "
     "expected 1.0044 or more"),
])
def test_fidelity_mistakes_are_one_line(fidelity, message):
    for algorithm in ("hyperband", "asha", "asha-bo", "random"):
        if algorithm == "random" and fidelity is None:
            continue  # optional there
        search = {} if fidelity is None else {"fidelity": fidelity}
        with pytest.raises(StudyError) as err:
            parse_study(study(algorithm, **search))
        assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_other_option_mistakes():
    f = {"min": 1, "max": 9}
    with pytest.raises(StudyError, match=r"^search.random_fraction: expected a number from 0 to 1, got 1.5"):
        parse_study(study("asha-bo", fidelity=f, random_fraction=1.5))
    with pytest.raises(StudyError, match=r"^search.brackets: expected a positive integer"):
        parse_study(study("hyperband", fidelity=f, brackets=0))
    with pytest.raises(StudyError, match=r"^search.max_epochs_total: expected a positive number"):
        parse_study(study("asha", fidelity=f, max_epochs_total=-3))
    # a fidelity key beside the algorithm, as papers write it (was: only 'unknown key')
    with pytest.raises(StudyError, match=r"^search.eta: unknown key; it belongs under "
                       r"search.fidelity: \{min: .., max: .., eta: ..\} \(expected one of"):
        parse_study(study("hyperband", fidelity=f, eta=2))
    least = {"min": 1, "max": 81, "eta": 1.0044}          # the least eta the message offers
    assert len(parse_study(study("asha", fidelity=least)).make_searcher().fidelity.rungs) == 81
    s = parse_study(study("asha-bo", fidelity=f, random_fraction=0.5, candidates=16))
    assert s.make_searcher().random_fraction == 0.5


def test_asha_bo_proposals_stay_in_a_mixed_space():
    from autotune.bench.learning_curves import BENCHMARKS

    space = BENCHMARKS["lc-mlp"].space
    bo = make("asha-bo", space=space, fidelity={"min": 1, "max": 9, "eta": 3}, seed=0,
              random_fraction=0.0, min_points_in_model=7)
    for _ in range(6):
        for s in bo.ask(10):
            bo.tell(Result(s.trial, "ok", BENCHMARKS["lc-mlp"].curve(s.params, s.fidelity)))
    assert bo.summary()["model_picks"] > 10
    for params in bo.configs:
        assert 1e-4 <= params["lr"] <= 1.0 and 0.0 <= params["dropout"] <= 0.8
        assert isinstance(params["width"], int) and 16 <= params["width"] <= 1024
        assert params["optimizer"] in ("adam", "rmsprop", "sgd") and params["batch"] in (32, 64, 128, 256)
