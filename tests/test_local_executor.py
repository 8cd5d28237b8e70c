import os

from autotune.driver import Driver
from autotune.study import parse_study
from tests.helpers import history, study_dict


def run_local(tmp_path, entry, n=2, timeout_s=None, **space):
    objective = {"entry": f"tests.objectives:{entry}"}
    if timeout_s:
        objective["timeout_s"] = timeout_s
    study = parse_study(study_dict(objective=objective,
                                   space={"x": {"values": list(range(n))}, **space},
                                   search={"algorithm": "grid"},
                                   executor={"kind": "local", "max_concurrent": 2}))
    d = str(tmp_path / entry)
    Driver(study, d, progress=False).run()
    return d, history(d)


def test_trials_run_in_their_own_processes_with_logs_kept(tmp_path):
    d, h = run_local(tmp_path, "quadratic", n=3)
    assert {r.status for r in h.trials.values()} == {"ok"}
    pids = {r.job_id for r in h.trials.values()}
    assert len(pids) == 3 and all(p.startswith("pid-") for p in pids)
    for t in h.trials:
        assert os.path.exists(os.path.join(d, "trials", str(t), "stdout.log"))
        assert os.path.exists(os.path.join(d, "trials", str(t), "stderr.log"))


def test_a_segfault_fails_one_trial_not_the_driver(tmp_path):
    d, h = run_local(tmp_path, "segfault")
    assert [r.status for r in h.trials.values()] == ["failed", "failed"]
    assert all("killed by SIGSEGV" in r.error for r in h.trials.values())


def test_an_exception_is_recorded_with_its_traceback_in_the_log(tmp_path):
    d, h = run_local(tmp_path, "raises", n=1)
    assert h.trials[0].error == "ValueError: bad hyperparameters"
    with open(os.path.join(d, "trials", "0", "stderr.log")) as fh:
        assert "Traceback" in fh.read()


def test_a_trial_past_its_timeout_is_killed(tmp_path):
    d, h = run_local(tmp_path, "hangs", n=2, timeout_s=1.0)
    assert all(r.status == "failed" and "timed out after 1s" in r.error for r in h.trials.values())
    assert all(r.end_s - r.start_s < 10 for r in h.trials.values())


def test_command_objective_reads_the_last_json_line(tmp_path):
    study = parse_study(study_dict(
        objective={"entry": None, "command": "echo noise; echo '{{\"loss\": {x}}}'"},
        space={"x": {"values": [3, 5]}}, search={"algorithm": "grid"},
        executor={"kind": "local", "max_concurrent": 2}))
    d = str(tmp_path / "cmd")
    Driver(study, d, progress=False).run()
    h = history(d)
    assert sorted(r.value for r in h.trials.values()) == [3.0, 5.0]


def test_command_objective_result_file_and_failure(tmp_path):
    study = parse_study(study_dict(
        objective={"entry": None,
                   "command": "test {x} = 1 && echo '{{\"loss\": 7}}' > {trial_dir}/result.json"},
        space={"x": {"values": [1, 2]}}, search={"algorithm": "grid"},
        executor={"kind": "local", "max_concurrent": 2}))
    d = str(tmp_path / "cmd2")
    Driver(study, d, progress=False).run()
    h = history(d)
    assert h.trials[0].value == 7.0
    assert h.trials[1].status == "failed" and "status 1" in h.trials[1].error


def test_a_failed_commands_own_traceback_ends_its_log_and_the_failure_summary(tmp_path):
    """autotune's frames (the runner raising on the exit status) are not appended after it."""
    from autotune.failures import failure_lines

    script = tmp_path / "train.py"
    script.write_text("import sys\nprint('epoch 1', file=sys.stderr)\n1 / 0\n")
    study = parse_study(study_dict(
        objective={"entry": None, "command": f"python {script} --x {{x}}"},
        space={"x": 1}, search={"algorithm": "grid"}, executor={"kind": "local"}))
    d = str(tmp_path / "cmd3")
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    assert rec.error == "RuntimeError: command exited with status 1: " \
                        "ZeroDivisionError: division by zero"
    lines = failure_lines(history(d), d)
    tail = lines[lines.index(next(ln for ln in lines if "last lines of" in ln)) + 1:]
    assert tail[-1].strip() == "ZeroDivisionError: division by zero", lines
    assert any("train.py" in ln for ln in tail) and not any("runner.py" in ln for ln in tail)
    with open(os.path.join(d, "trials", "0", "stderr.log")) as fh:
        assert "runner.py" not in fh.read()


def test_errors_that_differ_only_by_the_trials_own_folder_are_one(tmp_path):
    """Three trials failing alike, each naming a file in its own folder: one error, "3 of 3",
    not "1 of 3" and two others, as errors that differ only in their SLURM job id are one."""
    from autotune.failures import failure_lines

    study = parse_study(study_dict(
        objective={"entry": None, "command": "test {x} && cat {trial_dir}/missing.txt"},
        space={"x": {"values": [1, 2, 3]}}, search={"algorithm": "grid"},
        executor={"kind": "local", "max_concurrent": 3}, max_failures=0))
    d = str(tmp_path / "cmd4")
    Driver(study, d, progress=False).run()
    h = history(d)
    assert [r.status for r in h.trials.values()] == ["failed"] * 3
    lines = failure_lines(h, d)
    assert lines[0].startswith("most frequent error (3 of 3 failed trial(s), e.g. trial 0): "
                               "RuntimeError: command exited with status 1: cat: "
                               f"{os.path.join(d, 'trials', '0', 'missing.txt')}"), lines
    assert not any("other error" in ln for ln in lines), lines


def test_result_json_wins_over_the_stdout_line_and_a_broken_one_is_named(tmp_path):
    study = parse_study(study_dict(
        objective={"entry": None, "command": "echo {x} > {trial_dir}/result.json; "
                                             "echo '{{\"loss\": 2}}'"},
        space={"x": {"values": ['{"loss": 7}', "not json"]}}, search={"algorithm": "grid"}))
    d = str(tmp_path / "cmd4")
    Driver(study, d, progress=False).run()
    h = history(d)
    assert h.trials[0].value == 7.0
    path = os.path.join(d, "trials", "1", "result.json")
    assert h.trials[1].error == (f"ValueError: {path} is not valid JSON (Expecting value: "
                                 "line 1 column 1 (char 0))")


def test_a_module_named_like_the_standard_librarys_beside_the_entry_shadows_nothing(tmp_path):
    """A types.py beside the objective: a local trial starts as ``python script.py`` would
    (and as an inline one does), its folder importable but not ahead of the start-up."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "types.py").write_text("")  # functools' ``from types import GenericAlias`` fails
    (code / "myobjective.py").write_text("def f(params, ctx):\n    return {'loss': 1.0}\n")
    raw = study_dict(objective={"entry": "myobjective:f"}, space={"x": 1},
                     search={"algorithm": "grid"}, executor={"kind": "local"})
    study = parse_study(raw, base_dir=str(code), load_code=False)
    d = str(tmp_path / "d")
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    assert (rec.status, rec.error) == ("ok", None)


def test_numpy_scalar_results_arrive_as_numbers(tmp_path):
    # the worker writes its outcome as JSON: a numpy scalar must not arrive as its str()
    d, h = run_local(tmp_path, "numpy_scalars", n=2)
    assert [r.status for r in h.trials.values()] == ["ok", "ok"], [r.error for r in h.trials.values()]
    assert [r.value for r in h.trials.values()] == [0.0, 0.125]
    assert all(r.metrics["steps"] == 3.0 and r.cost_s == 2.5 for r in h.trials.values())
    assert all(type(r.value) is float for r in h.trials.values())


def test_a_numpy_nan_is_a_failed_trial_with_the_reason(tmp_path):
    d, h = run_local(tmp_path, "numpy_nan", n=1)
    assert h.trials[0].status == "failed" and h.trials[0].error == "metric 'loss' is nan"


def test_a_command_s_unusable_stdout_is_quoted_in_the_trial_s_error(tmp_path):
    """No output, a last line cut short, a progress line printed after the result, a bare
    number: each error says what the last line was, not only that no object was found."""
    study = parse_study(study_dict(
        objective={"entry": None, "command": "printf '%s' {x}"},
        space={"x": {"values": ["", '{"loss": 1,', '{"loss": 1}\nepoch 3 done', "42", " \n"]}},
        search={"algorithm": "grid"}))
    d = str(tmp_path / "cmd5")
    Driver(study, d, progress=False).run()
    errors = [history(d).trials[t].error for t in range(5)]
    assert errors[0] == errors[4] == ("ValueError: command printed nothing on stdout and wrote "
                                      "no result.json (expected a JSON object on its last line)")
    assert errors[1] == ("ValueError: command's last stdout line is not JSON (Expecting "
                         "property name enclosed in double quotes: line 1 column 12 (char 11)) "
                         "and it wrote no result.json: {\"loss\": 1,")
    assert errors[2].endswith("is not JSON (Expecting value: line 1 column 1 (char 0)) and it "
                              "wrote no result.json: epoch 3 done")
    assert errors[3] == ("ValueError: command's last stdout line is JSON but not an object of "
                         "metrics and it wrote no result.json: 42")


def test_a_result_line_longer_than_the_kept_tail_is_read_whole(tmp_path, monkeypatch):
    """A result line past 64 KB (a long list of per-sample values) was cut at its start
    (only the last 64 KB of stdout kept), failing with a confusing JSON error; it is read
    whole, and one past the limit fails saying the line is too long."""
    import autotune.runner as runner

    pad = "x" * 200_000
    study = parse_study(study_dict(
        objective={"entry": None, "command":
                   "python -c \"import json; print('progress\\n' * 50000); "
                   "print(json.dumps({{'loss': {x}, 'samples': 'x' * 200000}}))\""},
        space={"x": {"values": [1.5]}}, search={"algorithm": "grid"}))
    d = str(tmp_path / "long")
    monkeypatch.setattr(runner, "EXTRA_LIMIT", 1 << 20)  # recorded whole, to compare
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    assert rec.status == "ok" and rec.value == 1.5, rec.error
    assert rec.extra["samples"] == pad
    monkeypatch.undo()
    monkeypatch.setattr(runner, "LINE_LIMIT", 100_000)
    d = str(tmp_path / "too-long")
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    assert rec.status == "failed"
    assert rec.error.startswith("ValueError: command's last stdout line is longer than")
    assert "write the result to {trial_dir}/result.json" in rec.error


def test_an_integer_too_large_for_a_float_fails_its_trial_not_the_driver(tmp_path):
    """JSON holds integers of any size; float() of one past 1e308 raised OverflowError in the
    driver, which died, and died again on every resume collecting the same result."""
    huge = "1" + "0" * 400
    study = parse_study(study_dict(
        objective={"entry": None, "command": "printf '%s\\n' {x}"},
        space={"x": {"values": [f'{{"loss": 2, "count": {huge}}}', f'{{"loss": {huge}}}']}},
        search={"algorithm": "grid"}, executor={"kind": "local", "max_concurrent": 2}))
    d = str(tmp_path / "huge")
    summary = Driver(study, d, progress=False).run()
    assert summary.counts == {"ok": 1, "failed": 1}
    ok, failed = history(d).trials[0], history(d).trials[1]
    assert ok.value == 2.0 and ok.metrics["count"] == float("inf")
    assert failed.error == "metric 'loss' is an integer too large for a float"


def test_a_command_that_removes_its_trial_folder_fails_saying_so(tmp_path):
    """The worker's outcome and stderr.log went with the folder: the error pointed at a
    stderr.log that no longer existed."""
    study = parse_study(study_dict(
        objective={"entry": None, "command": "rm -rf {trial_dir}; echo '{{\"loss\": {x}}}'"},
        space={"x": {"values": [1]}}, search={"algorithm": "grid"},
        executor={"kind": "local", "max_concurrent": 1}))
    d = str(tmp_path / "rm")
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    assert rec.status == "failed"
    assert rec.error == (f"exited with status 1: its trial folder {d}/trials/0 was removed while "
                         "it ran (by the objective?), so its outcome and logs could not be kept")


def test_a_result_after_a_carriage_return_progress_bar_is_read_as_a_terminal_shows_it(tmp_path):
    """``progress 100%\\r{"loss": 1}`` shows only the object on a terminal, but failed as
    "not JSON" quoting both; the text after the last carriage return is the line (before it,
    where nothing follows: a CRLF ending)."""
    study = parse_study(study_dict(
        objective={"entry": None, "command": "printf {x}"},
        space={"x": {"values": ['progress 50%%\\rprogress 100%%\\r{"loss": 1}\\n',
                                '{"loss": 2}\\r\\n', 'bar\\r{"loss": 3}',
                                '{"loss": 4}\\rstep 9\\n']}},
        search={"algorithm": "grid"}, executor={"kind": "local", "max_concurrent": 2}))
    d = str(tmp_path / "cr")
    Driver(study, d, progress=False).run()
    recs = [history(d).trials[t] for t in range(4)]
    assert [r.value for r in recs[:3]] == [1.0, 2.0, 3.0], [r.error for r in recs]
    assert recs[3].status == "failed" and recs[3].error.endswith("result.json: step 9")


def test_a_progress_bar_redrawn_past_the_line_limit_does_not_cut_the_result(monkeypatch):
    """Hours of ``\\r``-redrawn progress on one line passed ``LINE_LIMIT``: the result that
    followed it on that line was cut."""
    import autotune.runner as runner

    monkeypatch.setattr(runner, "LINE_LIMIT", 1000)
    tail = runner.LastLine()
    for _ in range(200):
        tail += b"epoch 1: 50% |#####     |\r"
    tail += b'{"loss": 1}\n'
    assert tail.result() == ('{"loss": 1}', False)


def test_an_outcome_the_objective_made_unwritable_fails_its_trial_saying_so(tmp_path):
    """A command that made ``{trial_dir}/outcome.json`` a directory failed with the worker's
    own traceback (IsADirectoryError) as its error, and its retry stopped the driver, which
    could not remove that directory; the error now says what happened, and the directory is
    moved aside for the retry (its files kept)."""
    study = parse_study(study_dict(
        objective={"entry": None,
                   "command": "mkdir {trial_dir}/outcome.json; echo '{{\"loss\": {x}}}'"},
        space={"x": {"values": [1]}}, search={"algorithm": "grid"}, retries=1,
        executor={"kind": "local", "max_concurrent": 1}))
    d = str(tmp_path / "dir")
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    outcome = f"{d}/trials/0/outcome.json"
    assert (rec.status, rec.attempt, rec.starts) == ("failed", 1, 2)
    assert rec.error == (f"the trial ended but its outcome could not be written to {outcome} "
                         "(Is a directory): a trial folder's outcome.json is autotune's own, "
                         "which the objective must not create or make unwritable")
    left = sorted(os.listdir(f"{d}/trials/0"))
    assert [n for n in left if n.startswith("outcome.json.moved-")] and not [
        n for n in left if ".tmp" in n]


def test_a_result_nested_too_deeply_for_the_decoder_is_named_as_the_others(tmp_path):
    """Python's JSON decoder gives up on deep nesting with a RecursionError, not a
    ValueError: the trial's error was that bare ("maximum recursion depth exceeded while
    decoding a JSON array ..."), naming neither the stdout line nor the result.json read."""
    import pytest

    import autotune.runner as runner

    deep = '{"loss": 1, "x": ' + "[" * 100000 + "]" * 100000 + "}"
    with pytest.raises(ValueError) as exc:
        runner.result_of_line(deep)
    assert str(exc.value).startswith("command's last stdout line is not JSON (nested too deeply "
                                      "for Python's JSON decoder) and it wrote no result.json: "
                                      '{"loss": 1, "x": [[[')
    path = tmp_path / "result.json"
    path.write_text(deep)
    with pytest.raises(ValueError) as exc:
        runner.read_result_file(str(path))
    assert str(exc.value) == f"{path} is not valid JSON (nested too deeply for Python's JSON decoder)"


def _damaging(monkeypatch, times):
    """Each trial's outcome.json written over with junk the first ``times`` times its
    worker ends, before the live driver reads it (as something other than autotune would)."""
    from autotune.executors.local import LocalExecutor

    ended, seen = LocalExecutor._ended, {}

    def damaged(self, r):
        done = ended(self, r)
        if done and seen.get(r.job.trial, 0) < times:
            seen[r.job.trial] = seen.get(r.job.trial, 0) + 1
            with open(r.outcome_path, "w") as fh:
                fh.write('{"resu')
        return done
    monkeypatch.setattr(LocalExecutor, "_ended", damaged)


def test_an_outcome_damaged_under_a_live_driver_runs_its_trial_again(tmp_path, monkeypatch):
    """A worker that exited 0 leaving an outcome.json something else cut short was recorded
    failed, "exited with status 0 (see stderr.log)": its result is lost, not its failure
    (as without a driver, README "Trial states"), so it runs again, saying why."""
    _damaging(monkeypatch, 1)
    study = parse_study(study_dict(space={"x": {"values": [1.0, 2.0]}},
                                   search={"algorithm": "grid"},
                                   executor={"kind": "local", "max_concurrent": 1}))
    d = str(tmp_path / "dir")
    Driver(study, d, progress=False).run()
    recs = history(d).trials
    assert [(r.status, r.error, r.starts) for r in recs.values()] == [("ok", None, 2)] * 2


def test_an_outcome_damaged_again_fails_its_trial_saying_it_could_not_be_read(
        tmp_path, monkeypatch):
    _damaging(monkeypatch, 2)
    study = parse_study(study_dict(space={"x": {"values": [1.0]}}, search={"algorithm": "grid"},
                                   executor={"kind": "local", "max_concurrent": 1}))
    d = str(tmp_path / "dir")
    Driver(study, d, progress=False).run()
    rec = history(d).trials[0]
    assert (rec.status, rec.starts) == ("failed", 2)
    assert rec.error == (f"the trial ended but its outcome {d}/trials/0/outcome.json could not "
                         "be read (not valid JSON): its worker writes it whole, so something "
                         "else damaged it")
    assert "exited with status" not in rec.error
