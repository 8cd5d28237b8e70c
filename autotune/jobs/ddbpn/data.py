"""Training patches and validation images.

Sources: a folder of HR images when a path is given, otherwise the built-in
default, natural images bundled with scikit-image (no download). Grayscale
images are replicated to RGB.

Training pairs: an LR patch of ``patch`` x ``patch`` pixels and the aligned HR
patch of ``patch*scale`` pixels. The LR image is the MATLAB-style bicubic
downscale of the (scale-aligned) HR image, rounded to 8 bits; it is computed
on the HR region around the patch plus a margin wider than the bicubic
kernel, which gives exactly the pixels of a whole-image downscale without
holding whole LR images in memory. Augmentation: random horizontal flip,
vertical flip and transpose (the 8 flips/rotations by 90 degrees).

Every sample is drawn from its own generator seeded by (seed, epoch, index),
so a run is reproducible, independent of the number of loader workers, and a
resumed run sees the same data as an unbroken one.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .imresize import imresize

__all__ = ["DEFAULT_TRAIN_IMAGES", "DEFAULT_VAL_IMAGES", "ImageSource", "TrainPatches", "EpochSampler",
           "ValImage", "load_validation", "downscale", "to_rgb_uint8", "list_image_files",
           "check_folder"]

log = logging.getLogger(__name__)

#: scikit-image images used for training by default
DEFAULT_TRAIN_IMAGES: tuple[str, ...] = (
    "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
    "colorwheel", "coins", "brick", "grass", "gravel", "moon", "clock", "page", "text")
#: scikit-image images held out for validation by default (two colour photographs, one grey)
DEFAULT_VAL_IMAGES: tuple[str, ...] = ("chelsea", "coffee", "camera")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
_MARGIN = 4  # LR pixels of context around a patch; the bicubic kernel reaches 2


def to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """HxW / HxWx1 / HxWx3 / HxWx4 array (uint8, bool or float in [0,1]) ->
    contiguous HxWx3 uint8."""
    a = np.asarray(img)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = np.asarray(a, dtype=np.float64)
        if a.max(initial=0.0) <= 1.0:
            a = a * 255.0
        a = np.clip(np.round(a), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"unsupported image shape {np.asarray(img).shape}")
    return np.ascontiguousarray(a)


def load_skimage(name: str) -> np.ndarray:
    import skimage.data
    return to_rgb_uint8(getattr(skimage.data, name)())


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return files


def check_folder(folder, key: str, min_side: int = 1, every: bool = True, why: str = "") -> None:
    """A study's image folder, checked before any run: it exists, holds images, each of them
    readable (its header), and every one (``every``) or at least one at least ``min_side`` px
    on each side. Raises ValueError starting with ``key``. Each header is read once a process
    while its file is unchanged (``header_size``): the folder is listed and its files stat'ed
    on every check, their headers read again only where a file is new or changed."""
    from PIL import Image
    try:
        files = list_image_files(os.path.expanduser(str(folder)))
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        where = "" if os.path.isabs(os.path.expanduser(str(folder))) else \
            f" (relative to the current directory, {os.getcwd()}, where the runs start)"
        raise ValueError(f"{key}: {exc}{where}") from None
    large = 0
    for path in files:
        try:
            w, h = header_size(path, Image)
        except Exception as exc:  # noqa: BLE001 - whatever PIL cannot read
            raise ValueError(f"{key}: {path} is not a readable image ({type(exc).__name__}: "
                             f"{exc})") from None
        if min(h, w) >= min_side:
            large += 1
        elif every:
            raise ValueError(f"{key}: {path} is {w}x{h} px; {why} needs {min_side} px a side")
    if not large:
        raise ValueError(f"{key}: no image in {folder} is {min_side} px a side, as {why} needs")


#: an image's (width, height) by (absolute path, inode, size, mtime, ctime), read once per
#: process: ``compare`` defines one study per run, and each definition checks its folders
_SIZES: dict[tuple, tuple[int, int]] = {}


def header_size(path: Path, image_module) -> tuple[int, int]:
    """(width, height) from the image's header, read once for as long as the file is the one
    read: a file written, replaced or touched since (its inode, size, mtime or ctime
    changed) is read again, so a changed folder is never taken for the one checked."""
    st = os.stat(path)
    stamp = (os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    size = _SIZES.get(stamp)
    if size is None:
        with image_module.open(path) as im:
            size = _SIZES[stamp] = tuple(im.size)
    return size


def load_image_file(path: str | os.PathLike) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        if im.mode.startswith("I") or im.mode == "F":  # 16-bit or 32-bit grey: PIL's
            # convert("RGB") clips it at 255 (a 16-bit PNG came out all white)
            a = np.asarray(im).astype(np.float64)
            if im.mode.startswith("I;16") or (im.mode == "I" and a.max(initial=0) > 255):
                a = a / 257.0  # 0-65535 -> 0-255
            elif im.mode == "F" and a.max(initial=0) <= 1.0:
                a = a * 255.0
            return to_rgb_uint8(np.clip(np.round(a), 0, 255).astype(np.uint8))
        return to_rgb_uint8(np.asarray(im.convert("RGB")))


def downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic (MATLAB imresize) 1/scale downscale of an HxWx3 uint8 image whose
    sides are multiples of ``scale``; returns uint8."""
    lr = imresize(hr.astype(np.float64) / 255.0, 1.0 / scale)
    return np.clip(np.round(lr * 255.0), 0, 255).astype(np.uint8)


class ImageSource:
    """The HR images of one split: scikit-image names or the files of a folder.

    Folder images are decoded on demand (``cache`` of them kept in memory),
    built-in ones are all kept (they are small).
    """

    def __init__(self, folder: str | os.PathLike | None = None,
                 names: Sequence[str] = DEFAULT_TRAIN_IMAGES, cache: int = 64):
        self.folder = None if folder is None else Path(folder)
        if self.folder is not None:
            self.keys = [str(p) for p in list_image_files(self.folder)]
            self.names = [Path(k).stem for k in self.keys]
        else:
            self.keys = list(names)
            self.names = list(names)
        self.cache = max(int(cache), 1)
        self._make_cache()

    def _make_cache(self) -> None:
        self._load = lru_cache(maxsize=None if self.folder is None else self.cache)(
            self._load_uncached)

    def _load_uncached(self, i: int) -> np.ndarray:
        key = self.keys[i]
        return load_skimage(key) if self.folder is None else load_image_file(key)

    def __len__(self) -> int:
        return len(self.keys)

    def image(self, i: int) -> np.ndarray:
        return self._load(i)

    def shape(self, i: int) -> tuple[int, int]:
        return self.image(i).shape[:2]

    def __getstate__(self):  # picklable for DataLoader workers (the cache is rebuilt)
        d = dict(self.__dict__)
        d.pop("_load", None)
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._make_cache()


class TrainPatches(Dataset):
    """``length`` random (LR, HR) patch pairs per epoch as float32 CHW tensors in [0, 1]."""

    def __init__(self, source: ImageSource, scale: int, patch: int, length: int,
                 seed: int = 0, augment: bool = True):
        self.source, self.scale, self.patch = source, int(scale), int(patch)
        self.length, self.seed, self.augment = int(length), int(seed), bool(augment)
        self.epoch = 0
        self._lowres: dict[int, np.ndarray] = {}
        hr_size = self.patch * self.scale
        # images too small for one HR patch are skipped
        self.usable = [i for i in range(len(source))
                       if min(source.shape(i)) >= hr_size] if source.folder is None \
            else list(range(len(source)))
        if not self.usable:
            raise ValueError(f"no training image is at least {hr_size} px on each side")
        skipped = len(source) - len(self.usable)
        if skipped:
            log.info("%d training image(s) smaller than the %d px HR patch are skipped", skipped, hr_size)

    def warm(self) -> None:
        """Downscale each training image once, where they all fit the source's cache (the
        built-in images always do): a sample is then a crop of the cached LR image, which
        holds the very pixels the per-patch downscale makes, instead of a bicubic resize per
        sample (about 10-40 ms of CPU each, which starved a GPU at batch 20). Call it before
        the DataLoader forks its workers, so they inherit the images."""
        if self.source.folder is not None and len(self.source) > self.source.cache:
            return
        s = self.scale
        for i in self.usable:
            img = self.source.image(i)
            lh, lw = img.shape[0] // s, img.shape[1] // s
            if i not in self._lowres and lh >= self.patch and lw >= self.patch:
                self._lowres[i] = downscale(img[:lh * s, :lw * s], s)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s, p = self.scale, self.patch
        for _ in range(100):
            k = self.usable[int(rng.integers(len(self.usable)))]
            img = self.source.image(k)
            lh, lw = img.shape[0] // s, img.shape[1] // s
            if lh >= p and lw >= p:
                break
        else:
            raise ValueError(f"no training image is large enough for {p * s} px HR patches")
        y = int(rng.integers(lh - p + 1))
        x = int(rng.integers(lw - p + 1))
        lowres = self._lowres.get(k)
        if lowres is not None:
            lr = lowres[y:y + p, x:x + p]
        else:  # HR region with context, aligned to the LR grid and clipped to the image
            y0, y1 = max(0, y - _MARGIN), min(lh, y + p + _MARGIN)
            x0, x1 = max(0, x - _MARGIN), min(lw, x + p + _MARGIN)
            region = img[y0 * s:y1 * s, x0 * s:x1 * s]
            lr = downscale(region, s)[y - y0:y - y0 + p, x - x0:x - x0 + p]
        hr = img[y * s:(y + p) * s, x * s:(x + p) * s]
        if self.augment:
            flips = rng.integers(2, size=3)
            if flips[0]:
                lr, hr = lr[:, ::-1], hr[:, ::-1]
            if flips[1]:
                lr, hr = lr[::-1], hr[::-1]
            if flips[2]:
                lr, hr = lr.transpose(1, 0, 2), hr.transpose(1, 0, 2)
        return lr, hr

    def __getitem__(self, index: int):
        # indices past ``length`` address later epochs (see EpochSampler)
        epoch, i = divmod(int(index), self.length)
        rng = np.random.default_rng([self.seed, self.epoch + epoch, i])
        lr, hr = self.sample(rng)
        return _to_tensor(lr), _to_tensor(hr)


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 tensor in [0, 1]."""
    return torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32) * np.float32(1.0 / 255.0))


class EpochSampler(torch.utils.data.Sampler):
    """Yields the indices of epoch ``self.epoch`` of a ``TrainPatches`` set
    (``epoch * length ... (epoch + 1) * length - 1``), so one DataLoader with
    persistent workers serves every epoch."""

    def __init__(self, length: int):
        self.length = int(length)
        self.epoch = 0

    def __iter__(self):
        start = self.epoch * self.length
        return iter(range(start, start + self.length))

    def __len__(self) -> int:
        return self.length


class ValImage:
    """One validation pair: ``hr`` (uint8 HxWx3, sides multiples of the scale)
    and its bicubic ``lr``."""

    def __init__(self, name: str, hr: np.ndarray, lr: np.ndarray):
        self.name, self.hr, self.lr = name, hr, lr


def _centre_crop(img: np.ndarray, size: int | None, multiple: int) -> np.ndarray:
    h, w = img.shape[:2]
    th, tw = h, w
    if size:
        th, tw = min(h, int(size)), min(w, int(size))
    th, tw = th - th % multiple, tw - tw % multiple
    if th <= 0 or tw <= 0:
        raise ValueError(f"image {h}x{w} too small for scale {multiple}")
    top, left = (h - th) // 2, (w - tw) // 2
    return np.ascontiguousarray(img[top:top + th, left:left + tw])


def load_validation(scale: int, folder: str | os.PathLike | None = None,
                    crop: int | None = None,
                    names: Sequence[str] = DEFAULT_VAL_IMAGES) -> list[ValImage]:
    """Validation images: each HR image centre-cropped to at most ``crop`` x
    ``crop`` (None = full image), trimmed to a multiple of ``scale``, and its
    bicubic 1/scale downscale."""
    source = ImageSource(folder, names)
    out = []
    for i in range(len(source)):
        hr = _centre_crop(source.image(i), crop, scale)
        out.append(ValImage(source.names[i], hr, downscale(hr, scale)))
    return out
