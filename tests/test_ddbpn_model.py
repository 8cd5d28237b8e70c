"""D-DBPN generator / discriminator structure tests."""
import pytest
import torch

from autotune.jobs.ddbpn.model import DDBPN, Discriminator, count_parameters

torch.set_num_threads(1)

TINY = dict(n0=16, nR=8, T=2)


@pytest.mark.parametrize("kwargs, expected", [
    (dict(scale=4, n0=256, nR=64, T=7), 10_426_358),
    (dict(scale=2, n0=256, nR=64, T=7), 5_953_526),
    (dict(scale=8, n0=256, nR=64, T=7), 23_205_878),
    (dict(scale=4, n0=256, nR=64, T=10), 15_348_302),
    (dict(scale=4, **TINY), 37_966),
])
def test_parameter_counts(kwargs, expected):
    with torch.device("meta"):
        net = DDBPN(**kwargs)
    assert count_parameters(net) == expected


def test_default_is_paper_4x():
    with torch.device("meta"):
        net = DDBPN()
    assert net.config() == {"scale": 4, "n0": 256, "nR": 64, "T": 7}
    assert count_parameters(net) == 10_426_358


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_output_shapes_tiny(scale):
    torch.manual_seed(0)
    net = DDBPN(scale=scale, **TINY)
    x = torch.rand(2, 3, 8, 12)
    y = net(x)
    assert y.shape == (2, 3, 8 * scale, 12 * scale)
    assert torch.isfinite(y).all()


def test_deeper_dense_units_shape():
    torch.manual_seed(0)
    net = DDBPN(scale=4, n0=8, nR=4, T=4)  # exercises the 1x1 dense reductions
    assert net(torch.rand(1, 3, 6, 6)).shape == (1, 3, 24, 24)
    assert net.down_units[1].reduce is not None and net.up_units[2].reduce is not None
    assert net.up_units[1].reduce is None and net.down_units[0].reduce is None


def test_init_kaiming_zero_bias():
    torch.manual_seed(0)
    net = DDBPN(scale=4, **TINY)
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs
    for m in convs:
        assert torch.count_nonzero(m.bias) == 0
        assert m.weight.std() > 0


def test_bad_scale():
    with pytest.raises(ValueError):
        DDBPN(scale=3, **TINY)


def test_discriminator_logits_shape():
    torch.manual_seed(0)
    disc = Discriminator(32, width=8, fc=16)
    out = disc(torch.rand(3, 3, 32, 32))
    assert out.shape == (3, 1)
    bns = [m for m in disc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert [b.num_features for b in bns] == [8, 16, 16, 32, 32, 64, 64]
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    with pytest.raises(ValueError):
        disc(torch.rand(1, 3, 64, 64))


def test_discriminator_paper_width():
    with torch.device("meta"):
        disc = Discriminator(128)  # 4x, LR patch 32
    linear = [m for m in disc.modules() if isinstance(m, torch.nn.Linear)]
    assert (linear[0].in_features, linear[0].out_features) == (512 * 8 * 8, 1024)
    assert (linear[1].in_features, linear[1].out_features) == (1024, 1)
