"""Multi-fidelity screening inside the asynchronous axis search (search.fidelity)."""
import heapq
import os

import numpy as np
import pytest

from autotune.bench import landscapes as bf
from autotune.errors import StudyError
from autotune.searchers import SEARCHERS, Result, SearchSettings
from autotune.searchers.axis.screen import Screening
from autotune.searchers.mf_common import parse_fidelity
from autotune.space import parse_space
from autotune.study import parse_study

FIDELITY = {"min": 1, "max": 27, "eta": 3}          # rungs 1, 3, 9, 27


def make(fn="bowl", instance=0, **options):
    space = parse_space(bf.space(fn, instance))
    return SEARCHERS["axis"](SearchSettings(space, 0, 50, None, options=options))


def loss(fn, instance, sug, max_epochs=27):
    """The function's value plus a learning-curve term that shrinks with the epochs."""
    epochs = sug.fidelity or max_epochs
    return bf.true_value(fn, instance, bf.index_of(sug.params)) + 0.5 / epochs


def drive(searcher, fn="bowl", instance=0, workers=50, calls=None):
    """Results in order of completion; a trial costs the epochs it trains (its parent's are
    done). Returns the suggestions and the epochs trained in all."""
    epochs_of = {}
    rng = np.random.default_rng(1)
    heap, clock, seq, trials, trained = [], 0.0, 0, [], 0
    while True:
        if not searcher.finished and len(heap) < workers:
            got = searcher.ask(workers - len(heap))
            if calls is not None:
                calls.append(("ask", workers - len(heap), [(s.trial, s.params) for s in got]))
            for s in got:
                epochs = s.fidelity or 27
                extra = epochs - (epochs_of[s.parent] if s.parent is not None else 0)
                epochs_of[s.trial] = epochs
                trained += extra
                trials.append(s)
                heapq.heappush(heap, (clock + extra * rng.uniform(0.8, 1.2), seq, s))
                seq += 1
        if not heap:
            return trials, trained
        clock, _, s = heapq.heappop(heap)
        result = Result(s.trial, "ok", loss(fn, instance, s))
        if calls is not None:
            calls.append(("tell", result))
        searcher.tell(result)


def test_a_short_run_passes_when_in_the_top_third_or_no_worse_than_the_base():
    sc = Screening(parse_fidelity({"fidelity": FIDELITY}, "axis"))
    base, a, b, c, d = (0,), (1,), (2,), (3,), (4,)
    for trial, p in enumerate([base, a, b, c, d]):
        sc.started(trial, p, 0)
    assert sc.judge(0, base, 0.50, None)          # the first result of a rung always passes
    assert sc.judge(1, a, 0.10, base)             # best so far
    assert not sc.judge(2, b, 0.70, base)         # 3rd of 3, worse than the base: out
    assert sc.judge(3, c, 0.45, base)             # only 2nd of 4 ... and better than the base
    assert sc.judge(4, d, 0.50, base)             # 4th of 5, but no worse than the base
    assert sc.dropped == {b: 0}
    assert sc.waiting == [(base, 1), (a, 1), (c, 1), (d, 1)]
    sc.started(5, a, 1)
    assert sc.chain[a] == {0: 1, 1: 5} and sc.is_screen(5)
    sc.started(6, a, 3)
    assert not sc.is_screen(6)                    # the top rung is a full-length run


@pytest.mark.parametrize("fn, screen_predicted, bound", [("convex", False, 0.75),
                                                         ("bowl", True, 0.7)])
def test_new_points_climb_the_rungs_from_their_checkpoints_and_the_search_still_finds_the_minimum(
        fn, screen_predicted, bound):
    s = make(fn, fidelity=FIDELITY, screen_predicted=screen_predicted)
    trials, trained = drive(s, fn)
    assert s.finished
    assert tuple(s.summary()["base_index"]) == bf.grid_minimum(fn, 0)[1]
    by_trial = {t.trial: t for t in trials}
    chains = {}
    for t in trials:
        p = tuple(t.info["index"])
        if t.info["kind"] == "promote":
            parent = by_trial[t.parent]
            # a promotion continues the same point's run at the rung below
            assert tuple(parent.info["index"]) == p
            assert [1, 3, 9, 27].index(t.fidelity) == [1, 3, 9, 27].index(parent.fidelity) + 1
            chains[p].append(t.fidelity)
        elif t.info["kind"] == "repeat":
            assert t.fidelity == 27 and t.parent is None   # repeats: full length from scratch
        elif t.info["kind"] == "predicted" and not screen_predicted:
            # a point a line's fit predicts to beat the base is not screened (by default)
            assert t.fidelity == 27 and t.parent is None and p not in chains
            chains[p] = [27]
        else:
            assert t.fidelity == 1 and t.parent is None and p not in chains  # one chain a point
            chains[p] = [1]
    assert s.summary()["work"]["predicted"] > 0 and s.summary()["work"]["promote"] > 0
    dropped = set(s.screen.dropped)
    assert dropped and all(chains[p][-1] < 27 for p in dropped)
    assert all(p not in s.store.values for p in dropped)
    reached = {p for p, c in chains.items() if c[-1] == 27}
    assert reached == set(s.store.values)
    # the same search without screening trains every point the full 27 epochs
    full = make(fn)
    full_trials, full_trained = drive(full, fn)
    assert tuple(full.summary()["base_index"]) == bf.grid_minimum(fn, 0)[1]
    assert trained < bound * full_trained, (trained, full_trained)
    summary = s.summary()["screening"]
    assert summary["rungs"] == [1, 3, 9, 27] and summary["epochs_proposed"] == trained


def test_screening_replays_to_the_same_suggestions():
    calls = []
    live = make("multimodal", instance=2, fidelity=FIDELITY)
    drive(live, "multimodal", instance=2, calls=calls)
    fresh = make("multimodal", instance=2, fidelity=FIDELITY)
    for call in calls:
        if call[0] == "ask":
            assert [(x.trial, x.params) for x in fresh.ask(call[1])] == call[2]
        else:
            fresh.tell(call[1])
    assert fresh.summary() == live.summary()


@pytest.mark.parametrize("algorithm, search, message", [
    ("axis", {"fidelity": {"min": 0, "max": 27}}, "search.fidelity.min"),
    ("axis", {"fidelity": {"min": 9, "max": 3}}, "search.fidelity.max"),
    ("axis", {"fidelity": {"min": 1, "max": 27, "eta": 1}}, "search.fidelity.eta"),
    ("axis", {"fidelity": "short"}, "search.fidelity"),
    ("axis-radial", {"fidelity": FIDELITY}, "search.fidelity"),
    ("axis", {"fidelity": FIDELITY, "screen_predicted": "yes"}, "search.screen_predicted"),
])
def test_bad_fidelity_is_one_line_naming_the_key(algorithm, search, message):
    raw = {"objective": {"entry": "autotune.bench.landscapes:objective", "metric": "value"},
           "space": bf.space("bowl"), "search": {"algorithm": algorithm, **search}}
    with pytest.raises(StudyError) as err:
        parse_study(raw)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_through_the_driver_checkpoints_are_continued_and_a_crash_resumes(tmp_path):
    """lc-branin on an 11 x 11 grid: promotions resume their parent's checkpoint (learning_curves
    refuses a mismatched one and charges only the extra epochs); a crash part-way, then a
    resume, gives the uninterrupted run's trials; only full-length results count as best."""
    from autotune.driver import Driver, SimulatedCrash
    from autotune.history import History
    from autotune.journal import Journal

    raw = {"name": "screened",
           "objective": {"entry": "autotune.bench.learning_curves:lc_branin", "metric": "loss"},
           "space": {"x1": {"low": -5.0, "high": 10.0, "steps": 11},
                     "x2": {"low": 0.0, "high": 15.0, "steps": 11}},  # fidelity max: 27 epochs
           "search": {"algorithm": "axis", "seed": 1, "fidelity": FIDELITY},
           "executor": {"kind": "simulated", "max_concurrent": 8}}
    whole, crashed = str(tmp_path / "whole"), str(tmp_path / "crashed")
    Driver(parse_study(raw), whole, progress=False).run()
    with pytest.raises(SimulatedCrash):
        Driver(parse_study(raw), crashed, progress=False, stop_after_events=60).run()
    Driver(parse_study(raw), crashed, progress=False).run()
    a = History.load(Journal(os.path.join(whole, "history.jsonl")))
    b = History.load(Journal(os.path.join(crashed, "history.jsonl")))
    assert [(r.params, r.fidelity, r.parent) for r in a.trials.values()] == \
        [(r.params, r.fidelity, r.parent) for r in b.trials.values()]
    promoted = [r for r in a.trials.values() if r.parent is not None]
    assert promoted and all(r.status == "ok" for r in a.trials.values())
    for r in promoted:
        parent = a.trials[r.parent]
        assert r.params == parent.params
        assert r.metrics["resumed_from"] == parent.fidelity
        assert r.metrics["epochs_trained"] == r.fidelity - parent.fidelity
    best = a.best("min")
    assert best.fidelity == 27 and a.full_fidelity == 27
