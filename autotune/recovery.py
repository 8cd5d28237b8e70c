"""Rebuilding a damaged study record from the study file being run.

The study record says what a history is a search of. When that one line is damaged, the
rest of the journal still says a great deal: which parameters every trial had, what values
they took, which metric the results carry. The study file given to ``run`` is accepted as
the record's replacement only if it agrees with all of that; the new record is appended
(marked ``recovered``, the damaged line stays where it was) and said aloud, never silently.
"""
from __future__ import annotations

import math
import os
import time
from typing import Any

from . import events as ev
from .errors import StudyError, term
from .history import History
from .space import Choice, Fixed, Range, SearchSpace
from .study import Study


def rebuild_study_record(history: History, study: Study, path: str) -> dict:
    """The study record to append in place of a damaged one; ``StudyError`` if the study
    file contradicts what the journal's other lines record."""
    problem = disagreement(history, study)
    if problem:
        raise StudyError(f"{path}: the history's study record is damaged, and {term('study')} "
                         f"does not match the trials it records ({problem}); run it with "
                         f"{term('study')} it was started with")
    t0 = history.t0_hint()
    source = "a resume record"
    if t0 is None:  # never resumed: continue the study clock from its last recorded time
        t0, source = time.time() - history.last_t, "estimated from the last recorded time"
    return ev.study(study.name, t0, study.identity(), study.raw, study.source, study.compared,
                    launch_dir=os.getcwd(), recovered={"wall": time.time(), "t0_from": source,
                               "damaged_lines": history.damaged})


def disagreement(history: History, study: Study) -> str:
    """What in the journal the study file cannot have produced ('' if nothing)."""
    recorded = history.identity_hint()
    if recorded is not None and recorded != ev.fingerprint(study.identity()):
        return ("its space, algorithm, seed, search options, metric or pretrain differ from "
                "the ones a resume record names")
    fidelity = study.search_options.get("fidelity") or {}
    for rec in history.trials.values():
        if (rec.fidelity is not None) != bool(fidelity):
            return (f"trial {rec.trial} has {'a' if rec.fidelity is not None else 'no'} "
                    f"fidelity, and {term('study')} {'sets' if fidelity else 'sets no'} "
                    "search.fidelity")
        if rec.fidelity is not None and not \
                fidelity.get("min", 0) <= rec.fidelity <= fidelity.get("max", rec.fidelity):
            return f"trial {rec.trial}: fidelity {rec.fidelity} is outside search.fidelity"
    names = set(study.space.names)
    for rec in history.trials.values():
        got = set(rec.params)
        if got != names:
            extra, missing = sorted(got - names), sorted(names - got)
            what = (f"parameters {', '.join(extra)} not in the space" if extra
                    else f"no value for {', '.join(missing)}")
            return f"trial {rec.trial}: {what}"
        for name, value in rec.params.items():
            if not contains(study.space, name, value):
                return f"trial {rec.trial}: {name}={value!r} is outside the space"
    ok = [rec for rec in history.trials.values() if rec.status == "ok"]
    if ok and not any(study.objective.metric in rec.metrics for rec in ok):
        return f"no result carries the metric {study.objective.metric!r}"
    return ""


def contains(space: SearchSpace, name: str, value: Any) -> bool:
    param = space.params[name]
    if isinstance(param, Fixed):
        return bool(value == param.value)
    if isinstance(param, Choice):
        return value in param.values
    assert isinstance(param, Range)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return False
    slack = 1e-9 * max(1.0, abs(param.low), abs(param.high))
    return param.low - slack <= value <= param.high + slack
