"""Which GPUs a local trial may use: each running trial gets its own CUDA_VISIBLE_DEVICES.

Without this, every concurrent trial on a 4- or 8-GPU node would open device 0 and the other
GPUs would idle. The pool knows the GPUs this driver may use (``CUDA_VISIBLE_DEVICES`` when
set, else what ``nvidia-smi`` lists), gives a starting trial ``gpus_per_trial`` of them, each
shared by at most ``trials_per_gpu`` trials, and takes them back when the trial ends however
it ended. ``capacity`` is how many trials fit at once; the executor never runs more.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable, Mapping, Sequence

from ..errors import StudyError

#: values of CUDA_VISIBLE_DEVICES that hide every GPU
_NONE = ("", "-1", "none", "nodevfiles")


def parse_visible(value: str) -> list[str]:
    """CUDA_VISIBLE_DEVICES as a list of device names ("0,1" -> ["0", "1"]; "" -> [])."""
    if value.strip().lower() in _NONE:
        return []
    devices = []
    for part in value.split(","):
        part = part.strip()
        if not part or part == "-1":
            break  # CUDA stops at the first invalid entry
        devices.append(part)
    return devices


def query_nvidia_smi() -> list[str]:
    """GPU indices that ``nvidia-smi`` lists; none when it is missing or fails."""
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if proc.returncode != 0:
        return []
    return [line.strip() for line in proc.stdout.splitlines() if line.strip().isdigit()]


def visible_gpus(environ: Mapping[str, str] | None = None,
                 query: Callable[[], list[str]] = query_nvidia_smi) -> list[str]:
    """The GPUs this driver may hand out: CUDA_VISIBLE_DEVICES if set, else the query's."""
    environ = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in environ:
        return parse_visible(environ["CUDA_VISIBLE_DEVICES"])
    return query()


class GpuPool:
    """Hands out GPUs to trials; a trial's GPUs are distinct, a GPU holds ``per_gpu`` trials."""

    def __init__(self, devices: Sequence[str], gpus_per_trial: int, per_gpu: int = 1):
        self.devices = list(devices)
        self.gpus_per_trial = gpus_per_trial
        self.per_gpu = per_gpu
        self._load = {d: 0 for d in self.devices}
        self._held: dict[int, list[str]] = {}

    @property
    def capacity(self) -> int:
        """Trials that fit at once (no limit when trials use no GPU)."""
        if self.gpus_per_trial == 0:
            return 1 << 30
        # every trial takes the least-loaded GPUs, so the load stays level and this is exact
        return len(self.devices) * self.per_gpu // self.gpus_per_trial

    def acquire(self, trial: int) -> list[str]:
        """Pick the least-loaded GPUs for ``trial`` (lowest index first among equals)."""
        if self.gpus_per_trial == 0:
            self._held[trial] = []
            return []
        free = sorted((d for d in self.devices if self._load[d] < self.per_gpu),
                      key=lambda d: (self._load[d], self.devices.index(d)))
        if len(free) < self.gpus_per_trial:
            raise RuntimeError(f"no free GPU for trial {trial}: {self.describe()}")
        return self.claim(trial, free[:self.gpus_per_trial])

    def claim(self, trial: int, devices: Sequence[str]) -> list[str]:
        """Mark ``devices`` as used by ``trial`` (a trial picked up again after a restart)."""
        self.release(trial)
        devices = [d for d in devices if d in self._load]
        for d in devices:
            self._load[d] += 1
        self._held[trial] = list(devices)
        return list(devices)

    def release(self, trial: int) -> None:
        for d in self._held.pop(trial, []):
            self._load[d] -= 1

    def environ(self, trial: int) -> dict[str, str]:
        """The trial's CUDA_VISIBLE_DEVICES ("" hides the GPUs from a trial given none)."""
        if not self.devices:
            return {}
        return {"CUDA_VISIBLE_DEVICES": ",".join(self._held.get(trial, []))}

    def held(self) -> dict[int, list[str]]:
        return {t: list(d) for t, d in self._held.items()}

    def describe(self) -> str:
        names = ",".join(self.devices) or "none"
        return (f"{len(self.devices)} GPU(s) visible ({names}), gpus_per_trial "
                f"{self.gpus_per_trial}, trials_per_gpu {self.per_gpu}")


def make_pool(options: Mapping[str, object], ranks: int = 1,
              environ: Mapping[str, str] | None = None,
              query: Callable[[], list[str]] = query_nvidia_smi) -> GpuPool:
    """The pool the options ask for, or a StudyError naming the key that cannot be met."""
    devices = visible_gpus(environ, query)
    default = max(1, ranks) if devices else 0
    check_packing(options)
    per_trial = int(options.get("gpus_per_trial", default))  # type: ignore[arg-type]
    per_gpu = int(options.get("trials_per_gpu", 1))  # type: ignore[arg-type]
    if per_gpu > 1 and per_trial != 1:
        raise StudyError("executor.trials_per_gpu: packing several trials on a GPU needs "
                         f"gpus_per_trial 1, got {per_trial}")
    if per_trial > len(devices):
        seen = ",".join(devices) if devices else "none"
        raise StudyError(f"executor.gpus_per_trial: {per_trial} GPU(s) per trial, but "
                         f"{len(devices)} visible here ({seen}; CUDA_VISIBLE_DEVICES or "
                         f"nvidia-smi)")
    return GpuPool(devices, per_trial, per_gpu)


def check_packing(options: Mapping[str, object]) -> None:
    """What can be refused from the study file alone, wherever it is read."""
    per_gpu = int(options.get("trials_per_gpu") or 1)  # type: ignore[arg-type]
    per_trial = options.get("gpus_per_trial")
    if per_gpu > 1 and per_trial is not None and int(per_trial) != 1:  # type: ignore[arg-type]
        raise StudyError("executor.trials_per_gpu: packing several trials on a GPU needs "
                         f"gpus_per_trial 1, got {per_trial}")


def cap_concurrency(pool: GpuPool, max_concurrent: int, say=None) -> int:
    """``max_concurrent`` lowered to what the GPUs hold, saying so in one line when it is."""
    if pool.capacity >= max_concurrent:
        return max_concurrent
    line = (f"autotune: executor.max_concurrent {max_concurrent} lowered to {pool.capacity}: "
            f"{pool.describe()}")
    if say is None:
        print(line, file=sys.stderr)
    else:
        say(line)
    return pool.capacity
