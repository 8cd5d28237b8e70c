"""A SLURM pretrain job whose result file (submitit's pickle) cannot be read: its result is
lost, not the pretrain's failure, decided as under the local executor (tests/
test_stage_outcome.py): recorded from the cache's done.json where this job built the
checkpoint, else run again once a run; damaged again, it fails with one line. The jobs here
wait a second (``result_grace_s``) for a readable result, not the default 15. Needs a real
SLURM (``bash scripts/slurm-local.sh start``); skipped where ``sinfo`` does not answer."""
from __future__ import annotations

import pytest

from autotune.executors.slurm_query import slurm_reachable

from tests.helpers import cli, history, study_dict, write_study
from tests.test_stage_outcome import runs, stage_events

pytestmark = pytest.mark.skipif(
    not slurm_reachable(),
    reason="no SLURM reachable (sinfo failed); start a local one with: "
           "bash scripts/slurm-local.sh start")


def torn_slurm_study(tmp_path, **pre) -> str:
    data = study_dict(objective={"entry": "tests.objectives:finetune"},
                      space={"x": {"values": [0, 1]}}, search={"algorithm": "grid"},
                      executor={"kind": "slurm", "max_concurrent": 2, "time_limit_min": 10,
                                "gpus_per_job": 0, "poll_s": 0.5, "max_poll_s": 2,
                                "result_grace_s": 1},
                      stages={"pretrain": {"entry": "tests.objectives:pretrain_torn_outcome",
                                           "epochs": 1,
                                           "params": {"count": str(tmp_path / "runs"), **pre}}})
    return write_study(str(tmp_path / "s.yaml"), data)


def test_a_whole_slurm_build_whose_result_is_torn_is_recorded_from_its_record(tmp_path):
    d = str(tmp_path / "d")
    out = cli("run", torn_slurm_study(tmp_path, damage=1), "--dir", d, timeout=240)
    assert out.returncode == 0, out.stderr
    assert runs(tmp_path) == 1  # not built again: the cache's done.json is this job's
    warned = [ln for ln in out.stderr.splitlines() if "could not be read" in ln]
    assert len(warned) == 1 and "not built again" in warned[0], out.stderr
    assert [e["state"] for e in stage_events(d)] == ["submit", "end"]
    pre = history(d).stages["pretrain"]
    assert pre.status == "ok" and pre.cost_s > 0 and pre.metrics["built"] == 1.0
    assert [r.status for r in history(d).trials.values()] == ["ok", "ok"]


def test_a_lost_slurm_result_runs_the_pretrain_again_once(tmp_path):
    d = str(tmp_path / "d")
    out = cli("run", torn_slurm_study(tmp_path, damage=1, fail=1), "--dir", d, timeout=240)
    assert out.returncode == 0, out.stderr
    assert runs(tmp_path) == 2
    warned = [ln for ln in out.stderr.splitlines() if "could not be read" in ln]
    assert len(warned) == 1 and "runs again" in warned[0], out.stderr
    events = stage_events(d)
    assert [e["state"] for e in events] == ["submit", "submit", "end"]
    assert {e["attempt"] for e in events} == {0}
    assert history(d).stages["pretrain"].status == "ok"


def test_a_slurm_result_torn_twice_fails_with_one_line(tmp_path):
    d = str(tmp_path / "d")
    out = cli("run", torn_slurm_study(tmp_path, damage=2, fail=2), "--dir", d, timeout=240)
    assert out.returncode == 1
    assert runs(tmp_path) == 2
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("autotune: ")]
    assert len(errors) == 1 and "could not be read" in errors[0] and "second time" in errors[0]
    assert stage_events(d)[-1]["status"] == "failed" and not history(d).trials


def test_a_slurm_trial_whose_result_is_torn_runs_again_once(tmp_path):
    """The same decision for a trial (Driver._collect), as for a local one's outcome.json."""
    count = str(tmp_path / "runs")
    data = study_dict(objective={"entry": "tests.objectives:pretrain_torn_outcome",
                                 "metric": "loss"},
                      space={"count": {"values": [count]}, "damage": {"values": [1]}},
                      search={"algorithm": "grid"},
                      executor={"kind": "slurm", "max_concurrent": 1, "time_limit_min": 10,
                                "gpus_per_job": 0, "poll_s": 0.5, "max_poll_s": 2,
                                "result_grace_s": 1})
    d = str(tmp_path / "d")
    out = cli("run", write_study(str(tmp_path / "s.yaml"), data), "--dir", d, timeout=240)
    assert out.returncode == 0, out.stderr
    assert runs(tmp_path) == 2
    warned = [ln for ln in out.stderr.splitlines() if "could not be read" in ln]
    assert len(warned) == 1 and "runs again" in warned[0], out.stderr
    assert [r.status for r in history(d).trials.values()] == ["ok"]
