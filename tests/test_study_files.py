"""The study files we ship must stay valid as the engine changes."""
import glob
import json
import os

import pytest

from autotune.errors import StudyError
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


def test_slurm_time_limit_too_short_for_the_warning_signal_is_one_line(tmp_path):
    """SLURM may send the USR2 warning up to 60 s early: a 2-minute limit with the default
    90 s warning would requeue every job as it starts. Refused before anything is written."""
    import time

    from autotune.executors.slurm import SlurmExecutor

    with pytest.raises(StudyError) as err:
        SlurmExecutor(str(tmp_path / "d"), 1, time.time(), {"time_limit_min": 2})
    assert str(err.value).startswith("executor.time_limit_min: 2 leaves no run time")
    assert "\n" not in str(err.value) and not (tmp_path / "d").exists()
    SlurmExecutor(str(tmp_path / "d"), 1, time.time(), {"time_limit_min": 2, "signal_delay_s": 30})


def _slurm_command_study(**executor) -> dict:
    """A one-point study of a command under SLURM with these executor options."""
    return {"name": "s", "objective": {"command": "true", "metric": "loss"},
            "space": {"x": {"values": [1]}}, "search": {"algorithm": "grid"},
            "executor": {"kind": "slurm", **executor}}


def _refusal(tmp_path, data: dict) -> str:
    """What load_study says of this study written as a file (it must refuse it)."""
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(data))
    with pytest.raises(StudyError) as err:
        load_study(str(path))
    return str(err.value)


@pytest.mark.parametrize("options, says", [
    ({"sbatch_flags": ["--array=0-3"]}, "executor.sbatch_flags: --array is autotune's to set: "
                                        "each trial is one job, not an array"),
    ({"sbatch_extra": {"job_name": "mine"}}, "executor.sbatch_extra: --job-name is autotune's "
                                             "to set: a job's name says its study and trial"),
    ({"sbatch_flags": ["--output=x.log"]}, "executor.sbatch_flags: --output is autotune's"),
    ({"sbatch_extra": {"signal": "USR1@60"}}, "give signal_delay_s instead"),
])
def test_sbatch_options_autotune_sets_itself_are_refused_in_one_line(tmp_path, options, says):
    """sbatch takes them (its --test-only cannot tell), and every job then failed: an --array
    job left its results where no driver looks (four trials 'FAILED' after a minute each)."""
    said = _refusal(tmp_path, _slurm_command_study(**options))
    assert says in said and "\n" not in said, said
    accepted = _slurm_command_study(sbatch_flags=["--exclusive", "--constraint=a100"])
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(accepted))
    load_study(str(path))  # options of its own are the user's to add


@pytest.mark.parametrize("options, says", [
    ({"partition": "debug", "sbatch_flags": ["--partition=gpu"]},
     "executor.sbatch_flags: --partition is also written from executor.partition: 'debug'; "
     "give it once, as partition"),
    ({"sbatch_flags": ["--time=120"]},
     "executor.sbatch_flags: --time is also written from executor.time_limit_min's default, "
     "--time=60; give it once, as time_limit_min"),
    ({"nodes": 1, "sbatch_extra": {"nodes": 2}},
     "executor.sbatch_extra: --nodes is also written from executor.nodes: 1; give it once"),
    ({"gpus_per_job": 1, "sbatch_extra": {"gres": "gpu:2"}},
     "executor.sbatch_extra: --gres is also written from executor.gpus_per_job: 1"),
    ({"sbatch_flags": ["--constraint=a100"], "sbatch_extra": {"constraint": "h100"}},
     "executor.sbatch_extra: --constraint is given twice (executor.sbatch_flags gives it "
     "too); give it once"),
])
def test_an_sbatch_option_given_in_two_places_is_refused_naming_both(tmp_path, options, says):
    """submitit let sbatch_flags' or sbatch_extra's value win silently over the key's own
    (--partition=gpu beside partition: debug; --nodes=2 beside nodes: 1 ran two nodes with
    one rank watched). One line as the file is read, before anything is written."""
    said = _refusal(tmp_path, _slurm_command_study(**options))
    assert said.startswith(says) and "\n" not in said, said


@pytest.mark.parametrize("stage_executor, says", [
    ({"cleanup": "never"}, "stages.pretrain.executor.cleanup: expected one of keep, done, all"),
    ({"time_limit_min": 2}, "stages.pretrain.executor.time_limit_min: 2 leaves no run time"),
    ({"sbatch_flags": ["--array=0-1"]}, "stages.pretrain.executor.sbatch_flags: --array is "),
    ({"result_grace_s": -5}, "stages.pretrain.executor.result_grace_s: expected a number >= 0, "
                             "got -5"),
])
def test_the_pretrains_executor_options_are_checked_as_the_file_is_read(tmp_path, stage_executor,
                                                                        says):
    """They were checked only as the pretrain's job was made: the study was written by then,
    and the line named the study's own key (executor.cleanup)."""
    data = {"name": "s", "objective": {"entry": "tests.objectives:finetune", "metric": "loss"},
            "space": {"x": {"values": [1]}}, "search": {"algorithm": "grid"},
            "executor": {"kind": "slurm", "time_limit_min": 5},
            "stages": {"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 1,
                                    "executor": stage_executor}}}
    said = _refusal(tmp_path, data)
    assert said.startswith(says) and "\n" not in said, said


@pytest.mark.parametrize("key, says", [
    ("mem", "executor.mem: unknown key; sbatch's --mem is mem_gb here (in GB)"),
    ("gpus", "executor.gpus: unknown key; GPUs are gpus_per_node here (or gpus_per_task)"),
    ("time", "executor.time: unknown key; sbatch's --time is time_limit_min here"),
    ("constraint", "executor.constraint: unknown key; sbatch options of no key of their own "
                   "go in sbatch_extra or sbatch_flags"),
])
def test_sbatchs_own_names_for_an_option_say_what_it_is_here(tmp_path, key, says):
    """`mem: 4` (sbatch's name) was only 'unknown key' and a list of 24 keys to read."""
    said = _refusal(tmp_path, _slurm_command_study(**{key: 4}))
    assert said.startswith(says), said
