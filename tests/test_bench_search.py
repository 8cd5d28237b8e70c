"""scripts/bench_search.py on a tiny plan: it runs, caches, re-prints and refuses bad input."""
import os
import re
import subprocess
import sys

from tests.helpers import REPO

SCRIPT = os.path.join(REPO, "scripts", "bench_search.py")


def bench(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_a_tiny_run_prints_its_tables_and_reprints_them_from_the_cache(tmp_path):
    cache = str(tmp_path / "cache")
    args = ["--landscapes", "plateaus", "--methods", "axis,random", "--seeds", "1",
            "--noise", "0,0.1", "--cache", cache, "--procs", "1"]
    first = bench(*args)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "plateaus@conventional" in out and "axis/best" in out
    assert "after 363 evaluations" in out and "after 1000 evaluations" in out
    assert "targets:" in out and "slot use" in out
    assert re.search(r"axis's regret at most the best peer's in [01] of 1 ", out)  # 1 seed
    assert out.count("paired by seed") == 2                            # 363 and 1000
    files = [f for _, _, names in os.walk(cache) for f in names if f.endswith(".json")]
    assert len(files) == 4                       # 2 methods x 2 noise levels x 1 seed
    again = bench(*args, "--cached-only")
    assert again.returncode == 0 and "4 cached, 0 to run" in again.stderr
    table = lambda text: [l for l in text.splitlines() if "@" in l]
    assert table(again.stdout) == table(out)


def test_bad_choices_are_one_line_with_exit_2(tmp_path):
    for args, words in ((["--methods", "axis,nope"], "--methods: unknown 'nope'"),
                        (["--landscapes", "moon"], "--landscapes: unknown 'moon'"),
                        (["--noise", "x"], "--noise: expected"),
                        (["--horizons", "0"], "--horizons: expected positive"),
                        (["--methods", "axis:explor=0"], "--methods: axis has no option 'explor'"),
                        (["--methods", "axis:explore=lots"], "--methods: axis:explore=lots: "
                                                             "search.explore"),
                        (["--methods", "axis:explore"], "--methods: 'axis:explore': expected")):
        proc = bench(*args, "--cache", str(tmp_path))
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_a_variant_with_options_runs_beside_the_default(tmp_path):
    """``axis:explore=0`` is axis with that option: its own column, its own cache, its own
    runs (clean, it takes a different number of evaluations to the minimum than axis)."""
    cache = str(tmp_path / "cache")
    proc = bench("--landscapes", "levy", "--methods", "axis,axis:explore=0", "--seeds", "1",
                 "--noise", "0", "--cache", cache, "--procs", "1")
    assert proc.returncode == 0, proc.stderr
    header = next(l for l in proc.stdout.splitlines() if l.startswith("landscape@start"))
    assert "axis:explore=0" in header.split()
    row = next(l for l in proc.stdout.splitlines() if l.startswith("levy@"))
    assert row.split()[1:3] != row.split()[3:5]          # hours and evaluations differ
    assert sorted(os.listdir(cache))[1].startswith("axis:explore=0-")


def test_paired_by_seed_counts_the_seeds_where_axis_is_at_most_the_best_peer():
    """Seed by seed against the best peer on that seed (ties count for axis), over the seeds
    every method ran; nothing to count without axis or without a peer."""
    import importlib
    sys.path.insert(0, os.path.dirname(SCRIPT))
    module = importlib.import_module("bench_search")
    run = lambda seed, regret: {"seed": seed, "regret": {"363": regret}}
    cells = {"axis": [run(0, 0.1), run(1, 0.0), run(2, 0.3)],
             "optuna-tpe": [run(0, 0.2), run(1, 0.0), run(2, 0.1)],
             "optuna-cmaes": [run(0, 0.05), run(1, 0.5)]}        # seed 2 missing: not counted
    assert module.paired_by_seed(cells, 363) == (1, 2)
    cells["optuna-cmaes"] = [run(0, 0.15), run(1, 0.5), run(2, 0.2)]
    assert module.paired_by_seed(cells, 363) == (2, 3)
    assert module.paired_by_seed({"axis": cells["axis"]}, 363) == (0, 0)
    assert module.paired_by_seed({**cells, "random": []}, 363) == (2, 3)   # no runs here
    assert module.paired_by_seed({"optuna-tpe": cells["optuna-tpe"]}, 363) == (0, 0)
