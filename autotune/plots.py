"""Each metric along each parameter: the plots a researcher reads a study by.

The x scale of a parameter follows how its grid was declared, never the values that happen
to have been tried, so every plot of one parameter (each metric's, the search path's) reads
the same way: a log range or a log-spaced grid on a log axis (symlog when the grid holds 0,
as the AT loss-weight grids do), strings and booleans as labelled categories. Marked on every
plot: the best trial (by the optimised metric), the search's own setting as ``status``
reports it, settings measured more than once (their runs joined by a line), and, in a
multi-fidelity search, each rung in its own colour.
"""
from __future__ import annotations

import functools
import json
import math
import os
import statistics
from typing import Any, Callable

from .history import History, TrialRecord
from .space import grid_index


def param_scale(spec: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """("linear" | "log" | "symlog", matplotlib keyword arguments) for a declared parameter."""
    if "low" in spec:
        return ("log", {}) if spec.get("log") else ("linear", {})
    values = spec.get("values") or []
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                             for v in values):
        return "linear", {}
    positive = sorted(v for v in values if v > 0)
    if any(v < 0 for v in values) or len(positive) < 3 or positive[-1] / positive[0] < 20:
        return "linear", {}
    logs = [math.log(v) for v in positive]
    if _spread(logs) >= _spread(positive):
        return "linear", {}
    if 0 in values:
        return "symlog", {"linthresh": positive[0]}
    return "log", {}


def _spread(points: list[float]) -> float:
    """How unevenly ``points`` are spaced: the coefficient of variation of their steps."""
    steps = [b - a for a, b in zip(points, points[1:])]
    mean = statistics.fmean(steps)
    return statistics.pstdev(steps) / mean if mean > 0 else math.inf


@functools.lru_cache(maxsize=64)
def _declared_grid(spec_json: str) -> tuple | None:
    from .errors import StudyError
    from .space import Range, parse_param

    try:
        param = parse_param("p", json.loads(spec_json), "space.p")
    except (StudyError, ValueError, TypeError):
        return None
    return param.grid() if isinstance(param, Range) else None


def declared_grid(spec: dict[str, Any]) -> tuple | None:
    """The grid a ``steps:`` range declares, computed as the search computes it; None for
    any other parameter (a listed grid is its own values, a range without steps has none)."""
    if "steps" not in spec:
        return None
    return _declared_grid(json.dumps(spec, sort_keys=True, default=str))


def on_grid(spec: dict[str, Any]) -> Callable[[Any], Any]:
    """The grid point a recorded value of this parameter stands for. A history written
    before ``steps:`` grid values were rounded (or by another machine's numpy) holds
    9.999999999999999e-06 where this version records 1e-05: the searchers take both for one
    point, and so must the plots, or one setting run twice shows as two settings run once.
    The grid is looked up once and each value's point remembered: the plots ask for every
    trial's every parameter, in every panel."""
    grid = declared_grid(spec)
    if grid is None:
        return lambda value: value
    memo: dict[str, Any] = {}

    def point(value: Any) -> Any:
        key = repr(value)  # not the value: 1, 1.0 and True are one dict key, not one point
        if key not in memo:
            i = grid_index(grid, value)
            memo[key] = value if i is None else grid[i]
        return memo[key]

    return point


def panel_rows(spec: dict[str, Any], recorded: list[Any]) -> tuple[list[Any], Any]:
    """A parameter's rows in the search-path plot, its declared grid (else the values tried,
    sorted), and the row of a recorded value (0 for one on none)."""
    values = spec.get("values") or declared_grid(spec) or sorted(
        set(recorded), key=lambda v: (0, v, "") if isinstance(v, (int, float)) else (1, 0, repr(v)))
    rows = {repr(v): i for i, v in enumerate(values)}
    snap = on_grid(spec)
    return list(values), lambda v: rows.get(repr(snap(v)))


def set_xlim(ax: Any, lo: float, hi: float) -> None:
    """The x limits, where they are finite: a grid out to 1.7e308 padded by 5% is infinite,
    which matplotlib refuses (then its own limits, from the points, are the view)."""
    if math.isfinite(lo) and math.isfinite(hi) and lo < hi:
        ax.set_xlim(lo, hi)


def categorical(spec: dict[str, Any]) -> list[Any] | None:
    """The declared values of a parameter plotted as categories (strings, booleans)."""
    values = spec.get("values")
    if values and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                          for v in values):
        return list(values)
    return None


def metric_names(history: History) -> list[str]:
    """Every metric some successful trial reported, the optimised one first."""
    names = sorted({m for r in history.trials.values() if r.status == "ok" for m in r.metrics}
                   - {"cost_s"})
    main = history.metric
    return ([main] if main in names else []) + [n for n in names if n != main]


def note(ax: Any, text: str) -> None:
    """A plot with nothing to show says why instead of showing empty axes."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def no_result_text(history: History) -> str:
    failed = sum(1 for r in history.trials.values() if r.status == "failed")
    return (f"no successful trial yet ({failed} failed: see summary.txt)" if failed
            else "no successful trial yet")


def plot_along(history: History, out_dir: str, setting: dict[str, Any] | None,
               save: Any) -> list[str]:
    """``<metric>_along_<parameter>.png`` for every metric and every free parameter, each
    named by its column in trajectory.csv: a metric ``epochs`` (the D-DBPN job reports one) is
    the column ``metric_epochs``, beside the trials' own ``epochs``, and so its plots are
    ``metric_epochs_along_<parameter>.png``; a parameter ``value`` is ``param_value``."""
    import matplotlib.pyplot as plt

    from .trajectory import labels

    identity = history.study.get("identity", {})
    space: dict[str, dict] = identity.get("space", {})
    free = [n for n, spec in space.items() if "fixed" not in spec]
    main = identity.get("metric", "value")
    ok = sorted((r for r in history.trials.values() if r.status == "ok"), key=lambda r: r.trial)
    best = history.best(identity.get("mode", "min"))
    rungs = sorted({r.fidelity for r in ok if r.fidelity is not None})
    title = history.study.get("name", "")
    param_cols, _, metric_cols = labels(history, list(space), main)
    # each trial's setting, snapped to its grid, once for every plot: the repeats' bars and
    # the status setting's mark group by it, and it does not depend on the plot
    setting_of = setting_keys(space, free)
    keys = {r.trial: setting_of(r.params) for r in ok}
    written = []
    older: set[str] = set()
    for metric in metric_names(history) or [main]:
        for name in free:
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
            recs = [r for r in ok if metric in r.metrics and name in r.params]
            if not recs:
                note(ax, no_result_text(history))
            else:
                draw_along(ax, recs, name, space, metric, best, setting, rungs, keys,
                           setting_of)
                ax.set_xlabel(name)
                ax.set_ylabel(metric)
            ax.set_title(f"{title}: {metric} along {name}", fontsize=10)
            file = plot_file(metric_cols.get(metric, metric), param_cols.get(name, name))
            written.append(save(fig, os.path.join(out_dir, file)))
            older.add(f"{metric}_along_{name}.png")
    for file in older - {os.path.basename(w) for w in written}:
        # an earlier version's name for one of these plots (epochs_along_lr.png for the
        # metric_epochs column): gone, or plots/ would show one metric twice, one stale
        if "/" not in file and os.path.isfile(os.path.join(out_dir, file)):
            os.remove(os.path.join(out_dir, file))
    return written


def plot_file(metric: str, param: str) -> str:
    """``<metric>_along_<param>.png`` as a file name of its own: a metric or parameter may
    be named ``val/acc`` (TensorBoard's style), which as it is would name a folder ``val``
    that is not there. ``/``, ``\\``, NUL and ``%`` itself are written as ``%2F``, ``%5C``,
    ``%00`` and ``%25`` (so ``val/acc`` and ``val_acc`` stay two files), and a name too long
    for a file name (255 bytes, with room for ``save``'s ``.tmp.png``) is cut, with a
    hash of the whole name, to fit."""
    return f"{_file_part(metric)}_along_{_file_part(param)}.png"


def _file_part(name: str, most: int = 110) -> str:
    import hashlib

    safe = "".join(f"%{ord(c):02X}" if c in "%/\\\0" else c for c in name)
    if len(safe.encode()) <= most:
        return safe
    digest = hashlib.sha1(safe.encode()).hexdigest()[:12]
    return safe.encode()[:most - len(digest) - 1].decode(errors="ignore") + "-" + digest


def setting_keys(space: dict[str, dict], free: list[str]) -> Callable[[dict], tuple]:
    """A setting's free parameters, each snapped to its grid, as one hashable key: two
    trials of one setting whose recorded floats differ in the last bit are one setting."""
    snaps = [(n, on_grid(space[n])) for n in free]

    def key(params: dict[str, Any]) -> tuple:
        return tuple(repr(snap(params.get(n))) for n, snap in snaps)

    return key


def draw_along(ax: Any, recs: list[TrialRecord], name: str, space: dict[str, dict],
               metric: str, best: TrialRecord | None, setting: dict[str, Any] | None,
               rungs: list[int], keys: dict[int, tuple],
               setting_of: Callable[[dict], tuple]) -> None:
    spec = space[name]
    labels = categorical(spec)
    pos = (lambda v: labels.index(v) if v in labels else -1) if labels else (lambda v: v)
    colours = {f: f"C{i % 10}" for i, f in enumerate(rungs)}
    full = rungs[-1] if rungs else None
    for fidelity in (rungs or [None]):
        mine = [r for r in recs if r.fidelity == fidelity or not rungs]
        label = (f"{metric} at {fidelity} epochs" if fidelity is not None else
                 f"{metric} of a trial")
        ax.plot([pos(r.params[name]) for r in mine], [r.metrics[metric] for r in mine], "o",
                ms=4, alpha=0.55, color=colours.get(fidelity, "C0"), label=label)
    repeated: dict[tuple, list[TrialRecord]] = {}
    for r in recs:
        if full is None or r.fidelity in (None, full):
            repeated.setdefault(keys[r.trial], []).append(r)
    first = True
    for runs in repeated.values():
        if len(runs) > 1:
            ys = [r.metrics[metric] for r in runs]
            x = pos(runs[0].params[name])
            ax.plot([x, x], [min(ys), max(ys)], "-", color="gray", lw=1,
                    label=f"a setting run {len(runs)}x (mean -)" if first else None)
            ax.plot([x], [statistics.fmean(ys)], "_", color="black", ms=10)
            first = False
    if best is not None and metric in best.metrics and name in best.params:
        ax.plot([pos(best.params[name])], [best.metrics[metric]], "*", ms=14, color="gold",
                markeredgecolor="black", label=f"best trial ({best.trial})")
    if setting:
        where = setting_of(setting)
        match = [r for r in recs if (full is None or r.fidelity in (None, full))
                 and keys[r.trial] == where]
        if match:
            ys = [r.metrics[metric] for r in match]
            ax.plot([pos(setting[name])], [statistics.fmean(ys)], "D", ms=8, mfc="none",
                    color="C3", mew=2, label="the search's setting (status)")
    if labels:
        ax.set_xticks(range(len(labels)), [str(v) for v in labels])
        ax.set_xlim(-0.5, len(labels) - 0.5)
    else:
        scale, kwargs = param_scale(spec)
        ax.set_xscale(scale, **kwargs)
        if "values" in spec:  # the whole declared grid in view, tried or not
            lo, hi = min(spec["values"]), max(spec["values"])
            if scale == "log":
                set_xlim(ax, lo / 1.5, hi * 1.5)
            elif scale == "symlog":
                set_xlim(ax, min(lo, 0.0), hi * 1.5)
            elif hi > lo:
                pad = (hi - lo) * 0.05
                set_xlim(ax, lo - pad, hi + pad)
        elif "low" in spec:
            set_xlim(ax, spec["low"], spec["high"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
