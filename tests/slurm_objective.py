"""Objectives the slurm tests run on the real cluster: small, fast, and checkpointing."""
from __future__ import annotations

import json
import os
import time


def quick(params: dict, ctx) -> dict:
    """Sleeps ``sleep_s`` (default 0.2) and returns a quadratic; ``x == 99`` raises."""
    x = float(params["x"])
    if x == 99:
        raise ValueError("bad hyperparameters (x=99)")
    time.sleep(float(params.get("sleep_s", 0.2)))
    return {"loss": (x - 1.0) ** 2, "job": ctx.extra.get("slurm_job_id", "")}


def stepper(params: dict, ctx) -> dict:
    """``steps`` steps of ``step_s`` seconds, a checkpoint after each; continues from it.
    A run that continues (a requeued job's) steps ``resumed_step_s`` seconds (default
    ``step_s``): a test that interrupts the first run need not wait as long for the rest.

    The result says at which step this run started (``resumed_from``) and how many runs it
    took (``runs``), so a test can see a requeued trial pick up where it was.
    """
    steps = int(params.get("steps", 10))
    step_s = float(params.get("step_s", 0.5))
    state = {"step": 0, "runs": 0}
    if os.path.exists(ctx.checkpoint_path):
        with open(ctx.checkpoint_path) as fh:
            state = json.load(fh)
    resumed_from = state["step"]
    state["runs"] += 1
    save(ctx.checkpoint_path, state)
    if state["runs"] > 1:
        step_s = float(params.get("resumed_step_s", step_s))
    while state["step"] < steps:
        time.sleep(step_s)
        state["step"] += 1
        save(ctx.checkpoint_path, state)
    x = float(params.get("x", 0.0))
    return {"loss": (x - 1.0) ** 2, "resumed_from": resumed_from, "runs": state["runs"],
            "requeues": ctx.extra.get("requeues", 0)}


def save(path: str, state: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(state, fh)
    os.replace(tmp, path)
