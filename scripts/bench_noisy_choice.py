"""Bench: under noise, is a method's reported setting worse for what it measured or for what
it chose? The search benches judge the TRUE regret of the reported setting after 363
evaluations; this splits it in two, per landscape (median over seeds):

  reported   the true regret of the setting the method reports (as bench_search.py judges it)
  measured   the lowest true regret among every point it measured by then: what a perfect
             choice among its own measurements would have reported (the search's share)
  chosen     seeds whose reported setting is that best measured point

A reported regret close to ``measured`` is a search that never measured a better setting
(more re-measuring will not help); a gap is the choice among noisy measurements. Both come
from bench_search.py's simulation (its protocol, landscapes, the held-out ones too, noise
and seeds), run afresh (no cache):

    python scripts/bench_noisy_choice.py --landscapes schaffer,salomon,discus --noise 0.1
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_heldout  # noqa: E402
import bench_search as bs  # noqa: E402

from autotune.bench import landscapes  # noqa: E402


def split(land: str, noise: float, method: str, seed: int, horizon: int) -> tuple[float, float]:
    """(reported regret, best measured regret) of one run after ``horizon`` results, as
    bench_search's simulation measures both."""
    job = bs.Job(land, bs.DEFAULT_START.get(land, "centre"), noise, method, seed, 1000,
                 (horizon,))
    out = bs.simulate(job)
    return out["regret"][str(horizon)], out["measured"][str(horizon)]


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
