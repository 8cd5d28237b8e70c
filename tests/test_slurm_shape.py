"""The sbatch request a multi-task or multi-node trial makes (no cluster needed)."""
from __future__ import annotations

import pytest

from autotune.errors import StudyError
from autotune.executors.slurm_shape import job_shape


def test_one_task_by_default_and_the_older_names_still_work():
    shape = job_shape({"gpus_per_job": 2, "cpus_per_job": 4})
    assert (shape.nodes, shape.sbatch_tasks_per_node, shape.sbatch_cpus_per_task,
            shape.sbatch_gpus_per_node) == (1, 1, 4, 2)
    assert not shape.multi and shape.launch_spec() is None and shape.processes == 1


def test_tasks_are_ranks_and_launch_node_is_one_task_holding_the_node():
    shape = job_shape({"nodes": 2, "tasks_per_node": 4, "gpus_per_task": 1, "cpus_per_task": 8})
    assert shape.processes == 8 and shape.sbatch_tasks_per_node == 4
    assert shape.sbatch_gpus_per_task == 1 and shape.sbatch_cpus_per_task == 8
    assert shape.launch_spec() == {"mode": "task", "nproc_per_node": 4}
    node = job_shape({"nodes": 2, "tasks_per_node": 4, "gpus_per_task": 1, "cpus_per_task": 8,
                      "launch": "node"})
    assert node.processes == 2 and node.sbatch_tasks_per_node == 1
    assert node.sbatch_cpus_per_task == 32 and node.sbatch_gpus_per_node == 4
    assert node.sbatch_gpus_per_task == 0
    assert node.launch_spec() == {"mode": "node", "nproc_per_node": 4}


@pytest.mark.parametrize("gb, mem", [(32, "32G"), (1.5, "1536M"), (0.001, "2M")])
def test_mem_gb_is_asked_in_whole_units_sbatch_takes(gb, mem):
    from autotune.executors.slurm import sbatch_parameters

    assert sbatch_parameters({"mem_gb": gb}, [])["mem"] == mem  # --mem=32.0 is refused


@pytest.mark.parametrize("options, message", [
    ({"gpus_per_node": 1, "gpus_per_job": 1}, "executor.gpus_per_node: give gpus_per_node or"),
    ({"cpus_per_task": 1, "cpus_per_job": 1}, "executor.cpus_per_task: give cpus_per_task or"),
    ({"gpus_per_node": 4, "gpus_per_task": 1}, "executor.gpus_per_task: give gpus_per_node or"),
    ({"launch": "nodes"}, "executor.launch: expected one of task, node, got 'nodes'"),
])
def test_contradictions_are_one_line_naming_the_key(options, message):
    with pytest.raises(StudyError, match=message):
        job_shape(options)


def test_each_task_finds_its_rank_from_slurms_variables(monkeypatch):
    from autotune.ranks import port_for, slurm_env

    env = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": "2",
           "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_NTASKS": "8", "SLURM_NODEID": "1",
           "SLURM_PROCID": "5", "SLURM_LOCALID": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    task = slurm_env(env, "task")
    assert (task.rank, task.local_rank, task.world_size, task.local_world_size) == (5, 1, 8, 4)
    assert task.master_addr == "gpu07" and task.master_port == port_for("4242")
    assert task.environ()["RANK"] == "5" and task.environ()["MASTER_ADDR"] == "gpu07"
    node = slurm_env(env, "node", nproc_per_node=4)
    assert (node.rank, node.world_size, node.node_rank, node.nnodes) == (1, 2, 1, 2)
    assert node.environ()["AUTOTUNE_NPROC_PER_NODE"] == "4"


def test_master_ports_stay_out_of_the_ephemeral_range_and_apart_for_nearby_jobs():
    # a port in 32768-60999 can be taken by any outgoing connection on the node (it was:
    # rank 0 of a job failed with EADDRINUSE); jobs submitted together get distinct ports
    from autotune.ranks import port_for

    ports = [port_for(str(job_id)) for job_id in range(1_000_000, 1_012_768)]
    assert min(ports) >= 20000 and max(ports) < 32768
    assert len(set(ports)) == len(ports)
    assert port_for("4242_7") == port_for("42427")  # an array task's id: its digits


def test_a_start_sacct_rounds_down_is_never_before_the_submission(tmp_path):
    """sacct gives whole seconds: a job submitted at t0+0.9 that started at once reads as
    started at t0+0 (status showed '-0.1-4.9 s' for a pretrain); the start is its submission."""
    from autotune.executors.slurm import SlurmExecutor, _Tracked
    from autotune.executors.slurm_query import JobInfo

    ex = SlurmExecutor.__new__(SlurmExecutor)
    ex.t0 = 1000.0
    t = _Tracked(job=None, job_id="5", submitted_s=0.9)
    ex._update(t, JobInfo("5", "n", "RUNNING", 1000.0, 1000.0, None, "", 0, []))
    assert t.start_s == 0.9
    ex._update(t, JobInfo("5", "n", "RUNNING", 1000.0, 1003.0, None, "", 0, []))
    assert t.start_s == 3.0
