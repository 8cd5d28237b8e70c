"""Why trials failed, said where the user looks: the end of ``run``, ``status``, summary.txt.

A study whose trials all fail usually fails for one reason (a typo in the command, a missing
file); the most frequent error with the tail of one such trial's stderr says it at once,
without opening trial directories.
"""
from __future__ import annotations

import os
import re
from collections import Counter

from .history import History
from .logtail import tail_lines

TAIL_LINES = 5
NO_ERROR = "no error recorded"
SLURM_JOB = re.compile(r"\bslurm job \d+(_\d+)?\b")
TRIAL_DIR = re.compile(r"\btrials/\d+\b")


def failure_lines(history: History, study_dir: str | None) -> list[str]:
    """The most frequent error among failed trials and the tail of one's stderr.log."""
    failed = sorted((r for r in history.trials.values() if r.status == "failed"),
                    key=lambda r: r.trial)
    if not failed:
        return []
    counts = Counter(same_error(r.error) for r in failed)
    key, n = counts.most_common(1)[0]
    example = next(r for r in failed if same_error(r.error) == key)
    lines = [f"most frequent error ({n} of {len(failed)} failed trial(s), e.g. trial "
             f"{example.trial}): {example.error or NO_ERROR}"]
    if study_dir:
        path = stderr_log(os.path.join(study_dir, "trials", str(example.trial)), example.job_id)
        tail = tail_lines(path, TAIL_LINES)
        if tail:
            lines.append(f"  last lines of {path}:")
            lines += [f"    {line}" for line in tail]
    if len(counts) > 1:
        lines.append(f"  ({len(counts) - 1} other error(s); see the error column of "
                     "trajectory.csv)")
    return lines


def same_error(error: str | None) -> str:
    """An error as counted: the job id a SLURM job's error names is its own (``slurm job
    1852 ended FAILED ...``), and so is the trial folder a path in it names (``No such file
    or directory: '/d/trials/3/ckpt.pt'``), so fifty trials failing alike would count as
    fifty errors."""
    return TRIAL_DIR.sub("trials/N", SLURM_JOB.sub("slurm job N", error)) if error else NO_ERROR


def stderr_log(trial_dir: str, job_id: str = "") -> str:
    """The trial's stderr: the local worker's ``stderr.log``, or under SLURM rank 0's copy of
    its last job's (``slurm-<job id>.stderr.log``, written as the attempt's end is recorded),
    or, where neither is there, the ``traceback.txt`` of an entry that raised in the driver's
    own process (``inline``, ``simulated``: no worker's stderr to print it to), whose
    traceback was else shown nowhere but in that file."""
    local = os.path.join(trial_dir, "stderr.log")
    if os.path.exists(local):
        return local
    slurm = os.path.join(trial_dir, f"slurm-{job_id}.stderr.log")
    if job_id and os.path.exists(slurm):
        return slurm
    raised = os.path.join(trial_dir, "traceback.txt")
    return raised if os.path.exists(raised) else local
