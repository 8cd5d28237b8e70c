"""The stage cache: a pretrain's checkpoint under the hash of its configuration, built once.

``<cache root>/<hash>/`` (the study's ``cache/`` or ``stages.pretrain.cache_dir``, which several
studies may share) holds ``checkpoint.pt`` and ``done.json``. It is built under a file lock in
``<hash>.partial/``, renamed into place only when complete (kept when a build fails or its
job is requeued, so the next may continue from the checkpoint saved so far), so a crash
mid-pretrain leaves no half-written cache hit, and two builders (two drivers, a driver and a loop of one's own) never
run at once: the second finds the first's result when the lock is free.

``run_stage`` is what the driver submits as the stage's own job; ``ensure_pretrained`` serves
a trial run outside the driver that needs the checkpoint.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import time
from typing import Any

from filelock import FileLock, Timeout

from .contract import Ctx, StageSpec, load_entry

CHECKPOINT = "checkpoint.pt"
DONE = "done.json"
STAGE_ENTRY = "autotune.stage_cache:run_stage"


def final_dir(stage: StageSpec, study_dir: str, key: str | None = None) -> str:
    """The stage's entry in its cache: under its key now, or under ``key`` (one a history
    recorded)."""
    return os.path.join(stage.cache_root(study_dir), key or stage.key())


def checkpoint_of(stage: StageSpec, study_dir: str, key: str | None = None) -> str:
    return os.path.join(final_dir(stage, study_dir, key), CHECKPOINT)


def built(stage: StageSpec, study_dir: str) -> dict | None:
    """The ``done.json`` record of a complete build whose checkpoint is still there, whole
    (the size it was built with), or None: a checkpoint deleted or cut short after the build
    (a scratch purge, a full disk while copying) would fail every fine-tune reading it."""
    return built_in(final_dir(stage, study_dir))


def built_in(final: str) -> dict | None:
    """``built`` for the entry directory ``final`` (any key's)."""
    try:
        with open(os.path.join(final, DONE)) as fh:
            record = json.load(fh)
        size = os.path.getsize(os.path.join(final, CHECKPOINT))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("size", size) != size:
        return None
    return record


def damaged(stage: StageSpec, study_dir: str) -> bool:
    """A build recorded done whose checkpoint is gone or not the size it was built with."""
    return (os.path.exists(os.path.join(final_dir(stage, study_dir), DONE))
            and built(stage, study_dir) is None)


def building(stage: StageSpec, study_dir: str) -> bool:
    """Whether a builder holds the key's lock now (another study sharing ``cache_dir``, or a
    loop of one's own): a driver that waits for it costs nothing, where a job of its own would
    hold its resources (a GPU) waiting on the lock."""
    lock = final_dir(stage, study_dir) + ".lock"
    if not os.path.exists(lock):
        return False
    try:
        with FileLock(lock, timeout=0):
            return False
    except Timeout:
        return True
    except OSError:  # a cache this user may not lock: its job finds out
        return False


def ensure_pretrained(stage: StageSpec, study_dir: str, python_path: tuple[str, ...] = ()
                      ) -> str:
    """The checkpoint's path, building it first (under the lock) if nobody has yet."""
    ensure(stage, study_dir, python_path)
    return checkpoint_of(stage, study_dir)


def ensure(stage: StageSpec, study_dir: str, python_path: tuple[str, ...] = (),
           job: Any = None) -> tuple[bool, dict]:
    """(built by this call, the done record). ``job``: the ctx of the stage's job, whose
    ``extra`` (``requeues``, ``slurm_job_id``, a rank's), attempt and directories the entry
    gets as a trial would."""
    final = final_dir(stage, study_dir)
    record = built(stage, study_dir)
    if record is not None:
        return False, record
    os.makedirs(os.path.dirname(final), exist_ok=True)
    with FileLock(final + ".lock"):
        record = built(stage, study_dir)
        if record is not None:
            return False, record
        if os.path.isdir(final):  # a build whose checkpoint was lost since: build it again
            shutil.rmtree(final)
        for stale in glob.glob(glob.escape(final) + ".tmp-*"):  # an older version's builders'
            shutil.rmtree(stale, ignore_errors=True)
        return True, build(stage, final, python_path, job)


def build(stage: StageSpec, final: str, python_path: tuple[str, ...], job: Any = None
          ) -> dict:
    """Run the entry in ``<final>.partial/``, renamed to ``final`` once it is complete. The
    folder is the same for every builder of the key and outlives one that was stopped (a
    SLURM job requeued at its time limit or preempted exits through here, as does one that
    timed out too often): the next (the requeued job, the next run's attempt) finds the
    checkpoint the entry saved at ``ctx.checkpoint_path`` and may continue from it, as a trial
    does from its own. An entry that failed (raised) leaves nothing: the next starts afresh."""
    work = f"{final}.partial"
    passed = {k: getattr(job, k) for k in ("attempt", "study_dir", "launch_dir",
                                           "study_file_dir", "extra")
              if getattr(job, k, None) is not None}
    ctx = Ctx(trial=-1, trial_dir=work, seed=stage.seed, epochs=stage.epochs,
              checkpoint_path=os.path.join(work, CHECKPOINT), **passed)
    began = time.time()
    os.makedirs(work, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(work, DONE))  # a record is written only below, once complete
    try:
        result = load_entry(stage.entry, python_path)(dict(stage.params), ctx)
        if not os.path.exists(os.path.join(work, CHECKPOINT)):
            raise RuntimeError(f"the {stage.name} wrote no checkpoint at ctx.checkpoint_path "
                               f"({CHECKPOINT})")
    except BaseException as exc:
        if not stopped(exc):  # it failed: the next attempt starts afresh
            shutil.rmtree(work, ignore_errors=True)
        raise
    extra = getattr(job, "extra", None) or {}
    record = {"stage": stage.core(), "result": result if isinstance(result, dict) else {},
              "seconds": time.time() - began, "pid": os.getpid(), "host": os.uname().nodename,
              "slurm_job_id": str(extra.get("slurm_job_id") or ""),
              # a local multi-rank job is its launcher's process (``pid-<launcher>``), each
              # rank a child of it: whichever rank built, the job is named through its parent
              "launcher_pid": os.getppid() if "world_size" in extra else None,
              "built": time.time(), "size": os.path.getsize(os.path.join(work, CHECKPOINT))}
    write_json(os.path.join(work, DONE), record)
    os.replace(work, final)
    return record


def stopped(exc: BaseException) -> bool:
    """Whether the build was stopped from outside rather than failed: an exit (submitit
    exits so as it requeues a job), Ctrl-C, or submitit's end of a job timed out or preempted
    too often (``UncompletedJobError``), whose next attempt may continue."""
    return not isinstance(exc, Exception) or type(exc).__name__ == "UncompletedJobError"


def run_stage(params: dict, ctx: Any) -> dict:
    """The stage's job: build the checkpoint if the cache lacks it; say what it cost."""
    stage = StageSpec(**params["stage"])
    made, record = ensure(stage, params["study_dir"], tuple(params.get("python_path") or ()),
                          ctx)
    return stage_result(record, made)


def built_by(record: dict, job_id: str) -> bool:
    """Whether the build ``record`` (done.json) was made by the job the executor calls
    ``job_id``: a SLURM job by its id (recorded from ``ctx.extra``), a local worker by its
    process on this host (``pid-<pid>``; a multi-rank job by its launcher's, the parent of
    the rank that built). One test for every executor, so that a job whose result was lost
    is recorded from its build's record the same way under each."""
    slurm = record.get("slurm_job_id")
    if slurm:
        return str(slurm) == job_id
    processes = {f"pid-{record.get('pid')}", f"pid-{record.get('launcher_pid')}"}
    return job_id in processes and record.get("host") == os.uname().nodename


def stage_result(record: dict, made: bool) -> dict:
    """The stage job's result from the build's ``done.json`` record: what ``run_stage``
    returns, and what the driver reads back from the record where the job's own outcome file
    was damaged after a whole build (``StageRunner``): the record holds all of it."""
    result = record.get("result") or {}
    out = {k: float(v) for k, v in result.items()
           if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not made:
        out.pop("cost_s", None)  # another job paid for it
    out["built"] = 1.0 if made else 0.0
    seconds = record.get("seconds", 0.0)
    out["build_s"] = float(seconds) if isinstance(seconds, (int, float)) else 0.0
    return out


def write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(data, fh, default=str, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
