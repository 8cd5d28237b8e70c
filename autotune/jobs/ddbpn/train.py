"""Objective entry points of the D-DBPN job: ``pretrain`` and ``finetune``.

Both follow the engine's objective contract ``f(params: dict, ctx) -> dict``:

ctx attributes used: ``trial`` (int), ``trial_dir`` (existing directory),
``seed`` (int), ``epochs`` (int or None -> ``params["epochs"]`` or the
default), ``pretrained`` (checkpoint file to start a fine-tune from, or None),
``resume_from`` (checkpoint of an earlier, shorter run of the same
configuration to continue, or None) and ``checkpoint_path`` (where this run's
final checkpoint goes).

* ``pretrain``: MSE only (weight ``w1``, default 0.01), returns
  ``{"loss", "psnr", "ssim", "niqe", "epochs", "seconds"}``.
* ``finetune``: starts from ``ctx.pretrained`` (generator weights) or continues
  ``ctx.resume_from``, trains with the four-term loss, evaluates on the
  validation images (SR PNGs written to ``<trial_dir>/sr/``) and returns
  ``{"niqe", "psnr", "ssim", "loss", "epochs", "seconds"}`` plus, when
  ``params["evaluate_command"]`` is set, the numeric keys of its JSON answer
  and ``"pi"`` when it reports ``"ma"``.

Both also return where the run's time went: ``process_age_s`` (process start to the entry:
interpreter and imports), ``setup_s`` (networks, VGG, data), ``first_step_s`` (cudnn
autotuning, lazy CUDA set-up, the loader's start), ``data_wait_s`` (time the loop waited on
the DataLoader), ``steps_per_s`` (steady rate after the first step) and ``eval_s``.
Precision (``precision``: auto, bf16, fp16, fp32) and the step are in ``step.py``.

Adam (0.9, 0.999); the learning rate is divided by 10 from epoch ``lr_step``
on (default: half of the run's target epochs, as the reference code). A
non-finite training loss raises ``FloatingPointError``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import parallel
from .data import ImageSource, TrainPatches, ValImage, load_validation
from .losses import SRLoss
from .metrics import niqe_y, perceptual_index, psnr_y, ssim_y
from .model import DDBPN, Discriminator
from .step import PRECISIONS, Stepper, compile_module, make_scalers, resolve_precision
from .vgg import DEFAULT_TAPS, load_vgg19, resolve_taps

__all__ = ["pretrain", "finetune", "DEFAULTS", "PRETRAIN_DEFAULT_W1", "FINETUNE_DEFAULT_WEIGHTS",
           "resolve_settings", "check_params", "evaluate", "load_checkpoint", "run_evaluator"]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "autotune-ddbpn-v1"

#: fixed settings and their defaults (the paper's network and training setup)
DEFAULTS: dict[str, Any] = {
    "scale": 4,               # 2, 4 or 8
    "n0": 256,                # initial feature channels
    "nR": 64,                 # projection-unit channels
    "T": 7,                   # number of up-projection units
    "patch": 32,              # LR patch side (HR patch = patch * scale)
    "batch": 20,
    "lr": 1e-4,
    "epochs": 2000,           # when ctx.epochs is None (reference code's nEpochs)
    "iters_per_epoch": None,  # None: folder -> ceil(n_images / batch) (one patch per
                              # image, as the reference code); built-in data -> 40
                              # (= 800 DIV2K images / batch 20)
    "lr_step": None,          # epoch (0-based) from which lr is /10; None: ceil(epochs / 2)
    "train_dir": None,        # folder of HR training images; None: scikit-image images
    "val_dir": None,          # folder of HR validation images; None: scikit-image images
    "val_crop": None,         # centre crop (HR px) of validation images; None: full images
    "shave": 4,               # border shaved before PSNR / SSIM / NIQE
    "vgg_weights": None,      # torchvision VGG19 state-dict file; None: seeded random VGG19
    "vgg_taps": DEFAULT_TAPS,  # VGG19 feature indices / names (ReLUs before pool2..pool5)
    "disc_width": 64,         # discriminator base channels
    "disc_fc": 1024,          # discriminator hidden linear width
    "workers": None,          # DataLoader workers; None: 0 on CPU, 4 on CUDA
    "amp": True,              # false: fp32 whatever ``precision`` says
    "precision": "auto",      # auto (CUDA: bf16 where supported, else fp16 + GradScaler;
                              # CPU: fp32) | bf16 | fp16 | fp32
    "cudnn_benchmark": "auto",  # auto: on when the run has >= 200 steps (its autotuning of
                                # every conv shape costs seconds, worth it only on long runs)
    "lr_cache": "auto",       # downscale each training image once (auto: when the run draws
                              # >= 500 patches; a per-patch resize costs 10-40 ms of CPU)
    "channels_last": "auto",  # NHWC tensors for the generator; auto: on a GPU (an H100, bf16,
                              # paper size: 44 ms a step against 51; scripts/bench_ddbpn_step.py)
    "compile": False,         # torch.compile the generator: true or a mode ("reduce-overhead"
                              # captures CUDA graphs)
    "threads": None,          # torch.set_num_threads if given
    "evaluate_command": None,  # shell command run after fine-tune evaluation
    "evaluate_timeout": 7200,  # seconds
    "save_sr": True,          # write SR validation PNGs to <trial_dir>/sr/
    "checkpoint_every_s": 600,  # pretrain: save a checkpoint to continue from at most this
                                # often (seconds; 0: every epoch) and when the job is stopped
}
PRETRAIN_DEFAULT_W1 = 0.01
#: fallback loss weights of a fine-tune when params lack them (the study sets them)
FINETUNE_DEFAULT_WEIGHTS = {"w1": 0.01, "w2": 0.1, "w3": 0.001, "w4": 0.0}

#: every key a run reads: anything else (``trian_dir``) is a mistake, not a default
KNOWN_KEYS = frozenset(DEFAULTS) | frozenset(FINETUNE_DEFAULT_WEIGHTS)

_INT_KEYS = ("scale", "n0", "nR", "T", "patch", "batch", "epochs", "iters_per_epoch",
             "lr_step", "val_crop", "shave", "disc_width", "disc_fc", "workers", "threads")


def _opt_int(v):
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none", "null")):
        return None
    return int(round(float(v)))


def resolve_settings(params: dict, stage: str) -> dict:
    """Merge ``params`` over ``DEFAULTS`` with types normalised, and the stage's loss weights.

    Every ValueError starts with the key (``scale: must be 2, 4 or 8, got 3``): the engine
    puts ``space.`` or ``stages.pretrain.params.`` before it (``check_params``), which glued
    a message that did not into ``space.unknown VGG19 layer 'relu9_9'``."""
    unknown = sorted(set(params or {}) - KNOWN_KEYS)
    if unknown:
        raise ValueError(unknown_key_text(unknown[0]))
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in dict(params or {}).items()})
    for k in _INT_KEYS:
        cfg[k] = _keyed(k, "a whole number", _opt_int, cfg.get(k))
    cfg["lr"] = _keyed("lr", "a number", float, cfg["lr"])
    cfg["checkpoint_every_s"] = _keyed("checkpoint_every_s", "a number", float,
                                       cfg["checkpoint_every_s"])
    if not cfg["checkpoint_every_s"] >= 0:
        raise ValueError(f"checkpoint_every_s: must be >= 0, got {cfg['checkpoint_every_s']}")
    try:
        cfg["vgg_taps"] = resolve_taps(
            cfg["vgg_taps"].split(",") if isinstance(cfg["vgg_taps"], str) else cfg["vgg_taps"])
    except ValueError as exc:
        raise ValueError(f"vgg_taps: {exc}") from None
    cfg["amp"] = str(cfg["amp"]).lower() not in ("0", "false", "no", "off")
    cfg["save_sr"] = str(cfg["save_sr"]).lower() not in ("0", "false", "no", "off")
    cfg["precision"] = str(cfg["precision"]).lower() if cfg["amp"] else "fp32"
    if cfg["precision"] not in PRECISIONS:
        raise ValueError(f"precision: must be one of {', '.join(PRECISIONS)}, "
                         f"got {cfg['precision']!r}")
    for key in ("cudnn_benchmark", "lr_cache", "channels_last"):
        text = str(cfg[key]).lower()
        cfg[key] = "auto" if text == "auto" else text in ("1", "true", "yes", "on")
    if stage == "pretrain":
        cfg.update(w1=_keyed("w1", "a number", float, cfg.get("w1", PRETRAIN_DEFAULT_W1)),
                   w2=0.0, w3=0.0, w4=0.0)
    else:
        for k, v in FINETUNE_DEFAULT_WEIGHTS.items():
            cfg[k] = _keyed(k, "a number", float, cfg.get(k, v))
    if not any(cfg[k] > 0 for k in ("w1", "w2", "w3", "w4")):
        raise ValueError("w1: the pretrain's loss weight is zero" if stage == "pretrain" else
                         "w1: all loss weights (w1, w2, w3, w4) are zero")
    if cfg["scale"] not in (2, 4, 8):
        raise ValueError(f"scale: must be 2, 4 or 8, got {cfg['scale']}")
    for k in ("n0", "nR", "T", "patch", "batch"):
        if cfg[k] < 1:
            raise ValueError(f"{k}: must be >= 1, got {cfg[k]}")
    if not (cfg["lr"] > 0 and math.isfinite(cfg["lr"])):
        raise ValueError(f"lr: must be positive, got {cfg['lr']}")
    return cfg


def _keyed(key: str, expected: str, convert: Callable[[Any], Any], value: Any) -> Any:
    """``convert(value)``, a failure said as ``key: expected ..., got ...`` (float's own
    ``could not convert string to float`` names no key)."""
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: expected {expected}, got {value!r}") from None


def unknown_key_text(key: str) -> str:
    """``trian_dir: not a setting of the D-DBPN job (did you mean 'train_dir'?)``"""
    import difflib
    near = difflib.get_close_matches(str(key), sorted(KNOWN_KEYS), n=1, cutoff=0.6)
    hint = f"did you mean {near[0]!r}?" if near else f"expected one of {', '.join(sorted(KNOWN_KEYS))}"
    return f"{key}: not a setting of the D-DBPN job ({hint})"


def check_params(fixed: dict, free=(), stage: str = "finetune") -> None:
    """What a study gives a run, checked before anything runs (the engine calls it while it
    reads the study file): ``fixed`` the values every run gets, ``free`` the names a search
    varies. Raises ValueError naming the key first (``train_dir: ...``): a misspelt key, a
    folder that is missing, empty or holds an unreadable image, no training image as large as
    one HR patch, a validation image too small for NIQE after the shave, a missing VGG19
    weights file. Each of them failed every run only after its training (the pretrain's
    hours spent first), or (a misspelt ``train_dir``) trained on the built-in images."""
    fixed = dict(fixed or {})
    unknown = sorted((set(fixed) | set(free)) - KNOWN_KEYS)
    if unknown:
        raise ValueError(unknown_key_text(unknown[0]))
    free = set(free)
    varied = {k: 1.0 for k in FINETUNE_DEFAULT_WEIGHTS if k in free}  # any weight, not all zero
    cfg = resolve_settings({**fixed, **varied}, stage)
    from .data import check_folder
    known = lambda *keys: not (free & set(keys))  # noqa: E731 - the check needs their values
    if cfg["train_dir"] is not None:
        hr = cfg["patch"] * cfg["scale"] if known("patch", "scale") else 1
        check_folder(cfg["train_dir"], "train_dir", min_side=hr, every=False,
                     why=f"one HR training patch ({cfg['patch']} x scale {cfg['scale']})")
    if cfg["val_dir"] is not None or cfg["val_crop"] is not None:
        from .niqe import PATCH
        shave = cfg["shave"] or 0
        trim = cfg["scale"] if known("scale") else 1  # sides are cut to multiples of the scale
        need = -(-(PATCH + 2 * shave) // trim) * trim if known("shave") else 1
        if cfg["val_crop"] is not None and known("val_crop") and cfg["val_crop"] < need:
            raise ValueError(f"val_crop: {cfg['val_crop']} px leaves less than one {PATCH} px "
                             f"NIQE patch after the {shave} px shave (at least {need})")
        if cfg["val_dir"] is not None:
            check_folder(cfg["val_dir"], "val_dir", min_side=need, every=True,
                         why=f"a {PATCH} px NIQE patch after the {shave} px shave")
    vgg = cfg["vgg_weights"]
    if vgg and not os.path.isfile(os.path.expanduser(str(vgg))):
        raise ValueError(f"vgg_weights: no such file: {vgg}")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _json_safe(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (str, int, float, bool)) else str(x) for x in v]
        else:
            out[k] = str(v)
    return out


def load_checkpoint(path: str | os.PathLike) -> dict:
    obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a checkpoint dictionary")
    return obj


def _save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _own_checkpoint(path: str, arch: dict, target: int, seed: int, params: dict) -> str | None:
    """``path`` where it holds a pretrain of these very settings stopped part-way (or done, its
    job stopped before it answered), to continue from; None where there is none or it is
    another run's (other epochs, seed or params: that one starts afresh and replaces it)."""
    if not os.path.exists(path):
        return None
    try:
        ck = load_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - cut short by a kill mid-write: start afresh
        log.warning("pretrain: %s is no checkpoint to continue from (%s); starting afresh",
                    path, exc)
        return None
    same = (ck.get("stage") == "pretrain" and ck.get("arch") == arch
            and ck.get("target_epochs") == target and ck.get("seed") == seed
            and ck.get("params") == _json_safe(dict(params or {}))
            and int(ck.get("epochs_done", target + 1)) <= target)
    if not same:
        log.warning("pretrain: %s was saved by a run of other settings; starting afresh", path)
    return path if same else None


def _stopped(exc: BaseException) -> bool:
    """A run stopped from outside, not failed: an exit (submitit's requeue at a time limit or a
    preemption), Ctrl-C, or submitit's end of a job timed out too often."""
    return not isinstance(exc, Exception) or type(exc).__name__ == "UncompletedJobError"


def _get_rng() -> dict:
    """The random generators' states, in types a ``weights_only`` load reads."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos),
                       int(has_gauss), float(gauss)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng(state: dict) -> None:
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x)
                          for x in state["python"]))
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if state.get("cuda") is not None and torch.cuda.is_available() \
            and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _generator_state(obj: dict) -> dict:
    """Generator state dict from a checkpoint or a bare state dict."""
    state = obj.get("model", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise ValueError("no generator weights in checkpoint")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


@lru_cache(maxsize=2)
def _shared_vgg(path: str | None, device: str):
    """Frozen VGG19, built once per process and (weights file, device)."""
    return load_vgg19(path, device=device)


@lru_cache(maxsize=8)
def _validation_set(scale: int, folder: str | None, crop: int | None) -> tuple[ValImage, ...]:
    return tuple(load_validation(scale, folder, crop))


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    a = t.detach().float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).cpu().numpy()
    return np.ascontiguousarray(a.transpose(1, 2, 0))


@torch.inference_mode()
def evaluate(model: DDBPN, images, device: torch.device | str = "cpu",
             sr_dir: str | os.PathLike | None = None, border: int = 4) -> dict:
    """Super-resolve the validation images and average PSNR / SSIM / NIQE
    (Y channel, ``border`` px shaved). SR images go to ``sr_dir`` as PNG."""
    from PIL import Image
    was_training = model.training
    model.eval()
    psnrs, ssims, niqes = [], [], []
    if sr_dir is not None:
        Path(sr_dir).mkdir(parents=True, exist_ok=True)
    try:
        for im in images:
            x = torch.from_numpy(im.lr.transpose(2, 0, 1).astype(np.float32) / 255.0)[None].to(device)
            sr = _to_uint8(model(x)[0])
            if sr_dir is not None:
                Image.fromarray(sr).save(Path(sr_dir) / f"{im.name}.png")
            psnrs.append(psnr_y(sr, im.hr, border))
            ssims.append(ssim_y(sr, im.hr, border))
            niqes.append(niqe_y(sr, border))
    finally:
        model.train(was_training)
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
            "niqe": float(np.mean(niqes))}


def run_evaluator(command: str, trial_dir: str, sr_dir: str, timeout: float | None = None) -> dict:
    """Run the external evaluator; return the numeric entries of the JSON
    object on the last non-empty line of its stdout.

    The placeholders ``{trial_dir}`` and ``{sr_dir}`` are replaced by the
    paths, shell-quoted for where they stand (a study directory with a space
    stays one argument); other braces are left alone, so commands may contain
    literal ``{...}``.
    """
    from ...runner import substitute

    cmd = substitute(command, {"trial_dir": str(trial_dir), "sr_dir": str(sr_dir)})
    try:
        proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"evaluate_command timed out after {timeout} s: {cmd}") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"evaluate_command failed with exit status {proc.returncode}: "
                           f"{(proc.stderr or '')[-2000:]}")
    lines = [ln for ln in (proc.stdout or "").splitlines() if ln.strip()]
    try:
        obj = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        raise RuntimeError("evaluate_command did not print a JSON object on its last stdout line; "
                           f"stdout tail: {(proc.stdout or '')[-500:]!r}; "
                           f"stderr tail: {(proc.stderr or '')[-1500:]}")
    return {k: float(v) for k, v in obj.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _process_age() -> float:
    """Seconds from this process's start to now (Linux ``/proc``; 0 where unknown): the
    interpreter and the imports a trial pays before its entry is called."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _lr_at(epoch: int, cfg: dict, target: int) -> float:
    step = cfg["lr_step"] if cfg["lr_step"] is not None else (target + 1) // 2
    return cfg["lr"] * (0.1 if epoch >= step else 1.0)


def _run(stage: str, params: dict, ctx) -> dict:
    """One run, data-parallel over the trial's ranks when it has several (parallel.py)."""
    ranks = parallel.from_environment()
    device = parallel.start(ranks, torch.cuda.is_available())
    try:
        return _run_rank(stage, params, ctx, ranks, device)
    finally:
        parallel.stop(ranks)


def _run_rank(stage: str, params: dict, ctx, ranks: parallel.Ranks,
              device: torch.device) -> dict:
    cfg = resolve_settings(params, stage)
    if cfg["batch"] < ranks.world:
        raise ValueError(f"batch {cfg['batch']} is smaller than the world size {ranks.world}: "
                         "every rank needs a slice of it")
    seed = int(getattr(ctx, "seed", 0) or 0)
    trial = getattr(ctx, "trial", None)
    trial_dir = getattr(ctx, "trial_dir", None)
    ctx_epochs = getattr(ctx, "epochs", None)
    target = int(ctx_epochs) if ctx_epochs is not None else int(cfg["epochs"])
    if target < 0:
        raise ValueError("epochs must be >= 0")
    resume_from = getattr(ctx, "resume_from", None)
    pretrained = getattr(ctx, "pretrained", None) if stage == "finetune" else None
    checkpoint_path = getattr(ctx, "checkpoint_path", None)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])

    process_age = _process_age()
    began = time.perf_counter()
    _seed_everything(seed)
    cuda = device.type == "cuda"
    precision = resolve_precision(cfg["precision"], device)
    arch = {"scale": cfg["scale"], "n0": cfg["n0"], "nR": cfg["nR"], "T": cfg["T"]}

    gen = DDBPN(**arch).to(device)
    if cfg["channels_last"] == "auto":
        cfg["channels_last"] = device.type == "cuda"
    if cfg["channels_last"]:
        gen = gen.to(memory_format=torch.channels_last)
    hr_size = cfg["patch"] * cfg["scale"]
    disc = (Discriminator(hr_size, cfg["disc_width"], cfg["disc_fc"]).to(device)
            if cfg["w3"] > 0 else None)
    vgg = (_shared_vgg(cfg["vgg_weights"], str(device))
           if (cfg["w2"] > 0 or cfg["w4"] > 0) else None)
    loss_fn = SRLoss(cfg["w1"], cfg["w2"], cfg["w3"], cfg["w4"], vgg=vgg,
                     discriminator=disc, taps=cfg["vgg_taps"])
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg["lr"], betas=(0.9, 0.999))
    opt_d = (torch.optim.Adam(disc.parameters(), lr=cfg["lr"], betas=(0.9, 0.999))
             if disc is not None else None)
    scaler_g, scaler_d = make_scalers(precision, device)
    amp = scaler_g.is_enabled()  # fp16: the scalers' state goes into the checkpoint

    done, last_loss = 0, float("nan")
    rng = None
    if stage == "pretrain" and not resume_from and checkpoint_path:
        # the pretrain's own, saved before its job was stopped (a SLURM requeue at the time
        # limit, a preemption, the next run's attempt): it continues from there
        resume_from = _own_checkpoint(checkpoint_path, arch, target, seed, params)
    if resume_from:
        ck = load_checkpoint(resume_from)
        if ck.get("stage") != stage:
            raise ValueError(f"resume_from {resume_from} is a {ck.get('stage')!r} checkpoint, "
                             f"not {stage!r}")
        if ck.get("arch") != arch:
            raise ValueError(f"resume_from {resume_from} has architecture {ck.get('arch')}, "
                             f"this run {arch}")
        gen.load_state_dict(_generator_state(ck))
        opt_g.load_state_dict(ck["opt_g"])
        if disc is not None and ck.get("discriminator") is not None:
            disc.load_state_dict(ck["discriminator"])
            if ck.get("opt_d") is not None:
                opt_d.load_state_dict(ck["opt_d"])
        if amp and ck.get("scaler_g"):
            scaler_g.load_state_dict(ck["scaler_g"])
        if amp and disc is not None and ck.get("scaler_d"):
            scaler_d.load_state_dict(ck["scaler_d"])
        done = int(ck["epochs_done"])
        last_loss = float(ck.get("last_loss", float("nan")))
        rng = ck.get("rng")
        log.info("trial %s: resuming %s from %s at epoch %d", trial, stage, resume_from, done)
    elif pretrained:
        gen.load_state_dict(_generator_state(load_checkpoint(pretrained)))
        log.info("trial %s: fine-tune starts from %s", trial, pretrained)
    elif stage == "finetune":
        log.warning("trial %s: no ctx.pretrained checkpoint; fine-tuning from a random "
                    "initialisation", trial)

    gen_dp = parallel.wrap(gen, ranks, device)    # the same modules, gradients averaged
    disc_dp = parallel.wrap(disc, ranks, device)  # over the ranks when there are several

    source = ImageSource(cfg["train_dir"])
    iters = cfg["iters_per_epoch"]
    if iters is None:
        iters = math.ceil(len(source) / cfg["batch"]) if cfg["train_dir"] else 40
    iters = max(int(iters), 1)
    dataset = TrainPatches(source, cfg["scale"], cfg["patch"], iters * cfg["batch"], seed=seed)
    steps_planned = max(target - done, 0) * iters
    cache = cfg["lr_cache"]
    if cache is True or (cache == "auto" and steps_planned * cfg["batch"] >= 500):
        dataset.warm()  # LR images made once here; forked loader workers inherit them
    workers = cfg["workers"] if cfg["workers"] is not None else (4 if cuda else 0)
    sampler = parallel.BatchSlice(len(dataset), cfg["batch"], ranks)  # this rank's slices
    loader = DataLoader(dataset, batch_size=sampler.size, sampler=sampler, drop_last=True,
                        num_workers=workers, pin_memory=cuda, persistent_workers=workers > 0)

    stepper = Stepper(compile_module(gen_dp, cfg["compile"]), disc_dp, loss_fn, opt_g, opt_d,
                      precision, device, cfg["channels_last"], (scaler_g, scaler_d))
    bench = cfg["cudnn_benchmark"]
    if cuda:
        torch.backends.cudnn.benchmark = steps_planned >= 200 if bench == "auto" else bench

    if rng is not None:
        _set_rng(rng)

    def payload(with_rng: bool) -> dict:
        out = {
            "format": CHECKPOINT_FORMAT, "stage": stage, "arch": arch,
            "model": gen.state_dict(),
            "discriminator": disc.state_dict() if disc is not None else None,
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict() if opt_d is not None else None,
            "scaler_g": scaler_g.state_dict() if amp else None,
            "scaler_d": scaler_d.state_dict() if amp and disc is not None else None,
            "epochs_done": done, "target_epochs": target, "last_loss": last_loss,
            "seed": seed, "params": _json_safe(dict(params or {})),
        }
        if with_rng:  # a checkpoint to continue from: it goes on with the same random numbers
            out["rng"] = _get_rng()
        return out

    # the pretrain (hours) saves what it has done so far, to continue from where its job is
    # stopped: every checkpoint_every_s, and as submitit's requeue (SystemExit) or its
    # "timed out too many times", or a Ctrl-C that reaches it, pass through (whole epochs only:
    # the steps of the epoch it was stopped in are done again). The local executor kills a
    # stopped driver's pretrain outright: there only the periodic saves are kept
    saving = stage == "pretrain" and bool(checkpoint_path) and ranks.main
    saved_at = time.monotonic()

    t0 = time.perf_counter()
    setup_s = t0 - began
    data_wait = first_step = 0.0
    step_times: list[float] = []
    def _epoch(epoch: int) -> float:
        """One epoch's steps; its mean loss over the ranks."""
        nonlocal data_wait, first_step
        lr_now = _lr_at(epoch, cfg, target)
        for group in opt_g.param_groups:
            group["lr"] = lr_now
        if opt_d is not None:
            for group in opt_d.param_groups:
                group["lr"] = lr_now
        sampler.epoch = epoch
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        steps = 0
        fetched = time.perf_counter()
        for lr_b, hr_b in loader:
            data_wait += time.perf_counter() - fetched
            total = stepper(stepper.to_device(lr_b), stepper.to_device(hr_b))
            loss_sum += total.double()
            steps += 1
            if not step_times:
                if cuda:
                    torch.cuda.synchronize()
                first_step = time.perf_counter() - fetched
            step_times.append(time.perf_counter())
            fetched = time.perf_counter()
            if not cuda and not math.isfinite(float(total.detach())):
                raise FloatingPointError(f"loss became NaN at epoch {epoch + 1}")
        loss = float(parallel.mean_over_ranks(loss_sum, ranks)) / max(steps, 1)
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became NaN at epoch {epoch + 1}")
        return loss

    gen.train()
    if disc is not None:
        disc.train()
    try:
        for epoch in range(done, target):
            last_loss = _epoch(epoch)
            done = epoch + 1
            log.info("trial %s %s epoch %d/%d lr %.3g loss %.6g", trial, stage, done, target,
                     opt_g.param_groups[0]["lr"], last_loss)
            if saving and done < target and \
                    time.monotonic() - saved_at >= cfg["checkpoint_every_s"]:
                _save_checkpoint(checkpoint_path, payload(True))
                saved_at = time.monotonic()
    except BaseException as exc:
        if saving and _stopped(exc) and done > 0:
            _save_checkpoint(checkpoint_path, payload(True))
            log.warning("trial %s: %s stopped; saved epoch %d/%d to %s to continue from",
                        trial, stage, done, target, checkpoint_path)
        raise
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    steady = (len(step_times) - 1) / (step_times[-1] - step_times[0]) if len(step_times) > 2 else 0.0

    if not ranks.main:  # rank 0 saves, evaluates and answers for the trial
        return {"loss": float(last_loss), "epochs": float(done), "seconds": float(seconds),
                "rank": float(ranks.rank)}
    if checkpoint_path:
        _save_checkpoint(checkpoint_path, payload(False))

    eval_began = time.perf_counter()
    if cuda:  # each validation image is a new shape: autotuning them costs more than it saves
        torch.backends.cudnn.benchmark = False
    images = _validation_set(cfg["scale"], cfg["val_dir"], cfg["val_crop"])
    sr_dir = str(Path(trial_dir) / "sr") if (trial_dir and cfg["save_sr"]) else None
    result = evaluate(gen, images, device, sr_dir, cfg["shave"])
    # where a run's time goes: the process's start-up (interpreter, imports), set-up (model,
    # VGG, data), the first step (cudnn autotuning, lazy CUDA init, loader start), waiting on
    # data, steady steps per second, evaluation
    result.update(loss=float(last_loss), epochs=float(done), seconds=float(seconds),
                  process_age_s=float(process_age), setup_s=float(setup_s),
                  first_step_s=float(first_step), data_wait_s=float(data_wait),
                  steps_per_s=float(steady), eval_s=float(time.perf_counter() - eval_began))

    command = cfg.get("evaluate_command")
    if stage == "finetune" and command:
        if sr_dir is None:
            sr_dir = str(Path(trial_dir or ".") / "sr")
            evaluate(gen, images, device, sr_dir, cfg["shave"])
        extra = run_evaluator(str(command), str(trial_dir or "."), sr_dir,
                              cfg.get("evaluate_timeout"))
        if "niqe" in extra:
            result["niqe_python"] = result["niqe"]
        result.update(extra)
        if "ma" in extra and "pi" not in extra:
            result["pi"] = perceptual_index(extra["ma"], result["niqe"])
    return result


def pretrain(params: dict, ctx) -> dict:
    """MSE-only pre-training of D-DBPN (``w1`` from params, default 0.01)."""
    return _run("pretrain", params, ctx)


def finetune(params: dict, ctx) -> dict:
    """Four-loss fine-tuning from ``ctx.pretrained`` (or continuing ``ctx.resume_from``)."""
    return _run("finetune", params, ctx)


# the engine checks a study's values with these before it writes anything (stages.check_params)
pretrain.check_params = lambda fixed, free=(): check_params(fixed, free, "pretrain")
finetune.check_params = lambda fixed, free=(): check_params(fixed, free, "finetune")
# the settings naming a file or folder: a shared pretrain's cache key reads them as absolute
# paths (StageSpec.key), so two studies' relative train_dir never share a checkpoint
pretrain.path_params = finetune.path_params = ("train_dir", "val_dir", "vgg_weights")
