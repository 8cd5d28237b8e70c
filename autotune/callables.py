"""A Python callable as a study's objective (from the Python API).

A history names its objective by an entry string, and a trial may run in another process
(``local``) or on another node (``slurm``), so a function defined in a notebook or a script
cannot be named by import path. It is shipped instead: pickled with cloudpickle into the study
directory, and the study's entry is ``autotune.callables:call``, which every trial process
resolves to that file through ``ctx.study_dir``. Executors and the worker know nothing of it.

In the driver's own process (``inline``, ``simulated``) the live function is used as it is, so
a closure over something unpicklable (a loaded data set, a lock) still works there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .contract import real_number
from .errors import StudyError, exception_text

ENTRY = "autotune.callables:call"
NO_ENTRY = "autotune.callables:no_objective"  # a study driven by ask()/tell() only
FILE = "objective.pkl"
IN_PROCESS = ("inline", "simulated")  # executors that call the objective in the driver's process

_live: dict[str, "Objective"] = {}                      # study dir -> objective, this process
_loaded: dict[str, tuple[float, "Objective"]] = {}      # study dir -> (mtime, unpickled)


@dataclass
class Objective:
    """The user's function and the metric a bare number it returns stands for."""

    func: Callable[..., Any]
    metric: str

    def __call__(self, params: dict, ctx: Any) -> dict:
        out = self.func(params, ctx)
        number = real_number(out)  # a float, or a numpy/torch scalar; NaN is judged later
        if number is not None:  # an int as it is: one too large for a float is judged later too
            return {self.metric: number}
        if isinstance(out, Mapping):
            return dict(out)
        # said here, where a bare number is allowed: the runner's own message (a command's,
        # an entry's) asks for a dict only, and would send a function's author the wrong way
        raise TypeError(f"objective returned {type(out).__name__}, expected a dict of metrics "
                        f"or a number (the value of {self.metric!r})")


def describe(func: Callable) -> str:
    return getattr(func, "__qualname__", None) or type(func).__name__


def name_of(func: Callable) -> str:
    """``module:qualname``: what tells two objective functions apart across sessions (every
    function study's entry is the same ``ENTRY``)."""
    return f"{getattr(func, '__module__', None) or '?'}:{describe(func)}"


def shipped_name(study_dir: str) -> str | None:
    """The name of the function shipped into ``study_dir`` before (None: none was, or it
    cannot be read back here, say its module is gone: then nothing can be compared)."""
    import cloudpickle

    try:
        with open(os.path.join(study_dir, FILE), "rb") as fh:
            return name_of(cloudpickle.load(fh).func)
    except Exception:  # noqa: BLE001 - missing, damaged or unimportable: unknown, not a change
        return None


def check_saved(study_dir: str) -> None:
    """Refuse a run whose saved function cannot be read back, as each trial would read it:
    a damaged ``objective.pkl`` (cut short, overwritten) made every trial fail of it
    (UnpicklingError, or a stray ValueError) until ``max_failures``, the cause named only
    in their logs. The function given again (``optimize(f)``) writes the file anew."""
    import cloudpickle

    path = os.path.join(study_dir, FILE)
    try:
        with open(path, "rb") as fh:
            loaded = cloudpickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways, all the same here
        problem = exception_text(exc)
    else:
        if isinstance(loaded, Objective):
            return
        problem = f"it holds a {type(loaded).__name__}, not an objective function"
    raise StudyError(f"objective: {path}, this study's saved function, cannot be read back "
                     f"({problem}); give the function again: optimize(f)")


def shown(entry: str | None) -> str | None:
    """An entry as a user knows it: the Python API's own entries by what they stand for."""
    return {ENTRY: "a Python function", NO_ENTRY: "ask() and tell() only"}.get(entry, entry)


def pickled(objective: Objective, executor: str) -> bytes | None:
    """The objective as bytes for other processes; None where only this process needs it.

    An objective that cannot be pickled is refused for an executor that runs trials in other
    processes, before anything is written."""
    import cloudpickle

    try:
        return cloudpickle.dumps(objective)
    except Exception as exc:  # noqa: BLE001 - pickling fails in many ways, all the same to us
        if executor in IN_PROCESS:
            return None
        raise StudyError(
            f"objective: the function {describe(objective.func)!r} cannot be sent to a trial "
            f"process for executor {executor!r} ({type(exc).__name__}: {exc}); define it at "
            "module level without unpicklable state, or use executor inline or simulated"
        ) from None


def install(objective: Objective, data: bytes | None, study_dir: str) -> None:
    """Put the objective where this study's trials find it: in this process, and on disk."""
    study_dir = os.path.abspath(study_dir)
    _live[study_dir] = objective
    if data is None:
        return
    os.makedirs(study_dir, exist_ok=True)
    path = os.path.join(study_dir, FILE)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def call(params: dict, ctx: Any) -> dict:
    """The entry every callable-objective study names: run the study's own function."""
    study_dir = os.path.abspath(ctx.study_dir or ".")
    objective = _live.get(study_dir) or _load(study_dir)
    return objective(params, ctx)


def _load(study_dir: str) -> Objective:
    import cloudpickle

    path = os.path.join(study_dir, FILE)
    try:
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        raise RuntimeError(f"{path} is missing: this study's objective is a Python function; "
                           "run it again from Python (autotune.Study(...).run())") from None
    cached = _loaded.get(study_dir)
    if cached is None or cached[0] != mtime:
        with open(path, "rb") as fh:
            cached = (mtime, cloudpickle.load(fh))
        _loaded[study_dir] = cached
    return cached[1]


def no_objective(params: dict, ctx: Any) -> dict:
    """The entry of a study whose trials are run by the user's own loop (ask and tell)."""
    raise RuntimeError("this study has no objective to run: its trials are run with "
                       "autotune.Study.ask() and tell()")
