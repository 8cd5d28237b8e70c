"""Errors that reach the user as one line.

A `StudyError` is a mistake in what the user gave us (study file, directory, arguments):
the CLI prints it as one line and exits with status 2, before anything is written.
"""


class StudyError(Exception):
    """A user mistake: printed as one line, exit status 2."""


class StudyBusy(Exception):
    """Another driver holds the study directory."""


class DiskFull(Exception):
    """The disk (or the quota) ran out: the study stops, resumable once there is space."""

    def __init__(self, path: str):
        super().__init__(f"no space left on device writing {path}; free some space, then run "
                         "the same command again to resume")
        self.path = path


#: errno values that mean "no space": the device is full, or the user's quota is
DISK_FULL_ERRNOS = (28, 122)  # ENOSPC, EDQUOT


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS
