"""GPU placement for local trials, on a faked device list (CUDA_VISIBLE_DEVICES): each
running trial its own GPUs, never more trials than fit, GPUs given back after a crash."""
from __future__ import annotations

import itertools
import json
import os

import pytest

from autotune.driver import Driver
from autotune.errors import StudyError
from autotune.executors.gpus import GpuPool, make_pool, parse_visible, visible_gpus
from autotune.study import parse_study
from tests.helpers import history, study_dict


def test_visible_devices_from_the_environment_else_the_query():
    assert parse_visible("0,2,3") == ["0", "2", "3"]
    assert parse_visible("") == [] and parse_visible("-1") == []
    assert parse_visible("1,-1,2") == ["1"]  # CUDA stops at the first invalid entry
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-abc,GPU-def"}, lambda: ["9"]) == \
        ["GPU-abc", "GPU-def"]
    assert visible_gpus({}, lambda: ["0", "1"]) == ["0", "1"]


def test_defaults_one_gpu_per_trial_when_gpus_are_visible_else_none():
    assert make_pool({}, environ={"CUDA_VISIBLE_DEVICES": "0,1"}).gpus_per_trial == 1
    assert make_pool({}, ranks=2, environ={"CUDA_VISIBLE_DEVICES": "0,1"}).gpus_per_trial == 2
    pool = make_pool({}, environ={}, query=lambda: [])
    assert pool.gpus_per_trial == 0 and pool.environ(0) == {}


def test_pool_hands_out_distinct_gpus_and_packs_per_gpu():
    pool = GpuPool(["0", "1", "2", "3"], gpus_per_trial=2)
    assert pool.capacity == 2
    assert pool.acquire(0) == ["0", "1"] and pool.acquire(1) == ["2", "3"]
    with pytest.raises(RuntimeError):
        pool.acquire(2)
    pool.release(0)
    assert pool.acquire(2) == ["0", "1"]
    assert pool.environ(2) == {"CUDA_VISIBLE_DEVICES": "0,1"}
    packed = GpuPool(["0", "1"], gpus_per_trial=1, per_gpu=2)
    assert packed.capacity == 4
    # spread first: the emptiest GPU, lowest index among equals
    assert [packed.acquire(t) for t in range(4)] == [["0"], ["1"], ["0"], ["1"]]


def test_impossible_requests_are_one_line_naming_the_key():
    with pytest.raises(StudyError, match=r"executor.gpus_per_trial: 3 GPU\(s\) per trial, but 2"):
        make_pool({"gpus_per_trial": 3}, environ={"CUDA_VISIBLE_DEVICES": "0,1"})
    with pytest.raises(StudyError, match="executor.trials_per_gpu"):
        make_pool({"gpus_per_trial": 2, "trials_per_gpu": 2},
                  environ={"CUDA_VISIBLE_DEVICES": "0,1"})


def run_placed(tmp_path, name, n, max_concurrent, crash_x=-1, **executor):
    study = parse_study(study_dict(retries=0,
        objective={"entry": "tests.dist_objective:placed"},
        space={"x": {"values": list(range(n))}, "crash_x": crash_x},
        search={"algorithm": "grid"},
        executor={"kind": "local", "max_concurrent": max_concurrent, **executor}))
    d = str(tmp_path / name)
    Driver(study, d, progress=False).run()
    return d, history(d)


def placements(d, h):
    out = {}
    for t, rec in h.trials.items():
        path = os.path.join(d, "trials", str(t), "placed.json")
        if rec.status == "ok":
            with open(path) as fh:
                out[t] = json.load(fh)
    return out


def most_at_once(spans) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_running_trials_get_distinct_gpus_capped_by_what_fits(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    d, h = run_placed(tmp_path, "two", n=6, max_concurrent=4)
    assert "executor.max_concurrent 4 lowered to 2: 2 GPU(s) visible (3,5)" in capsys.readouterr().err
    assert h.by_status() == {"ok": 6}
    placed = placements(d, h)
    assert {p["devices"] for p in placed.values()} == {"3", "5"}
    for a, b in itertools.combinations(placed.values(), 2):
        if a["start"] < b["end"] and b["start"] < a["end"]:  # ran at the same time
            assert a["devices"] != b["devices"]
    assert most_at_once([(p["start"], p["end"]) for p in placed.values()]) == 2


def test_trials_per_gpu_packs_and_gpus_per_trial_zero_hides_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    d, h = run_placed(tmp_path, "packed", n=4, max_concurrent=3, trials_per_gpu=2)
    placed = placements(d, h)
    assert {p["devices"] for p in placed.values()} == {"0"}
    assert most_at_once([(p["start"], p["end"]) for p in placed.values()]) == 2
    d, h = run_placed(tmp_path, "none", n=2, max_concurrent=2, gpus_per_trial=0)
    assert {p["devices"] for p in placements(d, h).values()} == {""}


def test_a_crashed_trial_gives_its_gpu_back(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    d, h = run_placed(tmp_path, "crash", n=6, max_concurrent=2, crash_x=1)
    assert h.trials[1].status == "failed" and "exited with status 3" in h.trials[1].error
    placed = placements(d, h)
    assert len(placed) == 5 and {p["devices"] for p in placed.values()} == {"0", "1"}
    for a, b in itertools.combinations(placed.values(), 2):
        if a["start"] < b["end"] and b["start"] < a["end"]:
            assert a["devices"] != b["devices"]


def test_after_the_driver_dies_mid_study_a_restart_places_trials_afresh(tmp_path, monkeypatch):
    from autotune.driver import SimulatedCrash

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    study = parse_study(study_dict(
        retries=0, objective={"entry": "tests.dist_objective:placed"},
        space={"x": {"values": list(range(5))}}, search={"algorithm": "grid"},
        executor={"kind": "local", "max_concurrent": 2}))
    d = str(tmp_path / "resume")
    with pytest.raises(SimulatedCrash):  # dies with two trials running on GPUs 0 and 1
        Driver(study, d, progress=False, stop_after_events=4).run()
    Driver(study, d, progress=False).run()
    h = history(d)
    assert h.by_status() == {"ok": 5}
    placed = placements(d, h)
    for a, b in itertools.combinations(placed.values(), 2):
        if a["start"] < b["end"] and b["start"] < a["end"]:
            assert a["devices"] != b["devices"]


def test_a_trial_picked_up_again_keeps_its_gpus_and_new_ones_avoid_them():
    # a re-attached trial's GPUs come from its job.json ("gpus"); the pool claims them
    pool = GpuPool(["0", "1", "2"], gpus_per_trial=1)
    assert pool.claim(7, ["1"]) == ["1"]
    assert pool.acquire(8) == ["0"] and pool.acquire(9) == ["2"]
    pool.release(7)
    assert pool.acquire(10) == ["1"]
    assert pool.held() == {8: ["0"], 9: ["2"], 10: ["1"]}
