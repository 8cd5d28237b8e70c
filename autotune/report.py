"""The report: a text summary and PNG plots, all derived from the history (the plots read
its trials through the DataFrame of ``frame.trials_frame``)."""
from __future__ import annotations

import os
import time
from typing import Any

from .failures import failure_lines
from .plots import no_result_text, note, panel_rows, plot_along
from .history import History
from .analysis import best_curve, compute_at, concurrency, incumbents, stage_costs


def summary(history: History, running_driver: bool | None = None,
            directory: str | None = None, states: dict[int, str] | None = None,
            stages: dict[str, str] | None = None) -> str:
    """What ``status`` prints. ``states`` and ``stages``: the trials' and stages' states
    where the caller derived them already (``report`` writes them into trajectory.csv too;
    deriving them looks for local processes in /proc)."""
    study = history.study
    identity = study.get("identity", {})
    mode = identity.get("mode", "min")
    from .slurm_waits import job_ids_in_flight, queued_reasons, trial_wait_lines
    from .states import stage_states, trial_states

    if states is None:
        states = trial_states(history, running_driver, directory)
    if stages is None:
        stages = stage_states(history, running_driver, directory)
    counts = trial_counts(history, running_driver, directory, states)
    waits = queued_reasons(job_ids_in_flight(history, states))  # one squeue for all
    lines = [f"study {study.get('name', '?')}: {identity.get('algorithm', '?')} "
             f"({identity.get('mode', 'min')}imise {identity.get('metric', '?')})"]
    lines.append("trials: " + ", ".join(f"{n} {k}" for k, n in counts.items())
                 + f" ({len(history.trials)} in all)" if history.trials else "trials: none yet")
    lines += trial_wait_lines(history, states, waits)
    best = history.best(mode)
    if best is not None:
        lines.append(f"best {identity.get('metric', 'value')}: {best.value:.6g} at trial {best.trial}")
        space = identity.get("space", {})
        fixed = [k for k in best.params if "fixed" in space.get(k, {})]
        for k, v in best.params.items():
            if k not in fixed:
                lines.append(f"  {k} = {v}")
        if fixed:
            lines.append("  fixed: " + ", ".join(f"{k}={best.params[k]}" for k in fixed))
    else:
        lines += short_lines(history, mode, identity.get("metric", "value"))
    lines += searcher_lines(history, mode, identity.get("metric", "value"))
    lines += stage_lines(history, running_driver, directory, waits, stages)
    trials_s = sum(r.cost_s for r in history.trials.values())
    stages_s = history.stage_cost_s()
    split = f" (trials {trials_s:.1f} s + pretrain {stages_s:.1f} s)" if history.stages else ""
    lines.append(f"compute spent: {trials_s + stages_s:.1f} s{split};"
                 f" elapsed: {elapsed_text(history, running_driver, directory, states, stages)}")
    if running_driver is not None:
        lines.append("a driver is running" if running_driver else "no driver running")
    lines += failure_lines(history, directory)
    for w in history.brief_warnings():
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def short_lines(history: History, mode: str, metric: str) -> list[str]:
    """Where trials succeeded but none at full length (a multi-fidelity run stopped before a
    configuration reached max): say so, and which short result led, instead of no best."""
    short = [r for r in history.trials.values()
             if r.status == "ok" and r.value is not None and not history.counts_for_best(r)]
    if not short or history.full_fidelity is None:
        return []
    lead = min(short, key=lambda r: r.value if mode == "min" else -r.value)
    epochs = f"{lead.fidelity} epoch{'s' if lead.fidelity != 1 else ''}"
    return [f"best {metric}: none yet, no trial ran the full {history.full_fidelity} epochs "
            f"(the best of {len(short)} shorter: {lead.value:.6g} at trial {lead.trial}, {epochs})"]


def trial_counts(history: History, running_driver: bool | None,
                 directory: str | None, states: dict[int, str] | None = None) -> dict[str, int]:
    """Trials by state (``states.trial_states``, as every view says it), a state that a
    trial left in flight without a driver has with what the next ``run`` does with it.
    ``states``: those already derived (deriving them looks for local processes)."""
    from .states import ALONE, trial_states

    if states is None:
        states = trial_states(history, running_driver, directory)
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    order = ["ok", "failed", "cancelled", "running", "pending", *ALONE]
    return {(f"{k} ({ALONE[k]})" if k in ALONE else k): counts[k]
            for k in sorted(counts, key=lambda k: order.index(k) if k in order else len(order))}


def stage_lines(history: History, running_driver: bool | None = None,
                directory: str | None = None, waits: dict[str, str] | None = None,
                stages: dict[str, str] | None = None) -> list[str]:
    """The pretrain on a line of its own: whether it is ready, its job, what it cost. With no
    driver, one recorded as running says what became of it (``states.stage_state``).
    ``waits``: squeue's reasons by job id where already asked (``slurm_waits``); ``stages``:
    the stages' states where already derived (``states.stage_states``)."""
    from .slurm_waits import queued_reasons, stuck_warning
    from .states import STAGE_ALONE, stage_states

    if stages is None:
        stages = stage_states(history, running_driver, directory)
    out = []
    for st in history.stages.values():
        state = stages[st.name]
        reason = ""
        if st.status == "cached":
            text = f"{st.name}: cached (built earlier or by another study; cost 0 here)"
        else:
            if state in ("running", "running-alone"):
                reason = (queued_reasons([st.job_id]) if waits is None
                          else waits).get(st.job_id, "")
            text = f"{st.name}: {f'pending ({reason})' if reason and state == 'running' else state}"
            if state in STAGE_ALONE:
                text += f" ({STAGE_ALONE[state]}{f'; pending ({reason})' if reason else ''})"
            if st.job_id:
                text += f", job {st.job_id}"
            if st.attempt:
                text += f", attempt {st.attempt + 1}"
            if st.end_s is not None and st.start_s is not None:
                text += f", {st.start_s:.1f}-{st.end_s:.1f} s"
            if st.status == "running":  # no end recorded: its cost is not known yet
                text += running_stage_text(st, state)
            else:
                text += f", cost {st.cost_s:.1f} s"
        if st.error:
            text += f"; error: {st.error}"
        out.append(text)
        warning = stuck_warning(st.name, [st.job_id], reason) if reason else None
        if st.status != "cached" and warning:
            out.append(f"warning: {warning}")
    return out


def running_stage_text(st: Any, state: str) -> str:
    """What ``status`` says of a stage's cost while no end of its attempt is recorded: it
    said ``cost 0.0 s`` of a pretrain a killed driver left, hours into its run. When it
    started (study seconds, as an ended one's span), that its cost is not known (never, for
    one interrupted), and what earlier attempts cost."""
    since = "" if st.start_s is None else f" at {st.start_s:.1f} s"
    text = f", started{since}"
    text += ("; cost unknown (its end was never recorded)" if state == "interrupted"
             else "; cost not known until its end is recorded")
    if st.cost_s:
        text += f" (earlier attempts cost {st.cost_s:.1f} s)"
    return text


def searcher_view(history: History) -> dict[str, Any]:
    """The searcher's own account, rebuilt from the history (see ``account``); it never
    imports the study's objective."""
    from .account import searcher_account

    return searcher_account(history)


def searcher_lines(history: History, mode: str, metric: str) -> list[str]:
    """The axis search's chosen setting with its mean and spread over repeated runs: under
    noise it is the best mean among settings measured twice, not the luckiest single run."""
    view = searcher_view(history)
    if "base" not in view or not view.get("base_repeats"):
        return []
    sign = -1.0 if mode == "max" else 1.0
    runs = view["base_repeats"]
    text = f"the search's setting: {metric} {sign * view['base_mean']:.6g}"
    if runs > 1:
        text += f" mean of {runs} runs, spread (sd) {view['base_spread']:.3g}"
    if view.get("noisy"):
        text += f"; noise sd {view['noise_sigma']:.3g} (pooled over repeated settings)"
    out = [text]
    space = history.study.get("identity", {}).get("space", {})
    out += [f"  {k} = {v}" for k, v in view["base"].items() if "fixed" not in space.get(k, {})]
    if "screening" in view:
        sc = view["screening"]
        out.append(f"screening: rungs {sc['rungs']}, {sc['screens']} short runs, "
                   f"{sum(sc['screened_out_per_rung'])} points screened out")
    return out


def elapsed(history: History, running_driver: bool | None) -> float:
    """Study seconds so far: up to now while a real-clock driver runs, else the last event."""
    t0 = history.study.get("t0")
    if running_driver and t0 is not None and "simulated" not in str(history.study.get("config", {}).get("executor", "")):
        return max(history.last_t, time.time() - float(t0))
    return history.last_t


def elapsed_text(history: History, running_driver: bool | None, directory: str | None,
                 states: dict[int, str], stages: dict[str, str]) -> str:
    """``elapsed`` in words. With no driver, the history ends at its last record, which for a
    driver killed just after submitting is ~0 s while its trials ran on for minutes: the
    trials' own latest sign of life (``lifesigns``) is taken instead, saying what it is."""
    seconds, meaning = elapsed_to(history, running_driver, directory, states, stages)
    return f"{seconds:.1f} s" + (f" ({meaning})" if meaning else "")


def elapsed_to(history: History, running_driver: bool | None, directory: str | None,
               states: dict[int, str], stages: dict[str, str]) -> tuple[float, str]:
    """``elapsed`` in study seconds, with what the figure runs to where no driver runs
    (``lifesigns.MEANING``; "" where it is the history's or a running driver's)."""
    if running_driver is False:
        from .lifesigns import MEANING, last_sign

        sign = last_sign(history, states, stages, directory)
        if sign is not None:
            return sign[0], MEANING[sign[1]]
    return elapsed(history, running_driver), ""


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
