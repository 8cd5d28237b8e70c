"""The D-DBPN job data-parallel over 2 ranks (gloo on CPU), through the local executor:
the ranks' batch slices add up to the one-process batch, so a 2-rank run ends where a
one-process run ends; rank 0's metrics are the trial's and its checkpoint loads in a
one-process run."""
from __future__ import annotations

import math
import os
import types

import torch

from autotune.driver import Driver
from autotune.jobs.ddbpn.parallel import BatchSlice, Ranks, slice_of
from autotune.jobs.ddbpn.model import DDBPN
from autotune.jobs.ddbpn.train import finetune, load_checkpoint
from autotune.objective import trial_seed
from autotune.study import parse_study
from tests.helpers import history, study_dict

TINY = dict(scale=4, n0=16, nR=8, T=2, patch=8, batch=4, iters_per_epoch=2, val_crop=112,
            threads=1, save_sr=False, epochs=1, lr=2e-3)


def test_rank_slices_cover_each_global_batch_once():
    for batch, world in ((4, 2), (5, 2), (7, 3)):
        parts = [slice_of(batch, Ranks(r, world)) for r in range(world)]
        assert sum(size for _, size in parts) == batch
        assert [off for off, _ in parts] == [sum(s for _, s in parts[:r]) for r in range(world)]
        samplers = [BatchSlice(3 * batch, batch, Ranks(r, world)) for r in range(world)]
        for s in samplers:
            s.epoch = 2
        assert sorted(i for s in samplers for i in s) == list(range(6 * batch, 9 * batch))


def test_two_rank_training_matches_one_process_and_its_checkpoint_loads(tmp_path):
    # trial 0: MSE only, as a pretrain; trial 1: with the adversarial term (the discriminator
    # data-parallel too, its BatchNorm statistics per rank, so only run, not compared)
    space = dict(TINY, w1=0.01, w2=0.0, w4=0.0, w3={"values": [0.0, 0.001]}, disc_width=8,
                 disc_fc=16)
    study = parse_study(study_dict(
        retries=0, objective={"entry": "autotune.jobs.ddbpn.train:finetune", "metric": "psnr",
                              "mode": "max"},
        space=space, search={"algorithm": "grid", "seed": 3},
        executor={"kind": "local", "tasks_per_trial": 2, "gpus_per_trial": 0}))
    d = str(tmp_path / "ddp")
    Driver(study, d, progress=False).run()
    h = history(d)
    assert h.by_status() == {"ok": 2}, [r.error for r in h.trials.values()]
    rec = h.trials[0]
    assert set(rec.metrics) >= {"psnr", "ssim", "niqe", "loss", "epochs"}
    assert "rank" not in rec.metrics  # rank 0's answer, not rank 1's
    assert load_checkpoint(os.path.join(d, "trials", "1", "checkpoint.pt"))["discriminator"]
    parallel_ck = load_checkpoint(os.path.join(d, "trials", "0", "checkpoint.pt"))
    assert not any(k.startswith("module.") for k in parallel_ck["model"])

    torch.set_num_threads(1)
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    ctx = types.SimpleNamespace(trial=0, trial_dir=str(single_dir), seed=trial_seed(3, 0),
                                epochs=None, pretrained=None, resume_from=None,
                                checkpoint_path=str(single_dir / "checkpoint.pt"))
    single = finetune({k: v for k, v in space.items() if k != "w3"} | {"w3": 0.0}, ctx)
    single_ck = load_checkpoint(ctx.checkpoint_path)
    # compared by each tensor's norm, not element by element: Adam's first steps turn the
    # reduction-order differences of near-zero gradients (two ranks' sums against one
    # batch's, and kernels differ by CPU) into differences of up to the learning rate in
    # single elements; a rank on the wrong data moves whole tensors by a few percent
    for name, value in single_ck["model"].items():
        gap = float((parallel_ck["model"][name] - value).norm())
        assert gap <= 1e-3 * float(value.norm()), (name, gap / float(value.norm()))
    assert math.isclose(single["loss"], rec.metrics["loss"], rel_tol=1e-4)
    # what a one-process run does with it (pretrained / resume_from): load it strictly
    DDBPN(**parallel_ck["arch"]).load_state_dict(parallel_ck["model"], strict=True)
