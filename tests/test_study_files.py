"""The study files we ship must stay valid as the engine changes."""
import glob
import os

import pytest

from autotune.study import load_study
from tests.helpers import REPO

FILES = sorted(glob.glob(os.path.join(REPO, "search_spaces", "*.yaml")))


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f) for f in FILES])
def test_shipped_study_files_load(path):
    study = load_study(path)
    assert study.space.free


def test_the_d_dbpn_grid_is_the_studys():
    study = load_study(os.path.join(REPO, "search_spaces", "d-dbpn.yaml"))
    axes = dict(study.space.axes())
    assert [len(axes[k]) for k in ("lr", "w2", "w3", "w4")] == [10, 11, 11, 11]
    assert 10 * 11 * 11 * 11 == 13310
    assert study.space.fixed["w1"] == 0.1 and study.space.fixed["epochs"] == 250
    assert study.objective.pretrain.epochs == 1000 and study.objective.pretrain.params["w1"] == 0.01
    assert study.executor == "slurm" and study.max_concurrent == 50
    assert study.executor_options["gpus_per_job"] == 1
    tiny = load_study(os.path.join(REPO, "search_spaces", "d-dbpn-tiny.yaml"))
    assert dict(tiny.space.axes()) == axes
    assert tiny.search_options["start"] == study.search_options["start"]
