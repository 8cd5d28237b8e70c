"""Bicubic resizing with the conventions of MATLAB's ``imresize``.

Super-resolution data sets and the NIQE score are defined with MATLAB's
bicubic ``imresize``: a Keys cubic kernel with a = -0.5, a kernel stretched by
1/scale when shrinking (antialiasing), sample positions
``u = x / scale + (1 - 1 / scale) / 2`` (1-based) and symmetric (mirror)
handling of the borders.  Because the operation is separable and linear it is
written here as one dense weight matrix per axis, which is exact and fast for
the image sizes this job handles.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["imresize", "resize_matrix"]


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1.0)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1.0) & (ax <= 2.0))
    return near + far


@lru_cache(maxsize=64)
def _matrix_cached(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    shrink_aa = antialias and scale < 1.0
    support = 4.0 / scale if shrink_aa else 4.0
    out_pos = np.arange(1, out_len + 1, dtype=np.float64)
    centre = out_pos / scale + 0.5 * (1.0 - 1.0 / scale)
    first = np.floor(centre - support / 2.0)
    taps = int(math.ceil(support)) + 2
    idx = first[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    dist = centre[:, None] - idx
    if shrink_aa:
        w = scale * _keys_cubic(scale * dist)
    else:
        w = _keys_cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # mirror the out-of-range sample indices (MATLAB's symmetric padding)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.repeat(np.arange(out_len), taps)
    np.add.at(mat, (rows, src.ravel()), w.ravel())
    mat.setflags(write=False)
    return mat


def resize_matrix(in_len: int, out_len: int, scale: float | None = None,
                  antialias: bool = True) -> np.ndarray:
    """Weight matrix ``M`` (out_len x in_len) with ``resized = M @ signal``."""
    if scale is None:
        scale = out_len / in_len
    return _matrix_cached(int(in_len), int(out_len), float(scale), bool(antialias))


def imresize(img: np.ndarray, scale: float | None = None,
             output_shape: tuple[int, int] | None = None,
             antialias: bool = True) -> np.ndarray:
    """Resize an ``HxW`` or ``HxWxC`` array like MATLAB ``imresize(img, scale)``.

    The computation is done in float64 and the result is returned as float64
    without rounding or clipping (as MATLAB does for ``double`` input); callers
    that need 8-bit data round and clip themselves.  Give either ``scale`` (the
    output size is ``ceil(size * scale)``) or ``output_shape``.
    """
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {arr.shape}")
    h, w = arr.shape[:2]
    if output_shape is None:
        if scale is None:
            raise ValueError("give scale or output_shape")
        sh = sw = float(scale)
        out_h, out_w = int(math.ceil(h * sh)), int(math.ceil(w * sw))
    else:
        out_h, out_w = (int(v) for v in output_shape)
        if scale is not None:
            sh = sw = float(scale)
        else:
            sh, sw = out_h / h, out_w / w
    mh = resize_matrix(h, out_h, sh, antialias)
    mw = resize_matrix(w, out_w, sw, antialias)
    if arr.ndim == 2:
        return mh @ arr @ mw.T
    c = arr.shape[2]
    rows = (mh @ arr.reshape(h, w * c)).reshape(out_h, w, c)   # resize along H
    # along W as one 2-D product (a stacked matmul of strided views skips BLAS: 2x slower)
    flat = np.ascontiguousarray(rows.transpose(0, 2, 1)).reshape(out_h * c, w)
    out = (flat @ mw.T).reshape(out_h, c, out_w)
    return np.ascontiguousarray(out.transpose(0, 2, 1))
