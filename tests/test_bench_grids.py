"""scripts/bench_grids.py: the search benches' protocol on a grid of the user's shape."""
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

SCRIPT = os.path.join(REPO, "scripts", "bench_grids.py")


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_a_tiny_run_prints_a_clean_and_a_noisy_table():
    out = bench("--shape", "7x9", "--landscapes", "rastrigin,banana", "--methods", "axis,random",
                "--noise", "0,0.1", "--seeds", "2", "--cap", "63", "--horizon", "40",
                "--procs", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("grid 7x9, 50 workers") and "; 16 runs took" in lines[0]
    clean = lines.index(next(ln for ln in lines if ln.startswith("clean:")))
    noisy = lines.index(next(ln for ln in lines if ln.startswith("noise 0.1 x IQR")))
    for at in (clean, noisy):
        assert lines[at + 1].split() == ["landscape", "axis", "random"]
        assert [ln.split()[0] for ln in lines[at + 2:at + 4]] == ["rastrigin", "banana"]
    # 63 points: a budget of the whole grid reaches the minimum on every seed, for both
    assert all(ln.count(" 2/2") == 2 for ln in lines[clean + 2:clean + 4]), out.stdout
    regrets = [float(x) for ln in lines[noisy + 2:noisy + 4] for x in ln.split()[1:]]
    assert all(r >= 0 for r in regrets)


@pytest.mark.parametrize("args, says", [
    (["--shape", "30by30"], "--shape: expected axis sizes joined by x (such as 30x30), got '30by30'"),
    (["--shape", "1x30"], "--shape: every axis needs 2 values or more, got '1x30'"),
    (["--shape", "20x20x20x20x20"], "--shape: 20x20x20x20x20 has 3,200,000 points; at most"),
    (["--landscapes", "rastrign"], "--landscapes: unknown 'rastrign'"),
    (["--landscapes", "powell"], "--landscapes: powell is not defined on a 30x30 grid"),
    (["--methods", "axis:fill_idel=true"], "--methods: axis has no option 'fill_idel'"),
    (["--noise", "0,-1"], "--noise: expected numbers >= 0, got '0,-1'"),
    (["--seeds", "0"], "--seeds: expected a positive integer, got 0"),
])
def test_bad_input_is_one_line_and_exit_2(args, says):
    out = bench(*args)
    assert out.returncode == 2 and out.stdout == "", out
    assert out.stderr.startswith(f"bench_grids: {says}") and out.stderr.count("\n") == 1, \
        out.stderr
