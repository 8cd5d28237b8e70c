"""``autotune.load(dir)``: a finished or running study, read-only, from Python.

It reads the history and nothing else: no lock is taken, nothing is written, and the study's
objective is never imported, so it works on a login node without the training code's
dependencies, and while a driver is running (call ``reload()`` for the newer trials).
"""
from __future__ import annotations

import copy
import os
from collections import Counter
from typing import TYPE_CHECKING, Any

from .errors import StudyError
from .history import History, TrialRecord
from .journal import Journal
from .keywords import checked_keywords
from .states import trial_states
from .studydir import StudyDir, no_study

if TYPE_CHECKING:
    import pandas as pd


@checked_keywords("load", {"dir": "did you mean 'directory'?"})
def load(directory: str | os.PathLike) -> "StudyView":
    """Open the study in ``directory`` (the one ``run`` wrote) for reading."""
    return StudyView(path_of(directory, "directory"))


def path_of(value: Any, name: str) -> str:
    """``value`` as a path, or a StudyError naming ``name``: a number or None given for a
    directory would otherwise surface as os.fspath's TypeError, which names nothing."""
    try:
        path = os.fspath(value)
    except TypeError:
        raise StudyError(f"{name}: expected a path (a str or os.PathLike), "
                         f"got {type(value).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise StudyError(f"{name}: expected a path, got an empty string")
    return path


class StudyView:
    """A study directory as the history records it: trials, best, the search's setting."""

    @checked_keywords("StudyView", {"dir": "did you mean 'directory'?"})
    def __init__(self, directory: str | os.PathLike):
        self.path = os.path.abspath(os.fspath(directory))
        self._dir = StudyDir(self.path)
        self.reload()

    def reload(self) -> "StudyView":
        """Read the history again (a driver may have added trials since)."""
        if os.path.isfile(self.path):
            raise StudyError(f"{self.path}: is a file, expected a study directory (the one "
                             "run wrote, holding history.jsonl)")
        if not os.path.isdir(self.path):
            raise StudyError(f"{self.path}: no such study directory")
        if not self._dir.exists():
            raise no_study(self.path)
        history = History.load(Journal(self._dir.history))
        if not history.study:
            raise StudyError(f"{self.path}: history.jsonl holds no study record")
        self._history = history
        return self

    # ---- what the study is ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self._history.study.get("name", ""))

    @property
    def metric(self) -> str:
        return str(self._history.study.get("identity", {}).get("metric", ""))

    @property
    def mode(self) -> str:
        return str(self._history.study.get("identity", {}).get("mode", "min"))

    @property
    def algorithm(self) -> str:
        return str(self._history.study.get("identity", {}).get("algorithm", ""))

    @property
    def config(self) -> dict[str, Any]:
        """The study as it was started (the study file's mapping)."""
        return copy.deepcopy(self._history.study.get("config") or {})

    @property
    def warnings(self) -> list[str]:
        """Lines of the history that could not be read (a torn last line after a crash)."""
        return list(self._history.warnings)

    # ---- what it found --------------------------------------------------------------------
    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial in id order (copies: changing them changes nothing on disk), each
        ``status`` its state as every other view says it: with no driver, a trial not ended
        is ``interrupted`` (or ``running-alone``, ``ended-alone``), not ``running``."""
        states = self._states()
        trials = [copy.deepcopy(r) for r in sorted(self._history.trials.values(),
                                                   key=lambda r: r.trial)]
        for rec in trials:
            rec.status = states.get(rec.trial, rec.status)
        return trials

    def trials_dataframe(self) -> "pd.DataFrame":
        """One row per trial, typed columns: parameters, epochs, metrics, value, best so far,
        start/end times and cost (seconds since the study started), status, attempts, job id,
        error: trajectory.csv's columns, except that round, epochs, parent and the study's
        metric are there even where no trial fills them, the axis search's grid index is one
        column of lists (the CSV's ``index_<parameter>``), ``counts`` says whether a trial
        counts for best, and the pretrain has no row (code reading the frame need not test
        which columns exist)."""
        from .frame import trials_frame

        return trials_frame(self._history, self._states())

    @property
    def best(self) -> TrialRecord | None:
        """The best successful trial at full length (None before the first)."""
        best = self._history.best(self.mode)
        return None if best is None else copy.deepcopy(best)

    @property
    def setting(self) -> dict[str, Any] | None:
        """The search's own reported setting where it has one (the axis search's base): its
        parameters, the mean of its repeated runs and their spread (``params``, ``mean``,
        ``spread``, ``runs``, ``noise_sd``). Under noise this, not ``best``, is the answer."""
        from .account import setting

        return setting(self._history)

    def counts(self) -> dict[str, int]:
        """Trials by state, as ``status`` and ``trials_dataframe`` say it (ok, failed,
        cancelled, running, pending; with no driver: running-alone, ended-alone,
        interrupted)."""
        return dict(Counter(self._states().values()))

    def _states(self) -> dict[int, str]:
        """Each trial's state as every view says it (states.trial_states)."""
        return trial_states(self._history, self._driver_running(), self.path)

    def summary(self) -> str:
        """The text ``autotune status`` prints."""
        from .summary import summary

        return summary(self._history, running_driver=self._driver_running(),
                       directory=self.path)

    def _driver_running(self) -> bool | None:
        try:
            return self._dir.driver_running()
        except OSError:  # a directory we may only read: whether a driver runs is unknown
            return None

    @property
    def history(self) -> History:
        """The replayed history itself, for what the other views do not show."""
        return self._history

    def __repr__(self) -> str:
        return (f"<autotune study {self.name!r} at {self.path}: {len(self._history.trials)} "
                f"trials, {self.algorithm}, {self.mode} {self.metric}>")
