"""One training step of the D-DBPN job (generator, then discriminator), at a chosen precision.

Shared by ``train`` and ``scripts/bench_ddbpn_step.py`` so that the bench times exactly the
job's step. Precisions:

- ``bf16``: autocast to bfloat16, no GradScaler (bf16 has fp32's exponent range, so gradients
  do not underflow); chosen by ``auto`` on a GPU that supports it (Ampere and later).
- ``fp16``: autocast to float16 with a GradScaler per optimiser; ``auto`` on older GPUs.
- ``fp32``: no autocast (``auto`` on the CPU, and what ``amp: false`` means).

``channels_last`` and ``compile`` are options because their gain depends on the GPU and the
torch version: the bench measures them, the job uses them only when asked.
"""
from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from .losses import SRLoss, discriminator_loss

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_precision(requested: str, device: torch.device) -> str:
    """What ``requested`` means on ``device``: never a precision the device cannot run well."""
    requested = str(requested).lower()
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if device.type != "cuda":
        if requested == "fp16":
            log.warning("fp16 autocast needs CUDA; running in fp32 on %s", device)
        return "bf16" if requested == "bf16" else "fp32"
    bf16_ok = torch.cuda.is_bf16_supported()
    if requested == "auto":
        return "bf16" if bf16_ok else "fp16"
    if requested == "bf16" and not bf16_ok:
        log.warning("this GPU has no bf16 support: fp16 with a GradScaler instead")
        return "fp16"
    return requested


def make_scalers(precision: str, device: torch.device
                 ) -> tuple[torch.amp.GradScaler, torch.amp.GradScaler]:
    """Generator's and discriminator's GradScalers: enabled for fp16 on CUDA only."""
    scaled = precision == "fp16" and device.type == "cuda"
    return (torch.amp.GradScaler("cuda", enabled=scaled),
            torch.amp.GradScaler("cuda", enabled=scaled))


def compile_module(module: nn.Module, mode: Any) -> nn.Module:
    """``torch.compile`` with ``mode`` (True: the default mode; "reduce-overhead" uses CUDA
    graphs); the module is returned unchanged where compiling is off."""
    if not mode or str(mode).lower() in ("0", "false", "no", "off", "none"):
        return module
    kw = {} if mode is True or str(mode).lower() in ("1", "true", "yes", "on", "default") \
        else {"mode": str(mode)}
    return torch.compile(module, **kw)


class Stepper:
    """The four-loss step. ``gen``/``disc`` may be compiled wrappers; optimisers hold the
    original parameters, so checkpoints never depend on compiling."""

    def __init__(self, gen: nn.Module, disc: nn.Module | None, loss_fn: SRLoss,
                 opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer | None,
                 precision: str, device: torch.device, channels_last: bool = False,
                 scalers: tuple[torch.amp.GradScaler, torch.amp.GradScaler] | None = None):
        self.gen, self.disc, self.loss_fn = gen, disc, loss_fn
        self.opt_g, self.opt_d = opt_g, opt_d
        self.precision = precision
        self.device = device
        self.dtype = DTYPES.get(precision)
        self.autocast = self.dtype is not None
        self.scaler_g, self.scaler_d = scalers or make_scalers(precision, device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    @property
    def scaled(self) -> bool:
        return self.scaler_g.is_enabled()

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def __call__(self, lr_b: torch.Tensor, hr_b: torch.Tensor) -> torch.Tensor:
        """One step on a batch already on the device; the detached total generator loss."""
        disc = self.disc
        if disc is not None:
            disc.requires_grad_(False)
        with torch.autocast(device_type=self.device.type, dtype=self.dtype or torch.float32,
                            enabled=self.autocast):
            sr = self.gen(lr_b)
            total, _ = self.loss_fn(sr, hr_b)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(total).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        if disc is not None and self.opt_d is not None:
            disc.requires_grad_(True)
            with torch.autocast(device_type=self.device.type, dtype=self.dtype or torch.float32,
                                enabled=self.autocast):
                d_loss = discriminator_loss(disc, sr, hr_b)
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(d_loss).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
        return total.detach()
