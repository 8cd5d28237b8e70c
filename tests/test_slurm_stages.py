"""The pretrain stage on a real SLURM cluster (``bash scripts/slurm-local.sh start``): one job
of its own before the fine-tunes, re-attached after a dead driver, its failure stops the study.
Skipped where ``sinfo`` does not answer."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from autotune.executors.slurm_query import slurm_reachable

from .helpers import REPO, history
from .test_slurm import sacct_jobs, start_driver, wait_for

pytestmark = pytest.mark.skipif(
    not slurm_reachable(),
    reason="no SLURM reachable (sinfo failed); start a local one with: "
           "bash scripts/slurm-local.sh start")


def staged_study(tmp_path, name: str, trials: int, **pre) -> str:
    data = {
        "name": name,
        "objective": {"entry": "tests.objectives:finetune", "metric": "loss"},
        "space": {"x": {"values": list(range(trials))}},
        "search": {"algorithm": "grid"},
        "executor": {"kind": "slurm", "max_concurrent": 4, "time_limit_min": 10,
                     "gpus_per_job": 0, "poll_s": 0.5, "max_poll_s": 2},
        "stages": {"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 3,
                                "executor": {"time_limit_min": 17},
                                "params": {"log": str(tmp_path / "pretrain.log"), **pre}}},
    }
    path = os.path.join(tmp_path, f"{name}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(data, fh)
    return path


def stage_events(directory: str) -> list[dict]:
    try:
        with open(os.path.join(directory, "history.jsonl")) as fh:
            return [e for e in map(json.loads, fh) if e.get("e") == "stage"]
    except FileNotFoundError:
        return []


def time_limit(job_id: str) -> str:
    return subprocess.run(["sacct", "-X", "-n", "-P", "-o", "Timelimit", "-j", job_id],
                          capture_output=True, text=True).stdout.strip()


def check_one_pretrain_then_trials(tmp_path, directory: str, trials: int) -> None:
    h = history(directory)
    pre = h.stages["pretrain"]
    assert pre.status == "ok", pre.error
    jobs = sacct_jobs(directory, 1 + trials)
    assert len(jobs) == 1 + trials, jobs
    assert [j for j, name in jobs if name.endswith("--1-0")] == [pre.job_id]  # trial id -1
    assert time_limit(pre.job_id) == "00:17:00"  # its own resources
    assert [r.status for r in h.trials.values()] == ["ok"] * trials
    assert min(r.start_s for r in h.trials.values()) >= pre.end_s  # no fine-tune before its end
    assert max(r.cost_s for r in h.trials.values()) < pre.cost_s  # none waited on it
    cache = os.path.join(directory, "cache")
    with open(os.path.join(cache, pre.key, "checkpoint.pt")) as fh:  # ctx.extra: its job's
        assert json.load(fh)["extra"] == {"requeues": 0, "slurm_job_id": pre.job_id}


def gated_study(tmp_path, name: str, trials: int) -> str:
    """A staged study whose pretrain runs at least 1 s (a fine-tune takes milliseconds) and
    then until ``reattach_and_finish`` sees a later driver re-attach to its job."""
    return staged_study(tmp_path, name, trials, sleep_s=1.0, gate=str(tmp_path / "gate"))


def reattach_and_finish(study, directory, tmp_path) -> str:
    """Run the study again until it ends: its pretrain's gate opens once this driver says it
    re-attached to the pretrain's job (which runs until then). Its output."""
    proc = subprocess.Popen([sys.executable, "-m", "autotune", "run", study, "--dir", directory],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "pretrain: re-attached to job" in line:
                (tmp_path / "gate").touch()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert (tmp_path / "gate").exists(), out  # the job it waited for ran until it re-attached
    return out


def pretrain_runs(tmp_path) -> list[str]:
    with open(tmp_path / "pretrain.log") as fh:
        return fh.read().split()


def test_the_pretrain_is_one_slurm_job_before_the_fine_tunes(tmp_path):
    study = staged_study(tmp_path, "stage", trials=4, sleep_s=2.0)  # a fine-tune: milliseconds
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert len(pretrain_runs(tmp_path)) == 1
    check_one_pretrain_then_trials(tmp_path, directory, 4)


def driver_in_its_pretrain(study, directory, tmp_path):
    """A driver started on the study, once its pretrain job runs (its objective logs)."""
    proc = start_driver(study, directory)
    wait_for("the pretrain to start", lambda: os.path.exists(tmp_path / "pretrain.log"), 90)
    return proc


def kill_driver_in_its_pretrain(study, directory, tmp_path) -> None:
    """A driver killed (SIGKILL: no last words) while its pretrain job runs."""
    proc = driver_in_its_pretrain(study, directory, tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_driver_killed_during_the_pretrain_reattaches_to_its_job(tmp_path):
    study = gated_study(tmp_path, "stagekill", trials=2)
    directory = str(tmp_path / "d")
    kill_driver_in_its_pretrain(study, directory, tmp_path)
    reattach_and_finish(study, directory, tmp_path)
    assert [e["state"] for e in stage_events(directory)] == ["submit", "end"]
    assert len(pretrain_runs(tmp_path)) == 1  # once: never twice, no overlap
    check_one_pretrain_then_trials(tmp_path, directory, 2)


def test_ctrl_c_during_the_pretrain_leaves_its_job_as_the_trials_and_says_so(tmp_path):
    """SLURM jobs outlive a Ctrl-C (the next run re-attaches): the pretrain's as the trials'.
    run names it and the cancel that ends it; status says it runs alone; the next run waits
    for that very job instead of building the pretrain a second time."""
    from .helpers import cli
    from .test_slurm import squeue_state

    study = gated_study(tmp_path, "stageint", trials=2)
    directory = str(tmp_path / "d")
    proc = driver_in_its_pretrain(study, directory, tmp_path)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    job = history(directory).stages["pretrain"].job_id
    assert f"the pretrain's job {job} left queued or running on SLURM" in out, out
    assert f"python -m autotune cancel {directory} cancels them" in out, out
    assert squeue_state(job) in ("RUNNING", "PENDING", "COMPLETING"), out
    status = cli("status", directory).stdout
    assert "pretrain: running-alone (its job runs without a driver" in status, status
    out = reattach_and_finish(study, directory, tmp_path)
    assert [e["state"] for e in stage_events(directory)] == ["submit", "end"], out
    assert len(pretrain_runs(tmp_path)) == 1  # built once
    check_one_pretrain_then_trials(tmp_path, directory, 2)


def test_a_pretrain_job_that_will_not_start_is_pending_with_its_reason_and_a_warning(tmp_path):
    """A held pretrain job (as one asking more than its partition allows) never starts by
    itself: run warns naming SLURM's reason, status says pending (reason), not running."""
    from .helpers import cli

    study = staged_study(tmp_path, "stagehold", trials=1)
    with open(study) as fh:
        data = yaml.safe_load(fh)
    data["stages"]["pretrain"]["executor"] = {"sbatch_flags": ["--hold"]}
    with open(study, "w") as fh:
        yaml.safe_dump(data, fh)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    job = wait_for("the pretrain's job", lambda: history(directory).stages.get("pretrain")
                   and history(directory).stages["pretrain"].job_id, 90)
    try:
        status = wait_for("status to say why it waits", lambda: (
            out := cli("status", directory).stdout) and "pending (JobHeldUser)" in out and out, 60)
        assert f"pretrain: pending (JobHeldUser), job {job}" in status, status
        assert f"warning: pretrain: job {job} pending (JobHeldUser): it is held" in status, status
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        subprocess.run(["scancel", job])
    assert proc.returncode == 130, out
    assert f"warning: pretrain: job {job} pending (JobHeldUser): it is held until released " \
           "(scontrol release), so it will not start by itself" in out, out


def test_a_failing_slurm_pretrain_stops_the_study(tmp_path):
    study = staged_study(tmp_path, "stagefail", trials=2, fail=True)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "pretrain failed: RuntimeError: out of memory in pretrain" in out
    assert "CUDA out of memory: tried to allocate 20 GiB" in out  # the job's stderr tail
    h = history(directory)
    assert not h.trials and h.stages["pretrain"].status == "failed"
    assert len(sacct_jobs(directory, 1)) == 1


def test_pretrain_resources_sbatch_refuses_are_one_line_before_anything_is_written(tmp_path):
    from .helpers import cli

    study = staged_study(tmp_path, "stagebad", trials=2)
    with open(study) as fh:
        data = yaml.safe_load(fh)
    data["stages"]["pretrain"]["executor"] = {"partition": "gpu", "gpus_per_job": 3}
    with open(study, "w") as fh:
        yaml.safe_dump(data, fh)
    directory = str(tmp_path / "d")
    proc = cli("run", study, "--dir", directory, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("autotune: error: stages.pretrain.executor: sbatch refuses")
    assert "--gres=gpu:3" in lines[0] and "--partition=gpu" in lines[0]
    assert not os.path.exists(directory) and not sacct_jobs(directory, 0)


def test_pretrain_gpus_under_another_name_replace_the_studys(tmp_path):
    """The study asks gpus_per_job: 0 for its fine-tunes, the pretrain gpus_per_node: 1."""
    study = staged_study(tmp_path, "stagegpu", trials=1)
    with open(study) as fh:
        data = yaml.safe_load(fh)
    data["stages"]["pretrain"]["executor"] = {"partition": "gpu", "gpus_per_node": 1,
                                              "time_limit_min": 17}
    with open(study, "w") as fh:
        yaml.safe_dump(data, fh)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    pre = history(directory).stages["pretrain"]
    job = subprocess.run(["scontrol", "show", "job", pre.job_id], capture_output=True,
                         text=True).stdout  # the controller keeps an ended job 5 minutes
    assert "TresPerNode=gres:gpu:1" in job and "Partition=gpu" in job, job


def start_loud_driver(study: str, directory: str, env: dict | None = None) -> subprocess.Popen:
    """start_driver, saying what it does (no --quiet)."""
    return subprocess.Popen([sys.executable, "-m", "autotune", "run", study, "--dir", directory],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_run_after_cancel_during_the_pretrain_runs_it_again_and_goes_on(tmp_path):
    from autotune.cancel import cancel_study

    study = staged_study(tmp_path, "stagecancel", trials=2, sleep_s=6.0)
    directory = str(tmp_path / "d")
    proc = start_loud_driver(study, directory)
    wait_for("the pretrain to start", lambda: os.path.exists(tmp_path / "pretrain.log"), 90)
    said = cancel_study(directory)
    assert "cancelled 1 slurm job(s)" in said, said
    out, _ = proc.communicate(timeout=30)
    # only the pretrain's job was in flight: it is named, not trials
    assert "SIGTERM: stopping; autotune cancel cancels the pretrain's SLURM job (the next run " \
        "records it as cancelled and runs it again, unless it runs to its end before SLURM " \
        "stops it: cancel says so)" in out, out
    # and so is the CLI's line after it
    assert "autotune: autotune cancel cancels the pretrain's SLURM job; the next run records " \
        "it as cancelled and builds it again" in out, out
    assert "those trials" not in out, out
    proc = start_loud_driver(study, directory, env={**os.environ, "PRETRAIN_SLEEP_S": "0.5"})
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    job = stage_events(directory)[0]["job_id"]
    assert "cancelled by autotune cancel; running it again" in out, out
    assert f"re-attached to job {job}" not in out, out  # it is not going on
    states = [(e["state"], e["attempt"], e.get("status")) for e in stage_events(directory)]
    assert states == [("submit", 0, None), ("end", 0, "cancelled"), ("submit", 1, None),
                      ("end", 1, "ok")], states
    assert [r.status for r in history(directory).trials.values()] == ["ok", "ok"]


def kill_wait_s() -> float:
    """SLURM's KillWait: how long a cancelled job's step may run on after the SIGTERM."""
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.split("=")[0].strip() == "KillWait":
            return float(line.split("=")[1].split()[0])
    return 0.0


def test_a_cancelled_pretrain_that_ran_to_its_end_is_kept_as_status_says(tmp_path):
    """submitit ignores SLURM's SIGTERM until KillWait: a pretrain cancelled 1.5 s before its
    end ran on and built its checkpoint. status said it interrupted ('the next run runs it
    again') and the next run recorded it ok. Now cancel waits for the job to end and says
    so, status says ended-alone, and the next run records it ok from its job (not built
    again, not recorded cancelled)."""
    from autotune.cancel import cancel_study

    if kill_wait_s() < 4:
        pytest.skip("SLURM's KillWait is under 4 s: a cancelled job cannot run on to its end")
    study = staged_study(tmp_path, "stagelate", trials=2, sleep_s=4.0)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    wait_for("the pretrain to start", lambda: os.path.exists(tmp_path / "pretrain.log"), 90)
    time.sleep(1.0)  # its job is 1 s into its 4 s
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    said = cancel_study(directory)
    job = stage_events(directory)[0]["job_id"]
    status = subprocess.run([sys.executable, "-m", "autotune", "status", directory], cwd=REPO,
                            capture_output=True, text=True, timeout=60).stdout
    assert f"pretrain: ended-alone (ended without a driver: the next run records it), " \
        f"job {job}" in status, (status, said)
    assert f"the pretrain's job {job} ran to its end before SLURM stopped it: the next run " \
        "records its result, not a cancel" in said, said
    with open(os.path.join(directory, "trajectory.csv")) as fh:  # as status says it
        assert "ended-alone" in [row["status"] for row in csv.DictReader(fh)
                                 if row["trial"] == "pretrain"]
    proc = start_loud_driver(study, directory)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert f"its job {job}, cancelled by autotune cancel, ran to its end before SLURM " \
        "stopped it: recorded ok, its checkpoint kept" in out, out
    states = [(e["state"], e["attempt"], e.get("status")) for e in stage_events(directory)]
    assert states == [("submit", 0, None), ("end", 0, "ok")], states
    assert len(pretrain_runs(tmp_path)) == 1  # built once
    check_one_pretrain_then_trials(tmp_path, directory, 2)


def failing_slurm_tools(tmp_path, failures: int) -> dict:
    """An environment whose sacct and squeue fail their first ``failures`` calls together,
    as while slurmdbd restarts, then answer."""
    shims = tmp_path / "shims"
    shims.mkdir()
    for tool in ("sacct", "squeue"):
        real = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        path = shims / tool
        path.write_text(f"""#!/bin/sh
n=$(cat {shims}/count 2>/dev/null || echo 0); echo $((n + 1)) > {shims}/count
if [ "$n" -lt {failures} ]; then
  echo "{tool}: error: Problem talking to the database: Connection refused" >&2; exit 1
fi
exec {real} "$@"
""")
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}"}


def test_a_resume_while_sacct_fails_watches_the_recorded_pretrain_job(tmp_path):
    study = staged_study(tmp_path, "stagedb", trials=2, sleep_s=10.0)
    directory = str(tmp_path / "d")
    kill_driver_in_its_pretrain(study, directory, tmp_path)
    env = failing_slurm_tools(tmp_path, failures=8)  # every try to list the study's jobs
    proc = start_driver(study, directory, env=env)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert "cannot list the study's jobs" in out
    assert [e["state"] for e in stage_events(directory)] == ["submit", "end"], out
    assert len(pretrain_runs(tmp_path)) == 1  # once
    check_one_pretrain_then_trials(tmp_path, directory, 2)


def test_cancel_of_a_compare_dir_stops_the_comparison_and_cancels_its_pretrain(tmp_path):
    """``cancel DIR`` on a comparison's DIR (no study itself: one per run and the shared
    pretrain's DIR/pretrain) was refused, 'name one of them': the compare process ran on.
    Now it stops the comparison and cancels the shared pretrain's job; the same compare
    then records that attempt cancelled, builds it again and runs every run."""
    from autotune.cancel import cancel_study

    study = staged_study(tmp_path, "cmpcancel", trials=2, sleep_s=30.0)
    out = str(tmp_path / "cmp")
    args = [sys.executable, "-m", "autotune", "compare", study, "--algorithms", "grid,random",
            "--dir", out]
    with open(study) as fh:
        data = yaml.safe_load(fh)
    data["search"]["max_trials"] = 2  # random's limit
    with open(study, "w") as fh:
        yaml.safe_dump(data, fh)
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    pre = os.path.join(out, "pretrain")
    wait_for("the pretrain to start", lambda: os.path.exists(tmp_path / "pretrain.log"), 90)
    said = cancel_study(out)
    job = stage_events(pre)[0]["job_id"]
    assert said.startswith(f"{pre}: stopped the driver (pid {proc.pid}); cancelled 1 slurm "
                           f"job(s): {job}"), said
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, output
    assert "stopped by autotune cancel during the pretrain" in output, output
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PRETRAIN_SLEEP_S": "0.5"})
    assert done.returncode == 0, done.stdout + done.stderr
    states = [(e["state"], e["attempt"], e.get("status")) for e in stage_events(pre)]
    assert states == [("submit", 0, None), ("end", 0, "cancelled"), ("submit", 1, None),
                      ("end", 1, "ok")], states
    for run in ("grid-s0", "random-s0"):
        assert [r.status for r in history(os.path.join(out, run)).trials.values()] == ["ok"] * 2
