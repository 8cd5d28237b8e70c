"""The failure summary (end of ``run``, ``status``, summary.txt) for SLURM trials: fifty jobs
failing alike are one error, not fifty (each names its own job id), the tail shown is the
job's stderr copy, and the error's last line is the task's cause, not srun's report of it."""
from __future__ import annotations

import os

from autotune import events as ev
from autotune.executors.slurm import _scheduler_noise
from autotune.logtail import last_line
from autotune.failures import failure_lines
from autotune.history import History
from autotune.journal import Journal

SPACE = {"x": {"values": [1, 2, 3]}}


def failed_slurm_study(directory: str, errors: dict[int, str]) -> History:
    identity = {"space": SPACE, "algorithm": "grid", "seed": 0, "search_options": {},
                "metric": "loss", "mode": "min", "pretrain": None}
    journal = Journal(os.path.join(directory, "history.jsonl"))
    events = [ev.study("s", 0.0, identity, {"executor": {"kind": "slurm"}}),
              ev.ask(0.0, len(errors), [ev.trial_entry(t, {"x": t + 1}) for t in errors])]
    for t, error in errors.items():
        events += [ev.submit(0.1, t, 0, str(1850 + t)),
                   ev.end(t, 0, "failed", 0.1, 0.2, 0.1, {}, error.format(job=1850 + t), "exit")]
    journal.append(events)
    journal.close()
    return History.load(Journal(os.path.join(directory, "history.jsonl")))


def test_errors_that_differ_only_by_their_job_id_are_one(tmp_path):
    same = "slurm job {job} ended FAILED (exit code 2:0): execve(): python4: No such file"
    h = failed_slurm_study(str(tmp_path), {0: same, 1: same, 2: "slurm job {job} ran out of memory"})
    trial_dir = tmp_path / "trials" / "0"
    trial_dir.mkdir(parents=True)
    (trial_dir / "slurm-1850.stderr.log").write_text(
        "slurmstepd-localhost: error: execve(): python4: No such file or directory\n"
        "srun: error: localhost: task 0: Exited with exit code 2\n")
    lines = failure_lines(h, str(tmp_path))
    assert lines[0] == ("most frequent error (2 of 3 failed trial(s), e.g. trial 0): slurm job "
                        "1850 ended FAILED (exit code 2:0): execve(): python4: No such file"), lines
    assert lines[1] == f"  last lines of {trial_dir / 'slurm-1850.stderr.log'}:", lines
    assert "python4: No such file or directory" in lines[2], lines
    assert lines[-1] == "  (1 other error(s); see the error column of trajectory.csv)", lines


def test_the_jobs_last_line_is_the_tasks_not_sruns(tmp_path):
    log = tmp_path / "1852_0_log.err"
    log.write_text("slurmstepd-localhost: error: execve(): python4: No such file or directory\n"
                   "srun: error: localhost: task 0: Exited with exit code 2\n")
    assert last_line(str(log), skip=_scheduler_noise) == \
        "slurmstepd-localhost: error: execve(): python4: No such file or directory"
    log.write_text("Traceback (most recent call last):\nValueError: bad lr\n"
                   "srun: error: node7: tasks 0-3: Exited with exit code 1\n"
                   "srun: Job step aborted: Waiting up to 32 seconds for job step to finish.\n")
    assert last_line(str(log), skip=_scheduler_noise) == "ValueError: bad lr"
    log.write_text("epoch 37\n"
                   "slurmstepd-localhost: error: *** STEP 1898.0 ON localhost CANCELLED AT "
                   "2026-11-27T17:14:49 DUE TO TIME LIMIT ***\n"
                   "submitit WARNING (2026-11-27 17:14:49,565) - Bypassing signal SIGTERM\n"
                   "srun: got SIGCONT\nsrun: forcing job termination\n"
                   "srun: error: localhost: task 0: Terminated\n")
    assert last_line(str(log), skip=_scheduler_noise) == "epoch 37"  # the job's own last words before the limit
