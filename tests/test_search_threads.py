"""The searcher computes on one BLAS thread (search_threads.py); the objective, in the
driver's own process or not, keeps the threads it had."""
import subprocess
import sys

import numpy  # noqa: F401  (the BLAS library loaded, so that there is one to limit)
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from autotune.driver import Driver
from autotune.search_threads import one_blas_thread
from autotune.searchers.random import RandomSearcher
from autotune.study import parse_study
from tests.helpers import REPO, history, study_dict


def blas_threads() -> int:
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert counts, "no BLAS library found loaded"
    return max(counts)


def test_the_limit_holds_inside_and_is_undone_after():
    with threadpool_limits(limits=3, user_api="blas"):    # more than one, on any machine
        assert blas_threads() == 3
        with one_blas_thread():
            assert blas_threads() == 1
        assert blas_threads() == 3


def test_the_driver_asks_and_tells_on_one_thread_and_the_objective_keeps_its_own(
        tmp_path, monkeypatch):
    max_trials = 4
    seen: list[tuple[str, int]] = []
    ask, tell = RandomSearcher.ask, RandomSearcher.tell

    def counting_ask(self, n):
        seen.append(("ask", blas_threads()))
        return ask(self, n)

    def counting_tell(self, result):
        seen.append(("tell", blas_threads()))
        return tell(self, result)

    monkeypatch.setattr(RandomSearcher, "ask", counting_ask)
    monkeypatch.setattr(RandomSearcher, "tell", counting_tell)
    study = parse_study(study_dict(
        objective={"entry": "tests.objectives:blas_threads"},
        space={"x": {"values": [0, 1, 2, 3]}}, search={"max_trials": max_trials}))
    d = str(tmp_path / "d")
    with threadpool_limits(limits=3, user_api="blas"):
        Driver(study, d, progress=False).run()
        assert blas_threads() == 3
    assert {kind for kind, _ in seen} == {"ask", "tell"}
    assert all(count == 1 for _, count in seen), seen
    h = history(d)
    assert h.by_status() == {"ok": max_trials}
    # the objective, run inline in the driver's process, had the three threads
    assert {r.metrics["threads"] for r in h.trials.values()} == {3.0}


def test_a_blas_library_loaded_after_the_first_limit_is_limited_too():
    """A peer's sampler can bring scipy's own OpenBLAS in after the first ask; a fresh
    process, so that scipy loads only after the first limit."""
    pytest.importorskip("scipy.linalg")     # with the peers extra (optuna needs it)
    code = (
        "import numpy\n"
        "from threadpoolctl import threadpool_info, threadpool_limits\n"
        "from autotune.search_threads import one_blas_thread\n"
        "with threadpool_limits(limits=3, user_api='blas'):\n"
        "    with one_blas_thread():\n"
        "        pass\n"
        "    import scipy.linalg\n"
        "    threadpool_limits(limits=3, user_api='blas')\n"
        "    libs = [i for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "    assert len(libs) >= 2, libs\n"
        "    with one_blas_thread():\n"
        "        inside = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "    print(inside)\n"
        "    assert inside == [1] * len(libs), inside\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
