"""The trials as a pandas DataFrame: the analysis layer of the Python API, reports and benchmarks.

One row per trial with the columns of trajectory.csv (the same ``trajectory.rows``, so the CSV
and the frame never disagree), typed: parameters by their declared kind, nullable integers
for round, epochs and parent, floats for metrics and times, strings for text, the searcher's
list-valued notes (the axis search's ``index``) as lists, times to the microsecond the history
holds (the CSV rounds them to milliseconds). One column more than the CSV:
``counts``, whether the trial counts for best (successful and at full length; a short
screening run does not). The optimised metric, round, epochs and parent are always columns
(NaN until filled), where the CSV leaves out a column no trial fills; the pretrain's row of
the CSV is not a trial's. Reading it never imports the study's objective.
"""
from __future__ import annotations

from typing import Any

import json

import pandas as pd

from .history import History
from .trajectory import ended_figures, rows

FLOATS = ("value", "best", "start_s", "end_s", "cost_s")
INTS = ("round", "epochs", "parent")
STRINGS = ("status", "algorithm", "job_id", "error")


def trials_frame(history: History, states: dict[int, str] | None = None) -> pd.DataFrame:
    """Every trial of the history, typed (see the module's docstring); ``states`` as for
    ``trajectory.rows`` (``states.trial_states``)."""
    study = history.study
    identity = study.get("identity", {})
    space: dict[str, dict] = identity.get("space", {})
    columns, data = rows(history, study.get("name", ""), identity.get("algorithm", ""),
                         list(space), identity.get("mode", "min"), identity.get("metric"),
                         states=states)
    df = pd.DataFrame(data, columns=columns)
    metric_cols = [c for c in columns if c not in set(_fixed_columns(columns, space))]
    df["trial"] = df["trial"].astype("int64")
    df["attempts"] = df["attempts"].astype("int64")
    for col in STRINGS:
        df[col] = df[col].fillna("").astype("string")
    for col in INTS:
        df[col] = _integers(df[col])
    for col in FLOATS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    records = [history.trials[t] for t in df["trial"]]
    # unrounded (the CSV shows milliseconds), NaN where the CSV's cell is empty (a trial
    # whose latest attempt has no recorded end: ``trajectory.ended_figures``)
    ended = [ended_figures(r) for r in records]
    df["start_s"] = pd.array([r.start_s for r in records], dtype="float64")
    df["end_s"] = pd.array([e for e, _ in ended], dtype="float64")
    df["cost_s"] = pd.array([c for _, c in ended], dtype="float64")
    for name, spec in space.items():
        col = _param_column(name, columns)
        if col is not None:
            df[col] = _typed_param(df[col], spec)
    for col in metric_cols:  # metrics and the searcher's info columns
        df[col] = _numbers_or_as_is(df[col])
    counts = {r.trial for r in history.trials.values() if history.counts_for_best(r)}
    df["counts"] = df["trial"].isin(counts).astype("bool")
    return df


def param_column(name: str, columns) -> str | None:
    """The frame's column for parameter ``name`` (prefixed where it clashes with a fixed one)."""
    return _param_column(name, list(columns)) if name != "epochs" else "epochs"


def _param_column(name: str, columns: list[str]) -> str | None:
    if name == "epochs":
        return None  # a fixed training length is the epochs column itself
    for col in (f"param_{name}", name):
        if col in columns:
            return col
    return None


def _fixed_columns(columns: list[str], space: dict) -> list[str]:
    params = [_param_column(n, columns) for n in space]
    return ["trial", "attempts", *STRINGS, *INTS, *FLOATS, *(p for p in params if p)]


def _integers(col: pd.Series) -> pd.Series:
    nums = pd.to_numeric(col.replace("", None), errors="coerce")
    if nums.dropna().apply(lambda v: float(v).is_integer()).all():
        return nums.astype("Int64")
    return nums.astype("float64")


def _typed_param(col: pd.Series, spec: dict[str, Any]) -> pd.Series:
    """A parameter's column by its declared kind: a range's int or float, a list's values."""
    if "low" in spec:
        return pd.to_numeric(col, errors="coerce").astype("Int64" if spec.get("int") else "float64")
    declared = spec.get("values") if "values" in spec else [spec.get("fixed")]
    if all(isinstance(v, bool) for v in declared):
        return col.astype("boolean")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in declared):
        return pd.to_numeric(col, errors="coerce").astype("Int64")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in declared):
        return pd.to_numeric(col, errors="coerce").astype("float64")
    if all(isinstance(v, str) for v in declared):
        return col.astype("string")
    return col  # mixed kinds (say None and numbers): kept as Python objects


def _numbers_or_as_is(col: pd.Series) -> pd.Series:
    given = col.dropna()
    if len(given) and all(isinstance(v, bool) for v in given):  # a result's flag
        return col.astype("boolean")
    nums = pd.to_numeric(col, errors="coerce")
    if nums.notna().sum() == col.notna().sum():
        return nums.astype("float64")
    return col.map(_decoded)


def _decoded(value: Any) -> Any:
    """A list or mapping the CSV holds as JSON text, back as itself."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
