"""Multi-rank trials through the local executor (gloo on CPU): every rank runs with the
torch.distributed variables, rank 0's result is the trial's, a failing rank fails it."""
from __future__ import annotations

import os

import pytest

from autotune.driver import Driver
from autotune.errors import StudyError
from autotune.ranks import port_for
from autotune.study import parse_study
from tests.helpers import cli, history, study_dict, write_study


def two_rank_study(space, **executor):
    return parse_study(study_dict(
        retries=0, objective={"entry": "tests.dist_objective:ranked"}, space=space,
        search={"algorithm": "grid"},
        executor={"kind": "local", "max_concurrent": 2, "tasks_per_trial": 2, **executor}))


def markers(d, trial):
    tdir = os.path.join(d, "trials", str(trial))
    return sorted(n for n in os.listdir(tdir) if n.startswith("ran-rank-"))


def test_two_ranks_both_run_and_rank_0s_metrics_are_recorded(tmp_path):
    d = str(tmp_path / "ok")
    Driver(two_rank_study({"x": {"values": [1, 3]}}), d, progress=False).run()
    h = history(d)
    assert h.by_status() == {"ok": 2}
    for t, rec in h.trials.items():
        assert markers(d, t) == ["ran-rank-0", "ran-rank-1"]
        # rank 0's result: its rank, and the sum over both ranks of rank + 1
        assert rec.metrics["rank"] == 0 and rec.metrics["world"] == 2 and rec.metrics["sum"] == 3
    assert h.trials[0].value == 0.0 and h.trials[1].value == 4.0
    # the two trials had their own master ports (they ran at the same time)
    ports = set()
    for t in h.trials:
        with open(os.path.join(d, "trials", str(t), "ran-rank-0")) as fh:
            ports.add(fh.read().split()[-1])
    assert len(ports) == 2


def test_an_exception_in_rank_1_fails_the_trial_with_rank_1s_message(tmp_path):
    d = str(tmp_path / "fail")
    Driver(two_rank_study({"x": {"values": [1]}, "fail_rank": 1}), d, progress=False).run()
    rec = history(d).trials[0]
    assert rec.status == "failed" and rec.failure == "exception"
    assert rec.error == "rank 1: ValueError: boom in rank 1"
    with open(os.path.join(d, "trials", "0", "rank-1.stderr.log")) as fh:
        assert "boom in rank 1" in fh.read()


def test_launch_node_starts_one_process_told_how_many_to_start(tmp_path):
    study = parse_study(study_dict(
        retries=0, objective={"entry": None, "command":
                              "echo '{{\"loss\": '$WORLD_SIZE', \"n\": '$AUTOTUNE_NPROC_PER_NODE'}}'"},
        space={"x": {"values": [1]}}, search={"algorithm": "grid"},
        executor={"kind": "local", "tasks_per_trial": 4, "launch": "node",
                  "gpus_per_trial": 0}))
    d = str(tmp_path / "node")
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    assert rec.status == "ok", rec.error
    assert rec.metrics == {"loss": 1.0, "n": 4.0}


def test_a_command_runs_in_every_rank_and_rank_0_gives_the_result(tmp_path):
    study = parse_study(study_dict(
        retries=0, objective={"entry": None, "command":
                              "touch {trial_dir}/cmd-$RANK; test $RANK = 0 || exit {x}; "
                              "echo '{{\"loss\": '$WORLD_SIZE'}}'"},
        space={"x": {"values": [0, 5]}}, search={"algorithm": "grid"},
        executor={"kind": "local", "tasks_per_trial": 3, "max_concurrent": 1}))
    d = str(tmp_path / "cmd")
    Driver(study, d, progress=False).run()
    h = history(d)
    assert h.trials[0].status == "ok" and h.trials[0].value == 3.0
    assert sorted(n for n in os.listdir(os.path.join(d, "trials", "0")) if n.startswith("cmd-")) \
        == ["cmd-0", "cmd-1", "cmd-2"]
    assert h.trials[1].status == "failed"
    assert h.trials[1].error.startswith("rank ") and "command exited with status 5" in h.trials[1].error


def test_bad_options_are_one_line_and_record_nothing(tmp_path, monkeypatch):
    with pytest.raises(StudyError, match="executor.launch: expected one of task, node"):
        two_rank_study({"x": {"values": [1]}}, launch="per-node")
    with pytest.raises(StudyError, match="executor.trials_per_gpu: packing several trials"):
        two_rank_study({"x": {"values": [1]}}, gpus_per_trial=2, trials_per_gpu=2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    d = str(tmp_path / "bad")
    with pytest.raises(StudyError, match=r"executor.gpus_per_trial: 2 GPU\(s\) per trial, but 1"):
        Driver(two_rank_study({"x": {"values": [1]}}), d, progress=False).run()
    assert not os.path.exists(d)


def test_ports_of_slurm_jobs_are_derived_alike_and_in_range():
    assert port_for("12345") == port_for("12345")
    assert all(20000 <= port_for(str(j)) < 50000 for j in range(1, 2000, 37))


def rank_command_study(command, **executor):
    return study_dict(
        retries=0, objective={"entry": None, "command": command, "metric": "loss"},
        space={"x": {"values": [1]}}, search={"algorithm": "grid"},
        executor={"kind": "local", "max_concurrent": 1, **executor})


def test_a_command_may_name_the_rank_and_world_size_a_multi_rank_trial_has(tmp_path):
    # {extra[rank]} was refused at start ("unknown field 'rank'"): the check formatted the
    # command with an empty ctx.extra, though every rank of the trial has these keys
    path = write_study(str(tmp_path / "s.yaml"), rank_command_study(
        "echo rank {extra[rank]} of {extra[world_size]:d} >&2; echo '{{\"loss\": '{x}'}}'",
        tasks_per_trial=2))
    d = str(tmp_path / "run")
    out = cli("run", path, "--dir", d)
    assert out.returncode == 0, out.stderr
    assert history(d).trials[0].status == "ok"
    logs = {name: open(os.path.join(d, "trials", "0", name)).read()
            for name in ("stderr.log", "rank-1.stderr.log")}
    assert logs == {"stderr.log": "rank 0 of 2\n", "rank-1.stderr.log": "rank 1 of 2\n"}


def test_an_extra_key_no_trial_has_is_refused_in_one_line(tmp_path):
    for name, executor, held in (
            ("bogus", {"tasks_per_trial": 2}, "local_rank, nnodes, node_rank, rank, world_size"),
            ("rank", {}, "nothing")):  # a one-process trial has no rank
        path = write_study(str(tmp_path / "s.yaml"), rank_command_study(
            f"echo {{extra[{name}]}}; echo '{{{{\"loss\": 1}}}}'", **executor))
        d = str(tmp_path / f"run-{name}")
        out = cli("run", path, "--dir", d)
        assert out.returncode == 2
        assert out.stderr.strip().splitlines() == [
            f"autotune: error: objective.command: {{extra[{name}]}}: no trial of this study "
            f"has ctx.extra['{name}'] (its extra holds {held}; rank and world_size come with a "
            "multi-rank trial: tasks_per_trial above 1, nodes or tasks_per_node above 1, or "
            "launch: node)"]
        assert not os.path.exists(d)


def test_a_slurm_study_may_name_what_its_jobs_carry_in_extra():
    # every SLURM job has requeues and slurm_job_id; a multi-task one its rank too
    command = "echo {extra[requeues]} {extra[slurm_job_id]} {extra[rank]} {extra[nnodes]}"
    parse_study(study_dict(objective={"entry": None, "command": command},
                           space={"x": {"values": [1]}}, executor={"kind": "slurm", "nodes": 2}))
    with pytest.raises(StudyError, match=r"\{extra\[rank\]\}: no trial .* holds requeues, "
                                         "slurm_job_id;"):
        parse_study(study_dict(objective={"entry": None, "command": command},
                               space={"x": {"values": [1]}}, executor={"kind": "slurm"}))


def test_a_rank_that_cannot_write_its_outcome_fails_the_trial_in_one_line(tmp_path):
    """Rank 1's objective made rank-1.outcome.json a directory: the rank died with a
    traceback (IsADirectoryError) and the trial's error was its last line; the retry's
    launcher then died with a traceback of its own, removing that directory. Now the rank
    says what and why in one line, the trial fails with it, and the retry runs (the directory
    moved aside, its files kept), each attempt once."""
    study = parse_study(rank_command_study(
        "[ {extra[rank]} = 1 ] && mkdir {trial_dir}/rank-1.outcome.json; "
        "echo '{{\"loss\": '{x}'}}'", tasks_per_trial=2))
    study.retries = 1
    d = str(tmp_path / "run")
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    tdir = os.path.join(d, "trials", "0")
    path = os.path.join(tdir, "rank-1.outcome.json")
    assert (rec.status, rec.attempt, rec.starts) == ("failed", 1, 2)
    assert rec.error == (f"rank 1: the rank ended but its outcome could not be written to {path} "
                         "(Is a directory): a trial folder's rank-1.outcome.json is autotune's "
                         "own, which the objective must not create or make unwritable")
    for log in ("stderr.log", "rank-1.stderr.log"):
        with open(os.path.join(tdir, log)) as fh:
            assert "Traceback" not in fh.read()
    assert [n for n in os.listdir(tdir) if n.startswith("rank-1.outcome.json.moved-")]
