"""The report's PNG plots, all derived from the history (they read its trials through the
DataFrame of ``frame.trials_frame``); its text is summary.py's."""
from __future__ import annotations

import os
from typing import Any

from .plots import no_result_text, note, panel_rows, plot_along
from .history import History
from .analysis import best_curve, compute_at, concurrency, incumbents, stage_costs
from .summary import searcher_view


def plot_all(history: History, out_dir: str, states: dict[int, str] | None = None,
             now: float | None = None) -> list[str]:
    """Best so far against time and against compute; the metric along each parameter.
    matplotlib's overflow warnings (values out to 1.7e308) are not the user's to read: the
    plot that cannot be drawn says so itself (``save``). ``states`` (``states.trial_states``)
    and ``now`` (study seconds, ``elapsed_to``): the concurrency plot counts the trials that
    still run up to now, not only those ended (a report of a running study showed none)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _plot_all(history, out_dir, states, now)


def _plot_all(history: History, out_dir: str, states: dict[int, str] | None = None,
              now: float | None = None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .frame import trials_frame

    os.makedirs(out_dir, exist_ok=True)
    identity = history.study.get("identity", {})
    metric = identity.get("metric", "value")
    df = trials_frame(history)
    written = []
    times, bests = best_curve(df)
    compute = compute_at(df, times, stage_costs(history))
    name_of_study = history.study.get("name", "")
    for xs, label, name in ((times, "time since start (s)", "best_vs_time.png"),
                            (compute, "compute spent (s)", "best_vs_compute.png")):
        fig, ax = plt.subplots(figsize=(6, 4))
        if len(xs):
            ax.step(xs, bests, where="post")
            ax.plot(xs, bests, ".", ms=3)
            ax.set_xlabel(label)
            ax.set_ylabel(f"best {metric} so far")
            ax.grid(alpha=0.3)
        else:
            note(ax, no_result_text(history))
        if mark_stages(ax, history, "compute" if name == "best_vs_compute.png" else "time"):
            ax.legend(loc="upper right", fontsize=8)
        ax.set_title(f"{name_of_study}: best {metric} against {label.split(' (')[0]}",
                     fontsize=10)
        written.append(save(fig, os.path.join(out_dir, name)))
    written.append(plot_concurrency(trials_frame(history, states) if states else df,
                                    os.path.join(out_dir, "concurrency.png"), history,
                                    now if states else None))
    if any("base" in r.info or "level" in r.info for r in history.trials.values()):
        written.append(plot_search_path(history, os.path.join(out_dir, "search_path.png"), df))
    written += plot_along(history, out_dir, searcher_view(history).get("base"), save)
    return written


def plot_concurrency(df: Any, path: str, history: History | None = None,
                     now: float | None = None) -> str:
    """Trials running over time: idle slots show as the gap below the ceiling; the pretrain's
    own job shaded before them. ``now``: the trials that still run count up to it."""
    import matplotlib.pyplot as plt

    times, running = concurrency(df, now)
    fig, ax = plt.subplots(figsize=(6, 3))
    if times:
        ax.step(times, running, where="post")
        mean = busy_mean(times, running)
        ax.axhline(mean, ls="--", lw=1, color="gray", label=f"mean {mean:.1f}")
    if (history is not None and mark_stages(ax, history, "time")) or times:
        ax.legend(loc="lower right")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("trials running")
    ax.grid(alpha=0.3)
    if history is not None:
        ax.set_title(f"{history.study.get('name', '')}: trials running over time", fontsize=10)
    return save(fig, path)


def mark_stages(ax: Any, history: History, axis: str) -> bool:
    """Shade the pretrain: its span in time, or the compute it spent (before any trial's)."""
    marked = False
    for st in history.stages.values():
        if st.status == "cached" or st.end_s is None:
            continue
        lo, hi = (st.start_s or 0.0, st.end_s) if axis == "time" else (0.0, st.cost_s)
        if hi > lo:
            ax.axvspan(lo, hi, color="C1", alpha=0.15, lw=0,
                       label=f"{st.name} ({st.cost_s:.0f} s, {st.status})")
            marked = True
    return marked


def base_path(history: History) -> list[int]:
    """The axis search's bases in the order they were taken (trial ids)."""
    path: list[int] = []
    for rec in sorted(history.trials.values(), key=lambda r: r.trial):
        base = rec.info.get("base")
        if base is not None and (not path or path[-1] != base) and base in history.trials:
            path.append(base)
    return path


def plot_search_path(history: History, path: str, df: Any) -> str:
    """The axis search on its grid: every point tried along each parameter over time, the
    base's path through the grid (a jump in a panel is a move along that axis), and the
    direction level in use."""
    import matplotlib.pyplot as plt

    identity = history.study.get("identity", {})
    space = identity.get("space", {})
    names = [n for n, spec in space.items() if "fixed" not in spec]
    bases = base_path(history)
    setting = searcher_view(history).get("base")
    best_trials = incumbents(df)["trial"].tolist()
    tried = [r for r in history.trials.values() if r.start_s is not None]
    fig, axes = plt.subplots(len(names) + 1, 1, figsize=(8, 1.6 * (len(names) + 1) + 0.6),
                             sharex=True)
    for ax, name in zip(axes, names):
        values, row = panel_rows(space[name], [r.params.get(name) for r in tried])
        ok = [r for r in tried if row(r.params.get(name)) is not None]
        ax.scatter([r.start_s for r in ok], [row(r.params[name]) for r in ok], s=6,
                   c="lightgray", label="tried")
        end = max((r.end_s or r.start_s for r in tried), default=0.0)
        for trials, style in ((bases, dict(color="C3", lw=2, label="base")),
                              (best_trials, dict(color="C0", lw=1, ls="--", label="best so far"))):
            if trials:
                recs = [history.trials[t] for t in trials]
                xs = [r.end_s or r.start_s for r in recs] + [end]
                ys = [row(r.params.get(name)) or 0 for r in recs]
                ax.step(xs, ys + ys[-1:], where="post", **style)
        if setting and name in setting:  # where the path ends: what ``status`` reports
            ax.plot([end], [row(setting[name]) or 0], "D", ms=8, mfc="none",
                    color="C3", mew=2, label="the search's setting (status)")
        step = max(1, len(values) // 6)
        ax.set_yticks(range(0, len(values), step), [f"{v:g}" if isinstance(v, (int, float))
                                                   else str(v) for v in values[::step]])
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=7)
    levels = [(r.start_s, r.info["level"]) for r in tried if isinstance(r.info.get("level"), int)]
    ax = axes[-1]
    if levels:
        levels.sort()
        highest, xs, ys = 0, [], []
        for t, lv in levels:
            highest = max(highest, lv)
            xs.append(t)
            ys.append(highest)
        ax.step(xs, ys, where="post", color="C0")
    ax.set_ylabel("level")
    ax.set_xlabel("time since start (s)")
    ax.grid(alpha=0.3)
    reported = ", ".join(f"{n}={setting[n]}" for n in names if n in (setting or {}))
    fig.suptitle(f"{history.study.get('name', '')}: {len(bases)} bases, "
                 f"{max(0, len(bases) - 1)} moves"
                 + (f"; the search's setting: {reported}" if reported else ""), fontsize=10)
    return save(fig, path)


def busy_mean(times: list[float], running: list[int]) -> float:
    span = times[-1] - times[0]
    if span <= 0:
        return float(max(running, default=0))
    return sum(r * (t1 - t0) for t0, t1, r in zip(times, times[1:], running)) / span


def save(fig: Any, path: str) -> str:
    """Write ``fig`` to ``path`` whole. A figure matplotlib cannot lay out (axes out to
    1.7e308 overflow its tick arithmetic: a grid or a metric near the largest float) is
    replaced by one that says so, under the same title: one plot lost, not the report."""
    import warnings

    import matplotlib.pyplot as plt

    from .trajectory import write_whole

    figures = [fig]

    def fill(tmp: str) -> None:
        try:
            with warnings.catch_warnings():
                # a label too long for the figure ("Tight layout not applied"): the plot is
                # drawn all the same, and the warning is matplotlib's, not the user's to act on
                warnings.simplefilter("ignore", UserWarning)
                fig.tight_layout()
            fig.savefig(tmp, dpi=100, format="png")
        except (OverflowError, ValueError) as exc:
            title = fig.axes[0].get_title() if fig.axes else ""
            figures.append(plt.figure(figsize=(6, 4)))
            ax = figures[-1].add_subplot()
            note(ax, f"cannot be drawn: its values are too large for the plot's axes ({exc})")
            ax.set_title(title, fontsize=10)
            figures[-1].savefig(tmp, dpi=100, format="png")

    try:
        write_whole(path, fill)  # a full disk part-way leaves no half-written PNG
    finally:
        for each in figures:
            plt.close(each)
    return path
