"""Bench: the axis search's own time per decision at many parameters (8 axes x 10 values).

The driver's time per trial is the searcher's ask and tell plus the journal; this measures
the first part alone, in-process, with 50 asynchronous workers (0.8-1.2 h trials) on a
separable bowl with ripples, and prints the mean per trial over each window of 500 trials
so that growth with the history shows. Target (issue 16): under 20 ms a trial, flat.

    python scripts/bench_axis_cost.py                 # 3,000 trials
    python scripts/bench_axis_cost.py --trials 5000 --axes 8 --values 10
"""
from __future__ import annotations

import argparse
import heapq
import time

import numpy as np

from autotune.searchers import SEARCHERS, Result, SearchSettings
from autotune.space import parse_space


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3000)
    ap.add_argument("--axes", type=int, default=8)
    ap.add_argument("--values", type=int, default=10)
    ap.add_argument("--window", type=int, default=500)
    args = ap.parse_args()
    d, n = args.axes, args.values
    space = parse_space({f"x{i}": {"values": list(range(n))} for i in range(d)})
    centre = np.random.default_rng(0).integers(0, n, size=d)
    weights = np.linspace(1, 3, d)

    def value(params: dict) -> float:
        x = np.array([params[f"x{i}"] for i in range(d)])
        return float(np.sum((x - centre) ** 2 * weights) + np.sum(np.cos(x)))

    searcher = SEARCHERS["axis"](SearchSettings(space, 0, 50, args.trials, options={}))
    rng = np.random.default_rng(1)
    heap: list = []
    clock, seq, told, spent, mark = 0.0, 0, 0, 0.0, 0.0
    while told < args.trials:
        free = 50 - len(heap)
        if free > 0 and not searcher.finished:
            searcher.next_trial = seq
            t0 = time.perf_counter()
            got = searcher.ask(free)
            spent += time.perf_counter() - t0
            for s in got:
                heapq.heappush(heap, (clock + rng.uniform(0.8, 1.2), seq, s))
                seq += 1
        if not heap:
            break
        clock = heap[0][0]
        while heap and heap[0][0] <= clock:
            _, _, s = heapq.heappop(heap)
            t0 = time.perf_counter()
            searcher.tell(Result(s.trial, "ok", value(s.params)))
            spent += time.perf_counter() - t0
            told += 1
            if told % args.window == 0:
                print(f"trials {told - args.window + 1:>5}-{told:<5} "
                      f"{1000 * (spent - mark) / args.window:6.1f} ms a trial "
                      f"(all so far {1000 * spent / told:.1f})", flush=True)
                mark = spent
    print(f"{d} axes x {n} values, {told} trials: {1000 * spent / max(told, 1):.1f} ms a trial "
          f"of searcher time; restarts {searcher.summary().get('restarts')}")


if __name__ == "__main__":
    main()
