"""Steps per second of the D-DBPN job's four-loss training step, and where a trial's time goes.

    python scripts/bench_ddbpn_step.py [--size paper|tiny] [--precisions fp32,fp16,bf16]
        [--steps 20] [--warmup 3] [--no-loader] [--workers 4] [--channels-last]
        [--compile MODE] [--cudnn-benchmark on|off] [--device auto|cpu|cuda]

``paper``: the 4x network (n0 256, nR 64, T 7, 10,426,358 parameters), batch 20, LR patch 32
(HR 128), the discriminator and a VGG19 (random weights: the cost is the same). ``tiny``: the
CPU test configuration. For each precision it prints the first step (cudnn autotuning, lazy
CUDA set-up), steps/s on synthetic tensors already on the device, steps/s fed by the job's own
DataLoader (built-in images, the LR cache, ``--workers`` processes) and their ratio, the
loader alone (batches/s), and the peak memory. Before that, the set-up costs a trial pays
once: importing torch, starting CUDA, building the networks and the VGG, the training images'
LR cache, and evaluating one validation image (SR, PSNR/SSIM, NIQE). The job's step itself
(autotune.jobs.ddbpn.step.Stepper) is timed, not a copy of it.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time

T_START = time.perf_counter()
import torch  # noqa: E402

T_TORCH = time.perf_counter() - T_START
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from autotune.jobs.ddbpn.data import EpochSampler, ImageSource, TrainPatches  # noqa: E402
from autotune.jobs.ddbpn.losses import SRLoss  # noqa: E402
from autotune.jobs.ddbpn.model import DDBPN, Discriminator, count_parameters  # noqa: E402
from autotune.jobs.ddbpn.step import Stepper, compile_module, resolve_precision  # noqa: E402
from autotune.jobs.ddbpn.vgg import load_vgg19, resolve_taps  # noqa: E402

SIZES = {
    "paper": dict(scale=4, n0=256, nR=64, T=7, patch=32, batch=20, disc_width=64, disc_fc=1024,
                  taps=None),
    "tiny": dict(scale=4, n0=16, nR=8, T=2, patch=8, batch=4, disc_width=8, disc_fc=64,
                 taps="relu2_2,relu3_4"),
}
WEIGHTS = dict(w1=0.1, w2=1.0, w3=1e-3, w4=1.0)  # the conventional setting: all four terms


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # process RSS (KiB -> GiB)


class Setup:
    """The networks of one precision run, built as the job builds them."""

    def __init__(self, size: dict, device: torch.device, precision: str, vgg,
                 channels_last: bool, compile_mode: str | None):
        torch.manual_seed(0)
        arch = {k: size[k] for k in ("scale", "n0", "nR", "T")}
        self.gen = DDBPN(**arch).to(device)
        if channels_last:
            self.gen = self.gen.to(memory_format=torch.channels_last)
        self.disc = Discriminator(size["patch"] * size["scale"], size["disc_width"],
                                  size["disc_fc"]).to(device)
        taps = resolve_taps(size["taps"].split(",")) if size["taps"] else resolve_taps(None)
        loss = SRLoss(vgg=vgg, discriminator=self.disc, taps=taps, **WEIGHTS)
        opt_g = torch.optim.Adam(self.gen.parameters(), lr=1e-4, betas=(0.9, 0.999))
        opt_d = torch.optim.Adam(self.disc.parameters(), lr=1e-4, betas=(0.9, 0.999))
        self.step = Stepper(compile_module(self.gen, compile_mode), self.disc, loss, opt_g, opt_d,
                            precision, device, channels_last)


def time_steps(step: Stepper, batches, n: int, device: torch.device) -> float:
    """Steps per second over ``n`` steps (synchronised at both ends)."""
    sync(device)
    began = time.perf_counter()
    for _ in range(n):
        lr_b, hr_b = next(batches)
        step(step.to_device(lr_b), step.to_device(hr_b))
    sync(device)
    return n / (time.perf_counter() - began)


def synthetic(size: dict, device: torch.device):
    g = torch.Generator(device="cpu").manual_seed(0)
    b, p, s = size["batch"], size["patch"], size["scale"]
    lr_b = torch.rand(b, 3, p, p, generator=g).to(device)
    hr_b = torch.rand(b, 3, p * s, p * s, generator=g).to(device)
    while True:
        yield lr_b, hr_b


def job_loader(size: dict, workers: int, device: torch.device, steps: int):
    """The job's own pipeline: built-in images, LR cache, EpochSampler, pinned memory."""
    from torch.utils.data import DataLoader

    source = ImageSource(None)
    data = TrainPatches(source, size["scale"], size["patch"], steps * size["batch"], seed=0)
    began = time.perf_counter()
    data.warm()
    warm_s = time.perf_counter() - began
    sampler = EpochSampler(len(data))
    loader = DataLoader(data, batch_size=size["batch"], sampler=sampler, drop_last=True,
                        num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=workers > 0)

    def batches():
        epoch = 0
        while True:
            sampler.epoch = epoch
            yield from loader
            epoch += 1
    return batches(), warm_s


def set_up_costs(size: dict, device: torch.device) -> object:
    """What a trial pays before its first step, and its evaluation of one image."""
    print(f"import torch: {T_TORCH:.2f} s")
    began = time.perf_counter()
    if device.type == "cuda":
        torch.zeros(1, device=device)
        sync(device)
        print(f"CUDA start: {time.perf_counter() - began:.2f} s ({torch.cuda.get_device_name(0)}, "
              f"torch {torch.__version__}, bf16 {torch.cuda.is_bf16_supported()})")
    began = time.perf_counter()
    gen = DDBPN(scale=size["scale"], n0=size["n0"], nR=size["nR"], T=size["T"]).to(device)
    sync(device)
    print(f"generator build: {time.perf_counter() - began:.2f} s ({count_parameters(gen):,} "
          "parameters)")
    began = time.perf_counter()
    vgg = load_vgg19(None, device=device)
    sync(device)
    print(f"VGG19 build (seeded random): {time.perf_counter() - began:.2f} s")
    began = time.perf_counter()
    TrainPatches(ImageSource(None), size["scale"], size["patch"], size["batch"])
    print(f"training images load: {time.perf_counter() - began:.2f} s")
    from autotune.jobs.ddbpn.data import load_validation
    from autotune.jobs.ddbpn.train import evaluate

    began = time.perf_counter()
    images = load_validation(size["scale"], None, 128)[:1]
    print(f"validation image load (1, crop 128): {time.perf_counter() - began:.2f} s")
    torch.backends.cudnn.benchmark = False
    began = time.perf_counter()
    metrics = evaluate(gen, images, device)
    print(f"evaluate 1 image (SR + PSNR/SSIM/NIQE): {time.perf_counter() - began:.2f} s "
          f"(niqe {metrics['niqe']:.2f})")
    from autotune.jobs.ddbpn.metrics import niqe_y
    import numpy as np

    img = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    began = time.perf_counter()
    niqe_y(img, 4)
    print(f"NIQE of one 512x512 image: {time.perf_counter() - began:.2f} s")
    return vgg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="paper")
    ap.add_argument("--precisions", default="fp32,fp16,bf16")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--no-loader", action="store_true", help="synthetic tensors only")
    ap.add_argument("--no-setup", action="store_true", help="skip the set-up costs")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", default=None, help="torch.compile the generator: default, "
                    "reduce-overhead (CUDA graphs) or max-autotune")
    ap.add_argument("--cudnn-benchmark", choices=["on", "off"], default="on")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" or (
        args.device == "auto" and torch.cuda.is_available()) else "cpu")
    size = SIZES[args.size]
    print(f"D-DBPN {args.size}: batch {size['batch']}, LR patch {size['patch']}, device {device}, "
          f"cudnn.benchmark {args.cudnn_benchmark}, channels_last {args.channels_last}, "
          f"compile {args.compile}")
    vgg = set_up_costs(size, device) if not args.no_setup else load_vgg19(None, device=device)
    loader = None
    if not args.no_loader:
        loader, warm_s = job_loader(size, args.workers, device, args.steps + args.warmup + 1)
        print(f"LR cache of the training images: {warm_s:.2f} s")
        began = time.perf_counter()
        first = next(loader)
        print(f"loader start ({args.workers} workers, first batch): "
              f"{time.perf_counter() - began:.2f} s")
        began = time.perf_counter()
        for _ in range(args.steps):
            next(loader)
        print(f"loader alone: {args.steps / (time.perf_counter() - began):.1f} batches/s")
        del first
    print(f"{'precision':<10}{'first step s':>13}{'synthetic steps/s':>19}{'ms/step':>9}"
          f"{'loader steps/s':>16}{'loader/synth':>13}{'peak GiB':>10}")
    for requested in [p.strip() for p in args.precisions.split(",") if p.strip()]:
        precision = resolve_precision(requested, device)
        if precision != requested:
            print(f"{requested:<10} not run on {device} (would be {precision})")
            continue
        torch.backends.cudnn.benchmark = args.cudnn_benchmark == "on"
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        run = Setup(size, device, precision, vgg, args.channels_last, args.compile)
        data = synthetic(size, device)
        began = time.perf_counter()
        lr_b, hr_b = next(data)
        run.step(lr_b, hr_b)
        sync(device)
        first_s = time.perf_counter() - began
        for _ in range(args.warmup):
            run.step(*next(data))
        synth = time_steps(run.step, data, args.steps, device)
        fed = time_steps(run.step, loader, args.steps, device) if loader is not None else None
        ratio = f"{fed / synth:.2f}" if fed else "-"
        print(f"{precision:<10}{first_s:>13.2f}{synth:>19.2f}{1000 / synth:>9.1f}"
              f"{(f'{fed:.2f}' if fed else '-'):>16}{ratio:>13}{peak_gib(device):>10.2f}",
              flush=True)
        del run
    return 0


if __name__ == "__main__":
    sys.exit(main())
