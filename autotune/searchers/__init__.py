"""Searchers: pure ask/tell strategies, found by name in ``SEARCHERS``.

Every module of this package is imported here, so a new searcher registers itself by
existing (``@register`` on its class) without anyone editing a list.
"""
import importlib
import pkgutil

from .base import Result, Searcher, SearchSettings, Suggestion
from .registry import SEARCHERS, register

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Result", "Searcher", "SearchSettings", "Suggestion", "SEARCHERS", "register"]
