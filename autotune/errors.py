"""Errors that reach the user as one line.

A `StudyError` is a mistake in what the user gave us (study file, directory, arguments):
the CLI prints it as one line and exits with status 2, before anything is written.
"""


class StudyError(Exception):
    """A user mistake: printed as one line, exit status 2."""


class StudyBusy(Exception):
    """Another driver holds the study directory."""
