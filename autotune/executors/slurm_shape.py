"""The shape of a trial's SLURM job: nodes, tasks, CPUs and GPUs, and how its ranks start.

``launch: task`` (default) asks SLURM for ``tasks_per_node`` tasks on each of ``nodes`` nodes
and runs the objective in every task, one rank each (srun-style). ``launch: node`` asks for one
task per node holding all of that node's CPUs and GPUs, and runs the objective once per node:
a ``command:`` then starts the per-GPU processes with a launcher of the user's choice
(torchrun, mpirun, ...), told how many by AUTOTUNE_NPROC_PER_NODE.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import StudyError
from ..ranks import LAUNCH


@dataclass(frozen=True)
class JobShape:
    nodes: int = 1
    tasks_per_node: int = 1
    cpus_per_task: int = 1
    gpus_per_node: int = 0
    gpus_per_task: int = 0
    launch: str = "task"

    @property
    def processes(self) -> int:
        """Processes autotune starts per job: the trial's ranks, or one per node."""
        return self.nodes * (self.tasks_per_node if self.launch == "task" else 1)

    @property
    def multi(self) -> bool:
        return self.processes > 1 or self.launch == "node"

    @property
    def sbatch_tasks_per_node(self) -> int:
        return self.tasks_per_node if self.launch == "task" else 1

    @property
    def sbatch_cpus_per_task(self) -> int:
        return self.cpus_per_task * (1 if self.launch == "task" else self.tasks_per_node)

    @property
    def sbatch_gpus_per_task(self) -> int:
        return self.gpus_per_task if self.launch == "task" else 0

    @property
    def sbatch_gpus_per_node(self) -> int:
        if self.launch == "node" and self.gpus_per_task:
            return self.gpus_per_task * self.tasks_per_node
        return self.gpus_per_node

    def launch_spec(self) -> dict[str, Any] | None:
        """What each task needs to know to find its rank (None: a one-task job)."""
        if not self.multi:
            return None
        return {"mode": self.launch, "nproc_per_node": self.tasks_per_node}


def job_shape(options: Mapping[str, Any]) -> JobShape:
    """The shape the executor options ask for; ``gpus_per_job``/``cpus_per_job`` are the older
    names of ``gpus_per_node``/``cpus_per_task``."""
    for new, old in (("gpus_per_node", "gpus_per_job"), ("cpus_per_task", "cpus_per_job")):
        if options.get(new) is not None and options.get(old) is not None:
            raise StudyError(f"executor.{new}: give {new} or its older name {old}, not both")
    gpus_node = int(options.get("gpus_per_node", options.get("gpus_per_job", 0)) or 0)
    gpus_task = int(options.get("gpus_per_task", 0) or 0)
    if gpus_node and gpus_task:
        raise StudyError("executor.gpus_per_task: give gpus_per_node or gpus_per_task, not both")
    launch = options.get("launch", "task")
    if launch not in LAUNCH:
        raise StudyError(f"executor.launch: expected one of {', '.join(LAUNCH)}, got {launch!r}")
    return JobShape(nodes=int(options.get("nodes", 1)),
                    tasks_per_node=int(options.get("tasks_per_node", 1)),
                    cpus_per_task=int(options.get("cpus_per_task",
                                                  options.get("cpus_per_job", 1))),
                    gpus_per_node=gpus_node, gpus_per_task=gpus_task, launch=launch)
