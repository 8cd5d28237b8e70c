"""The four-term super-resolution objective and the discriminator's loss.

    total = w1 * MSE(SR, HR)
          + w2 * sum over taps of MSE(VGG(SR), VGG(HR))                 (perceptual)
          + w3 * BCEWithLogits(D(SR), 1)                                (adversarial)
          + w4 * sum over taps of MSE(Gram(VGG(SR)), Gram(VGG(HR)))     (style)

Unlike the public PIRM training code: the VGG features are the real
convolutional features (not pooled RGB), SR is never detached on the generator
side (every term sends gradients to the generator) and the BCE targets have
the prediction's shape. Terms with a zero weight are not computed.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .vgg import DEFAULT_TAPS, VGG19Features

__all__ = ["gram_matrix", "SRLoss", "discriminator_loss", "generator_adversarial_loss"]


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """Per-sample Gram matrix N x C x C of an N x C x H x W map, normalised by
    C*H*W and computed in float32 (safe under fp16 autocast)."""
    n, c, h, w = feat.shape
    with torch.autocast(device_type=feat.device.type, enabled=False):
        f = feat.float().reshape(n, c, h * w)
        return torch.bmm(f, f.transpose(1, 2)) / float(c * h * w)


def generator_adversarial_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))


def discriminator_loss(disc: nn.Module, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """BCE of the discriminator: HR labelled real (1), SR (detached) fake (0)."""
    real = disc(hr)
    fake = disc(sr.detach())
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


class SRLoss:
    """Weighted sum of pixel MSE, VGG perceptual, adversarial and style terms.

    ``vgg`` is needed when ``w2`` or ``w4`` is non-zero, ``discriminator`` when
    ``w3`` is non-zero. Calling the object returns ``(total, parts)`` where
    ``parts`` maps ``"mse"``, ``"perceptual"``, ``"adversarial"``, ``"style"``
    to detached unweighted values of the terms that were computed.
    """

    def __init__(self, w1: float = 1.0, w2: float = 0.0, w3: float = 0.0, w4: float = 0.0,
                 vgg: VGG19Features | None = None, discriminator: nn.Module | None = None,
                 taps: Sequence[int] = DEFAULT_TAPS):
        self.w1, self.w2, self.w3, self.w4 = (float(w) for w in (w1, w2, w3, w4))
        for name, val in zip(("w1", "w2", "w3", "w4"), (self.w1, self.w2, self.w3, self.w4)):
            if val < 0 or val != val:
                raise ValueError(f"loss weight {name} must be a non-negative number, got {val}")
        if (self.w2 or self.w4) and vgg is None:
            raise ValueError("w2/w4 > 0 needs a VGG feature extractor")
        if self.w3 and discriminator is None:
            raise ValueError("w3 > 0 needs a discriminator")
        self.vgg = vgg
        self.discriminator = discriminator
        self.taps = tuple(taps)

    @property
    def uses_vgg(self) -> bool:
        return bool(self.w2 or self.w4)

    @property
    def uses_discriminator(self) -> bool:
        return bool(self.w3)

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor):
        parts: dict[str, torch.Tensor] = {}
        total = sr.new_zeros((), dtype=torch.float32)
        if self.w1:
            mse = F.mse_loss(sr.float(), hr.float())
            parts["mse"] = mse.detach()
            total = total + self.w1 * mse
        if self.uses_vgg:
            sr_feats = self.vgg(sr, self.taps)
            with torch.no_grad():
                hr_feats = self.vgg(hr, self.taps)
            if self.w2:
                perc = sum(F.mse_loss(a.float(), b.float()) for a, b in zip(sr_feats, hr_feats))
                parts["perceptual"] = perc.detach()
                total = total + self.w2 * perc
            if self.w4:
                style = sum(F.mse_loss(gram_matrix(a), gram_matrix(b))
                            for a, b in zip(sr_feats, hr_feats))
                parts["style"] = style.detach()
                total = total + self.w4 * style
        if self.uses_discriminator:
            adv = generator_adversarial_loss(self.discriminator(sr))
            parts["adversarial"] = adv.detach()
            total = total + self.w3 * adv
        return total, parts
