"""The objective contract in one import: its types (``contract``) and how a trial is run
(``runner``). Kept so that ``from autotune.objective import Ctx, run_objective`` goes on
working; the pieces live in modules that do not import each other in a circle.
"""
from __future__ import annotations

from .contract import Ctx, ObjectiveSpec, StageSpec, load_entry, trial_seed
from .runner import check_command, extras, format_command, judge, run_command, run_objective

__all__ = ["Ctx", "ObjectiveSpec", "StageSpec", "load_entry", "trial_seed", "check_command",
           "extras", "format_command", "judge", "run_command", "run_objective"]
