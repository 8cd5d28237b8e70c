"""Two-stage training: one shared pretrain, produced once, that every trial fine-tunes from.

The pretrain's configuration (entry, parameters, length, seed) is hashed; its checkpoint lives
in ``<study>/cache/<hash>/``. Whichever trial first needs it builds it under a file lock while
the others wait on that lock, on this machine or any sharing the directory (SLURM nodes), so
it is made exactly once however many trials, workers or drivers ask. It is built in a
temporary directory renamed into place only when complete, so a crash mid-pretrain leaves
no half-written cache hit. A failure is written beside the cache as ``<hash>.failed.json``:
the trials that wait for it fail at once with the reason instead of each repeating it; a new
driver start clears it so a fixed pretrain is tried again.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from filelock import FileLock

from .config import reject_unknown, require_mapping, take
from .errors import StudyError

CHECKPOINT = "checkpoint.pt"
DONE = "done.json"


@dataclass(frozen=True)
class StageSpec:
    """A pretrain: what to run, with which fixed parameters, for how long."""

    entry: str
    params: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    seed: int = 0

    def key(self) -> str:
        text = json.dumps({"entry": self.entry, "params": self.params, "epochs": self.epochs,
                           "seed": self.seed}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.entry, "params": self.params, "epochs": self.epochs, "seed": self.seed}


def parse_stages(raw: Any, python_path: tuple[str, ...], load_code: bool = True) -> StageSpec:
    from .objective import load_entry
    from .space import parse_fixed

    raw = require_mapping(raw, "stages")
    reject_unknown(raw, ["pretrain"], "stages")
    pre = require_mapping(raw.get("pretrain"), "stages.pretrain")
    reject_unknown(pre, ["entry", "params", "epochs", "seed"], "stages.pretrain")
    entry = take(pre, "entry", "str", "stages.pretrain")
    params = require_mapping(pre.get("params") or {}, "stages.pretrain.params")
    for name, value in params.items():
        parse_fixed(name, value, f"stages.pretrain.params.{name}")
    epochs = take(pre, "epochs", "positive-int", "stages.pretrain", None)
    seed = take(pre, "seed", "int", "stages.pretrain", 0)
    try:
        if load_code:
            load_entry(entry, python_path)
    except StudyError as exc:
        raise StudyError(str(exc).replace("objective.entry", "stages.pretrain.entry", 1)) from None
    return StageSpec(entry, dict(params), epochs, seed)


def cache_paths(stage: StageSpec, study_dir: str) -> tuple[str, str]:
    root = os.path.join(study_dir, "cache")
    return os.path.join(root, stage.key()), os.path.join(root, stage.key() + ".failed.json")


def ensure_pretrained(stage: StageSpec, study_dir: str, python_path: tuple[str, ...] = ()) -> str:
    """The pretrain checkpoint's path, building it first if nobody has yet."""
    final, failed = cache_paths(stage, study_dir)
    checkpoint = os.path.join(final, CHECKPOINT)
    if os.path.exists(os.path.join(final, DONE)):
        return checkpoint
    os.makedirs(os.path.dirname(final), exist_ok=True)
    with FileLock(final + ".lock"):
        if os.path.exists(os.path.join(final, DONE)):
            return checkpoint
        if os.path.exists(failed):
            with open(failed) as fh:
                reason = json.load(fh).get("error", "unknown error")
            raise RuntimeError(f"pretrain {stage.key()} failed earlier: {reason}")
        build(stage, final, failed, python_path)
    return checkpoint


def build(stage: StageSpec, final: str, failed: str, python_path: tuple[str, ...]) -> None:
    from .objective import Ctx, load_entry

    work = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    ctx = Ctx(trial=-1, trial_dir=work, seed=stage.seed, epochs=stage.epochs,
              checkpoint_path=os.path.join(work, CHECKPOINT))
    began = time.time()
    try:
        result = load_entry(stage.entry, python_path)(dict(stage.params), ctx)
        if not os.path.exists(os.path.join(work, CHECKPOINT)):
            raise RuntimeError(f"the pretrain wrote no checkpoint at ctx.checkpoint_path ({CHECKPOINT})")
    except Exception as exc:  # noqa: BLE001 - recorded for every waiting trial to see
        reason = f"{type(exc).__name__}: {exc}"
        write_json(failed, {"error": reason, "traceback": traceback.format_exc(), "t": time.time()})
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(f"pretrain failed: {reason}") from exc
    write_json(os.path.join(work, DONE), {"stage": stage.to_dict(), "result": result,
                                          "seconds": time.time() - began, "pid": os.getpid()})
    os.replace(work, final)


def clear_failures(study_dir: str) -> list[str]:
    """A new driver start gives failed pretrains another chance (the user may have fixed them)."""
    gone = glob.glob(os.path.join(study_dir, "cache", "*.failed.json"))
    for path in gone:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    return gone


def write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(data, fh, default=str, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
