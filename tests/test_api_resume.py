"""The Python API's promise under faults: a loop killed or refused midway loses nothing, runs
nothing twice, and a refused call writes nothing."""
import os

import pytest

import autotune as at
from autotune.errors import StudyError

from .helpers import study_dict


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
