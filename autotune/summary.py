"""What ``status`` prints and ``report`` writes as summary.txt: the study's trials by state,
its best, the search's own setting, the pretrain, compute and elapsed time, all read from the
history. Apart from the plots (report.py) so that ``status``, run on a login node while a
search goes on, imports neither pandas nor matplotlib."""
from __future__ import annotations

import time
from typing import Any, Callable

from .failures import failure_lines
from .history import History


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
    space = history.study.get("identity", {}).get("space", {})
    return setting_lines(searcher_view(history), mode, metric,
                         lambda k: "fixed" not in space.get(k, {}))


def setting_lines(view: dict[str, Any], mode: str, metric: str,
                  shown: Callable[[str], bool]) -> list[str]:
    """``searcher_lines`` from a searcher's ``summary()`` (the live one at the end of ``run``,
    a restored one for ``status``); ``shown``: which parameters to list (not the fixed)."""
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
    out += [f"  {k} = {v}" for k, v in view["base"].items() if shown(k)]
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
