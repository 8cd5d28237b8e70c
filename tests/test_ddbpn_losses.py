"""VGG feature stack and the four-term loss."""
import logging

import pytest
import torch

from autotune.jobs.ddbpn.losses import SRLoss, discriminator_loss, gram_matrix
from autotune.jobs.ddbpn.model import DDBPN, Discriminator
from autotune.jobs.ddbpn.vgg import DEFAULT_TAPS, LAYER_INDEX, VGG19Features, load_vgg19

torch.set_num_threads(1)

TAPS = (3, 8)  # relu1_2, relu2_2: shallow taps keep the CPU cost low


@pytest.fixture(scope="module")
def vgg():
    return load_vgg19(None)


@pytest.fixture()
def batch():
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    lr = torch.nn.functional.avg_pool2d(hr, 4)
    return lr, hr


def _tiny_gen():
    torch.manual_seed(0)
    return DDBPN(scale=4, n0=16, nR=8, T=2)


def test_vgg_layout_matches_torchvision_keys():
    keys = list(VGG19Features().state_dict().keys())
    conv_idx = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert keys == [f"features.{i}.{p}" for i in conv_idx for p in ("weight", "bias")]
    assert DEFAULT_TAPS == (8, 17, 26, 35)
    assert LAYER_INDEX["pool5"] == 36 and LAYER_INDEX["relu5_4"] == 35


def test_vgg_random_init_is_fixed_and_logged(caplog):
    with caplog.at_level(logging.WARNING):
        a = load_vgg19(None)
    assert "random" in caplog.text
    b = load_vgg19(None)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert not any(p.requires_grad for p in a.parameters())


def test_vgg_loads_torchvision_style_file(tmp_path):
    src = VGG19Features()
    src.random_init(seed=123)
    state = {k: v.clone() for k, v in src.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full vgg19 file has these too
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    net = load_vgg19(path)
    assert net.pretrained
    assert torch.equal(net.features[34].weight, src.features[34].weight)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError):
        load_vgg19(tmp_path / "bad.pth")


def test_vgg_taps_shapes(vgg):
    feats = vgg(torch.rand(1, 3, 64, 64), DEFAULT_TAPS)
    assert [tuple(f.shape[1:]) for f in feats] == [(128, 32, 32), (256, 16, 16), (512, 8, 8), (512, 4, 4)]


def test_gram_matrix():
    f = torch.rand(2, 4, 3, 5)
    g = gram_matrix(f)
    assert g.shape == (2, 4, 4)
    ref = f[1].reshape(4, 15) @ f[1].reshape(4, 15).T / (4 * 15)
    assert torch.allclose(g[1], ref, atol=1e-6)


@pytest.mark.parametrize("term", ["w1", "w2", "w3", "w4"])
def test_each_term_alone_reaches_generator(term, vgg, batch):
    lr, hr = batch
    gen = _tiny_gen()
    torch.manual_seed(1)
    disc = Discriminator(32, width=8, fc=16)
    weights = dict(w1=0.0, w2=0.0, w3=0.0, w4=0.0)
    weights[term] = 1.0
    loss_fn = SRLoss(**weights, vgg=vgg, discriminator=disc, taps=TAPS)
    disc.requires_grad_(False)
    total, parts = loss_fn(gen(lr), hr)
    name = {"w1": "mse", "w2": "perceptual", "w3": "adversarial", "w4": "style"}[term]
    assert set(parts) == {name}
    assert total.requires_grad and torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in gen.parameters()]
    assert all(g is not None for g in grads)
    # every generator layer receives a non-zero gradient
    for mod in gen.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            assert mod.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in disc.parameters())


def test_adversarial_targets_and_discriminator_loss(batch):
    _, hr = batch
    torch.manual_seed(0)
    disc = Discriminator(32, width=8, fc=16)
    sr = hr.flip(-1).clone().requires_grad_(True)
    d_loss = discriminator_loss(disc, sr, hr)
    d_loss.backward()
    assert sr.grad is None  # SR is detached on the discriminator side
    assert all(p.grad is not None for p in disc.parameters())


def test_zero_weight_terms_are_skipped(batch):
    lr, hr = batch
    gen = _tiny_gen()
    # no VGG / discriminator needed when their weights are zero
    loss_fn = SRLoss(w1=1.0)
    total, parts = loss_fn(gen(lr), hr)
    assert set(parts) == {"mse"}
    assert torch.allclose(total, torch.nn.functional.mse_loss(gen(lr), hr))
    with pytest.raises(ValueError):
        SRLoss(w1=1.0, w2=0.5)          # VGG missing
    with pytest.raises(ValueError):
        SRLoss(w1=1.0, w3=0.5)          # discriminator missing


def test_total_is_weighted_sum(vgg, batch):
    lr, hr = batch
    gen = _tiny_gen()
    torch.manual_seed(1)
    disc = Discriminator(32, width=8, fc=16).eval()
    with torch.no_grad():
        sr = gen(lr)
        total, p = SRLoss(0.5, 2.0, 0.25, 3.0, vgg=vgg, discriminator=disc, taps=TAPS)(sr, hr)
    expect = 0.5 * p["mse"] + 2.0 * p["perceptual"] + 0.25 * p["adversarial"] + 3.0 * p["style"]
    assert torch.allclose(total, expect, rtol=1e-5)
    assert p["perceptual"] > 0 and p["style"] > 0


def test_few_steps_lower_the_loss(vgg, batch):
    lr, hr = batch
    gen = _tiny_gen()
    loss_fn = SRLoss(w1=1.0, w2=0.1, w4=10.0, vgg=vgg, taps=TAPS)
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.9, 0.999))
    losses = []
    for _ in range(8):
        total, _ = loss_fn(gen(lr), hr)
        losses.append(float(total.detach()))
        opt.zero_grad()
        total.backward()
        opt.step()
    with torch.no_grad():
        final = float(loss_fn(gen(lr), hr)[0])
    assert final < 0.9 * losses[0], (losses, final)
