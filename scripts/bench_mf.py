#!/usr/bin/env python
"""Multi-fidelity benchmark: random, hyperband, asha and asha-bo (and Optuna's TPE +
HyperbandPruner where optuna is installed) on the learning-curve benchmarks of
autotune.bench.learning_curves, with the simulated executor and 50 workers, under the same compute budget.

Compute is counted in epochs actually trained (a promotion pays only the extra epochs it
trains from its parent's checkpoint). Every algorithm gets the same budget: random search
runs budget/max_epochs full-length trials; the multi-fidelity searchers stop proposing once
``max_epochs_total`` epochs are committed; Optuna (sequential, one worker) stops once it has
trained that many epochs.

Printed per benchmark, medians over the seeds:
  trials     trials run (each rung evaluation is a trial)
  epochs     compute spent, in epochs
  wall_h     virtual wall time to the end of the run, hours (50 workers)
  best@C%    best loss observed at full fidelity once C% of the budget was spent
  best@xTr   the same against virtual wall time, at x times Tr, random search's median wall
             time (its 50 workers run every draw at full length)
  regret     true (noise-free, full-fidelity) loss of the final incumbent minus the optimum
  ep@r<0.1   epochs spent when the incumbent's regret first fell below 0.1 (- : never, in
             over half of the seeds)
  impr/kep   (median random configuration's true loss - incumbent's true loss) per 1000 epochs

    python scripts/bench_mf.py            # full run: 2 benchmarks, 5 seeds, 4 HB iterations of budget
    python scripts/bench_mf.py --quick    # small: 1 benchmark, 2 seeds, 1 iteration
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

import autotune as at
from autotune.bench import learning_curves
from autotune.driver import Driver
from autotune.searchers.hyperband import bracket_plan
from autotune.searchers.mf_common import rung_epochs
from autotune.study import parse_study

ALGORITHMS = ["random", "hyperband", "asha", "asha-bo"]
COMPUTE_MARKS = (0.25, 0.5, 1.0)
WALL_MARKS = (0.5, 0.75, 1.0)  # fractions of random search's median wall time
TARGET_REGRET = 0.1


def hyperband_iteration_epochs(low: int, high: int, eta: float) -> int:
    """Epochs one full Hyperband iteration trains, promotions paying only the extra epochs."""
    rungs = rung_epochs(low, high, eta)
    top = len(rungs) - 1
    total = 0
    for s in range(top, -1, -1):
        plan = bracket_plan(top, eta, s)
        for i, n in enumerate(plan):
            k = top - s + i
            total += n * (rungs[k] - (rungs[k - 1] if i else 0))
    return total


# ---- one run of an autotune searcher --------------------------------------------------------------
def run_autotune(bench: str, algorithm: str, seed: int, budget: float, fidelity: dict,
                 workers: int, scratch: str) -> dict[str, Any]:
    search: dict[str, Any] = {"seed": seed, "fidelity": fidelity}
    if algorithm == "random":
        search["max_trials"] = max(1, int(round(budget / fidelity["max"])))
    else:
        search["max_epochs_total"] = budget
    study = parse_study(learning_curves.study_mapping(bench, algorithm, search, workers=workers,
                                              study_name=f"{bench}-{algorithm}-{seed}"))
    directory = tempfile.mkdtemp(prefix=f"{algorithm}-", dir=scratch)
    try:
        Driver(study, directory, progress=False).run()
        df = at.load(directory).trials_dataframe()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    names = list(learning_curves.BENCHMARKS[bench].space)
    ended = df[df["end_s"].notna()].sort_values("end_s", kind="stable")
    trained = ended["epochs_trained"].fillna(0.0) if "epochs_trained" in ended else 0.0 * ended["end_s"]
    events = []  # (end time, epochs trained, value, params, fidelity) in order of completion
    for end, epochs, value, fid, params in zip(ended["end_s"], trained, ended["value"],
                                               ended["epochs"], ended[names].itertuples(index=False)):
        events.append((end, epochs, None if pd.isna(value) else value, dict(zip(names, params)),
                       None if pd.isna(fid) else int(fid)))
    return trace(bench, events, fidelity["max"], len(df))


# ---- one run of Optuna's TPE + HyperbandPruner ----------------------------------------------------
def run_optuna(bench_name: str, seed: int, budget: float, fidelity: dict) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bench = learning_curves.BENCHMARKS[bench_name]
    high = fidelity["max"]
    spent = [0.0]
    events = []

    def objective(trial):
        params = {}
        for name, spec in bench.space.items():
            if "values" in spec:
                params[name] = trial.suggest_categorical(name, spec["values"])
            elif spec.get("int"):
                params[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
            else:
                params[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
        lineage = seed * 1_000_003 + trial.number
        value = math.nan
        for epoch in range(1, high + 1):
            value = bench.loss(params, epoch, lineage)
            spent[0] += 1
            trial.report(value, epoch)
            if trial.should_prune():
                events.append((math.nan, epoch, None, params, epoch))
                raise optuna.TrialPruned()
        events.append((math.nan, high, value, params, high))
        return value

    def stop(study, _trial):
        if spent[0] >= budget:
            study.stop()

    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.HyperbandPruner(min_resource=fidelity["min"], max_resource=high,
                                            reduction_factor=fidelity["eta"])
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner,
                                study_name=f"bench-{bench_name}-{seed}")  # the pruner hashes it
    study.optimize(objective, n_trials=10**6, callbacks=[stop])
    # sequential, one worker: no virtual wall time to compare with 50 workers
    return trace(bench_name, events, high, len(study.trials), sequential=True)


# ---- measures --------------------------------------------------------------------------------------
def trace(bench_name: str, events: list[tuple], high: int, trials: int,
          sequential: bool = False) -> dict[str, Any]:
    """Best-so-far at full fidelity against compute and wall time, from (end, epochs, value,
    params, fidelity) in order of completion."""
    bench = learning_curves.BENCHMARKS[bench_name]
    opt = learning_curves.optimum(bench_name, high)
    compute, best, best_true, first_hit = 0.0, math.inf, math.inf, math.inf
    curve = []  # (end time, compute, best observed, true loss of the incumbent)
    for end, epochs, value, params, fidelity in events:
        compute += float(epochs)
        if value is not None and fidelity == high and value < best:
            best = value
            best_true = bench.curve(params, high)
            if best_true - opt < TARGET_REGRET and first_hit == math.inf:
                first_hit = compute
        curve.append((end, compute, best, best_true))
    return {"trials": trials, "epochs": compute, "wall_h": (math.nan if sequential else
            (curve[-1][0] / 3600.0 if curve else math.nan)), "curve": curve, "best": best,
            "true": best_true, "regret": best_true - opt, "first_hit": first_hit,
            "sequential": sequential}


def best_at_compute(run: dict, epochs: float) -> float:
    out = math.inf
    for _t, c, b, _true in run["curve"]:
        if c > epochs + 1e-9:
            break
        out = b
    return out


def best_at_wall(run: dict, seconds: float) -> float:
    if run["sequential"]:
        return math.nan
    out = math.inf
    for t, _c, b, _true in run["curve"]:
        if t > seconds:
            break
        out = b
    return out


def med(values: list[float]) -> float:
    vals = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return math.nan
    return float(np.median(vals))


def fmt(v: float, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "-"
    return f"{v:.{digits}f}"


def table(bench: str, runs: dict[str, list[dict]], budget: float, high: int) -> str:
    median_random = learning_curves.random_median(bench, high)
    opt = learning_curves.optimum(bench, high)
    head = (["algorithm", "trials", "epochs", "wall_h"]
            + [f"best@{int(m * 100)}%C" for m in COMPUTE_MARKS]
            + [f"best@{x:g}Tr" for x in WALL_MARKS]
            + ["regret", f"ep@r<{TARGET_REGRET:g}", "impr/kep"])
    lines = [head]
    t_random = med([r["wall_h"] for r in runs["random"]]) * 3600.0
    for algorithm, rs in runs.items():
        row = [algorithm, f"{med([r['trials'] for r in rs]):.0f}", f"{med([r['epochs'] for r in rs]):.0f}",
               fmt(med([r["wall_h"] for r in rs]), 2)]
        row += [fmt(med([best_at_compute(r, m * budget) for r in rs])) for m in COMPUTE_MARKS]
        row += [fmt(med([best_at_wall(r, x * t_random) for r in rs])) for x in WALL_MARKS]
        row.append(fmt(med([r["regret"] for r in rs])))
        row.append(fmt(med([r["first_hit"] for r in rs]), 0))
        row.append(fmt(med([(median_random - r["true"]) / (r["epochs"] / 1000.0) for r in rs])))
        lines.append(row)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [f"benchmark {bench}: optimum {opt:.4f} at {high} epochs; median random configuration "
            f"{median_random:.4f}; budget {budget:.0f} epochs; Tr = {t_random / 3600:.2f} h"]
    for line in lines:
        text.append("  ".join(cell.rjust(w) if i else cell.ljust(w)
                              for i, (cell, w) in enumerate(zip(line, widths))))
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run: 1 benchmark, 2 seeds, 1 iteration")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per algorithm (default 5; quick 2)")
    ap.add_argument("--iterations", type=float, default=None,
                    help="budget in full Hyperband iterations' epochs (default 4; quick 1)")
    ap.add_argument("--benchmarks", default=None, help="comma list (default lc-mlp,lc-branin; quick lc-mlp)")
    ap.add_argument("--workers", type=int, default=50)
    ap.add_argument("--no-optuna", action="store_true", help="skip the Optuna peer row")
    args = ap.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else 5)
    iterations = args.iterations or (1.0 if args.quick else 4.0)
    benches = (args.benchmarks or ("lc-mlp" if args.quick else "lc-mlp,lc-branin")).split(",")
    fidelity = {"min": 1, "max": 81, "eta": 3}
    budget = iterations * hyperband_iteration_epochs(fidelity["min"], fidelity["max"], fidelity["eta"])
    try:
        import optuna  # noqa: F401
        have_optuna = not args.no_optuna
    except ImportError:
        have_optuna = False
    scratch_root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    scratch = tempfile.mkdtemp(prefix="bench_mf-", dir=scratch_root)
    print(f"bench_mf: fidelity {fidelity}, {args.workers} workers (simulated executor), "
          f"{seeds} seeds, budget {budget:.0f} epochs ({iterations:g} Hyperband iterations)"
          + ("" if have_optuna else "; optuna not installed: no peer row"), flush=True)
    began = time.time()
    try:
        for bench in benches:
            runs: dict[str, list[dict]] = {}
            for algorithm in ALGORITHMS:
                t = time.time()
                runs[algorithm] = [run_autotune(bench, algorithm, seed, budget, fidelity,
                                                args.workers, scratch) for seed in range(seeds)]
                print(f"  {bench} {algorithm}: {time.time() - t:.1f}s", file=sys.stderr, flush=True)
            if have_optuna:
                t = time.time()
                runs["optuna-tpe+hb (seq)"] = [run_optuna(bench, seed, budget, fidelity)
                                               for seed in range(seeds)]
                print(f"  {bench} optuna: {time.time() - t:.1f}s", file=sys.stderr, flush=True)
            print()
            print(table(bench, runs, budget, fidelity["max"]), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n(medians over {seeds} seeds; {time.time() - began:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
