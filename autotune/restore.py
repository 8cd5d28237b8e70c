"""Bringing a searcher to the state a history records, without calling its ``ask``.

The record is the format: each recorded suggestion is handed to the searcher's ``adopt``
and each recorded result to its ``tell``, in the order the live run made them. Nothing the
searcher's code would propose today enters into it, so a history resumes under a later
version of a searcher, under another ``max_concurrent``, and after a trial whose ask line
was lost (its id is simply never handed back out).
"""
from __future__ import annotations

from typing import Any

from .history import History, TrialRecord
from .search_threads import one_blas_thread
from .searchers import Result, Searcher, Suggestion


def restore(searcher: Searcher, history: History) -> Searcher:
    """``searcher`` (fresh, built from the study) brought to the state of ``history``."""
    mode = history.study.get("identity", {}).get("mode", "min")
    trials = history.trials
    with one_blas_thread():
        for call in history.calls:
            if call[0] == "ask":
                for trial in call[2]:
                    searcher.adopt(suggestion_of(trials[trial]))
            else:
                searcher.tell(result_of(trials[call[1]], mode))
    searcher.next_trial = history.next_id
    return searcher


def suggestion_of(rec: TrialRecord) -> Suggestion:
    """A trial's suggestion as the history recorded it."""
    return Suggestion(rec.trial, rec.params, rec.fidelity, rec.parent, rec.info)


def result_of(rec: TrialRecord, mode: str) -> Result:
    """What a searcher is told of a finished trial: live and on resume, the same."""
    loss = None if rec.value is None else (rec.value if mode == "min" else -rec.value)
    return Result(rec.trial, rec.status, loss, rec.metrics, rec.cost_s)


def suggestion_event(s: Suggestion) -> dict[str, Any]:
    """A suggestion as the ask event records it."""
    event: dict[str, Any] = {"trial": s.trial, "params": s.params}
    if s.fidelity is not None:
        event["fidelity"] = s.fidelity
    if s.parent is not None:
        event["parent"] = s.parent
    if s.info:
        event["info"] = s.info
    return event
