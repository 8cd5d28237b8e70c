"""Bicubic resize, NIQE, PSNR / SSIM."""
import numpy as np
import pytest
import skimage.data
from scipy import ndimage

from autotune.jobs.ddbpn.data import to_rgb_uint8
from autotune.jobs.ddbpn.imresize import imresize, resize_matrix
from autotune.jobs.ddbpn.metrics import niqe_y, perceptual_index, psnr_y, rgb_to_y, ssim_y
from autotune.jobs.ddbpn.niqe import aggd_fit, load_pristine, niqe, niqe_features


@pytest.fixture(scope="module")
def photos():
    # whole images (300x451, 512x512, 512x512): NIQE needs many 96x96 patches
    return {n: to_rgb_uint8(getattr(skimage.data, n)()) for n in ("chelsea", "astronaut", "camera")}


def _blur(img, sigma=2.0):
    return np.clip(np.round(ndimage.gaussian_filter(img.astype(float), (sigma, sigma, 0))), 0, 255).astype(np.uint8)


def _noise(img, sigma=20.0, seed=0):
    n = np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.clip(np.round(img + n), 0, 255).astype(np.uint8)


def test_imresize_basics():
    assert imresize(np.full((10, 14), 7.0), 0.5).shape == (5, 7)
    assert np.allclose(imresize(np.full((10, 14, 3), 7.0), 0.5), 7.0)
    assert np.allclose(imresize(np.full((5, 6), 3.0), 4.0), 3.0)
    m = resize_matrix(16, 4, 0.25)
    assert np.allclose(m.sum(1), 1.0)
    # a 4x shrink with antialiasing spans 4 LR pixels of support = 16 HR taps (+2 spare)
    assert (np.count_nonzero(m[1]) <= 18) and m[1].argmax() in (5, 6)
    x = np.random.default_rng(0).random((12, 9, 3))
    per_channel = np.stack([imresize(x[..., c], 1 / 3) for c in range(3)], axis=2)
    assert np.allclose(imresize(x, 1 / 3), per_channel)


def test_pristine_parameters():
    mu, cov = load_pristine()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    assert np.allclose(cov, cov.T)
    assert mu[0] == pytest.approx(2.6013, abs=1e-3)


def test_aggd_fit_recovers_gaussian_shape():
    x = np.random.default_rng(0).normal(0, 1.0, (3, 200_000))
    alpha, bl, br = aggd_fit(x)
    assert np.allclose(alpha, 2.0, atol=0.05)
    # beta = sigma * sqrt(Gamma(1/2) / Gamma(3/2)) = sqrt(2) for unit variance
    assert np.allclose(bl, np.sqrt(2), atol=0.03) and np.allclose(br, np.sqrt(2), atol=0.03)


def test_niqe_deterministic_and_features(photos):
    y = rgb_to_y(photos["chelsea"])
    assert niqe_features(y).shape == (3 * 4, 36)
    a, b = niqe(y), niqe(y.copy())
    assert a == b and np.isfinite(a)
    with pytest.raises(ValueError):
        niqe(np.zeros((50, 200)))


@pytest.mark.parametrize("name", ["chelsea", "astronaut", "camera"])
def test_niqe_prefers_natural_images(photos, name):
    img = photos[name]
    clean = niqe_y(img)
    assert clean < 5.0
    assert niqe_y(_blur(img)) > clean + 2.0
    assert niqe_y(_noise(img)) > clean + 2.0


def test_rgb_to_y_matlab_range():
    y = rgb_to_y(np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8))
    assert y.tolist() == [[16.0, 235.0]]
    gray = rgb_to_y(np.full((2, 2), 128, np.uint8))
    assert np.all(gray == np.round(16 + 219 * 128 / 255))


def test_psnr_ssim_sanity(photos):
    hr = photos["astronaut"]
    assert psnr_y(hr, hr) == float("inf")
    assert ssim_y(hr, hr) == pytest.approx(1.0)
    mild, strong = _noise(hr, 5), _noise(hr, 20)
    assert 30 < psnr_y(mild, hr) < 42
    assert psnr_y(strong, hr) < psnr_y(mild, hr)
    assert ssim_y(strong, hr) < ssim_y(mild, hr) < 1.0
    # the 4 px border is shaved: damage confined to it does not count
    damaged = hr.copy()
    damaged[:4] = 0
    assert psnr_y(damaged, hr, border=4) == float("inf")
    assert psnr_y(damaged, hr, border=0) < 30


def test_perceptual_index():
    assert perceptual_index(8.0, 4.0) == pytest.approx(3.0)
