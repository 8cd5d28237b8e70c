"""Keywords of the Python API's functions checked as the study file's keys are: a misspelt
one (``load_study(dirr=...)``) is one ``StudyError`` line naming it and the closest accepted
one, where Python's own TypeError named it alone ("got an unexpected keyword argument")."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, TypeVar

from .config import hint
from .errors import StudyError

F = TypeVar("F", bound=Callable[..., Any])

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def checked_keywords(where: str, elsewhere: Mapping[str, str] | None = None
                     ) -> Callable[[F], F]:
    """Refuse a keyword ``where`` (the name the caller wrote: ``load_study``,
    ``Study.optimize``) does not take, before the call: one line with the closest keyword
    it takes, else what ``elsewhere`` says of that name (an Optuna keyword, say), and the
    keywords it takes."""
    def decorate(func: F) -> F:
        accepted = [p.name for p in inspect.signature(func).parameters.values()
                    if p.kind in _NAMED and p.name not in ("self", "cls")]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for key in kwargs:
                if key not in accepted:
                    raise StudyError(unknown_keyword(where, key, accepted, elsewhere))
            return func(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


def unknown_keyword(where: str, key: str, accepted: list[str],
                    elsewhere: Mapping[str, str] | None = None) -> str:
    said = hint(key, accepted, dict(elsewhere or {}))
    if not said:  # dirr= for directory=, retry= for retry_failed=: too short for difflib
        alike = [name for name in accepted if name[:3] == str(key)[:3]]
        said = f"; did you mean {alike[0]!r}?" if len(alike) == 1 else ""
    takes = (f"it takes {', '.join(name + '=' for name in accepted)}" if accepted
             else "it takes no keywords")
    return f"{where}: {key}: unknown keyword{said} ({takes})"
