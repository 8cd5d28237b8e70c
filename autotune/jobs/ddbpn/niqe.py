"""NIQE (Mittal, Soundararajan, Bovik, "Making a completely blind image quality
analyzer", 2013), following the conventions of the official MATLAB release
used by the PIRM-2018 perceptual index.

For a grayscale image with 0-255 intensities:

1. crop to a whole number of 96x96 patches;
2. at two scales (full, then MATLAB ``imresize(., 0.5)`` bicubic with
   antialiasing; patches 96 and 48 px on the same grid):
   MSCN coefficients ``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian window
   (sigma 7/6, sum 1, replicated borders);
   per patch 18 features: an asymmetric generalised Gaussian (AGGD) moment
   fit to the MSCN values gives (alpha, (beta_l + beta_r) / 2); for the
   products of the MSCN patch with its circularly shifted copy for the shifts
   (0,1), (1,0), (1,1), (1,-1) the fit gives (alpha, eta, beta_l, beta_r);
3. the 36-feature patch sample gives mean ``mu_d`` and covariance ``S_d``
   (patches with undefined features left out); the score is
   ``sqrt((mu_p - mu_d)^T pinv((S_p + S_d) / 2) (mu_p - mu_d))`` with the
   pristine model ``mu_p, S_p`` (shipped in data/niqe_pristine.npz).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.special import gammaln

from .imresize import imresize

__all__ = ["niqe", "niqe_features", "load_pristine", "aggd_fit", "mscn", "PRISTINE_PATH"]

PRISTINE_PATH = Path(__file__).resolve().parent / "data" / "niqe_pristine.npz"
PATCH = 96
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@lru_cache(maxsize=4)
def load_pristine(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mu_pris (36,), cov_pris (36, 36)) of the pristine NIQE model."""
    with np.load(os.fspath(path or PRISTINE_PATH)) as d:
        mu = np.asarray(d["mu_pris"], dtype=np.float64).reshape(-1)
        cov = np.asarray(d["cov_pris"], dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"bad NIQE pristine parameters: {mu.shape}, {cov.shape}")
    mu.setflags(write=False)
    cov.setflags(write=False)
    return mu, cov


def _gaussian_window(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    r = (size - 1) / 2.0
    ax = np.arange(size, dtype=np.float64) - r
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2.0 * sigma * sigma))
    return g / g.sum()


_WINDOW = _gaussian_window()

# shape parameter grid of the moment-matching search, and rho(alpha) on it:
# rho = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)), increasing in alpha
_ALPHAS = np.round(np.arange(0.2, 10.0 + 1e-9, 0.001), 3)
_RHO = np.exp(2.0 * gammaln(2.0 / _ALPHAS) - gammaln(1.0 / _ALPHAS) - gammaln(3.0 / _ALPHAS))


def mscn(img: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients of a 2-D float image."""
    mu = ndimage.correlate(img, _WINDOW, mode="nearest")
    var = ndimage.correlate(img * img, _WINDOW, mode="nearest") - mu * mu
    return (img - mu) / (np.sqrt(np.abs(var)) + 1.0)


def _nearest_alpha(r: np.ndarray) -> np.ndarray:
    """Grid alpha minimising (rho(alpha) - r)^2, first one on ties (NaN stays NaN)."""
    out = np.full(r.shape, np.nan)
    ok = np.isfinite(r)
    rv = r[ok]
    hi = np.clip(np.searchsorted(_RHO, rv), 1, len(_RHO) - 1)
    lo = hi - 1
    pick = np.where((_RHO[hi] - rv) ** 2 < (_RHO[lo] - rv) ** 2, hi, lo)
    out[ok] = _ALPHAS[pick]
    return out


def aggd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit of each row of ``x`` (N x M).

    Returns (alpha, beta_left, beta_right), each of length N; rows without
    negative or positive values give NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    sq = x * x
    neg, pos = x < 0, x > 0
    n_neg, n_pos = neg.sum(1), pos.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        left_std = np.sqrt((sq * neg).sum(1) / n_neg)
        right_std = np.sqrt((sq * pos).sum(1) / n_pos)
        gamma_hat = left_std / right_std
        r_hat = np.abs(x).mean(1) ** 2 / sq.mean(1)
        r_norm = r_hat * (gamma_hat ** 3 + 1) * (gamma_hat + 1) / (gamma_hat ** 2 + 1) ** 2
        alpha = _nearest_alpha(r_norm)
        ratio = np.sqrt(np.exp(gammaln(1.0 / alpha) - gammaln(3.0 / alpha)))
    return alpha, left_std * ratio, right_std * ratio


def _patch_features(coef: np.ndarray, patch: int) -> np.ndarray:
    """18 features for every ``patch`` x ``patch`` block of an MSCN map."""
    h, w = coef.shape
    nr, nc = h // patch, w // patch
    blocks = (coef[:nr * patch, :nc * patch]
              .reshape(nr, patch, nc, patch).transpose(0, 2, 1, 3)
              .reshape(nr * nc, patch, patch))
    flat = blocks.reshape(len(blocks), -1)
    feats = []
    alpha, bl, br = aggd_fit(flat)
    feats += [alpha, (bl + br) / 2.0]
    for dy, dx in _SHIFTS:
        prod = (blocks * np.roll(blocks, shift=(dy, dx), axis=(1, 2))).reshape(len(blocks), -1)
        alpha, bl, br = aggd_fit(prod)
        with np.errstate(invalid="ignore"):
            eta = (br - bl) * np.exp(gammaln(2.0 / alpha) - gammaln(1.0 / alpha))
        feats += [alpha, eta, bl, br]
    return np.stack(feats, axis=1)


def niqe_features(img: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """Patch feature matrix (n_patches x 36) of a 2-D image with 0-255 values."""
    im = np.asarray(img, dtype=np.float64)
    if im.ndim != 2:
        raise ValueError(f"NIQE takes a 2-D (grayscale / Y) image, got shape {im.shape}")
    h, w = im.shape
    nr, nc = h // patch, w // patch
    if nr < 1 or nc < 1:
        raise ValueError(f"image {h}x{w} is smaller than one {patch}x{patch} NIQE patch")
    im = im[:nr * patch, :nc * patch]
    full = _patch_features(mscn(im), patch)
    half = _patch_features(mscn(imresize(im, 0.5)), patch // 2)
    return np.concatenate([full, half], axis=1)


def niqe(img: np.ndarray, pristine: tuple[np.ndarray, np.ndarray] | None = None,
         patch: int = PATCH) -> float:
    """NIQE of a 2-D image with 0-255 intensities (lower = more natural).

    The image needs at least one 96x96 patch; two or more are needed for the
    sample covariance to mean anything (with one it is taken as zero).
    """
    mu_p, cov_p = pristine if pristine is not None else load_pristine()
    feats = niqe_features(img, patch)
    mu_d = np.nanmean(feats, axis=0) if np.isfinite(feats).any() else np.full(36, np.nan)
    complete = feats[np.isfinite(feats).all(axis=1)]
    if len(complete) >= 2:
        cov_d = np.cov(complete, rowvar=False)
    else:
        cov_d = np.zeros((feats.shape[1], feats.shape[1]))
    if not np.isfinite(mu_d).all():
        return float("nan")
    diff = mu_p - mu_d
    inv = np.linalg.pinv((cov_p + cov_d) / 2.0)
    return float(np.sqrt(diff @ inv @ diff))
