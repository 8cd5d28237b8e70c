"""What ``Study(...)`` was given when it is not a mapping of study keys, said in one line
with the call that does what the caller meant.

A user's first guesses, from other libraries or from the CLI (``autotune run FILE --dir
DIR``), are ``Study(config, "runs/x")``, ``Study("study.yaml")`` and ``Study("runs/x")``:
Python's own TypeError ("takes from 1 to 2 positional arguments but 3 were given") named
no keyword, and a path was refused as "got str", with no word of ``from_yaml`` or
``load_study``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .config import describe
from .errors import StudyError


def check_config(config: Any, extra: tuple[Any, ...]) -> None:
    """Refuse, before anything is read or written, a ``Study(...)`` whose positional
    arguments are not the one mapping of study keys: a second one (the directory, given
    positionally), a path (a study file or a study directory) or any other value."""
    if extra:
        raise StudyError(extra_refusal(extra))
    if config is None or isinstance(config, Mapping):
        return
    if isinstance(config, (str, os.PathLike)):
        raise StudyError(path_refusal(os.fsdecode(os.fspath(config))))
    raise StudyError(f"Study: expected a mapping of study keys (or keywords name=..., "
                     f"objective=..., ...), got {describe(config)} "
                     f"({type(config).__name__}); a study file is read by "
                     f"at.Study.from_yaml(path), a study directory continued by "
                     f"at.load_study(dir)")


def extra_refusal(extra: tuple[Any, ...]) -> str:
    """``Study(config, "runs/x")``: the directory is the keyword ``dir=``; the calls that
    take it are shown with the caller's own value."""
    if len(extra) == 1 and isinstance(extra[0], (str, os.PathLike)):
        shown = repr(os.fsdecode(os.fspath(extra[0])))
        return (f"Study: the study directory is a keyword: Study(config, dir={shown}) (or "
                f"at.create_study(config, dir={shown}); at.load_study({shown}) continues the "
                f"study recorded there)")
    what = ", ".join(describe(value) for value in extra)
    return (f"Study: takes one positional argument, the mapping of study keys; also given: "
            f"{what} (the directory is a keyword: Study(config, dir=...))")


def path_refusal(path: str) -> str:
    """``Study(path)``: what the path is, and the call that reads it."""
    shown = repr(path)
    if os.path.isfile(os.path.join(path, "history.jsonl")):
        return (f"Study: {shown} is a study directory, not a mapping of study keys; continue "
                f"it with at.load_study({shown}) (or read it: at.load({shown}))")
    if os.path.isfile(path) or path.endswith((".yaml", ".yml")):
        return (f"Study: {shown} is a path, not a mapping of study keys; a study file is read "
                f"by at.Study.from_yaml({shown}, dir=...) or at.create_study({shown}, dir=...)")
    return (f"Study: expected a mapping of study keys, got the string {shown}; a study file "
            f"is read by at.Study.from_yaml(path), a study directory continued by "
            f"at.load_study(dir)")
