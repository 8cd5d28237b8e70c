"""Evaluation metrics on the luma channel, as the SR literature computes them
in MATLAB: ``rgb2ycbcr`` (ITU-R BT.601, 8-bit, Y in 16..235, rounded like
MATLAB's uint8 output), a border of ``border`` pixels shaved, then PSNR and SSIM
(scikit-image, Gaussian-weighted SSIM as Wang et al.) against the HR image, and
NIQE on the SR image alone.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity  # (skimage loads its metrics lazily)

from .data import to_rgb_uint8
from .niqe import niqe

__all__ = ["rgb_to_y", "shave", "psnr_y", "ssim_y", "niqe_y", "perceptual_index"]


def rgb_to_y(img: np.ndarray, round_result: bool = True) -> np.ndarray:
    """Y of MATLAB ``rgb2ycbcr`` for an 8-bit RGB (or grayscale) image, as float64 0-255."""
    a = to_rgb_uint8(img).astype(np.float64) / 255.0
    y = 16.0 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]
    return np.round(y) if round_result else y


def shave(img: np.ndarray, border: int) -> np.ndarray:
    b = int(border)
    if b <= 0:
        return img
    if img.shape[0] <= 2 * b or img.shape[1] <= 2 * b:
        raise ValueError(f"image {img.shape[:2]} too small to shave {b} px")
    return img[b:-b, b:-b]


def _pair(sr: np.ndarray, hr: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    if sr.shape[:2] != hr.shape[:2]:
        raise ValueError(f"SR {sr.shape[:2]} and HR {hr.shape[:2]} sizes differ")
    return shave(rgb_to_y(sr), border), shave(rgb_to_y(hr), border)


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int = 4) -> float:
    """PSNR in dB on Y (8-bit RGB inputs); identical images give inf."""
    s, h = _pair(sr, hr, border)
    if np.array_equal(s, h):
        return float("inf")
    # written out: skimage's peak_signal_noise_ratio drags scipy.stats in (seconds of start-up
    # in every trial process) for this one line
    mse = float(np.mean((h - s) ** 2))
    return float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int = 4) -> float:
    """SSIM on Y: 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, L=255."""
    s, h = _pair(sr, hr, border)
    return float(structural_similarity(h, s, data_range=255.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


def niqe_y(img: np.ndarray, border: int = 4) -> float:
    """NIQE of an 8-bit RGB image on its Y channel with ``border`` px shaved."""
    return niqe(shave(rgb_to_y(img), border))


def perceptual_index(ma: float, niqe_value: float) -> float:
    """PIRM-2018 perceptual index ((10 - Ma) + NIQE) / 2 (lower is better)."""
    return ((10.0 - float(ma)) + float(niqe_value)) / 2.0
