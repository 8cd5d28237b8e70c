"""A multi-rank trial on this machine: ``python -m autotune.launch JOB.json``.

The local executor starts this instead of ``autotune.worker`` when a trial has several ranks
(``tasks_per_trial``) or ``launch: node``. Like srun on a SLURM node, it starts one process per
rank (``python -m autotune.launch JOB.json --rank R --port P``), each running the objective
through ``ranks.run_rank`` with the torch.distributed variables set; rank 0 writes to the
trial's stdout.log and stderr.log, rank R to ``rank-R.stdout.log`` and ``rank-R.stderr.log``.
Each rank leaves ``rank-R.outcome.json``. When every rank ended well, rank 0's result is the
trial's; as soon as one fails, the others are killed (they would wait forever on a collective
with a dead peer) and the trial fails with the first failing rank's error.

The ranks stay in the launcher's process group, so the executor's kill of the group (a
timeout, a shutdown) reaches them; on a failure the launcher writes the outcome and then
ends its whole group, itself included.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from .errors import exception_text
from .logtail import last_line
from .objective import Ctx, ObjectiveSpec
from .ranks import first_failure, free_port, local_env, rank_message, run_rank
from .worker import (OUTCOME_UNWRITABLE_STATUS, RANK_UNWRITABLE_PREFIX, clear_outcome,
                     outcome_unwritten, show_traceback, write_json_atomic)


def rank_outcome_path(trial_dir: str, rank: int) -> str:
    return os.path.join(trial_dir, f"rank-{rank}.outcome.json")


def run_one_rank(job: dict, rank: int, port: int) -> int:
    """The body of one rank's process."""
    spec = ObjectiveSpec.from_dict(job["objective"])
    ctx = Ctx(**job["ctx"])
    env = local_env(rank, int(job["ranks"]), port, job.get("launch", "task"))
    try:
        result = run_rank(spec, job["params"], ctx, env, stdout=sys.stdout, stderr=sys.stderr)
        outcome = {"result": result, "t": time.time()}
        status = 0
    except BaseException as exc:  # noqa: BLE001 - report everything, even SystemExit
        show_traceback(spec)
        outcome = {"error": exception_text(exc), "t": time.time()}
        status = 1
    sys.stdout.flush()
    path = rank_outcome_path(ctx.trial_dir, rank)
    try:
        write_json_atomic(path, outcome)
    except OSError as exc:  # one line the launcher quotes, not a traceback in the rank's log
        return outcome_unwritten(exc, path, RANK_UNWRITABLE_PREFIX)
    return status


def launch(job_path: str, job: dict) -> int:
    """Start every rank, wait for them, write the trial's outcome."""
    trial_dir = job["ctx"]["trial_dir"]
    launch_mode = job.get("launch", "task")
    ranks = 1 if launch_mode == "node" else int(job["ranks"])
    for rank in range(ranks):
        clear_outcome(rank_outcome_path(trial_dir, rank))
    port = free_port()
    procs: dict[int, subprocess.Popen] = {}
    logs = []
    for rank in range(ranks):
        cmd = [sys.executable, "-m", "autotune.launch", job_path, "--rank", str(rank),
               "--port", str(port)]
        if rank == 0:
            procs[rank] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
            continue
        out = open(os.path.join(trial_dir, f"rank-{rank}.stdout.log"), "a")
        err = open(os.path.join(trial_dir, f"rank-{rank}.stderr.log"), "a")
        logs += [out, err]
        procs[rank] = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    codes: dict[int, int] = {}
    while len(codes) < len(procs):
        for rank, proc in procs.items():
            if rank not in codes and proc.poll() is not None:
                codes[rank] = proc.returncode
        if any(code != 0 for code in codes.values()):
            break
        time.sleep(0.02)
    for fh in logs:
        fh.close()
    outcome = {**judge_ranks(trial_dir, ranks, codes), "end_t": time.time(),
               "pid": os.getpid()}
    try:
        write_json_atomic(job["outcome_path"], outcome)
        status = 0 if "result" in outcome else 1
    except OSError as exc:
        status = outcome_unwritten(exc, job["outcome_path"])
    if len(codes) < len(procs):  # a rank failed: end the others (and this launcher)
        sys.stdout.flush()
        sys.stderr.flush()
        os.killpg(os.getpgid(0), signal.SIGKILL)
    return status


def judge_ranks(trial_dir: str, ranks: int, codes: dict[int, int]) -> dict:
    """The trial's outcome from its ranks' outcome files and exit codes."""
    outcomes: dict[int, dict] = {}
    for rank in range(ranks):
        try:
            with open(rank_outcome_path(trial_dir, rank)) as fh:
                outcomes[rank] = json.load(fh)
        except (OSError, ValueError):
            pass
    failures = [(o["t"], r, o["error"]) for r, o in outcomes.items() if "error" in o]
    first = first_failure(failures)
    if first is not None:
        rank, message = first
        return {"error": rank_message(rank, ranks, message)}
    died = sorted(r for r, code in codes.items() if code != 0 and r not in outcomes)
    if died:
        rank = died[0]
        own = log_tail(trial_dir, rank, limit=1000)
        if codes[rank] == OUTCOME_UNWRITABLE_STATUS and own.startswith(f": {RANK_UNWRITABLE_PREFIX}"):
            reason = own[len(": autotune: "):]  # the rank's own line says what and why
        else:
            reason = f"{exit_reason(codes[rank])}{log_tail(trial_dir, rank)}"
        return {"error": rank_message(rank, ranks, reason)}
    if 0 in outcomes and len(outcomes) == ranks:
        return {"result": outcomes[0]["result"]}
    missing = sorted(set(range(ranks)) - set(outcomes))
    return {"error": rank_message(missing[0], ranks, "ended without an outcome")}


def exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def log_tail(trial_dir: str, rank: int, limit: int = 200) -> str:
    name = "stderr.log" if rank == 0 else f"rank-{rank}.stderr.log"
    line = last_line(os.path.join(trial_dir, name), limit)
    return f": {line}" if line else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autotune.launch")
    parser.add_argument("job")
    parser.add_argument("--rank", type=int)
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    with open(args.job) as fh:
        job = json.load(fh)
    if args.rank is not None:
        return run_one_rank(job, args.rank, args.port)
    return launch(args.job, job)


if __name__ == "__main__":
    sys.exit(main())
