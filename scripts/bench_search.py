"""Bench: every search method on analytic landscapes over the AT study's grid, at 50 workers.

The landscapes are standard test functions (autotune/bench/landscapes.py: Styblinski-Tang,
Ackley, Levy, Rosenbrock, Griewank, Schwefel, Rastrigin, terraces with ties, an
ill-conditioned rotated bowl, a diagonal ridge, optima at a corner and on a face) on the
10 x 11 x 11 x 11 grid, each with its optimum on a grid point that the seed moves. Each
landscape is searched from one start (centre, the corner opposite the optimum, or the
study's conventional setting lr 1e-4, w2 1.0 (2.0's nearest grid value), w3 1e-3, w4 1.0;
``--starts all`` crosses every landscape with all three); only the methods that take a
``start:`` (the axis family) use it.

The searchers are driven in-process by a small asynchronous event loop, the driver's
protocol without its files: 50 slots; whenever slots are free the searcher is asked for that
many (``next_trial`` set first); each trial costs 0.8-1.2 h of virtual time (drawn per trial);
results are told in order of completion. Noise is Gaussian with sd = 0, 2% or 10% of the
landscape's interquartile range over the grid, drawn per (seed, trial).

Per landscape and method, medians over seeds of:
  clean   virtual hours and evaluations until the exact grid minimum is first measured
          (its trial's end; "n.r." when fewer than half the seeds reach it within --cap)
  noisy   the TRUE regret (value minus the grid minimum, on the 0..1 scale) of the setting
          the method reports after 363 and after 1,000 evaluations: the searcher's
          summary()['base'] where it has one, else its best measured point by mean
  use     slot use: busy worker-hours / (50 x hours). A searcher that stops by itself is
          counted until its last trial ends (the drain included); one the bench stops (the
          peers: at the minimum, clean, or at the last horizon, noisy) until that moment.
Ratios are against the best other method (the "best peer": every method but axis), and the
issue's target checks follow each table.

Per-run work is capped: a clean run stops when the minimum is measured (a method that ends
by itself runs on to its end, for its slot use) or at --cap evaluations (default 1000); a
noisy run stops at the last of --horizons (default 1,000 evaluations). Optuna's TPE costs
10-20 ms per ask at 1,000 trials and its cost grows with the history, so its runs dominate
the CPU time: a 1,000-evaluation TPE run takes 8-15 CPU seconds, one of 363 about 2
(``--horizons 363`` cuts a noisy run's work about sixfold; see docs/benchmarks.md).

Each run's figures are cached as JSON under bench_results/search/ (git-ignored), keyed by the
run and a fingerprint of the method's code and the landscapes, so tables can be re-printed
(``--cached-only``) and an edit to one searcher reruns only that searcher's runs.

    python scripts/bench_search.py --quick            # ~2 min on 2 cores
    python scripts/bench_search.py                    # 12 landscapes x 3 noise x 10 seeds
    python scripts/bench_search.py --landscapes ackley,schwefel --methods axis,optuna-tpe \\
        --seeds 5 --noise 0,0.1

A method may carry search options after a colon, joined by ``+``, to set a variant beside
the default (``axis:explore=0``, ``axis:explore=0+parzen=false``); the variant counts as a
peer of ``axis`` in the tables.
"""
from __future__ import annotations

import argparse
import hashlib
import heapq
import inspect
import json
import math
import multiprocessing
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable

# one BLAS thread a process (before numpy loads): the searchers solve small systems, and with
# two processes on two cores OpenBLAS's idle threads spun against each other (one run on
# 3 x 3 x 3 x 40: 43 s of CPU against 6 s)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from autotune.bench import landscapes
from autotune.errors import StudyError
from autotune.searchers import SEARCHERS, Result, Searcher, SearchSettings
from autotune.space import parse_space
from autotune.yamlfile import parse_yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKERS = 50
HORIZONS = (363, 1000)
METHODS = ["axis", "axis-radial", "axis-s2018", "random", "asha-bo", "optuna-tpe",
           "optuna-cmaes"]
NOISES = (0.0, 0.02, 0.10)
STARTS = ("centre", "corner", "conventional")
#: each landscape's start in the default run: the three kinds spread over the landscapes
DEFAULT_START = {
    "styblinski-tang": "centre", "ackley": "corner", "levy": "conventional",
    "banana": "centre", "griewank": "conventional", "schwefel": "centre",
    "rastrigin": "corner", "plateaus": "conventional", "ellipsoid": "centre",
    "ridge": "corner", "corner": "centre", "edge": "conventional",
}
CONVENTIONAL = {"lr": 1e-4, "w2": 2.0, "w3": 1e-3, "w4": 1.0}
CACHE = os.path.join(REPO, "bench_results", "search")   # --cache DIR to use another
SIM_VERSION = 1           # bump when simulate() changes what it measures
QUICK = {"landscapes": "styblinski-tang,ackley,plateaus", "seeds": 2, "noise": "0,0.1"}


@dataclass(frozen=True)
class Job:
    landscape: str
    start: str
    noise: float
    method: str
    seed: int
    cap: int
    horizons: tuple[int, ...] = HORIZONS
    #: another grid than the study's (bench_grids.py): axes a0, a1, ... of these sizes,
    #: their values the indices, the search started where it starts by default
    shape: tuple[int, ...] | None = None

    def key(self) -> str:
        grid = f"-g{'x'.join(map(str, self.shape))}" if self.shape else ""
        return (f"{self.landscape}-{self.start}-n{self.noise:g}-{self.method}-s{self.seed}"
                f"-c{self.cap}-h{'-'.join(map(str, self.horizons))}{grid}")

    @property
    def grid(self) -> tuple[int, ...]:
        return self.shape or landscapes.SHAPE

    def index(self, params: dict) -> tuple[int, ...]:
        """The grid index of a trial's parameters."""
        if self.shape is None:
            return landscapes.index_of(params)
        return tuple(int(params[f"a{i}"]) for i in range(len(self.shape)))


# ---- the problem ------------------------------------------------------------------------
def start_index(start: str, landscape: str, seed: int) -> tuple[int, ...]:
    """centre: len//2 per axis; corner: the one opposite the optimum; conventional: the
    study's setting, each value moved to its nearest grid value (in log terms)."""
    shape = landscapes.SHAPE
    if start == "centre":
        return tuple(n // 2 for n in shape)
    if start == "corner":
        opt = landscapes.optimum(landscape, seed)
        return tuple(0 if 2 * o >= n - 1 else n - 1 for o, n in zip(opt, shape))
    if start == "conventional":
        out = []
        for name, values in landscapes.STUDY_AXES:
            target = math.log(CONVENTIONAL[name])
            out.append(min((i for i, v in enumerate(values) if v > 0),
                           key=lambda i: abs(math.log(values[i]) - target)))
        return tuple(out)
    raise ValueError(f"unknown start {start!r}")


def applies(method: str) -> bool:
    """asha-bo needs a fidelity: the landscapes have none, so it sits out."""
    return "fidelity" not in needs(method)


def needs(method: str) -> set[str]:
    return {"fidelity"} if method in ("asha-bo", "asha", "hyperband") else set()


def method_spec(method: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value+key=value`` -> (name, options); values read as a study file's are
    (YAML 1.2 scalars). The name alone has no options."""
    name, _, rest = method.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split("+")):
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise StudyError(f"--methods: {method!r}: expected name:key=value(+key=value), "
                             f"got {item!r}")
        options[key] = parse_yaml(text, f"--methods: {method!r}: {key}")
    return name, options


def make(job: Job) -> Searcher:
    name, variant = method_spec(job.method)
    cls = SEARCHERS[name]
    if job.shape is None:
        space = parse_space(landscapes.space(job.landscape, instance=job.seed))
    else:
        space = parse_space({f"a{i}": {"values": list(range(n))} for i, n in enumerate(job.shape)})
    options: dict[str, Any] = {}
    if "start" in cls.options and job.shape is None:
        index = start_index(job.start, job.landscape, job.seed)
        options["start"] = {name: values[i] for (name, values), i in
                            zip(landscapes.STUDY_AXES, index)}
    # the budget a study would give (max_trials): what the run may spend, as for every method
    budget = job.cap if job.noise == 0 else max(job.horizons)
    return cls(SearchSettings(space, job.seed, WORKERS, budget, options={**options, **variant}))


def finishes_by_itself(searcher: Searcher) -> bool:
    return type(searcher).finished is not Searcher.finished


# ---- one run ------------------------------------------------------------------------------
def simulate(job: Job) -> dict[str, Any]:
    """One method on one landscape and seed, through the asynchronous protocol."""
    began = time.process_time()
    searcher = make(job)
    true_min, _ = landscapes.grid_minimum(job.landscape, job.seed, job.grid)
    sd = job.noise * landscapes.spread(job.landscape, job.seed, job.grid)
    clean = job.noise == 0
    self_ending = finishes_by_itself(searcher)
    heap: list[tuple[float, int, Any]] = []
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    sums: dict[tuple, list[float]] = {}
    clock, next_id, told = 0.0, 0, 0
    reached_at: tuple[float, int] | None = None
    regret: dict[int, float] = {}
    measured: dict[int, float] = {}     # the best true value among the points measured
    best_seen = math.inf
    stopped_by_bench = False
    limit = job.cap if clean else max(job.horizons)

    def truth(index: tuple) -> float:
        return landscapes.true_value(job.landscape, job.seed, index, job.grid)

    def reported() -> float:
        base = searcher.summary().get("base")
        if base is not None:
            index = job.index(base)
        elif sums:
            index = min(sums, key=lambda k: sums[k][0] / sums[k][1])
        else:
            return float("nan")
        return truth(index) - true_min

    while True:
        if not searcher.finished:
            free = WORKERS - len(heap)
            if free > 0:
                searcher.next_trial = next_id
                for s in searcher.ask(free):
                    cost = 3600.0 * float(np.random.default_rng([job.seed, s.trial, 29])
                                          .uniform(0.8, 1.2))
                    starts[s.trial] = clock
                    heapq.heappush(heap, (clock + cost, s.trial, s))
                    next_id = s.trial + 1
        if not heap:
            break
        clock = heap[0][0]
        while heap and heap[0][0] <= clock:
            _, trial, s = heapq.heappop(heap)
            ends[trial] = clock
            index = job.index(s.params)
            value = truth(index)
            best_seen = min(best_seen, value)
            observed = value
            if sd > 0:
                observed += sd * float(np.random.default_rng([job.seed, trial, 17]).normal())
            acc = sums.setdefault(index, [0.0, 0])
            acc[0] += observed
            acc[1] += 1
            searcher.tell(Result(trial, "ok", observed))
            told += 1
            if reached_at is None and value <= true_min + 1e-12:
                reached_at = (clock, told)
            if told in job.horizons:
                regret[told] = reported()
                measured[told] = best_seen - true_min
        if clean and reached_at is not None and not self_ending:
            stopped_by_bench = True
            break
        if told >= limit:                   # what is still running is cut off here
            stopped_by_bench = bool(heap) or not searcher.finished
            break
    for h in job.horizons:                  # ended (or stopped) before the horizon
        regret.setdefault(h, reported())
        measured.setdefault(h, best_seen - true_min)
    t_end = clock if stopped_by_bench else max(ends.values(), default=0.0)
    busy = sum(min(ends.get(t, t_end), t_end) - t0 for t, t0 in starts.items() if t0 < t_end)
    return {
        **asdict(job),
        "reached": reached_at is not None,
        "t_min_h": reached_at[0] / 3600 if reached_at else None,
        "n_min": reached_at[1] if reached_at else None,
        "regret": {str(h): regret[h] for h in job.horizons},
        # what a perfect choice among its own measurements would have reported
        "measured": {str(h): measured[h] for h in job.horizons},
        "use": busy / (WORKERS * t_end) if t_end > 0 else 0.0,
        "evals": told, "hours": t_end / 3600, "finished": bool(searcher.finished),
        "cpu_s": time.process_time() - began,
    }


# ---- the cache ----------------------------------------------------------------------------
def _digest(paths: Iterable[str], base: str, extra: str = "") -> str:
    """The files' contents and their names relative to ``base`` (the same code checked out
    in another folder has the same digest)."""
    h = hashlib.sha256(extra.encode())
    for path in sorted(set(paths)):
        with open(path, "rb") as fh:
            h.update(os.path.relpath(path, base).encode() + fh.read())
    return h.hexdigest()[:12]


def fingerprint(method: str) -> str:
    """What a cached run depends on: its searcher's code (its module, its subpackage, the
    searcher base and the package modules these sources name), the landscapes, this loop."""
    module = sys.modules[SEARCHERS[method_spec(method)[0]].__module__]
    here = os.path.dirname(module.__file__)
    root = os.path.dirname(sys.modules["autotune.searchers"].__file__)
    pkg = os.path.dirname(root)
    own = [module.__file__]
    if here != root:                         # a searcher family in its own subpackage
        own += [os.path.join(here, f) for f in os.listdir(here) if f.endswith(".py")]
    text = ""
    for path in own:
        with open(path) as fh:
            text += fh.read()
    files = own + [os.path.join(root, "base.py"), os.path.join(pkg, "space.py"),
                   landscapes.__file__]
    files += [os.path.join(root, "mf_common.py")] if "mf_common" in text else []
    files += [os.path.join(pkg, f"{name}.py") for name in ("dspline", "tpe")
              if re.search(rf"\b{name}\b", text)]
    extra = f"{SIM_VERSION}|{inspect.getsource(simulate)}"
    if method.startswith("optuna"):
        import optuna
        extra += f"|optuna {optuna.__version__}"
    return _digest(files, pkg, extra)


def cache_path(job: Job, prints: dict[str, str], cache: str = CACHE) -> str:
    return os.path.join(cache, f"{job.method}-{prints[job.method]}", job.key() + ".json")


def run_job(item: tuple[Job, str]) -> dict[str, Any]:
    job, path = item
    out = simulate(job)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f".tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(out, fh)
    os.replace(tmp, path)
    return out


# ---- tables -------------------------------------------------------------------------------
def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def t_min(runs: list[dict], key: str = "t_min_h") -> float:
    """Median over seeds, a run that never reached the minimum counting as infinitely slow."""
    return med([r[key] if r["reached"] else math.inf for r in runs])


def fmt_time(runs: list[dict]) -> str:
    t = t_min(runs)
    if math.isinf(t):
        return f"n.r.{sum(r['reached'] for r in runs)}/{len(runs)}"
    return f"{t:.1f}h {t_min(runs, 'n_min'):.0f}"


def ratio(a: float, b: float) -> str:
    if math.isinf(a) and math.isinf(b):
        return "-"
    if b == 0:
        return "0/0" if a == 0 else "inf"
    return f"{a / b:.2f}"


def best_peer(values: dict[str, float], lead: str = "axis") -> tuple[str | None, float]:
    peers = {m: v for m, v in values.items() if m != lead and not math.isnan(v)}
    if not peers:
        return None, math.nan
    name = min(peers, key=lambda m: peers[m])
    return name, peers[name]


def paired_by_seed(cells: dict[str, list[dict]], h: int) -> tuple[int, int]:
    """(seeds where axis's regret after ``h`` is at most the best peer's on the same seed,
    seeds that every method with runs here ran). A median over ten seeds flips when a landscape's
    runs split between two outcomes (a narrow basin found or not); the count of seeds won,
    summed over landscapes, moves by one seed at a time."""
    regret = {m: {r["seed"]: r["regret"][str(h)] for r in c} for m, c in cells.items() if c}
    if "axis" not in regret or len(regret) < 2:
        return 0, 0
    seeds = set.intersection(*(set(v) for v in regret.values()))
    won = sum(1 for s in seeds
              if regret["axis"][s] <= min(v[s] for m, v in regret.items() if m != "axis") + 1e-12)
    return won, len(seeds)


def tables(results: list[dict], methods: list[str], problems: list[tuple[str, str]],
           noises: list[float], seeds: int, horizons: tuple[int, ...] = HORIZONS) -> list[str]:
    by: dict[tuple, list[dict]] = {}
    for r in results:
        by.setdefault((r["landscape"], r["start"], r["noise"], r["method"]), []).append(r)
    lines: list[str] = []
    width = max([14] + [len(m) + 2 for m in methods])   # a variant's name may be long
    checks: list[str] = []
    for noise in noises:
        present = [m for m in methods if any((p[0], p[1], noise, m) in by for p in problems)]
        head = f"{'landscape@start':<28}" + "".join(f"{m:>{width}}" for m in present)
        if noise == 0:
            lines += ["", f"clean: virtual hours and evaluations to the exact grid minimum "
                      f"(median of {seeds} seeds; n.r.k/n: reached by k of n runs)",
                      head + f"{'axis/best':>11}  best peer", "-" * (len(head) + 24)]
            wins, ratios, some = [], [], []     # some: the landscapes some method reaches
            for land, start in problems:
                cells = {m: by.get((land, start, noise, m), []) for m in present}
                row = f"{land + '@' + start:<28}" + "".join(
                    f"{fmt_time(cells[m]) if cells[m] else '-':>{width}}" for m in present)
                medians = {m: t_min(c) for m, c in cells.items() if c}
                name, best = best_peer(medians)
                if "axis" in medians and name is not None:
                    r = ratio(medians["axis"], best)
                    row += f"{r:>11}  {name}"
                    worse = [m for m, v in medians.items() if m != "axis" and v < medians["axis"]]
                    wins.append((land, worse))
                    a = medians["axis"]
                    # a landscape no method reaches (both infinite) counts as a tie
                    ratios.append(1.0 if a == best else a / best if best > 0 else math.inf)
                    if not (math.isinf(a) and math.isinf(best)):
                        some.append(ratios[-1])
                lines.append(row)
            if ratios:
                losses = [(land, w) for land, w in wins if w]
                overall = med(ratios)
                checks.append(f"clean: axis no slower than every peer on every landscape: "
                              f"{'PASS' if not losses else 'FAIL'}"
                              + "".join(f"; {land}: {', '.join(w)} faster" for land, w in losses))
                left = len(ratios) - len(some)
                tie = (f"; {left} reached by no method count as ties, without them "
                       f"{med(some):.2f}") if left and some else ""
                checks.append(f"clean: axis / best peer, median over landscapes: {overall:.2f} "
                              f"(target <= 0.6): {'PASS' if overall <= 0.6 else 'FAIL'} "
                              f"({len(ratios)} landscapes{tie})")
        else:
            for h in horizons:
                lines += ["", f"noise {noise:g} x IQR: TRUE regret of the reported setting after "
                          f"{h} evaluations (median of {seeds} seeds)",
                          head + f"{'axis/best':>11}  best peer", "-" * (len(head) + 24)]
                losses = []
                won_all = of_all = 0    # seeds where axis's regret is at most the best peer's
                behind = []
                for land, start in problems:
                    cells = {m: by.get((land, start, noise, m), []) for m in present}
                    medians = {m: med([r["regret"][str(h)] for r in c]) for m, c in cells.items()
                               if c}
                    won, of = paired_by_seed(cells, h)
                    won_all, of_all = won_all + won, of_all + of
                    if of and won < of / 2:
                        behind.append(f"{land} {won}/{of}")
                    row = f"{land + '@' + start:<28}" + "".join(
                        f"{medians[m]:>{width}.4f}" if m in medians else f"{'-':>{width}}"
                        for m in present)
                    name, best = best_peer(medians)
                    if "axis" in medians and name is not None:
                        row += f"{ratio(medians['axis'], best):>11}  {name}"
                        if medians["axis"] > best + 1e-12:
                            losses.append(f"{land} ({medians['axis']:.4f} vs {name} {best:.4f})")
                    lines.append(row)
                if of_all:
                    lines.append(f"paired by seed (each seed is one instance and one noise draw "
                                 f"for every method): axis's regret at most the best peer's in "
                                 f"{won_all} of {of_all} ({won_all / of_all:.0%}); "
                                 f"in fewer than half the seeds on: "
                                 f"{', '.join(behind) if behind else 'none'}")
                if h == horizons[0] and "axis" in present:
                    checks.append(f"noise {noise:g}: axis's regret after {h} no worse than the "
                                  f"best peer's on every landscape: "
                                  f"{'PASS' if not losses else 'FAIL: ' + '; '.join(losses)}")
        uses = {m: med([r["use"] for p in problems for r in by.get((p[0], p[1], noise, m), [])])
                for m in present}
        lines.append("slot use (median over runs): " + ", ".join(
            f"{m} {u:.1%}" for m, u in uses.items()))
        if "axis" in uses:
            checks.append(f"noise {noise:g}: axis slot use {uses['axis']:.1%} (target >= 95%): "
                          f"{'PASS' if uses['axis'] >= 0.95 else 'FAIL'}")
    cpu: dict[str, list[float]] = {}
    for r in results:
        cpu.setdefault(r["method"], []).append(r["cpu_s"])
    lines += ["", "CPU seconds per run (median / max): " + ", ".join(
        f"{m} {med(v):.1f}/{max(v):.1f}" for m, v in cpu.items())]
    if checks:
        lines += ["", "targets:"] + [f"  {c}" for c in checks]
    return lines


# ---- main ---------------------------------------------------------------------------------
def parse_list(text: str, allowed: Iterable[str], what: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    allowed = list(allowed)
    for name in names:
        if name not in allowed:
            raise StudyError(f"--{what}: unknown {name!r} (expected some of: {', '.join(allowed)})")
    if not names:
        raise StudyError(f"--{what}: empty list")
    return names


def parse_methods(text: str) -> list[str]:
    """The method list, each name known and each variant's options valid for its searcher
    (checked by building it on the first landscape, as a run would)."""
    methods = [t.strip() for t in text.split(",") if t.strip()]
    parse_list(",".join(method_spec(m)[0] for m in methods) or ",", SEARCHERS, "methods")
    for m in methods:
        name, variant = method_spec(m)
        if variant:
            allowed = SEARCHERS[name].options
            for key in variant:
                if key not in allowed:
                    raise StudyError(f"--methods: {name} has no option {key!r} (it has: "
                                     f"{', '.join(allowed)})")
            land = next(iter(landscapes.OPTIMA))
            try:
                make(Job(land, DEFAULT_START.get(land, "centre"), 0.0, m, 0, 10))
            except StudyError as err:
                raise StudyError(f"--methods: {m}: {err}") from None
    return methods


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"a small subset: {QUICK['landscapes']}, {QUICK['seeds']} seeds, "
                         f"noise {QUICK['noise']} (about 2 minutes on 2 cores)")
    ap.add_argument("--landscapes", default=None,
                    help=f"comma-separated (default all: {','.join(landscapes.OPTIMA)})")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 10)")
    ap.add_argument("--noise", default=None,
                    help="noise sd as fractions of the IQR, comma-separated (default 0,0.02,0.1)")
    ap.add_argument("--starts", default="default",
                    help="'default' (one per landscape), 'all', or a list of centre,corner,"
                         "conventional")
    ap.add_argument("--cap", type=int, default=1000,
                    help="clean runs: evaluations before giving up on the minimum (default 1000)")
    ap.add_argument("--horizons", default=",".join(map(str, HORIZONS)),
                    help="noisy runs: evaluations after which the reported setting is judged "
                         "(default 363,1000; the last one ends the run)")
    ap.add_argument("--procs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--fresh", action="store_true", help="ignore cached runs")
    ap.add_argument("--cache", default=CACHE,
                    help="folder of cached runs (default bench_results/search/ in the repo)")
    ap.add_argument("--cached-only", action="store_true",
                    help="print the tables from cached runs only; run nothing")
    return ap.parse_args(argv)


def plan(args: argparse.Namespace) -> tuple[list[Job], list[str], list[tuple[str, str]],
                                            list[float], int, tuple[int, ...]]:
    quick = QUICK if args.quick else {}
    lands = parse_list(args.landscapes or quick.get("landscapes") or ",".join(landscapes.OPTIMA),
                       landscapes.OPTIMA, "landscapes")
    methods = parse_methods(args.methods)
    seeds = args.seeds if args.seeds is not None else quick.get("seeds", 10)
    if seeds < 1:
        raise StudyError(f"--seeds: expected a positive integer, got {seeds}")
    if args.cap < 1:
        raise StudyError(f"--cap: expected a positive integer, got {args.cap}")
    if args.procs < 1:
        raise StudyError(f"--procs: expected a positive integer, got {args.procs}")
    noise_text = args.noise or quick.get("noise") or ",".join(f"{n:g}" for n in NOISES)
    try:
        noises = [float(t) for t in noise_text.split(",") if t.strip()]
    except ValueError:
        raise StudyError(f"--noise: expected comma-separated numbers, got {noise_text!r}") from None
    if not noises or any(not (0 <= n < 10) for n in noises):
        raise StudyError(f"--noise: expected fractions of the IQR in [0, 10), got {noise_text!r}")
    try:
        horizons = tuple(sorted({int(t) for t in args.horizons.split(",") if t.strip()}))
    except ValueError:
        raise StudyError(f"--horizons: expected comma-separated integers, got "
                         f"{args.horizons!r}") from None
    if not horizons or horizons[0] < 1:
        raise StudyError(f"--horizons: expected positive integers, got {args.horizons!r}")
    if args.starts == "default":
        problems = [(land, DEFAULT_START[land]) for land in lands]
    else:
        starts = list(STARTS) if args.starts == "all" else parse_list(args.starts, STARTS,
                                                                       "starts")
        problems = [(land, s) for land in lands for s in starts]
    skipped = [m for m in methods if not applies(m)]
    if skipped:
        print(f"skipped (they need a fidelity; the landscapes have none): {', '.join(skipped)}",
              file=sys.stderr)
    runnable = [m for m in methods if applies(m)]
    for m in runnable:
        try:
            make(Job(lands[0], problems[0][1], 0.0, m, 0, args.cap))
        except StudyError as exc:
            raise StudyError(f"--methods: {m}: {exc}") from None
    jobs = [Job(land, start, noise, m, seed, args.cap, horizons if noise > 0 else HORIZONS)
            for land, start in problems for noise in noises for m in runnable
            for seed in range(seeds)]
    return jobs, runnable, problems, noises, seeds, horizons


def cost_guess(job: Job) -> float:
    """Expensive runs first, so the two processes finish together."""
    weight = {"optuna-tpe": 30.0, "axis": 3.0, "optuna-cmaes": 2.0}.get(
        method_spec(job.method)[0], 1.0)
    return weight * (2.0 if job.noise > 0 else 1.0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        jobs, methods, problems, noises, seeds, horizons = plan(args)
    except StudyError as exc:
        print(f"bench_search: {exc}", file=sys.stderr)
        return 2
    prints = {m: fingerprint(m) for m in methods}
    results, todo = [], []
    for job in jobs:
        path = cache_path(job, prints, args.cache)
        if not args.fresh and os.path.exists(path):
            with open(path) as fh:
                results.append(json.load(fh))
        elif not args.cached_only:
            todo.append((job, path))
    began = time.time()
    print(f"{len(jobs)} runs: {len(results)} cached, {len(todo)} to run on {args.procs} "
          f"process(es)", file=sys.stderr, flush=True)
    todo.sort(key=lambda item: -cost_guess(item[0]))
    if todo:
        if args.procs == 1:
            done = map(run_job, todo)
        else:
            pool = multiprocessing.get_context("fork").Pool(args.procs)
            done = pool.imap_unordered(run_job, todo, chunksize=1)
        for k, out in enumerate(done, 1):
            results.append(out)
            if k % 20 == 0 or k == len(todo):
                print(f"  {k}/{len(todo)} runs, {time.time() - began:.0f} s", file=sys.stderr,
                      flush=True)
        if args.procs != 1:
            pool.close()
            pool.join()
    print(f"{WORKERS} workers, trials 0.8-1.2 h, grid 10x11x11x11, seeds 0..{seeds - 1}, "
          f"clean cap {args.cap} evaluations; {len(todo)} runs took {time.time() - began:.0f} s")
    for line in tables(results, methods, problems, noises, seeds, horizons):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
