"""The job's training step at each precision, and the bench that times it (CPU, tiny sizes)."""
import pytest
import torch

from autotune.jobs.ddbpn.losses import SRLoss
from autotune.jobs.ddbpn.model import DDBPN, Discriminator
from autotune.jobs.ddbpn.step import Stepper, resolve_precision
from autotune.jobs.ddbpn.vgg import load_vgg19, resolve_taps

torch.set_num_threads(1)


@pytest.mark.parametrize("requested, bf16_ok, expected", [
    ("auto", True, "bf16"), ("auto", False, "fp16"), ("bf16", False, "fp16"),
    ("fp16", True, "fp16"), ("fp32", True, "fp32"),
])
def test_precision_on_a_gpu(monkeypatch, requested, bf16_ok, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16_ok)
    assert resolve_precision(requested, torch.device("cuda")) == expected


@pytest.mark.parametrize("requested, expected", [("auto", "fp32"), ("fp16", "fp32"),
                                                 ("bf16", "bf16"), ("FP32", "fp32")])
def test_precision_on_the_cpu(requested, expected):
    assert resolve_precision(requested, torch.device("cpu")) == expected


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, fp16, bf16"):
        resolve_precision("fp8", torch.device("cpu"))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_step_trains_generator_and_discriminator(precision):
    torch.manual_seed(0)
    gen, disc = DDBPN(scale=4, n0=16, nR=8, T=2), Discriminator(32, 8, 16)
    vgg = load_vgg19(None)
    loss = SRLoss(0.1, 1.0, 1e-3, 1.0, vgg=vgg, discriminator=disc,
                  taps=resolve_taps(["relu1_2"]))
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (gen, disc))
    step = Stepper(gen, disc, loss, opt_g, opt_d, precision, torch.device("cpu"),
                   channels_last=True)
    before_g = gen.reconstruction.weight.detach().clone()
    before_d = next(disc.parameters()).detach().clone()
    lr_b, hr_b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    total = step(step.to_device(lr_b), step.to_device(hr_b))
    assert torch.isfinite(total) and not total.requires_grad and not step.scaled
    assert not torch.equal(before_g, gen.reconstruction.weight)
    assert not torch.equal(before_d, next(disc.parameters()))


def test_the_bench_prints_steps_per_second_for_each_precision(capsys):
    from scripts.bench_ddbpn_step import main

    assert main(["--size", "tiny", "--steps", "1", "--warmup", "0", "--workers", "0",
                 "--threads", "1", "--precisions", "fp32,fp16,bf16"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split()[:1] in (["fp32"], ["bf16"])}
    assert set(rows) == {"fp32", "bf16"} and "fp16       not run on cpu" in out
    for row in rows.values():  # first step, synthetic steps/s, ms/step, loader steps/s, ratio
        assert float(row[2]) > 0 and float(row[4]) > 0 and float(row[6]) > 0
    for what in ("import torch:", "VGG19 build", "evaluate 1 image", "NIQE of one",
                 "LR cache of the training images", "loader alone:"):
        assert what in out
