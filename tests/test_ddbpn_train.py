"""pretrain / finetune entry points with a tiny configuration."""
import math
import sys
import types
from pathlib import Path

import pytest
import torch

from autotune.jobs.ddbpn.train import finetune, load_checkpoint, pretrain

torch.set_num_threads(1)

TINY = dict(scale=4, n0=16, nR=8, T=2, patch=8, batch=4, iters_per_epoch=3, val_crop=200,
            disc_width=8, disc_fc=16, vgg_taps="relu1_2,relu2_2")
FOUR = dict(w1=0.01, w2=0.1, w3=0.001, w4=10.0, lr=1e-3)


def make_ctx(tmp_path, name, epochs, seed=7, pretrained=None, resume_from=None):
    trial_dir = tmp_path / name
    trial_dir.mkdir(exist_ok=True)
    return types.SimpleNamespace(trial=0, trial_dir=str(trial_dir), seed=seed, epochs=epochs,
                                 pretrained=pretrained, resume_from=resume_from,
                                 checkpoint_path=str(trial_dir / "checkpoint.pt"))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pre")
    ctx = make_ctx(tmp, "pre", epochs=2)
    result = pretrain(dict(TINY, lr=2e-3), ctx)
    return ctx.checkpoint_path, result


def test_pretrain_result_and_checkpoint(pretrained):
    path, result = pretrained
    assert set(result) >= {"loss", "psnr", "ssim", "niqe", "epochs"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.values())
    assert result["epochs"] == 2.0
    ck = load_checkpoint(path)
    assert ck["stage"] == "pretrain" and ck["epochs_done"] == 2
    assert ck["arch"] == {"scale": 4, "n0": 16, "nR": 8, "T": 2}
    assert ck["discriminator"] is None  # MSE only: no discriminator


def test_finetune_four_losses(tmp_path, pretrained):
    ctx = make_ctx(tmp_path, "ft", epochs=2, pretrained=pretrained[0])
    result = finetune(dict(TINY, **FOUR), ctx)
    for key in ("niqe", "psnr", "ssim", "loss", "epochs"):
        assert isinstance(result[key], float) and math.isfinite(result[key]), key
    assert result["epochs"] == 2.0
    # where its time went: set-up, first step, waiting on data, steady rate, evaluation
    assert result["setup_s"] > 0 and result["eval_s"] > 0 and result["steps_per_s"] > 0
    assert 0 < result["first_step_s"] < result["seconds"] and result["data_wait_s"] >= 0
    assert result["process_age_s"] > 0
    assert 0.0 < result["ssim"] < 1.0 and result["psnr"] > 10.0
    pngs = sorted(p.name for p in (Path(ctx.trial_dir) / "sr").glob("*.png"))
    assert pngs == ["camera.png", "chelsea.png", "coffee.png"]
    ck = load_checkpoint(ctx.checkpoint_path)
    assert ck["stage"] == "finetune" and ck["epochs_done"] == 2
    assert ck["discriminator"] is not None and ck["opt_d"] is not None
    # the fine-tune started from the pretrained weights, then moved away from them
    pre = load_checkpoint(pretrained[0])["model"]
    name = "reconstruction.weight"
    assert not torch.equal(pre[name], ck["model"][name])


def test_resume_trains_only_the_extra_epochs(tmp_path, pretrained):
    params = dict(TINY, **FOUR, lr_step=2)
    short = make_ctx(tmp_path, "short", epochs=1, pretrained=pretrained[0])
    assert finetune(params, short)["epochs"] == 1.0
    resumed = make_ctx(tmp_path, "resumed", epochs=3, resume_from=short.checkpoint_path)
    res = finetune(params, resumed)
    assert res["epochs"] == 3.0
    assert load_checkpoint(resumed.checkpoint_path)["epochs_done"] == 3
    # an unbroken 3-epoch run ends with the same weights
    full = make_ctx(tmp_path, "full", epochs=3, pretrained=pretrained[0])
    ref = finetune(params, full)
    a = load_checkpoint(resumed.checkpoint_path)["model"]
    b = load_checkpoint(full.checkpoint_path)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert res["psnr"] == pytest.approx(ref["psnr"], abs=1e-3)
    # nothing left to train: the checkpoint is evaluated as it is
    again = make_ctx(tmp_path, "again", epochs=3, resume_from=resumed.checkpoint_path)
    out = finetune(params, again)
    assert out["epochs"] == 3.0 and out["seconds"] < 0.5


def test_resume_rejects_other_architecture(tmp_path, pretrained):
    ctx = make_ctx(tmp_path, "bad", epochs=3, resume_from=pretrained[0])
    with pytest.raises(ValueError):
        pretrain(dict(TINY, nR=4), ctx)
    with pytest.raises(ValueError):  # a pretrain checkpoint is not a fine-tune run
        finetune(dict(TINY, w1=1.0), ctx)


def test_evaluate_command(tmp_path, pretrained):
    answer = {"ma": 6.0, "extra": 2, "note": "text"}
    cmd = (f"{sys.executable} -c \"import json,os,sys; print('log line'); "
           f"assert os.path.isdir(sys.argv[1]) and os.path.isdir(sys.argv[2]); "
           f"print(json.dumps({answer!r}))\" {{trial_dir}} {{sr_dir}}")
    ctx = make_ctx(tmp_path, "eval", epochs=1, pretrained=pretrained[0])
    params = dict(TINY, w1=1.0, evaluate_command=cmd)
    result = finetune(params, ctx)
    assert result["ma"] == 6.0 and result["extra"] == 2.0 and "note" not in result
    assert result["pi"] == pytest.approx(((10 - 6.0) + result["niqe"]) / 2)

    failing = dict(params, evaluate_command=f"{sys.executable} -c \"import sys; "
                   f"sys.stderr.write('matlab exploded'); sys.exit(3)\"")
    with pytest.raises(RuntimeError, match="matlab exploded"):
        finetune(failing, make_ctx(tmp_path, "eval2", epochs=0, pretrained=pretrained[0]))


def test_evaluate_command_paths_are_quoted(tmp_path):
    from autotune.jobs.ddbpn.train import run_evaluator

    trial, sr = tmp_path / "study dir" / "it's", tmp_path / 'sr "x" $HOME'
    trial.mkdir(parents=True)
    sr.mkdir()
    cmd = (f"{sys.executable} -c \"import json,sys; a = sys.argv[1:]; print(json.dumps("
           "{'n': len(a), 'a': len(a[0]), 'b': len(a[1]), 'same': float(a[1] == a[2])}))\" "
           "{trial_dir} '{sr_dir}' \"{sr_dir}\"")
    assert run_evaluator(cmd, str(trial), str(sr)) == {"n": 3.0, "a": len(str(trial)),
                                                      "b": len(str(sr)), "same": 1.0}


def test_nan_loss_raises(tmp_path):
    ctx = make_ctx(tmp_path, "nan", epochs=2)
    with pytest.raises(FloatingPointError, match="loss became NaN at epoch 1"):
        finetune(dict(TINY, w1=float("inf"), w2=0, w3=0, w4=0), ctx)


def test_precision_is_checked_and_bf16_runs_on_the_cpu(tmp_path, pretrained):
    with pytest.raises(ValueError, match="precision: must be one of"):
        finetune(dict(TINY, **FOUR, precision="fp8"), make_ctx(tmp_path, "bad", epochs=1))
    ctx = make_ctx(tmp_path, "bf16", epochs=1, pretrained=pretrained[0])
    result = finetune(dict(TINY, **FOUR, precision="bf16", save_sr=False, lr_cache=True), ctx)
    assert math.isfinite(result["loss"]) and result["epochs"] == 1.0
    assert load_checkpoint(ctx.checkpoint_path)["scaler_g"] is None  # bf16: no GradScaler


from autotune.jobs.ddbpn.train import _lr_at as REAL_LR_AT  # noqa: E402


def stop_at(monkeypatch, epoch, exc):
    """Stop a run as its epoch ``epoch`` (0-based) begins; returns the epochs begun."""
    from autotune.jobs.ddbpn import train

    begun, real = [], REAL_LR_AT

    def lr_at(e, cfg, target):
        if e == epoch:
            raise exc
        begun.append(e)
        return real(e, cfg, target)

    monkeypatch.setattr(train, "_lr_at", lr_at)
    return begun


def test_a_stopped_pretrain_continues_from_its_saved_epoch(tmp_path, monkeypatch):
    # submitit's requeue at a time limit exits the job (SystemExit) mid-training: the pretrain
    # saves what it has done, and its next run (the requeued job) goes on from there
    params = dict(TINY, lr=2e-3)
    ctx = make_ctx(tmp_path, "pre", epochs=4)
    stop_at(monkeypatch, 2, SystemExit(-1))
    with pytest.raises(SystemExit):
        pretrain(params, ctx)
    ck = load_checkpoint(ctx.checkpoint_path)
    assert ck["epochs_done"] == 2 and ck["target_epochs"] == 4 and "rng" in ck
    begun = stop_at(monkeypatch, None, None)
    result = pretrain(params, ctx)
    assert begun == [2, 3] and result["epochs"] == 4.0
    final = load_checkpoint(ctx.checkpoint_path)
    # the checkpoint the fine-tunes read, as an unbroken run leaves it
    assert final["epochs_done"] == 4 and "rng" not in final
    assert set(final) == {"format", "stage", "arch", "model", "discriminator", "opt_g", "opt_d",
                          "scaler_g", "scaler_d", "epochs_done", "target_epochs", "last_loss",
                          "seed", "params"}
    # and the same weights: the optimiser's state went on with it
    full = make_ctx(tmp_path, "full", epochs=4)
    from autotune.jobs.ddbpn import train

    def no_evaluation(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "evaluate", no_evaluation)  # its checkpoint is all we need
    with pytest.raises(KeyboardInterrupt):
        pretrain(params, full)
    whole = load_checkpoint(full.checkpoint_path)["model"]
    assert all(torch.allclose(final["model"][k], whole[k], atol=1e-6) for k in whole)


def test_a_pretrain_saves_every_checkpoint_every_s_and_not_for_other_settings(tmp_path,
                                                                            monkeypatch):
    # killed outright (no exception to save on): the last periodic save is what is left
    ctx = make_ctx(tmp_path, "pre", epochs=3)
    stop_at(monkeypatch, 2, RuntimeError("killed"))
    with pytest.raises(RuntimeError):
        pretrain(dict(TINY, checkpoint_every_s=0), ctx)
    assert load_checkpoint(ctx.checkpoint_path)["epochs_done"] == 2
    # another run's checkpoint (here: other epochs) is not continued from
    begun = stop_at(monkeypatch, 1, SystemExit(-1))
    with pytest.raises(SystemExit):
        pretrain(dict(TINY, checkpoint_every_s=0), make_ctx(tmp_path, "pre", epochs=5))
    assert begun == [0]
    assert load_checkpoint(ctx.checkpoint_path)["target_epochs"] == 5
    with pytest.raises(ValueError, match="checkpoint_every_s"):
        pretrain(dict(TINY, checkpoint_every_s=-1), ctx)
