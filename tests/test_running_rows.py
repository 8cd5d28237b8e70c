"""trajectory.csv (and the DataFrame, from the same rows) of a study whose trials still run:
a trial whose latest attempt has no recorded end has no cost or end yet (an empty cell, NaN),
not the 0.0 that read as a trial ended at no cost, nor an earlier attempt's end and cost."""
import csv
import math
import os
import subprocess
import sys
import time

import pytest

import autotune as at
from tests.helpers import REPO, cli, history, study_dict, write_study


def start_run(path: str, d: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d, "--quiet"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(ready, proc: subprocess.Popen) -> None:
    deadline = time.time() + 60
    while not ready():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)


def csv_rows(d: str) -> dict[str, dict[str, str]]:
    with open(os.path.join(d, "trajectory.csv")) as fh:
        return {row["trial"]: row for row in csv.DictReader(fh)}


def recorded(d, trial, **want) -> bool:
    if not os.path.exists(os.path.join(d, "history.jsonl")):
        return False
    rec = history(d).trials.get(trial)
    return rec is not None and all(getattr(rec, k) == v for k, v in want.items())


def test_a_running_trial_has_no_cost_or_end_yet(tmp_path):
    gate, d = str(tmp_path / "gate"), str(tmp_path / "d")
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": "tests.objectives:gated"},
        space={"x": {"values": [0, 1]}, "gate": gate}, search={"algorithm": "grid"},
        executor={"kind": "local", "max_concurrent": 2}, retries=1))
    proc = start_run(path, d)
    try:
        # trial 1's first attempt failed (its cost and end recorded), its retry runs
        wait_for(lambda: recorded(d, 1, status="running", starts=2)
                 and recorded(d, 0, status="ok"), proc)
        out = cli("report", d)
        assert out.returncode == 0, out.stderr
        h = history(d)
        assert h.trials[1].cost_s > 0 and h.trials[1].end_s is not None  # the failed attempt's
        rows = csv_rows(d)
        assert rows["1"]["status"] == "running"
        assert rows["1"]["cost_s"] == rows["1"]["end_s"] == rows["1"]["best"] == ""
        assert float(rows["1"]["start_s"]) == pytest.approx(h.trials[1].start_s, abs=1e-3)
        ok = h.trials[0]
        assert float(rows["0"]["cost_s"]) == round(ok.cost_s, 3)  # an ended trial's, as before
        assert float(rows["0"]["end_s"]) == round(ok.end_s, 3)
        df = at.load(d).trials_dataframe().set_index("trial")
        assert math.isnan(df.loc[1, "cost_s"]) and math.isnan(df.loc[1, "end_s"])
        assert df.loc[0, "cost_s"] == ok.cost_s and df.loc[0, "end_s"] == ok.end_s
    finally:
        open(gate, "w").close()
        proc.wait(timeout=60)
    assert proc.returncode == 0
    h = history(d)
    rows = csv_rows(d)  # the driver's own last write: both ended, every attempt's cost
    assert rows["1"]["status"] == "ok"
    assert float(rows["1"]["cost_s"]) == round(h.trials[1].cost_s, 3)
    assert float(rows["1"]["end_s"]) == round(h.trials[1].end_s, 3)


def test_a_running_pretrain_has_no_cost_yet(tmp_path):
    gate, d = str(tmp_path / "gate"), str(tmp_path / "d")
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": "tests.objectives:finetune"}, space={"x": {"values": [0]}},
        search={"algorithm": "grid"}, executor={"kind": "local"},
        stages={"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 1,
                             "params": {"log": str(tmp_path / "log"), "sleep_s": 0.0,
                                        "gate": gate}}}))
    proc = start_run(path, d)
    try:
        wait_for(lambda: os.path.exists(os.path.join(d, "history.jsonl"))
                 and "pretrain" in history(d).stages, proc)
        out = cli("report", d)
        assert out.returncode == 0, out.stderr
        row = csv_rows(d)["pretrain"]
        assert row["status"] == "running" and row["cost_s"] == "" and row["end_s"] == ""
    finally:
        open(gate, "w").close()
        proc.wait(timeout=60)
    row = csv_rows(d)["pretrain"]
    assert row["status"] == "ok"
    assert float(row["cost_s"]) == round(history(d).stages["pretrain"].cost_s, 3)
