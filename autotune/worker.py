"""The process a local trial runs in: ``python -m autotune.worker JOB.json``.

Running each trial in its own process means a segfault, an ``os._exit`` or a runaway
allocation in one trial costs that trial only. The outcome is written atomically next to
the job file, so the driver can tell "finished with an error" from "died".
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback

from .objective import Ctx, ObjectiveSpec, run_objective


def write_json_atomic(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(data, fh, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(job_path: str) -> int:
    with open(job_path) as fh:
        job = json.load(fh)
    spec = ObjectiveSpec.from_dict(job["objective"])
    ctx = Ctx(**job["ctx"])
    began = time.perf_counter()
    try:
        result = run_objective(spec, job["params"], ctx, stdout=sys.stdout, stderr=sys.stderr)
        outcome = {"result": result, "measured_s": time.perf_counter() - began}
        status = 0
    except BaseException as exc:  # noqa: BLE001 - report everything, even SystemExit
        traceback.print_exc()
        outcome = {"error": f"{type(exc).__name__}: {exc}", "measured_s": time.perf_counter() - began}
        status = 1
    sys.stdout.flush()
    write_json_atomic(job["outcome_path"], outcome)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
