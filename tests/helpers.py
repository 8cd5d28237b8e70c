"""Shared bits for the tests: write a study file, run the CLI, read a history."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import yaml

from autotune.history import History
from autotune.journal import Journal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def study_dict(**over: Any) -> dict:
    base = {
        "name": "t",
        "objective": {"entry": "tests.objectives:quadratic", "metric": "loss", "mode": "min"},
        "space": {"x": {"low": -3.0, "high": 3.0}, "y": {"values": [-1.0, -0.5, 0.0, 0.5]}},
        "search": {"algorithm": "random", "seed": 0, "max_trials": 10},
        "executor": {"kind": "inline", "max_concurrent": 1},
    }
    for key, value in over.items():
        if key in ("objective", "search", "executor") and isinstance(value, dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def write_study(path: str, data: dict) -> str:
    with open(path, "w") as fh:
        yaml.safe_dump(data, fh)
    return path


def cli(*args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess:
    kw.setdefault("cwd", REPO)
    return subprocess.run([sys.executable, "-m", "autotune", *args],
                          capture_output=True, text=True, timeout=timeout, **kw)


def history(directory: str) -> History:
    return History.load(Journal(os.path.join(directory, "history.jsonl")))


def tree(d: str) -> dict:
    """Every file under ``d`` with its bytes (None where it cannot be read), and every
    directory: compared before and after, what a refused command must leave as it was."""
    out: dict[str, bytes | None] = {}
    for root, _, files in os.walk(d):
        out[os.path.relpath(root, d) + "/"] = b""
        for name in files:
            path = os.path.join(root, name)
            if os.access(path, os.R_OK):
                with open(path, "rb") as fh:
                    out[os.path.relpath(path, d)] = fh.read()
            else:
                out[os.path.relpath(path, d)] = None
    return out


def mark_written_by_newer(directory: str) -> int:
    """Rewrite the study record of ``directory``'s history as a newer autotune would have
    written it (the next schema version, its checksum recomputed); returns that version."""
    import json

    from autotune import events as ev

    path = os.path.join(directory, "history.jsonl")
    with open(path, "rb") as fh:
        lines = fh.read().splitlines(keepends=True)
    record = json.loads(lines[0])
    del record["c"]
    record["version"] = ev.SCHEMA + 1
    with open(path, "wb") as fh:
        fh.writelines([ev.encode(record)] + lines[1:])
    return record["version"]
