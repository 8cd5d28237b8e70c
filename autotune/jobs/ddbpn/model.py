"""D-DBPN (Dense Deep Back-Projection Network) and its GAN discriminator.

Built from the description in Haris, Shakhnarovich and Ukita, "Deep
Back-Projection Networks for Super-Resolution" (CVPR 2018):

* feature extraction: 3x3 conv 3 -> n0, PReLU; 1x1 conv n0 -> nR, PReLU;
* T up-projection units and T-1 down-projection units, alternating;
  from the second down unit and the third up unit on, a unit receives the
  concatenation of every earlier output of the other resolution, squeezed back
  to nR channels by a 1x1 conv + PReLU;
* reconstruction: a 3x3 conv over the concatenation of all T HR outputs.

Every conv / transposed conv inside the network is followed by a PReLU (one
shared slope per layer). Weights are Kaiming-normal, biases zero.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["DDBPN", "Discriminator", "PROJECTION_GEOMETRY", "count_parameters"]

#: kernel, stride, padding of the projection convolutions per scale factor
PROJECTION_GEOMETRY = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2)}


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters()
               if p.requires_grad or not trainable_only)


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _conv_prelu(cin: int, cout: int, k: int, s: int = 1, p: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p), nn.PReLU())


def _deconv_prelu(cin: int, cout: int, k: int, s: int, p: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, k, s, p), nn.PReLU())


class UpProjection(nn.Module):
    """LR (nR channels) -> HR (nR channels) back-projection unit.

    ``h0 = up(x); l0 = down(h0); out = up(l0 - x) + h0``. With
    ``n_inputs > 1`` the input is a concatenation of ``n_inputs`` LR maps that a
    1x1 conv first reduces to ``nR`` channels (dense connection).
    """

    def __init__(self, nR: int, kernel: int, stride: int, padding: int, n_inputs: int = 1):
        super().__init__()
        self.reduce = _conv_prelu(n_inputs * nR, nR, 1) if n_inputs > 1 else None
        self.up_a = _deconv_prelu(nR, nR, kernel, stride, padding)
        self.down = _conv_prelu(nR, nR, kernel, stride, padding)
        self.up_b = _deconv_prelu(nR, nR, kernel, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reduce is not None:
            x = self.reduce(x)
        h0 = self.up_a(x)
        l0 = self.down(h0)
        return self.up_b(l0 - x) + h0


class DownProjection(nn.Module):
    """HR (nR channels) -> LR (nR channels) back-projection unit.

    ``l0 = down(x); h0 = up(l0); out = down(h0 - x) + l0``.
    """

    def __init__(self, nR: int, kernel: int, stride: int, padding: int, n_inputs: int = 1):
        super().__init__()
        self.reduce = _conv_prelu(n_inputs * nR, nR, 1) if n_inputs > 1 else None
        self.down_a = _conv_prelu(nR, nR, kernel, stride, padding)
        self.up = _deconv_prelu(nR, nR, kernel, stride, padding)
        self.down_b = _conv_prelu(nR, nR, kernel, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reduce is not None:
            x = self.reduce(x)
        l0 = self.down_a(x)
        h0 = self.up(l0)
        return self.down_b(h0 - x) + l0


class DDBPN(nn.Module):
    """Dense DBPN generator for 2x, 4x or 8x super-resolution.

    ``DDBPN(scale=4, n0=256, nR=64, T=7)`` is the paper's network
    (10,426,358 parameters). Input and output are RGB tensors, N x 3 x H x W,
    nominally in [0, 1]; the output is not clamped.
    """

    def __init__(self, scale: int = 4, n0: int = 256, nR: int = 64, T: int = 7,
                 in_channels: int = 3, out_channels: int = 3):
        super().__init__()
        if scale not in PROJECTION_GEOMETRY:
            raise ValueError(f"scale must be one of {sorted(PROJECTION_GEOMETRY)}, got {scale}")
        if T < 1:
            raise ValueError("T must be >= 1")
        self.scale, self.n0, self.nR, self.T = int(scale), int(n0), int(nR), int(T)
        k, s, p = PROJECTION_GEOMETRY[self.scale]
        self.features = nn.Sequential(
            _conv_prelu(in_channels, n0, 3, 1, 1),
            _conv_prelu(n0, nR, 1, 1, 0),
        )
        # up unit t (0-based) sees max(t, 1) LR maps; down unit t sees t + 1 HR maps
        self.up_units = nn.ModuleList(
            UpProjection(nR, k, s, p, n_inputs=max(t, 1)) for t in range(T))
        self.down_units = nn.ModuleList(
            DownProjection(nR, k, s, p, n_inputs=t + 1) for t in range(T - 1))
        self.reconstruction = nn.Conv2d(T * nR, out_channels, 3, 1, 1)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lr = self.features(x)
        highs: list[torch.Tensor] = []
        lows: list[torch.Tensor] = []
        for t in range(self.T):
            if t == 0:
                up_in = lr
            elif t == 1:
                up_in = lows[0]
            else:
                up_in = torch.cat(lows, dim=1)
            highs.append(self.up_units[t](up_in))
            if t < self.T - 1:
                down_in = highs[0] if t == 0 else torch.cat(highs, dim=1)
                lows.append(self.down_units[t](down_in))
        return self.reconstruction(torch.cat(highs, dim=1))

    def config(self) -> dict:
        return {"scale": self.scale, "n0": self.n0, "nR": self.nR, "T": self.T}


class Discriminator(nn.Module):
    """SRGAN-style discriminator used for the adversarial term.

    conv 3 -> w (3x3) + LeakyReLU(0.2), then seven 3x3 conv + BatchNorm +
    LeakyReLU(0.2) blocks with channels w*(1,2,2,4,4,8,8) and strides
    (2,1,2,1,2,1,2), then Linear -> ``fc`` -> LeakyReLU -> Linear -> 1.
    ``width=64, fc=1024`` are the paper's values. The first Linear layer's size
    depends on the input size, so ``image_size`` (the HR patch size) must be
    given. ``forward`` returns raw logits of shape N x 1 (use
    BCE-with-logits).
    """

    CHANNEL_MULT = (1, 2, 2, 4, 4, 8, 8)
    STRIDES = (2, 1, 2, 1, 2, 1, 2)

    def __init__(self, image_size: int | tuple[int, int], width: int = 64, fc: int = 1024,
                 in_channels: int = 3):
        super().__init__()
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        h, w = (int(v) for v in image_size)
        self.image_size = (h, w)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, 1, 1), nn.LeakyReLU(0.2)]
        cin = width
        for mult, stride in zip(self.CHANNEL_MULT, self.STRIDES):
            cout = width * mult
            layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
            cin = cout
            h = (h - 1) // stride + 1
            w = (w - 1) // stride + 1
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * h * w, fc), nn.LeakyReLU(0.2), nn.Linear(fc, 1))
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"discriminator built for {self.image_size} inputs, got {tuple(x.shape[-2:])}")
        return self.head(self.body(x))
