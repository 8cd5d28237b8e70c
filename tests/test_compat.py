"""Histories written by earlier versions (tests/data, one set per schema) resume under this one.

The files are never regenerated: tests/data/make_history.py writes a new set when the schema
version changes, and the old sets stay, so each is checked under every later version.
"""
from __future__ import annotations

import copy
import glob
import json
import os

import pytest

from autotune import events as ev
from autotune.driver import Driver
from autotune.report import summary
from autotune.study import parse_study
from tests.helpers import history

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
FILES = sorted(glob.glob(os.path.join(DATA, "history_v*_*.jsonl")))


def test_there_is_a_history_for_every_schema_version():
    versions = {int(os.path.basename(f).split("_")[1][1:]) for f in FILES}
    assert versions == set(range(1, ev.SCHEMA + 1))


@pytest.mark.parametrize("cut", [None, 30], ids=["finished", "killed-mid-study"])
@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[8:-6] for f in FILES])
def test_an_old_history_resumes_here(tmp_path, path, cut):
    d = tmp_path / "d"
    d.mkdir()
    lines = open(path, "rb").read().split(b"\n")[:-1]
    (d / "history.jsonl").write_bytes(b"".join(ln + b"\n" for ln in lines[:cut]))
    before = history(str(d))
    assert not before.warnings and before.study
    config = copy.deepcopy(before.study["config"])
    config["search"]["max_trials"] += 8
    summary_ = Driver(parse_study(config), str(d), progress=False).run()
    after = history(str(d))
    assert not after.warnings and after.damaged == 0
    assert summary_.trials == len(after.trials)
    assert len(before.trials) < len(after.trials) <= config["search"]["max_trials"]
    for t, rec in before.trials.items():
        kept = after.trials[t]
        assert (kept.params, kept.fidelity, kept.parent) == (rec.params, rec.fidelity, rec.parent)
        if rec.done:
            assert (kept.status, kept.value, kept.cost_s) == (rec.status, rec.value, rec.cost_s)
    assert all(r.done for r in after.trials.values())
    assert min(set(after.trials) - set(before.trials)) == before.next_id
    assert "trials:" in summary(after)
    # what this version appended is in its own schema: every new line carries a checksum
    new = (d / "history.jsonl").read_bytes().split(b"\n")[len(lines[:cut]):-1]
    assert new and all(b',"c":"' in ln for ln in new)
    assert json.loads(lines[0])["e"] == "study"
