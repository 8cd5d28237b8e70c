"""Training patches and validation images."""
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from autotune.jobs.ddbpn.data import (DEFAULT_TRAIN_IMAGES, DEFAULT_VAL_IMAGES, ImageSource, TrainPatches,
                                      downscale, load_image_file, load_validation)


def test_default_split_is_disjoint():
    assert not set(DEFAULT_TRAIN_IMAGES) & set(DEFAULT_VAL_IMAGES)
    assert len(DEFAULT_VAL_IMAGES) >= 2


def test_patch_pairs_match_whole_image_downscale():
    src = ImageSource(names=("astronaut",))
    ds = TrainPatches(src, scale=4, patch=16, length=8, seed=3, augment=False)
    img = src.image(0)
    full_lr = downscale(img, 4)
    for i in range(8):
        rng = np.random.default_rng(i)
        lr, hr = ds.sample(rng)
        assert lr.shape == (16, 16, 3) and hr.shape == (64, 64, 3)
        # locate the HR patch and compare the LR patch with the whole-image LR
        rng = np.random.default_rng(i)
        rng.integers(1)
        y, x = int(rng.integers(128 - 16 + 1)), int(rng.integers(128 - 16 + 1))
        assert np.array_equal(hr, img[4 * y:4 * y + 64, 4 * x:4 * x + 64])
        assert np.array_equal(lr, full_lr[y:y + 16, x:x + 16])


def test_samples_are_reproducible_and_augmented():
    ds = TrainPatches(ImageSource(), scale=2, patch=8, length=16, seed=5)
    a = ds[3]
    b = ds[3]
    assert all(np.array_equal(u.numpy(), v.numpy()) for u, v in zip(a, b))
    ds.set_epoch(1)
    c = ds[3]
    assert not np.array_equal(a[1].numpy(), c[1].numpy())
    lr, hr = a
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16)
    assert 0.0 <= float(lr.min()) and float(hr.max()) <= 1.0


def test_folder_source_and_validation(tmp_path):
    for name in ("chelsea", "coins"):
        img = getattr(skimage.data, name)()
        Image.fromarray(img).save(tmp_path / f"{name}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    src = ImageSource(tmp_path)
    assert src.names == ["chelsea", "coins"]
    assert src.image(1).shape == (303, 384, 3)  # grey -> RGB
    ds = TrainPatches(src, scale=4, patch=8, length=4, seed=0)
    assert ds[0][1].shape == (3, 32, 32)
    val = load_validation(4, tmp_path, crop=100)
    assert [v.name for v in val] == ["chelsea", "coins"]
    assert val[0].hr.shape == (100, 100, 3) and val[0].lr.shape == (25, 25, 3)
    full = load_validation(8, tmp_path)
    assert full[0].hr.shape == (296, 448, 3) and full[0].lr.shape == (37, 56, 3)


def test_default_validation_images():
    val = load_validation(4, crop=200)
    assert [v.name for v in val] == list(DEFAULT_VAL_IMAGES)
    assert all(v.hr.shape == (200, 200, 3) and v.lr.shape == (50, 50, 3) for v in val)
    with pytest.raises(FileNotFoundError):
        ImageSource("/nonexistent/folder")


def test_epoch_sampler_and_workers_give_the_same_batches():
    import torch
    from torch.utils.data import DataLoader

    from autotune.jobs.ddbpn.data import EpochSampler

    ds = TrainPatches(ImageSource(names=("astronaut", "coins")), scale=2, patch=8, length=6, seed=1)

    def run(workers):
        sampler = EpochSampler(len(ds))
        loader = DataLoader(ds, batch_size=3, sampler=sampler, num_workers=workers,
                            persistent_workers=workers > 0)
        out = []
        for epoch in (0, 1):
            sampler.epoch = epoch
            out.append([hr for _, hr in loader])
        return out

    a, b = run(0), run(2)
    assert all(torch.equal(x, y) for ea, eb in zip(a, b) for x, y in zip(ea, eb))
    assert not torch.equal(a[0][0], a[1][0])
    ds.set_epoch(1)
    assert torch.equal(ds[0][1], a[1][0][0])


@pytest.mark.parametrize("patch", [8, 32])
def test_the_lr_cache_gives_the_very_samples_of_the_per_patch_downscale(patch):
    src = ImageSource(names=("astronaut", "coins", "text"))
    cold = TrainPatches(src, scale=4, patch=patch, length=40, seed=5)
    warm = TrainPatches(src, scale=4, patch=patch, length=40, seed=5)
    warm.warm()
    assert len(warm._lowres) == 3
    for i in range(40):
        (lc, hc), (lw, hw) = cold[i], warm[i]
        assert torch.equal(lc, lw) and torch.equal(hc, hw)


def test_a_16_bit_grey_png_keeps_its_pixels(tmp_path):
    """PIL's convert('RGB') clips a 16-bit image at 255: it came out all white."""
    grey = skimage.data.camera()[:128, :128]
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    a = load_image_file(tmp_path / "g16.png")
    assert a.shape == (128, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a[..., 0], grey) and np.array_equal(a[..., 2], grey)
    assert np.array_equal(ImageSource(tmp_path).image(0)[..., 1], grey)
