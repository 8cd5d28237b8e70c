"""The ``stages:`` section of a study file: two-stage training's pretrain, read strictly.

One shared pretrain is built once and every trial fine-tunes from it (ctx.pretrained). The
driver runs it as its own recorded job (stage_runner), its checkpoint lives in the stage
cache (stage_cache) under the hash of its entry, parameters, length and seed.

    stages:
      pretrain:
        entry: jobs.ddbpn.train:pretrain
        epochs: 1000
        params: {w1: 0.01, ...}
        seed: 0
        cache_dir: /shared/pretrains     # default: the study's own cache/ (see below)
        timeout_s: 86400                 # default: none
        executor: {time_limit_min: 1440, gpus_per_job: 1, cpus_per_job: 16}

The key reads the params as the run does (``StageSpec.key``): those the entry names in its
``path_params`` (D-DBPN: train_dir, val_dir, vgg_weights) as absolute paths from where the
runs start, a whole number as an int. A key written before it read them so differs where a
path was relative (or ``./``, ``~``, a trailing ``/``) or a number was written ``4.0``: the
study that recorded it keeps it while it is whole (its trials were fine-tuned from it) and
builds it under the new key only where it is gone; no other study reuses an entry under an
old key (a shared cache may hold another folder's under it).
"""
from __future__ import annotations

import os
from typing import Any

from .config import optional_mapping, reject_unknown, require_mapping, take
from .contract import StageSpec, load_entry
from .errors import StudyError
from .space import parse_fixed

STAGE_KEYS = ["entry", "params", "epochs", "seed", "cache_dir", "timeout_s", "executor"]
#: executor keys a stage may not override: the study's executor runs it, one job at a time
FIXED_EXECUTOR_KEYS = ("kind", "max_concurrent")
#: executor keys that give one count (a key and its older name, or another way to ask)
SAME_COUNT = ({"gpus_per_node", "gpus_per_job", "gpus_per_task"}, {"cpus_per_task", "cpus_per_job"})


def parse_stages(raw: Any, python_path: tuple[str, ...], executor_options: dict[str, str]
                 | None = None, base_dir: str | None = None, load_code: bool = True,
                 check_data: bool = True, hints: dict[str, str] | None = None) -> StageSpec:
    """``executor_options``: the option kinds the study's executor declares (key -> kind);
    ``load_code=False``: the entry is not imported (readers of a history); ``hints``: where
    an executor option the study's executor lacks belongs (``study.executor_elsewhere``)."""
    raw = require_mapping(raw, "stages")
    reject_unknown(raw, ["pretrain"], "stages")
    pre = require_mapping(raw.get("pretrain"), "stages.pretrain")
    reject_unknown(pre, STAGE_KEYS, "stages.pretrain")
    entry = take(pre, "entry", "str", "stages.pretrain")
    params = optional_mapping(pre, "params", "stages.pretrain")
    for name, value in params.items():
        parse_fixed(name, value, f"stages.pretrain.params.{name}")
    epochs = take(pre, "epochs", "positive-int", "stages.pretrain", None)
    seed = take(pre, "seed", "nonneg-int", "stages.pretrain", 0)  # numpy refuses negative seeds
    timeout = take(pre, "timeout_s", "positive-number", "stages.pretrain", None)
    cache_dir = take(pre, "cache_dir", "str", "stages.pretrain", None)
    if cache_dir is not None:
        cache_dir = os.path.abspath(os.path.join(base_dir or os.getcwd(),
                                                 os.path.expanduser(cache_dir)))
        if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
            raise StudyError(f"stages.pretrain.cache_dir: {cache_dir} exists and is not a "
                             "directory")
    executor = parse_overrides(optional_mapping(pre, "executor", "stages.pretrain"),
                               executor_options or {}, hints)
    try:
        func = load_entry(entry, python_path) if load_code else None
    except StudyError as exc:
        raise StudyError(str(exc).replace("objective.entry", "stages.pretrain.entry", 1)) from None
    if check_data:
        check_params(func, dict(params), (), "stages.pretrain.params")
    paths = tuple(getattr(func, "path_params", ()) or ())  # the cache key reads them absolute
    return StageSpec(entry, dict(params), epochs, seed, cache_dir=cache_dir, executor=executor,
                     timeout_s=timeout, paths=paths, launch_dir=os.getcwd())


def check_params(func: Any, fixed: dict[str, Any], free, where: str) -> None:
    """An entry's own check of what a study gives it, where it has one
    (``func.check_params(fixed, free)``, raising ValueError that starts with the key): a job
    refuses a misspelt key or a data folder it cannot use while the study file is read, one
    line, nothing written, rather than every run failing (or a misspelt key being ignored)
    after its training. ``fixed``: the values every run gets; ``free``: the names a search
    varies."""
    check = getattr(func, "check_params", None)
    if not callable(check):
        return
    try:
        check(fixed, tuple(free))
    except (ValueError, TypeError) as exc:
        raise StudyError(f"{where}.{exc}") from None


UNSET = "(unset)"


def pretrain_changes(old: Any, new: Any) -> str:
    """What differs between the pretrain a study was started with and the one it now gives
    (their ``core()``s: entry, params, epochs, seed), each key with its old and new value:
    ``params.lr 0.0001 -> 0.001, epochs 1000 -> 500``; a pretrain added or dropped whole
    is said so."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return "stages.pretrain added" if not isinstance(old, dict) else "stages.pretrain removed"

    def flat(core: dict) -> dict[str, Any]:
        out = {k: v for k, v in core.items() if k != "params"}
        params = core.get("params")
        out.update({f"params.{k}": v for k, v in (params or {}).items()}
                   if isinstance(params, dict) else {"params": params})
        return out

    was, now = flat(old), flat(new)
    order = [k for k in ("entry", "epochs", "seed") if k in was or k in now]
    order += sorted(k for k in set(was) | set(now) if k not in order)
    return ", ".join(f"{k} {was.get(k, UNSET)!r} -> {now.get(k, UNSET)!r}".replace(
        repr(UNSET), UNSET) for k in order if was.get(k, UNSET) != now.get(k, UNSET))


def stage_options(study: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The pretrain's executor options: the study's, with the stage's in place of those it
    gives, a GPU or CPU count under any of its names included: a study's ``gpus_per_job: 1``
    beside a pretrain's ``gpus_per_node: 4`` was refused as one count given twice."""
    merged = dict(study)
    for names in SAME_COUNT:
        if names & set(overrides):
            for name in names:
                merged.pop(name, None)
    merged.update(overrides)
    return merged


def as_stage_error(exc: StudyError) -> StudyError:
    """An executor's refusal of the pretrain's options, naming the key where it was given
    (``stages.pretrain.executor.cleanup``, not the study's ``executor.cleanup``)."""
    text = str(exc)
    return StudyError(f"stages.pretrain.{text}" if text.startswith("executor") else text)


def parse_overrides(raw: dict[str, Any], kinds: dict[str, str],
                    hints: dict[str, str] | None = None) -> dict[str, Any]:
    """The stage's own resources: any option of the study's executor but its kind and width.
    ``raw``: the stage's ``executor:``, read by optional_mapping (``executor: 0`` was taken
    for none, as was ``params: 0``: a pretrain on the study's resources, or with no params).
    ``hints``: where an option the study's executor lacks belongs, said as for ``executor:``
    (``partition``: an option of executor kind slurm, not of local)."""
    where = "stages.pretrain.executor"
    for key in FIXED_EXECUTOR_KEYS:
        if key in raw:
            raise StudyError(f"{where}.{key}: the study's executor runs the stage, one job; "
                             f"give only its resources ({', '.join(kinds) or 'none for this kind'})")
    if raw and not kinds:
        known = [f"; {k}: {hints[k]}" for k in raw if k in (hints or {})]
        raise StudyError(f"{where}: the study's executor takes no options to override "
                         f"(got {', '.join(raw)}){known[0] if known else ''}")
    reject_unknown(raw, list(kinds), where, hints)
    return {k: take(raw, k, kind, where) for k, kind in kinds.items() if raw.get(k) is not None}
