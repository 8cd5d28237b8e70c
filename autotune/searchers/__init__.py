"""Searchers: pure ask/tell strategies, found by name in ``SEARCHERS``."""
from .base import Result, Searcher, SearchSettings, Suggestion
from .registry import SEARCHERS, register
from . import grid, random  # noqa: F401  (registration)

__all__ = ["Result", "Searcher", "SearchSettings", "Suggestion", "SEARCHERS", "register"]
