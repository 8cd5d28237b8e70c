"""Executors: where trials run, found by name in ``EXECUTORS``.

Every module of this package is imported here, so a new executor registers itself by
existing (``@register`` on its class) without anyone editing a list.
"""
import importlib
import pkgutil

from .base import Executor, Outcome, TrialJob
from .registry import EXECUTORS, register

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Executor", "Outcome", "TrialJob", "EXECUTORS", "register"]
