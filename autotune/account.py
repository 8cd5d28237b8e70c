"""The searcher's own account of a study (its chosen setting, screening counts, ...), rebuilt
from the history alone.

A fresh searcher is brought to the recorded state (``restore``) and asked for its
``summary()``. Only the search's settings are needed for that, so the study is read without
loading its code: a report or ``autotune.load`` on a login node never imports a training
module (torch).
"""
from __future__ import annotations

import copy
import weakref
from typing import Any

from .history import History

#: the last account rebuilt: (the history, weakly; its size then; the account). A report
#: asks for it three times (the summary, two plots), and an axis search's restore costs
#: about 0.1 s per 1,000 trials (4.9 s at 50,000: docs/benchmarks.md), each time.
_last: tuple[weakref.ref, tuple[int, int, int], dict[str, Any]] | None = None


def searcher_account(history: History) -> dict[str, Any]:
    """The searcher's ``summary()`` after restoring it from the history; empty where there is
    none (no searcher calls yet, or a study record this version cannot rebuild a search from).
    Rebuilt once per state of the history (a copy each call: no caller alters another's)."""
    global _last
    size = (history.events, len(history.calls), history.next_id)
    if _last is not None and _last[0]() is history and _last[1] == size:
        return copy.deepcopy(_last[2])
    account = _rebuild(history)
    _last = (weakref.ref(history), size, account)
    return copy.deepcopy(account)


def _rebuild(history: History) -> dict[str, Any]:
    from .errors import StudyError
    from .restore import restore
    from .search_threads import one_blas_thread
    from .study import recorded_study

    if not isinstance(history.study.get("config"), dict) or not history.calls:
        return {}
    try:
        study = recorded_study(history, load_code=False)
        searcher = restore(study.make_searcher(), history)
        with one_blas_thread():     # the reported setting's judgement solves too
            return searcher.summary()
    except (StudyError, KeyError, ValueError, TypeError):
        return {}


def setting(history: History) -> dict[str, Any] | None:
    """The search's own reported setting (the axis search's base) with its mean over repeated
    runs and their spread, in the metric's own sign; None where the searcher reports none."""
    view = searcher_account(history)
    if "base" not in view or not view.get("base_repeats"):
        return None
    sign = -1.0 if history.study.get("identity", {}).get("mode") == "max" else 1.0
    runs = int(view["base_repeats"])
    return {"params": dict(view["base"]), "mean": sign * float(view["base_mean"]),
            "spread": float(view["base_spread"]) if runs > 1 else None, "runs": runs,
            "noise_sd": float(view["noise_sigma"]) if view.get("noisy") else None}
