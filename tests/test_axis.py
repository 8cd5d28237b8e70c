"""The axis searches on analytic functions over the study-shaped grid (10 x 11 x 11 x 11)."""
import dataclasses
import heapq
import os

import numpy as np
import pytest

from autotune.bench import landscapes as bf
from autotune.errors import StudyError
from autotune.searchers import SEARCHERS, Result, SearchSettings
from autotune.searchers.axis.directions import all_directions, dir_text
from autotune.searchers.axis.store import Store
from autotune.space import parse_space
from autotune.study import parse_study

METHODS = ["axis-s2018", "axis-radial", "axis"]


def make(method, fn="bowl", instance=0, workers=50, seed=0, fail=0.0, noise=0.0, **options):
    space = parse_space(bf.space(fn, instance, noise=noise, fail=fail))
    return SEARCHERS[method](SearchSettings(space, seed, workers, None, options=options))


def evaluate(fn, instance, sug, noise=0.0, fail=0.0):
    idx = bf.index_of(sug.params)
    if bf._fails(idx, instance, fail):
        return Result(sug.trial, "failed", None)
    value = bf.true_value(fn, instance, idx)
    if noise:
        value += float(np.random.default_rng([sug.trial, 1]).normal(0, noise))
    return Result(sug.trial, "ok", value)


def drive(searcher, fn="bowl", instance=0, workers=50, noise=0.0, fail=0.0, check_busy=False,
          calls=None, limit=5000):
    """A tiny event loop: costs 0.8-1.2 h, results told in order of completion."""
    rng = np.random.default_rng(1)
    heap, clock, seq, told, trials = [], 0.0, 0, 0, []
    while told < limit:
        if not searcher.finished:
            free = workers - len(heap)
            if free > 0:
                got = searcher.ask(free)
                if calls is not None:
                    calls.append(("ask", free, got))
                for s in got:
                    trials.append(s)
                    heapq.heappush(heap, (clock + 3600 * rng.uniform(0.8, 1.2), seq, s))
                    seq += 1
                if check_busy and len(heap) < workers and not searcher.finished:
                    assert searcher.work(workers - len(heap)) == [], "a slot idles with work"
        if not heap:
            break
        clock = heap[0][0]
        while heap and heap[0][0] <= clock:
            s = heapq.heappop(heap)[2]
            result = evaluate(fn, instance, s, noise, fail)
            if calls is not None:
                calls.append(("tell", result))
            searcher.tell(result)
            told += 1
    return trials


@pytest.mark.parametrize("method", ["axis-s2018", "axis-radial"])
@pytest.mark.parametrize("fn", ["bowl", "convex"])
def test_faithful_modes_find_the_exact_minimum_of_a_convex_bowl(method, fn):
    s = make(method, fn)
    trials = drive(s, fn)
    assert s.finished
    _, argmin = bf.grid_minimum(fn, 0)
    assert tuple(s.summary()["base_index"]) == argmin
    # every point at most once
    assert len({tuple(t.params.items()) for t in trials}) == len(trials)


@pytest.mark.parametrize("noise_check", [True, False])
def test_async_finds_the_minimum_of_a_convex_bowl_and_every_point_once(noise_check):
    s = make("axis", "convex", noise_check=noise_check)
    trials = drive(s, "convex")
    assert s.finished
    assert tuple(s.summary()["base_index"]) == bf.grid_minimum("convex", 0)[1]
    keys = [tuple(t.params.items()) for t in trials]
    if noise_check:
        # the noise probe: the first base is measured twice; it agrees, so nothing else is
        twice = [k for k in set(keys) if keys.count(k) > 1]
        assert len(keys) == len(set(keys)) + 1 and len(twice) == 1
        assert bf.index_of(dict(twice[0])) in s.bases  # the base of the time
        assert s.summary()["noisy"] is False and s.summary()["work"]["repeat"] == 1
    else:
        assert len(set(keys)) == len(keys)  # every point at most once


def test_s2018_raises_the_level_only_when_stalled():
    s = make("axis-s2018", "convex", workers=1)
    history = []
    heap_level, heap_base = s.level, s.base
    while not s.finished:
        batch = s.ask(50)
        assert batch, "a sequential step always has a batch"
        assert s.ask(50) == []  # one batch at a time
        for sug in batch:
            s.tell(evaluate("convex", 0, sug))
        if s.level != heap_level:
            assert s.level == heap_level + 1
            assert s.base == heap_base, "the level rose on a move"
            history.append(s.level)
        heap_level, heap_base = s.level, s.base
    summary = s.summary()
    assert summary["level"] == 4 and history == [2, 3, 4]
    assert summary["stop_reason"].startswith("no improvement at level 4")


def test_s2018_sequence_base_then_neighbours_then_line():
    s = make("axis-s2018", "bowl")
    first = s.ask(50)
    assert [x.info["kind"] for x in first] == ["initial"]
    assert first[0].info["index"] == [5, 5, 5, 5]
    s.tell(evaluate("bowl", 0, first[0]))
    neighbours = s.ask(50)
    assert {x.info["kind"] for x in neighbours} == {"neighbour"}
    assert len(neighbours) == 8  # +- one step along the 4 axes (level 1)
    for x in neighbours:
        s.tell(evaluate("bowl", 0, x))
    line = s.ask(50)
    assert {x.info["kind"] for x in line} == {"line"}
    assert len({x.info["direction"] for x in line}) == 1
    assert len(line) <= 4


def test_radial_candidate_order_and_batches():
    s = make("axis-radial", "bowl", workers=50)
    batch = s.ask(50)
    assert len(batch) == 50
    assert batch[0].info["kind"] == "base" and batch[0].info["index"] == [5, 5, 5, 5]
    dirs = [dir_text(v) for v in all_directions(4)]
    assert len(dirs) == 40
    first_pass = [x.info["direction"] for x in batch[1:41]]
    assert first_pass == dirs  # every line's first point, level 1 lines first
    assert [x.info["level"] for x in batch[1:41]] == sorted(x.info["level"] for x in batch[1:41])
    assert [x.info["direction"] for x in batch[41:50]] == dirs[:9]  # then the second points
    assert s.ask(50) == []  # waits for the whole batch
    for x in batch[:-1]:
        s.tell(evaluate("bowl", 0, x))
    assert s.ask(50) == []
    s.tell(evaluate("bowl", 0, batch[-1]))
    assert len(s.ask(50)) == 50


def test_async_never_leaves_a_slot_idle_while_it_holds_candidates():
    s = make("axis", "rosenbrock", instance=1)
    drive(s, "rosenbrock", instance=1, check_busy=True)
    assert s.finished


def test_async_refills_a_freed_slot_at_once():
    s = make("axis", "bowl")
    first = s.ask(50)
    assert len(first) == 50
    s.tell(evaluate("bowl", 0, first[3]))
    again = s.ask(1)
    assert len(again) == 1  # no waiting for the batch


def replay(fresh, calls):
    """``fresh`` handed what ``drive`` recorded: the suggestions (adopt) and the results
    (tell), in order, without ever asking."""
    for call in calls:
        if call[0] == "ask":
            for s in call[2]:
                fresh.adopt(s)
        else:
            fresh.tell(call[1])
    return fresh


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cut", [37, 150, 400])
def test_restore_from_the_record_continues_as_the_live_search(method, cut):
    """A searcher handed the recorded suggestions (adopt) and results (tell), without ever
    asking, is in the live searcher's state: the same summary and the same next asks."""
    calls = []
    live = make(method, "multimodal", instance=2, seed=3, noise=0.01)
    drive(live, "multimodal", instance=2, noise=0.01, calls=calls, limit=cut)
    fresh = replay(make(method, "multimodal", instance=2, seed=3, noise=0.01), calls)
    assert fresh.summary() == live.summary()
    assert fresh.next_trial == live.next_trial
    for n in (1, 7):
        assert [(x.trial, x.params, x.info) for x in fresh.ask(n)] == \
            [(x.trial, x.params, x.info) for x in live.ask(n)]


@pytest.mark.parametrize("method", METHODS)
def test_failed_trials_do_not_wedge_the_search(method):
    s = make(method, "convex", fail=0.2)
    trials = drive(s, "convex", fail=0.2)
    assert s.finished
    base = tuple(s.summary()["base_index"])
    assert base in s.store.values  # the final base was measured
    assert s.store.failed  # some points did fail
    assert len(trials) < 13310


def on_a_line(base, q):
    steps = {abs(a - b) for a, b in zip(q, base)} - {0}
    return len(steps) == 1


def tell_value(s, sug, value):
    s.tell(Result(sug.trial, "ok", value))


def test_async_moves_the_base_at_once_and_replans_the_lines():
    s = make("axis", "bowl")
    batch = s.ask(50)
    base = tuple(batch[0].info["index"])
    probe = batch[1]  # the noise probe: the base a second time
    assert probe.info["kind"] == "repeat" and tuple(probe.info["index"]) == base
    tell_value(s, batch[0], bf.true_value("bowl", 0, base))
    tell_value(s, probe, bf.true_value("bowl", 0, base))  # agrees: no noise
    assert not s._noisy()
    old_lines = list(s.lines)
    for sug in batch[2:]:
        p = tuple(sug.info["index"])
        tell_value(s, sug, bf.true_value("bowl", 0, p))
        if s.moves:
            break
    # the first point that beats the base becomes the base while the rest are in flight
    assert s.base == p and bf.true_value("bowl", 0, p) < bf.true_value("bowl", 0, base)
    assert s.store.in_flight > 0 and not all(line.done for line in old_lines)
    # every line is planned afresh through the new base; the old unfinished ones are filler
    assert s.lines and all(line.base == p for line in s.lines)
    assert len(s.lines) == len(old_lines)
    assert s.old_lines and all(line.base == base for line in s.old_lines)
    nxt = s.ask(20)
    assert nxt and all(x.info["move"] == 1 for x in nxt)
    for x in nxt:
        q = tuple(x.info["index"])
        if x.info["kind"] in ("predicted", "neighbour", "line", "uncertain"):
            assert on_a_line(p, q), (x.info, p)


def test_async_noise_probe_and_challengers_are_measured_twice_before_a_move():
    s = make("axis", "bowl")
    batch = s.ask(50)
    probe = batch[1]
    assert probe.info["kind"] == "repeat" and probe.info["index"] == batch[0].info["index"]
    tell_value(s, batch[0], 0.50)
    assert not s._noisy() and s.ask(1)[0].info["kind"] != "repeat"  # one probe only
    tell_value(s, probe, 0.52)                      # disagrees: noisy, sigma about 0.014
    assert s._noisy() and s.store.count(s.base) == 2
    base = s.base
    lucky = batch[3]
    tell_value(s, lucky, 0.505)                     # better, but within the noise
    assert s.base == base
    again = s.ask(1)[0]                             # the challenger is measured again first
    assert again.info["kind"] == "repeat" and again.info["index"] == lucky.info["index"]
    tell_value(s, again, 0.50)                      # confirmed (mean 0.5025 < 0.51)
    assert s.base == tuple(lucky.info["index"]) and s.moves == 1
    # a clear win (far beyond the noise) moves the base at once, then the base is verified
    clear = batch[4]
    tell_value(s, clear, 0.30)
    assert s.base == tuple(clear.info["index"]) and s.moves == 2
    verify = s.ask(1)[0]
    assert verify.info["kind"] == "repeat" and verify.info["index"] == clear.info["index"]


def test_async_under_noise_reports_a_setting_measured_twice():
    s = make("axis", "convex", noise=0.01)
    drive(s, "convex", noise=0.01)
    summary = s.summary()
    assert s.finished and summary["noisy"] and summary["base_repeats"] >= 2
    st = s.store
    twice = [p for p in st.values if st.count(p) >= 2]
    assert s.base == min(twice, key=st.mean)
    # only a few points are repeated: the base, the probe and the challengers
    assert summary["work"]["repeat"] < 0.25 * summary["evaluations"]


def test_empty_ask_changes_nothing():
    s = make("axis-radial", "bowl")
    s.ask(50)
    before = (s.next_trial, dict(s.store.pending))
    assert s.ask(10) == []
    assert (s.next_trial, dict(s.store.pending)) == before


def drive_failing(s, bad, workers=1, limit=400):
    """One worker at a time (inline, or local with max_concurrent 1); points in ``bad`` fail."""
    seen = []
    while not s.finished and len(seen) < limit:
        got = s.ask(workers)
        if not got:
            break
        for sug in got:
            idx = bf.index_of(sug.params)
            seen.append(idx)
            s.tell(Result(sug.trial, "failed", None) if idx in bad
                   else evaluate("convex", 0, sug))
    return seen


@pytest.mark.parametrize("method", METHODS)
def test_a_failed_start_does_not_end_the_search_and_is_not_run_again(method):
    # one worker: the start (the centre) fails and nothing else is in flight; the search
    # goes on from its neighbours and lines, and a failed point is not asked for again
    # (ending on failures is the driver's call: max_failures)
    s = make(method, "convex")
    centre = tuple(s.ask(1)[0].info["index"])
    s = make(method, "convex")
    seen = drive_failing(s, {centre})
    assert seen[0] == centre and seen.count(centre) == 1
    assert len(seen) > 10 and s.store.best() is not None
    assert bf.true_value("convex", 0, s.store.best()) == bf.grid_minimum("convex", 0)[0]


@pytest.mark.parametrize("method", METHODS)
def test_a_latin_first_sample_that_all_failed_searches_on_from_its_first_point(method):
    s = make(method, "convex", initial="latin", seed=4)
    first = [tuple(x.info["index"]) for x in s.ask(50)]
    s = make(method, "convex", initial="latin", seed=4)
    seen = drive_failing(s, set(first), workers=50)
    assert seen[:len(first)] == first
    assert len(seen) > len(first) and all(seen.count(p) == 1 for p in first)   # none again
    assert s.store.best() is not None and s.store.best() not in first


def test_start_latin_and_noise_aware_repeats():
    s = make("axis", "convex", start={"lr": 1e-4, "w2": 5.0, "w3": 1e-3, "w4": 1.0})
    assert s.ask(1)[0].info["index"] == [4, 6, 5, 5]
    latin = make("axis-radial", "convex", initial="latin", seed=4)
    batch = latin.ask(50)
    assert len(batch) == 11 and {x.info["kind"] for x in batch} == {"initial"}
    noisy = make("axis", "convex", repeats=3, noise=0.02)
    drive(noisy, "convex", noise=0.02)
    summary = noisy.summary()
    assert noisy.finished and summary["base_repeats"] >= 3
    assert summary["base_spread"] > 0 and summary["noise_sigma"] > 0
    assert summary["work"].get("repeat", 0) >= 2


def study(algorithm, **search):
    return {"objective": {"entry": "autotune.bench.landscapes:objective", "metric": "value"},
            "space": bf.space("bowl"), "search": {"algorithm": algorithm, **search},
            "executor": {"kind": "simulated", "max_concurrent": 50}}


@pytest.mark.parametrize("search, key", [
    ({"start": {"lr": 3e-4}}, "search.start: lr=0.0003 is not on the grid"),
    ({"start": {"lrate": 1e-4}}, "search.start: lrate is not a parameter"),
    ({"start": {"fn": "convex"}}, "search.start: fn="),
    ({"initial": "sobol"}, "search.initial"),
    ({"alpha": -1}, "search.alpha"),
    ({"patience": 0}, "search.patience"),
    ({"max_level": 5}, "search.max_level"),
    ({"max_line_points": 1}, "search.max_line_points"),
    ({"bogus": 1}, "search.bogus"),
])
@pytest.mark.parametrize("method", METHODS)
def test_bad_options_name_the_key(method, search, key):
    with pytest.raises(StudyError) as err:
        parse_study(study(method, **search))
    assert str(err.value).startswith(key), str(err.value)
    assert "\n" not in str(err.value)


def test_async_only_options():
    with pytest.raises(StudyError, match="search.noise_margin"):
        parse_study(study("axis", noise_margin=-1))
    with pytest.raises(StudyError, match="search.repeats"):
        parse_study(study("axis-radial", repeats=3))
    with pytest.raises(StudyError, match="search.challengers"):
        parse_study(study("axis", challengers=-1))
    with pytest.raises(StudyError, match=r"^search.promise_per_line: expected an integer >= 0"):
        parse_study(study("axis", promise_per_line=-1))
    assert parse_study(study("axis", repeats=3, line_parallel=2, noise_margin=1.5)).algorithm == "axis"
    assert parse_study(study("axis", noise_check=False, challengers=5)).algorithm == "axis"
    with pytest.raises(StudyError, match="search.restarts"):
        parse_study(study("axis", restarts=-3))
    with pytest.raises(StudyError, match="search.model_in_flight"):
        parse_study(study("axis", model_in_flight=0))
    with pytest.raises(StudyError, match="search.sweep"):
        parse_study(study("axis", sweep="yes please"))


def budgeted(fn, instance=0, **options):
    space = parse_space(bf.space(fn, instance))
    return SEARCHERS["axis"](SearchSettings(space, 0, 50, 3000, options=options))


def test_with_a_budget_a_settled_search_starts_again_and_reports_its_best_base():
    """Rosenbrock's valley stalls a line search; with trials left the search restarts
    outside the searched region instead of stopping, and the setting it reports is the
    best base it settled on, not the restart's."""
    s = budgeted("rosenbrock", instance=1)
    drive(s, "rosenbrock", instance=1, limit=900)
    summary = s.summary()
    assert summary["restarts"] >= 1 and not s.finished
    means = [s.store.mean(p) for p in s.bases if p in s.store.values]
    assert summary["base_mean"] == min(means)
    once = make("axis", "rosenbrock", instance=1)      # no budget: it stops where it settles
    drive(once, "rosenbrock", instance=1, limit=900)
    assert once.finished and once.summary()["restarts"] == 0


def test_after_a_restart_the_base_moves_only_to_the_new_regions_own_points():
    """A restart begins a new local search: its base never returns to a point measured
    before the restart (the old valley's best would otherwise pull it straight back, and
    each restart would measure a handful of points and return), while the reported setting
    is still the best base of every region."""
    s = budgeted("rosenbrock", instance=1)
    drive(s, "rosenbrock", instance=1, limit=1500)
    assert s.restarts >= 2
    assert len(s.bases) == len(set(s.bases)), "a base was visited twice"
    assert s.store.results / (s.restarts + 1) > 50
    means = [s.store.mean(p) for p in s.bases if p in s.store.values]
    assert s.summary()["base_mean"] == min(means)


def test_the_store_admits_an_earlier_point_to_the_region_until_the_next_one():
    """``admit`` puts a point started before the region began into its ranking (and keeps
    it there as it is measured again); the next region starts without it."""
    st = Store()
    for trial, p in enumerate([(0,), (1,), (2,)]):
        st.start(trial, p)
    st.finish(Result(0, "ok", 1.0))
    st.start(3, (5,))
    st.finish(Result(3, "ok", 2.0))
    st.new_region((5,))
    st.finish(Result(1, "ok", 0.5))          # old: not the region's, however good
    assert st.region_best() == (5,) and not st.in_region((1,))
    st.admit((1,))
    assert st.region_best() == (1,) and st.in_region((1,))
    st.admit((1,))                           # twice: still one entry
    assert list(st.below(3.0, region=True)) == [(1,), (5,)]
    st.start(4, (1,))
    st.finish(Result(4, "ok", 3.5))          # measured again: its mean moves in the region too
    assert list(st.below(3.0, region=True)) == [(5,), (1,)]
    st.new_region((5,))
    assert not st.in_region((1,)) and st.region_best() == (5,)


def _until_restart(hold, calls=None):
    """A budgeted search driven on Rosenbrock until its first restart, the first handed-out
    point that ``hold(kind, index, base)`` picks kept in flight all along; the searcher and
    that trial. ``calls`` collects what a history would record: the suggestions handed out
    and the results told, in order."""
    s = budgeted("rosenbrock", instance=1)
    held, flight = None, []
    calls = [] if calls is None else calls
    while not s.restarts:
        for sug in s.ask(50 - len(flight) - (held is not None)):
            calls.append(("ask", sug))
            if held is None and hold(sug.info.get("kind"), bf.index_of(sug.params), s.base):
                held = sug
            else:
                flight.append(sug)
        result = evaluate("rosenbrock", 1, flight.pop(0))
        calls.append(("tell", result))
        s.tell(result)
    assert held is not None and s.store.in_region(s.base)
    return s, held


def test_a_point_in_flight_at_a_restart_joins_the_new_region_as_a_new_best_away_from_old_bases():
    """A result of the old region that lands after the restart stays out of the new one
    (the old valley's points would pull the base back), unless it beats every value
    measured so far away from the earlier bases: then it is no old valley's best but a
    global model's find, which the new search moves to (a spare pick on a 3 x 3 x 3 x 40
    discus came back at a quarter of the best base's value, and the new region went on from
    a worse point). Beside an old base the same value is that valley's own."""
    def far(kind, index, base):
        return kind == "explore" and base is not None and \
            max(abs(a - b) for a, b in zip(index, base)) >= 3

    calls = []
    s, held = _until_restart(far, calls)
    p = bf.index_of(held.params)
    assert all(max(abs(a - b) for a, b in zip(p, q)) >= 2 for q in s.bases[:-1])
    best = s.store.mean(s.store.best())
    late = Result(held.trial, "ok", best - 1.0)
    s.tell(late)
    assert s.base == p and s.store.in_region(p)
    # a resume rebuilds it from the record alone (restore.py: adopt and tell, no ask)
    again = budgeted("rosenbrock", instance=1)
    for kind, what in calls + [("tell", late)]:
        again.adopt(what) if kind == "ask" else again.tell(what)
    again.next_trial = s.next_trial
    assert again.base == p and again.store.in_region(p) and again.region_bases == s.region_bases
    assert [x.params for x in again.ask(50)] == [x.params for x in s.ask(50)]

    def beside(kind, index, base):
        return kind == "neighbour"

    s, held = _until_restart(beside)
    p = bf.index_of(held.params)
    assert any(max(abs(a - b) for a, b in zip(p, q)) <= 1 for q in s.bases[:-1])
    base = s.base
    s.tell(Result(held.trial, "ok", s.store.mean(s.store.best()) - 1.0))
    assert s.base == base and not s.store.in_region(p)


def test_a_stalled_budgeted_search_restarts_without_waiting_for_its_last_lines():
    """With a budget, ``stall`` results without a move start a new region even while lines
    through the base are open; without a budget the search never restarts."""
    def first_restart(stall):
        s = budgeted("rosenbrock", instance=1, stall=stall)
        tell, seen = s.tell, []

        def watched(result):
            lines, results = s.lines, s.store.results
            tell(result)
            if s.restarts and not seen:
                seen.append((results, sum(1 for line in lines if not line.done)))

        s.tell = watched
        drive(s, "rosenbrock", instance=1, limit=700)
        return seen[0] if seen else (10 ** 6, 0)

    quick, still_open = first_restart(25)
    patient, _ = first_restart(10 ** 6)
    assert quick < patient
    assert still_open > 0          # it did not wait for every line through that base
    once = make("axis", "rosenbrock", instance=1, stall=5)
    drive(once, "rosenbrock", instance=1, limit=900)
    assert once.summary()["restarts"] == 0


def levels_before_first_restart(d, objective, noise=0.0, **options):
    """The level searched from the start and the highest one reached before the first
    restart, for a budgeted search of ``d`` parameters of 4 values (10 workers)."""
    space = parse_space({f"p{i}": {"values": [0, 1, 2, 3]} for i in range(d)})
    s = SEARCHERS["axis"](SearchSettings(space, 0, 10, 4000, options={"stall": 20, **options}))
    rng = np.random.default_rng(0)
    first_level, reached = s.level, 0
    for _ in range(400):
        for sug in s.ask(10):
            reached = max(reached, s.level)
            x = [sug.params[f"p{i}"] for i in range(d)]
            s.tell(Result(sug.trial, "ok", objective(x) + noise * rng.normal()))
        if s.restarts:
            return first_level, reached
    raise AssertionError("no restart in 4,000 results")


def test_a_clean_stall_restarts_rather_than_adding_levels_that_move_nothing():
    """Six parameters search levels 1-3 from the start (116 lines): a clean stall restarts
    rather than adding level 4 through a base that has not moved, while under noise (a base
    stands still while its challengers are confirmed) the levels come first. Eight search
    levels 1-2 (64 lines): a stall adds level 3's diagonals, and level 4's only where level
    3's lines moved the base (a rotated bowl's valley, which no line of two axes follows)."""
    def slope(x):           # the base reaches its corner soon, then stands still
        return float(sum(x))

    assert levels_before_first_restart(6, slope) == (3, 3)
    first, reached = levels_before_first_restart(6, slope, noise=0.5)
    assert first == 3 and reached > 3
    assert levels_before_first_restart(8, slope) == (2, 3)

    def diagonal(x):
        # down only along (1, 1, 1) in the first three parameters: a step on one or two of
        # them climbs 8 or more; the other five a plain slope
        return 10.0 * (max(x[:3]) - min(x[:3])) - sum(x[:3]) + sum(x[3:])

    # the lines alone, and a stall long enough for the diagonal's line to be measured
    lines_only = dict(model=False, quadratic=False, elite=False, explore=0, parzen=False,
                      fill_idle=False, stall=40)
    assert levels_before_first_restart(8, diagonal, **lines_only) == (2, 4)


def test_under_noise_the_end_of_a_budget_measures_the_best_candidates_again():
    """The last trials of a max_trials budget (a tenth: 40 of 400) go to
    the few best candidates for the reported setting, not to new points; without noise the
    search explores to the end."""
    def kinds(noise):
        space = parse_space(bf.space("bowl", 2))
        s = SEARCHERS["axis"](SearchSettings(space, 0, 50, 400, options={}))
        s.race, ask = [], s.ask

        def watched(n):       # how many candidates each ask of the final phase chose among
            got = ask(n)
            if any(t.info.get("kind") == "final" for t in got) and s.next_trial <= 400:
                s.race.append(len(s._finalists()))
            return got

        s.ask = watched
        trials = drive(s, "bowl", instance=2, noise=noise, limit=400)
        return s, trials

    s, trials = kinds(0.05)        # (the loop asks on past the budget: the driver stops)
    last = [t for t in trials if 360 <= t.trial < 400]
    assert len(last) == 40 and all(t.info.get("kind") == "final" for t in last)
    assert not any(t.info.get("kind") == "final" for t in trials if t.trial < 360)
    first = {}
    for t in trials:
        first.setdefault(bf.index_of(t.params), t.trial)
    assert all(first[bf.index_of(t.params)] < 360 for t in last)   # measured again, not new
    # the setting is judged once the last wave has landed, among the raced, the bases and
    # the best points measured twice: a finalist the race dropped, or a twice-measured point
    # it never raced, may win then (choosing only among its last two, or only among what it
    # raced, was measured and not kept: docs/benchmarks.md); never one measured once
    assert s.store.count(s.reported()) >= 2
    # a race: five candidates in the phase's first half, three in the next quarter, two at
    # the end (the trials that decide go to those still in contention)
    assert s.race == sorted(s.race, reverse=True) and {5, 3, 2} <= set(s.race)
    assert s.race[0] == 5 and s.race[-1] == 2
    _, trials = kinds(0.0)
    assert not any(t.info.get("kind") == "final" for t in trials)


def test_a_compute_budget_ends_with_the_final_measurements_too():
    """With max_compute_s instead of max_trials the budget is counted in trials of the mean
    cost the results report: 400 trials of 3,600 s here, so the last ~40 are "final" as with
    max_trials 400; without any budget there is no final phase."""
    def kinds(max_compute_s):
        space = parse_space(bf.space("bowl", 2))
        s = SEARCHERS["axis"](SearchSettings(space, 0, 50, None, max_compute_s, options={}))
        tell = s.tell

        def costed(result):
            tell(dataclasses.replace(result, cost_s=3600.0))

        s.tell = costed
        return drive(s, "bowl", instance=2, noise=0.05, limit=400)

    trials = kinds(400 * 3600.0)
    final = [t.trial for t in trials if t.info.get("kind") == "final"]
    assert final and min(final) >= 340
    assert all(t.info.get("kind") == "final" for t in trials if 375 <= t.trial < 400)
    assert not any(t.info.get("kind") == "final" for t in kinds(None))


def test_levels_are_added_only_while_the_lines_through_a_base_stay_within_the_limit():
    """Twelve parameters of four values: levels 1 and 2 are 144 lines; level 3 would add
    880 and pass 1,000, so a settled search restarts instead of raising it."""
    space = parse_space({f"x{i}": {"values": [0, 1, 2, 3]} for i in range(12)})
    s = SEARCHERS["axis"](SearchSettings(space, 0, 20, 400, options={}))
    most, told = 0, 0
    while told < 400 and not s.finished:
        batch = s.ask(20)
        for sug in batch:
            x = [sug.params[f"x{i}"] for i in range(12)]
            s.tell(Result(sug.trial, "ok", float(sum((v - 1 - (i % 2)) ** 2
                                                      for i, v in enumerate(x)))))
            told += 1
            most = max(most, len(s.lines))
        if not batch:
            break
    assert s.restarts >= 1 and s.level == 2
    assert most <= 1000


@pytest.mark.parametrize("fn,noise", [("rosenbrock", 0.0), ("multimodal", 0.02)])
def test_restore_through_restarts_continues_as_the_live_search(fn, noise):
    """The same as restoring mid-run above, across moves and restarts with lazily built
    lines: the restored search never asks, so its lines are built only when results reach
    them, while the live one built them all on its asks."""
    calls = []
    live = budgeted(fn, instance=1)
    drive(live, fn, instance=1, noise=noise, calls=calls, limit=1200)
    assert live.restarts >= 1 and live.parzen_adopted > 0     # the global picks included
    fresh = replay(budgeted(fn, instance=1), calls)
    assert fresh.summary() == live.summary()
    for n in (1, 9):
        assert [(x.trial, x.params, x.info) for x in fresh.ask(n)] == \
            [(x.trial, x.params, x.info) for x in live.ask(n)]


def test_a_lazy_line_built_late_is_the_line_built_at_once():
    """Results elsewhere on the grid do not change a line: built at any moment before a
    result lands on it, a lazy line is the line an eager one became."""
    from autotune.searchers.axis.line import Line
    s = make("axis", "bowl")
    st, grid = s.store, s.grid
    base, v = (3, 5, 5, 5), (0, 1, 0, 0)

    def measure(p, value):
        st.start(st.newest_trial + 1, p)
        st.finish(Result(st.newest_trial, "ok", value))

    for j, value in zip((0, 3, 7, 10), (4.0, 2.0, 1.0, 3.0)):   # the spread points
        measure((3, j, 5, 5), value)
    eager = Line(grid, base, v, st, alpha=0.1, patience=2, max_points=30)
    lazy = Line(grid, base, v, st, alpha=0.1, patience=2, max_points=30, lazy=True)
    assert not lazy.built
    measure((4, 5, 5, 5), 0.5)               # off the line: nothing for either to take in
    assert lazy.phase == "spline" and lazy.built
    measure((3, 6, 5, 5), 0.7)               # on it: both take it in the same way
    for line in (eager, lazy):
        line.observe((3, 6, 5, 5), 0.7, st)
    for name in ("phase", "done", "stale", "est_best", "seen"):
        assert getattr(lazy, name) == getattr(eager, name), name
    assert list(lazy.spline.counts) == list(eager.spline.counts) == [1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1]
    assert np.allclose(lazy.spline.estimates(), eager.spline.estimates())
    assert lazy.wanted(st) == eager.wanted(st)


def test_the_additive_model_proposes_the_combination_of_the_axes_best_values():
    """On a separable bowl the model's first pick after the axis lines come back is the
    grid minimum itself, found before the lines could walk there base by base."""
    s = budgeted("bowl", instance=3)
    trials = drive(s, "bowl", instance=3, limit=400)
    _, argmin = bf.grid_minimum("bowl", 3)
    first = next(t for t in trials if bf.index_of(t.params) == argmin)
    assert first.info["kind"] in ("model", "sweep", "predicted")
    model = [t for t in trials if t.info.get("kind") == "model"]
    assert model and trials.index(first) < 120
    off = budgeted("bowl", instance=3, model=False, sweep=False)
    later = drive(off, "bowl", instance=3, limit=400)
    assert trials.index(first) < next(i for i, t in enumerate(later)
                                      if bf.index_of(t.params) == argmin)


def watch_picks(s, kind):
    """Wrap ``s.ask`` to check a global model's patience (``kind``: "model" or "elite",
    whose picks in flight are ``s.<kind>_out`` and misses in a row ``s.<kind>_misses``):
    after MODEL_PATIENCE misses in a row an ask adds a pick only while none is out. Counts
    the most picks ever out at once, all picks, the asks made while throttled and the
    picks they made."""
    from autotune.searchers.axis.search import MODEL_PATIENCE
    ask = s.ask
    seen = {"most": 0, "picks": 0, "throttled": 0, "throttled_picks": 0}

    def checked(n):
        before, misses = len(getattr(s, f"{kind}_out")), getattr(s, f"{kind}_misses")
        got = ask(n)
        new = sum(g.info.get("kind") == kind for g in got)
        seen["most"] = max(seen["most"], before + new)
        seen["picks"] += new
        if misses >= MODEL_PATIENCE:
            seen["throttled"] += 1
            seen["throttled_picks"] += new
            assert new <= (0 if before else 1)
        return got

    s.ask = checked
    return seen


def test_an_additive_model_that_keeps_missing_gets_one_pick_in_flight():
    """On an oblique ridge (interacting axes, which an additive model cannot represent) the
    model's combinations keep missing; after MODEL_PATIENCE misses in a row it has at most
    one pick in flight, and it keeps that one: a later pick may beat the base again."""
    from autotune.searchers.axis.search import MODEL_PATIENCE
    s = budgeted("ridge", instance=0)
    seen = watch_picks(s, "model")
    drive(s, "ridge", instance=0, limit=600)
    assert seen["most"] > 1                           # at full strength it had several out
    assert seen["throttled"] > 0 and seen["throttled_picks"] > 0
    on_bowl = budgeted("bowl", instance=0)           # additive landscape: its picks hit
    tell, worst = on_bowl.tell, [0]

    def watched_tell(result):
        tell(result)
        worst[0] = max(worst[0], on_bowl.model_misses)

    on_bowl.tell = watched_tell
    drive(on_bowl, "bowl", instance=0, limit=400)
    assert 0 < worst[0] < MODEL_PATIENCE              # it missed at times, never ten in a row


def test_range_needs_steps():
    raw = study("axis")
    raw["space"] = {"lr": {"low": 1e-5, "high": 1e-1, "log": True}, "fn": "bowl"}
    with pytest.raises(StudyError, match="space.lr"):
        parse_study(raw)
    raw["space"]["lr"]["steps"] = 7
    assert parse_study(raw).algorithm == "axis"


def test_driver_with_simulated_executor_and_resume(tmp_path):
    """Through the real driver: crash part-way, resume, get the same trajectory."""
    from autotune.driver import Driver, SimulatedCrash
    from autotune.history import History
    from autotune.journal import Journal

    raw = study("axis")
    raw["search"]["max_trials"] = 120
    whole = os.path.join(tmp_path, "whole")
    Driver(parse_study(raw), whole, progress=False).run()
    crashed = os.path.join(tmp_path, "crashed")
    with pytest.raises(SimulatedCrash):
        Driver(parse_study(raw), crashed, progress=False, stop_after_events=40).run()
    Driver(parse_study(raw), crashed, progress=False).run()
    a = History.load(Journal(os.path.join(whole, "history.jsonl")))
    b = History.load(Journal(os.path.join(crashed, "history.jsonl")))
    assert len(a.trials) == len(b.trials) == 120
    assert [a.trials[i].params for i in sorted(a.trials)] == \
        [b.trials[i].params for i in sorted(b.trials)]
    assert not b.warnings


def test_report_gives_the_chosen_setting_with_its_mean_and_spread(tmp_path):
    """Under noise the report names the search's setting (best mean of those measured twice),
    rebuilt from the history, with its mean and spread; other searchers have no such line."""
    from autotune.driver import Driver
    from autotune.history import History
    from autotune.journal import Journal
    from autotune.summary import summary

    raw = study("axis")
    raw["space"] = bf.space("convex", noise=0.02)
    directory = str(tmp_path / "noisy")
    driver = Driver(parse_study(raw), directory, progress=False)
    driver.run()
    base = driver.searcher.summary()
    history = History.load(Journal(os.path.join(directory, "history.jsonl")))
    text = summary(history)
    runs = [r.value for r in history.trials.values()
            if r.status == "ok" and bf.index_of(r.params) == tuple(base["base_index"])]
    assert len(runs) == base["base_repeats"] >= 2
    mean, sd = float(np.mean(runs)), float(np.std(runs, ddof=1))
    assert f"the search's setting: value {mean:.6g} mean of {len(runs)} runs, spread (sd) " \
           f"{sd:.3g}; noise sd" in text
    for name, value in base["base"].items():
        if name in ("lr", "w2", "w3", "w4"):
            assert f"  {name} = {value}" in text
    raw["search"] = {"algorithm": "random", "max_trials": 20}
    other = str(tmp_path / "random")
    Driver(parse_study(raw), other, progress=False).run()
    assert "the search's setting" not in summary(History.load(Journal(os.path.join(other, "history.jsonl"))))


def test_the_end_of_run_names_the_search_setting_where_it_differs_from_the_best_trial(
        tmp_path, capsys):
    """Under noise the best single trial is the luckiest: the end of ``run`` names the
    search's own setting too, as ``status`` does (the same lines), and leaves it out where
    it would only repeat the best trial (a clean search's base, measured once)."""
    from autotune.cli import main
    from autotune.history import History
    from autotune.journal import Journal
    from autotune.summary import searcher_lines
    from tests.helpers import write_study

    raw = {**study("axis", max_trials=150), "name": "noisy"}
    raw["space"] = bf.space("convex", noise=0.05)
    path = write_study(str(tmp_path / "noisy.yaml"), raw)
    directory = str(tmp_path / "noisy")
    assert main(["run", path, "--dir", directory, "--quiet"]) == 0
    out = capsys.readouterr().out
    history = History.load(Journal(os.path.join(directory, "history.jsonl")))
    expected = searcher_lines(history, "min", "value")
    assert expected and "mean of" in expected[0]
    assert "\n".join(expected) in out
    assert out.index("best value = ") < out.index("the search's setting")

    raw = {**study("axis", max_trials=60), "name": "clean"}
    path = write_study(str(tmp_path / "clean.yaml"), raw)
    assert main(["run", path, "--dir", str(tmp_path / "clean"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "best value = " in out and "the search's setting" not in out


@pytest.mark.parametrize("fn,noise", [("levy", 0.0), ("ellipsoid", 0.0), ("levy", 0.05)])
def test_a_line_hands_out_two_predicted_points_at_a_time(fn, noise):
    """A line whose fit slopes down to its end predicts a stretch of it below the base; at
    most two of those (``promise_per_line``, in flight included) go out at once, the rest
    as the refitted line still predicts them below: on a clean objective the two nearest to
    the line's base, under noise the two lowest. Unlimited (0), the same runs have lines
    with more out at once, and the predicted points are handed out either way."""
    import collections
    rng = np.random.default_rng(7)

    def most_per_line(limit):
        options = {} if limit is None else {"promise_per_line": limit}
        s = SEARCHERS["axis"](SearchSettings(parse_space(bf.space(fn)), 0, 50, 400,
                                             options=options))
        flight, told, most, predicted, checked = [], 0, 0, 0, 0
        while told < 300 and not s.finished:
            for g in s.ask(50 - len(flight)):
                heapq.heappush(flight, (told + 10 + g.trial % 7, g.trial, g))
                predicted += g.info.get("kind") == "predicted"
            if s._promise_cache is not None:
                per = collections.defaultdict(list)
                for p, line in s._promise_cache[1]:
                    per[id(line)].append((p, line))
                most = max([most, *map(len, per.values())])
                if limit is None and s.base in s.store.values:
                    assert s._spread_seen() == (noise > 0) or told < 60
                    target = s.store.mean(s.base)
                    for kept in per.values():
                        line = kept[0][1]
                        est, at = s._estimates(line), line.pos[line.base]
                        # nearest first (clean) or lowest first (noisy): how far or how high
                        rank = (lambda i: abs(i - at)) if not s._spread_seen() \
                            else (lambda i: est[i])
                        worst = max(rank(line.pos[p]) for p, _ in kept)
                        left = [rank(i) for i in range(line.n) if est[i] < target
                                and not s.store.measured(line.points[i])
                                and line.points[i] not in {p for p, _ in kept}]
                        assert all(r >= worst for r in left), (worst, left)
                        checked += bool(left) and s._spread_seen() == (noise > 0)
            _, trial, g = heapq.heappop(flight)
            value = bf.true_value(fn, 0, bf.index_of(g.params))
            s.tell(Result(trial, "ok", value + noise * float(rng.standard_normal())))
            told += 1
        return most, predicted, checked

    most, predicted, checked = most_per_line(None)
    assert most == 2 and predicted > 0 and checked > 0
    most, predicted, _ = most_per_line(0)
    assert most > 2 and predicted > 0


def slanted(slide=True, workers=10, budget=None, **options):
    """A batch size of three values and a learning rate of forty whose best value moves
    with it by fifteen steps a step (the valley at a slant), the best at the largest batch."""
    space = parse_space({"batch": {"values": [0, 1, 2]}, "lr": {"values": list(range(40))}})
    s = SEARCHERS["axis"](SearchSettings(space, 0, workers, budget,
                                         options={"slide": slide, **options}))

    def value(sug):
        b, lr = sug.params["batch"], sug.params["lr"]
        return float(abs(lr - (5 + 15 * b)) + 0.5 * (2 - b))
    return s, value


def run_slanted(s, value, workers=10, limit=300, calls=None):
    told = 0
    while not s.finished and told < limit:
        got = s.ask(workers)
        if calls is not None:
            calls.append(("ask", workers, got))
        if not got:
            break
        for sug in got:
            result = Result(sug.trial, "ok", value(sug))
            if calls is not None:
                calls.append(("tell", result))
            s.tell(result)
            told += 1
    return told


@pytest.mark.parametrize("start", [None, {"batch": 0, "lr": 5}])
def test_a_step_on_a_short_axis_is_followed_along_the_long_one(start):
    """From a base on the valley's floor every neighbour is worse (a step of the batch size
    moves the best learning rate fifteen steps; a diagonal moves it one), so the search
    without the lines through the short axis's neighbours settles short of the minimum;
    with them it finds it."""
    options = {"start": start} if start else {}
    s, value = slanted(**options)
    told = run_slanted(s, value)
    assert s.finished and s.base == (2, 35) and told < 150
    s, value = slanted(slide=False, **options)
    run_slanted(s, value)
    assert s.finished and s.base != (2, 35)


def test_the_lines_a_short_axis_opens():
    """Only an axis one of whose steps spans three or more of another's opens lines along
    that one: through the base's neighbours on the short axes, their diagonals included
    while they stay few."""
    from autotune.searchers.axis.grid import Grid
    grid = Grid(parse_space({"a": {"values": [0, 1, 2]}, "b": {"values": list(range(40))},
                             "c": {"values": list(range(7))}}), "axis")
    along_b = {(2, 20, 3), (0, 20, 3), (1, 20, 4), (1, 20, 2),
               (2, 20, 4), (0, 20, 2), (2, 20, 2), (0, 20, 4)}
    lines = grid.slides((1, 20, 3))
    assert len(lines) == len(set(lines)) == 10
    assert {q for q, v in lines if v == (0, 1, 0)} == along_b
    assert {q for q, v in lines if v == (0, 0, 1)} == {(2, 20, 3), (0, 20, 3)}
    assert set(grid.slides((0, 0, 0))) == {((1, 0, 0), (0, 1, 0)), ((0, 0, 1), (0, 1, 0)),
                                          ((1, 0, 1), (0, 1, 0)), ((1, 0, 0), (0, 0, 1))}
    even = Grid(parse_space({"a": {"values": list(range(10))},
                             "b": {"values": list(range(11))}}), "axis")
    assert even.slides((4, 5)) == []
    # eight two-valued axes beside a learning rate: 16 lines of their steps alone, not the
    # 6,560 of every combination
    many = Grid(parse_space({**{f"f{i}": {"values": [0, 1]} for i in range(8)},
                             "lr": {"values": list(range(40))}}), "axis")
    assert len(many.slides((0,) * 8 + (20,))) == 8


def test_a_search_with_slide_lines_restores_from_its_record():
    """The lines through a short axis's neighbours come from the base alone: a searcher
    handed the record asks what the live one asks, across moves and a restart."""
    calls = []
    live, value = slanted(budget=400)
    run_slanted(live, value, limit=250, calls=calls)
    assert live.moves >= 2 and live.restarts >= 1
    fresh = replay(slanted(budget=400)[0], calls)
    assert fresh.summary() == live.summary()
    for n in (1, 9):
        assert [(x.trial, x.params, x.info) for x in fresh.ask(n)] == \
            [(x.trial, x.params, x.info) for x in live.ask(n)]


class Forgetful:
    """A searcher whose memo of earlier bases' parallel lines is emptied before every call,
    so that every look-back is worked out afresh from the store."""

    def __init__(self, searcher):
        self.searcher = searcher

    def __getattr__(self, name):
        return getattr(self.searcher, name)

    def ask(self, n):
        self.searcher._lent = {}
        return self.searcher.ask(n)

    def tell(self, result):
        self.searcher._lent = {}
        self.searcher.tell(result)


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_the_look_back_at_earlier_bases_is_remembered_exactly(noise):
    """What is measured on an earlier base's parallel line is kept between decisions and
    dropped when a result lands on it: a search that works it out afresh each time asks for
    the same points, in the same order."""
    space = parse_space(bf.space("rastrigin", 1))
    kept, fresh = (SEARCHERS["axis"](SearchSettings(space, 0, 8, 600)) for _ in range(2))
    trials = drive(kept, "rastrigin", 1, workers=8, noise=noise, limit=600)
    again = drive(Forgetful(fresh), "rastrigin", 1, workers=8, noise=noise, limit=600)
    assert [s.params for s in trials] == [s.params for s in again]
    assert kept.moves > 5 and any(kept._lent.values())  # moves made, and lines looked back at
