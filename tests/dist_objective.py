"""Objectives for the multi-rank and GPU-placement tests: small, CPU-only (gloo)."""
from __future__ import annotations

import json
import os
import time


def ranked(params: dict, ctx) -> dict:
    """Every rank joins a gloo group, leaves a marker and sums its rank + 1 with the others.

    ``fail_rank`` raises in that rank before the collective; ``sleep_s`` sleeps in every rank
    after it (to kill a driver mid-trial); ``steps`` checkpoints from rank 0 (resumable).
    """
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    assert ctx.extra["rank"] == rank and ctx.extra["world_size"] == world
    with open(os.path.join(ctx.trial_dir, f"ran-rank-{rank}"), "a") as fh:
        fh.write(f"{os.getpid()} {os.environ.get('LOCAL_RANK')} {os.environ['MASTER_ADDR']}:"
                 f"{os.environ['MASTER_PORT']}\n")
    if int(params.get("fail_rank", -1)) == rank:
        raise ValueError(f"boom in rank {rank}")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        total = torch.tensor([rank + 1.0])
        dist.all_reduce(total)
        time.sleep(float(params.get("sleep_s", 0.0)))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    x = float(params.get("x", 0.0))
    return {"loss": (x - 1.0) ** 2 + rank, "rank": rank, "world": world,
            "sum": float(total.item()), "pid": os.getpid()}


def placed(params: dict, ctx) -> dict:
    """Leaves ``placed.json``: the CUDA_VISIBLE_DEVICES it was given and when it ran.
    ``x == crash_x`` dies (exit status 3) instead."""
    start = time.time()
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
    if int(params["x"]) == int(params.get("crash_x", -1)):
        os._exit(3)
    time.sleep(float(params.get("sleep_s", 0.4)))
    with open(os.path.join(ctx.trial_dir, "placed.json"), "w") as fh:
        json.dump({"devices": devices, "start": start, "end": time.time()}, fh)
    return {"loss": float(params["x"])}


def ranked_stepper(params: dict, ctx) -> dict:
    """``steps`` steps of ``step_s`` s in every rank, in step through a gloo barrier; rank 0
    checkpoints after each and every rank starts from the checkpoint (a requeue continues), its
    steps then ``resumed_step_s`` s (default ``step_s``)."""
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        state = {"step": 0, "runs": 0}
        if os.path.exists(ctx.checkpoint_path):
            with open(ctx.checkpoint_path) as fh:
                state = json.load(fh)
        dist.barrier()  # every rank has read it before rank 0 writes again
        resumed_from = state["step"]
        state["runs"] += 1
        step_s = float(params.get("step_s", 0.5))
        if state["runs"] > 1:
            step_s = float(params.get("resumed_step_s", step_s))
        while state["step"] < int(params.get("steps", 10)):
            time.sleep(step_s)
            dist.barrier()
            state["step"] += 1
            if rank == 0:
                tmp = ctx.checkpoint_path + ".tmp"
                with open(tmp, "w") as fh:
                    json.dump(state, fh)
                os.replace(tmp, ctx.checkpoint_path)
    finally:
        dist.destroy_process_group()
    return {"loss": float(rank), "resumed_from": resumed_from, "runs": state["runs"],
            "world": world}
