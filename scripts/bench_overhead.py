"""Driver overhead: no-op trials through the full driver, history on disk, and replay time.

    python scripts/bench_overhead.py [--trials 20000] [--repeats 3]
    python scripts/bench_overhead.py --only-resume [--resume-sizes 1000,10000,50000]
        [--resume-algorithms random,asha,axis] [--axis-max-trials 10000]

Prints trials per second for the inline executor (batches of --slots trials per journal
append) and for the simulated executor with 50 workers (one append per finished trial, the
worst case), the time to replay a 100,000-event history into the state and a fresh searcher,
and, when optuna is installed, Optuna's JournalFileBackend with RandomSampler on the same
number of trials in the same run, with the ratio. Medians over --repeats runs.

Then resume time against history size: for each searcher and size, a finished history of
that many trials (no-op trials, inline executor, written in memory where /dev/shm exists),
and the time a resuming driver spends before it can ask again: reading the journal into the
state (History.load: checksums, parsing, validation) and restoring a fresh searcher from it
(restore: adopt every recorded suggestion, tell every result). Target: under 2 s at 10,000
trials for every searcher, growing linearly (the last column, seconds per 1,000 trials,
should stay flat). An axis search may end its grid before the size asked for; the trials
column says how many it ran. ``--axis-max-trials`` skips axis sizes above it when writing
those histories is too slow.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import zlib

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


def bumpy(params: dict, ctx) -> dict:
    """A landscape with no easy way down, so that an axis search keeps searching."""
    text = ",".join(f"{k}={params[k]}" for k in sorted(params))
    if ctx.epochs is not None:   # an ASHA rung: an (empty) checkpoint for its promotion
        open(ctx.checkpoint_path, "wb").close()
    return {"loss": (zlib.crc32(text.encode()) % 10_000) / 10_000, "cost_s": 1.0}


RESUME_SEARCH = {"random": {}, "asha": {"fidelity": {"min": 1, "max": 27, "eta": 3}},
                 "axis": {}}


def resume_study(algorithm: str, n: int) -> dict:
    grid = {f"p{i}": {"values": list(range(24))} for i in range(6)}
    return {"name": f"resume-{algorithm}",
            "objective": {"entry": "bench_overhead:bumpy", "metric": "loss"},
            "space": grid,
            "search": {"algorithm": algorithm, "seed": 0, "max_trials": n,
                       **RESUME_SEARCH[algorithm]},
            "executor": {"kind": "inline", "max_concurrent": 64}}


def resume_time(algorithm: str, n: int, repeats: int) -> tuple[int, int, float, float, float]:
    """(trials, events, MB, load s, restore s), medians over ``repeats`` reads of one history."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        s = parse_study(resume_study(algorithm, n), base_dir=HERE)
        d = os.path.join(tmp, "d")
        Driver(s, d, progress=False).run()
        path = os.path.join(d, "history.jsonl")
        loads, restores = [], []
        for _ in range(repeats):
            began = time.perf_counter()
            h = History.load(Journal(path))
            loaded = time.perf_counter()
            restore(s.make_searcher(), h)
            loads.append(loaded - began)
            restores.append(time.perf_counter() - loaded)
        return (len(h.trials), h.events, os.path.getsize(path) / 1e6,
                statistics.median(loads), statistics.median(restores))


def resume_table(sizes: list[int], algorithms: list[str], axis_max: int | None,
                 repeats: int) -> None:
    print(f"{'searcher':8} {'trials':>7} {'events':>8} {'MB':>6} {'load s':>7} "
          f"{'restore s':>9} {'resume s':>8} {'s/1k trials':>11}")
    for algorithm in algorithms:
        for n in sizes:
            if algorithm == "axis" and axis_max is not None and n > axis_max:
                print(f"{algorithm:8} {n:>7} skipped (--axis-max-trials {axis_max})")
                continue
            trials, events, mb, load, rest = resume_time(algorithm, n, repeats)
            total = load + rest
            # the target, 2 s at 10,000 trials, growing linearly: 0.2 s per 1,000 trials
            flag = "  (over the target: 2 s per 10,000 trials)" if total > 2.0 * max(
                trials, 10_000) / 10_000 else ""
            print(f"{algorithm:8} {trials:>7} {events:>8} {mb:>6.1f} {load:>7.3f} {rest:>9.3f} "
                  f"{total:>8.3f} {1000 * total / max(trials, 1):>11.4f}{flag}", flush=True)


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
    ap.add_argument("--only-resume", action="store_true", help="only the resume-time table")
    ap.add_argument("--resume-sizes", default="1000,10000,50000")
    ap.add_argument("--resume-algorithms", default="random,asha,axis")
    ap.add_argument("--axis-max-trials", type=int, help="skip larger axis histories")
    args = ap.parse_args()
    sizes = [int(x) for x in args.resume_sizes.split(",") if x]
    algorithms = [a for a in args.resume_algorithms.split(",") if a]
    if args.only_resume:
        resume_table(sizes, algorithms, args.axis_max_trials, args.repeats)
        return
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
        resume_table(sizes, algorithms, args.axis_max_trials, args.repeats)
        return
    p = statistics.median(peer)
    print(f"optuna JournalFileBackend + RandomSampler, {args.optuna_trials} trials: "
          f"median {p:,.0f} trials/s")
    print(f"ratio autotune inline / optuna: {statistics.median(inline) / p:.1f}x; "
          f"simulated / optuna: {statistics.median(sim) / p:.1f}x")
    resume_table(sizes, algorithms, args.axis_max_trials, args.repeats)


if __name__ == "__main__":
    main()
