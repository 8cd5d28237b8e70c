"""Multi-task SLURM jobs (``nodes: 1, tasks_per_node: 2``) on the real local cluster, gloo on
CPU: every task runs as one rank, rank 0's result is the trial's, a failing rank fails it,
and a killed driver re-attaches to (never resubmits) the job; a requeued job continues."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from autotune.executors.slurm_query import slurm_reachable

from .helpers import history
from .test_slurm import (driver_output, run_driver, sacct_jobs, start_driver, study_file,
                         submits, wait_for)

pytestmark = pytest.mark.skipif(
    not slurm_reachable(),
    reason="no SLURM reachable (sinfo failed); start a local one with: "
           "bash scripts/slurm-local.sh start")

TWO_RANKS = {"nodes": 1, "tasks_per_node": 2, "cpus_per_task": 1}


def ranked_study(tmp_path, name, space, max_trials, entry="ranked", max_concurrent=1,
                 **executor):
    path = study_file(tmp_path, name, entry, space, max_trials, max_concurrent=max_concurrent,
                      **TWO_RANKS, **executor)
    with open(path) as fh:  # the objectives live in tests.dist_objective
        text = fh.read().replace("tests.slurm_objective:", "tests.dist_objective:")
    with open(path, "w") as fh:
        fh.write(text)
    return path


def rank_markers(directory, trial):
    tdir = os.path.join(directory, "trials", str(trial))
    return sorted(n for n in os.listdir(tdir) if n.startswith("ran-rank-"))


def test_two_tasks_run_as_two_ranks_and_a_failing_rank_fails_the_trial(tmp_path):
    study = ranked_study(tmp_path, "ranks", {"x": 1, "fail_rank": {"values": [-1, 1]}}, 2,
                         max_concurrent=2)
    directory = str(tmp_path / "d")
    out = run_driver(study, directory, timeout=150)
    h = history(directory)
    ok, failed = h.trials[0], h.trials[1]
    assert ok.status == "ok", (out, ok.error)
    assert rank_markers(directory, 0) == ["ran-rank-0", "ran-rank-1"]
    assert ok.metrics["rank"] == 0 and ok.metrics["world"] == 2 and ok.metrics["sum"] == 3
    assert ok.value == 0.0
    tdir = os.path.join(directory, "trials", "0")
    assert os.path.exists(os.path.join(tdir, f"slurm-{ok.job_id}.rank-1.stderr.log"))
    assert failed.status == "failed" and failed.failure == "exception", out
    assert failed.error == "rank 1: ValueError: boom in rank 1"
    assert os.path.exists(os.path.join(directory, "trials", "1", "traceback-rank-1.txt"))
    assert len(sacct_jobs(directory, 2)) == 2


def test_driver_killed_mid_trial_reattaches_to_the_multi_task_job(tmp_path):
    study = ranked_study(tmp_path, "kill", {"x": {"values": [1]}, "sleep_s": {"values": [5]}}, 1)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    wait_for("the job submitted", lambda: submits(directory), timeout=60)
    wait_for("both ranks running", lambda: os.path.isdir(os.path.join(directory, "trials", "0"))
             and len(rank_markers(directory, 0)) == 2, timeout=90)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = run_driver(study, directory, timeout=120)
    h = history(directory)
    assert h.by_status() == {"ok": 1}, out
    events = submits(directory)
    assert len(events) == 1 and events[0]["attempt"] == 0
    assert h.trials[0].job_id == events[0]["job_id"]
    assert len(sacct_jobs(directory, 1)) == 1
    # each rank ran once: one marker line per rank
    for name in rank_markers(directory, 0):
        with open(os.path.join(directory, "trials", "0", name)) as fh:
            assert len(fh.read().splitlines()) == 1


def test_a_requeued_multi_task_job_continues_from_its_checkpoint(tmp_path):
    # the requeued run steps faster: only the first must outlast the requeue
    space = {"x": {"values": [1]}, "steps": {"values": [14]}, "step_s": {"values": [0.5]},
             "resumed_step_s": {"values": [0.05]}}
    study = ranked_study(tmp_path, "requeue", space, 1, entry="ranked_stepper", max_requeue=6)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    job_id = wait_for("the job submitted", lambda: submits(directory), timeout=60)[0]["job_id"]
    checkpoint = os.path.join(directory, "trials", "0", "checkpoint.pt")
    wait_for("3 steps done", lambda: _step(checkpoint) >= 3, timeout=90)
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    out = driver_output(proc, job_id, timeout=240)
    rec = history(directory).trials[0]
    assert rec.status == "ok", out
    assert rec.job_id == job_id and rec.metrics["world"] == 2
    assert rec.metrics["runs"] >= 2 and rec.metrics["resumed_from"] >= 3


def _step(path: str) -> int:
    import json

    try:
        with open(path) as fh:
            return json.load(fh)["step"]
    except (OSError, ValueError, KeyError):
        return -1


def test_a_multi_task_job_cancelled_from_outside_is_recorded_cancelled(tmp_path):
    study = ranked_study(tmp_path, "scancel", {"x": {"values": [1]}, "sleep_s": {"values": [40]}}, 1)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    job_id = wait_for("the job submitted", lambda: submits(directory), timeout=60)[0]["job_id"]
    wait_for("both ranks running", lambda: os.path.isdir(os.path.join(directory, "trials", "0"))
             and len(rank_markers(directory, 0)) == 2, timeout=90)
    subprocess.run(["scancel", job_id], check=True)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    rec = history(directory).trials[0]
    assert rec.status == "cancelled" and rec.failure == "cancelled", out


def test_launch_node_runs_a_command_once_per_node_that_starts_its_own_processes(tmp_path):
    import yaml

    study = str(tmp_path / "node.yaml")
    with open(study, "w") as fh:
        yaml.safe_dump({
            "name": "node",
            "objective": {"metric": "loss", "command":
                          "for r in $(seq 1 $AUTOTUNE_NPROC_PER_NODE); do "
                          "touch {trial_dir}/proc-$AUTOTUNE_NODE_RANK-$r & done; wait; "
                          "echo '{{\"loss\": '$WORLD_SIZE', \"n\": '$AUTOTUNE_NPROC_PER_NODE', "
                          "\"port\": '$MASTER_PORT'}}'"},
            "space": {"x": {"values": [1]}}, "search": {"algorithm": "grid"},
            "executor": {"kind": "slurm", "time_limit_min": 10, "poll_s": 0.5, "max_poll_s": 2,
                         "nodes": 1, "tasks_per_node": 2, "launch": "node"}}, fh)
    directory = str(tmp_path / "d")
    out = run_driver(study, directory)
    rec = history(directory).trials[0]
    assert rec.status == "ok", (out, rec.error)
    assert rec.metrics["loss"] == 1.0 and rec.metrics["n"] == 2.0 and rec.metrics["port"] >= 20000
    made = sorted(n for n in os.listdir(os.path.join(directory, "trials", "0"))
                  if n.startswith("proc-"))
    assert made == ["proc-0-1", "proc-0-2"]
