"""Small helpers to read a YAML mapping strictly.

Every check names the full key (``search.max_trials``) and what was expected, so a mistake
in a study file becomes one clear line rather than a traceback.
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Iterable

from .errors import StudyError

_MISSING = object()


def describe(value: Any) -> str:
    """A short, type-revealing rendering of a bad value for an error line."""
    if is_number(value) and not fits_float(value):
        return TOO_LARGE
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def require_mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise StudyError(f"{where}: expected a mapping, got {describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise StudyError(f"{where}: keys must be strings, got {describe(key)}")
    return value


def optional_mapping(mapping: dict, name: str, where: str = "") -> dict:
    """``mapping[name]``, a mapping that may be left out: missing or ``~`` is empty, and
    anything else must be a mapping. Read as ``mapping.get(name) or {}``, a ``0`` (or false,
    '', []) passed for an empty section, and ``search: 0`` is no budget at all."""
    value = mapping.get(name)
    return {} if value is None else require_mapping(value, key(where, name))


def reject_unknown(mapping: dict, allowed: Iterable[str], where: str,
                   elsewhere: dict[str, str] | None = None) -> None:
    """Refuse a key not in ``allowed``, saying where it belongs when ``elsewhere`` knows it
    (``max_concurrent`` under ``search:``) or which allowed key it resembles (a typo)."""
    allowed = list(allowed)
    for key in mapping:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise StudyError(f"{prefix}{key}: unknown key{hint(key, allowed, elsewhere)} "
                             f"(expected one of: {', '.join(allowed)})")


def hint(key: str, allowed: list[str], elsewhere: dict[str, str] | None = None) -> str:
    """``; did you mean 'max_trials'?`` for a close spelling of an allowed key, else where a
    key of that name belongs (``elsewhere``), else nothing."""
    lowered = {k.lower(): k for k in allowed}
    close = difflib.get_close_matches(str(key).lower(), list(lowered), n=1, cutoff=0.75)
    if close:
        return f"; did you mean {lowered[close[0]]!r}?"
    if elsewhere and key in elsewhere:
        return f"; {elsewhere[key]}"
    return ""


def key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fits_float(value: int | float) -> bool:
    """Whether a number can be a float: YAML and Python read integers of any size, and
    ``float(10**400)`` (or ``math.isfinite`` of it, or dividing by it) raises OverflowError,
    which reached the user as a traceback instead of one line naming the key."""
    try:
        float(value)
    except OverflowError:
        return False
    return True


def is_finite(value: int | float) -> bool:
    """``math.isfinite`` for any number, an integer too large for a float being none."""
    return fits_float(value) and math.isfinite(value)


#: how an error line names an integer too large for a float (its repr may be thousands of
#: digits, and Python refuses to print one past 4,300)
TOO_LARGE = "an integer too large for a float (more than 1.8e308)"


def take(mapping: dict, name: str, kind: str, where: str, default: Any = _MISSING) -> Any:
    """Read ``mapping[name]`` and check it is of ``kind``.

    Kinds: str, bool, number, positive-number, nonneg-number, int, positive-int, nonneg-int,
    list, mapping.
    """
    full = key(where, name)
    if name not in mapping or mapping[name] is None:
        if default is _MISSING:
            raise StudyError(f"{full}: missing (expected {kind_text(kind)})")
        return default
    value = mapping[name]
    check(value, kind, full)
    return float(value) if kind in ("number", "positive-number", "nonneg-number") else value


def kind_text(kind: str) -> str:
    return {
        "str": "a string",
        "bool": "true or false",
        "number": "a number",
        "positive-number": "a positive number",
        "nonneg-number": "a number >= 0",
        "int": "an integer",
        "positive-int": "a positive integer",
        "nonneg-int": "a non-negative integer",
        "list": "a list",
        "mapping": "a mapping",
    }[kind]


def check(value: Any, kind: str, full: str) -> None:
    if is_number(value) and not fits_float(value):  # an integer setting too: see fits_float
        raise StudyError(f"{full}: expected {kind_text(kind)}, got {TOO_LARGE}")
    ok = {
        "str": lambda v: isinstance(v, str) and v != "",
        "bool": lambda v: isinstance(v, bool),
        "number": lambda v: is_number(v) and math.isfinite(v),
        "positive-number": lambda v: is_number(v) and math.isfinite(v) and v > 0,
        "nonneg-number": lambda v: is_number(v) and math.isfinite(v) and v >= 0,
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "positive-int": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "nonneg-int": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "list": lambda v: isinstance(v, list),
        "mapping": lambda v: isinstance(v, dict),
    }[kind](value)
    if not ok:
        if kind == "str" and value == "":
            raise StudyError(f"{full}: must not be empty (expected {kind_text(kind)})")
        hint = ""
        if kind.endswith("int") and isinstance(value, float) and value.is_integer():
            # YAML reads 1e3 and 1000.0 as floats; the fix is one keystroke away
            hint = (f" (write {int(value)}: a number with a dot or an exponent, such as 1e3, "
                    f"is read as a float)")
        raise StudyError(f"{full}: expected {kind_text(kind)}, got {describe(value)}{hint}")
