"""The suite runs on three processes (pytest-xdist, ``-n 3`` in setup.cfg), one more than a
2-core machine's cores: much of its time is waiting (subprocesses, SLURM, sleeps in test
objectives), which another process fills (on 2 cores, 548 s against 595 s with two). The
tests that use the local SLURM cluster run one after another on one of them: they share its
one node (its CPUs and fake GPUs), and several wait for a job to be pending or running."""
import pytest

#: the modules whose tests submit jobs to the local SLURM cluster (a test elsewhere that
#: submits any is marked ``xdist_group("slurm")`` itself: test_api_slurm, test_api)
SLURM_MODULES = {"test_slurm", "test_slurm_ranks", "test_slurm_stages",
                 "test_slurm_stage_outcome"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SLURM_MODULES:
            item.add_marker(pytest.mark.xdist_group("slurm"))
