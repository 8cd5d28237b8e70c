"""Bench: the search methods on real training, judged by re-training what each one reports.

A search's best measured value is optimistic under noise (the lowest of many noisy draws), so
this bench does not compare those. Each method searches the study under ``autotune compare``
(same executor, same compute budget per run, one shared pretrain); then, for every (method,
seed), the setting the method stands by is trained again ``--repeats`` times from the same
pretrain with fresh training seeds, and those re-trained values are what the table compares.

* The reported setting: ``autotune.load(dir).setting`` (the axis search's base: the best mean
  among settings measured at least twice) where the searcher reports one; otherwise the best
  single full-length trial (``.best``: for Optuna's TPE and for ASHA-BO at its top rung this
  is also what the searcher's own summary names). The table says which ("setting" / "best").
* A re-train is a study of its own with every parameter fixed at the setting's values, run by
  the project's driver with the study's own executor and objective; its trials differ only in
  ``ctx.seed`` (distinct per trial: the D-DBPN fine-tune seeds Python's, NumPy's and torch's
  generators, hence the discriminator's initial weights, and its patch sampler from it).
  Every setting is re-trained with the same ``--retrain-seed``, i.e. the same training
  seeds: equal settings get equal re-runs, and a seed that trains well trains well for every
  method's setting (the table's last lines give the noise left after that common effect).
  Re-trains are cached by the setting and seed (``DIR/retrain/<hash>/``): two seeds that
  report the same setting share one. ``--retrain-seed 1000,2000`` pools the re-trains of
  both seeds (``--repeats`` under each).
* The conventional setting (the study's ``search.start``) is re-trained the same way, as a
  reference for what the search gained.

Everything is resumable: the compare runs and re-trains are ordinary study directories, so
running the same command again finishes what was left and re-reads what was done.

    python scripts/bench_real.py --quick       # 1 seed, a small budget: a few minutes
    python scripts/bench_real.py               # 3 seeds, the default budget (~35 min on 2 cores)
    python scripts/bench_real.py --budget 400 --seeds 2 --methods axis,random
    python scripts/bench_real.py --workers 12 --repeats 8   # a machine with more cores

On a GPU the executor gives each trial a GPU of its own, so ``--workers`` is capped at the GPUs
visible unless the study packs several trials on one (``executor: {trials_per_gpu: N}``). The
tiny network gains little there: on one H100 a fine-tune trained in 2.6 s but cost 14 s with
its process start, CUDA set-up and evaluation (16 s on this project's 2-core CPU machine).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from autotune.errors import StudyError

STUDY = os.path.join(REPO, "search_spaces", "d-dbpn-tiny.yaml")
METHODS = ["axis", "optuna-tpe", "asha-bo", "random"]
#: per-method search options (compare's ``options``): ASHA-BO screens on the epochs
OPTIONS: dict[str, dict[str, Any]] = {"asha-bo": {"fidelity": {"min": 1, "max": 3, "eta": 3}}}
BUDGET_S = 240.0
QUICK = {"seeds": 1, "budget": 60.0, "repeats": 2}


@dataclass
class Retrained:
    """A setting trained ``repeats`` times from the shared pretrain."""

    params: dict[str, Any]
    values: list[float]
    failed: int
    directory: str

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None


@dataclass
class RunResult:
    """One (method, seed) search run, what it reports, and that setting re-trained."""

    method: str
    seed: int
    source: str                  # "setting" (the searcher's own) or "best" (best trial)
    search_value: float | None   # the value the search measured for what it reports
    compute_s: float | None
    evaluations: int | None
    retrained: Retrained | None = None
    note: str = ""


@dataclass
class Bench:
    runs: list[RunResult] = field(default_factory=list)
    reference: Retrained | None = None
    wall_s: float = 0.0


# ---- arguments ----------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--study", default=STUDY, help="the study file (default: the tiny D-DBPN)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated searchers")
    p.add_argument("--seeds", type=int, help="search runs per method (default 3)")
    p.add_argument("--budget", type=float, help=f"compute seconds per run (default {BUDGET_S:g})")
    p.add_argument("--repeats", type=int, help="re-trainings per reported setting (default 3)")
    p.add_argument("--retrain-seed", default="1000",
                   help="study seed of every re-train (its trials' training seeds derive from "
                        "it); several, comma-separated, pool --repeats re-trains per seed")
    p.add_argument("--dir", help="where the runs go (default bench_results/real/<study>-b<budget>)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK['seeds']} seed, budget {QUICK['budget']:g} s, "
                        f"{QUICK['repeats']} re-trains: a few minutes")
    p.add_argument("--workers", type=int,
                   help="trials at once in every run and re-train (the executor's "
                        "max_concurrent; default: the study's; on GPUs see the docstring)")
    p.add_argument("--no-reference", action="store_true",
                   help="skip re-training the study's conventional setting (search.start)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else {"seeds": 3, "budget": BUDGET_S, "repeats": 3}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    from autotune.searchers import SEARCHERS

    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not args.methods:
        raise StudyError("--methods: give a comma-separated list of searchers")
    for m in args.methods:
        if m not in SEARCHERS:
            raise StudyError(f"--methods: unknown {m!r} (expected some of: "
                             f"{', '.join(sorted(SEARCHERS))})")
    try:
        args.retrain_seed = [int(s) for s in str(args.retrain_seed).split(",")]
    except ValueError:
        raise StudyError(f"--retrain-seed: expected integers, comma-separated, got "
                         f"{args.retrain_seed!r}") from None
    if len(set(args.retrain_seed)) != len(args.retrain_seed):
        raise StudyError(f"--retrain-seed: a seed given twice in {args.retrain_seed}")
    for key in ("seeds", "repeats", "workers"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            raise StudyError(f"--{key}: expected a positive integer, got {getattr(args, key)}")
    if not (math.isfinite(args.budget) and args.budget > 0):
        raise StudyError(f"--budget: expected a positive number of compute seconds, "
                         f"got {args.budget:g}")
    if not os.path.isfile(args.study):
        raise StudyError(f"--study: no such file {args.study}")
    if args.dir is None:
        stem = os.path.splitext(os.path.basename(args.study))[0]
        workers = f"-w{args.workers}" if args.workers else ""
        args.dir = os.path.join(REPO, "bench_results", "real",
                                f"{stem}-b{args.budget:g}{workers}")
    return args


# ---- the study, the comparison -----------------------------------------------------------
def read_study(path: str) -> dict[str, Any]:
    from autotune.config import require_mapping
    from autotune.yamlfile import read_yaml

    return require_mapping(read_yaml(path), "study")


def compare_study_file(raw: dict[str, Any], methods: list[str], out_dir: str) -> str:
    """The study file compare reads: the study with this bench's per-method options (the
    study's own ``compare:`` section replaced). Written only when it changes."""
    data = copy.deepcopy(raw)
    data["compare"] = {"options": {m: copy.deepcopy(OPTIONS[m]) for m in methods if m in OPTIONS}}
    text = yaml.safe_dump(data, sort_keys=False)
    path = os.path.join(out_dir, "study.yaml")
    os.makedirs(out_dir, exist_ok=True)
    try:
        with open(path) as fh:
            if fh.read() == text:
                return path
    except OSError:
        pass
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)
    return path


def check_plan(raw: dict[str, Any], args: argparse.Namespace) -> None:
    """Every run compare will start, validated before anything is written."""
    from autotune.compare import parse_plan, run_study

    data = copy.deepcopy(raw)
    data["compare"] = {"options": {m: OPTIONS[m] for m in args.methods if m in OPTIONS}}
    plan = parse_plan(data, ",".join(args.methods), args.seeds, args.budget, None)
    base_dir = os.path.dirname(os.path.abspath(args.study))
    for method in args.methods:
        run_study(data, plan, method, 0, base_dir)


def reported(directory: str) -> tuple[str, dict[str, Any] | None, float | None]:
    """(source, params, the value the search measured for it): the searcher's own setting
    where it reports one, else its best full-length trial."""
    import autotune as at

    view = at.load(directory)
    setting = view.setting
    if setting is not None:
        return "setting", dict(setting["params"]), setting["mean"]
    best = view.best
    if best is None:
        return "best", None, None
    return "best", dict(best.params), best.value


# ---- re-training -------------------------------------------------------------------------
def fixed_space(raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The study's space with every free parameter fixed at ``params``' value."""
    space = {}
    for name, spec in raw["space"].items():
        if isinstance(spec, dict):
            if name not in params:
                raise StudyError(f"re-train: the setting has no value for {name}")
            space[name] = params[name]
        else:
            space[name] = spec
    return space


def setting_key(space: dict[str, Any], repeats: int, seed: int) -> str:
    text = json.dumps({"space": space, "repeats": repeats, "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def retrain(raw: dict[str, Any], params: dict[str, Any], root: str, repeats: int, seed: int,
            cache_dir: str | None) -> Retrained:
    """``params`` trained ``repeats`` times through the project's driver: a study with every
    parameter fixed, random search (which then proposes the one point each time), its
    trials differing only in their training seed. ``cache_dir``: the comparison's shared
    pretrain, so that the re-trains start from the checkpoint the searches started from."""
    import autotune as at

    space = fixed_space(raw, params)
    key = setting_key(space, repeats, seed)
    data = copy.deepcopy(raw)
    data.pop("compare", None)
    data["name"] = f"{raw.get('name', 'study')}-retrain-{key}"
    data["space"] = space
    data["search"] = {"algorithm": "random", "seed": seed, "max_trials": repeats}
    stages = data.get("stages")
    if cache_dir is not None and isinstance(stages, dict) and isinstance(stages.get("pretrain"),
                                                                         dict):
        stages["pretrain"]["cache_dir"] = os.path.abspath(cache_dir)
    directory = os.path.join(root, key)
    view = at.Study(data, dir=directory).run(progress=False)
    ok = [t for t in view.trials if t.status == "ok" and t.value is not None]
    failed = sum(1 for t in view.trials if t.status == "failed")
    return Retrained(dict(params), [float(t.value) for t in ok], failed, directory)


def retrain_pooled(raw: dict[str, Any], params: dict[str, Any], root: str, repeats: int,
                   seeds: list[int], cache_dir: str | None) -> Retrained:
    """``repeats`` re-trains under each re-train seed, their values in seed order (so re-run
    k of every setting has the same training seed): one study directory per seed, so a
    second seed adds runs to those of the first without repeating them."""
    parts = [retrain(raw, params, root, repeats, seed, cache_dir) for seed in seeds]
    return Retrained(dict(params), [v for p in parts for v in p.values],
                     sum(p.failed for p in parts), ",".join(p.directory for p in parts))


# ---- the whole bench ---------------------------------------------------------------------
def run_bench(args: argparse.Namespace, progress: bool = True) -> Bench:
    from autotune.compare import compare

    started = time.monotonic()
    raw = read_study(args.study)
    if args.workers:
        raw.setdefault("executor", {})["max_concurrent"] = args.workers
    out = os.path.abspath(args.dir)
    check_plan(raw, args)
    path = compare_study_file(raw, args.methods, out)
    rows = compare(path, out, ",".join(args.methods), args.seeds, args.budget, None,
                   progress=progress)
    by_run = {(r["algorithm"], r["seed"]): r for r in rows}
    cache = os.path.join(out, "cache")
    free = [name for name, spec in raw["space"].items() if isinstance(spec, dict)]
    bench = Bench()
    for method in args.methods:
        for seed in range(args.seeds):
            row = by_run[(method, seed)]
            source, params, value = reported(os.path.join(out, f"{method}-s{seed}"))
            if params is not None:
                params = {k: v for k, v in params.items() if k in free}
            run = RunResult(method, seed, source, value, row.get("compute_s"),
                            row.get("evaluations"))
            if params is None:
                run.note = "no successful full-length trial"
            else:
                if progress:
                    print(f"bench_real: re-training {method} seed {seed} ({source}) "
                          f"{describe(params)}", flush=True)
                run.retrained = retrain_pooled(raw, params, os.path.join(out, "retrain"),
                                               args.repeats, args.retrain_seed, cache)
            bench.runs.append(run)
    start = (raw.get("search") or {}).get("start")
    if start and not args.no_reference:
        if progress:
            print(f"bench_real: re-training the conventional setting {describe(start)}",
                  flush=True)
        bench.reference = retrain_pooled(raw, dict(start), os.path.join(out, "retrain"),
                                         args.repeats, args.retrain_seed, cache)
    bench.wall_s = time.monotonic() - started
    return bench


# ---- the table ---------------------------------------------------------------------------
def describe(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                    for k, v in sorted(params.items()))


def fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def method_medians(bench: Bench) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for method in dict.fromkeys(r.method for r in bench.runs):
        means = [r.retrained.mean for r in bench.runs
                 if r.method == method and r.retrained is not None and r.retrained.mean is not None]
        out[method] = statistics.median(means) if means else None
    return out


def format_table(bench: Bench, metric: str = "niqe", mode: str = "min") -> str:
    """One line per method: the re-trained mean per seed, their median, the ratio of that
    median to axis's, where the re-trained values come from, what the search itself measured
    for the setting it reports, and the compute each run spent."""
    methods = list(dict.fromkeys(r.method for r in bench.runs))
    seeds = sorted({r.seed for r in bench.runs})
    medians = method_medians(bench)
    axis = medians.get("axis")
    head = (f"{'method':<11} {'source':<8} "
            + " ".join(f"{'s' + str(s):>7}" for s in seeds)
            + f" {'median':>7} {'/axis':>6} {'searched':>8} {'compute s':>9} {'evals':>5}")
    lines = [f"re-trained {metric} (mean of each setting's re-runs; {mode} is better)", head]
    for method in methods:
        mine = {r.seed: r for r in bench.runs if r.method == method}
        cells = []
        for s in seeds:
            r = mine.get(s)
            cells.append(fmt(r.retrained.mean if r and r.retrained else None))
        sources = sorted({r.source for r in mine.values()})
        ratio = (medians[method] / axis if medians[method] is not None and axis else None)
        searched = [r.search_value for r in mine.values() if r.search_value is not None]
        compute = [r.compute_s for r in mine.values() if r.compute_s is not None]
        evals = [r.evaluations for r in mine.values() if r.evaluations is not None]
        lines.append(f"{method:<11} {'/'.join(sources):<8} "
                     + " ".join(f"{c:>7}" for c in cells)
                     + f" {fmt(medians[method]):>7} {fmt(ratio, '.3f'):>6}"
                     f" {fmt(statistics.median(searched) if searched else None):>8}"
                     f" {fmt(statistics.median(compute) if compute else None, '.0f'):>9}"
                     f" {fmt(statistics.median(evals) if evals else None, '.0f'):>5}")
    if bench.reference is not None:
        ref = bench.reference
        ratio = ref.mean / axis if ref.mean is not None and axis else None
        lines.append(f"{'start':<11} {'fixed':<8} " + " ".join(f"{'':>7}" for _ in seeds)
                     + f" {fmt(ref.mean):>7} {fmt(ratio, '.3f'):>6}"
                     f"  (the conventional setting, {len(ref.values)} re-runs: "
                     + ", ".join(fmt(v) for v in ref.values) + ")")
    lines.append("")
    lines.append("reported settings and their re-runs:")
    for r in bench.runs:
        if r.retrained is None:
            lines.append(f"  {r.method} s{r.seed}: {r.note}")
            continue
        failed = f", {r.retrained.failed} failed" if r.retrained.failed else ""
        lines.append(f"  {r.method} s{r.seed} ({r.source}, searched {fmt(r.search_value)}): "
                     f"{describe(r.retrained.params)} -> "
                     + ", ".join(fmt(v) for v in r.retrained.values) + failed)
    noise = rerun_noise(bench)
    if noise is not None:
        sd, settings = noise
        runs = max_runs(bench)
        lines.append("")
        lines.append(f"re-run noise: pooled sd {sd:.4f} over {settings} re-trained settings "
                     f"(a mean of {runs} re-runs: +-{sd / math.sqrt(runs):.4f})")
        paired = paired_noise(bench)
        if paired is not None:
            lines.append(f"every setting is re-run with the same training seeds: without the "
                         f"seeds' common effect the sd is {paired:.4f} (a difference of two "
                         f"{runs}-run means: +-{paired * math.sqrt(2 / runs):.4f})")
    lines.append("")
    lines.append(verdict(medians, mode))
    lines.append(f"wall time of this invocation: {bench.wall_s / 60:.1f} min")
    return "\n".join(lines)


def rerun_noise(bench: Bench) -> tuple[float, int] | None:
    """The pooled standard deviation of one setting's re-runs (each setting counted once), and
    how many settings it pools."""
    seen = retrained_settings(bench)
    squares, dof = 0.0, 0
    for got in seen:
        if len(got.values) > 1:
            mean = statistics.fmean(got.values)
            squares += sum((v - mean) ** 2 for v in got.values)
            dof += len(got.values) - 1
    if not dof:
        return None
    return math.sqrt(squares / dof), sum(len(g.values) > 1 for g in seen)


def retrained_settings(bench: Bench) -> list[Retrained]:
    """Each re-trained setting once (seeds that report one setting share its re-trains)."""
    seen = {r.retrained.directory: r.retrained for r in bench.runs if r.retrained is not None}
    if bench.reference is not None:
        seen[bench.reference.directory] = bench.reference
    return list(seen.values())


def paired_noise(bench: Bench) -> float | None:
    """The residual sd of a two-way layout (setting x training seed): re-run k of every setting
    uses the same training seed, so a seed that trains well for one setting tends to for all;
    what is left after that common effect is the noise a comparison of settings faces."""
    runs = max_runs(bench)
    rows = [g.values for g in retrained_settings(bench) if len(g.values) == runs and not g.failed]
    if len(rows) < 2 or runs < 2:
        return None
    grand = statistics.fmean(v for row in rows for v in row)
    row_means = [statistics.fmean(row) for row in rows]
    col_means = [statistics.fmean(row[k] for row in rows) for k in range(runs)]
    squares = sum((row[k] - row_means[i] - col_means[k] + grand) ** 2
                  for i, row in enumerate(rows) for k in range(runs))
    return math.sqrt(squares / ((len(rows) - 1) * (runs - 1)))


def max_runs(bench: Bench) -> int:
    return max((len(r.retrained.values) for r in bench.runs if r.retrained), default=1)


def verdict(medians: dict[str, float | None], mode: str = "min") -> str:
    axis = medians.get("axis")
    others = {m: v for m, v in medians.items() if m != "axis"}
    if axis is None or not others:
        return "target: no verdict (axis, or every other method, has no re-trained value)"
    worse = [m for m, v in others.items()
             if v is not None and (v < axis if mode == "min" else v > axis)]
    if worse:
        return ("target: axis's median re-trained value is WORSE than "
                + ", ".join(f"{m} ({fmt(others[m])})" for m in worse)
                + f"; axis {fmt(axis)}")
    return (f"target: axis's median re-trained value ({fmt(axis)}) is no worse than any other "
            "method's")


def main(argv: list[str] | None = None) -> int:
    from autotune.compare import ComparisonInterrupted, PretrainFailed

    try:
        args = parse_args(argv)
        bench = run_bench(args)
    except StudyError as exc:
        print(f"bench_real: {exc}", file=sys.stderr)
        return 2
    except ComparisonInterrupted as exc:
        print(f"bench_real: {exc}", file=sys.stderr)
        return 130
    except PretrainFailed as exc:
        print(f"bench_real: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"bench_real: interrupted ({exc}); run the same command again to resume",
              file=sys.stderr)
        return 130
    raw = read_study(args.study)
    objective = raw.get("objective") or {}
    print()
    print(f"study {args.study}: methods {', '.join(args.methods)}; {args.seeds} seed(s); "
          f"budget {args.budget:g} compute-s per run; {args.repeats} re-trains per setting "
          f"under each re-train seed ({','.join(map(str, args.retrain_seed))}); "
          f"runs in {args.dir}")
    print(format_table(bench, str(objective.get("metric", "value")),
                       str(objective.get("mode", "min"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
