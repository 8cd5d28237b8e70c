"""trajectory.csv: one row per trial, derived from the history and rewritten atomically.

A study with a pretrain stage starts with one row for it (``trial`` = ``pretrain``, ``round`` =
``stage``): its times, cost and job id, so that no trial's row carries its cost.
"""
from __future__ import annotations

import bisect
import contextlib
import csv
import json
import os
from typing import Any, Callable

from .history import History, StageRecord, TrialRecord
from .study import Study

LEAD = ["trial", "status", "algorithm", "round"]
TAIL = ["value", "best", "start_s", "end_s", "cost_s", "job_id", "attempts", "error"]
#: names the views give columns of their own: the searcher's grid ``index`` (the CSV splits
#: it into index_<parameter>) and the DataFrame's ``counts``. A parameter, metric or other
#: note so named is prefixed like one clashing with a fixed column, or the view would
#: overwrite it (a parameter ``counts`` became the frame's True/False) or drop it
RESERVED = ("index", "counts")


def best_so_far(history: History, mode: str) -> tuple[list[float], list[float]]:
    """End times of the trials that count for best (successful, full length), in order, with
    the best value reached by each: what the frame's ``best`` column is read from. Here, not
    in analysis, so that a driver writing trajectory.csv never imports pandas (a third of a
    second at every start of ``run``)."""
    done = sorted((r.end_s, r.value) for r in history.trials.values()
                  if history.counts_for_best(r) and r.end_s is not None)
    times, bests, best = [], [], None
    for t, v in done:
        if best is None or (v < best if mode == "min" else v > best):
            best = v
        times.append(t)
        bests.append(best)
    return times, bests


def rows(history: History, study_name: str, algorithm: str, param_names: list[str], mode: str,
         metric: str | None = None, states: dict[int, str] | None = None,
         named: tuple[dict[str, str], dict[str, str], dict[str, str]] | None = None
         ) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and one row per trial; ``metric`` (the optimised one) is a column even
    before any trial reports it, so code that reads it works from the first trial on.
    ``states``: each trial's state (``states.trial_states``); without it, as a driver holding
    the study sees them (running, pending). ``named``: ``labels``, where already taken."""
    params, info, label = named or labels(history, param_names, metric)
    columns = (LEAD + list(params.values()) + ["epochs", "parent"] + list(info.values())
               + list(label.values()) + TAIL)
    times, bests = best_so_far(history, mode)
    out = []
    for rec in sorted(history.trials.values(), key=lambda r: r.trial):
        epochs = rec.fidelity if rec.fidelity is not None else rec.params.get("epochs")
        status = states.get(rec.trial, rec.status) if states else rec.status
        end_s, cost_s = ended_figures(rec)
        row = {"trial": rec.trial, "status": status, "algorithm": algorithm,
               "round": rec.info.get("round", ""), "epochs": epochs,
               "parent": rec.parent, "value": rec.value, "start_s": rnd(rec.start_s),
               "end_s": rnd(end_s), "cost_s": rnd(cost_s), "job_id": rec.job_id,
               "attempts": rec.starts,
               "error": rec.error or ""}
        row.update({col: rec.params.get(p) for p, col in params.items()})
        row.update({col: cell(rec.info.get(k)) for k, col in info.items()})
        row.update({col: rec.metrics[m] if m in rec.metrics else cell(rec.extra.get(m))
                    for m, col in label.items()})
        row["best"] = best_at(rec, times, bests) if end_s is not None else None
        out.append(row)
    return columns, out


def ended_figures(rec: TrialRecord) -> tuple[float | None, float | None]:
    """A trial's ``end_s`` and ``cost_s`` as the views show them: None (an empty cell, NaN in
    the DataFrame) while its latest attempt has no recorded end -- it runs (or a driver left
    it in flight: running-alone, ended-alone, interrupted) or never started. The record's own
    0.0 (or an earlier attempt's end and cost, for a trial run again) read like a trial that
    ended at no cost; its cost is known only once its end is recorded (what ``status`` says of
    a pretrain so left). The compute the earlier attempts spent counts in the study's total
    all the same (``History.spent_s``)."""
    if rec.status == "running" or (not rec.done and rec.end_s is None):
        return None, None  # an ended trial's (ok, failed, cancelled) are always its own
    return rec.end_s, rec.cost_s


def labels(history: History, param_names: list[str], metric: str | None
           ) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Each parameter's, searcher's note's and metric's column name: a name clashing with
    a fixed column (or one named before it) is prefixed ``param_``, ``info_`` or
    ``metric_``."""
    fixed_cols = LEAD + ["epochs", "parent"] + TAIL
    # a parameter named "epochs" (a fixed training length) is the epochs column itself;
    # any other name clashing with a fixed column is prefixed
    params = {p: (f"param_{p}" if p in fixed_cols or p in RESERVED else p)
              for p in param_names if p != "epochs"}
    # an info key starting with "_" is a searcher's own state (e.g. a sampler's), kept in the
    # history for resuming but no column
    info_names = sorted({k for r in history.trials.values() for k in r.info
                         if not k.startswith("_")} - {"round"})
    info = {k: (f"info_{k}" if k in fixed_cols or k in params.values()
                or (k in RESERVED and k != "index") else k) for k in info_names}
    taken = set(fixed_cols) | set(params.values()) | set(info.values()) | set(RESERVED)
    reported = {m for r in history.trials.values() for m in (*r.metrics, *r.extra)}
    metric_names = sorted((reported | ({metric} if metric else set())) - {"cost_s"})
    # a result key "" would be a column without a name (pandas reads it back as "Unnamed: 9")
    label = {m: (f"metric_{m}" if m in taken or not m else m) for m in metric_names}
    return params, info, label


def standing(named: tuple[dict[str, str], dict[str, str], dict[str, str]],
             metric: str | None, epochs: bool) -> set[str]:
    """The columns trajectory.csv keeps even while no trial fills them: the parameters, the
    optimised metric and (``epochs``: a fidelity or a fixed training length) the epochs, so
    that its columns before the first trial (or while every trial failed) are those it has
    after, and a reader of the file finds them from the start. ``named``: ``labels``."""
    params, _, label = named
    kept = set(params.values()) | ({label[metric]} if metric else set())
    return kept | ({"epochs"} if epochs else set())


def stage_rows(history: History, algorithm: str, states: dict[str, str] | None = None
               ) -> list[dict[str, Any]]:
    """The rows that head trajectory.csv for the study's stages (not in the trials frame);
    ``states``: each stage's state by name (``states.stage_states``), else as recorded."""
    return [stage_row(st, algorithm, (states or {}).get(st.name, st.status))
            for st in history.stages.values()]


def stage_row(st: StageRecord, algorithm: str, state: str) -> dict[str, Any]:
    """A stage (the pretrain) is a row of its own, named in the trial column: its cost is
    the study's, not any trial's; empty while no end of its attempt is recorded, as a
    trial's (``ended_figures``)."""
    running = st.status == "running"  # no end recorded: its cost is not known yet (status)
    return {"trial": st.name, "status": state, "algorithm": algorithm, "round": "stage",
            "start_s": rnd(st.start_s), "end_s": rnd(st.end_s),
            "cost_s": None if running else rnd(st.cost_s),
            "job_id": st.job_id, "error": st.error or "",
            "attempts": 0 if st.status == "cached" else st.attempt + 1}


def best_at(rec: TrialRecord, times: list[float], bests: list[float]) -> float | None:
    if rec.end_s is None or not times:
        return None
    i = bisect.bisect_right(times, rec.end_s)
    return bests[i - 1] if i else None


def rnd(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def write_trajectory(history: History, study: Study, path: str,
                     states: dict[int, str] | None = None,
                     stages: dict[str, str] | None = None) -> None:
    """trajectory.csv of a study being run; ``states`` and ``stages``: the trials' and the
    stages' states (``states.trial_states``, ``states.stage_states``), else as a driver
    holding the study sees them."""
    write_csv_atomic(path, *csv_table(history, study.name, study.algorithm, study.space.names,
                                      [p.name for p in study.space.free], study.objective.mode,
                                      study.objective.metric, study.search_options, states,
                                      stages))


def table(history: History, states: dict[int, str] | None = None,
          stages: dict[str, str] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """trajectory.csv's columns and rows (the pretrain's row first) from the history alone,
    without the study file: what ``report`` writes and ``report.html``'s table shows, so the
    two never differ."""
    identity = history.study.get("identity", {})
    space = identity.get("space", {})
    return csv_table(history, history.study.get("name", ""), identity.get("algorithm", ""),
                     list(space), [n for n, spec in space.items() if "fixed" not in spec],
                     identity.get("mode", "min"), identity.get("metric"),
                     identity.get("search_options") or {}, states, stages)


def csv_table(history: History, name: str, algorithm: str, param_names: list[str],
              free: list[str], mode: str, metric: str | None, search_options: dict,
              states: dict[int, str] | None, stages: dict[str, str] | None
              ) -> tuple[list[str], list[dict[str, Any]]]:
    """trajectory.csv's columns and rows, the pretrain's row first (``write_trajectory``
    from the study, ``table`` from its record)."""
    named = labels(history, param_names, metric)
    columns, data = rows(history, name, algorithm, param_names, mode, metric, states, named)
    epochs = "epochs" in param_names or "fidelity" in search_options
    return csv_view(columns, stage_rows(history, algorithm, stages) + data, free,
                    standing(named, metric, epochs))


#: columns every trajectory.csv has, filled or not; any other column left empty by every
#: trial (``round`` for a search without rounds, ``parent`` without promotions) is left out
ALWAYS = {"trial", "status", "algorithm", "value", "best", "start_s", "end_s", "cost_s",
          "attempts", "error"}


def csv_view(columns: list[str], data: list[dict[str, Any]], free: list[str],
             keep: set[str] = frozenset()) -> tuple[list[str], list[dict[str, Any]]]:
    """The rows as the CSV shows them: the axis search's grid ``index`` (a JSON list, one
    entry per free parameter) split into ``index_<parameter>`` columns, and the columns no
    trial fills left out, but for those in ``keep`` (``standing``)."""
    if "index" in columns and free:
        split = [f"index_{p}" for p in free]
        at = columns.index("index")
        columns = columns[:at] + [c for c in split if c not in columns] + columns[at + 1:]
        for row in data:
            index = row.pop("index", None)
            values = json.loads(index) if isinstance(index, str) and index[:1] == "[" else None
            if isinstance(values, list) and len(values) == len(free):
                row.update(zip(split, values))
    kept = [c for c in columns
            if c in ALWAYS or c in keep or any(row.get(c) not in (None, "") for row in data)]
    return kept, data


def write_csv_atomic(path: str, columns: list[str], data: list[dict[str, Any]]) -> None:
    def fill(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(data)

    write_whole(path, fill)


def write_whole(path: str, fill: Callable[[str], None]) -> None:
    """Write ``path`` whole or not at all: ``fill`` writes a temporary file beside it, which
    then replaces it. A failure part-way (a full disk, Ctrl-C) removes the temporary file and
    leaves ``path`` as it was; an OSError that names no file (a write's ENOSPC) or the
    temporary one is made to name ``path``, the file the user knows."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        fill(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            exc.filename = path
        raise
