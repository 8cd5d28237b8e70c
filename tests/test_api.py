"""The Python API: import autotune as at; load, Study(...).run(), callables, ask/tell."""
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

import autotune as at
from autotune.errors import StudyBusy, StudyError

from .helpers import REPO, cli, history, study_dict, tree, write_study


def test_public_names_are_listed_and_import_lazily():
    assert set(at.__all__) >= {"Study", "Trial", "StudyView", "load", "StudyError", "__version__"}
    for name in at.__all__:
        assert getattr(at, name) is not None
    # a trial process imports autotune for the worker: the API (pandas, the driver) stays out
    code = "import sys, autotune; print(sorted(m for m in ('pandas', 'autotune.driver') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert out.stdout.strip() == "[]", out.stderr


def test_version_from_the_cli_and_python_m():
    assert cli("--version").stdout.strip() == f"autotune {at.__version__}"
    from autotune.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0


# ---- Study(...).run() and load ---------------------------------------------------------------
def test_run_from_a_dict_then_load_typed_frame(tmp_path):
    d = str(tmp_path / "s")
    view = at.Study(study_dict(search={"max_trials": 6}), dir=d).run(progress=False)
    assert isinstance(view, at.StudyView) and len(view.trials) == 6
    df = view.trials_dataframe()
    assert list(df["trial"]) == list(range(6))
    assert df["x"].dtype == "float64" and df["y"].dtype == "float64"
    assert df["loss"].dtype == "float64" and df["value"].dtype == "float64"
    assert df["status"].dtype == "string" and set(df["status"]) == {"ok"}
    assert df["attempts"].dtype == "int64" and df["epochs"].dtype == "Int64"
    assert df["job_id"].str.startswith("inline-").all()
    # the best column is the running best, and .best is the trial with the least value
    assert df["best"].iloc[-1] == df["value"].min() == view.best.value
    assert (df["best"].diff().dropna() <= 0).all()
    assert view.best.trial == int(df.loc[df["value"].idxmin(), "trial"])
    assert "best loss" in view.summary() and "6 ok" in view.summary()


def test_kwargs_and_yaml_studies_resume_like_the_cli(tmp_path):
    d = str(tmp_path / "s")
    at.Study(**study_dict(search={"max_trials": 3}), dir=d).run(progress=False)
    first = at.load(d).trials
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 7}))
    view = at.Study.from_yaml(path, dir=d).run(progress=False)
    assert [t.params for t in view.trials[:3]] == [t.params for t in first]  # resumed, not redone
    assert len(view.trials) == 7
    assert [n["e"] for n in history(d).notes] == ["resume"]
    out = cli("status", d)
    assert out.returncode == 0 and "7 ok" in out.stdout


def test_a_study_directory_started_with_another_search_is_refused(tmp_path):
    d = str(tmp_path / "s")
    at.Study(study_dict(), dir=d).run(progress=False)
    before = sorted(os.listdir(d))
    with pytest.raises(StudyError, match="space: differs"):
        at.Study(study_dict(search={"algorithm": "grid"}, space={"x": {"values": [0.0, 1.0]},
                                                                    "y": {"values": [0.0]}}),
                 dir=d).run(progress=False)
    with pytest.raises(StudyError, match="seed"):
        at.Study(study_dict(objective={"entry": lambda p, c: 1.0}, search={"seed": 4}),
                 dir=d).run(progress=False)
    assert sorted(os.listdir(d)) == before  # no objective.pkl written, no event appended


def test_a_refused_directory_is_explained_in_python_terms(tmp_path):
    d = str(tmp_path / "s")
    at.Study(study_dict(search={"max_trials": 2}), dir=d).run(progress=False)
    with pytest.raises(StudyError) as exc:
        at.Study(study_dict(search={"seed": 4}), dir=d).run(progress=False)
    assert ("search.seed: %s was started with 0, the study definition says 4; use another "
            "dir= for a new search" % d) == str(exc.value)
    with pytest.raises(StudyError, match="the study definition says 4; use another dir=") as exc:
        at.Study(study_dict(search={"seed": 4}), dir=d).ask()
    with pytest.raises(StudyError, match=r"objective.entry: .* the study definition says "
                                         r"'tests.objectives:raises'; results would mix: use "
                                         r"another dir=, or run\(accept_objective_change=True\) "
                                         r"if the change does not alter results$"):
        at.Study(study_dict(objective={"entry": "tests.objectives:raises"}), dir=d).run(progress=False)
    view = at.Study(study_dict(objective={"entry": "tests.objectives:raises"},
                               search={"max_trials": 3}, max_failures=0),
                    dir=d).run(progress=False, accept_objective_change=True)
    assert [t.status for t in view.trials] == ["ok", "ok", "failed"]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StudyError, match=r"^dir: cannot write a study into .*a-file/s "):
        at.Study(study_dict(), dir=str(blocker / "s")).run(progress=False)
    # the same refusals from the CLI name its options
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"seed": 4}))
    out = cli("run", path, "--dir", d)
    assert out.returncode == 2 and "the study file says 4; use another --dir" in out.stderr


@pytest.mark.parametrize("bad, message", [
    ({"space": {"x": {"low": 2.0, "high": 1.0}}}, "space.x"),
    ({"search": {"algorithm": "nope"}}, "search.algorithm: unknown"),
    ({"objective": {"entry": "tests.objectives:missing"}}, "has no function 'missing'"),
    ({"colour": "red"}, "colour"),
    ({"direction": "minimize"}, r"^direction: unknown key; Optuna's direction is "
                                r"objective.mode here: 'min' or 'max' \('minimize', 'maximize' too\) "
                                r"\(expected one of"),
    ({"objective": {"direction": "maximize"}}, r"^objective.direction: unknown key; Optuna's"),
    ({"n_trials": 20}, r"^n_trials: unknown key; Optuna's n_trials is search.max_trials here"),
    ({"objective": {"entry": 3}}, r"objective.entry: expected a function f\(params, ctx\) or a "
                                  r"'module:function' string, got 3$"),
])
def test_bad_keys_are_one_line_study_errors_and_write_nothing(tmp_path, bad, message):
    with pytest.raises(StudyError, match=message) as exc:
        at.Study(study_dict(**bad), dir=str(tmp_path / "s"))
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("keyword, said", [
    ("dirr", "; did you mean 'dir'?"), ("Dir", "; did you mean 'dir'?"),
    ("directory", "; the study directory is dir="), ("serach", "; did you mean 'search'?"),
    ("n_trials", "; Optuna's n_trials is search.max_trials here"), ("colour", ""),
])
def test_an_unknown_keyword_names_dir_among_what_it_resembles(tmp_path, keyword, said):
    """``Study(..., dirr=...)`` was refused as an unknown study key, naming no ``dir=``: a
    misspelt keyword is suggested ``dir=`` as the study file's key errors suggest theirs."""
    with pytest.raises(StudyError) as exc:
        at.Study(**study_dict(), **{keyword: str(tmp_path / "s")})
    assert str(exc.value).startswith(f"{keyword}: unknown keyword{said} (expected dir= or one "
                                     "of the study's keys: name, "), exc.value
    assert "\n" not in str(exc.value) and not (tmp_path / "s").exists()


@pytest.mark.parametrize("call, keywords, message", [
    ("load_study", {"dirr": "d"}, "load_study: dirr: unknown keyword; did you mean 'dir'? "
                                  "(it takes dir=)"),
    ("load_study", {"study_name": "s", "storage": "sqlite://"},
     "load_study: study_name: unknown keyword; the study's name is its key name, and the study "
     "is its directory: dir= (it takes dir=)"),
    ("create_study", {"config_or_yaml_path": {}, "dirr": "d"},
     "create_study: dirr: unknown keyword; did you mean 'dir'? (it takes config_or_yaml_path=, "
     "dir=, load_if_exists=)"),
    ("create_study", {"config_or_yaml_path": {}, "direction": "minimize"},
     "create_study: direction: unknown keyword; the direction is the study's objective.mode "
     "('min' or 'max') (it takes config_or_yaml_path=, dir=, load_if_exists=)"),
    ("load", {"dir": "d"}, "load: dir: unknown keyword; did you mean 'directory'? (it takes "
                           "directory=)"),
    ("load", {"dirr": "d"}, "load: dirr: unknown keyword; did you mean 'directory'? (it takes "
                            "directory=)"),
    ("from_yaml", {"path": "s.yaml", "dirr": "d"}, "Study.from_yaml: dirr: unknown keyword; did "
                                                  "you mean 'dir'? (it takes path=, dir=)"),
    ("optimize", {"n_trial": 3}, "Study.optimize: n_trial: unknown keyword; did you mean "
                                 "'n_trials'? (it takes func=, n_trials=, timeout=, progress=, "
                                 "retry_failed=, accept_objective_change=)"),
    ("optimize", {"n_jobs": 4}, "Study.optimize: n_jobs: unknown keyword; trials at once are "
                                "the study's executor.max_concurrent (it takes func="),
    ("run", {"retry": True}, "Study.run: retry: unknown keyword; did you mean 'retry_failed'? "
                             "(it takes progress=, retry_failed=, accept_objective_change=)"),
    ("tell", {"trial": 0, "eror": "x"}, "Study.tell: eror: unknown keyword; did you mean "
                                        "'error'? (it takes trial=, result=, error=)"),
    ("ask", {"fixed_distributions": {}}, "Study.ask: fixed_distributions: unknown keyword; the "
                                         "space is the study's: every trial draws from it (it "
                                         "takes no keywords)"),
    ("trials_dataframe", {"attrs": ("number",)},
     "Study.trials_dataframe: attrs: unknown keyword; select the columns from the DataFrame it "
     "returns (it takes no keywords)"),
])
def test_a_misspelt_keyword_of_the_api_names_the_one_it_resembles(tmp_path, call, keywords,
                                                                  message):
    """``load_study(dirr=...)`` raised Python's TypeError, naming the keyword alone (and
    ``create_study`` a keyword given correctly before it): each public call names the bad
    keyword, the one it resembles (or where Optuna's is here) and those it takes, in one
    line, before anything is done."""
    d = str(tmp_path / "s")
    study = at.Study(study_dict(), dir=d)
    calls = {"load_study": at.load_study, "create_study": at.create_study, "load": at.load,
             "from_yaml": at.Study.from_yaml, "optimize": study.optimize, "run": study.run,
             "tell": study.tell, "ask": study.ask, "trials_dataframe": study.trials_dataframe}
    with pytest.raises(StudyError) as exc:
        calls[call](**keywords)
    assert str(exc.value).startswith(message), exc.value
    assert "\n" not in str(exc.value) and not os.path.exists(d)


def test_a_space_from_numpy_values_and_tuples_is_stored_plain(tmp_path):
    np = pytest.importorskip("numpy")
    d = str(tmp_path / "s")
    space = {"x": {"low": np.float64(0), "high": np.float32(1), "steps": np.int64(3)},
             "y": {"values": np.array([1, 2, 3])}, "z": {"values": ("a", "b")},
             "w": {"values": np.linspace(0.0, 1.0, 3)}, "f": np.float32(0.5),
             "b": {"values": [np.bool_(True), np.bool_(False)]}}
    study = at.Study(study_dict(space=space, search={"max_trials": 2}), dir=d)
    assert study.settings.space.spec() == {
        "x": {"low": 0.0, "high": 1.0, "log": False, "int": False, "steps": 3},
        "y": {"values": [1, 2, 3]}, "z": {"values": ["a", "b"]},
        "w": {"values": [0.0, 0.5, 1.0]}, "f": {"fixed": 0.5}, "b": {"values": [True, False]}}
    study.run(progress=False)
    h = history(d)
    assert h.study["config"]["space"]["y"] == {"values": [1, 2, 3]}  # not "[1 2 3]"
    assert h.study["config"]["space"]["x"]["high"] == 1.0
    for rec in h.trials.values():
        assert type(rec.params["y"]) is int and type(rec.params["b"]) is bool
        assert type(rec.params["x"]) is float and type(rec.params["f"]) is float
    with pytest.raises(StudyError, match=r"space.y.values: .*in a grid of numbers"):
        at.Study(study_dict(space={"y": {"values": np.array([1.0, "a"], dtype=object)}}))


def test_a_function_without_its_metric_is_refused():
    with pytest.raises(StudyError, match="needs the metric"):
        at.Study({**study_dict(), "objective": lambda p, c: 0.0})


def test_the_metric_is_a_column_before_any_trial_reports_it(tmp_path):
    def fails(params, ctx):
        raise ValueError("diverged")

    with pytest.raises(at.StudyStopped) as stopped:   # every trial failed
        at.Study(study_dict(objective={"entry": fails}, search={"max_trials": 2}),
                 dir=str(tmp_path / "failed")).run(progress=False)
    failed = stopped.value.view
    raw = study_dict()
    raw["objective"] = {"metric": "value"}  # named like a fixed column: it becomes metric_value
    with at.Study(raw, dir=str(tmp_path / "running")) as running:
        running.ask()
        frames = [failed.trials_dataframe(), running.trials_dataframe()]
    for df, col in zip(frames, ["loss", "metric_value"]):
        assert df[col].dtype == "float64" and df[col].isna().all()
        assert list(df.columns).index(col) < list(df.columns).index("value")
    assert list(frames[0][["trial", "status", "loss"]]["status"]) == ["failed", "failed"]


# ---- load: read-only, never imports the objective ---------------------------------------------
def test_a_parameter_or_metric_named_index_or_counts_keeps_its_values(tmp_path):
    """The CSV splits a column ``index`` (the axis search's grid index) and the frame adds
    ``counts``: a parameter or metric so named is prefixed, in both, like one named value."""
    d = tmp_path / "s"
    raw = study_dict(space={"counts": {"values": [1, 2, 3]}, "index": {"values": [7, 8]}},
                     search={"max_trials": 3})
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=str(d)) as study:
        while (trial := study.ask()) is not None:
            study.tell(trial, {"loss": 1.0, "counts": 9.0, "index": 4.0})
    told = at.load(d).trials
    df = at.load(d).trials_dataframe()
    csv = pd.read_csv(d / "trajectory.csv")
    for view in (df, csv):
        assert list(view["param_counts"]) == [t.params["counts"] for t in told]
        assert list(view["param_index"]) == [t.params["index"] for t in told]
        assert list(view["metric_counts"]) == [9.0] * 3 and list(view["metric_index"]) == [4.0] * 3
    assert df["counts"].dtype == bool and "counts" not in csv and "index" not in csv


def test_load_reads_only_and_never_imports_the_objective(tmp_path):
    pkg = tmp_path / "code"
    pkg.mkdir()
    (pkg / "mytrain.py").write_text("def objective(p, ctx):\n    return {'loss': p['x'] ** 2}\n")
    d = tmp_path / "s"
    study = study_dict(objective={"entry": "mytrain:objective"},
                       space={"x": {"values": [-2.0, -1.0, 0.0, 1.0, 2.0]}},
                       search={"algorithm": "axis", "max_trials": 12, "start": {"x": 2.0}})
    out = subprocess.run([sys.executable, "-c", "import sys, autotune as at; "
                          f"at.Study(eval(sys.argv[1]), dir={str(d)!r}).run(progress=False)",
                          repr(study)], cwd=pkg, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr
    (pkg / "mytrain.py").unlink()  # the login node has no training code
    listing = {p: os.stat(os.path.join(d, p)).st_mtime_ns for p in os.listdir(d)}
    code = ("import sys, autotune as at; v = at.load(sys.argv[1]); "
            "df = v.trials_dataframe(); s = v.setting; v.summary(); "
            "print(len(df), s['params'], s['mean'], 'mytrain' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(d)], cwd=tmp_path, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr
    n, *rest = out.stdout.split()
    assert int(n) >= 5 and rest[-1] == "False"
    assert "{'x': 0.0}" in out.stdout and " 0.0 " in out.stdout  # the axis search's setting
    assert {p: os.stat(os.path.join(d, p)).st_mtime_ns for p in os.listdir(d)} == listing


def test_a_study_not_started_yet_has_an_empty_frame_with_its_columns(tmp_path):
    """Optuna's trials_dataframe() of a new study is empty, not an error; a loop that looks
    at the frame before its first trial must not need a try. load() says why it cannot."""
    d = tmp_path / "s"
    with _own_loop(tmp_path, search={"max_trials": 2}) as study:
        empty = study.trials_dataframe()
        assert len(empty) == 0 and not d.exists()
        with pytest.raises(StudyError, match=r"^study t: nothing recorded yet in .*/s \(run\(\) "
                                             r"or ask\(\) starts it\)$"):
            study.load()
        study.tell(study.ask(), 1.0)
        full = study.trials_dataframe()
    assert list(empty.columns) == list(full.columns) and dict(empty.dtypes) == dict(full.dtypes)


def test_load_of_a_missing_study_is_a_study_error(tmp_path):
    with pytest.raises(StudyError, match="no such study directory"):
        at.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudyError, match="no history.jsonl"):
        at.load(tmp_path / "empty")


def test_a_directory_that_is_no_path_or_a_file_is_a_study_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a study")
    with pytest.raises(StudyError, match="is a file, expected a study directory"):
        at.load(tmp_path / "notes.txt")
    with pytest.raises(StudyError, match=r"^directory: expected a path .* got NoneType$"):
        at.load(None)
    with pytest.raises(StudyError, match=r"^dir: expected a path .* got int$"):
        at.Study(study_dict(), dir=5)
    with pytest.raises(StudyError, match=r"^dir: expected a path, got an empty string$"):
        at.Study(study_dict(), dir="")
    assert at.Study(study_dict(), dir=tmp_path / "s").dir == str(tmp_path / "s")


def test_setting_is_none_where_the_search_reports_none(tmp_path):
    d = str(tmp_path / "s")
    assert at.Study(study_dict(), dir=d).run(progress=False).setting is None


# ---- a Python function as the objective ------------------------------------------------------
@pytest.mark.parametrize("kind", ["inline", "simulated", "local"])
def test_a_closure_runs_as_the_objective(tmp_path, kind):
    centre = 0.75  # captured by value: the local worker has no access to this frame

    def objective(params, ctx):
        return {"loss": (params["x"] - centre) ** 2, "cost_s": 2.0}

    d = str(tmp_path / kind)
    view = at.Study(study_dict(objective={"entry": objective}, search={"max_trials": 4},
                               executor={"kind": kind, "max_concurrent": 2}),
                    dir=d).run(progress=False)
    df = view.trials_dataframe()
    assert list(df["status"]) == ["ok"] * 4
    assert (df["loss"] - (df["x"] - centre) ** 2).abs().max() < 1e-12
    assert history(d).study["config"]["objective"]["entry"] == "autotune.callables:call"
    assert (df["cost_s"] == 2.0).all()  # the cost the function reported
    assert (kind == "simulated") == ((df["end_s"] - df["start_s"]).round(6) == 2.0).all()


@pytest.mark.xdist_group("slurm")  # one node, shared with the other SLURM tests
def test_a_closure_runs_as_slurm_jobs(tmp_path):
    from autotune.executors.slurm_query import slurm_reachable

    if not slurm_reachable():
        pytest.skip("no SLURM reachable; start a local one with: bash scripts/slurm-local.sh start")
    scale = 3.0

    def objective(params, ctx):
        return {"loss": scale * (params["x"] - 0.5) ** 2}

    view = at.Study(study_dict(objective={"entry": objective}, search={"max_trials": 2},
                               executor={"kind": "slurm", "max_concurrent": 2, "time_limit_min": 10,
                                         "gpus_per_job": 0, "poll_s": 0.5}),
                    dir=str(tmp_path / "s")).run(progress=False)
    df = view.trials_dataframe()
    assert list(df["status"]) == ["ok", "ok"] and df["job_id"].str.isdigit().all()
    assert (df["loss"] - scale * (df["x"] - 0.5) ** 2).abs().max() < 1e-12


def test_a_function_may_return_just_the_number(tmp_path):
    view = at.Study(study_dict(objective={"entry": lambda p, ctx: abs(p["x"]), "metric": "err"}),
                    dir=str(tmp_path / "s")).run(progress=False)
    df = view.trials_dataframe()
    assert (df["err"] == df["x"].abs()).all() and view.metric == "err"


@pytest.mark.parametrize("kind", ["inline", "local"])
def test_a_function_returning_no_number_nor_dict_is_told_it_may_return_either(tmp_path, kind):
    """A function may return the metric's value alone: its failure must not say that only a
    dict of metrics will do. A Mapping that is no dict is taken as one."""
    from types import MappingProxyType

    raw = study_dict(search={"max_trials": 2}, executor={"kind": kind}, max_failures=0)
    raw["objective"] = {"entry": lambda params, ctx: None, "metric": "loss"}
    with pytest.raises(at.StudyStopped):
        at.Study(raw, dir=str(tmp_path / "none")).run(progress=False)
    assert {t.error for t in at.load(str(tmp_path / "none")).trials} == {
        "TypeError: objective returned NoneType, expected a dict of metrics or a number "
        "(the value of 'loss')"}
    raw["objective"] = {"entry": lambda p, c: MappingProxyType({"loss": 1.0}), "metric": "loss"}
    assert at.Study(raw, dir=str(tmp_path / "proxy")).run(progress=False).best.value == 1.0


@pytest.mark.parametrize("kind", ["inline", "local"])
def test_a_function_may_return_numpy_scalars(tmp_path, kind):
    np = pytest.importorskip("numpy")

    def as_dict(params, ctx):
        return {"loss": np.float32(abs(params["x"])), "n": np.int64(2), "z": np.array(0.5)}

    def bare(params, ctx):
        return np.float32(abs(params["x"]))

    for objective in (as_dict, bare):
        d = str(tmp_path / f"{kind}-{objective.__name__}")
        view = at.Study(study_dict(objective={"entry": objective}, search={"max_trials": 2},
                                   executor={"kind": kind}), dir=d).run(progress=False)
        df = view.trials_dataframe()
        assert list(df["status"]) == ["ok", "ok"], list(df["error"])
        assert ((df["loss"] - df["x"].abs()).abs() < 1e-6).all()
        assert all(type(r.value) is float for r in history(d).trials.values())
        if objective is as_dict:
            assert list(df["n"]) == [2.0, 2.0] and list(df["z"]) == [0.5, 0.5]


def test_a_huge_value_beside_the_metric_is_noted_by_size_and_the_small_ones_kept(tmp_path):
    """A returned array the size of an image would be read back by every resume; the
    history keeps a note of its size instead, and the small values a table shows."""
    def objective(params, ctx):
        return {"loss": params["x"], "tag": "abc", "curve": list(range(50_000)),
                "grid": [[0.5] * 100] * 100}

    d = str(tmp_path / "s")
    at.Study(study_dict(objective={"entry": objective}, space={"x": {"values": [0, 1]}},
                        search={"algorithm": "grid"}, executor={"kind": "inline"}),
             dir=d).run(progress=False)
    for rec in history(d).trials.values():
        assert rec.status == "ok" and rec.extra["tag"] == "abc"
        assert rec.extra["grid"] == [[0.5] * 100] * 100          # 40 KB: kept
        assert rec.extra["curve"].startswith("not recorded: 338,890 bytes of JSON, over the "
                                             "64 KB")
    with open(os.path.join(d, "history.jsonl"), "rb") as f:
        assert max(len(line) for line in f) < 70_000


@pytest.mark.parametrize("kind", ["inline", "local"])
def test_nested_numpy_values_of_a_result_are_recorded_as_plain_json(tmp_path, kind):
    """Inside lists and mappings too: numpy scalars as numbers, arrays as lists; the result's
    values that are no metric are recorded beside the metrics, not dropped or stringified."""
    np = pytest.importorskip("numpy")

    def objective(params, ctx):
        return {"loss": np.float64(1.0) + params["x"],
                "extra": {"a": np.float32(2.0), "v": np.array([1, 2]),
                          "m": [np.float64(0.5), {"q": np.int32(4)}], np.int64(7): "seven"},
                "pair": (np.int64(1), np.float16(2.5)), "ok": np.bool_(True), "tag": "abc"}

    d = str(tmp_path / kind)
    view = at.Study(study_dict(objective={"entry": objective}, space={"x": {"values": [0, 1]}},
                               search={"algorithm": "grid"}, executor={"kind": kind}),
                    dir=d).run(progress=False)
    extra = {"a": 2.0, "v": [1, 2], "m": [0.5, {"q": 4}], "7": "seven"}
    for rec in history(d).trials.values():
        assert rec.status == "ok", rec.error
        assert rec.extra == {"extra": extra, "pair": [1, 2.5], "ok": True, "tag": "abc"}
        assert type(rec.extra["extra"]["a"]) is float and type(rec.extra["extra"]["v"][0]) is int
    df = view.trials_dataframe()
    assert list(df["extra"]) == [extra, extra] and list(df["pair"]) == [[1, 2.5], [1, 2.5]]
    assert list(df["ok"]) == [True, True] and list(df["tag"]) == ["abc", "abc"]
    assert list(df["loss"]) == [1.0, 2.0]
    csv = pd.read_csv(os.path.join(d, "trajectory.csv"))
    assert csv["extra"][0] == '{"a": 2.0, "v": [1, 2], "m": [0.5, {"q": 4}], "7": "seven"}'


def test_a_result_value_that_cannot_be_stored_fails_the_trial_naming_its_key(tmp_path):
    np = pytest.importorskip("numpy")

    def objective(params, ctx):
        return {"loss": 1.0, "extra": {"v": np.array([1]), "when": {1, 2}}}

    with pytest.raises(at.StudyStopped):
        at.Study(study_dict(objective={"entry": objective}, search={"max_trials": 2},
                            executor={"kind": "local"}), dir=str(tmp_path / "s")).run(progress=False)
    errors = {r.error for r in history(str(tmp_path / "s")).trials.values()}
    assert errors == {"TypeError: result key 'extra.when': a set cannot be stored as JSON "
                      "(expected numbers, strings, booleans, None, paths, lists, dicts or arrays)"}


def test_tell_records_nested_numpy_values_as_plain_json_and_refuses_what_json_cannot_hold(
        tmp_path):
    np = pytest.importorskip("numpy")
    study = at.Study(study_dict(objective={"metric": "loss"}, search={"max_trials": 2}),
                     dir=str(tmp_path / "s"))
    with study:
        trial = study.ask()
        with pytest.raises(StudyError, match=r"tell: the result of trial 0: result key "
                                             r"'extra.f': a set cannot be stored"):
            study.tell(trial, {"loss": 1.0, "extra": {"f": {1}}})
        study.tell(trial, {"loss": np.float32(1.0), "extra": {"v": np.arange(2)}})
    rec = history(str(tmp_path / "s")).trials[0]
    assert rec.value == 1.0 and rec.extra == {"extra": {"v": [0, 1]}}


def test_a_run_its_executor_refuses_writes_no_function_into_a_new_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    d = tmp_path / "s"

    def objective(params, ctx):
        return {"loss": params["x"] ** 2}

    raw = study_dict(objective={"entry": objective}, executor={"kind": "local", "gpus_per_trial": 1})
    with pytest.raises(StudyError, match=r"^executor.gpus_per_trial: "):
        at.Study(raw, dir=str(d)).run(progress=False)
    assert not d.exists()  # not even objective.pkl: nothing was started there
    raw["executor"] = {"kind": "local"}
    assert at.Study(raw, dir=str(d)).run(progress=False).counts() == {"ok": 10}


def test_an_unpicklable_function_runs_inline_and_is_refused_for_local(tmp_path):
    lock = threading.Lock()

    def objective(params, ctx):
        with lock:
            return {"loss": params["x"] ** 2}

    at.Study(study_dict(objective={"entry": objective}), dir=str(tmp_path / "a")).run(progress=False)
    with pytest.raises(StudyError, match=r"objective: the function .*objective' cannot be sent to "
                                         r"a trial process for executor 'local' \(TypeError"):
        at.Study(study_dict(objective={"entry": objective}, executor={"kind": "local"}),
                 dir=str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()


def test_a_failing_function_is_a_failed_trial(tmp_path):
    def objective(params, ctx):
        raise ValueError("diverged")

    with pytest.raises(at.StudyStopped, match="every trial failed .most often: ValueError: "
                       "diverged") as stopped:
        at.Study(study_dict(objective={"entry": objective}, search={"max_trials": 2},
                            executor={"kind": "local"}), dir=str(tmp_path / "s")).run(progress=False)
    df = stopped.value.view.trials_dataframe()
    assert list(df["status"]) == ["failed", "failed"]
    assert df["error"].str.contains("ValueError: diverged").all()


@pytest.mark.parametrize("kind", ["inline", "simulated", "local"])
def test_a_function_calling_sys_exit_fails_its_trial_under_every_executor(tmp_path, kind):
    def objective(params, ctx):
        if params["x"] > 0:
            sys.exit(2)  # argparse's way out of a bad option
        return {"loss": params["x"] ** 2}

    study = at.Study(study_dict(objective={"entry": objective}, search={"max_trials": 6},
                                executor={"kind": kind}, max_failures=0), dir=str(tmp_path / "s"))
    df = study.run(progress=False).trials_dataframe()
    assert len(df) == 6 and set(df["status"]) == {"ok", "failed"}
    assert (df.loc[df["status"] == "failed", "error"] == "SystemExit: 2").all()


# ---- ask / tell --------------------------------------------------------------------------------
def _own_loop(tmp_path, **over) -> at.Study:
    raw = study_dict(**over)
    raw["objective"] = {"metric": "loss"}
    return at.Study(raw, dir=str(tmp_path / "s"))


def test_ask_and_tell_are_journaled_like_any_trial(tmp_path):
    d = str(tmp_path / "s")
    raw = study_dict(search={"max_trials": 5})
    raw["objective"] = {"metric": "loss"}  # no entry: trials are run by the loop below
    with at.Study(raw, dir=d) as study:
        told = []
        while (trial := study.ask()) is not None:
            assert set(trial.params) == {"x", "y"} and trial.ctx.trial == trial.number
            if trial.number == 3:
                study.tell(trial, error=RuntimeError("out of memory"))
            else:
                told.append(study.tell(trial, {"loss": trial.params["x"] ** 2, "acc": 0.5}))
    assert [r.status for r in told] == ["ok"] * 4
    h = history(d)
    assert [r.status for r in h.trials.values()] == ["ok", "ok", "ok", "failed", "ok"]
    assert h.trials[3].error == "RuntimeError: out of memory"
    assert all(r.job_id == "external" and r.end_s >= r.start_s for r in h.trials.values())
    df = at.load(d).trials_dataframe()
    assert list(df["acc"].dropna()) == [0.5] * 4
    out = cli("status", d)
    assert "4 ok, 1 failed" in out.stdout, out.stdout
    assert os.path.exists(os.path.join(d, "trajectory.csv"))


def test_a_trials_number_is_the_same_in_every_view(tmp_path):
    """Trial.number (Optuna's name), the records' .trial (and .number), ctx.trial, the
    DataFrame's and trajectory.csv's trial column, trials/<number>/ and status's "trial N"."""
    d = str(tmp_path / "s")
    with _own_loop(tmp_path, search={"max_trials": 3}) as study:
        for value in (3.0, 1.0, 2.0):
            trial = study.ask()
            rec = study.tell(trial, value)
            assert trial.number == trial.ctx.trial == rec.trial == rec.number
            assert os.path.basename(trial.ctx.trial_dir) == str(trial.number)
    df = study.trials_dataframe()
    assert list(df["trial"]) == [t.number for t in at.load(d).trials] == [0, 1, 2]
    assert list(pd.read_csv(os.path.join(d, "trajectory.csv"))["trial"]) == [0, 1, 2]
    assert at.load(d).best.number == 1 and "best loss: 1 at trial 1" in cli("status", d).stdout


def test_trajectory_csv_shows_told_trials_while_the_loop_goes_on(tmp_path, monkeypatch):
    import autotune.driver

    monkeypatch.setattr(autotune.driver, "TRAJECTORY_EVERY_S", 0.0)
    d = tmp_path / "s"
    raw = study_dict(search={"max_trials": 4})
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=str(d)) as study:
        for value in (1.0, 2.0):
            study.tell(study.ask(), value)
            csv = pd.read_csv(d / "trajectory.csv")  # read mid-loop, before close()
            assert list(csv["loss"]) == [1.0, 2.0][: len(csv)] and len(csv) == value


def test_an_interrupted_loop_gets_its_untold_trials_back_first(tmp_path):
    d = str(tmp_path / "s")
    raw = study_dict(search={"max_trials": 4})
    raw["objective"] = {"metric": "loss"}
    study = at.Study(raw, dir=d)
    a, b = study.ask(), study.ask()
    study.tell(a, 1.0)
    study.close()  # as if the notebook kernel died here: b was asked and never told
    again = at.Study(raw, dir=d)
    c = again.ask()
    assert c.number == b.number and c.params == b.params
    again.tell(c, 2.0)
    assert again.ask().number == 2
    again.close()
    assert history(d).trials[b.number].value == 2.0


def test_an_untold_trial_handed_out_again_is_a_new_start_not_the_gap(tmp_path):
    """A trial an earlier loop left untold runs again when the next session's ask() hands it
    out: a new start (attempts 2, as a run() resuming it records), its cost from there, not
    the hours the notebook lay dead (which max_compute_s would have spent)."""
    import time

    d = str(tmp_path / "s")
    raw = study_dict(search={"max_trials": 4})
    raw["objective"] = {"metric": "loss"}
    study = at.Study(raw, dir=d)
    study.ask()
    study.close()  # the kernel died: trial 0 asked, never told
    time.sleep(1.0)
    with at.Study(raw, dir=d) as again:
        told = again.tell(again.ask(), 1.0)
    assert told.number == 0 and told.starts == 2 and told.cost_s < 0.5, told
    assert at.load(d).trials_dataframe()["attempts"].tolist() == [2]


def _stops_at_trial_1(params, ctx):
    if ctx.trial == 1:
        raise KeyboardInterrupt  # inline: Ctrl-C while trial 1 runs
    return {"loss": 1.0}


def test_a_loop_of_ones_own_runs_again_what_a_stopped_run_left_interrupted(tmp_path):
    """A study run() was stopped in, continued from Python with ask/tell: the trial it left
    interrupted was never handed out, and stayed interrupted however long the loop went."""
    d = str(tmp_path / "s")
    raw = study_dict(search={"max_trials": 3})
    raw["objective"] = {"entry": _stops_at_trial_1, "metric": "loss"}
    with pytest.raises(KeyboardInterrupt, match=r"^study t interrupted; run\(\) again to resume"):
        at.Study(raw, dir=d).run(progress=False)  # said as for a Ctrl-C the driver caught
    assert at.load(d).counts() == {"ok": 1, "interrupted": 1}
    with at.Study(raw, dir=d) as study:
        with pytest.raises(StudyError, match=r"^tell: trial 1 was started by run\(\), not "
                                             r"handed out by ask\(\); ask\(\) hands it out"):
            study.tell(1, 0.5)
        again = study.ask()
        assert again.number == 1 and again.ctx.trial == 1 and study.open_trials == [1]
        study.tell(again, 0.5)
        study.tell(study.ask(), 0.25)
        assert study.ask() is None and study.finished
    df = at.load(d).trials_dataframe()
    assert list(df["status"]) == ["ok"] * 3 and list(df["attempts"]) == [1, 2, 1]
    assert list(df["job_id"]) == ["inline-0", "external", "external"]


def test_threads_sharing_one_study_take_turns(tmp_path):
    """A pool of workers asking and telling on one Study: each thread's first ask() opened a
    session of its own, and all but one were refused as another Study holding the directory."""
    study = _own_loop(tmp_path, search={"max_trials": 24})
    start, numbers, errors = threading.Barrier(4), [], []

    def worker() -> None:
        start.wait()
        try:
            while (trial := study.ask()) is not None:
                numbers.append(trial.number)
                study.tell(trial, trial.params["x"] ** 2)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    study.close()
    assert errors == [] and sorted(numbers) == list(range(24))
    assert at.load(str(tmp_path / "s")).counts() == {"ok": 24}


def test_tell_mistakes_are_study_errors(tmp_path):
    raw = study_dict(search={"max_trials": 3})
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=str(tmp_path / "s")) as study:
        t = study.ask()
        with pytest.raises(StudyError, match="expected a number or a dict"):
            study.tell(t, "good")
        with pytest.raises(StudyError, match="trial 99 is unknown"):
            study.tell(99, 1.0)
        with pytest.raises(StudyError, match=r"^tell: expected a Trial or a trial number, got "
                                             r"TrialRecord\(trial=0, .{30,50}\.\.\. \(its \.trial "
                                             r"is the number\)$"):
            study.tell(study.load().trials[0], 1.0)  # a record, as load() gives it: kept short
        study.tell(t, 0.5)
        with pytest.raises(StudyError, match="already finished"):
            study.tell(t, 0.5)
        with pytest.raises(StudyError, match="no entry, command or function"):
            study.run()


def test_a_trial_of_another_study_is_refused_and_records_nothing(tmp_path):
    raw = study_dict(search={"max_trials": 3})
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=str(tmp_path / "a")) as a, at.Study(raw, dir=str(tmp_path / "b")) as b:
        from_a, from_b = a.ask(), b.ask()
        assert from_a.number == from_b.number == 0
        with pytest.raises(StudyError, match=r"tell: trial 0 was asked from the study in "
                                             r".*/a, not this one \(.*/b\); tell it to that study"):
            b.tell(from_a, 1.0)
        assert b.tell(from_b, 2.0).value == 2.0  # b's own trial 0 was still open
        assert a.tell(from_a, 1.0).value == 1.0


def test_telling_a_finished_trial_again_says_so_whatever_the_result(tmp_path):
    raw = study_dict(search={"max_trials": 3})
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=str(tmp_path / "s")) as study:
        t = study.ask()
        study.tell(t, 0.5)
        for again in ({"acc": 1.0}, None, "good"):  # not "no metric" or "expected a number"
            with pytest.raises(StudyError, match="trial 0 is already finished"):
                study.tell(t, again)


def test_tell_takes_numpy_and_torch_scalars_and_numpy_trial_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    raw = study_dict(search={"max_trials": 6})
    raw["objective"] = {"metric": "loss"}
    results = [np.float32(0.5), np.float64(0.25), np.int64(3), np.array(0.125),
               {"loss": np.float32(1.5), "acc": np.float16(0.5)}]
    try:
        import torch
        results.append(torch.tensor(0.75))
    except ImportError:
        results.append(0.75)
    with at.Study(raw, dir=str(tmp_path / "s")) as study:
        for i, result in enumerate(results):
            t = study.ask()
            rec = study.tell(np.int64(t.number) if i % 2 else t, result)
            assert rec.status == "ok" and type(rec.value) is float
    h = history(str(tmp_path / "s"))
    assert [r.value for r in h.trials.values()] == [0.5, 0.25, 3.0, 0.125, 1.5, 0.75]
    assert h.trials[4].metrics == {"loss": 1.5, "acc": 0.5}


@pytest.mark.parametrize("bad", ["True", "np.bool_(True)", "np.array([0.5, 0.5])", "1 + 2j"])
def test_tell_refuses_what_is_no_real_number(tmp_path, bad):
    import numpy as np

    raw = study_dict(search={"max_trials": 3})
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=str(tmp_path / "s")) as study:
        t = study.ask()
        with pytest.raises(StudyError, match="expected a number or a dict"):
            study.tell(t, eval(bad))
        with pytest.raises(StudyError, match="expected a Trial or a trial number"):
            study.tell(np.float64(t.number), 0.5)
        assert study.tell(t, 0.5).status == "ok"  # nothing was recorded by the refusals


def test_tell_refuses_a_result_without_the_metric_or_with_an_error_and_records_nothing(tmp_path):
    d = str(tmp_path / "s")
    raw = study_dict(search={"max_trials": 3})
    raw["objective"] = {"metric": "loss"}
    journal = os.path.join(d, "history.jsonl")
    with at.Study(raw, dir=d) as study:
        t = study.ask()
        with open(journal) as fh:
            before = fh.read()
        with pytest.raises(StudyError, match=r"tell: the result of trial 0 has no metric 'loss' "
                                             r"\(it gives: acc, top5\)"):
            study.tell(t, {"acc": 1.0, "top5": 0.5})
        with pytest.raises(StudyError, match=r"no metric 'loss'; did you mean 'Loss'\? "
                                             r"\(it gives: Loss\)"):
            study.tell(t, {"Loss": 1.0})
        with pytest.raises(StudyError, match=r"metric 'loss' is not a number: 'low'"):
            study.tell(t, {"loss": "low"})
        with pytest.raises(StudyError, match=r"tell: trial 0: give a result or error=..., not both"):
            study.tell(t, 0.5, error="boom")
        with open(journal) as fh:
            assert fh.read() == before  # nothing recorded
        assert study.tell(t, {"loss": 0.25, "acc": 1.0}).status == "ok"  # still open
        nan = study.tell(study.ask(), {"loss": float("nan")})  # a NaN is data: a failed trial
        assert nan.status == "failed" and nan.error == "metric 'loss' is nan"
    assert history(d).trials[0].value == 0.25


def test_a_held_directory_is_busy_for_a_second_study(tmp_path):
    d = str(tmp_path / "s")
    with at.Study(study_dict(), dir=d) as study:
        study.ask()
        with pytest.raises(StudyBusy, match=f"is held by this same process, pid {os.getpid()} .*another Study "
                                            "object") as exc:
            at.Study(study_dict(), dir=d).run(progress=False)
        assert "being run by" not in str(exc.value)
        with pytest.raises(at.StudyError, match="this same process"):  # the README's promise
            at.Study(study_dict(), dir=d).ask()
    at.Study(study_dict(), dir=d).run(progress=False)  # released: the told-never trial runs
    assert [r.status for r in history(d).trials.values()] == ["ok"] * 10


@pytest.mark.parametrize("with_function", [False, True])
def test_a_study_dropped_with_its_loop_open_frees_the_directory(tmp_path, with_function):
    """A notebook cell that builds the study and asks, run twice: the first Study is no
    longer referenced, so its lock goes with it and the new one gets the untold trial back."""
    raw = study_dict(search={"max_trials": 3})
    raw["objective"] = ({"entry": lambda params, ctx: 0.0, "metric": "loss"} if with_function
                        else {"metric": "loss"})
    study = at.Study(raw, dir=str(tmp_path / "s"))
    first = study.ask()
    study = at.Study(raw, dir=str(tmp_path / "s"))  # the cell again: the old object is dropped
    again = study.ask()
    assert again.number == first.number == 0
    study.close()


def test_run_after_ask_finishes_the_study_with_the_executor(tmp_path):
    d = str(tmp_path / "s")
    study = at.Study(study_dict(search={"max_trials": 4}), dir=d)
    study.tell(study.ask(), {"loss": 9.0})
    view = study.run(progress=False)  # the ask/tell session is closed first
    df = view.trials_dataframe()
    assert len(df) == 4 and df.loc[0, "job_id"] == "external" and df.loc[0, "value"] == 9.0
    assert df["job_id"].iloc[1:].str.startswith("inline-").all()
    assert isinstance(df, pd.DataFrame)


FIXED = {"now": False}


def _fails_until_fixed(params, ctx):
    if not FIXED["now"]:
        raise RuntimeError(f"diverged at x={params['x']}")
    return {"loss": float(params["x"])}


def test_a_run_with_nothing_to_use_raises_study_stopped_and_retry_failed_runs_them_again(
        tmp_path):
    """A script must not take a failed study for a finished one (the CLI exits 4)."""
    d = str(tmp_path / "failing")
    FIXED["now"] = False

    def make():
        return at.Study(name="failing", dir=d,
                        objective={"entry": _fails_until_fixed, "metric": "loss"},
                        space={"x": {"values": list(range(5))}},
                        search={"algorithm": "grid"}, max_failures=3, executor={"kind": "inline"})

    with pytest.raises(at.StudyStopped, match=r"the first 3 trials to end all failed "
                       r"\(max_failures\) \(most often: RuntimeError: diverged at x=") as stop:
        make().run(progress=False)
    assert stop.value.reason == "failing" and not isinstance(stop.value, StudyError)
    assert [t.status for t in stop.value.view.trials] == ["failed"] * 3
    assert "run(retry_failed=True)" in str(stop.value)
    with pytest.raises(at.StudyStopped, match="every trial failed") as again:
        make().run(progress=False)        # the other two run, and fail too
    assert again.value.reason == "all failed" and len(again.value.view.trials) == 5
    FIXED["now"] = True
    view = make().run(progress=False, retry_failed=True)
    assert sorted(t.value for t in view.trials if t.status == "ok") == [0.0, 1.0, 2.0, 3.0, 4.0]


def _square(params, ctx):
    return {"loss": params["x"] ** 2}


def _shifted(params, ctx):
    return {"loss": 100 + params["x"]}


def test_another_function_in_the_same_directory_is_refused_unless_accepted(tmp_path):
    """Every function study's entry is the same: the shipped function tells them apart."""
    d = str(tmp_path / "swap")

    def study(func, n):
        return at.Study(name="swap", dir=d, objective={"entry": func, "metric": "loss"},
                        space={"x": {"low": -1.0, "high": 1.0}},
                        search={"algorithm": "random", "max_trials": n},
                        executor={"kind": "local", "max_concurrent": 1})

    study(_square, 2).run(progress=False)
    with pytest.raises(StudyError, match=r"objective.entry: .* was started with the function "
                       r"'tests.test_api:_square', this study runs 'tests.test_api:_shifted'; "
                       r"results would mix: use another dir=, or "
                       r"run\(accept_objective_change=True\)"):
        study(_shifted, 4).run(progress=False)
    assert len(at.load(d).trials) == 2                       # nothing ran
    view = study(_shifted, 3).run(progress=False, accept_objective_change=True)
    assert view.trials[2].value > 99


def test_an_ask_tell_study_may_then_run_its_function_and_the_other_way_round(tmp_path):
    d = str(tmp_path / "mixed")
    space = {"x": {"low": -1.0, "high": 1.0}}
    with at.Study(name="mixed", dir=d, objective={"metric": "loss"}, space=space,
                  search={"algorithm": "random", "max_trials": 2}) as own:
        trial = own.ask()
        own.tell(trial, _square(trial.params, None))
    view = at.Study(name="mixed", dir=d, objective={"entry": _square, "metric": "loss"},
                    space=space, search={"algorithm": "random", "max_trials": 3},
                    executor={"kind": "inline"}).run(progress=False)
    assert [t.status for t in view.trials] == ["ok"] * 3
    with at.Study(name="mixed", dir=d, objective={"metric": "loss"}, space=space,
                  search={"algorithm": "random", "max_trials": 4}) as own:
        trial = own.ask()
        own.tell(trial, 0.5)
    assert len(at.load(d).trials) == 4


def test_a_function_study_resumed_from_a_study_file_names_what_it_was(tmp_path):
    d = str(tmp_path / "fn")
    at.Study(name="fn", dir=d, objective={"entry": _square, "metric": "loss"},
             space={"x": {"low": -1.0, "high": 1.0}},
             search={"algorithm": "random", "max_trials": 1},
             executor={"kind": "inline"}).run(progress=False)
    path = write_study(str(tmp_path / "fn.yaml"), study_dict(
        name="fn", space={"x": {"low": -1.0, "high": 1.0}},
        search={"algorithm": "random", "max_trials": 2}, executor={"kind": "inline"}))
    out = cli("run", path, "--dir", d)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "was started with 'a Python function'" in out.stderr
    assert "autotune.callables" not in out.stderr


def test_a_batch_searcher_hands_out_whole_batches_to_a_loop_of_ones_own(tmp_path):
    """axis-radial plans rounds of max_concurrent points: asked one at a time, a round would
    be one trial long. The loop gets the whole batch before it has to tell anything."""
    space = {"x": {"values": list(range(10))}, "y": {"values": list(range(10))}}
    with at.Study(name="rounds", dir=str(tmp_path / "r"), objective={"metric": "loss"},
                  space=space, search={"algorithm": "axis-radial", "max_trials": 30},
                  executor={"kind": "local", "max_concurrent": 4}) as own:
        sizes = []
        for _ in range(3):
            batch = []
            while (trial := own.ask()) is not None:
                batch.append(trial)
            sizes.append(len(batch))
            for t in batch:
                own.tell(t, (t.params["x"] - 3) ** 2 + (t.params["y"] - 6) ** 2)
    assert sizes == [4, 4, 4]
    assert len({t.trial for t in at.load(str(tmp_path / "r")).trials}) == 12


def test_ask_none_says_whether_the_study_ended_or_waits_for_the_trials_held(tmp_path):
    """ask() gives None both when the study has ended and when the search waits for results:
    ``finished``, ``end_reason`` and ``open_trials`` tell a loop which, and why."""
    space = {"x": {"values": list(range(10))}, "y": {"values": list(range(10))}}
    waits = at.Study(name="rounds", dir=str(tmp_path / "r"), objective={"metric": "loss"},
                     space=space, search={"algorithm": "axis-radial", "max_trials": 30},
                     executor={"kind": "local", "max_concurrent": 3})
    assert not waits.finished and not os.path.exists(tmp_path / "r")  # reading made nothing
    with waits:
        batch = [waits.ask() for _ in range(3)]
        assert waits.ask() is None and not waits.finished and waits.end_reason == ""
        assert waits.open_trials == [t.number for t in batch] == [0, 1, 2]
        waits.tell(batch[0], 1.0)
        assert waits.open_trials == [1, 2]

    with _own_loop(tmp_path / "t", search={"max_trials": 2}) as study:
        a, b = study.ask(), study.ask()
        assert study.ask() is None and study.finished and study.open_trials == [0, 1]
        assert study.end_reason == "max_trials (2) reached"
        study.tell(a, 1.0), study.tell(b, 2.0)
    journal = tmp_path / "t" / "s" / "history.jsonl"
    with _own_loop(tmp_path / "t", search={"max_trials": 2}) as holder:
        holder.ask()  # holds the directory: reading takes no lock
        before = journal.read_bytes()
        assert study.finished and study.end_reason == "max_trials (2) reached"
        assert journal.read_bytes() == before  # and writes nothing (no resume record)
    with _own_loop(tmp_path / "u", search={"max_trials": 1}) as study:
        study.ask()  # never told: the next session's ask() hands it out again
    assert not study.finished and study.end_reason == ""

    with _own_loop(tmp_path / "c", search={"max_trials": 10, "max_compute_s": 50}) as study:
        study.tell(study.ask(), {"loss": 1.0, "cost_s": 60})  # a reported cost counts
        assert study.ask() is None and study.finished and study.open_trials == []
        assert study.end_reason == "max_compute_s (50 s) spent (60.0 s)"

    grid = {"x": {"values": [0.0, 1.0]}, "y": {"values": [0.0]}}
    with _own_loop(tmp_path / "g", space=grid, search={"algorithm": "grid",
                                                        "max_trials": None}) as study:
        study.ask(), study.ask()
        assert study.ask() is None and study.finished
        assert study.end_reason.startswith("the search ended: the grid's 2 points")

    with _own_loop(tmp_path / "n") as study:  # a searcher with nothing to propose, ever
        study.tell(study.ask(), 1.0)
        study._session().searcher.ask = lambda n: []
        assert study.ask() is None and study.finished
        assert study.end_reason == "the search has nothing more to propose"


def test_failure_messages_never_end_in_a_bare_colon_or_come_out_empty(tmp_path):
    raw = study_dict(search={"max_trials": 3})
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=str(tmp_path / "s")) as study:
        a, b, c = study.ask(), study.ask(), study.ask()
        assert study.tell(a, error=ValueError()).error == "ValueError"
        assert study.tell(b, error="  ").error == "failed (tell gave an empty error message)"
        assert study.tell(c, error=KeyError("lr")).error == "KeyError: 'lr'"


def _diverge(lr: float) -> None:
    raise FloatingPointError(f"loss diverged at lr={lr}")


def test_a_told_exception_keeps_its_traceback_where_status_shows_it(tmp_path):
    """The loop's own exception, caught and told: its message alone does not say where it
    was raised; status shows the traceback's last lines, as for a trial that raised."""
    d = str(tmp_path / "s")
    raw = study_dict(search={"max_trials": 2})
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=d) as study:
        first, second = study.ask(), study.ask()
        try:
            _diverge(first.params["x"])
        except FloatingPointError as exc:
            study.tell(first, error=exc)
        study.tell(second, error=ValueError("never raised"))  # no traceback to keep
    kept = open(os.path.join(d, "trials", "0", "traceback.txt")).read()
    assert "in _diverge" in kept and kept.rstrip().endswith("loss diverged at lr="
                                                             f"{first.params['x']}")
    assert not os.path.exists(os.path.join(d, "trials", "1", "traceback.txt"))
    out = cli("status", d).stdout
    assert "traceback.txt" in out and "in _diverge" in out, out


def test_an_objective_raising_an_empty_exception_is_named_by_its_type(tmp_path):
    def objective(params, ctx):
        raise RuntimeError()

    raw = study_dict(search={"max_trials": 2}, executor={"kind": "inline"})
    raw["objective"] = {"entry": objective, "metric": "loss"}
    with pytest.raises(at.StudyStopped):
        at.Study(raw, dir=str(tmp_path / "s")).run(progress=False)
    assert {t.error for t in at.load(str(tmp_path / "s")).trials} == {"RuntimeError"}


@pytest.mark.parametrize("flag", ["progress", "retry_failed", "accept_objective_change"])
def test_run_switches_must_be_true_or_false(tmp_path, flag):
    d = tmp_path / "s"
    with pytest.raises(StudyError, match=rf"run: {flag} must be True or False, got 'no'"):
        at.Study(study_dict(search={"max_trials": 2}), dir=str(d)).run(**{flag: "no"})
    assert not d.exists() or not any(d.iterdir())  # refused before anything was written


# ---- Optuna's names ---------------------------------------------------------------------------
def test_optunas_minimize_and_maximize_are_read_as_min_and_max_from_python_and_the_cli(tmp_path):
    """objective.mode 'maximize' (Optuna's direction word) was refused as no mode."""
    d = str(tmp_path / "s")
    view = at.Study(study_dict(objective={"mode": "maximize"}, search={"max_trials": 3}),
                    dir=d).run(progress=False)
    assert view.mode == "max" and view.best.value == max(t.value for t in view.trials)
    # recorded as 'max': a study file saying 'max' resumes it, from the CLI too
    path = write_study(str(tmp_path / "s.yaml"),
                       study_dict(objective={"mode": "max"}, search={"max_trials": 4}))
    out = cli("run", path, "--dir", d, "--quiet")
    assert out.returncode == 0, out.stderr
    path = write_study(str(tmp_path / "m.yaml"), study_dict(objective={"mode": "minimize"},
                                                            search={"max_trials": 2}))
    out = cli("run", path, "--dir", str(tmp_path / "m"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert history(str(tmp_path / "m")).study["identity"]["mode"] == "min"
    with pytest.raises(StudyError, match=r"^objective.mode: expected 'min' or 'max' \(or "
                                         r"'minimize', 'maximize'\), got 'lowest'$"):
        at.Study(study_dict(objective={"mode": "lowest"}))


def test_a_loop_of_ones_own_in_another_process_is_named_as_such_when_busy(tmp_path):
    """The refusal said 'is being run by pid ...' (a driver to wait for) where the holder is an
    ask/tell loop in another process, which only its close() frees."""
    d = str(tmp_path / "s")
    code = ("import sys, autotune as at; from tests.helpers import study_dict\n"
            f"s = at.Study(study_dict(), dir={d!r}); s.ask(); print('held', flush=True)\n"
            "sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": REPO})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StudyBusy, match=rf"^{d} is held by an ask/tell loop in pid "
                                            rf"{holder.pid} on host .*; close\(\) that Study"):
            at.Study(study_dict(), dir=d).run(progress=False)
    finally:
        holder.communicate("", timeout=60)
    at.Study(study_dict(), dir=d).run(progress=False)  # freed by its process's end


def test_a_loop_of_ones_own_is_not_warned_that_the_search_may_run_until_stopped(tmp_path, capsys):
    """run()'s no-budget warning ('may run until stopped (Ctrl-C stops it ...)') was printed
    by an ask/tell session too, whose loop is the caller's and stops where the caller stops."""
    raw = study_dict(search={"max_trials": None})  # no max_trials, no max_compute_s
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=str(tmp_path / "s")) as study:
        study.tell(study.ask(), 1.0)
    assert "until stopped" not in capsys.readouterr().err


def _bowl(params, ctx):
    return {"loss": (params["x"] - 1.0) ** 2 + params["y"]}


_INTERRUPTED: set = set()


def _interrupted_once_at_trial_1(params, ctx):
    if ctx.trial == 1 and ctx.study_dir not in _INTERRUPTED:
        _INTERRUPTED.add(ctx.study_dir)
        raise KeyboardInterrupt  # inline: Ctrl-C while trial 1 runs, the first time only
    return _bowl(params, ctx)


def _function_study(**search):
    raw = study_dict(search={"max_trials": 5, **search})
    raw["objective"] = {"metric": "loss"}  # the function comes with optimize()
    return raw


def test_create_study_from_a_mapping_or_a_file_and_load_if_exists(tmp_path):
    d = str(tmp_path / "s")
    study = at.create_study(study_dict(search={"max_trials": 2}), dir=d)
    assert isinstance(study, at.Study) and study.dir == d and study.trials == []
    study.run(progress=False)
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 3}))
    again = at.create_study(path, dir=d)  # load_if_exists=True: continued, as run continues
    assert len(again.run(progress=False).trials) == 3
    with pytest.raises(StudyError, match=rf"^create_study: {d} holds a study already \(3 "
                                         r"trials\); load_if_exists=False refuses to continue "
                                         r"it: give another dir=, or load_if_exists=True"):
        at.create_study(path, dir=d, load_if_exists=False)
    fresh = at.create_study(path, dir=str(tmp_path / "new"), load_if_exists=False)
    # recorded at once, so that a second create_study of it is refused (see the race below)
    assert fresh.trials == [] and history(fresh.dir).study["name"] == fresh.name
    for bad, message in [(3, r"^create_study: expected a mapping of study keys or a study "
                             r"file's path, got 3$"),
                         ("no-such.yaml", "no-such.yaml"),
                         ({"name": "x"}, r"^objective: missing")]:
        with pytest.raises(StudyError, match=message) as exc:
            at.create_study(bad, dir=str(tmp_path / "bad"))
        assert "\n" not in str(exc.value)
    with pytest.raises(StudyError, match=r"^create_study: load_if_exists must be True or False"):
        at.create_study(path, dir=d, load_if_exists="no")
    # a directory that cannot be made is one line, as run() says it (not a NotADirectoryError)
    with pytest.raises(StudyError, match=r"^dir: cannot write a study into .*s\.yaml/new "
                                         r"\(Not a directory\)$"):
        at.create_study(path, dir=os.path.join(path, "new"), load_if_exists=False)
    with pytest.raises(StudyError, match=r"^dir: expected a path \(a str or os.PathLike\), got "
                                         r"int$"):
        at.load_study(3)  # its argument is dir=, not directory=


def test_a_study_create_study_recorded_is_new_when_it_first_runs(tmp_path, capsys):
    """create_study(load_if_exists=False) records the study at once; its first run is still a
    new study's start (not 'resuming ...: 0 trials done')."""
    d = str(tmp_path / "s")
    study = at.create_study(study_dict(search={"max_trials": 2}), dir=d, load_if_exists=False)
    capsys.readouterr()
    study.run(progress=True)
    err = capsys.readouterr().err
    assert re.search(rf"^new study \S+ in {re.escape(d)}: ", err, re.M) and "resuming" not in err
    study.run(progress=True)  # a second run continues it
    assert "resuming" in capsys.readouterr().err


def _create_new(cfg, d, out):
    try:
        at.create_study(cfg, dir=d, load_if_exists=False)
        out.append("created")
    except StudyError as exc:
        out.append(str(exc))


def test_of_two_create_studies_of_one_new_directory_at_once_exactly_one_succeeds(tmp_path):
    """load_if_exists=False checked for a study only when called: two scripts creating one new
    directory at the same moment both passed, and both wrote into it. The new study is
    recorded under the directory's lock, and the other is refused as for a study there."""
    cfg = study_dict(search={"max_trials": 2})
    for n in range(3):
        d = str(tmp_path / f"d{n}")
        start, out = threading.Barrier(2), []

        def racer():
            start.wait()
            _create_new(cfg, d, out)
        threads = [threading.Thread(target=racer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(out) == sorted([
            "created", f"create_study: {d} holds a study already (0 trials); load_if_exists="
            "False refuses to continue it: give another dir=, or load_if_exists=True to "
            "continue it"]), out
        with open(os.path.join(d, "history.jsonl"), "rb") as fh:
            assert len(fh.read().splitlines()) == 1  # one study record


def test_create_study_waits_for_a_racer_that_holds_the_new_directory(tmp_path):
    """Deterministically: the other script holds the directory, between its check and its
    record; this one waits for it (not refused as busy, nor writing a second record), then
    finds its study and is refused as for any study there."""
    from autotune.studydir import StudyDir

    cfg = study_dict(search={"max_trials": 2})
    reference = at.create_study(cfg, dir=str(tmp_path / "ref"), load_if_exists=False)
    d = str(tmp_path / "d")
    held = StudyDir(d)
    held.acquire(by="create_study")
    out: list[str] = []
    waiting = threading.Thread(target=_create_new, args=(cfg, d, out))
    try:
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and out == []  # waits while the racer holds the directory
        with open(StudyDir(reference.dir).history, "rb") as src, open(held.history, "wb") as dst:
            dst.write(src.read())  # the racer records its study ...
    finally:
        held.release()  # ... and lets go
    waiting.join(30)
    assert out == [f"create_study: {d} holds a study already (0 trials); load_if_exists=False "
                   "refuses to continue it: give another dir=, or load_if_exists=True to "
                   "continue it"]
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        assert len(fh.read().splitlines()) == 1


def test_load_study_continues_a_cli_study_from_its_directory_alone(tmp_path):
    """The study file is gone: what the directory recorded is the study, to continue."""
    d = str(tmp_path / "s")
    raw = study_dict(objective={"entry": "tests.objectives:interrupts"}, search={"max_trials": 3})
    path = write_study(str(tmp_path / "cli.yaml"), raw)
    assert cli("run", path, "--dir", d, "--quiet").returncode == 130  # Ctrl-C in trial 0
    os.remove(path)
    study = at.load_study(d)
    assert study.name == "t" and study.dir == d and not study.finished
    assert study.settings.objective.entry == "tests.objectives:interrupts"
    assert [t.status for t in study.trials] == ["ok"]
    with study:
        while (trial := study.ask()) is not None:
            study.tell(trial, _bowl(trial.params, trial.ctx))
        assert study.end_reason == "max_trials (3) reached"
    assert [t.job_id for t in study.trials] == ["inline-0", "external", "external"]
    for bad, message in [(str(tmp_path / "none"), "no such study directory"), (None, "dir")]:
        with pytest.raises(StudyError, match=message):
            at.load_study(bad)


def test_optimize_runs_n_more_trials_each_time_up_to_the_studys_own_limit(tmp_path):
    d = str(tmp_path / "s")
    study = at.create_study(_function_study(), dir=d)
    view = study.optimize(_bowl, n_trials=2, progress=False)
    assert len(view.trials) == 2 and view.trials[0].job_id == "inline-0"
    # a study loaded from its directory runs the function shipped there, 2 more
    assert len(at.load_study(d).optimize(n_trials=2, progress=False).trials) == 4
    assert len(at.load_study(d).optimize(n_trials=np.int64(9), progress=False).trials) == 5
    assert at.load_study(d).finished  # max_trials (5): n_trials never goes beyond it
    assert [n.get("e") for n in history(d).notes] == ["resume", "resume"]


def test_optimize_n_trials_counts_new_trials_and_a_stopped_one_runs_again_on_top(tmp_path):
    d = str(tmp_path / "s")
    study = at.Study(_function_study(max_trials=10), dir=d)
    with pytest.raises(KeyboardInterrupt, match=r"^study t interrupted; optimize\(\) again"):
        study.optimize(_interrupted_once_at_trial_1, n_trials=3, progress=False)
    assert at.load(d).counts() == {"ok": 1, "interrupted": 1}
    view = study.optimize(_interrupted_once_at_trial_1, n_trials=2, progress=False)
    assert [t.status for t in view.trials] == ["ok"] * 4
    assert view.trials_dataframe()["trial"].tolist() == [0, 1, 2, 3]


def test_optimize_timeout_starts_no_trial_after_it_and_warns_of_no_endless_run(tmp_path, capsys):
    import time

    def slow(params, ctx):
        time.sleep(0.2)
        return 1.0

    study = at.Study(_function_study(max_trials=None), dir=str(tmp_path / "s"))
    began = time.monotonic()
    view = study.optimize(slow, timeout=0.5)
    assert 1 <= len(view.trials) <= 4 and time.monotonic() - began < 5
    assert "until stopped" not in capsys.readouterr().err  # this call has its limit


def test_optimize_mistakes_are_one_line_study_errors(tmp_path):
    study = at.Study(_function_study(), dir=str(tmp_path / "s"))
    for kwargs, message in [
        (dict(func=lambda trial: trial.suggest_float("x", 0, 1)),
         r"^optimize: the objective is called as f\(params, ctx\), and <lambda>\(trial\) "
         r"cannot take those two arguments \(not Optuna's f\(trial\)"),
        (dict(func="train"), r"^optimize: expected a function f\(params, ctx\), got 'train'$"),
        (dict(func=_bowl, n_trials=0), r"^optimize: n_trials must be a whole number of at "
                                       r"least 1 \(or None: no limit of its own\), got 0$"),
        (dict(func=_bowl, n_trials=2.5), "n_trials must be a whole number"),
        (dict(func=_bowl, n_trials=True), "n_trials must be a whole number"),
        (dict(func=_bowl, timeout=-1), r"^optimize: timeout must be a positive number of "
                                       r"seconds \(or None: no limit of its own\), got -1$"),
        (dict(func=_bowl, timeout=float("nan")), "timeout must be a positive number"),
        (dict(func=_bowl, progress="no"), r"^optimize: progress must be True or False"),
    ]:
        with pytest.raises(StudyError, match=message) as exc:
            study.optimize(**kwargs)
        assert "\n" not in str(exc.value)
    assert not (tmp_path / "s").exists()
    with pytest.raises(StudyError, match=r"^objective: this study has no entry, command or "
                                         r"function to run"):
        study.optimize(n_trials=1)
    # a directory started with a study file's entry: another objective is refused
    d = str(tmp_path / "e")
    at.Study(study_dict(search={"max_trials": 1}), dir=d).run(progress=False)
    with pytest.raises(StudyError, match=r"^objective.entry: .* was started with "
                                         r"'tests.objectives:quadratic'"):
        at.load_study(d).optimize(_bowl, n_trials=1, progress=False)


def test_an_unsaved_function_must_be_given_again_to_a_loaded_study(tmp_path):
    lock = threading.Lock()  # cannot be pickled: runs inline, in its own session only

    def locked(params, ctx):
        with lock:
            return _bowl(params, ctx)

    d = str(tmp_path / "s")
    at.Study(_function_study(), dir=d).optimize(locked, n_trials=1, progress=False)
    with pytest.raises(StudyError, match=r"^objective: this study's function was not saved "
                                         r".*give it again: optimize\(f\)$"):
        at.load_study(d).run(progress=False)
    assert len(at.load_study(d).optimize(locked, progress=False).trials) == 5


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b"garbage" + b[7:],
                                    lambda b: b"", lambda b: b"\x80\x04K\x01."])
def test_a_damaged_saved_function_is_refused_up_front(tmp_path, damage):
    """A damaged objective.pkl (cut short, overwritten, empty, another object) was read by
    each trial in turn: every one failed (UnpicklingError, or a ValueError of the stray
    bytes) until max_failures. Refused before anything is written, naming the file; the
    function given again writes it anew."""
    d = tmp_path / "s"
    at.Study(_function_study(), dir=str(d), executor={"kind": "local"}).optimize(
        _bowl, n_trials=1, progress=False)
    saved = d / "objective.pkl"
    saved.write_bytes(damage(saved.read_bytes()))
    before = tree(str(d))
    for call in ("run", "optimize"):
        with pytest.raises(StudyError) as exc:
            getattr(at.load_study(str(d)), call)(progress=False)
        assert re.fullmatch(rf"objective: {re.escape(str(saved))}, this study's saved "
                            r"function, cannot be read back \(.+\); give the function again: "
                            r"optimize\(f\)", str(exc.value)), exc.value
    assert tree(str(d)) == before
    assert len(at.load_study(str(d)).optimize(_bowl, n_trials=1, progress=False).trials) == 2
    assert len(at.load_study(str(d)).optimize(n_trials=1, progress=False).trials) == 3


def test_best_trial_value_params_and_trials_read_the_history(tmp_path):
    study = at.Study(_function_study(), dir=str(tmp_path / "s"))
    for name in ("best_trial", "best_value", "best_params"):
        with pytest.raises(StudyError, match=r"^study t: no trial has finished successfully "
                                             r"yet, so there is no best trial"):
            getattr(study, name)
    assert study.trials == []
    with study:
        study.tell(study.ask(), error="diverged")
        with pytest.raises(StudyError, match="no trial has finished successfully"):
            study.best_value
        study.tell(study.ask(), 0.5)
        study.tell(study.ask(), 0.25)
        assert study.best_value == 0.25 and study.best_trial.number == 2
        assert study.best_params == study.trials[2].params
    assert [t.status for t in study.trials] == ["failed", "ok", "ok"]
    assert study.best_trial.trial == at.load(study.dir).best.trial


def test_optimize_progress_line_counts_to_the_trials_this_call_runs(tmp_path, capsys):
    """done/total is where this call stops (n_trials more), not the study's max_trials."""
    study = at.Study(_function_study(max_trials=100), dir=str(tmp_path / "s"))
    study.optimize(_bowl, n_trials=3)
    assert "3/3 done" in capsys.readouterr().err
    study.optimize(_bowl, n_trials=2)
    assert "5/5 done" in capsys.readouterr().err
    at.Study(_function_study(max_trials=6), dir=str(tmp_path / "s")).optimize(_bowl, n_trials=9)
    assert "6/6 done" in capsys.readouterr().err  # never beyond the study's own limit


def _slope(params, ctx):
    return {"loss": params["x"]}


def test_a_refused_optimize_leaves_the_study_as_it_was(tmp_path):
    """A function optimize() was refused with (another function's directory, a busy one, a
    study file's entry) is not the study's objective afterwards: a later call runs the
    study's own, as if the refused one had never been made."""
    d = str(tmp_path / "s")
    study = at.Study(_function_study(), dir=d)
    study.optimize(_bowl, n_trials=1, progress=False)
    with pytest.raises(StudyError, match=r"^objective.entry: .* started with the function"):
        study.optimize(_slope, n_trials=1, progress=False)
    assert len(study.optimize(n_trials=1, progress=False).trials) == 2
    holder, waiting = at.Study(_function_study(), dir=d), at.Study(_function_study(), dir=d)
    with holder:
        holder.ask()
        with pytest.raises(StudyBusy):
            waiting.optimize(_bowl, n_trials=1, progress=False)
    with pytest.raises(StudyError, match=r"^objective: this study has no entry"):
        waiting.optimize(n_trials=1, progress=False)  # as built: no function of its own
    # refused by the driver itself (the directory ran a study file's entry): nothing kept
    e = str(tmp_path / "e")
    at.Study(study_dict(search={"max_trials": 3}), dir=e).optimize(n_trials=1, progress=False)
    loaded = at.load_study(e)
    with pytest.raises(StudyError, match=r"^objective.entry: .* 'tests.objectives:quadratic'"):
        loaded.optimize(_slope, n_trials=1, progress=False)
    assert not os.path.exists(os.path.join(e, "objective.pkl"))  # a refused run writes nothing
    view = loaded.optimize(n_trials=1, progress=False)
    assert [t.value for t in view.trials] == [t.metrics["loss"] for t in view.trials]
    assert view.trials[1].value != view.trials[1].params["x"]  # quadratic's, not _slope's


def test_yaml_text_given_for_the_path_is_one_line(tmp_path):
    """create_study("name: x\\nspace: ...") said the whole text and then ': no such study file',
    an error of as many lines as the study."""
    text = "name: x\nobjective: {metric: loss}\nspace: {x: 1}\n"
    with pytest.raises(at.StudyError) as info:
        at.create_study(text, dir=str(tmp_path / "d"))
    assert "\n" not in str(info.value)
    assert "is text of several lines; give the file's path" in str(info.value)
    assert not (tmp_path / "d").exists()


def test_tell_refuses_an_error_that_is_no_message_nor_exception(tmp_path):
    """error=5 was recorded as the trial's error '5': a slip in the caller's loop (a code, a
    value meant as the result), refused in one line naming the argument, nothing recorded."""
    raw = study_dict(search={"max_trials": 2})
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=str(tmp_path / "s")) as study:
        t = study.ask()
        path = os.path.join(str(tmp_path / "s"), "history.jsonl")
        before = open(path, "rb").read()
        for wrong, shown in ((5, "5 (int)"), (ValueError, "<class 'ValueError'> (type)"),
                             ({"why": "nan"}, "{'why': 'nan'} (dict)")):
            with pytest.raises(StudyError) as info:
                study.tell(t, error=wrong)
            assert str(info.value) == (f"tell: error of trial {t.number}: expected a message (a "
                                       f"string) or an exception, got {shown}"), info.value
        assert open(path, "rb").read() == before
        assert study.tell(t, error="diverged").error == "diverged"  # still open
