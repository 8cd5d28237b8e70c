"""``autotune.Study``: build a study from Python, run it, or drive it from a loop of one's own.

A thin layer over what the CLI uses: the mapping is the study file's (``parse_study`` checks
it the same way), ``run()`` is the CLI's ``Driver(...).run()`` with the same study directory
and resume semantics, and ``ask()``/``tell()`` go through the driver's own recording, so
their trials are in the history like any other and ``status``, ``report`` and a resume see them.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import inspect
import os
import signal
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, TypeVar

from . import callables
from . import events as ev
from .config import describe, hint
from .contract import plain_metrics, real_number
from .cancel_mark import CANCELLED
from .driver import (EXTERNAL, Driver, RunSummary, asking_ended, check_compatible,
                     check_left_running, check_unfilled, new_study_record)
from .errors import StudyError, StudyStopped, exception_text, python_api
from .history import History, TrialRecord
from .journal import Journal
from .api_args import check_config
from .api_loop import built_pretrain, cancelled_outcomes
from .keywords import checked_keywords
from .objective import Ctx
from .restore import restore
from .states import left_to_another_kind, trial_states
from .study import Study as StudySettings
from .study import load_study as read_study_file
from .study import TOP_KEYS, elsewhere, parse_study, recorded_study
from .studydir import StudyDir
from .view import StudyView, load, path_of

F = TypeVar("F", bound=Callable[..., Any])


def _speaks_python(method: F) -> F:
    """The engine's messages raised inside say ``dir=`` and "the study definition", what a
    Python caller writes, where the CLI's say ``--dir`` and "the study file"."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with python_api():
            return method(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def _one_thread_at_a_time(method: F) -> F:
    """A Study's session (its driver, the trials held for ``ask()``) is one per Study: threads
    sharing a Study (a pool of workers, each asking and telling) take turns, else each would
    open its own session and all but the first be refused as another Study holding the
    directory, or two asks hand out the same trial number."""
    @functools.wraps(method)
    def wrapper(self: "Study", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[list[Any]]:
    """Ctrl-C (SIGINT) held back while an ask or a tell records, and noted in the list given:
    a KeyboardInterrupt raised between the journal's write and the session taking it in (a
    sync on a slow file system is long) left the journal ahead of the session, so that a
    tell run again recorded a second end (its value ignored on replay, though returned) and
    an ask a second trial of the same number. ``_deliver`` hands the Ctrl-C on after. Only
    the main thread gets signals; elsewhere, or where the handler cannot be set, nothing is
    held. A second Ctrl-C is not held: a hung wait (a lock on a stuck file system) can be cut."""
    caught: list[Any] = []

    def hold(signum: int, frame: Any) -> None:
        if caught:
            raise KeyboardInterrupt
        caught.append((old, frame))

    try:
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("signals go to the main thread only")
        old = signal.signal(signal.SIGINT, hold)
    except (ValueError, TypeError, OSError):  # not the main thread, or an embedding's limits
        yield caught
        return
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, old)


def _deliver(caught: list[Any]) -> None:
    """A Ctrl-C ``_ctrl_c_held`` held back, handed to the handler it was meant for."""
    if not caught:
        return
    handler, frame = caught[0]
    if callable(handler):
        handler(signal.SIGINT, frame)  # Python's own raises KeyboardInterrupt
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signal.SIGINT)


@dataclass
class Trial:
    """A trial handed out by ``Study.ask()``: run ``objective(trial.params, trial.ctx)``."""

    number: int
    params: dict[str, Any]
    ctx: Ctx
    fidelity: int | None = None          # epochs to train (multi-fidelity searchers)
    parent: int | None = None            # the trial whose checkpoint it continues
    info: dict[str, Any] = field(default_factory=dict)


def _check_keywords(keys: Mapping[str, Any]) -> None:
    """Refuse a keyword of ``Study(...)`` that is neither ``dir`` nor a study key, the
    keyword ``dir=`` among the keys it may resemble: ``dirr=`` was refused as an unknown
    study key with no word of ``dir=``, where the study file's own key errors suggest
    theirs."""
    for key in keys:
        if key not in TOP_KEYS:
            said = hint(key, ["dir", *TOP_KEYS], {**elsewhere(""), **_KEYWORD_NAMES})
            raise StudyError(f"{key}: unknown keyword{said} (expected dir= or one of the "
                             f"study's keys: {', '.join(TOP_KEYS)})")


#: keywords another library (or a guess) uses for what Study(...) calls otherwise
_KEYWORD_NAMES = {"directory": "the study directory is dir=",
                  "config": "give the mapping first, unnamed: Study(config, dir=...)"}

#: Optuna's keywords of the functions autotune names alike, and where autotune has them
_OPTUNA = {
    "study_name": "the study's name is its key name, and the study is its directory: dir=",
    "storage": "the study is stored in its directory: dir=",
    "direction": "the direction is the study's objective.mode ('min' or 'max')",
    "directions": "one metric is optimised, the study's objective.metric and objective.mode",
    "sampler": "the searcher is the study's search.algorithm",
    "pruner": "no pruner: a multi-fidelity search.algorithm stops trials early",
    "n_jobs": "trials at once are the study's executor.max_concurrent",
    "show_progress_bar": "did you mean 'progress'?",
    "callbacks": "no callbacks: read study.trials or trials_dataframe() between calls",
    "catch": "a trial that raises is recorded as failed, and the run goes on",
    "gc_after_trial": "no such option",
    "values": "the result is tell(trial, result): a number or a dict of metrics",
    "state": "a failed trial is tell(trial, error=...)",
    "attrs": "select the columns from the DataFrame it returns",
    "multi_index": "the DataFrame's columns are flat",
    "fixed_distributions": "the space is the study's: every trial draws from it",
}


class Study:
    """A study built from a mapping with the study file's keys, or from a study file.

    ``Study({...})`` and ``Study(name=..., objective=..., space=..., ...)`` take the keys of a
    study file. The objective's ``entry`` may be a Python function ``f(params, ctx)`` returning
    a dict of metrics (or one number, the metric's value); it runs under the ``inline``,
    ``simulated`` and ``local`` executors (``local`` and ``slurm`` ship it to the trial process
    with cloudpickle, and refuse, at once, a function that cannot be pickled). Without any
    entry or command the study is driven by ``ask()`` and ``tell()`` only.

    ``dir`` is the study directory (default ``runs/<name>``, as for the CLI). Mistakes raise
    ``StudyError`` with one line naming the key, before anything is written; a directory that
    another driver (or Study object) holds raises ``StudyBusy``, one kind of ``StudyError``.

    A warning of the study's setting or its directory (more trials at once than CPU cores,
    no budget, a damaged history line skipped, ...) is shown once per Study object: a second
    ``run()``, ``optimize()`` or ask/tell session of the same Study does not repeat it, as
    nothing about it changed, and a repeated warning buries a new one. Once per Study, not
    per process: such a warning does not always name its study, and one about another
    study (or a Study made again, say by ``load_study`` in a new cell) is new to its reader.
    Warnings of what happens during a run (a trial failed) are shown as they happen.
    """

    @_speaks_python
    def __init__(self, config: Mapping[str, Any] | None = None, /, *extra: Any,
                 dir: str | None = None, **keys: Any):
        # extra: taken only to be refused in one line; Study(config, "runs/x") was Python's
        # TypeError, which named neither dir= nor the calls that read a path
        check_config(config, extra)
        _check_keywords(keys)
        raw = _plain({**dict(config or {}), **keys})
        raw, self._objective, base_dir = _objective_of(raw)
        # a command field no trial fills: refused by run() and ask() in a new directory,
        # resumed with a warning in one an older autotune started so (Driver)
        self.settings: StudySettings = parse_study(raw, base_dir=base_dir, tolerate_unfilled=True)
        self._init(dir)

    @classmethod
    @checked_keywords("Study.from_yaml")
    @_speaks_python
    def from_yaml(cls, path: str | os.PathLike, dir: str | None = None) -> "Study":
        """The study in a YAML study file (what ``autotune run FILE`` reads)."""
        return cls._of(read_study_file(os.fspath(path), tolerate_unfilled=True), dir)

    @classmethod
    def _of(cls, settings: StudySettings, directory: str | os.PathLike | None) -> "Study":
        """A Study of checked settings whose objective is named (an entry, a command, or a
        function shipped into the directory before), not given as a live function."""
        self = cls.__new__(cls)
        self.settings = settings
        self._objective = None
        self._init(directory)
        return self

    def _init(self, directory: str | os.PathLike | None) -> None:
        self.dir = os.path.abspath(path_of(directory, "dir") if directory is not None
                                   else os.path.join("runs", self.settings.name))
        if os.path.exists(self.dir) and not os.path.isdir(self.dir):
            raise StudyError(f"dir: {self.dir} exists and is not a directory")
        self._pickle = (None if self._objective is None
                        else callables.pickled(self._objective, self.settings.executor))
        self._driver: Driver | None = None
        self._held: list[TrialRecord] = []   # in-flight trials of an earlier ask/tell loop
        self._again: set[int] = set()        # of those, the ones an earlier loop asked
        self._stalled = False  # ask() found nothing to propose and no open trial to wait for
        self._lock = threading.RLock()  # see _one_thread_at_a_time
        self._said: set[str] = set()  # warnings of the start said already (Study's docstring)

    @property
    def name(self) -> str:
        return self.settings.name

    # ---- running it -----------------------------------------------------------------------
    @checked_keywords("Study.run", _OPTUNA)
    @_speaks_python
    @_one_thread_at_a_time
    def run(self, progress: bool = True, retry_failed: bool = False,
            accept_objective_change: bool = False) -> StudyView:
        """Run (or resume) the study to its end with the study's executor; the result, read back.

        Ctrl-C stops it as it stops the CLI (trials in flight run again on resume) and raises
        KeyboardInterrupt; calling ``run()`` again resumes. A run that ends with nothing to
        use (every trial failed, ``max_failures`` reached, the pretrain failed) raises
        ``StudyStopped`` saying why, where the CLI exits 4 (1); ``retry_failed=True`` runs
        the failed trials again, as ``--retry-failed``. A directory started with another
        objective (another function, entry or command) is refused, as results would mix;
        ``accept_objective_change=True`` records the change instead, as
        ``--accept-objective-change``."""
        _flags("run", progress=progress, retry_failed=retry_failed,
               accept_objective_change=accept_objective_change)
        return self._drive("run", progress, retry_failed, accept_objective_change)

    @checked_keywords("Study.optimize", _OPTUNA)
    @_speaks_python
    @_one_thread_at_a_time
    def optimize(self, func: Callable[[dict[str, Any], Ctx], Any] | None = None,
                 n_trials: int | None = None, timeout: float | None = None, *,
                 progress: bool = True, retry_failed: bool = False,
                 accept_objective_change: bool = False) -> StudyView:
        """``run()`` with ``func`` as the objective and limits of this call only (Optuna's
        ``optimize``): the driver runs ``func(params, ctx)`` with the study's executor,
        as ``run()`` runs a study's function, and the result is read back the same way.

        ``func`` becomes the study's objective (as ``objective={'entry': func, ...}``
        would make it; None: the study's own entry, command or function). ``n_trials``:
        at most this many new trials in this call, counted from what the history holds
        (trials a stopped run left in flight run again on top, as on resume); ``timeout``:
        no new trial starts after this many seconds, and those running end as they end.
        Both are on top of the study's own limits (``max_trials``, ``max_compute_s``),
        never beyond them, and are not recorded: another call has its own."""
        _flags("optimize", progress=progress, retry_failed=retry_failed,
               accept_objective_change=accept_objective_change)
        more, seconds = _count(n_trials, "n_trials"), _seconds(timeout, "timeout")
        if func is None:
            return self._drive("optimize", progress, retry_failed, accept_objective_change,
                               more, seconds)
        kept = (self.settings, self._objective, self._pickle)
        self._use_function(func)  # after the checks: a refused argument changes nothing
        taken: list[bool] = []
        try:
            return self._drive("optimize", progress, retry_failed, accept_objective_change,
                               more, seconds, taken)
        finally:
            if not taken:  # refused before the driver took it: the study is as it was
                self.settings, self._objective, self._pickle = kept

    @checked_keywords("Study.build_pretrain", _OPTUNA)
    @_speaks_python
    @_one_thread_at_a_time
    def build_pretrain(self, progress: bool = True) -> str:
        """Build the study's ``stages.pretrain`` (or find it built) and run no trial; the
        checkpoint's path, which the trials get as ``ctx.pretrained``.

        For a loop of one's own (``ask``/``tell``), which builds no pretrain: the pretrain
        is a job with resources of its own, hours long, that ``run()`` builds before its
        first trial; this builds it the same way (its job on the study's executor, recorded,
        once), without the trials a ``run()`` would go on to. A failed build raises
        ``StudyStopped`` with its reason, as ``run()`` does."""
        _flags("build_pretrain", progress=progress)
        if self.settings.objective.pretrain is None:
            raise StudyError("build_pretrain: this study has no stages.pretrain")
        self.close()
        self._check_directory()
        driver = Driver(self.settings, self.dir, progress=progress, stages_only=True,
                        prepare=self._installer(), said=self._said)
        try:
            summary = driver.run()
        except KeyboardInterrupt:
            raise self._interrupted("build_pretrain") from None
        if summary.stopped == "interrupted":
            raise self._interrupted("build_pretrain")
        if summary.stopped == "failed":
            raise _stopped(summary, self.settings, load(self.dir), "build_pretrain")
        return str(driver.pretrained)

    def _use_function(self, func: Callable[..., Any]) -> None:
        """Make ``func`` this study's objective, as the ``entry`` of its definition would;
        a directory started with another objective is refused when it is run, as for any
        change of objective."""
        _check_signature(func, "optimize")
        objective = callables.Objective(func, self.settings.objective.metric)
        shipped = callables.pickled(objective, self.settings.executor)
        found = _source_dir(func)
        paths = self.settings.objective.python_path
        spec = dataclasses.replace(
            self.settings.objective, entry=callables.ENTRY, command=None,
            python_path=paths + ((found,) if found and found not in paths else ()))
        raw = dict(self.settings.raw)
        raw["objective"] = {**{k: v for k, v in dict(raw.get("objective") or {}).items()
                               if k != "command"}, "entry": callables.ENTRY}
        settings = copy.copy(self.settings)
        settings.objective, settings.raw = spec, raw
        self.settings, self._objective, self._pickle = settings, objective, shipped

    def _drive(self, caller: str, progress: bool, retry_failed: bool,
               accept_objective_change: bool, more_trials: int | None = None,
               timeout_s: float | None = None, taken: list[bool] | None = None) -> StudyView:
        """The driver's run, the one loop behind ``run()`` and ``optimize()``. ``taken``
        gets an entry once the driver has accepted the run and installed the objective:
        from then on the function is the directory's, whatever becomes of the run.
        ``caller`` ("run", "optimize"): the call a message on how to go on names, with its
        argument (``optimize(accept_objective_change=True)``): the one the user made, whose
        limits (``n_trials``) a suggested ``run(...)`` would drop."""
        self._check_runnable()
        self.close()
        self._check_directory(accept_objective_change, caller)
        driver = Driver(self.settings, self.dir, progress=progress, retry_failed=retry_failed,
                        accept_objective=accept_objective_change,
                        prepare=_noting(self._installer(), taken),
                        more_trials=more_trials, timeout_s=timeout_s, caller=caller,
                        said=self._said)
        try:
            summary = driver.run()
        except KeyboardInterrupt:
            # raised by the objective itself under inline or simulated (a Ctrl-C that reached
            # the trial before the driver's handler did): the trial stays interrupted, as for
            # a Ctrl-C the driver caught, and the caller is told the same thing
            raise self._interrupted(caller) from None
        if summary.stopped == "interrupted":
            raise self._interrupted(caller)
        view = load(self.dir)
        stopped = _stopped(summary, self.settings, view, caller)
        if stopped is not None:
            raise stopped
        return view

    def _check_runnable(self) -> None:
        """Refuse a run with nothing to run: a study driven by ask/tell only, or one whose
        function (shipped into the directory when it was run before) is not there, as for
        a function that could not be pickled and ran in the driver's process only, or
        cannot be read back (a damaged file: every trial would fail of it)."""
        entry = self.settings.objective.entry
        if entry == callables.NO_ENTRY:
            raise StudyError("objective: this study has no entry, command or function to run; "
                             "give one, or drive it with ask() and tell()")
        if entry != callables.ENTRY or self._objective is not None:
            return
        if not os.path.exists(os.path.join(self.dir, callables.FILE)):
            raise StudyError(f"objective: this study's function was not saved in {self.dir} "
                             "(one that cannot be pickled runs in its own session only); give "
                             "it again: optimize(f)")
        callables.check_saved(self.dir)

    def _interrupted(self, caller: str) -> KeyboardInterrupt:
        return KeyboardInterrupt(f"study {self.name} interrupted; {caller}() again to resume "
                                 f"({self.dir})")

    @_speaks_python
    def load(self) -> StudyView:
        """The study directory, read-only (trials, DataFrame, best, setting, summary)."""
        if not StudyDir(self.dir).exists():  # not "no such directory": the user named none
            raise StudyError(f"study {self.name}: nothing recorded yet in {self.dir} (run() "
                             "or ask() starts it)")
        return load(self.dir)

    @property
    @_speaks_python
    @_one_thread_at_a_time
    def trials(self) -> list[TrialRecord]:
        """Every trial recorded, in number order (``load().trials``; Optuna's
        ``study.trials``); empty before the first."""
        return self.load().trials if StudyDir(self.dir).exists() else []

    @property
    @_speaks_python
    @_one_thread_at_a_time
    def best_trial(self) -> TrialRecord:
        """The best successful trial at full length, as ``load().best`` (Optuna's
        ``best_trial``); ``StudyError`` before there is one, where None would surface later
        as an AttributeError far from its cause."""
        best = self.load().best if StudyDir(self.dir).exists() else None
        if best is None:
            raise StudyError(f"study {self.name}: no trial has finished successfully yet, so "
                             "there is no best trial, value or parameters; run(), optimize() "
                             "or tell() a result first")
        return best

    @property
    def best_value(self) -> float:
        """The best trial's value of the study's metric (Optuna's ``best_value``)."""
        return float(self.best_trial.value)

    @property
    def best_params(self) -> dict[str, Any]:
        """The best trial's parameters (Optuna's ``best_params``)."""
        return dict(self.best_trial.params)

    @checked_keywords("Study.trials_dataframe", _OPTUNA)
    @_speaks_python
    def trials_dataframe(self):
        """Shorthand for ``load().trials_dataframe()``. A study not started yet has no trials,
        which is no mistake: its frame is empty, with the columns and types it will have (as
        Optuna's is), so that code filtering it runs before the first trial too."""
        if StudyDir(self.dir).exists():
            return self.load().trials_dataframe()
        from .frame import trials_frame

        history = History()
        history.apply(ev.study(self.name, 0.0, self.settings.identity(), self.settings.raw))
        return trials_frame(history, {})

    # ---- a loop of one's own --------------------------------------------------------------
    @checked_keywords("Study.ask", _OPTUNA)
    @_speaks_python
    @_one_thread_at_a_time
    def ask(self) -> Trial | None:
        """The next trial to run yourself, recorded in the history as started.

        Trials an earlier loop asked for and never told come back first (in id order), and
        so do those a stopped ``run()`` left ``interrupted`` (they run again, as on resume). None
        when there is nothing to run now, for one of two reasons, told apart by
        ``finished``: True, the study has ended (``max_trials`` reached, ``max_compute_s``
        spent, or the search's own end; ``end_reason`` says which) and no trial will come
        again (``autotune cancel`` ends a session so: ``end_reason`` "cancelled by autotune
        cancel"; the next session resumes); False, the search waits for the results of the
        trials you hold (``open_trials``): tell them, then ask again. The study directory stays locked for
        this Study until ``close()`` (or the ``with`` block ends, or the process exits)."""
        with _ctrl_c_held() as caught:
            rec = self._next_trial()
            trial = None if rec is None else Trial(
                rec.trial, dict(rec.params), self._driver.context(rec), rec.fidelity,
                rec.parent, dict(rec.info))
        if caught and rec is not None:  # interrupted: the trial is handed out by the next ask()
            self._held.insert(0, rec)
        _deliver(caught)
        return trial

    def _next_trial(self) -> TrialRecord | None:
        driver = self._session()
        if driver.asking_ended() == CANCELLED:  # what it holds stays open, to tell or not
            return None
        if not self._held:
            # a searcher that plans in whole batches (axis-radial, axis-s2018) is asked for
            # one of max_concurrent, as the driver asks it; asked one at a time its rounds
            # would be one trial long. The rest wait here, recorded as started.
            batch = getattr(driver.searcher, "waits_for_batch", False)
            self._held = driver.ask_external(self.settings.max_concurrent if batch else 1)
            if not self._held:
                # nothing to propose and no result to wait for: nothing can change that, and
                # a run() ends the study here too (a loop must not wait for it forever)
                self._stalled = not self._open(driver)
                return None
        rec = self._held.pop(0)
        if rec.job_id != EXTERNAL or rec.trial in self._again:
            # left by a stopped run(), or asked by an earlier loop and never told: this loop
            # runs it again, a new start as a resumed run() records (its cost from now, not
            # from the dead session's ask, which max_compute_s would count)
            self._again.discard(rec.trial)
            rec = driver.start_external(rec)
        return rec

    @property
    @_speaks_python
    def finished(self) -> bool:
        """Whether ``ask()`` will never hand out a trial again (``end_reason`` says why).
        Trials asked and not told yet (``open_trials``) may still be told."""
        return bool(self.end_reason)

    @property
    @_speaks_python
    @_one_thread_at_a_time
    def end_reason(self) -> str:
        """Why the study hands out no more trials, in words ("max_trials (20) reached",
        "max_compute_s (3600 s) spent (3601.2 s)", "the search ended: ..."); "" while
        ``ask()`` may still give one. Read outside an ask/tell session, it reads the
        history only: no lock, nothing written."""
        if self._driver is None:
            return self._end_reason_read()
        if self._driver.asking_ended() == CANCELLED:
            return CANCELLED
        if self._held:  # untold trials of an earlier loop: ask() hands them out
            return ""
        reason = self._driver.asking_ended()
        if not reason and self._stalled and not self._open(self._driver):
            reason = "the search has nothing more to propose"
        return reason

    def _end_reason_read(self) -> str:
        """``end_reason`` from the history alone: a session would record a resume in the
        history, and hold the directory, for what is only a question."""
        sdir = StudyDir(self.dir)
        if not sdir.exists():
            return ""  # nothing asked yet
        history = History.load(Journal(sdir.history))
        states = trial_states(history, sdir.driver_running(), sdir.path)
        if any(states[r.trial] == "interrupted" for r in history.in_flight()):
            return ""  # left untold, or by a stopped run(): ask() hands it out
        searcher = restore(self.settings.make_searcher(), history)
        reason = asking_ended(self.settings, history, searcher)
        if reason or history.in_flight():  # results to come may give the search more to do
            return reason
        # a search with nothing more to propose and no result to wait for has ended, as
        # ask() finds (a restored copy is asked: nothing is recorded)
        searcher.next_trial = history.next_id
        return "" if searcher.ask(1) else "the search has nothing more to propose"

    @property
    @_one_thread_at_a_time
    def open_trials(self) -> list[int]:
        """The numbers of the trials ``ask()`` handed out that are not told yet (empty
        outside an ask/tell session)."""
        return [] if self._driver is None else self._open(self._driver)

    def _open(self, driver: Driver) -> list[int]:
        held = {r.trial for r in self._held}
        return sorted(r.trial for r in driver.history.in_flight()
                      if r.job_id == EXTERNAL and r.trial not in held)

    @checked_keywords("Study.tell", _OPTUNA)
    @_speaks_python
    @_one_thread_at_a_time
    def tell(self, trial: Trial | int, result: Any = None, *, error: Any = None) -> TrialRecord:
        """Record the end of a trial from ``ask()``: ``result`` is the dict of metrics (or the
        optimised metric's value as a number; numpy scalars and 0-d tensors count as numbers,
        recorded as plain floats); ``error`` (a message or an exception) marks it
        failed. The searcher hears of it as of any trial; the record is returned.

        A dict without the study's metric, or with a metric that is no number, and a result
        given together with an error are mistakes in the caller's loop, not a trial's
        failure: ``StudyError``, nothing recorded, the trial still open for a correct tell.
        A NaN or infinite value is the trial's own outcome: recorded as failed."""
        number = self._number_of(trial)
        if result is not None and error is not None:  # which one would be the truth?
            raise StudyError(f"tell: trial {number}: give a result or error=..., not both")
        # a finished or unknown trial first: no result fixes it. Outside a session, from the
        # history alone: opening one would make the directory, or record a resume, for a
        # tell that is refused
        _check_open(self._driver.history if self._driver is not None else self._recorded(),
                    number)
        raised = error
        result, error = _told(result, error, self.settings.objective.metric, number)
        with _ctrl_c_held() as caught:  # recorded whole, or not at all: see _ctrl_c_held
            driver = self._session("tell")  # opened only for a tell that may be recorded
            _check_open(driver.history, number)
            self._held = [r for r in self._held if r.trial != number]
            if isinstance(raised, BaseException):
                _keep_traceback(raised, driver.dir.trial_dir(number))
            told = driver.tell_external(number, result, error)
        _deliver(caught)  # after the trial is recorded: telling it again says so
        return told

    def _recorded(self) -> History:
        """The study's history as recorded, read without a lock and writing nothing (empty
        where nothing is recorded yet)."""
        sdir = StudyDir(self.dir)
        return History.load(Journal(sdir.history)) if sdir.exists() else History()

    def _number_of(self, trial: Trial | int) -> int:
        """The trial's number in this study; a ``Trial`` asked from another study (another
        directory) is refused: its number here is some other trial, which would be told."""
        if isinstance(trial, Trial):
            asked_in = os.path.abspath(trial.ctx.study_dir or self.dir)
            if os.path.realpath(asked_in) != os.path.realpath(self.dir):
                raise StudyError(f"tell: trial {trial.number} was asked from the study in "
                                 f"{asked_in}, not this one ({self.dir}); tell it to that study")
            return trial.number
        number = real_number(trial)
        if not isinstance(number, int):  # np.int64 is made an int; 2.0 and True are refused
            hint = " (its .trial is the number)" if isinstance(trial, TrialRecord) else ""
            raise StudyError(f"tell: expected a Trial or a trial number, got "
                             f"{describe(trial)}{hint}")
        return number

    @_one_thread_at_a_time
    def close(self) -> None:
        """End an ask/tell session: write trajectory.csv and give the directory back."""
        driver, self._driver = self._driver, None
        self._held = []
        self._again = set()
        self._stalled = False
        if driver is not None:
            driver.close()

    def __enter__(self) -> "Study":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _session(self, caller: str = "ask") -> Driver:
        if self._driver is None:
            self._check_directory()
            _check_left_alone(StudyDir(self.dir), caller)
            # a loop builds no pretrain: refused here, before anything is written, unless a
            # run built it (its trials were handed out with ctx.pretrained None, from nothing)
            built_pretrain(self.settings, self._recorded(), self.dir, 0.0, caller)
            driver = Driver(self.settings, self.dir, progress=False, prepare=self._installer(),
                            said=self._said)
            driver.open()
            try:
                _take_over(driver, self.settings, caller)
            except BaseException:
                driver.close()
                raise
            self._driver = driver
            told_never = [r for r in driver.history.in_flight() if r.job_id == EXTERNAL]
            self._held = sorted(told_never + driver.left_to_rerun(), key=lambda r: r.trial)
            self._again = {r.trial for r in told_never}
        return self._driver

    # ---- before anything is written -------------------------------------------------------
    def _check_directory(self, accept_objective_change: bool = False,
                         caller: str = "run") -> None:
        """Refuse a directory held by a running driver or started with another search or
        another function, before the objective is written into it; ``caller`` is the call
        whose ``accept_objective_change=True`` the refusal suggests."""
        sdir = StudyDir(self.dir)
        sdir.check_run()
        if not sdir.exists():
            return
        if sdir.driver_running():
            raise sdir.busy()
        history = History.load(Journal(sdir.history))
        if history.study:
            check_compatible(history.study, self.settings, sdir.path)
        if self._objective is not None and not accept_objective_change:
            # every function's entry is the same: the function shipped before tells them apart
            was, now = callables.shipped_name(sdir.path), callables.name_of(self._objective.func)
            if was is not None and was != now:
                raise StudyError(f"objective.entry: {sdir.path} was started with the function "
                                 f"{was!r}, this study runs {now!r}; results would mix: use "
                                 f"another dir=, or {caller}(accept_objective_change=True) if the "
                                 "change does not alter results")

    def _installer(self) -> Callable[[], None] | None:
        """What puts the function where the trials find it, for the driver to run once it
        holds the directory. Not a bound method: a driver holding its Study would make a
        cycle, and a Study dropped with an ask() session open (a notebook cell run again)
        would keep the directory locked until the garbage collector ran."""
        if self._objective is None:
            return None
        return functools.partial(callables.install, self._objective, self._pickle, self.dir)

    def __repr__(self) -> str:
        s = self.settings
        return f"<autotune.Study {s.name!r}: {s.algorithm} on {s.executor}, dir {self.dir}>"


def _take_over(driver: Driver, settings: StudySettings, caller: str) -> None:
    """What the session opened on ``driver`` takes over from the runs before it, checked
    again now that it holds the directory (``api_loop``): the pretrain they built, and the
    ends of the SLURM jobs ``autotune cancel`` cancelled, recorded as a run records them."""
    path = driver.dir.path
    found = built_pretrain(settings, driver.history, path, driver.executor.now(), caller)
    driver.take_over(None if found is None else found.checkpoint,
                     [found.cached] if found is not None and found.cached else [],
                     cancelled_outcomes(driver.history, path))


def _check_left_alone(sdir: StudyDir, caller: str) -> None:
    """Refuse to open an ask/tell loop, before its resume is recorded, on a study whose
    killed driver left trials (or the pretrain) running as local processes or SLURM jobs, or
    ended without a driver to record them, as ``run`` refuses them under another executor
    kind, in the same words: a loop of the caller's own can neither watch nor record them.
    It went on past them, asking new trials while they ran on (their results unrecorded, the
    study said finished at ``max_trials`` with them still open)."""
    if not sdir.exists():
        return
    history = History.load(Journal(sdir.history))
    # a stopped local worker leaves its trial interrupted, for ask() to hand out; a cancelled
    # SLURM job ended, and the loop records it cancelled, as a run would (api_loop)
    kinds = set(left_to_another_kind(history, sdir.path, ASK_TELL).values())
    again = {frozenset({"local"}): "ask() then hands them out again",
             frozenset({"slurm"}): "ask() then records them cancelled"}.get(
        frozenset(kinds), "ask() then hands out the local ones again and records the SLURM "
                          "ones cancelled")
    check_left_running(history, sdir.path, ASK_TELL, caller, "an ask/tell loop",
                       "Resume with run() under executor kind", again=again)


#: the executor kind an ask/tell loop is to ``left_to_another_kind``: none that owns a job
ASK_TELL = "ask/tell"


def _noting(prepare: Callable[[], None] | None, taken: list[bool] | None
            ) -> Callable[[], None] | None:
    """``prepare``, noting in ``taken`` that it ran (the driver runs it once it accepts a run).
    A closure over the installer and the list, not over the Study (see ``_installer``)."""
    if taken is None:
        return prepare

    def run() -> None:
        if prepare is not None:
            prepare()
        taken.append(True)
    return run


def _stopped(summary: RunSummary, settings: StudySettings, view: StudyView,
             caller: str = "run") -> StudyStopped | None:
    """Why a finished run has nothing to use, as the CLI says it (exit 4, or 1 for a stage),
    naming the call that ran it (``caller``: "run", "optimize") as the one to repeat."""
    if summary.stopped == "failed":
        return StudyStopped(f"study {settings.name}: {summary.error}; fix it and {caller}() "
                            "again", "stage", view)
    errors = Counter(t.error for t in view.trials if t.status == "failed" and t.error)
    why = f" (most often: {errors.most_common(1)[0][0]})" if errors else ""
    fix = (f"; logs in {view.path}/trials/<id>/; fix the cause, then "
           f"{caller}(retry_failed=True)")
    if summary.stopped == "failing":
        return StudyStopped(f"study {settings.name} stopped: the first {settings.max_failures} "
                            f"trials to end all failed (max_failures){why}{fix}", "failing", view)
    if summary.counts.get("failed") and not summary.counts.get("ok"):
        return StudyStopped(f"study {settings.name}: every trial failed{why}{fix}",
                            "all failed", view)
    return None


def _check_open(history: History, number: int) -> None:
    """Refuse a trial that this study never asked for, that has ended already, or that a
    ``run()`` started and ``ask()`` has not handed out: its result would be the caller's
    guess (and its process or job may still be running, for the next run to collect)."""
    rec = history.trials.get(number)
    if rec is None or rec.done:
        raise StudyError(f"tell: trial {number} is "
                         f"{'unknown' if rec is None else 'already finished'} in this study")
    if rec.job_id != EXTERNAL:
        raise StudyError(f"tell: trial {number} was started by run(), not handed out by ask(); "
                         "ask() hands it out once nothing runs it (the next run() runs or "
                         "collects it otherwise)")


def _told(result: Any, error: Any, metric: str, number: int
          ) -> tuple[dict[str, Any] | None, str | None]:
    """What ``tell`` records: the dict of metrics (plain JSON values) or the error's message.
    A result that is no number and no dict with the metric is the caller's mistake."""
    if error is not None:
        if not isinstance(error, (str, BaseException)):  # 5 was recorded as the error '5'
            raise StudyError(f"tell: error of trial {number}: expected a message (a string) "
                             f"or an exception, got {describe(error)} "
                             f"({type(error).__name__})")
        return None, _error_text(error)
    value = real_number(result)  # a float, or a numpy or torch scalar
    if value is not None:  # judged as {metric: value} is: an int too large for a float fails
        result = {metric: value}
    elif not isinstance(result, Mapping):
        raise StudyError(f"tell: expected a number or a dict of metrics as the result of "
                         f"trial {number}, got {type(result).__name__} (or pass error=...)")
    _check_metric(result, metric, number)
    try:  # numpy inside lists and mappings made plain, as a run's result is
        return dict(plain_metrics(result)), None
    except TypeError as exc:
        raise StudyError(f"tell: the result of trial {number}: {exc}") from None


def _flags(caller: str, **flags: Any) -> None:
    """Refuse a switch given as anything but True or False: ``progress="no"`` is truthy,
    and would quietly mean the opposite of what was written."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise StudyError(f"{caller}: {name} must be True or False, got {value!r}")


def _count(value: Any, name: str) -> int | None:
    """A count of trials: a whole number of at least 1 (numpy's too), or None for no limit."""
    if value is None:
        return None
    number = real_number(value)
    if not isinstance(number, int) or number < 1:
        raise StudyError(f"optimize: {name} must be a whole number of at least 1 (or None: "
                         f"no limit of its own), got {describe(value)}")
    return number


def _seconds(value: Any, name: str) -> float | None:
    """A duration in seconds: a positive finite number, or None for no limit."""
    if value is None:
        return None
    number = real_number(value)
    if number is None or not 0 < number < float("inf"):
        raise StudyError(f"optimize: {name} must be a positive number of seconds (or None: "
                         f"no limit of its own), got {describe(value)}")
    return float(number)


def _check_signature(func: Any, where: str) -> None:
    """Refuse, before anything runs, what cannot be called as ``f(params, ctx)``: Optuna's
    ``f(trial)`` would otherwise fail every trial with a TypeError about a missing ``ctx``."""
    if not callable(func):
        raise StudyError(f"{where}: expected a function f(params, ctx), got {describe(func)}")
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin or an extension's function: cannot tell
        return
    try:
        signature.bind(None, None)
    except TypeError:
        name = getattr(func, "__name__", None) or callables.describe(func)
        raise StudyError(
            f"{where}: the objective is called as f(params, ctx), and {name}{signature} cannot "
            "take those two arguments (not Optuna's f(trial): the space is the study's, and f "
            "reads params['x'])") from None


def _error_text(error: Any) -> str:
    """A failed trial's message: an exception as ``Type: message``, as the executors write
    it; an empty one says so, rather than leave ``status`` to say no error was recorded."""
    if isinstance(error, BaseException):
        return exception_text(error)
    text = str(error)
    return text if text.strip() else "failed (tell gave an empty error message)"


def _keep_traceback(exc: BaseException, trial_dir: str) -> None:
    """A told exception's traceback in the trial's ``traceback.txt``, where ``status``, the
    end of ``run`` and summary.txt look for an entry's that raised in the driver's process:
    the loop's own code raised it, and its message alone rarely says where. Written before
    the trial's end is recorded, so a reader that sees the failure finds it; a folder that
    cannot be written costs the traceback, not the record."""
    if exc.__traceback__ is None:  # made, never raised: nothing to show but its message
        return
    with contextlib.suppress(OSError):
        os.makedirs(trial_dir, exist_ok=True)
        with open(os.path.join(trial_dir, "traceback.txt"), "w") as fh:
            fh.write("".join(traceback.format_exception(exc)))


def _check_metric(result: Mapping, metric: str, trial: int) -> None:
    """Refuse a told dict that lacks the study's metric or holds no number for it (it would
    otherwise be recorded as a failed trial, silently, with the value the caller meant lost)."""
    if metric not in result:
        given = ", ".join(sorted(str(key) for key in result)) or "nothing"
        said = hint(metric, [str(key) for key in result])
        raise StudyError(f"tell: the result of trial {trial} has no metric {metric!r}{said} "
                         f"(it gives: {given}); give it, or pass error=... for a failed trial")
    if real_number(result[metric]) is None:
        raise StudyError(f"tell: the result of trial {trial}: metric {metric!r} is not a "
                         f"number: {describe(result[metric])}")


@checked_keywords("create_study", {
    **_OPTUNA, "config": "did you mean 'config_or_yaml_path'? (or give it first, unnamed)"})
def create_study(config_or_yaml_path: Mapping[str, Any] | str | os.PathLike,
                 dir: str | os.PathLike | None = None, load_if_exists: bool = True) -> Study:
    """A study from a mapping of study keys or a study file's path (Optuna's
    ``create_study``), ``Study(config, dir=dir)`` or ``Study.from_yaml(path, dir=dir)``.

    A directory that holds a study already is continued, as ``run`` continues it (the
    same search: another one is refused when it runs); ``load_if_exists=False`` refuses
    it instead, at once, for code that means to start afresh and would otherwise mix
    its trials into an earlier study's, and records the new study there at once (of two
    such calls on one new directory exactly one succeeds)."""
    with python_api():
        _flags("create_study", load_if_exists=load_if_exists)
        if isinstance(config_or_yaml_path, Mapping):
            study = Study(config_or_yaml_path, dir=dir)
        elif isinstance(config_or_yaml_path, (str, os.PathLike)):
            study = Study.from_yaml(config_or_yaml_path, dir=dir)
        else:
            raise StudyError("create_study: expected a mapping of study keys or a study file's "
                             f"path, got {describe(config_or_yaml_path)}")
        if not load_if_exists:
            _record_new(study)
        return study


#: how long ``create_study(load_if_exists=False)`` waits for another holder of the directory
#: (a second script creating it at the same moment) before it is refused as busy
CREATE_WAIT_S = 10.0


def _record_new(study: Study) -> None:
    """``create_study(load_if_exists=False)``: the new study recorded in its directory at once,
    under the directory's lock, so that of two scripts creating one directory at the same
    moment exactly one goes on and the other is refused as for a study there already (each
    found no study when it checked, and both went on to write into the one directory)."""
    sdir = StudyDir(study.dir)
    settings = study.settings
    _refuse_recorded(study, sdir)
    if settings.unfilled:  # refused in a new study, as its run() or ask() would refuse it
        check_unfilled(settings, History())
    sdir.check_run()
    sdir.acquire(by="create_study", wait_s=CREATE_WAIT_S)
    try:
        _refuse_recorded(study, sdir)  # recorded by the one this waited for
        installer = study._installer()  # as a run writes it: before the first record
        if installer is not None:
            installer()
        journal = Journal(sdir.history)
        try:
            journal.append([new_study_record(settings)])
        finally:
            journal.close()
    finally:
        sdir.release()


def _refuse_recorded(study: Study, sdir: StudyDir) -> None:
    if sdir.recorded():
        trials = len(study.trials)
        raise StudyError(f"create_study: {study.dir} holds a study already ({trials} "
                         f"trial{'' if trials == 1 else 's'}); load_if_exists=False refuses to "
                         "continue it: give another dir=, or load_if_exists=True to "
                         "continue it")


@checked_keywords("load_study", _OPTUNA)
def load_study(dir: str | os.PathLike) -> Study:
    """The study in ``dir`` as its history records it, to continue (Optuna's
    ``load_study``): ``run()``, ``optimize()`` or ``ask()``/``tell()``, whether a study
    file (the CLI), a mapping or a function started it. Its definition is the one
    recorded there (and the objective a resume accepted since), so nothing else is
    needed; ``load(dir)`` reads it without continuing it."""
    with python_api():
        view = load(path_of(dir, "dir"))  # a StudyError where nothing was recorded
        return Study._of(recorded_study(view.history), view.path)


def _plain(value: Any) -> Any:
    """``value`` as a study file's YAML would give it: numpy (or torch) scalars as plain
    numbers, booleans and strings, tuples and arrays as lists, mappings as dicts. The study
    is then checked by the study file's rules, and its history records plain JSON (a numpy
    value would be written as its ``str()``). Anything else (a function) is kept as it is."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    ndim = getattr(value, "ndim", None)
    if ndim is not None and ndim >= 1 and callable(getattr(value, "tolist", None)):
        return _plain(value.tolist())
    if ndim == 0 and callable(getattr(value, "item", None)):  # np.float32(1), np.bool_, ...
        item = value.item()
        if isinstance(item, (bool, int, float, str)):
            return item
    return value


def _objective_of(raw: dict[str, Any]) -> tuple[dict[str, Any], callables.Objective | None,
                                                 str | None]:
    """The mapping with a Python function objective replaced by the callables entry."""
    objective = raw.get("objective")
    if callable(objective):
        raise StudyError("objective: a function needs the metric it returns: write "
                         "objective={'entry': f, 'metric': 'loss'} (and 'mode': 'max' to maximise)")
    if not isinstance(objective, Mapping):
        return raw, None, None  # parse_study names what is wrong
    objective = dict(objective)
    entry: Callable | str | None = objective.get("entry")
    if entry is None and objective.get("command") is None:
        objective["entry"] = callables.NO_ENTRY
        return {**raw, "objective": objective}, None, None
    if not callable(entry):
        if entry is not None and not isinstance(entry, str):  # the file's rule knows no functions
            raise StudyError(f"objective.entry: expected a function f(params, ctx) or a "
                             f"'module:function' string, got {describe(entry)}")
        return raw, None, None
    _check_signature(entry, "objective.entry")
    metric = objective.get("metric")
    found = callables.Objective(entry, metric if isinstance(metric, str) else "value")
    objective["entry"] = callables.ENTRY
    return {**raw, "objective": objective}, found, _source_dir(entry)


def _source_dir(func: Callable) -> str | None:
    """The directory of the function's file: modules beside it import in a trial process too."""
    try:
        path = inspect.getsourcefile(func)
    except TypeError:
        return None
    return os.path.dirname(os.path.abspath(path)) if path and os.path.exists(path) else None
