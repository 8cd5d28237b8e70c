"""Write the histories the compatibility test resumes: one per searcher, for this version.

    PYTHONPATH=. python tests/data/make_history.py

writes ``tests/data/history_v<schema>_<algorithm>.jsonl`` in the schema the installed code
writes. Keep every file it ever wrote: each is a promise that a history of that schema
resumes under every later version (tests/test_compat.py). The version-1 files were written
by the code before the events module (commit 5e464d2), run the same way from a checkout of it.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from autotune.driver import Driver  # noqa: E402
from autotune.study import parse_study  # noqa: E402

import autotune  # noqa: E402

if os.path.exists(os.path.join(os.path.dirname(autotune.__file__), "events.py")):
    from autotune.events import SCHEMA
else:  # before the events module: schema 1
    SCHEMA = 1

HERE = os.path.dirname(os.path.abspath(__file__))
MF = {"min": 1, "max": 9, "eta": 3}
SEARCHES = {"random": {}, "axis": {}, "asha": {"fidelity": MF}}


def study(algorithm: str, options: dict) -> dict:
    return {"name": f"compat-{algorithm}",
            "objective": {"entry": "tests.objectives:quadratic", "metric": "loss", "mode": "min"},
            "space": {"x": {"values": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]},
                      "y": {"values": [-1.0, -0.5, 0.0, 0.5]}, "cost_s": 10.0},
            "search": {"algorithm": algorithm, "seed": 3, "max_trials": 16, **options},
            "executor": {"kind": "simulated", "max_concurrent": 3},
            "retries": 1}


def main() -> None:
    for algorithm, options in SEARCHES.items():
        with tempfile.TemporaryDirectory() as tmp:
            d = os.path.join(tmp, "d")
            Driver(parse_study(study(algorithm, options)), d, progress=False).run()
            target = os.path.join(HERE, f"history_v{SCHEMA}_{algorithm}.jsonl")
            shutil.copyfile(os.path.join(d, "history.jsonl"), target)
            print(f"wrote {target}")


if __name__ == "__main__":
    main()
