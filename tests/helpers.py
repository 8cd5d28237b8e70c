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


#: the space of ``slurm_history``'s study
SLURM_SPACE = {"x": {"values": [1, 2, 3]}}


def slurm_history(d, *events) -> None:
    """A SLURM study's history in ``d`` (a Path): its record, two trials asked, then
    ``events``."""
    from autotune import events as ev

    identity = {"space": SLURM_SPACE, "algorithm": "grid", "seed": 0, "search_options": {},
                "metric": "loss", "mode": "min", "pretrain": None}
    journal = Journal(str(d / "history.jsonl"))
    journal.append([ev.study("s", 0.0, identity, {"executor": {"kind": "slurm"}}),
                    ev.ask(0.0, 2, [ev.trial_entry(0, {"x": 1}), ev.trial_entry(1, {"x": 2})]),
                    *events])
    journal.close()


def fake_slurm(tmp_path, monkeypatch, sacct: str, squeue: str = "") -> str:
    """``sacct`` and ``squeue`` on PATH that run these shell lines instead of SLURM's, and a
    ``scancel`` that only logs its arguments, one call a line, into the file returned."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "scancel.log"
    for name, body in (("sacct", sacct), ("squeue", squeue),
                       ("scancel", f'echo "$@" >> {log}')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return str(log)


def full_executor(directory: str, max_concurrent: int):
    """An inline executor whose every submit is refused as sbatch at its submit limit
    refuses it: the driver holds the trials back, asked and never submitted."""
    from autotune.executors.base import SubmitLimit
    from autotune.executors.inline import InlineExecutor

    class Full(InlineExecutor):
        def submit(self, job):
            raise SubmitLimit("executor: sbatch refused", "QOSMaxSubmitJobPerUserLimit")

    return Full(directory, max_concurrent, 0.0)
