"""The Python API's promise under faults: a loop killed or refused midway loses nothing, runs
nothing twice, and a refused call writes nothing."""
import os
import signal
import subprocess
import sys

import pytest

import autotune as at
from autotune.errors import StudyError

from .helpers import REPO, study_dict


def _own_loop(max_trials=3):
    raw = study_dict(search={"max_trials": max_trials})
    raw["objective"] = {"metric": "loss"}
    return raw


def _files(d):
    return {name: open(os.path.join(d, name), "rb").read() for name in sorted(os.listdir(d))
            if name.endswith((".jsonl", ".csv", ".json"))}


def test_a_refused_tell_outside_a_session_writes_nothing(tmp_path):
    d = str(tmp_path / "s")
    fresh = at.create_study(_own_loop(), dir=d)
    with pytest.raises(StudyError, match=r"^tell: trial 0 is unknown in this study$"):
        fresh.tell(0, 0.5)  # nothing asked yet: no directory made for it
    assert not os.path.exists(d)
    with at.create_study(_own_loop(), dir=d) as study:
        study.tell(study.ask(), 0.5)
        study.ask()  # trial 1 left open
    before = _files(d)
    loaded = at.load_study(d)
    for number, why in ((0, "already finished"), (7, "unknown")):
        with pytest.raises(StudyError, match=f"^tell: trial {number} is {why} in this study$"):
            loaded.tell(number, 0.1)
    assert _files(d) == before  # no session opened, no resume recorded, for a refusal
    assert loaded.tell(1, 0.25).value == 0.25  # the open trial is told as it was asked
    loaded.close()


KILLED_LOOP = """
import os, signal, sys
import autotune as at
raw = {raw!r}
study = at.create_study(raw, dir=sys.argv[1])
study.tell(study.ask(), 0.5)
trial = study.ask()
print(trial.number, repr(trial.params), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # between ask and tell
"""


def test_a_loop_killed_between_ask_and_tell_hands_its_trial_out_again(tmp_path):
    d = str(tmp_path / "s")
    code = KILLED_LOOP.format(raw=_own_loop(max_trials=4))
    out = subprocess.run([sys.executable, "-c", code, d], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == -signal.SIGKILL, out.stderr
    number, params = out.stdout.split(" ", 1)
    study = at.load_study(d)
    # every view says the untold trial is interrupted: nothing runs it, ask() hands it out
    assert [(t.number, t.status) for t in study.trials] == [(0, "ok"), (1, "interrupted")]
    assert at.load(d).counts() == {"ok": 1, "interrupted": 1}
    assert list(study.trials_dataframe()["status"]) == ["ok", "interrupted"]
    assert not study.finished
    told = []
    with study:
        while (trial := study.ask()) is not None:
            told.append(trial.number)
            if trial.number == int(number):
                assert repr(trial.params) == params.strip()  # the same trial, not a new one
            study.tell(trial, 1.0)
        assert study.end_reason == "max_trials (4) reached"
    assert told == [1, 2, 3]  # the killed loop's trial first, then new ones: none twice
    assert [(t.number, t.status) for t in study.trials] == [(n, "ok") for n in range(4)]


def test_a_bare_integer_too_large_for_a_float_is_a_failed_trial_as_in_a_dict(tmp_path):
    huge = 2 ** 2000
    with at.create_study(_own_loop(), dir=str(tmp_path / "s")) as study:
        for result in ({"loss": huge}, huge):  # was an OverflowError from tell, the trial open
            rec = study.tell(study.ask(), result)
            assert (rec.status, rec.error) == (
                "failed", "metric 'loss' is an integer too large for a float")
        assert study.tell(study.ask(), 3).value == 3.0
    raw = study_dict(search={"max_trials": 2}, max_failures=0)
    raw["objective"] = {"entry": lambda params, ctx: huge, "metric": "loss"}
    with pytest.raises(at.StudyStopped):
        at.Study(raw, dir=str(tmp_path / "f")).run(progress=False)
    assert {t.error for t in at.load(str(tmp_path / "f")).trials} == {
        "metric 'loss' is an integer too large for a float"}  # not "OverflowError: ..."


def test_ctrl_c_while_the_journal_syncs_never_records_a_tell_or_an_ask_twice(tmp_path,
                                                                             monkeypatch):
    import autotune.journal

    sync, armed = os.fsync, []

    def slow_sync(fd):  # a Ctrl-C landing in the sync (long on a network file system)
        sync(fd)
        if armed:
            armed.clear()
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(autotune.journal.os, "fsync", slow_sync)
    d = str(tmp_path / "s")
    with at.create_study(_own_loop(max_trials=3), dir=d) as study:
        first = study.ask()
        armed.append(True)
        with pytest.raises(KeyboardInterrupt):
            study.tell(first, 0.5)  # recorded whole, then the Ctrl-C
        with pytest.raises(StudyError, match="trial 0 is already finished"):
            study.tell(first, 0.6)  # the cell run again: not a second end, ignored on replay
        armed.append(True)
        with pytest.raises(KeyboardInterrupt):
            study.ask()
        again = study.ask()  # the trial the interrupted ask recorded, not a second trial 1
        assert again.number == 1 and study.open_trials == [1]
        study.tell(again, 0.7)
    view = at.load(d)
    assert view.warnings == []  # was: "ask reuses the id of trial 1, skipped"
    assert [(t.number, t.status, t.value) for t in view.trials] == [(0, "ok", 0.5),
                                                                      (1, "ok", 0.7)]
    assert open(os.path.join(d, "history.jsonl")).read().count('"e":"end"') == 2


def test_a_search_with_nothing_more_to_propose_is_finished_read_outside_its_loop(tmp_path):
    d = str(tmp_path / "s")
    raw = study_dict(space={"x": {"low": 0.0, "high": 1.0, "steps": 5}, "y": {"values": [1, 2, 3]}},
                     search={"algorithm": "axis", "max_trials": 20},
                     executor={"max_concurrent": 3})
    raw["objective"] = {"metric": "loss"}
    study = at.create_study(raw, dir=d)
    with study:
        while (trial := study.ask()) is not None:
            study.tell(trial, (trial.params["x"] - 0.3) ** 2 + trial.params["y"] / 10)
        assert len(study.trials) < 20  # the axis search stopped short of max_trials
        ended = study.end_reason
        assert ended == "the search has nothing more to propose" and study.finished
    # read from the history alone, it said "" and finished False: ask() would give None
    assert (study.end_reason, study.finished) == (ended, True)
    loaded = at.load_study(d)
    assert (loaded.end_reason, loaded.finished) == (ended, True)
    assert loaded.ask() is None
    loaded.close()


@pytest.mark.parametrize("state", ["running", "ended"])
def test_a_loop_is_refused_where_a_killed_run_left_local_trials_as_run_is(tmp_path, state):
    """``run`` under another executor kind refuses a study whose killed driver left trials
    running (or ended, unrecorded) as local workers; an ask/tell loop skipped the check and
    asked new trials past them, their results unrecorded (``finished`` at ``max_trials``
    while they ran on). Refused the same way, nothing written; stopped by ``cancel``, they
    are handed out again."""
    from autotune.cancel import cancel_study

    from .test_kill_resume import left_by_a_killed_driver, one_trial

    log, d = str(tmp_path / "runs.log"), str(tmp_path / "d")
    first = left_by_a_killed_driver(one_trial(log, 10.0 if state == "running" else 0.1), d, log,
                                    state)
    before = _files(d)
    study = at.load_study(d)
    with pytest.raises(StudyError) as exc:
        study.ask()
    assert str(exc.value) == (
        f"ask: {d} has trial(s) 0 that a killed driver left running (or ended, not yet "
        "recorded) as local jobs, which an ask/tell loop can neither watch nor record. Resume "
        f"with run() under executor kind local (it collects them), or stop those still "
        f"running with: python -m autotune cancel {d} (ask() then hands them out again)")
    assert _files(d) == before                      # no session opened, no resume recorded
    if state == "running":
        cancel_study(d)
        first.executor._running[0].proc.wait(timeout=10)
        with study:
            assert study.ask().number == 0          # as the refusal says


def test_a_loop_is_refused_a_study_with_a_pretrain_it_would_not_run(tmp_path):
    """``ask()`` handed out the trials of a study with ``stages.pretrain`` with
    ``ctx.pretrained`` None: the pretrain ``run()`` builds first never ran, and each trial
    fine-tuned from nothing. Refused in one line, nothing written."""
    d = str(tmp_path / "s")
    raw = _own_loop()
    raw["stages"] = {"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 2}}
    study = at.Study(raw, dir=d)
    with pytest.raises(StudyError, match=r"^ask: stages.pretrain: it has not been built yet, "
                                         r"and an ask/tell loop does not build it .*"
                                         r"ctx.pretrained None\); build it first with "
                                         r"build_pretrain\(\)"):
        study.ask()
    assert not os.path.exists(d)
