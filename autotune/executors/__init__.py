"""Executors: where trials run. Found by name in ``EXECUTORS``."""
from .base import Executor, Outcome, TrialJob
from .registry import EXECUTORS, register
from . import inline, local, simulated  # noqa: F401  (registration)

__all__ = ["Executor", "Outcome", "TrialJob", "EXECUTORS", "register"]
