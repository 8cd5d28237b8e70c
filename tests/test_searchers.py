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


def test_random_in_a_finite_space_proposes_each_setting_once_per_round():
    # 2 x 3 x 2 settings: a grid, an int range, a range with steps, and a fixed value
    space = {"a": {"values": [1, 2]}, "n": {"low": 1, "high": 3, "int": True},
             "m": {"low": 0.0, "high": 1.0, "steps": 2}, "k": 5}
    rnd = SEARCHERS["random"](settings(space, seed=2, max_trials=30))
    got = rnd.ask(5) + rnd.ask(25)
    assert [s.trial for s in got] == list(range(30))
    key = [(s.params["a"], s.params["n"], s.params["m"]) for s in got]
    assert len(set(key[:12])) == 12 and len(set(key[12:24])) == 12  # each once per round
    assert len(set(key[24:])) == 6 and set(key[24:]) <= set(key[:12])
    assert all(s.info.get("repeat", 0) == t // 12 for t, s in enumerate(got))
    assert all(s.params["k"] == 5 for s in got) and not rnd.finished
    assert "the space holds 12 settings: random search proposes each once, then each again" \
        in rnd.notice and "until max_trials (30)" in rnd.notice
    assert SEARCHERS["random"](settings(space, max_trials=12)).notice == ""
    # what ends it, named (was 'until the budget', also where there was none)
    assert SEARCHERS["random"](settings(space, max_compute_s=3600.0)).notice.endswith(
        "until max_compute_s (3600 s) is spent")
    assert SEARCHERS["random"](settings(space)).notice.endswith("until the run is stopped")
    assert SEARCHERS["asha"](settings(space, max_compute_s=60.0, options={"fidelity": {
        "min": 1, "max": 9}})).notice.endswith("until max_compute_s (60 s) is spent")
    fixed = SEARCHERS["random"](settings({"lr": 0.1, "w": {"values": [4]}}, max_trials=4))
    assert [(s.params, s.info) for s in fixed.ask(3)] == [
        ({"lr": 0.1, "w": 4}, {}), ({"lr": 0.1, "w": 4}, {"repeat": 1}),
        ({"lr": 0.1, "w": 4}, {"repeat": 2})]
    assert "a single setting" in fixed.notice
    # a continuous range: nothing to use up
    cont = SEARCHERS["random"](settings({"x": {"low": 0.0, "high": 1.0}, "c": {"values": [1]}}))
    assert len(cont.ask(50)) == 50 and cont.notice == ""


def test_random_in_a_finite_space_restored_from_its_suggestions_draws_the_same():
    space = {"a": {"values": [0.1, 0.2, 0.5]}, "b": {"values": ["x", "y"]}, "i": {
        "low": 1, "high": 4, "int": True, "log": True}}
    live = SEARCHERS["random"](settings(space, seed=7))
    first = live.ask(7) + live.ask(24)  # into the second round
    rest = live.ask(30)
    restored = SEARCHERS["random"](settings(space, seed=7))
    for s in first:  # as restore() does: the recorded suggestions, nothing re-asked
        restored.adopt(s)
    again = restored.ask(30)
    assert [(s.trial, s.params, s.info) for s in again] == [(s.trial, s.params, s.info)
                                                            for s in rest]
    # a setting recorded twice in the first round (an older version drew repeats) counts as
    # run twice: the first round still proposes the other 23 before it
    old = SEARCHERS["random"](settings(space, seed=7))
    old.adopt(first[0])
    old.adopt(type(first[0])(1, dict(first[0].params)))
    more = old.ask(23)
    assert len({tuple(s.params.values()) for s in more} | {tuple(first[0].params.values())}) == 24


# ---- multi-fidelity searchers in a finite space -----------------------------------------------
SMALL = {"a": {"values": [0, 1, 2, 3]}, "b": {"values": ["x", "y"]}, "k": 5}  # 8 settings
MF_OPTIONS = {"asha": {}, "asha-bo": {"min_points_in_model": 3, "random_fraction": 0.2},
              "hyperband": {}}


def mf_searcher(algorithm, seed=0, **kw):
    options = {"fidelity": {"min": 1, "max": 9, "eta": 3}, **MF_OPTIONS[algorithm]}
    return SEARCHERS[algorithm](settings(SMALL, seed=seed, options=options, **kw))


def loss_of(params):
    return (params["a"] - 2) ** 2 + (0.5 if params["b"] == "y" else 0.0)


def drive(searcher, trials, batch=3):
    """Ask in batches of ``batch`` and tell each batch's results at once (in trial order),
    as a driver with that many workers would; the calls made, in order."""
    calls = []
    while sum(1 for kind, _ in calls if kind == "ask") < trials:
        asked = searcher.ask(min(batch, trials - sum(1 for k, _ in calls if k == "ask")))
        if not asked:
            break
        calls += [("ask", s) for s in asked]
        for s in asked:
            result = Result(s.trial, "ok", loss_of(s.params) + 1.0 / s.fidelity)
            searcher.tell(result)
            calls.append(("tell", result))
    return calls


@pytest.mark.parametrize("algorithm", sorted(MF_OPTIONS))
def test_multi_fidelity_searchers_start_each_setting_once_per_round(algorithm):
    """A new configuration in a finite space is a setting not yet started this round (was:
    drawn with replacement, the same setting started again while others never ran)."""
    searcher = mf_searcher(algorithm, max_trials=60)
    asked = [s for kind, s in drive(searcher, 60) if kind == "ask"]
    new = [s for s in asked if s.parent is None]
    assert len(new) >= 16
    key = [(s.params["a"], s.params["b"]) for s in new]
    assert len(set(key[:8])) == 8 and len(set(key[8:16])) == 8
    assert [s.info.get("repeat", 0) for s in new[:16]] == [0] * 8 + [1] * 8
    assert all(s.params["k"] == 5 for s in asked)
    assert ("the space holds 8 settings: " f"{algorithm} starts each once, then each again"
            in searcher.notice and "until max_trials (60)" in searcher.notice)
    again = mf_searcher(algorithm, max_trials=60)
    assert [(s.trial, s.params, s.fidelity, s.parent, s.info)
            for kind, s in drive(again, 60) if kind == "ask"] == [
        (s.trial, s.params, s.fidelity, s.parent, s.info) for s in asked]


@pytest.mark.parametrize("algorithm", sorted(MF_OPTIONS))
def test_multi_fidelity_rounds_restored_from_the_record_ask_the_same(algorithm):
    """Restored by adopting the recorded suggestions and telling the results (nothing
    re-asked), at any point of a run that went round the space twice, the searcher asks
    exactly what the live one asked next."""
    calls = drive(mf_searcher(algorithm, max_trials=50), 50)
    for cut, (kind, live) in enumerate(calls):
        if kind != "ask":
            continue
        restored = mf_searcher(algorithm, max_trials=50)
        for done, item in calls[:cut]:
            restored.adopt(item) if done == "ask" else restored.tell(item)
        got = restored.ask(1)
        assert [(s.trial, s.params, s.parent, s.info) for s in got] == [
            (live.trial, live.params, live.parent, live.info)], f"cut at {cut}"


def test_multi_fidelity_notice_only_when_the_limits_may_pass_the_space():
    assert mf_searcher("asha", max_trials=8).notice == ""
    assert "max_epochs_total (20)" in SEARCHERS["asha"](settings(SMALL, options={
        "fidelity": {"min": 1, "max": 9, "eta": 3}, "max_epochs_total": 20})).notice
    assert SEARCHERS["asha"](settings(SMALL, options={      # at most 8 bottom-rung starts
        "fidelity": {"min": 1, "max": 9, "eta": 3}, "max_epochs_total": 8})).notice == ""
    # hyperband's one iteration (no limit given): 9 + 5 + 3 new configurations
    one = SEARCHERS["hyperband"](settings(SMALL, options={"fidelity": {"min": 1, "max": 9}}))
    assert "until its 3 brackets have started" in one.notice
    single = SEARCHERS["hyperband"](settings({"a": {"values": [1]}}, max_trials=20, options={
        "fidelity": {"min": 1, "max": 9}, "brackets": 1}))
    assert single.notice.startswith("the space holds a single setting: hyperband runs it again")
    assert SEARCHERS["asha"](settings({"x": {"low": 0.0, "high": 1.0}}, options={
        "fidelity": {"min": 1, "max": 9}})).notice == ""
