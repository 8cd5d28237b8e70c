"""The Python API, as a user calls it: messages that name the call made, warnings said once
per Study, the constructor's misuses, a loop of one's own on a study with a built pretrain,
and a loop after ``autotune cancel`` cancelled a SLURM study's jobs."""
import os

import pytest

import autotune as at
from autotune.errors import StudyError

from .helpers import history, study_dict, write_study
from .objectives import finetune


def _square(params, ctx):
    return {"loss": params["x"] ** 2}


def _shifted(params, ctx):
    return {"loss": 100 + params["x"]}


def _always_fails(params, ctx):
    raise RuntimeError("diverged")


def _function_study(**search):
    raw = study_dict(search={"max_trials": 6, **search})
    raw["objective"] = {"metric": "loss"}  # the function comes with optimize()
    return raw


# ---- messages name the call the user made ----------------------------------------------------
def test_optimize_refusing_another_function_names_optimize_and_its_argument(tmp_path):
    """optimize(g) on a directory started with f said "or run(accept_objective_change=True)":
    run() has no n_trials, so following it ran the study to max_trials."""
    d = str(tmp_path / "s")
    at.Study(_function_study(), dir=d).optimize(_square, n_trials=1, progress=False)
    with pytest.raises(StudyError) as exc:
        at.load_study(d).optimize(_shifted, n_trials=1, progress=False)
    text = str(exc.value)
    assert text.endswith("results would mix: use another dir=, or "
                         "optimize(accept_objective_change=True) if the change does not alter "
                         "results"), text
    assert "run(" not in text
    view = at.load_study(d).optimize(_shifted, n_trials=1, progress=False,
                                     accept_objective_change=True)
    assert len(view.trials) == 2


def test_optimize_refusing_a_changed_entry_names_optimize(tmp_path):
    """The driver's own refusal (an entry string recorded, a function given now)."""
    d = str(tmp_path / "s")
    at.Study(study_dict(search={"max_trials": 1}), dir=d).run(progress=False)
    with pytest.raises(StudyError, match=r"use another dir=, or "
                                         r"optimize\(accept_objective_change=True\) if the "
                                         r"change does not alter results$"):
        at.load_study(d).optimize(_square, n_trials=1, progress=False)
    with pytest.raises(StudyError, match=r"or run\(accept_objective_change=True\) if"):
        at.Study(study_dict(objective={"entry": "tests.objectives:noop"}), dir=d).run(
            progress=False)


def test_optimize_that_stops_failing_names_optimize_retry_failed(tmp_path):
    d = str(tmp_path / "s")
    with pytest.raises(at.StudyStopped) as stop:
        at.Study(_function_study(), dir=d).optimize(_always_fails, n_trials=2, progress=False)
    assert str(stop.value).endswith("fix the cause, then optimize(retry_failed=True)"), \
        str(stop.value)


# ---- Study(...) misused as a user would guess it ---------------------------------------------
def test_the_directory_given_positionally_is_one_study_error_saying_dir(tmp_path):
    """Study(config, "runs/x") was Python's TypeError ("takes from 1 to 2 positional
    arguments but 3 were given"), naming neither dir= nor create_study/load_study."""
    d = str(tmp_path / "x")
    with pytest.raises(StudyError) as exc:
        at.Study(study_dict(), d)
    assert str(exc.value) == (
        f"Study: the study directory is a keyword: Study(config, dir={d!r}) (or "
        f"at.create_study(config, dir={d!r}); at.load_study({d!r}) continues the study "
        "recorded there)")
    with pytest.raises(StudyError, match=r"^Study: takes one positional argument, the mapping "
                                         r"of study keys; also given: 3, 4 \(the directory is "
                                         r"a keyword: Study\(config, dir=\.\.\.\)\)$"):
        at.Study(study_dict(), 3, 4)
    assert not os.path.exists(d)


def test_a_path_given_as_the_config_names_the_call_that_reads_it(tmp_path):
    path = write_study(str(tmp_path / "s.yaml"), study_dict())
    for given in (path, tmp_path / "s.yaml"):
        with pytest.raises(StudyError) as exc:
            at.Study(given)
        assert str(exc.value) == (
            f"Study: {path!r} is a path, not a mapping of study keys; a study file is read by "
            f"at.Study.from_yaml({path!r}, dir=...) or at.create_study({path!r}, dir=...)")
    d = str(tmp_path / "d")
    at.Study(study_dict(search={"max_trials": 1}), dir=d).run(progress=False)
    with pytest.raises(StudyError, match=r"^Study: '.*/d' is a study directory, not a mapping "
                                         r"of study keys; continue it with "
                                         r"at.load_study\('.*/d'\) \(or read it: "):
        at.Study(d)
    with pytest.raises(StudyError, match=r"^Study: expected a mapping of study keys, got the "
                                         r"string 'quadratic'; a study file is read by "
                                         r"at.Study.from_yaml\(path\), a study directory "
                                         r"continued by at.load_study\(dir\)$"):
        at.Study("quadratic")


def test_a_config_of_another_type_or_as_a_keyword_is_one_line(tmp_path):
    with pytest.raises(StudyError, match=r"^Study: expected a mapping of study keys \(or "
                                         r"keywords name=\.\.\., objective=\.\.\., \.\.\.\), got "
                                         r"\[1, 2\] \(list\); a study file is read by "):
        at.Study([1, 2])
    with pytest.raises(StudyError, match=r"^config: unknown keyword; give the mapping first, "
                                         r"unnamed: Study\(config, dir=\.\.\.\) \(expected "):
        at.Study(config=study_dict(), dir=str(tmp_path / "s"))
    assert not os.path.exists(tmp_path / "s")


# ---- a warning of the start is said once per Study -------------------------------------------
def _damaged(d: str) -> None:
    """A damaged line in the middle of ``d``'s history: every start warns of it."""
    with open(os.path.join(d, "history.jsonl"), "ab") as fh:
        fh.write(b'{"e": "end", "trial": \n')


def test_a_second_run_or_session_of_one_study_does_not_repeat_its_warnings(tmp_path, capsys):
    """run(), optimize() and an ask/tell session each start a driver, which said the start's
    warnings again: a notebook calling optimize() in a loop got them at every call."""
    d = str(tmp_path / "s")
    at.Study(_function_study(max_trials=20), dir=d).optimize(_square, n_trials=1,
                                                             progress=False)
    _damaged(d)
    capsys.readouterr()
    study = at.load_study(d)
    study.optimize(n_trials=1, progress=False)
    study.optimize(n_trials=1, progress=False)
    with study:
        study.tell(study.ask(), 1.0)
    study.close()
    with study:
        study.tell(study.ask(), 2.0)
    said = capsys.readouterr().err
    assert said.count("warning: history line") == 1, said
    assert len(history(d).trials) == 5
    # another Study object (a new load_study, a cell run again) is told again
    at.load_study(d).optimize(n_trials=1, progress=False)
    assert capsys.readouterr().err.count("warning: history line") == 1


def test_the_cores_warning_of_a_local_study_is_said_once_per_study(tmp_path, capsys,
                                                                     monkeypatch):
    """The reviewer's case: executor.max_concurrent above the machine's cores, warned of at
    run() and again at every optimize() of the same Study."""
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    raw = _function_study(max_trials=20)
    raw["executor"] = {"kind": "local", "max_concurrent": 2}
    study = at.Study(raw, dir=str(tmp_path / "s"))
    for _ in range(3):
        study.optimize(_square, n_trials=1, progress=False)
    said = capsys.readouterr().err
    assert said.count("warning: executor.max_concurrent is 2 but this machine has 1 CPU "
                      "cores") == 1, said


# ---- a loop of one's own on a study with a pretrain ------------------------------------------
def _pretrain_study(tmp_path, name="p", **stage):
    raw = study_dict(name=name, objective={"entry": "tests.objectives:finetune"},
                     space={"x": {"low": 0.0, "high": 2.0}}, search={"max_trials": 6})
    raw["stages"] = {"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 2,
                                  "params": {"log": str(tmp_path / "pretrain.log"),
                                             "sleep_s": 0.05}, **stage}}
    return raw


def _builds(tmp_path):
    return open(tmp_path / "pretrain.log").read().split()


def test_a_loop_gets_the_pretrain_a_run_built(tmp_path):
    """ask() refused every study with stages.pretrain, even one whose pretrain a run had
    built and recorded: its checkpoint is there for the loop's trials, as for the run's."""
    d = str(tmp_path / "s")
    at.Study(_pretrain_study(tmp_path), dir=d).optimize(n_trials=1, progress=False)
    study = at.load_study(d)
    with study:
        trial = study.ask()
        assert trial.ctx.pretrained == _checkpoint(d)
        told = study.tell(trial, finetune(trial.params, trial.ctx))
    assert told.trial == 1
    assert at.load(d).trials[1].status == "ok"
    assert len(_builds(tmp_path)) == 1            # built once, by the run
    assert [s.status for s in history(d).stages.values()] == ["ok"]


def _checkpoint(d: str) -> str:
    """The one pretrain checkpoint in ``d``'s cache."""
    [key] = [k for k in os.listdir(os.path.join(d, "cache")) if len(k) == 16]
    path = os.path.join(d, "cache", key, "checkpoint.pt")
    assert os.path.isfile(path)
    return path


def test_a_loop_on_a_pretrain_not_built_says_how_and_build_pretrain_builds_it(tmp_path):
    """A loop of one's own (no entry: run() refuses it) had no way to the pretrain at all."""
    d = str(tmp_path / "s")
    raw = _pretrain_study(tmp_path)
    raw["objective"] = {"metric": "loss"}
    study = at.Study(raw, dir=d)
    with pytest.raises(StudyError) as exc:
        study.ask()
    assert str(exc.value) == (
        "ask: stages.pretrain: it has not been built yet, and an ask/tell loop does not build "
        "it (its trials would start without it, ctx.pretrained None); build it first with "
        "build_pretrain() (or run(), optimize(), `python -m autotune run`), then ask() again")
    assert not os.path.exists(d)
    path = study.build_pretrain(progress=False)
    assert path == _checkpoint(d) and history(d).trials == {}  # no trial run
    assert study.build_pretrain(progress=False) == path        # built once
    with study:
        trial = study.ask()
        assert trial.ctx.pretrained == path
        study.tell(trial, finetune(trial.params, trial.ctx))
    assert len(_builds(tmp_path)) == 1
    with pytest.raises(StudyError, match=r"^build_pretrain: this study has no stages.pretrain$"):
        at.Study(study_dict(), dir=str(tmp_path / "none")).build_pretrain()


def test_a_loop_on_a_pretrain_whose_checkpoint_is_gone_is_refused_writing_nothing(tmp_path):
    d = str(tmp_path / "s")
    at.Study(_pretrain_study(tmp_path), dir=d).optimize(n_trials=1, progress=False)
    os.remove(_checkpoint(d))
    before = open(os.path.join(d, "history.jsonl"), "rb").read()
    with pytest.raises(StudyError, match=r"^ask: stages.pretrain: its checkpoint .*"
                                         r"checkpoint.pt is missing or not the size it was "
                                         r"built with, and an ask/tell loop does not build it"):
        at.load_study(d).ask()
    assert open(os.path.join(d, "history.jsonl"), "rb").read() == before


def test_a_loop_takes_a_pretrain_another_study_built_in_a_shared_cache(tmp_path):
    """As a run records it: cached, at no cost, not built again."""
    shared = str(tmp_path / "shared")
    at.Study(_pretrain_study(tmp_path, cache_dir=shared), dir=str(tmp_path / "a")).optimize(
        n_trials=1, progress=False)
    d = str(tmp_path / "b")
    raw = _pretrain_study(tmp_path, name="b", cache_dir=shared)
    raw["objective"] = {"metric": "loss"}
    with at.Study(raw, dir=d) as study:
        trial = study.ask()
        assert trial.ctx.pretrained.startswith(shared)
        study.tell(trial, finetune(trial.params, trial.ctx))
    assert [s.status for s in history(d).stages.values()] == ["cached"]
    assert len(_builds(tmp_path)) == 1


# ---- a loop after `autotune cancel` cancelled a SLURM study's jobs ---------------------------
def test_a_loop_records_the_slurm_jobs_cancel_cancelled_as_cancelled(tmp_path):
    """The history a SLURM run leaves once ``cancel`` cancelled its job (the job's id in the
    cancel record, no result left). A loop opened on it left the trial in flight, neither
    open (``open_trials``) nor ever recorded: ``ended-alone`` for good, counted towards
    max_trials, a result no run would come to record while the loop went on."""
    from autotune import events as ev
    from autotune.journal import Journal

    d = str(tmp_path / "s")
    raw = study_dict(search={"max_trials": 3},
                     executor={"kind": "slurm", "max_concurrent": 2})
    raw["objective"] = {"metric": "loss"}
    at.create_study(raw, dir=d, load_if_exists=False)
    journal = Journal(os.path.join(d, "history.jsonl"))
    journal.append([ev.ask(1.0, 1, [ev.trial_entry(0, {"x": 0.5, "y": 0.0})]),
                    ev.submit(1.5, 0, 0, "4242"), ev.cancel(7.0, ["4242"])])
    journal.close()
    study = at.load_study(d)
    with study:
        trial = study.ask()
        assert trial.number == 1 and study.open_trials == [1]
        rec = study.load().trials[0]
        assert (rec.status, rec.error) == ("cancelled",
                                           "slurm job 4242 cancelled by autotune cancel")
        assert (rec.start_s, rec.end_s, rec.cost_s) == (1.5, 7.0, 5.5)
        with pytest.raises(StudyError, match=r"^tell: trial 0 is already finished"):
            study.tell(0, 1.0)
        study.tell(trial, 1.0)
        study.tell(study.ask(), 2.0)
        assert study.ask() is None and study.finished
    assert [t.status for t in at.load(d).trials] == ["cancelled", "ok", "ok"]


def test_build_pretrain_that_fails_raises_study_stopped_naming_build_pretrain(tmp_path):
    d = str(tmp_path / "s")
    raw = _pretrain_study(tmp_path)
    raw["stages"]["pretrain"]["params"]["fail"] = True
    with pytest.raises(at.StudyStopped) as stop:
        at.Study(raw, dir=d).build_pretrain(progress=False)
    assert stop.value.reason == "stage"
    assert str(stop.value).endswith("fix it and build_pretrain() again"), str(stop.value)
    assert "out of memory in pretrain" in str(stop.value)
    with pytest.raises(StudyError, match=r"^ask: stages.pretrain: its last build failed "
                                         r"\(.*out of memory in pretrain.*\), and an ask/tell "):
        at.load_study(d).ask()


def test_build_pretrain_of_a_study_with_no_budget_is_not_warned_it_may_run_until_stopped(
        tmp_path, capsys):
    """build_pretrain runs no trial: the no-budget warning (a run that may never end) is not
    about it."""
    raw = _pretrain_study(tmp_path)
    raw["search"] = {"algorithm": "random", "seed": 0}
    at.Study(raw, dir=str(tmp_path / "s")).build_pretrain(progress=False)
    assert "no budget" not in capsys.readouterr().err
