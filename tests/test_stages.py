import os
import signal
import subprocess
import sys
import time

import pytest

from autotune.driver import Driver
from autotune.errors import StudyError
from autotune.executors.local import kill_orphan
from autotune.study import parse_study
from tests.helpers import REPO, cli, history, study_dict, write_study


def two_stage(log, executor="local", **pre):
    return study_dict(objective={"entry": "tests.objectives:finetune"},
                      space={"x": {"values": [0, 1, 2, 3, 4, 5]}},
                      search={"algorithm": "grid"},
                      executor={"kind": executor, "max_concurrent": 3},
                      stages={"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 10,
                                           "params": {"log": log, "sleep_s": 1.0, **pre}}})


def kill_driver_when(path, d, ready):
    """Start ``run`` in a subprocess and SIGKILL it as soon as ``ready()`` holds."""
    proc = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d, "--quiet"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not ready():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_the_pretrain_runs_once_for_concurrent_trials(tmp_path):
    log = str(tmp_path / "pretrain.log")
    study = parse_study(two_stage(log))
    d = str(tmp_path / "d")
    Driver(study, d, progress=False).run()
    h = history(d)
    assert [r.status for r in h.trials.values()] == ["ok"] * 6
    assert h.trials[1].value == 1.0  # base 1.0 from the pretrain checkpoint, x = 1
    assert len(open(log).readlines()) == 1
    caches = [p for p in os.listdir(os.path.join(d, "cache")) if not p.endswith(".lock")]
    assert len(caches) == 1 and os.path.exists(os.path.join(d, "cache", caches[0], "done.json"))


def test_the_pretrain_survives_a_kill_and_a_resume(tmp_path):
    log = str(tmp_path / "pretrain.log")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log))
    d = str(tmp_path / "d")
    kill_driver_when(path, d, lambda: os.path.exists(os.path.join(d, "history.jsonl")) and any(
        r.status == "ok" for r in history(d).trials.values()))
    assert cli("run", path, "--dir", d, "--quiet").returncode == 0
    assert len(open(log).readlines()) == 1
    assert all(r.status == "ok" for r in history(d).trials.values())


def test_a_killed_pretrain_leaves_no_cache_hit(tmp_path):
    log = str(tmp_path / "pretrain.log")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log, sleep_s=30))
    d = str(tmp_path / "d")
    kill_driver_when(path, d, lambda: os.path.exists(log))
    for trial in os.listdir(os.path.join(d, "trials")):  # the driver's orphans, as a resume would
        kill_orphan(os.path.join(d, "trials", trial))
    cache = os.path.join(d, "cache")
    assert not any(os.path.exists(os.path.join(cache, p, "done.json")) for p in os.listdir(cache))
    assert not any(p.endswith(".failed.json") for p in os.listdir(cache))


def test_a_failed_pretrain_is_reported_and_not_cached(tmp_path, monkeypatch):
    log = str(tmp_path / "pretrain.log")
    study = parse_study(two_stage(log, executor="inline"))
    d = str(tmp_path / "d")
    monkeypatch.setenv("PRETRAIN_FAILS", "1")
    Driver(study, d, progress=False).run()
    h = history(d)
    assert all(r.status == "failed" for r in h.trials.values())
    assert "pretrain failed: RuntimeError: out of memory in pretrain" in h.trials[0].error
    assert "failed earlier: RuntimeError: out of memory" in h.trials[1].error
    assert len(open(log).readlines()) == 1  # the others did not repeat the failing pretrain
    left = sorted(os.listdir(os.path.join(d, "cache")))
    assert [p.split(".", 1)[1] for p in left] == ["failed.json", "lock"]  # no cache hit


def test_the_failure_marker_is_cleared_on_a_new_start(tmp_path, monkeypatch):
    log = str(tmp_path / "pretrain.log")
    data = two_stage(log, executor="inline")
    data["search"] = {"algorithm": "random", "max_trials": 2}
    data["space"] = {"x": {"low": 0.0, "high": 2.0}}
    study = parse_study(data)
    d = str(tmp_path / "d")
    monkeypatch.setenv("PRETRAIN_FAILS", "1")
    Driver(study, d, progress=False).run()
    monkeypatch.delenv("PRETRAIN_FAILS")
    assert any(p.endswith(".failed.json") for p in os.listdir(os.path.join(d, "cache")))
    study.max_trials = 4
    Driver(study, d, progress=False).run()
    h = history(d)
    assert [r.status for _, r in sorted(h.trials.items())] == ["failed", "failed", "ok", "ok"]
    assert len(open(log).readlines()) == 2


@pytest.mark.parametrize("stages, message", [
    ({"pretrain": {"entry": "nope:f"}}, "stages.pretrain.entry: cannot import module 'nope'"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 0}},
     "stages.pretrain.epochs: expected a positive integer"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "wat": 1}}, "stages.pretrain.wat: unknown key"),
    ({"finetune": {}}, "stages.finetune: unknown key"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "params": {"a": [1]}}},
     "stages.pretrain.params.a: expected a number, string or boolean"),
])
def test_bad_stages_are_refused(stages, message):
    with pytest.raises(StudyError, match=message):
        parse_study(study_dict(stages=stages))


def test_a_changed_pretrain_is_refused_on_resume(tmp_path):
    log = str(tmp_path / "pretrain.log")
    d = str(tmp_path / "d")
    Driver(parse_study(two_stage(log, executor="inline", sleep_s=0.0)), d, progress=False).run()
    with pytest.raises(StudyError, match="pretrain: .* was started with"):
        Driver(parse_study(two_stage(log, executor="inline", sleep_s=0.1)), d, progress=False).run()
