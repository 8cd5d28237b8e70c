"""Multi-fidelity analytic benchmarks: learning curves whose end depends on the parameters.

A benchmark gives, for a configuration x trained e epochs, the validation loss

    loss(x, e) = final(x) + a(x) * e ** -b(x) + noise(e)

``final`` is what the configuration would reach with unlimited training, ``a * e**-b`` the
part still to be learnt (b: how fast it learns; configurations that learn fast often end
worse, so early rankings mislead a little, as in real training), and the noise a Gaussian
whose spread shrinks with e. Its known optimum at a fidelity E (``optimum(E)``) is the least
noise-free loss(x, E) over the space.

As an objective (``autotune.bench.learning_curves:lc_mlp`` or ``:lc_branin``) it behaves like a
training job with checkpoints: it reads the epochs already done from ``ctx.resume_from`` (the
parent's checkpoint, for a promoted trial), "trains" only the remaining epochs, writes
``ctx.checkpoint_path`` and reports ``cost_s`` proportional to the epochs it trained
(seconds per epoch depend on the batch size, with a little per-trial jitter, as on real
nodes). The noise follows the lineage: a continued run sees the same noise at epoch e as
an uninterrupted run of that configuration from the same first trial.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

OPT_OFFSET = {"adam": 0.0, "rmsprop": 0.03, "sgd": 0.08}
OPT_SPEED = {"adam": 1.0, "rmsprop": 0.95, "sgd": 0.75}


def _mlp_terms(p: dict[str, Any]) -> tuple[float, float, float]:
    x = math.log10(float(p["lr"]))
    width = float(p["width"])
    drop = float(p["dropout"])
    batch = float(p["batch"])
    final = (0.05 + 0.12 * (x + 2.5) ** 2 + 0.04 * (math.log2(width) - 8.0) ** 2
             + 0.6 * (drop - 0.25) ** 2 + OPT_OFFSET[p["optimizer"]]
             + 0.02 * (math.log2(batch) - 6.0) ** 2)
    speed = (0.25 + 0.5 * (x + 4.0) / 4.0 - 0.3 * drop) * OPT_SPEED[p["optimizer"]]
    return final, 1.2, max(0.08, speed)


def _mlp_sec(p: dict[str, Any]) -> float:
    return 30.0 * math.sqrt(64.0 / float(p["batch"]))


def _branin(x1: Any, x2: Any) -> Any:
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


def _branin_terms(p: dict[str, Any]) -> tuple[float, float, float]:
    x1, x2 = float(p["x1"]), float(p["x2"])
    final = 0.05 + (float(_branin(x1, x2)) - 0.397887) / 40.0
    speed = 0.2 + 0.5 * (x1 + 5.0) / 15.0
    return final, 1.0, speed


@dataclass(frozen=True)
class Benchmark:
    name: str
    space: dict[str, Any]                              # the study file's ``space:``
    terms: Callable[[dict[str, Any]], tuple[float, float, float]]  # final, a, b
    sec_per_epoch: Callable[[dict[str, Any]], float]
    noise: float = 0.01                                # noise sd at many epochs

    def curve(self, params: dict[str, Any], epochs: float) -> float:
        """Noise-free loss after ``epochs`` epochs."""
        final, a, b = self.terms(params)
        return final + a * float(epochs) ** -b

    def noise_at(self, lineage_seed: int, epochs: int) -> float:
        sd = self.noise * (1.0 + 3.0 / math.sqrt(epochs))
        return float(np.random.default_rng([int(lineage_seed), int(epochs)]).normal(0.0, sd))

    def loss(self, params: dict[str, Any], epochs: int, lineage_seed: int) -> float:
        return self.curve(params, epochs) + self.noise_at(lineage_seed, epochs)


BENCHMARKS: dict[str, Benchmark] = {
    "lc-mlp": Benchmark(
        "lc-mlp",
        {"lr": {"low": 1e-4, "high": 1.0, "log": True},
         "width": {"low": 16, "high": 1024, "log": True, "int": True},
         "dropout": {"low": 0.0, "high": 0.8},
         "optimizer": {"values": ["adam", "rmsprop", "sgd"]},
         "batch": {"values": [32, 64, 128, 256]}},
        _mlp_terms, _mlp_sec),
    "lc-branin": Benchmark(
        "lc-branin",
        {"x1": {"low": -5.0, "high": 10.0}, "x2": {"low": 0.0, "high": 15.0}},
        _branin_terms, lambda p: 60.0),
}

ENTRIES = {"lc-mlp": "autotune.bench.learning_curves:lc_mlp",
           "lc-branin": "autotune.bench.learning_curves:lc_branin"}


# ---- the objective ---------------------------------------------------------------------------
def run(bench: Benchmark, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    # a searcher without a fidelity (axis, grid) trains the study's fixed ``epochs``
    epochs = int(ctx.epochs) if ctx.epochs is not None else int(params.get("epochs", 1))
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    done, lineage = 0, int(ctx.seed)
    if ctx.resume_from:
        with open(ctx.resume_from) as fh:
            state = json.load(fh)
        if state.get("benchmark") != bench.name or state.get("params") != _plain(params):
            raise ValueError(f"checkpoint {ctx.resume_from} is of another configuration")
        done, lineage = int(state["epochs"]), int(state["lineage_seed"])
        if done > epochs:
            raise ValueError(f"checkpoint has {done} epochs, more than the {epochs} asked for")
    trained = epochs - done
    jitter = 1.0 + 0.1 * float(np.random.default_rng([int(ctx.seed), 7]).random())
    sec = bench.sec_per_epoch(params) * jitter
    value = bench.loss(params, epochs, lineage)
    path = ctx.checkpoint_path
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump({"benchmark": bench.name, "epochs": epochs, "lineage_seed": lineage,
                   "params": _plain(params)}, fh)
    os.replace(tmp, path)
    return {"loss": value, "epochs_total": epochs, "epochs_trained": trained, "resumed_from": done,
            "sec_per_epoch": sec, "cost_s": trained * sec}


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params))


def lc_mlp(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return run(BENCHMARKS["lc-mlp"], params, ctx)


def lc_branin(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return run(BENCHMARKS["lc-branin"], params, ctx)


# ---- known optimum and reference values --------------------------------------------------------
@lru_cache(maxsize=None)
def optimum(name: str, epochs: int) -> float:
    """The least noise-free loss at ``epochs`` (dense grid search, refined; ~1e-4 accurate)."""
    if name == "lc-mlp":
        # separable: width 256, batch 64 and adam are optimal whatever lr and dropout are
        best = math.inf
        for opt in OPT_OFFSET:
            x, d = np.meshgrid(np.linspace(-4, 0, 1601), np.linspace(0, 0.8, 801), indexing="ij")
            final = 0.05 + 0.12 * (x + 2.5) ** 2 + 0.6 * (d - 0.25) ** 2 + OPT_OFFSET[opt]
            speed = np.maximum(0.08, (0.25 + 0.5 * (x + 4) / 4 - 0.3 * d) * OPT_SPEED[opt])
            best = min(best, float((final + 1.2 * float(epochs) ** -speed).min()))
        return best
    if name == "lc-branin":
        x1, x2 = np.meshgrid(np.linspace(-5, 10, 1501), np.linspace(0, 15, 1501), indexing="ij")
        final = 0.05 + (_branin(x1, x2) - 0.397887) / 40.0
        return float((final + float(epochs) ** -(0.2 + 0.5 * (x1 + 5) / 15)).min())
    raise KeyError(name)


def random_median(name: str, epochs: int, draws: int = 4000, seed: int = 12345) -> float:
    """The median noise-free loss at ``epochs`` of random configurations from the space."""
    from ..space import parse_space

    bench = BENCHMARKS[name]
    space = parse_space(bench.space)
    rng = np.random.default_rng(seed)
    return float(np.median([bench.curve(space.sample(rng), epochs) for _ in range(draws)]))


def study_mapping(name: str, algorithm: str, search: dict[str, Any] | None = None,
                  workers: int = 50, study_name: str | None = None) -> dict[str, Any]:
    """A study (as parse_study takes it) running ``algorithm`` on benchmark ``name``."""
    return {"name": study_name or f"{name}-{algorithm}",
            "objective": {"entry": ENTRIES[name], "metric": "loss", "mode": "min"},
            "space": BENCHMARKS[name].space,
            "search": {"algorithm": algorithm, **(search or {})},
            "executor": {"kind": "simulated", "max_concurrent": workers}}
