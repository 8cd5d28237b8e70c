"""Bench: under noise, is a method's reported setting worse for what it measured or for what
it chose? The search benches judge the TRUE regret of the reported setting after 363
evaluations; this splits it in two, per landscape (median over seeds):

  reported   the true regret of the setting the method reports (as bench_search.py judges it)
  measured   the lowest true regret among every point it measured by then: what a perfect
             choice among its own measurements would have reported (the search's share)
  chosen     seeds whose reported setting is that best measured point

A reported regret close to ``measured`` is a search that never measured a better setting
(more re-measuring will not help); a gap is the choice among noisy measurements. Same
protocol, landscapes (the held-out ones too), noise and seeds as bench_search.py, run
afresh (no cache):

    python scripts/bench_noisy_choice.py --landscapes schaffer,salomon,discus --noise 0.1
"""
from __future__ import annotations

import argparse
import heapq
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_heldout  # noqa: E402
import bench_search as bs  # noqa: E402

from autotune.bench import landscapes  # noqa: E402
from autotune.searchers.base import Result  # noqa: E402


def split(land: str, noise: float, method: str, seed: int, horizon: int) -> tuple[float, float]:
    """(reported regret, best measured regret) of one run after ``horizon`` results."""
    job = bs.Job(land, bs.DEFAULT_START.get(land, "centre"), noise, method, seed, 1000,
                 (horizon,))
    searcher = bs.make(job)
    true_min, _ = landscapes.grid_minimum(land, seed)
    sd = noise * landscapes.spread(land, seed)
    heap: list = []
    sums: dict[tuple, list[float]] = {}
    clock, next_id, told = 0.0, 0, 0
    while told < horizon:
        free = bs.WORKERS - len(heap)
        if free > 0 and not searcher.finished:
            searcher.next_trial = next_id
            for s in searcher.ask(free):  # the costs and the noise draws bench_search's
                cost = 3600.0 * float(np.random.default_rng([seed, s.trial, 29])
                                      .uniform(0.8, 1.2))
                heapq.heappush(heap, (clock + cost, s.trial, s))
                next_id = s.trial + 1
        if not heap:
            break
        clock = heap[0][0]
        while heap and heap[0][0] <= clock and told < horizon:
            _, trial, s = heapq.heappop(heap)
            index = landscapes.index_of(s.params)
            measured = landscapes.true_value(land, seed, index)
            measured += sd * float(np.random.default_rng([seed, trial, 17]).normal())
            acc = sums.setdefault(index, [0.0, 0])
            acc[0] += measured
            acc[1] += 1
            searcher.tell(Result(trial, "ok", measured))
            told += 1
    base = searcher.summary().get("base")
    index = (landscapes.index_of(base) if base is not None
             else min(sums, key=lambda k: sums[k][0] / sums[k][1]))
    reported = landscapes.true_value(land, seed, index) - true_min
    best = min(landscapes.true_value(land, seed, k) for k in sums) - true_min
    return reported, best


def main() -> None:
    bench_heldout.register()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--landscapes", required=True, help="comma-separated")
    ap.add_argument("--noise", default="0.02,0.1", help="fractions of the IQR")
    ap.add_argument("--methods", default="axis")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--horizon", type=int, default=363)
    args = ap.parse_args()
    lands = [t for t in args.landscapes.split(",") if t]
    unknown = [land for land in lands if land not in landscapes.OPTIMA]
    try:
        noises = [float(t) for t in args.noise.split(",") if t.strip()]
    except ValueError:
        noises = []
    if unknown or not lands or not noises or args.seeds < 1 or args.horizon < 1:
        what = (f"unknown landscape {unknown[0]!r}" if unknown else "--landscapes: empty"
                if not lands else f"--noise: expected numbers, got {args.noise!r}"
                if not noises else "--seeds and --horizon: expected positive integers")
        print(f"bench_noisy_choice: {what}", file=sys.stderr)
        sys.exit(2)
    print(f"{'landscape':<22}{'noise':>6}  {'method':<14}{'reported':>10}{'measured':>10}"
          f"{'chosen':>8}")
    for noise in noises:
        for land in lands:
            for method in args.methods.split(","):
                runs = [split(land, noise, method, s, args.horizon) for s in range(args.seeds)]
                chosen = sum(abs(r - b) < 1e-12 for r, b in runs)
                print(f"{land:<22}{noise:>6g}  {method:<14}"
                      f"{statistics.median(r for r, _ in runs):>10.4f}"
                      f"{statistics.median(b for _, b in runs):>10.4f}"
                      f"{chosen:>5}/{len(runs)}")


if __name__ == "__main__":
    main()
