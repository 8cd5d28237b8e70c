"""The slurm executor against a real SLURM cluster (``bash scripts/slurm-local.sh start``).

Skipped, saying how to start one, where ``sinfo`` does not answer. Each test is a few
seconds to about half a minute of real jobs on the local one-node cluster.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from autotune.executors.slurm_query import name_prefix, slurm_reachable

from .helpers import REPO, history

pytestmark = pytest.mark.skipif(
    not slurm_reachable(),
    reason="no SLURM reachable (sinfo failed); start a local one with: "
           "bash scripts/slurm-local.sh start")


def study_file(tmp_path, name: str, entry: str, space: dict, max_trials: int,
               max_concurrent: int = 4, **executor) -> str:
    data = {
        "name": name,
        "objective": {"entry": f"tests.slurm_objective:{entry}", "metric": "loss"},
        "space": space,
        "search": {"algorithm": "grid", "max_trials": max_trials},
        "executor": {"kind": "slurm", "max_concurrent": max_concurrent, "time_limit_min": 10,
                     "gpus_per_job": 0, "poll_s": 0.5, "max_poll_s": 2, **executor},
    }
    path = os.path.join(tmp_path, f"{name}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(data, fh)
    return path


def start_driver(study: str, directory: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autotune", "run", study, "--dir", directory,
                             "--quiet"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_driver(study: str, directory: str, timeout: float = 90) -> str:
    proc = start_driver(study, directory)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def wait_for(what: str, check, timeout: float = 60, every: float = 0.2):
    give_up = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def submits(directory: str) -> list[dict]:
    try:
        with open(os.path.join(directory, "history.jsonl")) as fh:
            events = [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []
    return [e for e in events if e.get("e") == "submit"]


def sacct_jobs(directory: str, expected: int) -> list[tuple[str, str]]:
    """(job id, name) of every job of this study that the accounting database lists.

    The database learns of a job a moment after it ends: wait until it lists ``expected``
    (or a few seconds), then look once more, so that one job too many would show.
    """
    wait_for("sacct to list the jobs", lambda: len(_sacct_jobs(directory)) >= expected,
             timeout=10, every=0.5)
    time.sleep(1.0)
    return _sacct_jobs(directory)


def _sacct_jobs(directory: str) -> list[tuple[str, str]]:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobIDRaw,JobName", "-S", "now-1hour",
                          "-E", "now"], capture_output=True, text=True, check=True).stdout
    prefix = name_prefix(directory)
    return [tuple(line.split("|")[:2]) for line in out.splitlines()
            if line.split("|")[1:2] and line.split("|")[1].startswith(prefix)]


def squeue_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True,
                         text=True).stdout.strip()
    return out


def release_held(proc: subprocess.Popen, job_id: str) -> None:
    """Until the driver ends: a requeued job is held ~2 minutes (BeginTime); start it now."""
    held_since = None
    while proc.poll() is None:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"], capture_output=True,
                             text=True).stdout.strip()
        if out != "PENDING|BeginTime":
            held_since = None
        elif held_since is None:
            held_since = time.monotonic()
        elif time.monotonic() - held_since > 3.0:  # its last run must be gone: credential
            subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"])
            held_since = None
        time.sleep(0.3)


def driver_output(proc: subprocess.Popen, job_id: str, timeout: float = 120) -> str:
    releaser = threading.Thread(target=release_held, args=(proc, job_id), daemon=True)
    releaser.start()
    out, _ = proc.communicate(timeout=timeout)
    releaser.join()
    assert proc.returncode == 0, out
    return out


def checkpoint_step(directory: str, trial: int) -> int:
    try:
        with open(os.path.join(directory, "trials", str(trial), "checkpoint.pt")) as fh:
            return json.load(fh)["step"]
    except (OSError, ValueError, KeyError):
        return -1


def test_small_study_completes_and_a_raising_trial_fails(tmp_path):
    study = study_file(tmp_path, "small", "quick", {"x": {"values": [0, 1, 2, 99, 3]}}, 5)
    directory = str(tmp_path / "d")
    out = run_driver(study, directory)
    h = history(directory)
    assert h.by_status() == {"ok": 4, "failed": 1}, out
    failed = [r for r in h.trials.values() if r.status == "failed"][0]
    assert failed.params["x"] == 99 and failed.failure == "exception"
    assert "ValueError: bad hyperparameters" in failed.error
    assert h.best("min").params["x"] == 1
    for rec in h.trials.values():  # the job ran where the history says it did
        assert rec.job_id.isdigit()
        if rec.status == "ok":
            assert rec.metrics is not None and rec.start_s <= rec.end_s
    # one job per trial; cleanup "done": only the failed job's submitit folder is kept
    assert len(sacct_jobs(directory, 5)) == 5
    assert sorted(os.listdir(os.path.join(directory, "slurm"))) == [failed.job_id]


def test_driver_killed_with_jobs_in_flight_reattaches(tmp_path):
    space = {"x": {"values": [0, 1, 2, 3]}, "steps": {"values": [8]}, "step_s": {"values": [0.5]}}
    study = study_file(tmp_path, "kill", "stepper", space, 4, max_concurrent=4)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    wait_for("4 jobs submitted", lambda: len(submits(directory)) == 4, timeout=60)
    wait_for("a trial to be running", lambda: checkpoint_step(directory, 0) >= 1, timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    out = run_driver(study, directory)
    h = history(directory)
    assert h.by_status() == {"ok": 4}, out
    # nothing submitted again: one submit per trial, attempt 0, and one job per trial in sacct
    events = submits(directory)
    assert sorted(e["trial"] for e in events) == [0, 1, 2, 3]
    assert all(e["attempt"] == 0 for e in events)
    jobs = sacct_jobs(directory, 4)
    assert len(jobs) == len(h.trials) == 4, jobs
    assert {j for j, _ in jobs} == {e["job_id"] for e in events}
    assert all(rec.metrics["runs"] == 1 for rec in h.trials.values())


def test_orphan_submitted_but_not_recorded_is_adopted(tmp_path):
    """A driver that died between sbatch and recording: the next one adopts the job by name."""
    from autotune.executors.base import TrialJob
    from autotune.executors.slurm import SlurmExecutor
    from autotune.objective import Ctx, ObjectiveSpec

    directory = str(tmp_path / "d")
    os.makedirs(directory)
    spec = ObjectiveSpec(metric="loss", entry="tests.slurm_objective:quick", python_path=(REPO,))
    opts = {"time_limit_min": 10, "poll_s": 0.5}

    def job() -> TrialJob:
        ctx = Ctx(trial=0, trial_dir=os.path.join(directory, "trials", "0"), seed=1)
        return TrialJob(0, 0, {"x": 1.0, "sleep_s": 2.0}, ctx, spec)

    t0 = time.time()
    first = SlurmExecutor(directory, 1, t0, opts)
    job_id = first.submit(job())
    first.shutdown()  # the driver dies before recording the submit
    second = SlurmExecutor(directory, 1, t0, opts)
    assert second.submit(job()) == job_id
    assert second.stats["adopted"] == 1 and second.stats["submits"] == 0
    outcomes = []
    wait_for("the adopted job's result", lambda: outcomes.extend(second.poll(0.5)) or outcomes,
             timeout=60)
    assert outcomes[0].result["loss"] == 0.0 and outcomes[0].job_id == job_id
    assert len(sacct_jobs(directory, 1)) == 1


@pytest.mark.parametrize("options, says", [
    ({"partition": "nosuch"}, "invalid partition specified: nosuch"),
    ({"sbatch_flags": ["--begin=1:xx"]}, "Invalid --begin specification"),
    ({"partition": "gpu", "gpus_per_job": 4}, "--gres=gpu:4"),   # the node has gpu:2
    ({"sbatch_extra": {"constraintt": "a100"}}, "unrecognized option '--constraintt=a100'"),
])
def test_options_sbatch_refuses_are_one_line_before_anything_is_written(tmp_path, options, says):
    from .helpers import cli

    study = study_file(tmp_path, "refused", "quick", {"x": {"values": [0]}}, 1, **options)
    directory = str(tmp_path / "d")
    proc = cli("run", study, "--dir", directory, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autotune: error: executor: sbatch refuses")
    assert says in lines[0]
    assert not os.path.exists(directory) and not sacct_jobs(directory, 0)


def test_mem_gb_reaches_the_job(tmp_path):
    study = study_file(tmp_path, "mem", "quick", {"x": {"values": [0]}}, 1, mem_gb=1.5)
    directory = str(tmp_path / "d")
    out = run_driver(study, directory)
    rec = history(directory).trials[0]
    assert rec.status == "ok", out

    def asked() -> str:
        return subprocess.run(["sacct", "-X", "-n", "-P", "--units=M", "-o", "ReqMem", "-j",
                               rec.job_id], capture_output=True, text=True).stdout.strip()

    wait_for("sacct to list the job's memory", lambda: asked() == "1536M", timeout=10)


def test_a_study_started_again_in_its_deleted_directory_runs_its_own_jobs(tmp_path):
    """The jobs of a study once at this path bear the same names: they are not adopted."""
    import shutil

    study = study_file(tmp_path, "again", "quick", {"x": {"values": [0]}}, 1)
    directory = str(tmp_path / "d")
    run_driver(study, directory)
    first = history(directory).trials[0].job_id
    shutil.rmtree(directory)
    out = run_driver(study, directory)
    rec = history(directory).trials[0]
    assert rec.status == "ok" and rec.job_id != first, out


def test_a_cancelled_trial_job_that_ran_to_its_end_keeps_its_result(tmp_path):
    """submitit ignores SLURM's SIGTERM until KillWait: a trial whose job was cancelled 2 s
    before its end ran on and returned. cancel waits for it and names it, status says it
    ended alone, and the next run records its result (ok), as the README says, without
    running it again: not 'recorded as cancelled', as the driver and the README said."""
    from autotune.cancel import cancel_study
    from .test_slurm_stages import kill_wait_s

    if kill_wait_s() < 4:
        pytest.skip("SLURM's KillWait is under 4 s: a cancelled job cannot run on to its end")
    space = {"steps": {"values": [8]}, "x": {"values": [0]}, "step_s": {"values": [0.5]}}
    study = study_file(tmp_path, "latecancel", "stepper", space, 1, max_concurrent=1)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    wait_for("the trial to start", lambda: os.path.exists(
        os.path.join(directory, "trials", "0", "checkpoint.pt")), timeout=90)
    time.sleep(1.0)  # 1 s into its 4 s
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    said = cancel_study(directory)
    assert "1 trial(s) (0) ran to their end before SLURM stopped their jobs: the next run " \
        "records their results, not a cancel" in said, said
    status = subprocess.run([sys.executable, "-m", "autotune", "status", directory], cwd=REPO,
                            capture_output=True, text=True, timeout=60).stdout
    assert "trials: 1 ended-alone (ended without a driver: the next run records them)" \
        in status, status
    run_driver(study, directory, timeout=120)
    rec = history(directory).trials[0]
    assert (rec.status, rec.metrics["runs"], rec.metrics["resumed_from"]) == ("ok", 1, 0)
    assert len(submits(directory)) == 1  # not run again


def test_job_cancelled_from_outside_is_recorded_cancelled_and_search_goes_on(tmp_path):
    """scancel of a running trial: a `command:` objective dies of SLURM's SIGTERM at once and
    left "command killed by signal 15", which was recorded as the trial's own failure; the
    job's state (CANCELLED) is its outcome."""
    study = study_file(tmp_path, "scancel", "quick", {"x": {"values": [30, 1, 2]}}, 3,
                       max_concurrent=2)
    with open(study) as fh:
        data = yaml.safe_load(fh)
    # `;`: a shell that outlives its sleep's SIGTERM goes on to print a result (it did in CI
    # runs), which must not pass for the trial's: SLURM cancelled the job
    data["objective"] = {"command": "touch {trial_dir}/started; sleep {x}; "
                                    "echo '{{\"loss\": {x}}}'", "metric": "loss"}
    with open(study, "w") as fh:
        yaml.safe_dump(data, fh)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    first = wait_for("trial 0 submitted",
                     lambda: [e for e in submits(directory) if e["trial"] == 0], timeout=60)
    wait_for("trial 0's command running",
             lambda: os.path.exists(os.path.join(directory, "trials", "0", "started")), timeout=60)
    subprocess.run(["scancel", first[0]["job_id"]], check=True)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    h = history(directory)
    assert h.trials[0].params["x"] == 30
    assert h.trials[0].status == "cancelled" and h.trials[0].failure == "cancelled", out
    assert h.trials[0].error == f"slurm job {first[0]['job_id']} cancelled (scancel or an " \
                                "administrator)", h.trials[0].error
    assert h.trials[1].status == "ok" and h.trials[2].status == "ok"


def running_stepper(tmp_path, name: str, steps: int, done: int):
    """A one-trial study of the checkpointing stepper, once ``done`` steps are checkpointed:
    (driver process, study directory, SLURM job id). A run that continues from the
    checkpoint (after a requeue) steps ten times faster: only the first must outlast the test's
    interruption."""
    space = {"x": {"values": [1]}, "steps": {"values": [steps]}, "step_s": {"values": [0.5]},
             "resumed_step_s": {"values": [0.05]}}
    study = study_file(tmp_path, name, "stepper", space, 1, max_concurrent=1, max_requeue=6)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    job_id = wait_for("the job submitted", lambda: submits(directory), timeout=60)[0]["job_id"]
    wait_for(f"{done} steps done", lambda: checkpoint_step(directory, 0) >= done, timeout=60)
    return proc, directory, job_id


def test_requeued_trial_continues_from_its_checkpoint(tmp_path):
    proc, directory, job_id = running_stepper(tmp_path, "requeue", steps=24, done=3)
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    out = driver_output(proc, job_id)
    rec = history(directory).trials[0]
    assert rec.status == "ok", out
    assert rec.job_id == job_id
    # (a USR2 from outside may reach the restarted job too: a further requeue is fine)
    assert rec.metrics["runs"] >= 2 and rec.metrics["resumed_from"] >= 3
    assert len(sacct_jobs(directory, 1)) == 1
    # its cost counts every run (sacct -D: the first ran 3 steps of 0.5 s and more), not
    # only the last (start_s to end_s)
    from autotune.executors.slurm_query import parse_time

    out = subprocess.run(["sacct", "-X", "-D", "-n", "-P", "-o", "State,Start,End", "-j", job_id],
                         capture_output=True, text=True, check=True).stdout
    requeued = [(start, end) for state, start, end in (ln.split("|") for ln in out.splitlines())
                if state == "REQUEUED"]
    # a record without a Start counts 0 s, as parse_sacct counts it: a second requeue before
    # the job started leaves one, and so, once in CI, did this SLURM's accounting for the
    # first run itself (REQUEUED|None|<end>, though it had run 3 steps)
    earlier = sum(parse_time(end) - parse_time(start) for start, end in requeued
                  if parse_time(start) is not None)
    if all(parse_time(start) is not None for start, _ in requeued):
        assert earlier >= 1.0, out
    assert abs(rec.cost_s - (earlier + rec.end_s - rec.start_s)) < 1e-3, (earlier, rec)


def test_preemption_signal_checkpoints_through_submitit_and_requeues(tmp_path):
    """submitit's USR2 path: checkpoint() is called, the job requeues itself and continues."""
    proc, directory, job_id = running_stepper(tmp_path, "usr2", steps=14, done=2)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    out = driver_output(proc, job_id)
    rec = history(directory).trials[0]
    assert rec.status == "ok", out
    # (this SLURM sometimes signals the restarted job once more: more than one requeue is fine)
    assert rec.metrics["requeues"] >= 1 and rec.metrics["runs"] == rec.metrics["requeues"] + 1
    assert rec.metrics["resumed_from"] >= 2
    assert len(sacct_jobs(directory, 1)) == 1


def test_cancel_stops_the_driver_and_cancels_the_jobs(tmp_path):
    from autotune.cancel import cancel_study

    # trials 0 and 1 run 20 s (cancelled long before), trial 2 (run after the cancel) 0.5 s
    space = {"steps": {"values": [40, 1]}, "x": {"values": [0, 1]}, "step_s": {"values": [0.5]}}
    # both of the gpu partition's two (fake) GPUs per job: the second job waits in the queue
    study = study_file(tmp_path, "cancel", "stepper", space, 3, max_concurrent=2,
                       partition="gpu", gpus_per_job=2)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    wait_for("2 jobs submitted", lambda: len(submits(directory)) == 2, timeout=60)
    # status says why a trial's job waits (squeue's reason), as it does the pretrain's
    status = wait_for("status to say a trial job waits", lambda: (
        out := subprocess.run([sys.executable, "-m", "autotune", "status", directory], cwd=REPO,
                              capture_output=True, text=True, timeout=60).stdout)
        and "trial jobs pending on SLURM: " in out and out, timeout=30)
    # squeue's reason as SLURM words it: Resources or Priority mostly, but a node still
    # finishing an earlier test's job reads "Nodes required for job are DOWN, DRAINED or ..."
    assert re.search(r"trial jobs pending on SLURM: [12] of 2 \(\S.*: [12]\)$", status, re.M), \
        status
    message = cancel_study(directory)
    assert "stopped the driver" in message and "cancelled 2 slurm job(s)" in message, message
    out, _ = proc.communicate(timeout=30)
    # the driver knew whose SIGTERM it was: its jobs are cancelled, not left to re-attach to
    assert proc.returncode == 130 and "stopped by autotune cancel" in out, out
    assert "autotune cancel cancels the study's SLURM jobs in flight" in out, out
    assert "left queued" not in out, out
    assert not os.path.exists(os.path.join(directory, "cancelling.json"))
    jobs = [e["job_id"] for e in submits(directory)]
    wait_for("the jobs gone from the queue",
             lambda: all(squeue_state(j) in ("", "COMPLETING") for j in jobs), timeout=30)
    h = history(directory)
    assert h.notes[-1]["e"] == "cancel" and sorted(h.notes[-1]["jobs"]) == sorted(jobs)
    # run again, cancel finds nothing left (it said it cancelled the same jobs again)
    again = subprocess.run([sys.executable, "-m", "autotune", "cancel", directory], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert (again.returncode, again.stdout.strip()) == (0, (
        "nothing to cancel: no driver holds the study and none of its SLURM jobs is queued or "
        f"running (cancelled before: {' '.join(sorted(jobs, key=int))}; the next run records "
        "them)")), again
    # status says what the next run does with them: records them cancelled (it said they ran
    # again on resume), and the next run does so, running the grid's third point only
    status = subprocess.run([sys.executable, "-m", "autotune", "status", directory], cwd=REPO,
                            capture_output=True, text=True, timeout=60).stdout
    assert "trials: 2 ended-alone (ended without a driver: the next run records them)" \
        in status, status
    run_driver(study, directory, timeout=120)
    h = history(directory)
    assert {t: r.status for t, r in h.trials.items()} == {0: "cancelled", 1: "cancelled",
                                                          2: "ok"}
    assert {t: r.failure for t, r in h.trials.items() if t < 2} == {0: "cancelled",
                                                                   1: "cancelled"}
    # their cancel record names the jobs: the error says who cancelled them
    assert [h.trials[t].error for t in (0, 1)] == [
        f"slurm job {job} cancelled by autotune cancel" for job in jobs], h.trials[0].error
    assert len(submits(directory)) == 3  # the cancelled two were not submitted again
    assert [h.trials[t].params["steps"] for t in (0, 1, 2)] == [40, 40, 1]


def test_status_says_jobs_submitted_but_not_recorded_run_alone(tmp_path):
    """A driver killed after sbatch and before recording the submits: its trials' jobs run on,
    and the next run re-attaches to them by name, so status says so (it said 'interrupted
    (runs again on resume)'); a job of them that ended is said to have ended alone."""
    space = {"x": {"values": [0, 1, 2]}, "sleep_s": {"values": [60]}}
    study = study_file(tmp_path, "unrec", "quick", space, 3, max_concurrent=3)
    directory = str(tmp_path / "d")
    proc = start_driver(study, directory)
    try:
        wait_for("3 jobs submitted", lambda: len(submits(directory)) == 3, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    jobs = {e["trial"]: e["job_id"] for e in submits(directory)}
    try:
        path = os.path.join(directory, "history.jsonl")
        with open(path) as fh:
            lines = fh.readlines()
        kept = [line for line in lines if not line.strip() or not (
            (e := json.loads(line)).get("e") == "submit" and e["trial"] in (0, 1))]
        assert len(kept) == len(lines) - 2
        with open(path, "w") as fh:  # as if killed before the submits of trials 0, 1
            fh.writelines(kept)

        def status() -> str:
            out = subprocess.run([sys.executable, "-m", "autotune", "status", directory],
                                 cwd=REPO, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            return out.stdout

        text = status()
        assert "3 running-alone" in text and "interrupted" not in text, text
        subprocess.run(["scancel", jobs[0]], check=True)
        wait_for("trial 0's job to end", lambda: squeue_state(jobs[0]) in ("", "CANCELLED"))
        text = status()
        assert "2 running-alone" in text and "1 ended-alone" in text, text
        assert "interrupted" not in text, text
    finally:
        subprocess.run(["scancel", *jobs.values()])
