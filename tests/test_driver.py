import os
import types

import pytest

from autotune.driver import Driver, SimulatedCrash
from autotune.errors import StudyBusy, StudyError
from autotune.study import parse_study
from tests.helpers import history, study_dict


def run(tmp_path, name="s", **over):
    study = parse_study(study_dict(**over))
    directory = str(tmp_path / name)
    return Driver(study, directory, progress=False).run(), directory


def test_inline_study_runs_to_max_trials(tmp_path):
    summary, d = run(tmp_path)
    h = history(d)
    assert summary.trials == 10 and summary.counts == {"ok": 10}
    assert sorted(h.trials) == list(range(10))
    assert summary.best.value == min(r.value for r in h.trials.values())
    assert os.path.exists(os.path.join(d, "trajectory.csv"))


@pytest.mark.parametrize("entry, error", [
    ("raises", "ValueError: bad hyperparameters"),
    ("no_metric", "result has no metric 'loss'"),
    ("nan", "metric 'loss' is nan"),
])
def test_failures_are_recorded_and_the_search_goes_on(tmp_path, entry, error):
    summary, d = run(tmp_path, objective={"entry": f"tests.objectives:{entry}"},
                     search={"max_trials": 3})
    h = history(d)
    assert summary.counts == {"failed": 3}
    assert all(error in r.error for r in h.trials.values())


def test_a_misspelt_metric_fails_with_the_close_key_named(tmp_path):
    """A study whose metric is a typo of what the objective gives (``los`` for ``loss``)
    fails every trial; the error names the key it most likely meant."""
    summary, d = run(tmp_path, objective={"entry": "tests.objectives:quadratic",
                                          "metric": "los"}, search={"max_trials": 2})
    errors = {r.error for r in history(d).trials.values()}
    assert summary.counts == {"failed": 2}
    assert errors == {"result has no metric 'los'; did you mean 'loss'? "
                      "(keys: ['loss', 'score'])"}


def test_mixed_outcomes(tmp_path):
    summary, d = run(tmp_path, objective={"entry": "tests.objectives:by_x"},
                     space={"x": {"values": [0, 1, 2, 3]}}, search={"algorithm": "grid"})
    assert summary.counts == {"ok": 2, "failed": 2}
    assert summary.best.params["x"] == 0


def test_retries_rerun_a_failed_trial_under_the_same_id(tmp_path):
    summary, d = run(tmp_path, objective={"entry": "tests.objectives:flaky"},
                     space={"x": {"values": [3, 1, 2]}}, search={"algorithm": "grid"}, retries=1)
    h = history(d)
    assert summary.counts == {"ok": 3}
    assert all(r.attempt == 1 for r in h.trials.values())
    summary, d = run(tmp_path, name="noretry", objective={"entry": "tests.objectives:flaky"},
                     space={"x": {"values": [3, 1, 2]}}, search={"algorithm": "grid"})
    assert summary.counts == {"failed": 3}


def test_simulated_executor_uses_virtual_time(tmp_path):
    summary, d = run(tmp_path, space={"x": {"low": -3.0, "high": 3.0}, "cost_s": 3600.0},
                     executor={"kind": "simulated", "max_concurrent": 4},
                     search={"max_trials": 12})
    h = history(d)
    ends = sorted(r.end_s for r in h.trials.values())
    # 12 trials of about an hour on 4 workers: about three hours of virtual time
    assert 3 * 3600 <= ends[-1] <= 3 * 3600 * 1.2
    assert all(r.cost_s >= 3600 for r in h.trials.values())
    busy = max(sum(1 for r in h.trials.values() if r.start_s <= t < r.end_s)
               for t in [r.start_s for r in h.trials.values()])
    assert busy == 4


def trajectory_of(d):
    h = history(d)
    return [(t, r.params, r.status, r.value, r.start_s, r.end_s) for t, r in sorted(h.trials.items())]


@pytest.mark.parametrize("crash_after", [1, 2, 3, 5, 8, 13])
def test_resume_after_a_crash_continues_the_same_trajectory(tmp_path, crash_after):
    over = dict(space={"x": {"low": -3.0, "high": 3.0}, "cost_s": 100.0},
                executor={"kind": "simulated", "max_concurrent": 3}, search={"max_trials": 9})
    _, reference = run(tmp_path, name="ref", **over)
    study = parse_study(study_dict(**over))
    d = str(tmp_path / "crashed")
    with pytest.raises(SimulatedCrash):
        Driver(study, d, progress=False, stop_after_events=crash_after).run()
    Driver(study, d, progress=False).run()
    assert trajectory_of(d) == trajectory_of(reference)


def test_a_changed_space_is_refused_and_nothing_is_written(tmp_path):
    _, d = run(tmp_path)
    size = os.path.getsize(os.path.join(d, "history.jsonl"))
    space = study_dict()["space"]
    study = parse_study(study_dict(space={**space, "x": {"low": -3.0, "high": 4.0}}))
    with pytest.raises(StudyError, match=r"space: differs .* \(parameters x\)"):
        Driver(study, d, progress=False).run()
    study = parse_study(study_dict(search={"seed": 1}))
    with pytest.raises(StudyError, match="^search.seed: .* was started with 0"):
        Driver(study, d, progress=False).run()
    assert os.path.getsize(os.path.join(d, "history.jsonl")) == size


@pytest.mark.parametrize("over, said", [
    (dict(search={"seed": 1}), "search.seed: {d} was started with 0, the study file says 1"),
    (dict(search={"algorithm": "optuna-tpe"}), "search.algorithm: {d} was started with "
                                               "'random', the study file says 'optuna-tpe'"),
    (dict(objective={"metric": "score"}), "objective.metric: {d} was started with 'loss', "
                                          "the study file says 'score'"),
    (dict(objective={"mode": "max"}), "objective.mode: {d} was started with 'min', the study "
                                      "file says 'max'"),
    (dict(search={"fidelity": {"min": 1, "max": 4}}),
     "search.fidelity: {d} was started with None, the study file says {{'min': 1, 'max': 4}}"),
])
def test_a_changed_search_is_refused_naming_the_study_files_key(tmp_path, over, said):
    """A resume whose study file changed its search named ``seed:``, ``metric:`` or
    ``search_options:``, no key of the file: the full dotted key, as every other refusal."""
    _, d = run(tmp_path)
    with pytest.raises(StudyError) as exc:
        Driver(parse_study(study_dict(**over)), d, progress=False).run()
    assert str(exc.value) == said.format(d=d) + "; use another --dir for a new search"


def test_resume_with_a_larger_budget_extends_the_study(tmp_path):
    _, d = run(tmp_path)
    study = parse_study(study_dict(search={"max_trials": 15}))
    summary = Driver(study, d, progress=False).run()
    assert summary.trials == 15 and summary.counts == {"ok": 15}


def test_a_second_driver_is_refused_naming_the_holder(tmp_path):
    study = parse_study(study_dict())
    d = str(tmp_path / "busy")
    first = Driver(study, d, progress=False)
    first.dir.acquire()
    try:
        with pytest.raises(StudyBusy, match=f"pid {os.getpid()} on host"):
            Driver(study, d, progress=False).run()
    finally:
        first.dir.release()
    assert Driver(study, d, progress=False).run().trials == 10


def test_a_compute_budget_stops_new_trials(tmp_path):
    summary, d = run(tmp_path, space={"x": {"low": -3.0, "high": 3.0}, "cost_s": 100.0},
                     executor={"kind": "simulated", "max_concurrent": 2},
                     search={"max_trials": None, "max_compute_s": 1000.0})
    h = history(d)
    spent = sorted(h.trials.values(), key=lambda r: r.end_s)
    # trials start only while less than the budget is spent; the ones running then finish
    assert h.spent_s >= 1000.0
    assert sum(r.cost_s for r in spent[:-2]) < 1000.0
    assert len(h.trials) <= 12


@pytest.mark.parametrize("kind", ["inline", "simulated"])
def test_a_trial_stopped_while_it_ran_in_the_driver_counts_both_starts(tmp_path, kind):
    """Its submit is recorded before it runs: the run it lost counts in ``attempts``."""
    import csv

    study = parse_study(study_dict(objective={"entry": "tests.objectives:dies_once"},
                                   space={"x": 1.0, "mark": str(tmp_path / "mark")},
                                   search={"algorithm": "grid"}, executor={"kind": kind}))
    d = str(tmp_path / "d")
    with pytest.raises(KeyboardInterrupt):
        Driver(study, d, progress=False).run()
    assert history(d).trials[0].status == "running"
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    assert (rec.status, rec.starts, rec.attempt) == ("ok", 2, 0)
    with open(os.path.join(d, "trajectory.csv")) as fh:
        assert next(csv.DictReader(fh))["attempts"] == "2"


def test_random_over_a_fixed_space_says_it_repeats_the_setting(tmp_path, capsys):
    study = parse_study(study_dict(space={"x": 1.0, "y": 0.5}, search={"max_trials": 4}))
    summary = Driver(study, str(tmp_path / "fixed"), progress=True).run()
    assert summary.trials == 4 and summary.counts == {"ok": 4}
    err = capsys.readouterr().err
    assert ("the space holds a single setting: random search runs it again and again, each run "
            "a trial with its own seed, until max_trials (4)") in err
    assert "(trial 0: )" not in err
    h = history(str(tmp_path / "fixed"))
    assert [r.info.get("repeat", 0) for _, r in sorted(h.trials.items())] == [0, 1, 2, 3]


def test_grid_ending_before_max_trials_says_why(tmp_path, capsys):
    study = parse_study(study_dict(space={"x": {"values": [0.0, 1.0]}, "y": 0.5},
                                   search={"algorithm": "grid", "max_trials": 10}))
    assert Driver(study, str(tmp_path / "g"), progress=True).run().trials == 2
    assert ("the search ended after 2 trials, before max_trials (10): the grid's 2 points have "
            "all been proposed") in capsys.readouterr().err


@pytest.mark.parametrize("crash_after", [2, 3, 5])
def test_random_over_a_small_finite_space_goes_round_by_round_and_resumes_the_same(
        tmp_path, crash_after):
    over = dict(space={"x": {"values": [-1.0, 0.0, 1.0]}, "y": {"values": [0.0, 0.5]},
                       "cost_s": 100.0},
                executor={"kind": "simulated", "max_concurrent": 2}, search={"max_trials": 14})
    summary, reference = run(tmp_path, name="ref", **over)
    assert summary.trials == 14
    settings = [(p[1]["x"], p[1]["y"]) for p in trajectory_of(reference)]
    assert len(set(settings[:6])) == 6 and len(set(settings[6:12])) == 6
    study = parse_study(study_dict(**over))
    d = str(tmp_path / "crashed")
    with pytest.raises(SimulatedCrash):
        Driver(study, d, progress=False, stop_after_events=crash_after).run()
    assert Driver(study, d, progress=False).run().trials == 14
    assert trajectory_of(d) == trajectory_of(reference)


@pytest.mark.parametrize("kind", ["inline", "simulated"])
def test_a_reported_cost_that_is_no_duration_gives_way_to_the_measured_one(tmp_path, kind):
    """cost_s Infinity was taken as it came: the study's compute spent became inf (every
    max_compute_s spent by one trial; under the simulated executor the clock went to inf)."""
    lines = ['{"loss": 1, "cost_s": Infinity}', '{"loss": 2, "cost_s": NaN}',
             '{"loss": 3, "cost_s": -1}', '{"loss": 4, "cost_s": "5"}',
             '{"loss": 5, "cost_s": true}', '{"loss": 6, "cost_s": 7}']
    executor = {"kind": kind}
    if kind == "simulated":
        executor["default_cost_s"] = 1.0
    summary, d = run(tmp_path, objective={"entry": None, "command": "printf '%s\\n' {x}"},
                     space={"x": {"values": lines}}, search={"algorithm": "grid"},
                     executor=executor)
    assert summary.counts == {"ok": 6}
    h = history(d)
    costs = [h.trials[t].cost_s for t in range(6)]
    assert costs[5] == 7.0
    assert all(0 <= c < 5 for c in costs[:5]), costs
    if kind == "simulated":
        assert costs[:5] == [1.0] * 5 and h.last_t == 12.0


def test_a_reported_cost_that_is_not_used_is_warned_of_once(tmp_path, capsys):
    """A string cost_s ("5"), like NaN or a negative one, gave way to the measured run time
    without a word: the objective never learnt that its cost was not counted."""
    lines = ['{"loss": 1, "cost_s": 2}', '{"loss": 4, "cost_s": "5"}',
             '{"loss": 3, "cost_s": -1}']
    run(tmp_path, objective={"entry": None, "command": "printf '%s\\n' {x}"},
        space={"x": {"values": lines}}, search={"algorithm": "grid"})
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "cost_s" in ln]
    assert warnings == ['warning: trial 1\'s result: cost_s "5" is no duration in seconds (a '
                        'finite number, 0 or more), so the measured run time is the cost (said '
                        'for the first such trial only)']


def test_a_refused_submission_keeps_the_starts_made_before_it(tmp_path):
    """A batch's starts are recorded together, after its submissions: an executor refusing the
    third (sbatch at a submit limit) lost the first two, whose jobs ran on: status called them
    interrupted, 'runs again on resume'. They are recorded before the refusal goes up."""
    from autotune.executors.inline import InlineExecutor

    class RefusesTheThird(InlineExecutor):
        def submit(self, job):
            if job.trial == 2:
                raise StudyError("executor: sbatch refused trial 2: job submit limit")
            return super().submit(job)

    study = parse_study(study_dict(executor={"kind": "inline", "max_concurrent": 4}))
    d = str(tmp_path / "d")
    ex = RefusesTheThird(d, 4, 0.0)
    with pytest.raises(StudyError, match="refused trial 2"):
        Driver(study, d, executor=ex, progress=False).run()
    h = history(d)
    assert {t: (r.status, r.job_id) for t, r in h.trials.items()} == {
        0: ("running", "inline-0"), 1: ("running", "inline-1"), 2: ("pending", ""),
        3: ("pending", "")}


def test_the_stopping_line_names_a_pretrain_only_where_the_study_has_one(tmp_path):
    """'its SLURM jobs in flight, the pretrain's too' was said of studies without a pretrain;
    and after `autotune cancel` the jobs are cancelled, not left."""
    plain = parse_study(study_dict(executor={"kind": "slurm", "max_concurrent": 2}))
    driver = Driver(plain, str(tmp_path / "d"), progress=False)
    assert driver._left_in_flight() == ("its SLURM jobs in flight are left queued or running "
                                        "(the next run re-attaches to them)")
    driver._by_cancel = True
    assert driver._left_in_flight() == ("autotune cancel cancels its SLURM jobs in flight (the "
                                        "next run records those trials as cancelled, but by "
                                        "their results those whose jobs run to their end "
                                        "before SLURM stops them: cancel names them)")
    staged = parse_study(study_dict(
        executor={"kind": "slurm", "max_concurrent": 2},
        objective={"entry": "tests.objectives:finetune"},
        stages={"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 1}}))
    driver = Driver(staged, str(tmp_path / "e"), progress=False)
    assert driver._left_in_flight() == ("its SLURM jobs in flight are left queued or running "
                                        "(the next run re-attaches to them)")
    # while the pretrain's job runs (no trial runs before it ends) it is named, alone
    driver._stages = types.SimpleNamespace(held=False, in_flight=True)
    assert driver._left_in_flight() == ("the pretrain's SLURM job is left queued or running "
                                        "(the next run re-attaches to it)")
    driver._by_cancel = True
    assert driver._left_in_flight() == ("autotune cancel cancels the pretrain's SLURM job (the "
                                        "next run records it as cancelled and runs it again, "
                                        "unless it runs to its end before SLURM stops it: "
                                        "cancel says so)")


def test_a_submit_limit_holds_trials_back_until_jobs_end(tmp_path, capsys):
    """sbatch at MaxSubmitJobs (QOSMaxSubmitJobPerUserLimit) stopped the whole run. The
    trials it refuses wait, recorded as asked, and are submitted as jobs end; the reason is
    said once; nothing fails and the run ends with every trial done."""
    from autotune.executors.base import SubmitLimit
    from autotune.executors.inline import InlineExecutor

    refusals = []

    class TwoAtATime(InlineExecutor):
        def submit(self, job):
            if self.running() >= 2:
                refusals.append(job.trial)
                raise SubmitLimit(f"executor: sbatch refused trial {job.trial}: limit",
                                  "QOSMaxSubmitJobPerUserLimit")
            return super().submit(job)

    study = parse_study(study_dict(executor={"kind": "inline", "max_concurrent": 4},
                                   search={"max_trials": 7}))
    d = str(tmp_path / "d")
    summary = Driver(study, d, executor=TwoAtATime(d, 4, 0.0), progress=False).run()
    assert summary.stopped == "finished" and summary.counts == {"ok": 7}
    assert refusals and all(r.attempt == 0 for r in history(d).trials.values())
    said = [ln for ln in capsys.readouterr().err.splitlines() if "sbatch" in ln]
    assert len(said) == 1 and said[0].startswith(
        "warning: sbatch takes no more jobs for now (QOSMaxSubmitJobPerUserLimit): the next "
        "trials wait"), said


def test_the_progress_line_counts_the_trials_waiting_for_a_submit_slot(tmp_path):
    """Two trials ran, sbatch refuses the other three: the line says they wait (it said only
    '0 running'), and with nothing in flight gives no ETA (the pace since the start says
    nothing of when a slot frees up: it only grew)."""
    from autotune.executors.base import SubmitLimit
    from autotune.executors.inline import InlineExecutor

    class TwoThenFull(InlineExecutor):
        def submit(self, job):
            if job.trial >= 2:
                raise SubmitLimit("executor: sbatch refused", "QOSMaxSubmitJobPerUserLimit")
            return super().submit(job)

    study = parse_study(study_dict(executor={"kind": "inline", "max_concurrent": 5},
                                   search={"max_trials": 5}))
    d = str(tmp_path / "d")
    driver = Driver(study, d, executor=TwoThenFull(d, 5, 0.0), progress=False)
    lines = []
    driver.progress.update = lambda h, running, *held: lines.append(
        driver.progress.line(h, running, *held))

    def tick():  # the driver's own tick, until nothing runs and trials wait
        Driver._tick(driver)
        if driver.executor.running() == 0 and driver._held:
            driver._stop = "interrupted"

    driver._tick = tick
    driver.run()
    assert lines[-1].startswith("2/5 done, 0 running, 3 waiting for a submit slot, 0s elapsed"
                                "  best "), lines
    assert "ETA" not in lines[-1]
    from autotune.history import History
    from autotune.progress import Progress

    watched = Progress("min", total=5)
    watched.line(History(), 2)  # its pace counts from here: no trial had ended
    assert "ETA" in watched.line(driver.history, 1, 2)
    assert "ETA" not in watched.line(driver.history, 0, 3)


def test_trials_held_by_a_submit_limit_are_left_to_the_next_run(tmp_path):
    """Stopped while trials wait for a slot: they stay asked (pending), the stopping line
    says the next run submits them, and it does."""
    from tests.helpers import full_executor

    study = parse_study(study_dict(executor={"kind": "slurm", "max_concurrent": 2},
                                   search={"max_trials": 2}))
    d = str(tmp_path / "d")
    driver = Driver(study, d, executor=full_executor(d, 2), progress=False)
    driver._tick = lambda: setattr(driver, "_stop", "interrupted")  # Ctrl-C while they wait
    assert driver.run().stopped == "interrupted"
    assert {t: r.status for t, r in history(d).trials.items()} == {0: "pending", 1: "pending"}
    assert driver._left_in_flight().endswith("; the 2 trial(s) waiting for a submit slot are "
                                             "submitted by the next run")
    inline = parse_study(study_dict(executor={"kind": "inline", "max_concurrent": 2},
                                    search={"max_trials": 2}))
    assert Driver(inline, d, progress=False).run().counts == {"ok": 2}


def test_an_inline_trial_past_its_timeout_is_recorded_failed(tmp_path):
    """inline ignored ``timeout_s``: a trial that ran past it was recorded ok, where local
    ends it and simulated judges its cost. It cannot be cut short in the driver's own
    process, so it is judged as it ends: failed, timed out, its run time as its cost."""
    summary, d = run(tmp_path, search={"max_trials": 1},
                     objective={"timeout_s": 0.2},
                     space={"x": 0.5, "y": {"values": [0.0, 1.0]}, "sleep_s": 0.5})
    rec = history(d).trials[0]
    assert summary.counts == {"failed": 1}
    assert rec.failure == "timeout" and rec.error.startswith("timed out after 0.2s"), rec
    assert rec.cost_s >= 0.5
