"""A pretrain whose job's outcome file is damaged (a disk error, an older version killed
mid-write): its result is lost, not the pretrain's failure. Under a live driver it is taken
from the build's own record where the build is whole, else run again once a run, as a trial
so ended is (README, Executors: local); damaged again, it fails with one line."""
import json
import os

import pytest

from tests.helpers import cli, history, study_dict, write_study


def torn_study(tmp_path, **pre) -> str:
    data = study_dict(objective={"entry": "tests.objectives:finetune"},
                      space={"x": {"values": [0, 1]}}, search={"algorithm": "grid"},
                      executor={"kind": "local", "max_concurrent": 1},
                      stages={"pretrain": {"entry": "tests.objectives:pretrain_torn_outcome",
                                           "epochs": 1,
                                           "params": {"count": str(tmp_path / "runs"), **pre}}})
    return write_study(str(tmp_path / "s.yaml"), data)


def stage_events(d: str) -> list[dict]:
    with open(os.path.join(d, "history.jsonl")) as fh:
        return [e for e in map(json.loads, fh) if e.get("e") == "stage"]


def runs(tmp_path) -> int:
    with open(tmp_path / "runs") as fh:
        return len(fh.read())


def test_a_whole_build_whose_outcome_is_torn_is_recorded_from_its_record(tmp_path):
    d = str(tmp_path / "d")
    out = cli("run", torn_study(tmp_path, damage=1), "--dir", d)
    assert out.returncode == 0, out.stderr
    assert runs(tmp_path) == 1  # not built again: the cache's done.json is this job's
    warned = [ln for ln in out.stderr.splitlines() if "could not be read" in ln]
    assert len(warned) == 1 and "not built again" in warned[0], out.stderr
    assert [e["state"] for e in stage_events(d)] == ["submit", "end"]
    h = history(d)
    pre = h.stages["pretrain"]
    assert pre.status == "ok" and pre.cost_s > 0 and pre.metrics["built"] == 1.0
    assert [r.status for r in h.trials.values()] == ["ok", "ok"]


def test_a_lost_outcome_runs_the_pretrain_again_once(tmp_path):
    d = str(tmp_path / "d")
    out = cli("run", torn_study(tmp_path, damage=1, fail=1), "--dir", d)
    assert out.returncode == 0, out.stderr
    assert runs(tmp_path) == 2
    warned = [ln for ln in out.stderr.splitlines() if "could not be read" in ln]
    assert len(warned) == 1 and "runs again" in warned[0], out.stderr
    events = stage_events(d)
    assert [e["state"] for e in events] == ["submit", "submit", "end"]  # one end, one attempt
    assert {e["attempt"] for e in events} == {0}
    h = history(d)
    assert h.stages["pretrain"].status == "ok" and h.stages["pretrain"].attempt == 0
    assert [r.status for r in h.trials.values()] == ["ok", "ok"]


def test_a_pretrain_outcome_damaged_twice_fails_with_one_line(tmp_path):
    d = str(tmp_path / "d")
    out = cli("run", torn_study(tmp_path, damage=2, fail=2), "--dir", d)
    assert out.returncode == 1
    assert runs(tmp_path) == 2
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("autotune: ")]
    assert len(errors) == 1 and "could not be read" in errors[0] and "second time" in errors[0]
    events = stage_events(d)
    assert [e["state"] for e in events] == ["submit", "submit", "end"]
    assert events[-1]["status"] == "failed" and not history(d).trials


def test_a_whole_build_its_outcome_torn_while_no_driver_ran_is_recorded_with_its_cost(tmp_path):
    """A killed driver's pretrain that ended alone, its build whole, its outcome torn: the
    next run records it from done.json with the build's cost, as a live driver does, not
    ``cached`` at no cost (the study's compute would leave the build out)."""
    import time

    from tests.test_stages import kill_driver_when

    d = str(tmp_path / "d")
    path = torn_study(tmp_path, damage=1, sleep_s=2.0)
    kill_driver_when(path, d, lambda: os.path.exists(tmp_path / "runs"))  # it runs
    outcome = os.path.join(d, "stages", "pretrain", "outcome.json")
    deadline = time.time() + 30
    while not os.path.exists(outcome):  # it ends alone, its outcome torn
        assert time.time() < deadline
        time.sleep(0.05)
    out = cli("run", path, "--dir", d)
    assert out.returncode == 0, out.stderr
    assert runs(tmp_path) == 1  # not built again
    warned = [ln for ln in out.stderr.splitlines() if "could not be read" in ln]
    assert len(warned) == 1 and "not built again" in warned[0], out.stderr
    assert [e["state"] for e in stage_events(d)] == ["submit", "end"]
    h = history(d)
    pre = h.stages["pretrain"]
    assert pre.status == "ok" and pre.metrics["built"] == 1.0 and pre.cost_s >= 2.0
    assert h.spent_s == pytest.approx(sum(r.cost_s for r in h.trials.values()) + pre.cost_s)


def test_a_multi_rank_build_its_outcome_torn_while_no_driver_ran_is_recorded_with_its_cost(
        tmp_path):
    """The same with two ranks a job: the job is its launcher's process and the build's
    record is written by a rank, its child; the build is still this job's, not ``cached``."""
    import time

    from tests.test_stages import kill_driver_when

    d = str(tmp_path / "d")
    data = study_dict(objective={"entry": "tests.objectives:finetune"},
                      space={"x": {"values": [0, 1]}}, search={"algorithm": "grid"},
                      executor={"kind": "local", "max_concurrent": 1, "tasks_per_trial": 2},
                      stages={"pretrain": {"entry": "tests.objectives:pretrain_torn_outcome",
                                           "epochs": 1,
                                           "params": {"count": str(tmp_path / "runs"),
                                                      "sleep_s": 2.0}}})
    path = write_study(str(tmp_path / "s.yaml"), data)
    kill_driver_when(path, d, lambda: os.path.exists(tmp_path / "runs"))  # it runs
    outcome = os.path.join(d, "stages", "pretrain", "outcome.json")
    deadline = time.time() + 30
    while not os.path.exists(outcome):  # it ends alone
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.2)  # its launcher exits (one still ending is re-attached to: read alike)
    with open(outcome, "w") as fh:  # and its outcome is torn
        fh.write('{"resu')
    out = cli("run", path, "--dir", d)
    assert out.returncode == 0, out.stderr
    assert runs(tmp_path) == 1  # one rank built it (the other found it built), not again
    warned = [ln for ln in out.stderr.splitlines() if "could not be read" in ln]
    assert len(warned) == 1 and "not built again" in warned[0], out.stderr
    pre = history(d).stages["pretrain"]
    assert pre.status == "ok" and pre.metrics["built"] == 1.0 and pre.cost_s >= 2.0
