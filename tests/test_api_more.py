"""The Python API, as a user calls it: messages that name the call made, warnings said once
per Study, the constructor's misuses, a loop of one's own on a study with a built pretrain,
and a loop after ``autotune cancel`` cancelled a SLURM study's jobs."""
import os

import pytest

import autotune as at
from autotune.errors import StudyError

from .helpers import history, study_dict, write_study


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
