"""``autotune compare``: several algorithms on one study, same executor, same compute budget.

Each (algorithm, seed) run is an ordinary study directory under DIR, so a comparison resumes
like any study: re-running the command finishes what was left and re-reads what was done.
Figures come from each run's trials read as a DataFrame (frame.trials_frame, then
analysis.figures), and the table is comparison.csv.

A study file may hold a ``compare:`` section: per-algorithm search options (e.g. ``asha:
{fidelity: {...}}``, ``axis: {start: {...}}``), default algorithms, seeds and budget. ``run``
ignores it. Options in the study's own ``search:`` section reach every algorithm that accepts
them. With a budget, the compute budget is every run's only limit (the study's
``max_trials`` is dropped); without one, each run keeps the study's own limits.
"""
from __future__ import annotations

import copy
import math
import os
import statistics
import sys
import warnings
from dataclasses import dataclass, replace
from typing import Any

from .analysis import RunFigures, best_curve, compute_at, figures
from .compare_clock import CompareClock
from .compare_section import MAX_RUNS, algorithm_names, read_compare_section, too_many_runs
from .config import optional_mapping, require_mapping
from .errors import StudyError
from .executors import EXECUTORS
from .frame import trials_frame
from .history import History
from .journal import Journal
from .progress import budget_reached
from .searchers import SEARCHERS
from .study import Study, parse_study
from .studydir import StudyDir, dir_key, require
from .trajectory import write_csv_atomic

COLUMNS = ["algorithm", "seed", "best", "compute_to_best_s", "wall_to_best_s", "evaluations",
           "evaluations_to_best", "compute_s", "wall_s", "slot_use", "improvement",
           "improvement_per_compute_h", "reference", "reference_of", "directory"]


class ComparisonInterrupted(Exception):
    """Ctrl-C or SIGTERM reached the run in progress: stop the whole comparison."""


def stopped_during(summary: Any, what: str) -> str:
    """The comparison's last line once the run of ``what`` stopped, as ``run`` words it:
    stopped by ``autotune cancel`` (which cancels the comparison whole) or interrupted
    (Ctrl-C, a SIGTERM of anyone else's); the same command resumes either."""
    if summary.by_cancel:
        return (f"stopped by autotune cancel during {what}; to go on with the comparison: run "
                "the same command again")
    return f"interrupted during {what}; run the same command again to resume"


@dataclass
class Plan:
    algorithms: list[str]
    seeds: int
    budget_s: float | None
    executor: str | None
    options: dict[str, dict[str, Any]]


def parse_plan(raw: dict, algorithms: str | None, seeds: int | None, budget: float | None,
               executor: str | None) -> Plan:
    # the study file's own values are checked even where an option overrides them: a
    # mistake in the file is refused whichever command line runs it
    section = read_compare_section(raw)
    names = algorithm_names(algorithms.split(","), "--algorithms", algorithms) if algorithms \
        else section.algorithms
    if not names:
        raise StudyError("--algorithms: give a comma-separated list (or compare.algorithms)")
    source = "--seeds" if seeds is not None else "compare.seeds"
    seeds = seeds if seeds is not None else section.seeds
    if seeds < 1:
        raise StudyError(f"--seeds: expected a positive integer, got {seeds}")
    if seeds * len(names) > MAX_RUNS:  # every run is checked before the first starts
        raise StudyError(too_many_runs(source, seeds, len(names)))
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise StudyError(f"--budget: expected a positive number of compute seconds, got {budget:g}")
    budget = budget if budget is not None else section.budget_s
    if executor is not None and executor not in EXECUTORS:
        raise StudyError(f"--executor: unknown {executor!r} (expected one of: "
                         f"{', '.join(sorted(EXECUTORS))})")
    return Plan(names, seeds, budget, executor, section.options)


def run_study(raw: dict, plan: Plan, algorithm: str, seed: int, base_dir: str) -> Study:
    """The study file with this algorithm, seed, budget and executor: validated like any.
    Its ``search:`` and ``executor:`` are read as ``run`` reads them (a missing or ``~`` one
    empty, any other that is no mapping refused): both are rebuilt here, so ``search: 0``
    would have been a run with no budget and ``executor: 0`` one on ``--executor``'s kind."""
    data = copy.deepcopy(raw)
    data.pop("compare", None)
    search = dict(optional_mapping(data, "search"))
    accepted = set(SEARCHERS[algorithm].options)
    own = {k: v for k, v in search.items() if k in accepted}
    data["search"] = {**own, **plan.options.get(algorithm, {}), "algorithm": algorithm,
                      "seed": seed}
    fixed_epochs_to_fidelity(data, algorithm)
    if plan.budget_s is not None:
        # the budget is the one limit: a trial count would cut short whichever algorithm
        # runs the cheapest trials (a multi-fidelity rung is a trial too)
        data["search"]["max_compute_s"] = plan.budget_s
    else:
        for key in ("max_trials", "max_compute_s"):
            if key in search:
                data["search"][key] = search[key]
    own = optional_mapping(data, "executor")
    if plan.executor is not None and plan.executor != own.get("kind", "local"):
        # another kind: the study's options (a partition, GPUs) are its own kind's
        data["executor"] = {"kind": plan.executor, "max_concurrent": own.get("max_concurrent", 1)}
        if plan.executor == "simulated" and own.get("default_cost_s") is not None:
            data["executor"]["default_cost_s"] = own["default_cost_s"]
        stages = data.get("stages")  # any that is no mapping: parse_study names it
        pre = stages.get("pretrain") if isinstance(stages, dict) else None
        if isinstance(pre, dict):
            pre.pop("executor", None)  # resources of the study's own executor kind
    data["name"] = f"{data.get('name', 'study')}-{algorithm}-s{seed}"
    try:
        # a command field no trial fills: refused in a new run, resumed with a warning in
        # one an older autotune started so (unfilled_runs), as ``run`` does
        return parse_study(data, base_dir=base_dir, compared=True, tolerate_unfilled=True)
    except StudyError as exc:
        raise StudyError(f"[{algorithm}] {exc}") from None


def fixed_epochs_to_fidelity(data: dict, algorithm: str) -> None:
    """The study's training length fixed in the space (``epochs: 3``) is the full length the
    other algorithms train; a run given a fidelity sets each trial's epochs itself, so the
    fixed value leaves that run's space. Its ``max`` must be that length: the runs would
    otherwise be judged at different lengths."""
    fidelity = data["search"].get("fidelity")
    space = data.get("space")
    if not isinstance(fidelity, dict) or not isinstance(space, dict) or "epochs" not in space:
        return
    epochs = space["epochs"]
    if isinstance(epochs, (dict, bool)) or not isinstance(epochs, int):
        return  # a searched epochs (or a bad value) is the study parser's to name
    if fidelity.get("max") != epochs:
        raise StudyError(f"[{algorithm}] compare.options.{algorithm}.fidelity.max: expected the "
                         f"study's space.epochs ({epochs}), the length the other runs train, "
                         f"got {fidelity.get('max')!r}")
    data["space"] = {k: v for k, v in space.items() if k != "epochs"}


def compare(study_path: str, out_dir: str, algorithms: str | None = None,
            seeds: int | None = None, budget: float | None = None, executor: str | None = None,
            progress: bool = True) -> list[dict[str, Any]]:
    from .driver import Driver
    from .yamlfile import read_yaml

    raw = read_yaml(study_path)
    raw = require_mapping(raw, "study")
    plan = parse_plan(raw, algorithms, seeds, budget, executor)
    check_out_dir(out_dir, study_path)
    base_dir = os.path.dirname(os.path.abspath(study_path))
    raw = share_pretrain(raw, out_dir)
    runs = [(a, s, run_study(raw, plan, a, s, base_dir)) for a in plan.algorithms
            for s in range(plan.seeds)]  # every run validated before any is started
    for a, s, _ in runs:  # and its directory, before the first run writes anything
        run_dir = os.path.join(out_dir, f"{a}-s{s}")
        if os.path.exists(run_dir) and not os.path.isdir(run_dir):
            raise StudyError(f"{dir_key()}: {run_dir} exists and is not a directory (the "
                             f"study of {a} seed {s} goes there)")
        StudyDir(run_dir).check_run()
    for algorithm, _, study in runs:
        check_bounded(algorithm, study)
    check_same_study(runs, out_dir)
    runs = unfilled_runs(runs, out_dir)
    check_simulated_cost(runs[0][2])
    over = past_budget(runs, out_dir)
    if over:
        print(over, file=sys.stderr, flush=True)
    before = {(a, s): ended_before(study, os.path.join(out_dir, f"{a}-s{s}"))
              for a, s, study in runs}
    said = CompareClock(len(runs), len(plan.algorithms), plan.seeds,
                        sum(done for _, done in before.values()), enabled=progress)
    said.begin(out_dir)
    if runs and runs[0][2].objective.pretrain is not None:
        build_pretrain(runs[0][2], out_dir, progress)
    results = []
    for algorithm, seed, study in runs:
        directory = os.path.join(out_dir, f"{algorithm}-s{seed}")
        ended, done = before[(algorithm, seed)]
        said.run_starts(algorithm, seed, directory, done)
        summary = Driver(study, directory, progress=False).run()
        if summary.stopped == "interrupted":
            raise ComparisonInterrupted(stopped_during(summary, f"{algorithm} seed {seed}"))
        history = History.load(Journal(os.path.join(directory, "history.jsonl")))
        said.run_ended(ended_trials(history) > ended)
        results.append((algorithm, seed, directory, study, trials_frame(history)))
    rows = table(results)
    write_csv_atomic(os.path.join(out_dir, "comparison.csv"), COLUMNS, rows)
    plot_comparison(results, os.path.join(out_dir, "plots"))
    return rows


def check_out_dir(out_dir: str, study_path: str | None = None) -> None:
    """Refuse, before anything is written, a ``--dir`` that compare cannot make its own: a
    file; a study's directory (its plots/ would be overwritten by the comparison's, its
    folder filled with the runs'); one holding other files and no earlier comparison
    (comparison.csv and plots/ were written beside them), the study file compared aside
    (``exp/study.yaml --dir exp`` keeps an experiment in one folder); one it may not write
    (the first run's ``Not a directory`` or permission error came only after the start
    lines)."""
    if not os.path.exists(out_dir):
        check_makeable(out_dir)
        return
    if not os.path.isdir(out_dir):
        raise StudyError(f"{dir_key()}: {out_dir} exists and is not a directory")
    sdir = StudyDir(out_dir)
    study = [os.path.basename(p) for p in (sdir.history, sdir.trajectory, sdir.trials)
             if os.path.exists(p)]
    if study:
        raise StudyError(f"{dir_key()}: {out_dir} is a study's directory (it holds "
                         f"{', '.join(study)}): compare writes comparison.csv, plots/ and one "
                         "study per algorithm and seed (<algorithm>-s<seed>/) into its own: "
                         "use an empty or new directory")
    require(out_dir, read=True, write=True, prefix=f"{dir_key()}: ")
    own = (os.path.basename(study_path) if study_path is not None and os.path.samefile(
        os.path.dirname(os.path.abspath(study_path)), out_dir) else None)
    foreign = sorted(n for n in os.listdir(out_dir) if not comparison_part(n) and n != own)
    if foreign and not earlier_comparison(out_dir):
        shown = ", ".join(n + ("/" if os.path.isdir(os.path.join(out_dir, n)) else "")
                          for n in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise StudyError(f"{dir_key()}: {out_dir} is not empty and holds no earlier "
                         f"comparison (it holds {shown}): compare writes comparison.csv, plots/ "
                         "and one study per algorithm and seed (<algorithm>-s<seed>/) into its "
                         "own: use an empty or new directory")
    require(os.path.join(out_dir, "plots"), write=True, prefix=f"{dir_key()}: ", folder=True)
    require(os.path.join(out_dir, "comparison.csv"), prefix=f"{dir_key()}: ", folder=False)


def check_makeable(out_dir: str) -> None:
    """A new ``--dir`` is made by the first run: one under a file, or under a directory this
    user may not write, failed only after the start lines were printed."""
    above = os.path.dirname(os.path.abspath(out_dir))
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise StudyError(f"{dir_key()}: cannot make {out_dir}: {above} is a file, not a "
                         "directory")
    require(above, write=True, prefix=f"{dir_key()}: cannot make {out_dir}: ")


def comparison_part(name: str) -> bool:
    """Whether a name in a comparison's DIR is one that compare writes: comparison.csv (and
    its temporary file), plots/, the shared pretrain's pretrain/ and cache/, and the runs'
    <algorithm>-s<seed>/."""
    if name in ("comparison.csv", "plots", "pretrain", "cache") \
            or name.startswith("comparison.csv.tmp"):
        return True
    algorithm, _, seed = name.rpartition("-s")
    return algorithm in SEARCHERS and seed.isdigit()


def earlier_comparison(out_dir: str) -> bool:
    """Whether ``out_dir`` holds what an earlier comparison recorded (its comparison.csv, or
    a run's or the shared pretrain's study): compare resumes it, beside whatever else its
    owner put there."""
    if os.path.isfile(os.path.join(out_dir, "comparison.csv")):
        return True
    return any(comparison_part(name) and os.path.isfile(os.path.join(out_dir, name,
                                                                      "history.jsonl"))
               for name in os.listdir(out_dir))


def check_same_study(runs: list[tuple], out_dir: str) -> None:
    """Refuse, before any run starts, a DIR whose runs were started with another study
    (another space, search options, metric...): each run's driver refuses its own, but only
    as it starts, after the runs before it have run."""
    from .driver import check_compatible

    for algorithm, seed, study in runs:
        path = os.path.join(out_dir, f"{algorithm}-s{seed}", "history.jsonl")
        if not os.path.isfile(path):
            continue
        started = History.load(Journal(path)).study
        if started:
            try:
                check_compatible(started, study, os.path.dirname(path))
            except StudyError as exc:
                raise StudyError(f"[{algorithm}] {exc}") from None


def ended_before(study: Study, directory: str) -> tuple[int, bool]:
    """A run's trials ended before this command, and whether its budget was spent then (it
    resumes in an instant): what ``CompareClock`` leaves out of the time left."""
    path = os.path.join(directory, "history.jsonl")
    if not os.path.exists(path):
        return 0, False
    history = History.load(Journal(path))
    return ended_trials(history), bool(budget_reached(study, history))


def ended_trials(history: History) -> int:
    counts = history.by_status()
    return sum(counts.get(k, 0) for k in ("ok", "failed", "cancelled"))


def unfilled_runs(runs: list[tuple], out_dir: str) -> list[tuple]:
    """The runs, each checked for command fields no trial fills (``Study.unfilled``) before
    any run starts, as ``run`` checks its study: refused in a run not started yet, resumed
    in one an older autotune started with that command. One warning for the comparison,
    not one per run: the runs are handed on without the fields, so no driver warns again."""
    from .driver import check_unfilled
    from .study import unfilled_warning

    fields: dict[str, str] = {}
    out = []
    for algorithm, seed, study in runs:
        if study.unfilled:
            journal = Journal(os.path.join(out_dir, f"{algorithm}-s{seed}", "history.jsonl"))
            try:
                check_unfilled(study, History.load(journal))
            except StudyError as exc:
                raise StudyError(f"[{algorithm}] {exc}") from None
            fields.update(study.unfilled)
            study = replace(study, unfilled=[])
        out.append((algorithm, seed, study))
    if fields:
        print(f"warning: {unfilled_warning(list(fields.items()))}", file=sys.stderr, flush=True)
    return out


def check_bounded(algorithm: str, study: Study) -> None:
    """A run without any limit would go on until stopped, silently (the runs print no
    progress), and the algorithms after it would never start: refused before any is run.
    A grid, hyperband's brackets and ``max_epochs_total`` end a search by themselves."""
    if study.max_trials is None and study.max_compute_s is None \
            and not study.make_searcher().bounded:
        raise StudyError(f"[{algorithm}] no budget: this run would go on until stopped and the "
                         "runs after it never start; give --budget COMPUTE_S (or "
                         "compare.budget_s, or the study's search.max_trials or max_compute_s)")


def past_budget(runs: list[tuple], out_dir: str) -> str | None:
    """One warning line when runs already in DIR went past this comparison's budget: each
    started trials after it had spent more than the budget now given (an earlier, larger
    ``--budget``). Its spent compute cannot be taken back, so its figures cover all of it. A
    run honoured a budget B exactly when its last trial started with less than B spent: the
    overshoot of trials in flight at the budget is every run's alike, and not warned of."""
    over = []
    for algorithm, seed, study in runs:
        budget = study.max_compute_s
        path = os.path.join(out_dir, f"{algorithm}-s{seed}", "history.jsonl")
        if budget is None or not os.path.exists(path):
            continue
        history = History.load(Journal(path))
        frame = trials_frame(history)
        starts = frame["start_s"].dropna() if "start_s" in frame else []
        if not len(starts) or compute_at(frame, [float(starts.max())])[0] < budget:
            continue
        over.append((algorithm, seed, history.spent_s, budget))
    if not over:
        return None
    shown = ", ".join(f"{a}-s{s} spent {spent:g} s" for a, s, spent, _ in over)
    budget = over[0][3]
    return (f"compare: warning: {out_dir} already holds runs that went past the budget of "
            f"{budget:g} s ({shown}: an earlier, larger budget); their figures cover all the "
            f"compute they spent; use another --dir to compare at {budget:g} s")


def check_simulated_cost(study: Study) -> None:
    """Under the simulated executor every time is the ``cost_s`` the objective reports: one
    that reports none would make a table of how fast this machine runs the objective. One
    trial of the first run is tried in a scratch directory (the simulated objective runs
    in-process anyway, so it is cheap) before anything is written."""
    import tempfile

    from .objective import Ctx, run_objective

    if study.executor != "simulated" or study.executor_options.get("default_cost_s") \
            or study.objective.pretrain is not None:
        return
    searcher = study.make_searcher()
    suggestion = searcher.ask(1)[0]
    with tempfile.TemporaryDirectory(prefix="autotune-probe-") as scratch:
        ctx = Ctx(trial=0, trial_dir=os.path.join(scratch, "trial"), seed=0,
                  epochs=suggestion.fidelity, study_dir=scratch, launch_dir=os.getcwd(),
                  study_file_dir=os.path.dirname(study.source) or os.getcwd())
        try:
            result = run_objective(study.objective, dict(suggestion.params), ctx)
        except Exception:  # noqa: BLE001 - a failing trial is the run's to record, not ours
            return
    if "cost_s" not in result:
        raise StudyError(f"--executor simulated: the objective's result has no cost_s (keys: "
                         f"{', '.join(sorted(result))}); the virtual clock needs each trial's "
                         "compute seconds, or executor.default_cost_s; compare on a real "
                         "executor instead")


class PretrainFailed(Exception):
    """The shared pretrain failed: no run can start (its reason, then its stderr tail)."""


def share_pretrain(raw: dict, out_dir: str) -> dict:
    """Every run fine-tunes from one pretrain: in the study's ``cache_dir`` if it names one,
    else in ``DIR/cache``."""
    pre = (raw.get("stages") or {}).get("pretrain") if isinstance(raw.get("stages"), dict) else None
    if not isinstance(pre, dict) or pre.get("cache_dir"):
        return raw
    data = copy.deepcopy(raw)
    data["stages"]["pretrain"]["cache_dir"] = os.path.abspath(os.path.join(out_dir, "cache"))
    return data


def build_pretrain(study: Study, out_dir: str, progress: bool) -> None:
    """Build the shared pretrain before any run, as its own recorded job in ``DIR/pretrain/``,
    so that every run finds it cached and no run's compute carries it: the budget is the
    same search compute for every algorithm."""
    import dataclasses

    from .driver import Driver

    directory = os.path.join(out_dir, "pretrain")
    stage_study = dataclasses.replace(study, name=study.name.rsplit("-", 2)[0] + "-pretrain")
    summary = Driver(stage_study, directory, progress=progress, stages_only=True).run()
    if summary.stopped == "interrupted":
        raise ComparisonInterrupted(stopped_during(summary, "the pretrain"))
    if summary.stopped == "failed":
        raise PretrainFailed(summary.error + (f"\n  {summary.tail}" if summary.tail else ""))
    if progress:
        rec = History.load(Journal(os.path.join(directory, "history.jsonl"))).stages.get("pretrain")
        if rec is not None:
            print(f"compare: pretrain {rec.status} (cost {rec.cost_s:.1f} s, {directory}); "
                  "every run starts from it", flush=True)


def table(results: list[tuple]) -> list[dict[str, Any]]:
    """One row per run; improvement is measured from a shared reference value (see below)."""
    reference, of = reference_value(results)
    rows = []
    for algorithm, seed, directory, study, frame in results:
        mode = study.objective.mode
        fig: RunFigures = figures(frame, study.max_concurrent)
        row = {"algorithm": algorithm, "seed": seed, "directory": directory, **fig.as_row(),
               "reference": reference, "reference_of": of}
        if fig.best is not None and reference is not None:
            gain = (reference - fig.best) if mode == "min" else (fig.best - reference)
            row["improvement"] = gain
            row["improvement_per_compute_h"] = gain / (fig.compute_s / 3600) if fig.compute_s else None
        rows.append(row)
    return rows


def reference_value(results: list[tuple]) -> tuple[float | None, str | None]:
    """The value improvement is measured from, and what it is the median of: the successful
    trials of random search where it ran (``random``: a random configuration), else every
    successful trial of the comparison (``all``: so it moves with the algorithms compared)."""
    def ok_values(frames: list) -> list[float]:
        return [v for df in frames for v in df.loc[df["status"] == "ok", "value"].dropna()]

    values = ok_values([df for a, *_, df in results if a == "random"])
    if values:
        return statistics.median(values), "random"
    values = ok_values([df for *_, df in results])
    return (statistics.median(values), "all") if values else (None, None)


def summarise(rows: list[dict[str, Any]]) -> str:
    """Medians over seeds, one line per algorithm."""
    lines = [f"{'algorithm':<12} {'seeds':>5} {'best':>10} {'compute->best':>14} "
             f"{'wall->best':>11} {'evals':>6} {'slot use':>8} {'impr/compute-h':>14}"]
    for algorithm in dict.fromkeys(r["algorithm"] for r in rows):
        mine = [r for r in rows if r["algorithm"] == algorithm]
        med = lambda k: median_of(mine, k)  # noqa: E731
        lines.append(f"{algorithm:<12} {len(mine):>5} {fmt(med('best')):>10} "
                     f"{fmt(med('compute_to_best_s')):>14} {fmt(med('wall_to_best_s')):>11} "
                     f"{fmt(med('evaluations')):>6} {fmt(med('slot_use'), '.0%'):>8} "
                     f"{fmt(med('improvement_per_compute_h')):>14}")
    lines.append(reference_legend(rows))
    return "\n".join(lines)


def reference_legend(rows: list[dict[str, Any]]) -> str:
    """What the impr/compute-h column is measured against, in a line under the table."""
    ref = next((r for r in rows if r.get("reference") is not None), None)
    if ref is None:
        return "impr/compute-h: none (no successful trial to measure from)"
    what = ("the median of random's successful trials" if ref["reference_of"] == "random" else
            "the median of every successful trial in this comparison (no random run to measure "
            "from: it moves with the algorithms compared)")
    return (f"impr/compute-h: how far the best value got past {fmt(ref['reference'])}, {what}, "
            "per compute-hour the run spent")


def median_of(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def plot_comparison(results: list[tuple], out_dir: str) -> list[str]:
    """Best value against compute and against wall time: median over seeds, min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .report import save

    os.makedirs(out_dir, exist_ok=True)
    written = []
    for axis_name, label in (("compute", "compute spent (s)"), ("wall", "time since start (s)")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for algorithm in dict.fromkeys(a for a, *_ in results):
            curves = []
            for a, _, _, study, frame in results:
                if a != algorithm:
                    continue
                times, bests = best_curve(frame)
                xs = compute_at(frame, times) if axis_name == "compute" else times
                if len(xs):
                    curves.append((np.asarray(xs), np.asarray(bests)))
            if not curves:
                continue
            grid = np.linspace(0, max(c[0][-1] for c in curves), 200)
            stacked = np.array([step_at(x, y, grid) for x, y in curves])
            with warnings.catch_warnings():  # grid points before any run's first result
                warnings.simplefilter("ignore", RuntimeWarning)
                low, mid, high = (f(stacked, axis=0) for f in (np.nanmin, np.nanmedian, np.nanmax))
            line, = ax.plot(grid, mid, label=f"{algorithm} (median of {len(curves)})")
            if len(curves) > 1:
                ax.fill_between(grid, low, high, alpha=0.2, color=line.get_color())
        ax.set_xlabel(label)
        ax.set_ylabel("best value so far")
        ax.grid(alpha=0.3)
        ax.legend()
        written.append(save(fig, os.path.join(out_dir, f"best_vs_{axis_name}.png")))
    return written


def step_at(xs, ys, grid):
    """A best-so-far step curve read at ``grid`` points (NaN before its first value)."""
    import numpy as np

    idx = np.searchsorted(xs, grid, side="right") - 1
    out = np.where(idx >= 0, ys[np.clip(idx, 0, None)], np.nan)
    return out
