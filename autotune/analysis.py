"""Figures derived from a study's trials: best-so-far traces, time and compute to the best,
slot use.

They read the trials DataFrame (``frame.trials_frame``: one row per trial, typed), shared by
the report, ``compare``, the benchmarks and the Python API, so every table measures the same
way. The frame's own ``best`` column comes from ``trajectory.best_so_far``, which reads the
history.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .history import FINAL, History


def counted(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that count for best (see ``frame``'s ``counts``), in the order they ended."""
    return df[df["counts"] & df["end_s"].notna()].sort_values(["end_s", "trial"], kind="stable")


def best_curve(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The best-so-far step curve: end times of the counted trials and the best by each."""
    rows = counted(df)
    return rows["end_s"].to_numpy(float), rows["best"].to_numpy(float)


def incumbents(df: pd.DataFrame) -> pd.DataFrame:
    """The trials that were the best so far when they ended, in the order they ended."""
    rows = counted(df)
    improved = rows["best"].ne(rows["best"].shift())  # the best moved at this row's end
    return rows[improved & (rows["value"] == rows["best"])].drop_duplicates("best")


def compute_at(df: pd.DataFrame, times, stages: Sequence[tuple[float, float]] = ()
               ) -> np.ndarray:
    """Compute spent (summed costs of every attempt ended) by each of ``times`` (sorted);
    ``stages``: (end_s, cost_s) of the study's stages (the pretrain), counted once each."""
    ended = df[df["end_s"].notna()]
    pairs = sorted(list(zip(ended["end_s"].to_numpy(float),
                            ended["cost_s"].fillna(0.0).to_numpy(float))) + list(stages))
    ends = np.array([e for e, _ in pairs], float)
    spent = np.concatenate([[0.0], np.cumsum([c for _, c in pairs])])
    return spent[np.searchsorted(ends, np.asarray(times, float), side="right")]


#: the states of a trial started and not ended that still runs (``states.trial_states``)
RUNNING = ("running", "running-alone")


def concurrency(df: pd.DataFrame, now: float | None = None) -> tuple[list[float], list[int]]:
    """Trials running over time, as a step function (times, running from that time on).
    ``now`` (study seconds): the trials that still run (``status`` ``running`` or
    ``running-alone``, as ``trials_frame(history, states)`` says it) count from their start
    on, the curve held to ``now``; without it only the ended ones count, as in a finished
    study."""
    ran = df[df["start_s"].notna() & df["end_s"].notna()]
    still = (df[df["start_s"].notna() & df["end_s"].isna() & df["status"].isin(RUNNING)]
             if now is not None else df.iloc[:0])
    steps = pd.concat([pd.DataFrame({"t": ran["start_s"], "d": 1}),
                       pd.DataFrame({"t": ran["end_s"], "d": -1}),
                       pd.DataFrame({"t": still["start_s"], "d": 1})]).sort_values(["t", "d"])
    if steps.empty:
        return [], []
    running = steps.groupby("t", sort=True)["d"].sum().cumsum()
    times, counts = running.index.tolist(), [int(v) for v in running.to_numpy()]
    if len(still) and now is not None and now > times[-1]:
        times.append(float(now))  # those running now, up to now
        counts.append(counts[-1])
    return times, counts


@dataclass
class RunFigures:
    best: float | None
    evaluations: int          # finished trials (each rung of a multi-fidelity run counts)
    evaluations_to_best: int
    wall_s: float             # from the first start to the last end
    wall_to_best_s: float | None
    compute_s: float
    compute_to_best_s: float | None
    slot_use: float           # busy worker-seconds / (workers x wall)

    def as_row(self) -> dict:
        return dict(self.__dict__)


def stage_costs(history: History) -> list[tuple[float, float]]:
    """(end_s, cost_s) of each stage the study ran itself (a cached one cost it nothing)."""
    return [(s.end_s, s.cost_s) for s in history.stages.values()
            if s.end_s is not None and s.cost_s]


def figures(df: pd.DataFrame, workers: int, stages: Sequence[tuple[float, float]] = ()
            ) -> RunFigures:
    finished = df[df["end_s"].notna() & df["status"].isin(FINAL)]
    times, bests = best_curve(df)
    started = finished["start_s"].dropna()
    start = float(started.min()) if len(started) else 0.0
    end = float(finished["end_s"].max()) if len(finished) else start
    wall = max(0.0, end - start)
    busy = float((finished["end_s"] - finished["start_s"]).sum(skipna=True))
    best = float(bests[-1]) if len(bests) else None
    t_best = float(times[np.flatnonzero(bests == best)[0]]) if best is not None else None
    n_best = int((finished["end_s"] <= t_best).sum()) if t_best is not None else 0
    return RunFigures(
        best=best, evaluations=len(finished), evaluations_to_best=n_best, wall_s=wall,
        wall_to_best_s=None if t_best is None else t_best - start,
        compute_s=float(finished["cost_s"].sum()) + sum(c for _, c in stages),
        compute_to_best_s=None if t_best is None else float(compute_at(df, [t_best], stages)[0]),
        slot_use=busy / (workers * wall) if wall > 0 and workers else 0.0)
