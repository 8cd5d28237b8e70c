"""The D-DBPN study's data and settings, checked while the study file is read: a misspelt
key, a data folder that is missing, empty, holds a file PIL cannot read or images too small
to use, a missing VGG19 weights file: one line naming the key, exit status 2, nothing
written (they failed every run after its training, the pretrain's first; a misspelt
``train_dir`` trained on the built-in images instead)."""
import os

import pytest
import skimage.data
from PIL import Image

from autotune.cli import main
from autotune.jobs.ddbpn.train import finetune, resolve_settings
from tests.helpers import write_study

TINY = {"scale": 4, "n0": 8, "nR": 4, "T": 2, "patch": 8, "batch": 2, "iters_per_epoch": 1,
        "threads": 1}


def folder(path, sizes, gray=False):
    path.mkdir(parents=True, exist_ok=True)
    img = skimage.data.astronaut()
    for i, (h, w) in enumerate(sizes):
        a = img[:h, :w, 0] if gray else img[:h, :w]
        Image.fromarray(a).save(path / f"im{i}.png")
    return str(path)


def ddbpn_study(train, val, space_extra=None, pre_extra=None):
    data = {"train_dir": train, "val_dir": val}
    return {
        "name": "ddbpn-check",
        "objective": {"entry": "autotune.jobs.ddbpn.train:finetune", "metric": "niqe"},
        "space": {"lr": {"values": [1.0e-4, 1.0e-3]}, "w2": {"values": [0, 1]}, "w1": 0.1,
                  "w3": 0, "w4": 0, "epochs": 1, **TINY, **data, **(space_extra or {})},
        "stages": {"pretrain": {"entry": "autotune.jobs.ddbpn.train:pretrain", "epochs": 1,
                                "params": {"w1": 0.01, **TINY, **data, **(pre_extra or {})}}},
        "search": {"algorithm": "grid", "max_trials": 1},
        "executor": {"kind": "inline"},
    }


@pytest.fixture
def good(tmp_path):
    return (folder(tmp_path / "train", [(200, 150), (97, 133), (20, 20)]),
            folder(tmp_path / "val", [(120, 130), (110, 104)], gray=True))


def refused(tmp_path, capsys, data):
    path = write_study(str(tmp_path / "s.yaml"), data)
    d = tmp_path / "out"
    code = main(["run", path, "--dir", str(d), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert not d.exists()
    return err


@pytest.mark.parametrize("where", ["space", "pretrain"])
@pytest.mark.parametrize("case, says", [
    ("missing", "train_dir: image folder not found"),
    ("empty", "train_dir: no images"),
    ("broken", "train_dir: "),
    ("all-small", "train_dir: no image in"),
    ("small-val", "val_dir: "),
    ("typo", "trian_dir: not a setting of the D-DBPN job (did you mean 'train_dir'?)"),
    ("vgg", "vgg_weights: no such file"),
])
def test_bad_data_is_one_line_naming_the_key_exit_2_nothing_written(tmp_path, capsys, good,
                                                                    where, case, says):
    train, val = good
    extra = {}
    if case == "missing":
        train = str(tmp_path / "nope")
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        train = str(tmp_path / "empty")
    elif case == "broken":
        train = folder(tmp_path / "broken", [(200, 150)])
        (tmp_path / "broken" / "broken.png").write_bytes(b"not a png")
    elif case == "all-small":
        train = folder(tmp_path / "small", [(20, 20), (31, 40)])
    elif case == "small-val":
        val = folder(tmp_path / "val-small", [(120, 130), (96, 96)])
    elif case == "typo":
        extra = {"trian_dir": train}
    elif case == "vgg":
        extra = {"vgg_weights": str(tmp_path / "vgg19.pth")}
    good_train, good_val = good
    if where == "space":
        data = ddbpn_study(train, val, space_extra=extra)
        data["stages"]["pretrain"]["params"].update(train_dir=good_train, val_dir=good_val)
        key = "space."
    else:
        data = ddbpn_study(train, val, pre_extra=extra)
        data["space"].update(train_dir=good_train, val_dir=good_val)
        key = "stages.pretrain.params."
    err = refused(tmp_path, capsys, data)
    assert f"error: {key}{says}" in err, err
    if case == "broken":
        assert "broken.png is not a readable image" in err, err
    if case == "small-val":
        assert "im1.png is 96x96 px; a 96 px NIQE patch after the 4 px shave needs 104" in err


@pytest.mark.parametrize("where", ["space", "pretrain"])
@pytest.mark.parametrize("extra, says", [
    ({"vgg_taps": "relu2_2,relu9_9"}, "vgg_taps: unknown VGG19 layer 'relu9_9'"),
    ({"vgg_taps": "99"}, "vgg_taps: VGG19 feature index out of range: 99"),
    ({"precision": "bf8"}, "precision: must be one of auto, fp32, fp16, bf16, got 'bf8'"),
    ({"scale": 3}, "scale: must be 2, 4 or 8, got 3"),
    ({"patch": 0}, "patch: must be >= 1, got 0"),
    ({"n0": "wide"}, "n0: expected a whole number, got 'wide'"),
    ({"lr": "fast"}, "lr: expected a number, got 'fast'"),
    ({"checkpoint_every_s": -1}, "checkpoint_every_s: must be >= 0, got -1.0"),
    ({"w1": 0}, "w1: "),
])
def test_a_bad_setting_is_one_line_starting_with_its_key(tmp_path, capsys, good, where, extra,
                                                         says):
    """The job's own settings checks raised messages that did not start with the key, which
    the engine's ``space.`` prefix glued into ``space.unknown VGG19 layer 'relu9_9'``."""
    train, val = good
    if where == "space":
        data, key = ddbpn_study(train, val, space_extra=extra), "space."
    else:
        data, key = ddbpn_study(train, val, pre_extra=extra), "stages.pretrain.params."
    if extra.get("w1") == 0 and where == "space":
        data["space"]["w2"] = 0  # every fine-tune weight zero
    assert f"error: {key}{says}" in refused(tmp_path, capsys, data)


def test_good_folders_of_mixed_sizes_and_grey_images_pass_the_check(good):
    from autotune.jobs.ddbpn.train import check_params
    train, val = good
    check_params({"w1": 0.01, **TINY, "train_dir": train, "val_dir": val}, (), "pretrain")
    # every loss weight varied: none is taken for zero
    check_params({**TINY, "train_dir": train, "val_dir": val}, ("lr", "w1", "w2", "w3", "w4"))


def test_a_validation_image_is_measured_after_its_trim_to_the_scale(tmp_path):
    """NIQE needs 96 px after the 4 px shave of an image cut to a multiple of the scale:
    106 px at scale 4 is 104, enough; 103 is 100, not."""
    from autotune.jobs.ddbpn.train import check_params
    ok = folder(tmp_path / "ok", [(106, 104)])
    check_params({**TINY, "val_dir": ok}, ())
    short = folder(tmp_path / "short", [(103, 200)])
    with pytest.raises(ValueError, match="val_dir: .* needs 104 px a side"):
        check_params({**TINY, "val_dir": short}, ())
    with pytest.raises(ValueError, match="val_crop: 100 px"):
        check_params({**TINY, "val_crop": 100}, ())


def test_a_misspelt_key_is_refused_by_the_run_itself(tmp_path):
    """Called from Python (or by a study the check did not see), a typo raised nothing and the
    run went on with the built-in images."""
    with pytest.raises(ValueError, match="trian_dir: .*did you mean 'train_dir'"):
        resolve_settings({"trian_dir": str(tmp_path)}, "finetune")

    class Ctx:
        trial, trial_dir, seed, epochs, pretrained, resume_from, checkpoint_path = \
            0, str(tmp_path), 0, 0, None, None, None
    with pytest.raises(ValueError, match="trian_dir"):
        finetune({**TINY, "trian_dir": str(tmp_path)}, Ctx())



def test_a_study_with_relative_folders_reads_back_from_another_directory(tmp_path, monkeypatch,
                                                                          good):
    """The check reads a relative folder from the current directory, where a new study's runs
    start; a study rebuilt from its history (``autotune.load_study(dir)``, a resume) runs
    where it was first launched, so it is not checked again from wherever it is read."""
    import os

    import autotune as at

    train, val = good
    launch = tmp_path / "launch"
    launch.mkdir()
    os.symlink(train, launch / "train")
    os.symlink(val, launch / "val")
    data = ddbpn_study("train", "val")
    del data["stages"]  # the fine-tune's own check is the same; its pretrain is time only
    path = write_study(str(launch / "s.yaml"), data)
    d = str(tmp_path / "out")
    monkeypatch.chdir(launch)
    with at.create_study(path, dir=d) as own:  # the history records this launch directory
        own.tell(own.ask(), 6.5)   # (no training: what is read back is the record)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    study = at.load_study(d)
    assert len(study.trials) == 1 and study.trials[0].status == "ok"
    # the study file read afresh from here names the directory it read the folder from
    from autotune.errors import StudyError
    from autotune.study import load_study

    with pytest.raises(StudyError, match=r"space\.train_dir: .*train.* \(relative to the "
                                         r"current directory, .*elsewhere, where the runs"):
        load_study(path)


def test_a_folder_checked_again_unchanged_reads_no_header_and_a_changed_one_is_read(
        tmp_path, monkeypatch):
    """``compare`` defines one study per run and each definition checks the data: a 12-run
    comparison read every header 12 times (over NFS, minutes). An unchanged folder's headers
    are read once; a file changed, replaced or added since is read again, never taken for
    the one checked before."""
    from PIL import Image as PILImage

    from autotune.jobs.ddbpn.train import check_params

    train = folder(tmp_path / "train", [(200, 150), (97, 133), (20, 20)])
    opened = []
    real_open = PILImage.open
    monkeypatch.setattr(PILImage, "open", lambda p, *a, **k: opened.append(str(p)) or
                        real_open(p, *a, **k))
    settings = {"w1": 0.01, **TINY, "train_dir": train}
    check_params(settings, (), "pretrain")
    assert len(opened) == 3
    for _ in range(3):
        check_params(settings, (), "pretrain")
    assert len(opened) == 3  # the same folder, unchanged: no header read again
    # a file rewritten in place is read again: here it is no longer an image
    (tmp_path / "train" / "im1.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"train_dir: .*im1\.png is not a readable image"):
        check_params(settings, (), "pretrain")
    # every image too small now (the same names, new contents): refused, not taken as before
    folder(tmp_path / "train", [(20, 20), (31, 40), (20, 20)])
    with pytest.raises(ValueError, match="train_dir: no image in"):
        check_params(settings, (), "pretrain")
    # a new file is read, the others not again
    folder(tmp_path / "train2", [(200, 150)])
    opened.clear()
    os.replace(tmp_path / "train2" / "im0.png", tmp_path / "train" / "new.png")
    check_params(settings, (), "pretrain")
    assert [os.path.basename(p) for p in opened] == ["new.png"]
