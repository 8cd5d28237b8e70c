"""A small built-in objective: a noisy "validation loss" of a pretend training run.

It has the shape of a real tuning problem (a log-scale learning rate with a sweet spot, an
integer width with diminishing returns, a discrete regulariser) and costs a fraction of a
second, so the embedded default study shows a search improving within seconds.
"""
from __future__ import annotations

import math
import time

import numpy as np


def loss_of(lr: float, width: int, dropout: float) -> float:
    """The noise-free loss: best near lr 3e-3, width 6, dropout 0.2."""
    return (0.3 * (math.log10(lr) - math.log10(3e-3)) ** 2
            + 0.8 / width + 0.1 * abs(width - 6) / 6
            + 2.0 * (dropout - 0.2) ** 2 + 0.1)


def objective(params: dict, ctx) -> dict:
    rng = np.random.default_rng(ctx.seed)
    steps = int(params.get("steps", 20))
    time.sleep(float(params.get("sleep_s", 0.0)))
    final = loss_of(params["lr"], params["width"], params["dropout"])
    noise = float(params.get("noise", 0.01)) * rng.standard_normal()
    epochs = ctx.epochs or steps
    curve = final + 1.0 / (1 + epochs)  # shorter runs look worse, as in training
    result = {"loss": curve + noise, "train_loss": curve * 0.9, "epochs": epochs}
    if "cost_per_epoch_s" in params:  # a pretend cost, for the simulated executor
        result["cost_s"] = float(params["cost_per_epoch_s"]) * epochs
    return result
