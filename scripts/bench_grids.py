"""Bench: search methods on grids other than the study's (fewer or more parameters, finer axes).

``bench_search.py`` and ``bench_heldout.py`` judge every method on the AT study's
10 x 11 x 11 x 11 grid. A user's study has its own: two parameters of 30 values, six of six,
eight of five. This runs the same asynchronous protocol (50 workers, trials of 0.8-1.2 h,
noise drawn per trial as a fraction of the landscape's interquartile range) on a grid of the
shape asked for, with axes named ``a0, a1, ...`` whose values are the indices::

    python scripts/bench_grids.py --shape 30x30 --methods axis,optuna-tpe --noise 0,0.1
    python scripts/bench_grids.py --shape 6x6x6x6x6x6 --seeds 6 --cap 600

Clean runs: virtual hours to the exact grid minimum (median and mean over seeds, and how
many seeds reached it within ``--cap`` evaluations, n.r. where half or more did not; the
search is given ``--cap`` as its budget). Noisy runs: the TRUE regret of the setting the method reports after ``--horizon``
evaluations (its budget). Nothing is cached; each run is seeded, so a rerun prints the same.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from multiprocessing import Pool
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_heldout  # noqa: E402
import bench_search  # noqa: E402

from autotune.bench import landscapes  # noqa: E402
from autotune.errors import StudyError  # noqa: E402

#: landscapes defined for any number of parameters, of the kinds the study grid's benches
#: found hardest: separable and rotated multimodal, rings, curved and ill-conditioned valleys
LANDSCAPES = ("styblinski-tang", "rastrigin", "ellipsoid", "banana", "ackley", "levy-rotated",
              "schaffer", "discus")
MOST_POINTS = 2_000_000   # the landscape is tabulated over the whole grid


def parse_shape(text: str) -> tuple[int, ...]:
    """``30x30`` -> (30, 30): at least one axis, each of 2 values or more."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise StudyError(f"--shape: expected axis sizes joined by x (such as 30x30), "
                         f"got {text!r}") from None
    if not shape or min(shape) < 2:
        raise StudyError(f"--shape: every axis needs 2 values or more, got {text!r}")
    if math.prod(shape) > MOST_POINTS:
        raise StudyError(f"--shape: {text} has {math.prod(shape):,} points; at most "
                         f"{MOST_POINTS:,} (the landscape is tabulated over the whole grid)")
    return shape


def run(job: bench_search.Job) -> dict[str, Any]:
    """One run, simulated as bench_search.py simulates its own (the landscapes registered in
    this process too, however it was started)."""
    bench_heldout.register()
    return bench_search.simulate(job)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="30x30", help="axis sizes joined by x (default 30x30)")
    ap.add_argument("--landscapes", default=",".join(LANDSCAPES),
                    help=f"comma-separated (default: {','.join(LANDSCAPES)})")
    ap.add_argument("--methods", default="axis,optuna-tpe")
    ap.add_argument("--noise", default="0,0.1",
                    help="noise sd as fractions of the IQR, comma-separated (default 0,0.1)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    ap.add_argument("--cap", type=int, default=1000,
                    help="clean runs: evaluations before giving up on the minimum (default 1000)")
    ap.add_argument("--horizon", type=int, default=363,
                    help="noisy runs: evaluations after which the reported setting is judged "
                         "(default 363)")
    ap.add_argument("--procs", type=int, default=2, help="worker processes (default 2)")
    return ap.parse_args(argv)


def plan(args: argparse.Namespace) -> tuple[tuple[int, ...], list[str], list[str], list[float]]:
    shape = parse_shape(args.shape)
    bench_heldout.register()
    lands = bench_search.parse_list(args.landscapes, sorted(landscapes.FUNCTIONS), "landscapes")
    for fn in lands:
        try:
            landscapes.spread(fn, 0, shape)
        except Exception as exc:  # noqa: BLE001 - a landscape made for the study's 4 axes
            raise StudyError(f"--landscapes: {fn} is not defined on a {args.shape} grid "
                             f"({type(exc).__name__}: {exc})") from None
    methods = bench_search.parse_methods(args.methods)
    try:
        noises = [float(t) for t in args.noise.split(",") if t.strip()]
    except ValueError:
        raise StudyError(f"--noise: expected numbers, got {args.noise!r}") from None
    if not noises or any(not math.isfinite(n) or n < 0 for n in noises):
        raise StudyError(f"--noise: expected numbers >= 0, got {args.noise!r}")
    for flag, value in (("seeds", args.seeds), ("cap", args.cap), ("horizon", args.horizon),
                        ("procs", args.procs)):
        if value < 1:
            raise StudyError(f"--{flag}: expected a positive integer, got {value}")
    return shape, lands, methods, noises


def table(out: list[dict], lands: list[str], methods: list[str], noise: float,
          horizon: int) -> list[str]:
    rows = []
    for fn in lands:
        cells = []
        for m in methods:
            runs = [o for o in out
                    if o["landscape"] == fn and o["method"] == m and o["noise"] == noise]
            if noise == 0:
                hours = [o["t_min_h"] if o["reached"] else math.inf for o in runs]
                done = [h for h in hours if math.isfinite(h)]
                mean = f"{statistics.mean(hours):.2f}" if len(done) == len(hours) else "-"
                median = statistics.median(hours)
                shown = f"{median:6.2f}h" if math.isfinite(median) else "   n.r."
                cells.append(f"{shown} {mean:>6} {len(done)}/{len(runs)}")
            else:
                cells.append(f"{statistics.median(o['regret'][str(horizon)] for o in runs):.4f}")
        rows.append(f"{fn:<18}" + "".join(f"{c:>{max(22, len(m) + 2)}}"
                                          for c, m in zip(cells, methods)))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        shape, lands, methods, noises = plan(args)
    except StudyError as err:
        print(f"bench_grids: {err}", file=sys.stderr)
        return 2
    jobs = [bench_search.Job(fn, "default", nz, m, seed, args.cap, (args.horizon,), shape)
            for nz in noises for fn in lands for m in methods for seed in range(args.seeds)]
    began = time.monotonic()
    if args.procs > 1:
        with Pool(args.procs) as pool:
            out = pool.map(run, jobs, chunksize=1)
    else:
        out = [run(job) for job in jobs]
    print(f"grid {args.shape}, {bench_search.WORKERS} workers, trials 0.8-1.2 h, seeds 0..{args.seeds - 1}; "
          f"{len(jobs)} runs took {time.monotonic() - began:.0f} s")
    header = f"{'landscape':<18}" + "".join(f"{m:>{max(22, len(m) + 2)}}" for m in methods)
    for nz in noises:
        print()
        if nz == 0:
            print(f"clean: virtual hours to the exact grid minimum (median, mean where every "
                  f"seed reached it, seeds reached within {args.cap} evaluations)")
        else:
            print(f"noise {nz:g} x IQR: TRUE regret of the reported setting after "
                  f"{args.horizon} evaluations (median of {args.seeds} seeds)")
        print(header)
        print("\n".join(table(out, lands, methods, nz, args.horizon)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
