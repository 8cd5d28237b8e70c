import os
import re
import subprocess
import sys

import pytest

from autotune.cli import main
from autotune.errors import StudyError
from autotune.study import parse_study
from tests.helpers import (REPO, cli, history, mark_written_by_newer, study_dict, tree,
                           write_study)


def bad(tmp_path, capsys, data, text=None):
    path = str(tmp_path / "bad.yaml")
    if text is not None:
        with open(path, "wb") as fh:
            fh.write(text.encode() if isinstance(text, str) else text)
    else:
        write_study(path, data)
    d = tmp_path / "out"
    code = main(["run", path, "--dir", str(d)])
    err = capsys.readouterr().err
    assert code == 2
    assert not d.exists(), "a refused study file must leave nothing on disk"
    assert len(err.strip().splitlines()) == 1, err
    return err


CATALOGUE = [
    (dict(bogus=1), "bogus: unknown key"),
    (dict(search={"algorithm": "nope"}), "search.algorithm: unknown 'nope'"),
    (dict(executor={"kind": "cloud"}), "executor.kind: unknown 'cloud'"),
    (dict(search={"max_trials": -3}), "search.max_trials: expected a positive integer, got -3"),
    (dict(search={"seed": "zero"}), "search.seed: expected a non-negative integer, got 'zero'"),
    (dict(search={"seed": -1}), "search.seed: expected a non-negative integer, got -1"),
    (dict(search={"seed": 1.5}), "search.seed: expected a non-negative integer, got 1.5"),
    (dict(search={"max_trials": 1e3}), "search.max_trials: expected a positive integer, got "
                                        "1000.0 (write 1000: a number with a dot or an exponent"),
    (dict(search={"seed": -1, "algorithm": "optuna-tpe"}),
     "search.seed: expected a non-negative integer, got -1"),
    (dict(search={"wat": 1}), "search.wat: unknown key"),
    (dict(serach={"seed": 1}), "serach: unknown key; did you mean 'search'?"),
    (dict(search={"max_trails": 3}), "search.max_trails: unknown key; did you mean 'max_trials'?"),
    (dict(executor={"Max_Concurrent": 2}),
     "executor.Max_Concurrent: unknown key; did you mean 'max_concurrent'?"),
    (dict(search={"max_concurrent": 2}),
     "search.max_concurrent: unknown key; it belongs under executor ("),
    (dict(metric="loss"), "metric: unknown key; it belongs under objective ("),
    (dict(objective={"seed": 3}), "objective.seed: unknown key; it belongs under search ("),
    (dict(search={"retries": 2}), "search.retries: unknown key; it belongs at the top level"),
    (dict(search={"patience": 2}),
     "search.patience: unknown key; an option of axis, axis-radial, axis-s2018, not of random"),
    (dict(executor={"kind": "local", "partition": "gpu"}),
     "executor.partition: unknown key; an option of executor kind slurm, not of local"),
    (dict(executor={"max_concurrent": 0}), "executor.max_concurrent: expected a positive integer"),
    (dict(space={"x": {"values": []}}), "space.x.values: empty list"),
    (dict(space={"x": {"vales": [1, 2]}}), "space.x.vales: unknown key; did you mean 'values'?"),
    (dict(space={"x": {"lo": 1, "high": 2}}), "space.x.lo: unknown key; did you mean 'low'?"),
    (dict(space={"x": {}}), "space.x: expected {values: [...]}, {low: .., high: ..} or a fixed"),
    (dict(space={"x": {"low": 5, "high": 1}}), "space.x: low (5) must be below high (1)"),
    (dict(space={"x": {"low": 0, "high": 1, "log": True}}), "space.x: a log range must lie above 0"),
    (dict(space={"x": {"low": 0, "high": 1, "log": "yes"}}), "space.x.log: expected true or false"),
    (dict(objective={"entry": "no_such_module:f"}), "objective.entry: cannot import module 'no_such_module'"),
    (dict(objective={"entry": "tests.objectives:missing"}), "objective.entry: module 'tests.objectives' has no function 'missing'"),
    (dict(objective={"entry": "tests.objectives"}), "objective.entry: expected 'package.module:function'"),
    (dict(objective={"metric": None}), "objective.metric: missing"),
    (dict(objective={"mode": "lowest"}), "objective.mode: expected 'min' or 'max'"),
    (dict(objective={"command": "echo 1"}), "objective: expected exactly one of"),
    (dict(objective={"timeout_s": -1}), "objective.timeout_s: expected a positive number"),
    (dict(retries=-1), "retries: expected a non-negative integer"),
    (dict(search={"algorithm": "grid"}), "space.x: grid search needs a grid"),
    (dict(name="a b"), "name: expected letters, digits"),
    (dict(name=""), "name: must not be empty (expected a string)"),
    (dict(objective={"metric": ""}), "objective.metric: must not be empty"),
    (dict(space=None), "space: expected a mapping"),
    (dict(space={"x": {"values": [1e-4, "abc"]}}), "space.x.values: 'abc' in a grid of numbers"),
    (dict(space={"x": {"values": [1, 2]}, "epochs": 5},
          search={"algorithm": "asha", "fidelity": {"min": 1, "max": 9}}),
     "space.epochs: clashes with search.fidelity"),
    (dict(objective={"entry": None, "command": "echo {seed}"}, space={"seed": {"values": [1, 2]}}),
     "space.seed: clashes with the field {seed}"),
    (dict(objective={"entry": None, "command": "echo {trial_dir}"}, space={"trial_dir": "a"}),
     "space.trial_dir: clashes with the field {trial_dir}"),
    (dict(objective={"entry": None, "command": "echo {x!z}"}), "{x!z}: unknown conversion"),
    (dict(objective={"entry": None, "command": "echo {y:.2e}"},
          space={"y": {"values": [1.0, "a"]}}), "space.y.values: 'a' in a grid of numbers"),
    (dict(objective={"entry": None, "command": "echo {o:.2e}"},
          space={"o": {"values": ["adam", "sgd"]}}),
     "objective.command: Unknown format code 'e' for object of type 'str' (parameter o = 'adam')"),
    # the spec that fails is blamed on its own parameter, not on the one being varied
    (dict(objective={"entry": None, "command": "echo {a:.1e} {o:.2e}"},
          space={"a": {"values": [1.0, 2.0]}, "o": {"values": ["adam", "sgd"]}}),
     "objective.command: Unknown format code 'e' for object of type 'str' (parameter o = 'adam')"),
    (dict(space={"": {"values": [0, 1]}}), "space: a parameter with an empty name"),
    (dict(objective={"entry": None, "command": "echo {a.b}"}, space={"a.b": {"values": [0, 1]}}),
     "objective.command: {a.b}: the parameter name 'a.b' cannot be used in a command"),
    (dict(objective={"entry": None, "command": "echo {a[0]}"}, space={"a[0]": 1}),
     "objective.command: {a[0]}: the parameter name 'a[0]' cannot be used in a command"),
    (dict(objective={"entry": None, "command": "echo {x.nope}"}),
     "objective.command: 'float' object has no attribute 'nope' (parameter x = -3.0)"),
    (dict(objective={"entry": None, "command": "echo {epochs:d}"}),
     "objective.command: {epochs} would be empty in every trial: the search sets no epochs "
     "(no search.fidelity); remove it from the command"),
    # a field no trial of the study fills reached the command as the text None
    (dict(objective={"entry": None, "command": "echo {x} {epochs}"}),
     "objective.command: {epochs} would be empty in every trial: the search sets no epochs"),
    (dict(objective={"entry": None, "command": "train --init {pretrained} {x}"}),
     "objective.command: {pretrained} would be empty in every trial: the study has no "
     "stages.pretrain; remove it from the command"),
    (dict(objective={"entry": None, "command": "train --resume {resume_from!u} {x}"}),
     "objective.command: {resume_from} would be empty in every trial: a trial that continues "
     "no other's checkpoint has none (no search.fidelity: no trial does)"),
    (dict(objective={"entry": None, "command": "echo {x} {trial_dir.nope}"}),
     "objective.command: {trial_dir.nope}: 'str' object has no attribute 'nope' (trial_dir is"),
    (dict(executor={"kind": "slurm", "cleanup": "bogus"}), "executor.cleanup: expected one of"),
    (dict(executor={"kind": "slurm", "time_limit_min": 1}), "executor.time_limit_min: 1 leaves"),
    # a section that is no mapping was taken for an empty one (search: see below)
    (dict(executor=0), "executor: expected a mapping, got 0"),
    (dict(executor=[]), "executor: expected a mapping, got []"),
    (dict(compare=False), "compare: expected a mapping, got False"),
    (dict(compare=""), "compare: expected a mapping, got ''"),
]

TEXT_CATALOGUE = [
    (b"name: a\nname: b\n", "line 2: key 'name' given twice (first at line 1)"),
    (b"name: a\nspace:\n  x: {values: [1, 2]}\n  x: 3\n",
     "line 4: key 'x' given twice (first at line 3)"),
    (b"space:\n  x: 1\nname: a\nspace:\n  y: 2\n", "line 4: key 'space' given twice"),
    (b"name: caf\xe9\n", "not UTF-8 text (byte 0xe9 at line 1)"),
    (b"name: x\n  bad: [\n", "not valid YAML at line 2"),
    # a syntax slip names the line it is on, as written (its comment left out), and says what
    # PyYAML's words usually mean
    (b"name: x\nsearch:\n  seed: 1\n  max_trials 4   # budget\nexecutor:\n  kind: inline\n",
     "not valid YAML at line 4 ('max_trials 4'): could not find expected ':'; a key without "
     "':' after it? write key: value"),
    (b"name: x\nexecutor:\n  kind: inline\n\tmax_concurrent: 2\n",
     "at line 4 ('max_concurrent: 2'): found character '\\t' that cannot start any token; "
     "a tab? indent with spaces"),
    (b"name: x\nexecutor:\n   kind: inline\n  max_concurrent: 2\n",
     "at line 4 ('max_concurrent: 2'): expected <block end>, but found '<block mapping start>'"
     "; does its indentation line up with the lines above it?"),
    (b"name: x\nobjective:\n  command: echo a: b\n",
     "at line 3 ('command: echo a: b'): mapping values are not allowed here; a ': ' inside a "
     "value? quote the value"),
    (b"name: x\nspace:\n  x: {values: [1, 2}\n  y: 1\n",
     "at line 3 ('x: {values: [1, 2}'): expected ',' or ']', but got '}'"),
    (b"", "the file is empty"),
    (b"- 1\n- 2\n", "study: expected a mapping"),
    # PyYAML recurses per level: a RecursionError's traceback
    (b"name: x\nseed: " + b"[" * 5000 + b"]" * 5000 + b"\n", "not valid YAML: nested too deeply"),
]


@pytest.mark.parametrize("over, message", CATALOGUE, ids=[m.split(":")[0] for _, m in CATALOGUE])
def test_bad_study_files_get_one_clear_line(tmp_path, capsys, over, message):
    err = bad(tmp_path, capsys, study_dict(**over))
    assert message in err


@pytest.mark.parametrize("text, message", TEXT_CATALOGUE, ids=[m[:20] for _, m in TEXT_CATALOGUE])
def test_bad_study_file_text_gets_one_clear_line(tmp_path, capsys, text, message):
    assert message in bad(tmp_path, capsys, None, text=text)


def test_a_format_spec_on_a_field_the_search_fills_is_taken(tmp_path):
    """{epochs:d} was refused, blamed on the first parameter's first value, although every
    trial of a fidelity search has its epochs."""
    from autotune.contract import Ctx
    from autotune.runner import format_command

    study = parse_study(study_dict(
        objective={"entry": None, "command": "train --epochs {epochs:04d} --trial {trial:03d}"},
        space={"x": {"values": [1, 2]}},
        search={"algorithm": "asha", "fidelity": {"min": 1, "max": 9}}))
    ctx = Ctx(trial=7, trial_dir=str(tmp_path), seed=0, epochs=3)
    assert format_command(study.objective.command, {"x": 1}, ctx) == "train --epochs 0003 --trial 007"


def test_a_command_field_empty_for_some_trials_is_an_empty_string(tmp_path):
    """{resume_from} of a trial that continues no other's checkpoint (the first rung) was
    the text None; a comparison's run without a fidelity shares the command with runs that
    fill it, so it is not refused there."""
    from autotune.contract import Ctx
    from autotune.runner import format_command

    command = "train --resume {resume_from} --epochs {epochs} --x {x}"
    study = parse_study(study_dict(
        objective={"entry": None, "command": command}, space={"x": {"values": [1, 2]}},
        search={"algorithm": "asha", "fidelity": {"min": 1, "max": 9}}))
    ctx = Ctx(trial=0, trial_dir=str(tmp_path), seed=0, epochs=1)
    assert format_command(study.objective.command, {"x": 1}, ctx) == \
        "train --resume '' --epochs 1 --x 1"
    ctx.resume_from = "/a b/checkpoint.pt"
    assert format_command(study.objective.command, {"x": 1}, ctx) == \
        "train --resume '/a b/checkpoint.pt' --epochs 1 --x 1"
    parse_study(study_dict(objective={"entry": None, "command": "train {resume_from} {x}"},
                           space={"x": {"values": [1, 2]}}), compared=True)


def test_a_value_inside_a_command_substitution_is_one_word_there(tmp_path):
    """Inside ``"$(...)"`` the shell reads the words afresh, unquoted: a value quoted for the
    double quotes around the substitution was split there ("a  b" became "ab") and its ``;``
    ran the rest as a command of its own. The shell, not the template, says what it gave."""
    from autotune.contract import Ctx
    from autotune.runner import format_command

    ctx = Ctx(trial=0, trial_dir=str(tmp_path), seed=0)
    values = ["a  b", "x;echo INJ", "it's", 'say "hi"', "$HOME", "`id`", "(c)", "a\\b"]
    for template in ("printf '[%s]' \"$(printf '%s' {v})\"",
                     "printf '[%s]' \"$(printf '%s' \"{v}\")\"",
                     "printf '[%s]' \"$( (printf '%s' {v}) )\"",
                     "printf '[%s]' \"{v}\" '{v}' {v}"):
        for v in values:
            command = format_command(template, {"v": v}, ctx)
            out = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout
            words = 3 if template.endswith("{v}") else 1
            assert out == f"[{v}]" * words, (template, v, command, out)


def test_missing_sections(tmp_path, capsys):
    data = study_dict()
    del data["objective"]
    assert "objective: missing" in bad(tmp_path, capsys, data)


@pytest.mark.parametrize("value, got", [(0, "0"), (False, "False"), ("", "''"), ([], "[]")])
def test_a_search_section_that_is_no_mapping_is_refused(value, got):
    """search: 0 (or false, '', []) was taken for an empty section: no budget, a study that
    ran until stopped. Refused as the file is read (run: one line, exit 2, as above)."""
    with pytest.raises(StudyError, match=re.escape(f"search: expected a mapping, got {got}")):
        parse_study(study_dict(search=value))


@pytest.mark.parametrize("section", ["search", "executor", "compare"])
@pytest.mark.parametrize("null", [True, False], ids=["null", "missing"])
def test_a_section_left_out_or_null_is_empty(section, null):
    """Only a missing key or ~ means an empty section (the defaults)."""
    data = study_dict()
    data.pop(section, None)
    if null:
        data[section] = None
    study = parse_study(data)
    assert (study.algorithm, study.max_trials) == (("random", None) if section == "search"
                                                   else ("random", 10))
    assert study.executor == ("local" if section == "executor" else "inline")


def test_a_section_an_older_autotune_took_as_empty_is_read_back_so(tmp_path):
    """A history recorded with search: 0 (read then as an empty section) is still read:
    status, report and load_study rebuild its study as it ran."""
    from autotune import events as ev
    from autotune.journal import Journal
    from autotune.study import recorded_study
    from tests.helpers import history

    data = study_dict(search=False, executor="", compare=0)
    started = parse_study(study_dict(search=None, executor=None))
    Journal(str(tmp_path / "history.jsonl")).append(
        [ev.study("t", 0.0, started.identity(), data)])
    study = recorded_study(history(str(tmp_path)), load_code=False)
    assert study.identity() == started.identity() and study.max_trials is None


def test_missing_study_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert "no such study file" in capsys.readouterr().err


def test_exit_status_and_stderr_of_the_real_command(tmp_path):
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"algorithm": "nope"}))
    proc = cli("run", path, "--dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "autotune: error: search.algorithm: unknown 'nope' (expected one of: "
        + ", ".join(sorted(__import__("autotune.searchers", fromlist=["x"]).SEARCHERS)) + ")"]
    assert not (tmp_path / "d").exists()


def test_one_trial_is_counted_in_the_singular(tmp_path):
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 1}))
    d = str(tmp_path / "d")
    first = cli("run", path, "--dir", d)
    assert "study t: 1 trial, 1 ok" in first.stdout and "up to 1 trial," in first.stderr
    again = cli("run", path, "--dir", d)
    assert f"in {d}: 1 trial done" in again.stderr, again.stderr


def test_run_status_report(tmp_path):
    path = write_study(str(tmp_path / "s.yaml"), study_dict())
    d = str(tmp_path / "d")
    proc = cli("run", path, "--dir", d, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "study t: 10 trials, 10 ok" in proc.stdout
    status = cli("status", d)
    assert status.returncode == 0
    assert "trials: 10 ok (10 in all)" in status.stdout and "no driver running" in status.stdout
    report = cli("report", d)
    assert report.returncode == 0, report.stderr
    plots = sorted(os.listdir(os.path.join(d, "plots")))
    assert plots == ["best_vs_compute.png", "best_vs_time.png", "concurrency.png",
                     "loss_along_x.png", "loss_along_y.png",  # every metric reported:
                     "score_along_x.png", "score_along_y.png"]
    assert all(os.path.getsize(os.path.join(d, "plots", p)) > 1000 for p in plots)
    assert cli("status", str(tmp_path / "nothing")).returncode == 2


def test_default_directory_is_runs_name(tmp_path):
    path = write_study(str(tmp_path / "s.yaml"), study_dict(name="dflt", search={"max_trials": 2}))
    proc = cli("run", path, "--quiet", cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "runs" / "dflt" / "history.jsonl").exists()


def test_trajectory_columns_never_repeat(tmp_path):
    from autotune.driver import Driver
    from autotune.study import parse_study

    study = parse_study(study_dict(space={"x": {"values": [1, 2]}, "epochs": 5, "status": "a"},
                                   search={"algorithm": "grid"}))
    d = str(tmp_path / "d")
    Driver(study, d, progress=False).run()
    with open(os.path.join(d, "trajectory.csv")) as fh:
        header = fh.readline().strip().split(",")
        first = fh.readline().strip().split(",")
    assert len(header) == len(set(header))
    assert header[:4] == ["trial", "status", "algorithm", "x"]
    assert {"x", "param_status", "epochs", "value", "best", "start_s", "end_s",
            "cost_s", "job_id", "error", "loss", "score", "index_x", "attempts"} <= set(header)
    assert "round" not in header and "parent" not in header  # never filled by a grid search
    assert first[header.index("epochs")] == "5"
    assert first[header.index("index_x")] == "0" and first[header.index("attempts")] == "1"


def test_report_of_an_axis_search_draws_its_path(tmp_path):
    grid = {"x": {"values": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]},
            "y": {"values": [-1.0, -0.5, 0.0, 0.5]}}
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        space=grid, search={"algorithm": "axis", "max_trials": 30},
        executor={"kind": "simulated", "max_concurrent": 4}))
    d = str(tmp_path / "d")
    assert cli("run", path, "--dir", d, "--quiet").returncode == 0
    report = cli("report", d)
    assert report.returncode == 0, report.stderr
    assert os.path.getsize(os.path.join(d, "plots", "search_path.png")) > 5000
    assert "best loss: 0 at trial" in report.stdout  # (1, -0.5) is on the grid: loss 0


def test_any_non_negative_seed_runs(tmp_path):
    """The seed is refused only where numpy would refuse it later (below 0); a huge one runs."""
    from autotune.driver import Driver
    from autotune.study import parse_study

    for algorithm in ("random", "asha"):
        study = parse_study(study_dict(search={"algorithm": algorithm, "seed": 2 ** 70,
                                               "max_trials": 3, "fidelity": {"min": 1, "max": 3}}
                                       if algorithm == "asha" else
                                       {"seed": 2 ** 70, "max_trials": 3}))
        summary = Driver(study, str(tmp_path / algorithm), progress=False).run()
        assert summary.counts == {"ok": 3}




def test_an_old_study_whose_history_was_emptied_is_not_started_over(tmp_path, capsys):
    """trajectory.csv and trials/ may be the only copy of its results left."""
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        search={"max_trials": 3}, executor={"kind": "local", "max_concurrent": 1}))
    d = tmp_path / "d"
    assert main(["run", path, "--dir", str(d), "--quiet"]) == 0
    (d / "history.jsonl").write_bytes(b"")
    before = tree(d)
    capsys.readouterr()
    assert main(["run", path, "--dir", str(d), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"--dir: {d}: history.jsonl holds no study record, yet the directory holds " \
           "trajectory.csv, trials/" in err[0] and "use an empty or new directory" in err[0]
    assert tree(d) == before


def test_a_directory_that_is_not_a_study_is_not_written_into(tmp_path, capsys):
    d = tmp_path / "notes"
    (d / "trials" / "0").mkdir(parents=True)
    (d / "notes.txt").write_text("mine\n")
    (d / "trials" / "0" / "data.txt").write_text("also mine\n")
    before = tree(d)
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 2}))
    assert main(["run", path, "--dir", str(d), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{d}: not a study directory (no history.jsonl), and not " \
        "empty: it holds notes.txt, trials/" in err[0], err
    assert tree(d) == before  # not even the driver's lock


def test_an_empty_directory_takes_a_new_study(tmp_path):
    import autotune as at

    d = tmp_path / "empty"
    d.mkdir()
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 2}))
    assert main(["run", path, "--dir", str(d), "--quiet"]) == 0
    # a directory that a refused start left its lock in is as good as empty
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "driver.lock").write_bytes(b"")
    (tmp_path / "locked" / "history.jsonl").write_bytes(b"")
    assert main(["run", path, "--dir", str(tmp_path / "locked"), "--quiet"]) == 0
    # from Python too, and the refusal comes before the objective is written there
    (tmp_path / "other" / "trials").mkdir(parents=True)
    study = at.Study(name="p", objective={"entry": lambda p, ctx: {"loss": p["x"]},
                                          "metric": "loss"},
                     space={"x": {"values": [1, 2]}}, search={"max_trials": 2},
                     executor={"kind": "local"}, dir=str(tmp_path / "other"))
    with pytest.raises(at.StudyError, match="not a study directory"):
        study.run(progress=False)
    assert os.listdir(tmp_path / "other") == ["trials"]


def test_max_trials_lowered_below_what_is_done_reads_sensibly(tmp_path, capsys):
    from autotune.driver import Driver
    from autotune.study import parse_study

    d = str(tmp_path / "d")
    Driver(parse_study(study_dict(search={"max_trials": 9})), d, progress=False).run()
    capsys.readouterr()
    Driver(parse_study(study_dict(search={"max_trials": 8})), d, progress=True).run()
    err = capsys.readouterr().err
    assert "9 trials done; max_trials (8) reached: no new trials" in err
    assert "9 done (max_trials 8 reached)" in err and "9/8" not in err


def test_a_compute_budget_already_spent_on_resume_says_so(tmp_path, capsys):
    from autotune.driver import Driver
    from autotune.study import parse_study

    d = str(tmp_path / "d")
    space = {"x": {"low": -3.0, "high": 3.0}, "cost_s": 10.0}
    Driver(parse_study(study_dict(space=space, search={"max_trials": None,
                                                       "max_compute_s": 30})),
           d, progress=False).run()
    capsys.readouterr()
    Driver(parse_study(study_dict(space=space, search={"max_trials": None,
                                                       "max_compute_s": 30})),
           d, progress=True).run()
    err = capsys.readouterr().err
    assert "max_compute_s (30 s) spent (" in err and "no new trials" in err, err


@pytest.mark.parametrize("search", [{"max_trials": 4},
                                    {"max_trials": None, "max_compute_s": 20}])
def test_a_resume_past_its_budget_does_not_say_how_new_trials_would_repeat(tmp_path, capsys,
                                                                            search):
    """Resuming a finished study over a two-setting space said that the settings would be
    run again until max_trials, on the line after saying no new trial would start."""
    from autotune.driver import Driver
    from autotune.study import parse_study

    study = study_dict(space={"x": {"values": [1.0, 2.0]}, "y": 0.0, "cost_s": 10.0},
                       search=search, executor={"kind": "simulated"})
    d = str(tmp_path / "d")
    Driver(parse_study(study), d, progress=True).run()
    assert "then each again" in capsys.readouterr().err  # said when it is to come
    Driver(parse_study(study), d, progress=True).run()
    err = capsys.readouterr().err
    assert "no new trials" in err and "then each again" not in err, err


def test_a_study_whose_trials_all_failed_names_retry_failed_on_every_run(tmp_path, capsys):
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": "tests.objectives:raises"}, search={"max_trials": 2},
        max_failures=0))
    d = str(tmp_path / "d")
    for _ in range(2):  # the first run, and a re-run that has nothing left to run
        assert main(["run", path, "--dir", d, "--quiet"]) == 4
        err = capsys.readouterr().err
        assert f"every trial failed; fix the cause, then: python -m autotune run {path} " \
               f"--dir {d} --retry-failed" in err, err


def test_a_held_study_directory_is_exit_status_3_naming_the_holder(tmp_path):
    from autotune.errors import StudyBusy, StudyError
    from autotune.studydir import StudyDir

    assert issubclass(StudyBusy, StudyError)  # a mistake, but one with its own exit status
    path = write_study(str(tmp_path / "s.yaml"), study_dict())
    held = StudyDir(str(tmp_path / "d"))
    held.acquire()
    try:
        out = cli("run", path, "--dir", held.path)
    finally:
        held.release()
    assert out.returncode == 3, out.stderr
    # one line, worded as every other refusal is (it lacked the "error:")
    line, = out.stderr.strip().splitlines()
    assert line.startswith(f"autotune: error: {held.path} is being run by pid {os.getpid()} "
                           "on host"), line


def test_a_renamed_study_file_resumes_under_the_recorded_name_and_says_so(tmp_path, capsys):
    path = write_study(str(tmp_path / "s.yaml"), study_dict(name="first",
                                                            search={"max_trials": 2}))
    d = str(tmp_path / "d")
    assert main(["run", path, "--dir", d]) == 0
    write_study(path, study_dict(name="second", search={"max_trials": 3}))
    capsys.readouterr()
    assert main(["run", path, "--dir", d]) == 0
    assert (f"resuming study first (the study file says second; the directory keeps first) "
            f"in {d}: 2 trials done") in capsys.readouterr().err
    main(["status", d])
    assert "study first" in capsys.readouterr().out


def test_the_help_says_what_report_writes_and_cancel_stops():
    """As the README says: report writes summary.txt, trajectory.csv and the plots; cancel
    also stops the local trials a killed driver left running."""
    top = cli("--help")
    assert top.returncode == 0
    text = " ".join(top.stdout.split())
    assert "summary.txt" in text and "trajectory.csv" in text
    assert "local trials a killed driver left" in text


def test_trajectory_has_its_columns_before_the_first_trial(tmp_path):
    """A study stopped before any trial ran (its pretrain failed) and one whose every trial
    failed write trajectory.csv with the parameters, the optimised metric and the epochs,
    as a successful trial's does; ``report`` (from the history alone) writes the same."""
    from autotune.driver import Driver

    def header(d: str) -> list[str]:
        with open(os.path.join(d, "trajectory.csv")) as fh:
            return [c for c in fh.readline().strip().split(",") if c != "round"]  # the stage's

    space = {"x": {"low": -3.0, "high": 3.0}, "epochs": 5, "value": 1}  # param_value
    heads = {}
    for name, over in [("ok", {}), ("failed", {"entry": "tests.objectives:raises"})]:
        d = str(tmp_path / name)
        study = parse_study(study_dict(space=space, objective=over, max_failures=1,
                                       search={"max_trials": 2}))
        Driver(study, d, progress=False).run()
        heads[name] = header(d)
    d = str(tmp_path / "none")
    study = parse_study(study_dict(space=space, stages={"pretrain": {
        "entry": "tests.objectives:raises", "params": {}}}))
    Driver(study, d, progress=False).run()
    heads["none"] = header(d)
    assert main(["report", d]) == 0
    heads["report"] = header(d)
    want = ["trial", "status", "algorithm", "x", "param_value", "epochs", "loss"]
    for name in ("failed", "none", "report"):
        assert heads[name][:7] == want, (name, heads[name])
    assert heads["ok"][:7] == want


@pytest.mark.parametrize("argv, said", [
    (["run", "s.yaml", "--bogus"], "autotune run: error: unrecognized arguments: --bogus"),
    (["run", "s.yaml", "--retry"], "autotune run: error: unrecognized arguments: --retry"),
    (["status", "d", "--bogus"], "autotune status: error: unrecognized arguments: --bogus"),
    (["report", "d", "--htm"], "autotune report: error: unrecognized arguments: --htm"),
    (["cancel", "d", "--force"], "autotune cancel: error: unrecognized arguments: --force"),
    (["compare", "s.yaml"], "autotune compare: error: the following arguments are required: --dir"),
    (["compare", "s.yaml", "--dir", "d", "--algos", "axis"],
     "autotune compare: error: unrecognized arguments: --algos axis"),
    (["--bogus"], "autotune: error: unrecognized option --bogus before the command (the "
     "commands: run, status, compare, cancel, report; their options come after them)"),
    (["--dir", "d", "run", "s.yaml"], "autotune: error: unrecognized option --dir before the "
     "command (the commands: run, status, compare, cancel, report; their options come after "
     "them)"),
])
def test_a_wrong_flag_is_one_line_naming_the_subcommand(tmp_path, capsys, monkeypatch, argv, said):
    # argparse printed its usage first (three lines for compare), blamed `autotune` for a
    # subcommand's flag, and took a prefix for a flag: `--retry` ran `--retry-failed`
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.splitlines() == [f"{said} (see {said.split(': error')[0]} --help)"], err
    assert os.listdir(tmp_path) == []


def test_cancel_of_a_local_study_does_not_speak_of_slurm(tmp_path, capsys):
    # a finished local study was told 'no queued or running slurm jobs', as if it had any
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 2}))
    d = str(tmp_path / "d")
    assert main(["run", path, "--dir", d, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["cancel", d]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "nothing to cancel: no driver holds the study and none of its trials runs"], out


@pytest.mark.parametrize("argv, said", [
    (["run", "s.yaml", "--dir", ""], "autotune run: error: argument --dir"),
    (["run", ""], "autotune run: error: argument study"),
    (["compare", "s.yaml", "--algorithms", "random", "--dir", ""],
     "autotune compare: error: argument --dir"),
    (["compare", "", "--dir", "d"], "autotune compare: error: argument study"),
    (["status", ""], "autotune status: error: argument dir"),
    (["report", ""], "autotune report: error: argument dir"),
    (["cancel", ""], "autotune cancel: error: argument dir"),
])
def test_an_empty_path_is_refused_not_taken_for_the_default(tmp_path, capsys, monkeypatch,
                                                              argv, said):
    """``--dir "$OUT"`` with OUT unset: run took it for no --dir and ran in runs/<name>,
    compare wrote comparison.csv, plots/ and its runs into the current directory."""
    write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 2}))
    monkeypatch.chdir(tmp_path)
    before = tree(str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.splitlines() == [f"{said}: expected a path, got an empty string (an unset "
                                f"shell variable?) (see {said.split(': error')[0]} --help)"], err
    assert tree(str(tmp_path)) == before


@pytest.mark.parametrize("command", ["status", "report", "cancel"])
def test_a_study_file_given_for_its_directory_is_named_as_a_file(tmp_path, capsys, command):
    """``status demo.yaml`` said "no study here (no history.jsonl)", as for an empty folder:
    the file is named as a file, in the words ``at.load`` of a file uses."""
    path = write_study(str(tmp_path / "s.yaml"), study_dict())
    assert main([command, path]) == 2
    assert capsys.readouterr().err == (f"autotune: error: {path}: is a file, expected a study "
                                       "directory (the one run wrote, holding history.jsonl)\n")


def test_report_refuses_a_history_a_newer_autotune_wrote_writing_nothing(tmp_path, capsys):
    """report rewrote trajectory.csv and summary.txt from it with this version's columns (a
    warning in the summary): as run, it refuses in one line; status still shows it."""
    from autotune import events as ev

    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 2}))
    d = str(tmp_path / "d")
    assert main(["run", path, "--dir", d, "--quiet"]) == 0
    mark_written_by_newer(d)
    before = tree(d)
    capsys.readouterr()
    assert main(["report", d, "--html"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"autotune: error: {d}/history.jsonl: written by a newer autotune (history schema "
        f"{ev.SCHEMA + 1}; this one reads up to {ev.SCHEMA}); report would rewrite its files "
        "with this version's columns: upgrade autotune (status shows it as far as this version "
        "understands it)"], err
    assert tree(d) == before
    assert main(["status", d]) == 0 and "newer autotune" in capsys.readouterr().out


CTRL_C_AT_IMPORT = """
import os, signal, sys

class CtrlC:  # Ctrl-C reaches the process while autotune.cli is importing
    def find_spec(self, name, path=None, target=None):
        if name == "autotune.cli":
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**6):
                pass
        return None

sys.meta_path.insert(0, CtrlC())
"""


@pytest.mark.parametrize("how", ["python -m autotune", "console script"])
def test_ctrl_c_while_the_cli_imports_is_one_line_and_exit_130(tmp_path, how):
    """The first ~0.3 s of `python -m autotune ...` import the CLI: a Ctrl-C then printed
    Python's KeyboardInterrupt traceback; it is the line and status of a later one."""
    import configparser

    if how == "console script":  # what setup.cfg's entry point names, called as pip's script
        cfg = configparser.ConfigParser()
        cfg.read(os.path.join(REPO, "setup.cfg"))
        target = cfg["options.entry_points"]["console_scripts"].split("=", 1)[1].strip()
        module, func = target.split(":")
        run = f"import {module} as m; sys.exit(m.{func}())"
    else:
        run = "import runpy; runpy.run_module('autotune', run_name='__main__', alter_sys=True)"
    proc = subprocess.run([sys.executable, "-c", CTRL_C_AT_IMPORT + run, "status",
                           str(tmp_path / "none")], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO}, timeout=60)
    assert (proc.returncode, proc.stderr, proc.stdout) == (130, "autotune: interrupted\n", ""), proc


@pytest.mark.parametrize("lock", ["driver.lock", "history.lock"])
@pytest.mark.parametrize("command", ["status", "report", "cancel"])
def test_a_lock_file_that_is_a_directory_is_one_line(tmp_path, capsys, lock, command):
    """A lock file made a directory (a copy gone wrong, a mkdir by hand) was a filelock
    traceback from ``status``, ``report`` and ``cancel`` (``run`` names it up front): the
    same one line and exit status 2, the study left as it was."""
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 2}))
    d = str(tmp_path / "d")
    assert main(["run", path, "--dir", d, "--quiet"]) == 0
    os.remove(os.path.join(d, lock))
    os.mkdir(os.path.join(d, lock))
    before = tree(d)
    capsys.readouterr()
    code = main([command, d])
    err = capsys.readouterr().err
    if lock == "history.lock" and command != "cancel":  # they read the history unlocked
        assert code == 0 and err == "", err
        return
    assert code == 2 and err.splitlines() == [
        f"autotune: error: cannot access {os.path.join(d, lock)} (Is a directory)"], err
    assert tree(d) == before


PRINTER = '''def objective(params, ctx):
    print("epoch 1 " * 2000)  # past a pipe's buffer: it reaches the closed pipe at once
    return {"loss": params["x"]}
'''


def run_into_a_closed_pipe(path: str, d: str, unbuffered: bool, *more: str):
    """``python -m autotune run PATH --dir D | true``: stdout a pipe whose reader has gone
    before the first line, buffered or not (PYTHONUNBUFFERED); stderr captured."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update({"PYTHONPATH": REPO, **({"PYTHONUNBUFFERED": "1"} if unbuffered else {})})
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "autotune", "run", path, "--dir", d, *more],
                              stdout=write, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
                              timeout=120)
    finally:
        os.close(write)


@pytest.mark.parametrize("unbuffered", [False, True])
def test_a_reader_that_leaves_does_not_hide_the_outcome(tmp_path, unbuffered):
    """`run STUDY | head -1` under `set -o pipefail`: the BrokenPipeError was caught as exit
    status 0 (a failed study read as a success, its last stderr lines lost) or, buffered,
    failed at exit as 120 with Python's "Exception ignored"; an inline trial that printed
    failed of it. Now the study runs as it would, and exits with its own status."""
    from tests.helpers import history

    failing = write_study(str(tmp_path / "f.yaml"), study_dict(
        objective={"entry": "tests.objectives:raises"}, search={"max_trials": 2}))
    proc = run_into_a_closed_pipe(failing, str(tmp_path / "f"), unbuffered)
    assert proc.returncode == 4, proc.stderr
    assert "autotune: every trial failed" in proc.stderr
    assert "BrokenPipe" not in proc.stderr and "Exception ignored" not in proc.stderr
    (tmp_path / "printer.py").write_text(PRINTER)
    printing = write_study(str(tmp_path / "p.yaml"), study_dict(
        objective={"entry": "printer:objective"}, search={"max_trials": 2}))
    proc = run_into_a_closed_pipe(printing, str(tmp_path / "p"), unbuffered, "--quiet")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert [t.status for t in history(str(tmp_path / "p")).trials.values()] == ["ok", "ok"]


def test_run_and_status_never_import_the_analysis_layer(tmp_path):
    """pandas (and matplotlib) are for report and the DataFrame API: a third of a second
    that every ``run`` (and every resume on a login node) paid at its start while
    trajectory.csv's best column was computed through the analysis module, and ``status``
    while its text lived beside the plots."""
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 3}))
    d = str(tmp_path / "d")

    def loaded(*args: str) -> str:
        probe = ("import atexit, runpy, sys\n"
                 "atexit.register(lambda: print('loaded:', sorted(m for m in ('pandas', "
                 "'matplotlib') if m in sys.modules)))\n"
                 f"sys.argv = ['autotune', *{list(args)!r}]\n"
                 "runpy.run_module('autotune', run_name='__main__')\n")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              cwd=REPO, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert loaded("run", path, "--dir", d) == "loaded: []"
    assert len(history(d).trials) == 3
    assert loaded("status", d) == "loaded: []"
    # and the probe sees them where they are used
    assert loaded("report", d) == "loaded: ['matplotlib', 'pandas']"
