"""autotune: hyperparameter search for training programs on HPC systems.

The public API (everything else is internal and may change)::

    import autotune as at

    study = at.Study.from_yaml("study.yaml")        # or at.Study({...}) with the same keys
    result = study.run()                            # the CLI's driver; resumes like the CLI
    at.load("runs/demo").trials_dataframe()         # read-only: never imports the objective

    trial = study.ask(); study.tell(trial, 0.25)    # a loop of one's own, in the history too

    study = at.create_study("study.yaml")           # Optuna's names, the same engine
    study.optimize(train, n_trials=20)              # train(params, ctx), 20 more trials
    study.best_params; at.load_study("runs/demo")   # continue a study from its directory

Names are imported on first use, so ``import autotune`` stays cheap for trial processes.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Study", "Trial", "StudyView", "load", "create_study", "load_study", "StudyError",
           "StudyBusy", "StudyStopped", "__version__"]

_WHERE = {"Study": "api", "Trial": "api", "StudyView": "view", "load": "view",
          "create_study": "api", "load_study": "api",
          "StudyError": "errors", "StudyBusy": "errors",
          "StudyStopped": "errors"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'autotune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
