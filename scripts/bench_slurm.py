"""Measure the slurm executor on a real cluster: submit-to-start latency and polling rate.

    python scripts/bench_slurm.py [--jobs 50] [--sleep 20] [--window 60] [--partition P]

Keeps ``--jobs`` trials in flight (a finished one is replaced at once, as the driver does) for
``--window`` seconds with the executor's default polling (poll_s 2, max_poll_s 30), then
cancels what is left. Prints:
- sbatch time per submission (the driver's cost of one submit),
- submit-to-start latency per trial: from ``submit`` returning to the trial's first line
  running on the node (its own clock), for the trials that started at once on a free slot
  and for all that started (queue wait included),
- the sacct queries the executor made per minute with that many jobs in flight.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from autotune.executors.base import TrialJob
from autotune.executors.slurm import SlurmExecutor
from autotune.objective import Ctx, ObjectiveSpec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--sleep", type=float, default=20.0, help="seconds each trial runs")
    ap.add_argument("--window", type=float, default=60.0, help="seconds to measure polling")
    ap.add_argument("--partition", default=None)
    args = ap.parse_args()

    directory = tempfile.mkdtemp(prefix="bench-slurm-")
    spec = ObjectiveSpec(metric="loss", entry="tests.slurm_objective:quick", python_path=(REPO,))
    opts = {"time_limit_min": 5, "cleanup": "all"}
    if args.partition:
        opts["partition"] = args.partition
    t0 = time.time()
    ex = SlurmExecutor(directory, args.jobs, t0, opts)
    trial = 0
    sbatch_s: list[float] = []

    def submit() -> None:
        nonlocal trial
        ctx = Ctx(trial=trial, trial_dir=os.path.join(directory, "trials", str(trial)), seed=trial)
        began = time.monotonic()
        ex.submit(TrialJob(trial, 0, {"x": float(trial % 7), "sleep_s": args.sleep}, ctx, spec))
        sbatch_s.append(time.monotonic() - began)
        trial += 1

    for _ in range(args.jobs):
        submit()
    print(f"submitted {args.jobs} jobs in {sum(sbatch_s):.1f}s "
          f"(median {statistics.median(sbatch_s) * 1000:.0f} ms per sbatch, "
          f"submitit throttles to >= 200 ms)")
    queries0 = ex.stats["queries"]
    began = time.monotonic()
    latencies, first_wave = [], []
    finished = 0
    while time.monotonic() - began < args.window:
        for o in ex.poll(0.5):
            finished += 1
            if o.result is not None:
                wait = o.start_s - o.extra["submitted_s"]
                latencies.append(wait)
                if o.trial < args.jobs and wait < args.sleep / 2:
                    first_wave.append(wait)
            submit()
    elapsed = time.monotonic() - began
    queries = ex.stats["queries"] - queries0
    left = ex.job_ids()
    subprocess.run(["scancel", *left], check=False)
    print(f"in flight: {args.jobs} jobs for {elapsed:.0f}s; {finished} finished and were "
          f"replaced; {len(left)} cancelled at the end")
    print(f"polling: {queries} sacct queries in {elapsed:.0f}s = {queries / elapsed * 60:.1f} "
          f"per minute (one query for all {args.jobs} jobs; mean {ex.stats['query_s'] / max(1, ex.stats['queries']) * 1000:.0f} ms each)")
    if first_wave:
        print(f"submit-to-start, free slot: median {statistics.median(first_wave):.2f}s, "
              f"min {min(first_wave):.2f}s, max {max(first_wave):.2f}s over {len(first_wave)} trials")
    if latencies:
        print(f"submit-to-start, all finished trials (queue wait included): median "
              f"{statistics.median(latencies):.1f}s, max {max(latencies):.1f}s over {len(latencies)}")
    print(f"study dir: {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
