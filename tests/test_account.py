"""The searcher's account of a study (account.py): a report reads it three times (its
summary and two plots) and the axis search's restore is the dearest part of a report of a
long study, so it is rebuilt once per state of the history."""
from autotune import account, report, summary
from autotune.driver import Driver
from autotune.study import parse_study
from tests.helpers import history, study_dict


def axis_study(tmp_path) -> str:
    """A finished 12-trial axis study's directory (simulated executor)."""
    study = parse_study(study_dict(
        space={"x": {"values": [0.0, 1.0, 2.0, 3.0]}, "y": {"values": [-1.0, 0.0, 1.0]}},
        search={"algorithm": "axis", "max_trials": 12},
        executor={"kind": "simulated", "max_concurrent": 3}))
    d = str(tmp_path / "d")
    Driver(study, d, progress=False).run()
    return d


def test_a_report_restores_the_search_once_and_each_caller_gets_its_own_copy(tmp_path, monkeypatch):
    d = axis_study(tmp_path)
    rebuilt = []
    rebuild = account._rebuild
    monkeypatch.setattr(account, "_rebuild", lambda h: rebuilt.append(h) or rebuild(h))

    h = history(d)
    text = summary.summary(h)
    report.plot_all(h, str(tmp_path / "plots"))
    assert "the search's setting" in text
    assert len(rebuilt) == 1

    first = account.searcher_account(h)
    expected = account.searcher_account(h)
    first["base"]["x"] = 99.0
    assert account.searcher_account(h) == expected != first
    assert len(rebuilt) == 1

    # another load of the study (a report after more trials ran) is read again, once
    again = history(d)
    assert account.searcher_account(again) == expected
    assert account.searcher_account(again) == expected
    assert len(rebuilt) == 2
    assert rebuilt[1] is again


def test_a_history_that_grows_in_place_is_read_again(tmp_path):
    """A driver's history grows event by event in the same object: the account of its
    first half is not handed out once the rest is applied."""
    import os

    from autotune.history import History
    from autotune.journal import Journal

    d = axis_study(tmp_path)
    events = Journal(os.path.join(d, "history.jsonl")).read().events
    live = History()
    half = len(events) // 2
    for event in events[:half]:
        live.apply(event)
    early = account.searcher_account(live)
    for event in events[half:]:
        live.apply(event)
    assert account.searcher_account(live) == account.searcher_account(history(d)) != early
