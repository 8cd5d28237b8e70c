"""VGG19 convolutional stack used as the feature extractor of the perceptual
and style losses.

The layer stack is laid out exactly like torchvision's ``vgg19().features``
(``features.0`` = conv1_1 ... ``features.36`` = pool5), so a standard
torchvision VGG19 state-dict file (``vgg19-dcbb9e9d.pth`` or any file holding
``features.N.weight`` / ``features.N.bias``) loads by key name. Weights cannot
be downloaded here: without a file the network gets a fixed, seeded random
(Kaiming-normal) initialisation, which still gives a usable, if weaker,
perceptual loss.
"""
from __future__ import annotations

import logging
import os
from typing import Iterable, Sequence

import torch
from torch import nn

__all__ = ["VGG19Features", "load_vgg19", "DEFAULT_TAPS", "LAYER_INDEX",
           "IMAGENET_MEAN", "IMAGENET_STD", "resolve_taps"]

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# VGG19 configuration "E": channel counts, "M" = 2x2 max pooling
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def _layer_names() -> list[str]:
    names, block, conv = [], 1, 1
    for v in _CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())
LAYER_INDEX: dict[str, int] = {n: i for i, n in enumerate(LAYER_NAMES)}

#: the ReLUs right before pool2, pool3, pool4 and pool5
DEFAULT_TAPS: tuple[int, ...] = (LAYER_INDEX["relu2_2"], LAYER_INDEX["relu3_4"],
                                 LAYER_INDEX["relu4_4"], LAYER_INDEX["relu5_4"])  # (8, 17, 26, 35)


def resolve_taps(taps: Iterable[int | str] | None) -> tuple[int, ...]:
    """Normalise tap specs (indices into ``features`` or names such as
    ``"relu3_4"``) into a sorted tuple of unique indices."""
    if taps is None:
        return DEFAULT_TAPS
    if isinstance(taps, (int, str)):
        taps = [taps]
    out = set()
    for t in taps:
        if isinstance(t, str):
            if t.strip().lstrip("-").isdigit():
                t = int(t)
            elif t in LAYER_INDEX:
                t = LAYER_INDEX[t]
            else:
                raise ValueError(f"unknown VGG19 layer {t!r}")
        t = int(t)
        if not 0 <= t < len(LAYER_NAMES):
            raise ValueError(f"VGG19 feature index out of range: {t}")
        out.add(t)
    if not out:
        raise ValueError("at least one VGG tap is needed")
    return tuple(sorted(out))


class VGG19Features(nn.Module):
    """VGG19 ``features`` stack with ImageNet input normalisation.

    ``forward(x, taps)`` takes RGB in [0, 1] (N x 3 x H x W) and returns the
    list of activations after the layers ``taps`` (indices into
    ``self.features``), running the stack only as deep as needed.
    """

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.pretrained = False

    def forward(self, x: torch.Tensor, taps: Sequence[int] = DEFAULT_TAPS) -> list[torch.Tensor]:
        wanted = set(taps)
        last = max(wanted)
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        outs = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                outs.append(h)
            if i == last:
                break
        return outs

    def random_init(self, seed: int = 0) -> None:
        """Deterministic Kaiming-normal init that leaves the global RNG alone."""
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for m in self.features:
                if isinstance(m, nn.Conv2d):
                    fan_in = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
                    std = (2.0 / fan_in) ** 0.5
                    w = torch.randn(m.weight.shape, generator=gen, dtype=torch.float32) * std
                    m.weight.copy_(w)
                    m.bias.zero_()
        self.pretrained = False


def _extract_feature_state(obj) -> dict:
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError("VGG19 weights file does not hold a state dict")
    state = {}
    for key, val in obj.items():
        k = key[len("module."):] if key.startswith("module.") else key
        if k.startswith("features."):
            state[k] = val
        elif k.split(".")[0].isdigit():          # a bare ``features`` Sequential state dict
            state["features." + k] = val
    return state


def load_vgg19(path: str | os.PathLike | None = None, seed: int = 0,
               device: torch.device | str | None = None) -> VGG19Features:
    """Return a frozen, eval-mode VGG19 feature stack.

    ``path``: a torchvision VGG19 state-dict file (``features.N.weight`` ...;
    classifier keys are ignored). Without it a warning is logged and the
    fixed seeded random initialisation (``seed``) is used.
    """
    net = VGG19Features()
    if path:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        state = _extract_feature_state(obj)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"VGG19 weights {path}: missing keys {missing}, unexpected {unexpected}")
        net.pretrained = True
        log.info("VGG19 features loaded from %s", path)
    else:
        log.warning("no VGG19 weights file given (params['vgg_weights']): the perceptual and "
                    "style losses use a fixed seeded random VGG19 initialisation (seed %d)", seed)
        net.random_init(seed)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    if device is not None:
        net.to(device)
    return net
