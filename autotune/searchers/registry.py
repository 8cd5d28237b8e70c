"""Searchers by name, so a study file can say ``algorithm: axis``."""
from __future__ import annotations

from .base import Searcher

SEARCHERS: dict[str, type[Searcher]] = {}


def register(cls: type[Searcher]) -> type[Searcher]:
    SEARCHERS[cls.name] = cls
    return cls
