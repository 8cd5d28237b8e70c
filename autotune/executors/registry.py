"""Executors by name, so a study file can say ``kind: local``."""
from __future__ import annotations

from .base import Executor

EXECUTORS: dict[str, type[Executor]] = {}


def register(cls: type[Executor]) -> type[Executor]:
    EXECUTORS[cls.kind] = cls
    return cls
