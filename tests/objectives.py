"""Objectives the tests run: well-behaved, broken in every way a trial can break, and logged."""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time


def quadratic(params: dict, ctx) -> dict:
    x = float(params["x"])
    y = float(params.get("y", 0.0))
    log_run(params, ctx)
    time.sleep(float(params.get("sleep_s", 0.0)))
    value = (x - 1.0) ** 2 + (y + 0.5) ** 2
    out = {"loss": value, "score": -value}
    if "cost_s" in params:
        out["cost_s"] = float(params["cost_s"]) * (1.0 + 0.1 * (ctx.trial % 3))
    return out


def log_run(params: dict, ctx) -> None:
    """Append one line per run to a log beside the study, to count how often a trial ran."""
    path = params.get("log")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"trial": ctx.trial, "attempt": ctx.attempt}) + "\n")


def raises(params: dict, ctx) -> dict:
    raise ValueError("bad hyperparameters")


def flaky(params: dict, ctx) -> dict:
    """Fails on the first attempt of every trial, succeeds on the second."""
    if ctx.attempt == 0:
        raise RuntimeError("transient failure")
    return {"loss": float(params["x"])}


def no_metric(params: dict, ctx) -> dict:
    return {"other": 1.0}


def nan(params: dict, ctx) -> dict:
    return {"loss": math.nan}


def numpy_scalars(params: dict, ctx) -> dict:
    """What ML code returns: numpy scalars (not float subclasses) for a metric and a cost."""
    import numpy as np

    return {"loss": np.float32(params["x"]) / np.float32(8), "steps": np.int64(3),
            "cost_s": np.float32(2.5)}


def numpy_nan(params: dict, ctx) -> dict:
    import numpy as np

    return {"loss": np.float32("nan")}


def segfault(params: dict, ctx) -> dict:
    os.kill(os.getpid(), signal.SIGSEGV)
    return {}


def hangs(params: dict, ctx) -> dict:
    time.sleep(60)
    return {"loss": 0.0}


def noop(params: dict, ctx) -> dict:
    return {"loss": 0.0}


def by_x(params: dict, ctx) -> dict:
    """Fails for odd x: a mix of outcomes in one study."""
    x = int(params["x"])
    if x % 2:
        raise ValueError(f"odd x={x}")
    return {"loss": float(x)}


def by_epochs(params: dict, ctx) -> dict:
    """Better the longer it trains; saves no checkpoint."""
    return {"loss": float(params["x"]) + 1.0 / ctx.epochs}


def saves_checkpoint(params: dict, ctx) -> dict:
    """``by_epochs`` that saves ``ctx.checkpoint_path``."""
    with open(ctx.checkpoint_path, "w") as fh:
        fh.write(str(ctx.epochs))
    return by_epochs(params, ctx)


def pretrain(params: dict, ctx) -> dict:
    """A pretend pretrain, logged one line per start. It holds an exclusive lock on
    ``<log>.running`` while it runs: one started while another runs logs OVERLAP. It sleeps
    ``sleep_s``, then, given a ``gate`` path, waits until that file exists."""
    import fcntl

    with open(params["log"], "a") as fh:
        fh.write(f"{os.getpid()}\n")
    guard = open(params["log"] + ".running", "a")
    try:
        fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        with open(params["log"], "a") as fh:
            fh.write("OVERLAP\n")
    if os.environ.get("PRETRAIN_FAILS") or params.get("fail"):
        print("CUDA out of memory: tried to allocate 20 GiB", file=sys.stderr)
        raise RuntimeError("out of memory in pretrain")
    # PRETRAIN_SLEEP_S: a later driver's attempt may be short where the first one had to
    # last (the stage's key, its params, stays the same)
    time.sleep(float(os.environ.get("PRETRAIN_SLEEP_S") or params.get("sleep_s", 0.5)))
    if params.get("gate"):  # then it runs on until a test opens the gate (the file exists)
        give_up = time.monotonic() + 120
        while not os.path.exists(params["gate"]):
            if time.monotonic() > give_up:
                raise RuntimeError(f"pretrain: its gate {params['gate']} never opened")
            time.sleep(0.05)
    with open(ctx.checkpoint_path, "w") as fh:
        json.dump({"base": float(params.get("base", 1.0)), "epochs": ctx.epochs,
                   "extra": dict(getattr(ctx, "extra", None) or {})}, fh)
    guard.close()
    return {"loss": 0.5}


def pretrain_looks(params: dict, ctx) -> dict:
    """A pretrain that copies what a user watching the study sees while it runs
    (``params["watch"]``, say trajectory.csv) to ``params["seen"]`` ("absent" when missing)."""
    try:
        with open(params["watch"]) as fh:
            seen = fh.read()
    except FileNotFoundError:
        seen = "absent"
    with open(params["seen"], "w") as fh:
        fh.write(seen)
    with open(ctx.checkpoint_path, "w") as fh:
        json.dump({"base": 1.0}, fh)
    return {"loss": 0.5}


def finetune(params: dict, ctx) -> dict:
    with open(ctx.pretrained) as fh:
        base = json.load(fh)["base"]
    return {"loss": base + (float(params["x"]) - 1.0) ** 2, "pretrained": 1.0}


def interrupts(params: dict, ctx) -> dict:
    """As if the user pressed Ctrl-C while this trial ran (inline executor: the driver's process)."""
    os.kill(os.getpid(), signal.SIGINT)
    return {"loss": float(params["x"])}


def grid_bowl(params: dict, ctx) -> dict:
    """A bowl over the restore tests' grid, with seeded noise and a cost that varies, so
    results arrive out of order under the simulated executor; ``ctx.epochs`` shrinks the
    value's distance from the optimum as a learning curve would."""
    import numpy as np

    rng = np.random.default_rng([int(ctx.seed), 5])
    value = (params["a"] - 4) ** 2 + 2 * (params["b"] - 2) ** 2 + 3 * (math.log(params["c"]) ** 2)
    if ctx.epochs:
        value += 5.0 / ctx.epochs
    value += float(params.get("noise", 0.0)) * float(rng.normal())
    return {"loss": value, "cost_s": 3600.0 * float(rng.uniform(0.8, 1.2))}


def prints_then_waits(params: dict, ctx) -> dict:
    """Prints a line, then waits for the file ``params["gate"]``: is the print visible before?"""
    print("epoch 1")
    while not os.path.exists(params["gate"]):
        time.sleep(0.05)
    return {"loss": float(params["x"])}


def dies_once(params: dict, ctx) -> dict:
    """The first run stops its process mid-trial (as kill -9 or Ctrl-C would stop an inline
    or simulated trial, which runs in the driver's process); the next run succeeds."""
    mark = params["mark"]
    if not os.path.exists(mark):
        open(mark, "w").close()
        raise KeyboardInterrupt
    return {"loss": float(params["x"]), "cost_s": 5.0}


def pretrain_torn_outcome(params: dict, ctx) -> dict:
    """A pretrain whose worker leaves its outcome file torn (cut short mid-object, as a disk
    error or an older version killed mid-write would; under SLURM submitit's result pickle)
    in its first ``params["damage"]``
    runs, counted in the file ``params["count"]``; its first ``params["fail"]`` runs raise
    before building (their error lost with the outcome). The worker runs as ``__main__``."""
    with open(params["count"], "a+") as fh:
        fh.seek(0)
        run = len(fh.read())
        fh.write("x")
    if run < params.get("damage", 0):
        def torn(path: str, data: dict) -> None:
            with open(path, "w") as out:
                out.write(json.dumps(data)[:10])

        def torn_pickle(obj, filename) -> None:  # submitit's result file, cut short
            import cloudpickle
            with open(filename, "wb") as out:
                out.write(cloudpickle.dumps(obj)[:10])

        if os.environ.get("SLURM_JOB_ID"):  # a SLURM job: submitit writes the result
            import submitit.core.utils
            submitit.core.utils.cloudpickle_dump = torn_pickle
        else:
            sys.modules["__main__"].write_json_atomic = torn
    if run < params.get("fail", 0):
        raise RuntimeError("pretrain ran out of memory")
    time.sleep(float(params.get("sleep_s", 0)))  # a test may kill the driver meanwhile
    with open(ctx.checkpoint_path, "w") as fh:
        json.dump({"base": 1.0}, fh)
    return {"loss": 0.5}


def gated(params: dict, ctx) -> dict:
    """``x`` 0 returns at once; any other ``x`` fails its first attempt, then waits for the
    file ``params["gate"]``: a trial run again that runs while a test looks at it."""
    if params["x"] != 0:
        if ctx.attempt == 0:
            raise RuntimeError("first attempt fails")
        give_up = time.monotonic() + 120
        while not os.path.exists(params["gate"]) and time.monotonic() < give_up:
            time.sleep(0.05)
    return {"loss": float(params["x"])}


def blas_threads(params: dict, ctx) -> dict:
    """The BLAS threads this objective may use where it runs (the inline executor: the
    driver's own process)."""
    from threadpoolctl import threadpool_info

    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return {"loss": float(params["x"]) ** 2, "threads": float(max(counts))}
