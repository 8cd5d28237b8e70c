"""scripts/bench_heldout.py: its landscapes put their minimum where they say, and it runs."""
import importlib.util
import os
import subprocess
import sys

import pytest

from autotune.bench import landscapes
from tests.helpers import REPO

SCRIPT = os.path.join(REPO, "scripts", "bench_heldout.py")


@pytest.fixture(scope="module")
def heldout():
    sys.path.insert(0, os.path.dirname(SCRIPT))
    spec = importlib.util.spec_from_file_location("bench_heldout", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = dict(landscapes.FUNCTIONS), dict(landscapes.OPTIMA)
    module.register()
    yield module
    landscapes.FUNCTIONS.clear(), landscapes.FUNCTIONS.update(before[0])
    landscapes.OPTIMA.clear(), landscapes.OPTIMA.update(before[1])
    landscapes._table.cache_clear()


def test_each_held_out_landscape_has_its_unique_minimum_at_its_optimum(heldout):
    twelve = list(heldout.bench_search.DEFAULT_START)[:12]
    assert len(heldout.HELD_OUT) == 37 and not set(heldout.HELD_OUT) & set(twelve)
    for name in heldout.HELD_OUT:
        for instance in range(3):
            table = landscapes._table(name, instance)
            low, where = landscapes.grid_minimum(name, instance)
            assert where == landscapes.optimum(name, instance), name
            assert (table <= low + 1e-12).sum() == 1, name      # no tie for the minimum
            assert landscapes.spread(name, instance) > 0, name


def test_a_tiny_run_prints_the_held_out_table(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, "--landscapes", "wells,cone", "--methods",
                           "axis", "--seeds", "1", "--noise", "0", "--procs", "1", "--cache",
                           str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "wells@centre" in proc.stdout and "cone@conventional" in proc.stdout
    bad = subprocess.run([sys.executable, SCRIPT, "--landscapes", "moon", "--cache",
                          str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "--landscapes: unknown 'moon'" in bad.stderr


def test_the_noisy_choice_split_follows_the_search_benchs_protocol(heldout):
    """scripts/bench_noisy_choice.py runs bench_search's loop again to look inside it: its
    reported regret is the one bench_search judges, and no measured point beats nothing."""
    path = os.path.join(REPO, "scripts", "bench_noisy_choice.py")
    spec = importlib.util.spec_from_file_location("bench_noisy_choice", path)
    choice = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(choice)
    bs = heldout.bench_search
    for land, method in (("schaffer", "axis"), ("discus", "random")):
        job = bs.Job(land, bs.DEFAULT_START[land], 0.1, method, 1, 1000, (60,))
        judged = bs.simulate(job)["regret"]["60"]
        reported, measured = choice.split(land, 0.1, method, 1, 60)
        assert reported == pytest.approx(judged, abs=1e-12), land
        assert 0 <= measured <= reported, land
    bad = subprocess.run([sys.executable, path, "--landscapes", "moon"], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "bench_noisy_choice: unknown landscape 'moon'"
