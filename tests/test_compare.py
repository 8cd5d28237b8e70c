import csv
import os

import pytest

from autotune.cli import main
from autotune.compare import COLUMNS, compare
from autotune.errors import StudyError
from tests.helpers import history, study_dict, write_study


def study_file(tmp_path, search=None, **over):
    data = study_dict(space={"x": {"values": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]},
                             "y": {"values": [-1.0, -0.5, 0.0, 0.5]}, "cost_s": 100.0},
                      search={"max_trials": None, **(search or {})},
                      executor={"kind": "simulated", "max_concurrent": 3}, **over)
    return write_study(str(tmp_path / "s.yaml"), data)


def test_each_run_gets_the_same_budget_and_its_own_directory(tmp_path):
    out = str(tmp_path / "cmp")
    rows = compare(study_file(tmp_path), out, "random,grid", seeds=2, budget=1500.0, progress=False)
    assert [(r["algorithm"], r["seed"]) for r in rows] == [
        ("random", 0), ("random", 1), ("grid", 0), ("grid", 1)]
    for row in rows:
        h = history(row["directory"])
        assert h.study["identity"]["algorithm"] == row["algorithm"]
        assert h.study["identity"]["seed"] == row["seed"]
        # trials start only while under budget: at most max_concurrent - 1 past it
        assert 1500.0 <= h.spent_s < 1500.0 + 3 * 130.0
        assert row["compute_s"] == pytest.approx(h.spent_s)
    with open(os.path.join(out, "comparison.csv")) as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == COLUMNS
        assert len(list(reader)) == 4
    for plot in ("best_vs_compute.png", "best_vs_wall.png"):
        assert os.path.getsize(os.path.join(out, "plots", plot)) > 5000


def test_a_comparison_resumes_without_rerunning_finished_runs(tmp_path):
    out = str(tmp_path / "cmp")
    path = study_file(tmp_path)
    first = compare(path, out, "random", seeds=1, budget=1000.0, progress=False)
    size = os.path.getsize(os.path.join(first[0]["directory"], "history.jsonl"))
    again = compare(path, out, "random", seeds=1, budget=1000.0, progress=False)
    assert again[0]["best"] == first[0]["best"]
    assert again[0]["evaluations"] == first[0]["evaluations"]
    h = history(first[0]["directory"])
    assert len(h.trials) == first[0]["evaluations"]  # no new trials on the second pass
    assert os.path.getsize(os.path.join(first[0]["directory"], "history.jsonl")) > size  # resume note


def test_per_algorithm_options_and_errors(tmp_path, capsys):
    path = study_file(tmp_path, compare={"options": {"grid": {}}, "seeds": 1})
    out = str(tmp_path / "cmp")
    assert main(["compare", path, "--algorithms", "random,nope", "--dir", out]) == 2
    assert "--algorithms: unknown 'nope'" in capsys.readouterr().err
    assert not os.path.exists(out)
    assert main(["compare", path, "--algorithms", "grid", "--dir", out, "--budget", "500"]) == 0
    assert "grid" in capsys.readouterr().out
    bad = study_file(tmp_path, compare={"wat": 1})
    with pytest.raises(StudyError, match="compare.wat: unknown key"):
        compare(bad, out, "random", progress=False)


def test_the_simulated_preview_of_a_local_study(tmp_path):
    path = write_study(str(tmp_path / "local.yaml"), study_dict(
        space={"x": {"low": -2.0, "high": 2.0}, "cost_s": 10.0}, search={"max_trials": 6},
        executor={"kind": "local", "max_concurrent": 2}))
    rows = compare(path, str(tmp_path / "cmp"), "random", seeds=1, executor="simulated",
                   progress=False)
    h = history(rows[0]["directory"])
    assert h.study["config"]["executor"]["kind"] == "simulated"
    assert rows[0]["evaluations"] == 6 and rows[0]["wall_s"] >= 30.0  # virtual seconds


def test_an_interrupt_stops_the_whole_comparison(tmp_path, capsys):
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": "tests.objectives:interrupts"}, search={"max_trials": 5},
        space={"x": {"values": [1, 2, 3]}}))
    out = tmp_path / "cmp"
    assert main(["compare", path, "--algorithms", "random,grid", "--dir", str(out)]) == 130
    assert "interrupted during random seed 0" in capsys.readouterr().err
    assert (out / "random-s0").exists() and not (out / "grid-s0").exists()


def test_a_comparison_cancel_stopped_says_so_not_interrupted(tmp_path):
    """``cancel DIR`` on a running comparison: its last line said 'interrupted during ...',
    as after Ctrl-C; it says the cancel stopped it, as ``run`` does (exit status 130 still)."""
    import subprocess
    import sys
    import time

    from tests.helpers import REPO

    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": "tests.objectives:hangs"}, search={"max_trials": 2},
        space={"x": {"values": [1, 2]}}, executor={"kind": "local", "max_concurrent": 1}))
    out = str(tmp_path / "cmp")
    proc = subprocess.Popen([sys.executable, "-m", "autotune", "compare", path, "--algorithms",
                             "random", "--dir", out], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run = os.path.join(out, "random-s0")
    give_up = time.monotonic() + 60
    while not (os.path.exists(os.path.join(run, "history.jsonl"))
               and history(run).trials and history(run).trials[0].status == "running"):
        assert proc.poll() is None and time.monotonic() < give_up, proc.communicate()
        time.sleep(0.1)
    assert main(["cancel", out]) == 0
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == ("autotune: stopped by autotune cancel during random seed 0; "
                                    "to go on with the comparison: run the same command again"), err


def test_with_a_budget_the_trial_count_no_longer_limits(tmp_path):
    path = study_file(tmp_path, search={"max_trials": 3})
    rows = compare(path, str(tmp_path / "cmp"), "random", seeds=1, budget=1000.0, progress=False)
    assert rows[0]["evaluations"] > 3 and rows[0]["compute_s"] >= 1000.0
    rows = compare(path, str(tmp_path / "cmp2"), "random", seeds=1, progress=False)
    assert rows[0]["evaluations"] == 3


@pytest.mark.parametrize("args, message", [
    (["--budget", "-5"], "--budget: expected a positive number of compute seconds, got -5"),
    (["--budget", "nan"], "--budget: expected a positive number"),
    (["--seeds", "0"], "--seeds: expected a positive integer"),
])
def test_bad_compare_arguments_name_the_option(tmp_path, capsys, args, message):
    path = study_file(tmp_path)
    out = tmp_path / "cmp"
    assert main(["compare", path, "--algorithms", "random", "--dir", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_comparison_of_more_runs_than_it_holds_is_refused_at_once(tmp_path, capsys):
    """``--seeds 100000000`` checked every run before printing a word, and looked hung: more
    than 1000 runs (algorithms x seeds) is one line, exit status 2, before any run is read.
    (The study has no cost_s for --executor simulated: a comparison that went on to check its
    runs would be refused for that instead.)"""
    path = write_study(str(tmp_path / "local.yaml"), study_dict(
        space={"x": {"low": -2.0, "high": 2.0}}, search={"max_trials": 6},
        executor={"kind": "local", "max_concurrent": 2}))
    out = tmp_path / "cmp"
    assert main(["compare", path, "--algorithms", "random,grid", "--seeds", "501", "--dir",
                 str(out), "--executor", "simulated"]) == 2
    err = capsys.readouterr().err
    assert err == ("autotune: error: --seeds: 501 seeds x 2 algorithms is 1002 runs, run one "
                   "after another; a comparison holds at most 1000: give fewer seeds\n"), err
    assert not out.exists()


def test_a_simulated_preview_without_cost_s_is_refused(tmp_path, capsys):
    path = write_study(str(tmp_path / "local.yaml"), study_dict(
        space={"x": {"low": -2.0, "high": 2.0}}, search={"max_trials": 6},
        executor={"kind": "local", "max_concurrent": 2}))
    out = tmp_path / "cmp"
    assert main(["compare", path, "--algorithms", "random", "--dir", str(out),
                 "--executor", "simulated"]) == 2
    err = capsys.readouterr().err
    assert "--executor simulated: the objective's result has no cost_s (keys: loss, score)" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_fidelity_run_takes_the_length_the_space_fixes(tmp_path):
    """The tiny D-DBPN study fixes ``epochs: 3`` and gives ASHA a fidelity up to 3: that run
    sets each trial's epochs itself, the others train the fixed 3."""
    from autotune.compare import parse_plan, run_study
    from autotune.yamlfile import read_yaml

    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "search_spaces",
                        "d-dbpn-tiny.yaml")
    raw = read_yaml(path)
    plan = parse_plan(raw, None, None, None, None)
    runs = {a: run_study(raw, plan, a, 0, os.path.dirname(path)) for a in plan.algorithms}
    assert "epochs" not in runs["asha"].space.names
    assert "epochs" in runs["axis"].space.names
    raw["compare"]["options"]["asha"]["fidelity"]["max"] = 9
    plan = parse_plan(raw, None, None, None, None)
    with pytest.raises(StudyError, match=r"\[asha\] compare.options.asha.fidelity.max: "
                                         r"expected the study's space.epochs \(3\)"):
        run_study(raw, plan, "asha", 0, os.path.dirname(path))


BAD_COMPARE = [
    (["--algorithms", "random,random"], None,
     "--algorithms: 'random' given twice (use --seeds for several runs)"),
    (["--algorithms", "radnom"], None, "--algorithms: unknown 'radnom'; did you mean 'random'?"),
    (["--algorithms", "grid,,random"], None,
     "--algorithms: the list has an empty name in 'grid,,random'"),
    (["--algorithms", "grid,random,"], None,
     "--algorithms: the list has an empty name in 'grid,random,'"),
    ([], {"algorithms": ["grid", " "]}, "compare.algorithms: the list has an empty name (item 2"),
    ([], {"algorithms": ["random", 3]}, "compare.algorithms: expected algorithm names, got 3"),
    ([], {"algorithms": ["grid", "grid"]}, "compare.algorithms: 'grid' given twice"),
    (["--algorithms", "random"], {"options": {"gird": {}}},
     "compare.options.gird: unknown algorithm; did you mean 'grid'?"),
    (["--algorithms", "random"], {"options": {"random": {"seed": 5}}},
     "compare.options.random.seed: set by compare for every run alike"),
    (["--algorithms", "random"], {"options": {"random": {"max_trials": 3}}},
     "compare.options.random.max_trials: set by compare for every run alike"),
    (["--algorithms", "random"], {"options": {"asha": {"fidelty": {"min": 1, "max": 9}}}},
     "compare.options.asha.fidelty: unknown key; did you mean 'fidelity'?"),
    # the file's own values are checked where an option overrides them, as its options are
    (["--algorithms", "random"], {"algorithms": ["randm"]},
     "compare.algorithms: unknown 'randm'; did you mean 'random'?"),
    (["--algorithms", "random", "--seeds", "1"], {"seeds": 0},
     "compare.seeds: expected a positive integer, got 0"),
    (["--algorithms", "random", "--seeds", "1"], {"seeds": 1001},
     "compare.seeds: 1001 seeds is 1001 runs, run one after another; a comparison holds at "
     "most 1000: give fewer seeds"),
    (["--algorithms", "random"], {"budget_s": -1}, "compare.budget_s: expected a positive number"),
    (["--algorithms", "random"], {"budget_s": "10h"},
     "compare.budget_s: expected a positive number, got '10h'"),
]


@pytest.mark.parametrize("args, compare_section, message", BAD_COMPARE)
def test_bad_compare_lists_and_options_are_one_line(tmp_path, capsys, args, compare_section,
                                                    message):
    """A repeated algorithm would count its one directory as two runs; an option under a
    misspelt algorithm or a key every run gets alike would be silently unused."""
    path = study_file(tmp_path, **({"compare": compare_section} if compare_section else {}))
    out = tmp_path / "cmp"
    assert main(["compare", path, *args, "--dir", str(out), "--budget", "300"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("compare_section, message",
                         [(section, message) for _, section, message in BAD_COMPARE if section])
def test_run_refuses_a_bad_compare_section_too(tmp_path, capsys, compare_section, message):
    """``run`` does not read the section, but a mistake in it is a mistake in the study file:
    one line, exit 2, nothing written, not a surprise at the comparison days later."""
    path = study_file(tmp_path, search={"max_trials": 2}, compare=compare_section)
    out = tmp_path / "run"
    assert main(["run", path, "--dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_an_executor_of_the_study_s_own_kind_keeps_its_options(tmp_path):
    """``--executor slurm`` on a slurm study must not drop its partition (nor --executor
    local its GPU settings): only another kind starts from that kind's defaults."""
    from autotune.compare import parse_plan, run_study

    raw = study_dict(executor={"kind": "local", "max_concurrent": 2, "gpus_per_trial": 0})
    plan = parse_plan(raw, "random", 1, None, "local")
    study = run_study(raw, plan, "random", 0, str(tmp_path))
    assert study.executor == "local" and study.executor_options.get("gpus_per_trial") == 0
    plan = parse_plan(raw, "random", 1, None, "simulated")
    study = run_study(raw, plan, "random", 0, str(tmp_path))
    assert study.executor == "simulated" and study.max_concurrent == 2


def test_a_comparison_without_any_budget_is_refused_before_it_starts(tmp_path, capsys):
    """Without --budget, compare.budget_s or a limit in the study, the first unbounded run
    (random) went on silently until stopped and the other algorithms never started."""
    path = study_file(tmp_path)  # search.max_trials: None
    out = tmp_path / "cmp"
    assert main(["compare", path, "--algorithms", "grid,random", "--dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "[random] no budget: this run would go on until stopped" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert main(["compare", path, "--algorithms", "grid", "--dir", str(out)]) == 0  # it ends


def test_a_smaller_budget_on_resume_says_the_figures_cover_what_was_spent(tmp_path, capsys):
    out = str(tmp_path / "cmp")
    path = study_file(tmp_path)
    args = ["compare", path, "--algorithms", "random,grid", "--dir", out]
    assert main(args + ["--budget", "1500"]) == 0
    assert main(args + ["--budget", "1500"]) == 0  # the same budget again: a plain resume
    assert "warning" not in capsys.readouterr().err
    spent = history(os.path.join(out, "random-s0")).spent_s
    assert main(args + ["--budget", "1000"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1, err
    assert "went past the budget of 1000 s" in err[0]
    assert f"random-s0 spent {spent:g} s" in err[0] and "grid-s0 spent" in err[0]
    assert "use another --dir" in err[0]
    assert main(args + ["--budget", "3000"]) == 0  # a larger one extends the runs, silently
    assert "warning" not in capsys.readouterr().err


def test_the_improvement_says_what_it_is_measured_from(tmp_path, capsys):
    """Over random's median where random ran, else over every trial's: the table, the CSV and
    the legend under the printed table say which."""
    import statistics

    path = study_file(tmp_path)
    with_random = str(tmp_path / "with")
    assert main(["compare", path, "--algorithms", "grid,random", "--dir", with_random,
                 "--budget", "1000"]) == 0
    out = capsys.readouterr().out
    with open(os.path.join(with_random, "comparison.csv")) as fh:
        rows = list(csv.DictReader(fh))
    random_values = [r.value for r in history(os.path.join(with_random, "random-s0"))
                     .trials.values() if r.status == "ok"]
    assert {r["reference_of"] for r in rows} == {"random"}
    assert float(rows[0]["reference"]) == pytest.approx(statistics.median(random_values))
    assert "impr/compute-h: how far the best value got past" in out
    assert "the median of random's successful trials" in out
    alone = str(tmp_path / "alone")
    assert main(["compare", path, "--algorithms", "grid", "--dir", alone, "--budget", "1000"]) == 0
    out = capsys.readouterr().out
    with open(os.path.join(alone, "comparison.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["reference_of"] == "all"
    assert "the median of every successful trial in this comparison" in out


def test_hyperband_without_a_budget_ends_by_itself_and_is_not_refused(tmp_path, capsys):
    """Without any limit hyperband runs one iteration of brackets and ends: compare ran it
    (was refused as 'would go on until stopped'), and run does not warn that it may."""
    path = study_file(tmp_path, search={"algorithm": "hyperband",
                                        "fidelity": {"min": 1, "max": 9, "eta": 3}})
    out = tmp_path / "cmp"
    assert main(["compare", path, "--algorithms", "hyperband,grid", "--dir", str(out)]) == 0
    assert "no budget" not in capsys.readouterr().err
    assert len(history(str(out / "hyperband-s0")).trials) == 9 + 3 + 1 + 5 + 1 + 3
    assert main(["run", path, "--dir", str(tmp_path / "one")]) == 0
    assert "no budget" not in capsys.readouterr().err
    assert main(["compare", path, "--algorithms", "asha", "--dir", str(out)]) == 2
    assert "[asha] no budget: this run would go on until stopped" in capsys.readouterr().err


def test_a_compare_dir_names_its_runs_and_a_run_loads_as_it_was_started(tmp_path, capsys):
    """A compare DIR is no study: ``load_study``, status and report name its runs instead
    (cancel cancels each: here, with none in flight, it says so of each). A run loaded from its folder continues without the warning meant for a study an
    older autotune started with {resume_from} (the other algorithms' runs fill it)."""
    import sys

    import autotune as at
    from autotune.study import compared_run

    script = tmp_path / "train.py"
    script.write_text("import json, sys\nprint(json.dumps({'loss': float(sys.argv[1])}))\n")
    path = write_study(str(tmp_path / "c.yaml"), study_dict(
        objective={"entry": None, "command": f"{sys.executable} {script} {{x}} {{resume_from}}"},
        search={"max_trials": 2}, executor={"kind": "local", "max_concurrent": 2}))
    out = str(tmp_path / "cmp")
    compare(path, out, "random", seeds=1, progress=False)
    run = os.path.join(out, "random-s0")
    names = f"name one of them, {run}$"
    with pytest.raises(StudyError, match=rf"^{out}: no study here \(no history.jsonl\), but its "
                                         rf"folders are studies .*{names}"):
        at.load_study(out)
    capsys.readouterr()
    for command in ("status", "report"):
        assert main([command, out]) == 2
        assert capsys.readouterr().err.strip().endswith(names[:-1])
    assert main(["cancel", out]) == 0
    assert capsys.readouterr().out.strip() == (f"{run}: nothing to cancel: no driver holds the "
                                               "study and none of its trials runs")
    import shutil

    shutil.copytree(run, tmp_path / "studies" / "mine")  # a folder of studies, no comparison
    assert main(["cancel", str(tmp_path / "studies")]) == 2
    assert "folders are studies" in capsys.readouterr().err
    study = at.load_study(run)
    assert study.settings.compared and len(study.optimize(progress=False).trials) == 2
    assert "older autotune" not in capsys.readouterr().err
    # a run recorded before the mark: known by the name compare gives its runs
    assert compared_run({"name": "t-random-s0", "identity": {"algorithm": "random", "seed": 0}})
    assert not compared_run({"name": "t", "identity": {"algorithm": "random", "seed": 0}})


def test_compare_says_how_many_runs_and_then_the_time_left(tmp_path, capsys, monkeypatch):
    """One line at the start with the number of runs, one per run; from the second run on the
    time left at the pace of the runs done (each 10 s on this clock). Runs whose budget was
    spent before the command (a resume) are no measure of it."""
    from autotune import compare as compare_module, compare_clock

    ticks = iter(range(0, 10_000, 10))
    monkeypatch.setattr(compare_clock, "monotonic", lambda: float(next(ticks)))
    monkeypatch.setattr(compare_module, "plot_comparison", lambda *args: None)  # not its subject
    out, path = str(tmp_path / "cmp"), study_file(tmp_path)
    compare(path, out, "random", seeds=3, budget=100.0)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("compare: ")]
    assert lines == [f"compare: 3 runs (1 algorithm x 3 seeds) in {out}",
                     f"compare: run 1/3: random seed 0 -> {out}/random-s0",
                     f"compare: run 2/3: random seed 1 -> {out}/random-s1 (about 20s left)",
                     f"compare: run 3/3: random seed 2 -> {out}/random-s2 (about 10s left)"]
    compare(path, out, "random", seeds=4, budget=100.0)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("compare: ")]
    assert lines[0] == f"compare: 4 runs (1 algorithm x 4 seeds) in {out}, 3 done already"
    assert lines[-1] == f"compare: run 4/4: random seed 3 -> {out}/random-s3"


@pytest.mark.parametrize("over, args, message", [
    (dict(compare=0), [], "compare: expected a mapping, got 0"),
    (dict(compare={"options": 0}), [], "compare.options: expected a mapping, got 0"),
    (dict(compare={"options": []}), [], "compare.options: expected a mapping, got []"),
    (dict(search=0), [], "search: expected a mapping, got 0"),
    (dict(search="ab"), [], "search: expected a mapping, got 'ab'"),
    (dict(executor=0), ["--executor", "simulated"], "executor: expected a mapping, got 0"),
    (dict(stages="ab"), ["--executor", "local"], "stages: expected a mapping, got 'ab'"),
])
def test_a_section_that_is_no_mapping_is_refused_by_compare(tmp_path, capsys, over, args,
                                                            message):
    """compare read these as ``x.get(key) or {}``: ``compare: 0`` and ``compare.options: 0``
    were empty, ``search: 0`` a run with no budget, ``executor: 0`` replaced by --executor's
    kind; ``search: 'ab'`` and ``stages: 'ab'`` were tracebacks. As ``run`` reads them now."""
    data = study_dict(space={"x": {"values": [-1.0, 0.0, 1.0]}, "y": {"values": [0.0]},
                             "cost_s": 100.0},
                      executor={"kind": "simulated", "max_concurrent": 1})
    data.update(over)
    path = write_study(str(tmp_path / "s.yaml"), data)
    out = tmp_path / "cmp"
    assert main(["compare", path, "--algorithms", "random", "--dir", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("key", ["compare", "search", "executor"])
def test_a_section_left_out_or_null_is_empty_to_compare(key):
    from autotune.compare import parse_plan, run_study

    raw = {**study_dict(), key: None}
    plan = parse_plan(raw, "random", 1, 300.0, None)
    assert run_study(raw, plan, "random", 0, ".").max_compute_s == 300.0


def test_a_dir_compare_cannot_make_its_own_is_refused_before_anything_is_written(
        tmp_path, capsys):
    """A study's directory as compare's --dir was filled with the runs' folders and
    comparison.csv and its plots/best_vs_compute.png overwritten; a file, or a file where a
    run's folder goes, was refused only after the start lines (and earlier runs) were
    written. Each is one line, exit status 2, and the directory is left as it was."""
    from tests.helpers import tree

    path = study_file(tmp_path, search={"max_trials": 4})
    study = tmp_path / "study"
    assert main(["run", path, "--dir", str(study), "--quiet"]) == 0
    assert main(["report", str(study)]) == 0
    capsys.readouterr()
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "random-s0").write_text("mine")
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    for out, message in ((study, f"--dir: {study} is a study's directory (it holds "
                                 "history.jsonl, trajectory.csv"),
                         (afile, f"--dir: {afile} exists and is not a directory"),
                         (blocked, f"--dir: {blocked / 'random-s0'} exists and is not a "
                                   "directory (the study of random seed 0 goes there)")):
        before = tree(str(tmp_path))
        code = main(["compare", path, "--algorithms", "axis,random", "--budget", "300",
                     "--dir", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert tree(str(tmp_path)) == before


def test_a_dir_holding_other_files_is_refused_unless_it_is_an_earlier_comparison(
        tmp_path, capsys):
    """A --dir with files of its own (no study, no earlier comparison) was written into,
    comparison.csv and plots/ beside them; an earlier comparison's DIR resumes (files its owner
    added there included), but one whose runs another study started is refused before any
    run starts (its driver refused it only at its own start, after the runs before it ran)."""
    from tests.helpers import tree

    path = study_file(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / "data").mkdir()
    before = tree(str(tmp_path))
    assert main(["compare", path, "--algorithms", "random", "--budget", "300",
                 "--dir", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err == (f"autotune: error: --dir: {mine} is not empty and holds no earlier "
                   "comparison (it holds data/, notes.txt): compare writes comparison.csv, "
                   "plots/ and one study per algorithm and seed (<algorithm>-s<seed>/) into "
                   "its own: use an empty or new directory\n"), err
    assert tree(str(tmp_path)) == before

    out = tmp_path / "cmp"
    assert main(["compare", path, "--algorithms", "random", "--budget", "300",
                 "--dir", str(out)]) == 0
    (out / "notes.txt").write_text("what this comparison is for")
    assert main(["compare", path, "--algorithms", "grid,random", "--budget", "300",
                 "--dir", str(out)]) == 0
    assert (out / "grid-s0" / "history.jsonl").exists()
    capsys.readouterr()

    other = write_study(str(tmp_path / "other.yaml"), study_dict(
        space={"x": {"values": [0.0, 1.0]}, "cost_s": 100.0}, search={"max_trials": None},
        executor={"kind": "simulated", "max_concurrent": 3}))
    before = tree(str(tmp_path))
    assert main(["compare", other, "--algorithms", "axis,random", "--budget", "300",
                 "--dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"autotune: error: [random] space: differs from the one "
                          f"{out / 'random-s0'} was started with (parameters x, y)"), err
    assert len(err.strip().splitlines()) == 1 and tree(str(tmp_path)) == before


def test_the_study_file_compared_may_sit_in_its_dir(tmp_path, capsys):
    """``exp/study.yaml --dir exp`` keeps an experiment in one folder (the real-training bench
    does so): the study file is no file of someone else's there; another file still is."""
    exp = tmp_path / "exp"
    exp.mkdir()
    path = study_file(exp)
    assert main(["compare", path, "--algorithms", "random", "--budget", "300",
                 "--dir", str(exp)]) == 0
    assert (exp / "comparison.csv").exists() and (exp / "random-s0" / "history.jsonl").exists()
    second = tmp_path / "second"
    second.mkdir()
    path = study_file(second)
    (second / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["compare", path, "--algorithms", "random", "--budget", "300",
                 "--dir", str(second)]) == 2
    assert "(it holds notes.txt)" in capsys.readouterr().err


def test_a_new_dir_under_a_file_is_refused_before_the_start_lines(tmp_path, capsys):
    """The first run made --dir: one under a file was refused only after compare had said
    how many runs it would run and started the first."""
    path = study_file(tmp_path)
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    assert main(["compare", path, "--algorithms", "random", "--budget", "300",
                 "--dir", str(afile / "cmp")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"autotune: error: --dir: cannot make {afile / 'cmp'}: "
                                 f"{afile} is a file, not a directory\n"), (out, err)
