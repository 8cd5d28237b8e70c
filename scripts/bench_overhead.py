"""Driver overhead: no-op trials through the full driver, history on disk, and replay time.

    python scripts/bench_overhead.py [--trials 20000] [--repeats 3]

Prints trials per second for the inline executor (batches of --slots trials per journal
append) and for the simulated executor with 50 workers (one append per finished trial, the
worst case), the time to replay a 100,000-event history into the state and a fresh searcher,
and, when optuna is installed, Optuna's JournalFileBackend with RandomSampler on the same
number of trials in the same run, with the ratio. Medians over --repeats runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from autotune.driver import Driver
from autotune.restore import restore
from autotune.history import History
from autotune.journal import Journal
from autotune.study import parse_study


HERE = os.path.dirname(os.path.abspath(__file__))  # noop is imported from here, as bench_overhead


def study(n: int, executor: str, slots: int) -> dict:
    return {"name": "overhead",
            "objective": {"entry": "bench_overhead:noop", "metric": "loss"},
            "space": {"x": {"low": 0.0, "high": 1.0}, "y": {"values": [1, 2, 3, 4]}},
            "search": {"algorithm": "random", "seed": 0, "max_trials": n},
            "executor": {"kind": executor, "max_concurrent": slots}}


def noop(params: dict, ctx) -> dict:
    return {"loss": params["x"], "cost_s": 1.0}


def driver_rate(n: int, executor: str, slots: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        s = parse_study(study(n, executor, slots), base_dir=HERE)
        began = time.perf_counter()
        Driver(s, os.path.join(tmp, "d"), progress=False).run()
        return n / (time.perf_counter() - began)


def replay_time(events: int) -> tuple[float, float, int]:
    """Seconds to load a history of about ``events`` events into the state, and then to
    replay it into a fresh searcher: together, what a resuming driver does first."""
    with tempfile.TemporaryDirectory() as tmp:
        s = parse_study(study(events // 2, "inline", 64), base_dir=HERE)  # a submit and an end per trial
        d = os.path.join(tmp, "d")
        Driver(s, d, progress=False).run()
        journal = Journal(os.path.join(d, "history.jsonl"))
        began = time.perf_counter()
        h = History.load(journal)
        loaded = time.perf_counter()
        restore(s.make_searcher(), h)
        return loaded - began, time.perf_counter() - loaded, h.events


def optuna_rate(n: int) -> float | None:
    try:
        import optuna
        from optuna.storages import JournalStorage
        try:
            from optuna.storages.journal import JournalFileBackend
        except ImportError:  # older optuna
            from optuna.storages import JournalFileStorage as JournalFileBackend
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        storage = JournalStorage(JournalFileBackend(os.path.join(tmp, "journal.log")))
        st = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
        began = time.perf_counter()
        st.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_categorical("y", [1, 2, 3, 4]) * 0,
                    n_trials=n)
        return n / (time.perf_counter() - began)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20000)
    ap.add_argument("--optuna-trials", type=int, default=2000)
    ap.add_argument("--slots", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args()
    inline = [driver_rate(args.trials, "inline", args.slots) for _ in range(args.repeats)]
    sim = [driver_rate(args.trials // 4, "simulated", 50) for _ in range(args.repeats)]
    replays = [replay_time(args.events) for _ in range(args.repeats)]
    print(f"driver, inline executor, {args.slots} slots, {args.trials} no-op trials: "
          f"median {statistics.median(inline):,.0f} trials/s  (runs: "
          + ", ".join(f"{r:,.0f}" for r in inline) + ")")
    print(f"driver, simulated executor, 50 workers, {args.trials // 4} no-op trials: "
          f"median {statistics.median(sim):,.0f} trials/s  (runs: "
          + ", ".join(f"{r:,.0f}" for r in sim) + ")")
    load = statistics.median(r[0] for r in replays)
    search = statistics.median(r[1] for r in replays)
    total = statistics.median(r[0] + r[1] for r in replays)
    print(f"replay of a {replays[0][2]:,}-event history: load into the state median {load:.3f} s, "
          f"searcher replay {search:.3f} s, both {total:.3f} s")
    peer = [optuna_rate(args.optuna_trials) for _ in range(args.repeats)]
    if peer[0] is None:
        print("optuna not installed: peer row skipped (pip install optuna)")
        return
    p = statistics.median(peer)
    print(f"optuna JournalFileBackend + RandomSampler, {args.optuna_trials} trials: "
          f"median {p:,.0f} trials/s")
    print(f"ratio autotune inline / optuna: {statistics.median(inline) / p:.1f}x; "
          f"simulated / optuna: {statistics.median(sim) / p:.1f}x")


if __name__ == "__main__":
    main()
