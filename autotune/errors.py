"""Errors that reach the user as one line, in the words of the interface they used.

A `StudyError` is a mistake in what the user gave us (study file, directory, arguments):
the CLI prints it as one line and exits with status 2, before anything is written.

The driver is shared by the CLI and the Python API, so a message that names how to fix
something (``--dir`` or ``dir=``) asks ``term()``; the Python API runs its calls under
``python_api()`` and its users read the keywords they write.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar


def exception_text(exc: BaseException) -> str:
    """A failed trial's message from its exception, ``Type: message``, alike on every
    executor; just ``Type`` when the exception says nothing (``raise ValueError()``), so
    that no record ends in a dangling colon."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text.strip() else type(exc).__name__


class StudyError(Exception):
    """A user mistake: printed as one line, exit status 2."""


class StudyBusy(StudyError):
    """Another driver holds the study directory: a ``StudyError`` for Python callers (one
    ``except`` catches every refusal), its own exit status (3) from the CLI."""


class StudyStopped(Exception):
    """A run that ended with nothing to use: every trial failed, the first ``max_failures``
    to end all failed, or a stage (the shared pretrain) failed. Not a mistake in what was
    given (no ``StudyError``): the CLI exits 4 (1 for a stage) and says why; from Python,
    ``run()`` raises this so that a script cannot take a failed study for a finished one.
    ``reason`` is "failing", "all failed" or "stage"; ``view`` is the study as recorded."""

    def __init__(self, message: str, reason: str, view: object = None):
        super().__init__(message)
        self.reason = reason
        self.view = view


class DiskFull(Exception):
    """The disk (or the quota) ran out: the study stops, resumable once there is space."""

    def __init__(self, path: str, then: str = "run the same command again to resume"):
        super().__init__(f"no space left on device writing {path}; free some space, then {then}")
        self.path = path


#: errno values that mean "no space": the device is full, or the user's quota is
DISK_FULL_ERRNOS = (28, 122)  # ENOSPC, EDQUOT

_PYTHON: ContextVar[bool] = ContextVar("autotune_python_api", default=False)

#: what a message calls a thing: (the CLI's word, the Python API's word)
TERMS = {"dir": ("--dir", "dir="), "study": ("the study file", "the study definition")}


@contextlib.contextmanager
def python_api() -> Iterator[None]:
    """Messages raised inside speak the Python API's words (see ``term``)."""
    token = _PYTHON.set(True)
    try:
        yield
    finally:
        _PYTHON.reset(token)


def in_python_api() -> bool:
    return _PYTHON.get()


def term(name: str) -> str:
    """The word for ``name`` ("dir", "study") in the interface the user is calling."""
    return TERMS[name][in_python_api()]


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS
