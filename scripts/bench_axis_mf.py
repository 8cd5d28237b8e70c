"""Bench: the axis search with and without multi-fidelity screening, simulated.

Both run the asynchronous ``axis`` search through the real driver on the learning-curve
benchmarks of autotune/bench/learning_curves.py, discretised onto a grid (lc-mlp: the analytic-compare
study's 13 x 7 x 9 x 3 x 4 grid; lc-branin: 31 x 31), 50 simulated workers, until the search
stops by itself. ``axis`` trains every point 81 epochs; ``axis+screen`` adds
``fidelity: {min: 1, max: 81, eta: 3}``: new points run 1 epoch first and only the promising
ones continue (3, 9, 27, 81 epochs) from their checkpoint (points a line's fit predicts to
beat the base run 81 epochs at once); ``+screen-all`` screens those too
(``screen_predicted: true``).

Per benchmark and method it prints medians over seeds of:
  trials    trials run (screens included)
  full      points that reached 81 epochs
  compute   worker-hours spent in all
  T         virtual wall hours until the last trial ended
  use       slot use over that time
  c_final   worker-hours spent when the final setting's 81-epoch value first arrived
  regret    true (noise-free, 81 epochs) loss of the final setting minus the grid's best
  r@x%      true regret of the best 81-epoch result observed once x% of the *unscreened*
            run's compute (same seed) is spent
and the ratios screened / axis of the medians of compute and c_final.

    python scripts/bench_axis_mf.py             # 2 benchmarks x 10 seeds
    python scripts/bench_axis_mf.py --seeds 3
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time

import autotune as at
from autotune.analysis import compute_at, incumbents
from autotune.bench import learning_curves
from autotune.driver import Driver
from autotune.study import parse_study

WORKERS = 50
EPOCHS = 81
FIDELITY = {"min": 1, "max": EPOCHS, "eta": 3}
MARKS = (0.1, 0.25, 0.5, 1.0)
SPACES = {
    "lc-mlp": {"lr": {"low": 1.0e-4, "high": 1.0, "log": True, "steps": 13},
               "width": {"low": 16, "high": 1024, "log": True, "int": True, "steps": 7},
               "dropout": {"low": 0.0, "high": 0.8, "steps": 9},
               "optimizer": {"values": ["adam", "rmsprop", "sgd"]},
               "batch": {"values": [32, 64, 128, 256]}},
    "lc-branin": {"x1": {"low": -5.0, "high": 10.0, "steps": 31},
                  "x2": {"low": 0.0, "high": 15.0, "steps": 31}},
}


METHODS = {"axis": {}, "axis+screen": {"fidelity": FIDELITY},
           "+screen-all": {"fidelity": FIDELITY, "screen_predicted": True}}


def study(bench: str, method: str, seed: int) -> object:
    search = {"algorithm": "axis", "seed": seed, **METHODS[method]}
    return parse_study({
        "name": f"{bench}-{method.replace('+', '_')}-{seed}",
        "objective": {"entry": learning_curves.ENTRIES[bench], "metric": "loss", "mode": "min"},
        # without a fidelity every trial trains the fixed epochs; with one, its max is the full length
        "space": {**SPACES[bench], **({} if "fidelity" in search else {"epochs": EPOCHS})},
        "search": search,
        "executor": {"kind": "simulated", "max_concurrent": WORKERS},
    })


def grid_best(bench: str, st) -> float:
    """The least noise-free 81-epoch loss over the study's grid (by enumeration)."""
    axes = st.space.axes("bench")
    curve = learning_curves.BENCHMARKS[bench].curve
    return min(curve(st.space.point(axes, idx), EPOCHS)
               for idx in itertools.product(*(range(len(v)) for _, v in axes)))


def run_one(tmp: str, bench: str, method: str, seed: int) -> dict:
    st = study(bench, method, seed)
    directory = os.path.join(tmp, st.name)
    driver = Driver(st, directory, progress=False)
    driver.run()
    summary = driver.searcher.summary()
    df = at.load(directory).trials_dataframe()
    ended = df[df["end_s"].notna()]
    curve = learning_curves.BENCHMARKS[bench].curve
    names = [n for n in st.space.names if n != "epochs"]
    final = tuple(summary["base_index"])
    index = ended["index"].map(lambda i: tuple(i) if isinstance(i, list) else ())
    full = ended["counts"]
    first = float(ended.loc[full & (index == final), "end_s"].min())
    end = float(ended["end_s"].max())
    busy = (ended["end_s"] - ended["start_s"]).sum()
    spent = compute_at(df, [first, end])
    steps = incumbents(df)
    best_true = [(c, curve(dict(zip(names, p)), EPOCHS))
                 for c, p in zip(compute_at(df, steps["end_s"]),
                                 steps[names].itertuples(index=False))]
    return {"trials": len(ended), "full": index[full].nunique(),
            "compute": spent[1] / 3600, "T": end / 3600, "use": busy / (WORKERS * end),
            "c_final": spent[0] / 3600, "true_final": curve(summary["base"], EPOCHS),
            "incumbents": best_true}


def true_at(incumbents: list[tuple[float, float]], compute_s: float) -> float:
    """True loss of the observed incumbent once ``compute_s`` is spent (inf: none yet)."""
    value = float("inf")
    for spent, true in incumbents:
        if spent > compute_s:
            break
        value = true
    return value


def med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--benchmarks", default="lc-mlp,lc-branin")
    args = ap.parse_args(argv)
    began = time.time()
    marks = "".join(f"{f'r@{m:.0%}':>9}" for m in MARKS)
    header = (f"{'benchmark':<11}{'method':<13}{'trials':>7}{'full':>6}{'compute h':>10}"
              f"{'T h':>7}{'use':>7}{'c_final h':>10}{'regret':>8}{marks}")
    where = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    print(f"{WORKERS} workers, {EPOCHS} epochs full length, screening {FIDELITY}, seeds "
          f"0..{args.seeds - 1}, medians over seeds")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bench_axis_mf_", dir=where) as tmp:
        for bench in args.benchmarks.split(","):
            best = grid_best(bench, study(bench, "axis", 0))
            rows = {m: [run_one(tmp, bench, m, s) for s in range(args.seeds)] for m in METHODS}
            for method, runs in rows.items():
                for r, ref in zip(runs, rows["axis"]):
                    r["regret"] = r["true_final"] - best
                    for m in MARKS:
                        r[m] = true_at(r["incumbents"], m * ref["compute"] * 3600) - best
                cells = "".join(f"{med(runs, m):>9.4f}" for m in MARKS)
                print(f"{bench:<11}{method:<13}{med(runs, 'trials'):>7.0f}{med(runs, 'full'):>6.0f}"
                      f"{med(runs, 'compute'):>10.0f}{med(runs, 'T'):>7.1f}{med(runs, 'use'):>7.1%}"
                      f"{med(runs, 'c_final'):>10.0f}{med(runs, 'regret'):>8.4f}{cells}")
            b = rows["axis"]
            for method in list(METHODS)[1:]:
                a = rows[method]
                better = sum(x["regret"] < y["regret"] - 1e-12 for x, y in zip(a, b))
                worse = sum(x["regret"] > y["regret"] + 1e-12 for x, y in zip(a, b))
                print(f"{'':<11}{method:<13}/ axis: compute "
                      f"{med(a, 'compute') / med(b, 'compute'):.2f}, c_final "
                      f"{med(a, 'c_final') / med(b, 'c_final'):.2f}; final setting better in "
                      f"{better}, worse in {worse} of {args.seeds} seeds")
    print(f"({time.time() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
