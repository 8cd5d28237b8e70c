"""Bench: axis-radial (the study's parallel method) against axis (asynchronous), simulated.

Every run goes through the real driver with the simulated executor: 50 workers, trial costs
drawn uniformly in 0.8 .. 1.2 hours, analytic functions on the study's 10 x 11 x 11 x 11 grid
(autotune/bench/landscapes.py), each with and without noise, several seeds (a seed picks the
function's instance, i.e. where its optimum lies, and the noise draws).

Per function and method it prints medians over seeds of:
  evals     trials run in all
  rounds    search rounds (bases); for axis-radial also batches (the study's "rounds")
  use       slot use: busy worker-seconds / (50 x virtual wall time until the search ended)
  use+drain the same over every trial until the last one ends (filler left running when the
            search stops counts, and so does the idle tail while it drains)
  T         virtual wall time until the search ended (hours)
  t_best    virtual wall time until the final setting was first measured (hours)
  cpu_best  busy worker-hours until then
  n_best    trials finished by then
  gap       true (noise-free) value of the final setting minus the grid's true minimum
and the ratios axis / axis-radial of the medians (t_best, n_best) with the targets.

    python scripts/bench_axis.py            # 3 functions x 2 noise levels x 10 seeds
    python scripts/bench_axis.py --quick    # 3 seeds, no noisy variants
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import autotune as at
from autotune.bench import landscapes
from autotune.driver import Driver
from autotune.study import parse_study

WORKERS = 50
NOISE = 0.01  # on the functions' 0..1 scale


def run_one(tmp: str, method: str, fn: str, noise: float, seed: int,
            options: dict | None = None) -> dict:
    name = f"{method}-{fn}-{noise:g}-{seed}"
    study = parse_study({
        "name": name,
        "objective": {"entry": "autotune.bench.landscapes:objective", "metric": "value"},
        "space": landscapes.space(fn, instance=seed, noise=noise),
        "search": {"algorithm": method, "seed": seed, **(options or {})},
        "executor": {"kind": "simulated", "max_concurrent": WORKERS},
    })
    directory = os.path.join(tmp, name)
    driver = Driver(study, directory, progress=False)
    driver.run()
    summary = driver.searcher.summary()
    df = at.load(directory).trials_dataframe()
    ran = df[df["start_s"].notna() & df["end_s"].notna()]
    ended = summary.get("ended_at_trial")
    last = float(ran["end_s"].max())
    t_end = float(df.loc[df["trial"] == ended, "end_s"].iloc[0]) if ended is not None else last
    busy = (ran["end_s"].clip(upper=t_end) - ran["start_s"]).clip(lower=0.0).sum()
    final = tuple(summary["base_index"])
    index = ran["index"].map(lambda i: tuple(i) if isinstance(i, list) else ())
    t_best = float(ran.loc[index == final, "end_s"].min())
    cpu_best = (ran["end_s"].clip(upper=t_best) - ran["start_s"]).clip(lower=0.0).sum()
    n_best = int((ran["end_s"] <= t_best).sum())
    true_min, _ = landscapes.grid_minimum(fn, seed)
    return {
        "evals": len(ran), "rounds": summary.get("rounds", 0),
        "batches": summary.get("batches", 0), "use": busy / (WORKERS * t_end),
        "T": t_end / 3600, "t_best": t_best / 3600, "cpu_best": cpu_best / 3600,
        "n_best": n_best, "gap": landscapes.true_value(fn, seed, final) - true_min,
        "drain": (last - t_end) / 3600,
        # the same counting every trial and the whole time until the last one ends
        "use_all": (ran["end_s"] - ran["start_s"]).sum() / (WORKERS * last),
    }


def med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, noise-free functions only")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per function (default 10)")
    ap.add_argument("--functions", default="convex,rosenbrock,multimodal")
    args = ap.parse_args(argv)
    seeds = args.seeds or (3 if args.quick else 10)
    noises = [0.0] if args.quick else [0.0, NOISE]
    functions = args.functions.split(",")
    methods = ["axis-radial", "axis"]
    began = time.time()
    header = (f"{'function':<24}{'method':<12}{'evals':>6}{'rounds':>7}{'batches':>8}{'use':>7}"
              f"{'use+drain':>10}{'T h':>7}{'t_best h':>9}{'cpu_best h':>11}{'n_best':>7}{'gap':>8}")
    ratios = []
    where = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="bench_axis_", dir=where) as tmp:
        print(f"{WORKERS} workers, costs 0.8-1.2 h, grid 10x11x11x11, seeds 0..{seeds - 1}, "
              f"medians over seeds")
        print(header)
        print("-" * len(header))
        for fn in functions:
            for noise in noises:
                label = fn + ("" if noise == 0 else f" +noise {noise:g}")
                rows = {m: [run_one(tmp, m, fn, noise, s) for s in range(seeds)] for m in methods}
                for m in methods:
                    r = rows[m]
                    batches = f"{med(r, 'batches'):.0f}" if m == "axis-radial" else "-"
                    print(f"{label:<24}{m:<12}{med(r, 'evals'):>6.0f}{med(r, 'rounds'):>7.0f}"
                          f"{batches:>8}{med(r, 'use'):>7.1%}{med(r, 'use_all'):>10.1%}"
                          f"{med(r, 'T'):>7.1f}"
                          f"{med(r, 't_best'):>9.1f}{med(r, 'cpu_best'):>11.0f}"
                          f"{med(r, 'n_best'):>7.0f}{med(r, 'gap'):>8.4f}")
                a, b = rows["axis"], rows["axis-radial"]
                t_ratio = med(a, "t_best") / med(b, "t_best")
                n_ratio = med(a, "n_best") / med(b, "n_best")
                worse = sum(x["gap"] > y["gap"] + 1e-12 for x, y in zip(a, b))
                better = sum(x["gap"] < y["gap"] - 1e-12 for x, y in zip(a, b))
                ratios.append((label, t_ratio, n_ratio, med(a, "use"), med(a, "gap"), med(b, "gap")))
                print(f"{'':<24}{'ratio':<12}t_best {t_ratio:.2f} (target <= 0.5), n_best "
                      f"{n_ratio:.2f} (<= 1.2), slot use {med(a, 'use'):.1%} (>= 95%), "
                      f"final gap: better in {better}, worse in {worse} of {seeds} seeds")
                for s, (x, y) in enumerate(zip(a, b)):
                    if x["gap"] > y["gap"] + 1e-12:
                        print(f"{'':<24}{'':<12}worse: seed {s}, gap {x['gap']:.4f} "
                              f"against {y['gap']:.4f}")
    print("-" * len(header))
    t_all = statistics.median(r[1] for r in ratios)
    n_all = statistics.median(r[2] for r in ratios)
    u_all = statistics.median(r[3] for r in ratios)
    print(f"overall (median of the per-function ratios): t_best {t_all:.2f}, n_best {n_all:.2f}, "
          f"slot use {u_all:.1%}; {time.time() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
