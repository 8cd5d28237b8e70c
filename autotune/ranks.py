"""Trials that run as several processes (ranks): their environment, and what counts as their result.

A multi-rank trial is started the same way wherever it runs: one process per rank (a SLURM
task, or a child of the local launcher, ``autotune.launch``), each with the variables
``torch.distributed``'s ``env://`` initialisation reads (RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) plus AUTOTUNE_NODE_RANK, AUTOTUNE_NNODES and
AUTOTUNE_NPROC_PER_NODE for a per-node launcher such as torchrun. Every rank runs the
objective with ``ctx.extra`` carrying ``rank`` and ``world_size``; rank 0's result is the
trial's, and the first rank to fail (by the time it failed, so that the peers that merely lost
their connection to it do not mask it) fails the trial with its own message.

With ``launch: node`` there is one process per node instead (rank = node rank, world size =
number of nodes) and the objective (typically a ``command:`` running torchrun) starts the
per-GPU processes itself; AUTOTUNE_NPROC_PER_NODE says how many.
"""
from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from typing import Any, Mapping

LAUNCH = ("task", "node")


@dataclass(frozen=True)
class RankEnv:
    """Where one process of a multi-rank trial stands."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    node_rank: int
    nnodes: int
    master_addr: str
    master_port: int
    nproc_per_node: int = 1  # processes a per-node launcher should start (launch: node)

    def environ(self) -> dict[str, str]:
        return {"RANK": str(self.rank), "LOCAL_RANK": str(self.local_rank),
                "WORLD_SIZE": str(self.world_size),
                "LOCAL_WORLD_SIZE": str(self.local_world_size),
                "GROUP_RANK": str(self.node_rank),
                "MASTER_ADDR": self.master_addr, "MASTER_PORT": str(self.master_port),
                "AUTOTUNE_NODE_RANK": str(self.node_rank), "AUTOTUNE_NNODES": str(self.nnodes),
                "AUTOTUNE_NPROC_PER_NODE": str(self.nproc_per_node)}

    def extra(self) -> dict[str, Any]:
        """What the objective sees in ``ctx.extra``."""
        return {"rank": self.rank, "local_rank": self.local_rank,
                "world_size": self.world_size, "node_rank": self.node_rank,
                "nnodes": self.nnodes}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def local_env(rank: int, ranks: int, port: int, launch: str = "task") -> RankEnv:
    """Rank ``rank`` of a trial on this machine (one node)."""
    if launch == "node":
        return RankEnv(0, 0, 1, 1, 0, 1, "127.0.0.1", port, nproc_per_node=ranks)
    return RankEnv(rank, rank, ranks, ranks, 0, 1, "127.0.0.1", port)


def slurm_env(environ: Mapping[str, str], launch: str = "task",
              nproc_per_node: int = 1) -> RankEnv:
    """This SLURM task's place in its job, from the variables srun sets."""
    from submitit import JobEnvironment

    job = JobEnvironment()
    nnodes = int(environ.get("SLURM_JOB_NUM_NODES", "1"))
    node = int(environ.get("SLURM_NODEID", "0"))
    tasks = int(environ.get("SLURM_NTASKS", "1"))
    port = port_for(environ.get("SLURM_JOB_ID", "0"))
    hosts = job.hostnames
    master = hosts[0] if hosts else "127.0.0.1"
    if launch == "node":
        return RankEnv(node, 0, nnodes, 1, node, nnodes, master, port, nproc_per_node)
    return RankEnv(int(environ.get("SLURM_PROCID", "0")), int(environ.get("SLURM_LOCALID", "0")),
                   tasks, max(1, tasks // max(1, nnodes)), node, nnodes, master, port)


# Master ports are drawn from below Linux's default ephemeral range (32768-60999): a port in
# that range can be held at random by any outgoing connection on the node (to slurmctld, a
# file server, a peer rank), and rank 0 then fails to listen with EADDRINUSE.
PORT_LOW, PORT_HIGH = 20000, 32767


def port_for(job_id: str) -> int:
    """A master port every task of a job derives alike (from its id), in 20000-32767.

    The id is spread by a prime coprime to the range's width, so jobs whose ids lie within
    12,768 of each other (all that can run at once from one search) never share a port.
    """
    digits = "".join(ch for ch in str(job_id) if ch.isdigit()) or "0"
    return PORT_LOW + (int(digits) * 7919) % (PORT_HIGH - PORT_LOW + 1)


def free_port() -> int:
    """A TCP port free on this machine now (local trials' master port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_rank(spec, params: dict, ctx, env: RankEnv, stdout: Any = None,
             stderr: Any = None) -> dict:
    """Run the objective as one rank: the shared pretrain first, then with the rank's variables.

    The pretrain (two-stage training) is built before the variables are exported, as a plain
    one-process run: whichever rank takes its lock builds it while the others wait.
    """
    from .objective import run_objective
    from .stage_cache import ensure_pretrained

    if spec.pretrain is not None and ctx.pretrained is None:
        ctx.pretrained = ensure_pretrained(spec.pretrain, ctx.study_dir, spec.python_path)
    os.environ.update(env.environ())
    ctx.extra = {**(ctx.extra or {}), **env.extra()}
    return run_objective(spec, params, ctx, stdout=stdout, stderr=stderr)


def first_failure(failures: list[tuple[float, int, str]]) -> tuple[int, str] | None:
    """(rank, message) of the rank that failed first, from (time, rank, message) triples."""
    if not failures:
        return None
    _, rank, message = min(failures)
    return rank, message


def rank_message(rank: int, world: int, message: str) -> str:
    """A rank's error as the trial's: named by rank when there are several."""
    return f"rank {rank}: {message}" if world > 1 else message
