"""A researcher's first own study, as they meet it on the command line: their own training
script run from where they launched, numbers written the way people write them, odd paths,
a cluster that does not answer, logs to watch while a trial runs."""
import json
import os
import stat
import subprocess
import sys
import time

import pytest
import yaml

from tests.helpers import REPO, cli, history, study_dict, write_study

ENV = {**os.environ, "PYTHONPATH": REPO}

TRAIN = """\
import json, os, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
os.makedirs(args["--out"], exist_ok=True)
with open(os.path.join(args["--out"], "argv.json"), "w") as fh:
    json.dump(sys.argv[1:], fh)
print(json.dumps({"loss": float(args["--lr"]) * 10}))
"""


def test_the_readme_command_runs_where_run_was_launched_and_resumes_from_elsewhere(tmp_path):
    home = tmp_path / "my project"  # a space in every path the command sees
    home.mkdir()
    (home / "train.py").write_text(TRAIN)
    write_study(str(home / "s.yaml"), study_dict(
        objective={"entry": None, "command": "python train.py --lr {lr} --out {trial_dir}"},
        space={"lr": {"values": [1e-4, 1e-3, 1e-2]}}, search={"algorithm": "grid", "max_trials": 2},
        executor={"kind": "local", "max_concurrent": 2}))
    d = str(home / "runs dir" / "s")
    proc = cli("run", "s.yaml", "--dir", d, "--quiet", cwd=str(home), env=ENV)
    assert proc.returncode == 0, proc.stderr
    h = history(d)
    assert [h.trials[t].status for t in (0, 1)] == ["ok", "ok"], [r.error for r in h.trials.values()]
    assert h.study["launch_dir"] == str(home)
    with open(os.path.join(d, "trials", "1", "argv.json")) as fh:
        assert json.load(fh) == ["--lr", "0.001", "--out", os.path.join(d, "trials", "1")]
    # resumed from another directory (the study file by its absolute path): still runs there
    data = yaml.safe_load((home / "s.yaml").read_text())
    data["search"]["max_trials"] = 3
    write_study(str(home / "s.yaml"), data)
    proc = cli("run", str(home / "s.yaml"), "--dir", d, "--quiet", cwd=str(tmp_path), env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert history(d).trials[2].status == "ok"


def test_study_file_dir_and_quoted_values(tmp_path):
    conf = tmp_path / "conf 'dir'"
    conf.mkdir()
    (conf / "train.py").write_text(
        "import json, sys\nprint(sys.argv[1:], file=open(sys.argv[-1] + '/argv.txt', 'w'))\n"
        "json.dump(sys.argv[1:], open(sys.argv[-1] + '/argv.json', 'w'))\n"
        "print(json.dumps({'loss': 1.0}))\n")
    write_study(str(conf / "s.yaml"), study_dict(
        objective={"entry": None,
                   "command": "python {study_file_dir}/train.py {msg} \"say: {msg}\" '{msg}' "
                              "{flags!u} {trial_dir}"},
        space={"msg": {"values": ["it's", 'a "b" $HOME `c` \\ d']}, "flags": "--a --b"},
        search={"algorithm": "grid"}, executor={"kind": "local", "max_concurrent": 2}))
    d = str(tmp_path / "out dir")
    proc = cli("run", str(conf / "s.yaml"), "--dir", d, "--quiet", cwd=str(tmp_path), env=ENV)
    assert proc.returncode == 0, proc.stderr
    for trial, msg in ((0, "it's"), (1, 'a "b" $HOME `c` \\ d')):
        with open(os.path.join(d, "trials", str(trial), "argv.json")) as fh:
            assert json.load(fh) == [msg, f"say: {msg}", msg, "--a", "--b",
                                     os.path.join(d, "trials", str(trial))]


def test_yaml_numbers_are_read_as_people_write_them(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("""\
name: y12
objective: {entry: "tests.objectives:quadratic", metric: loss}
space:
  x: {values: [1e-4, 1e-3]}
  y: 010
  flag: yes
  when: 2024-01-01
search: {algorithm: grid}
executor: {kind: inline}
""")
    d = str(tmp_path / "d")
    proc = cli("run", str(path), "--dir", d, "--quiet")
    assert proc.returncode == 0, proc.stderr
    params = history(d).trials[0].params
    assert params == {"x": 1e-4, "y": 10, "flag": "yes", "when": "2024-01-01"}
    assert isinstance(params["x"], float) and isinstance(params["y"], int)


HUGE = 10**400  # an integer YAML and Python hold, float() of which raises OverflowError


@pytest.mark.parametrize("over, line", [
    ({"search": {"algorithm": "asha", "max_trials": 3,
                 "fidelity": {"min": 1, "max": HUGE, "eta": 3}}}, "search.fidelity.max"),
    ({"search": {"algorithm": "hyperband", "fidelity": {"min": 1, "max": 9, "eta": HUGE}}},
     "search.fidelity.eta"),
    ({"search": {"algorithm": "random", "max_trials": 3, "max_compute_s": HUGE}},
     "search.max_compute_s"),
    ({"space": {"x": {"low": 0, "high": HUGE}}}, "space.x.high"),
    ({"space": {"x": {"values": [1, HUGE]}}}, "space.x.values"),
    ({"objective": {"timeout_s": HUGE}}, "objective.timeout_s"),
    ({"space": {"x": {"low": 0, "high": 10**30, "int": True}}}, "space.x"),
])
def test_a_number_too_large_for_a_float_is_one_line(tmp_path, over, line):
    """fidelity.max: 10**400 (and the like) raised OverflowError out of the checks (or, an
    int range's bound past 64 bits, a numpy casting error at the first draw): a traceback."""
    import autotune as at

    with pytest.raises(at.StudyError, match=rf"^{line}: .*(too large for a float|2\*\*62)"):
        at.Study(**study_dict(**over), dir=str(tmp_path / "d"))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(study_dict(**over)))
    proc = cli("run", str(path), "--dir", str(tmp_path / "d"))
    assert proc.returncode == 2 and proc.stderr.startswith(f"autotune: error: {line}: ")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not os.path.exists(tmp_path / "d")


def test_an_integer_of_more_digits_than_python_converts_is_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    text = yaml.safe_dump(study_dict())
    path.write_text(text + "retries: 1" + "0" * 5000 + "\n")
    proc = cli("run", str(path), "--dir", str(tmp_path / "d"))
    line = text.count("\n") + 1
    assert proc.returncode == 2
    assert proc.stderr == (f"autotune: error: {path}: line {line}: an integer of 5,001 digits, too "
                           "large for a float (more than 1.8e308)\n")


def test_unwritable_directory_is_one_line_and_nothing_written(tmp_path):
    path = write_study(str(tmp_path / "s.yaml"), study_dict())
    for where in ("/proc/autotune-test/d", "/sys/kernel/autotune-test"):
        proc = cli("run", path, "--dir", where)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [
            proc.stderr.strip()] and "--dir: cannot write a study into" in proc.stderr
    assert not os.path.exists("/proc/autotune-test")


def test_a_cluster_that_does_not_answer_is_refused_at_once(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"
    fake.write_text("#!/bin/sh\necho 'Slurmctld(primary) at head is DOWN'\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    path = write_study(str(tmp_path / "s.yaml"), study_dict(executor={"kind": "slurm"}))
    d = tmp_path / "d"
    began = time.monotonic()
    proc = cli("run", path, "--dir", str(d),
               env={**ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert time.monotonic() - began < 10
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("autotune: error: executor.kind: slurm, but the cluster does "
                                   "not answer (Slurmctld(primary) at head is DOWN)")
    assert not d.exists()


def test_a_commands_output_reaches_its_log_while_it_runs(tmp_path):
    gate = tmp_path / "gate"
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": None,
                   "command": f"echo epoch 1; while [ ! -e {gate} ]; do sleep 0.05; done; "
                              "echo '{{\"loss\": 1}}'"},
        space={"x": 1}, search={"algorithm": "grid"}, executor={"kind": "local"}))
    d = tmp_path / "d"
    driver = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", str(d),
                               "--quiet"], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    log = d / "trials" / "0" / "stdout.log"
    try:
        give_up = time.monotonic() + 60
        while not (log.exists() and "epoch 1" in log.read_text()):
            assert time.monotonic() < give_up and driver.poll() is None, "no streamed output"
            time.sleep(0.05)
        gate.touch()
        assert driver.wait(timeout=60) == 0, driver.stderr.read()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        driver.stdout.close()
        driver.stderr.close()
    assert history(str(d)).trials[0].value == 1.0


def _local_study(tmp_path, command, name="s.yaml", **over):
    over["executor"] = {"kind": "local", "max_concurrent": 2, **over.get("executor", {})}
    data = study_dict(objective={"entry": None, "command": command}, **over)
    return write_study(str(tmp_path / name), data)


def test_a_study_whose_trials_all_fail_says_why_and_stops_early(tmp_path):
    path = _local_study(tmp_path, "python no_such_train.py --lr {x}",
                        search={"algorithm": "random", "max_trials": 12})
    d = str(tmp_path / "d")
    proc = cli("run", path, "--dir", d, "--quiet", cwd=str(tmp_path), env=ENV)
    assert proc.returncode == 4, proc.stderr
    h = history(d)
    assert 5 <= len(h.trials) <= 7  # stopped at max_failures (5), not 12 runs
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: trial ")]
    assert len(said) == 1 and "failed: RuntimeError: command exited with status 2" in said[0]
    assert "most frequent error (" in proc.stderr
    assert "command exited with status 2: python: can't open file" in proc.stderr
    assert "no_such_train.py" in proc.stderr and "last lines of" in proc.stderr
    assert "max_failures" in proc.stderr and "--retry-failed" in proc.stderr
    status = cli("status", d)
    assert "most frequent error" in status.stdout and "can't open file" in status.stdout
    assert cli("report", d).returncode == 0
    assert "can't open file" in open(os.path.join(d, "summary.txt")).read()
    # fixed: the failed trials run again under their own ids, and now succeed
    (tmp_path / "no_such_train.py").write_text("import json; print(json.dumps({'loss': 1.0}))\n")
    proc = cli("run", path, "--dir", d, "--quiet", "--retry-failed", cwd=str(tmp_path), env=ENV)
    assert proc.returncode == 0, proc.stderr
    h2 = history(d)
    failed = [t for t, r in h.trials.items() if r.status == "failed"]
    assert len(failed) >= 5 and len(h2.trials) == 12
    # (a trial in flight at the stop may have ended failed before it was killed: collected now)
    assert sum(r.status == "ok" for r in h2.trials.values()) >= 12 - (len(h.trials) - len(failed))
    assert all(h2.trials[t].status == "ok" and h2.trials[t].attempt == 1 for t in failed)


def test_the_end_of_a_stopped_run_counts_its_trials_as_status_does(tmp_path):
    """The max_failures stop ends the trial still in flight: run's last lines count it as
    `status` and trajectory.csv do (interrupted: it runs again on resume), not as running."""
    path = _local_study(tmp_path, "if [ {x} = 5 ]; then sleep 60; fi; exit 3",
                        space={"x": {"values": [5, 0, 1, 2, 3, 4]}},
                        search={"algorithm": "grid", "max_trials": 6})
    d = str(tmp_path / "d")
    proc = cli("run", path, "--dir", d, "--quiet", env=ENV)
    assert proc.returncode == 4, proc.stderr
    assert "study t: 6 trials, 5 failed, 1 interrupted" in proc.stdout, proc.stdout
    assert "running" not in proc.stdout
    assert "trials: 5 failed, 1 interrupted" in cli("status", d).stdout


def test_max_failures_zero_runs_everything_and_still_exits_non_zero(tmp_path):
    path = _local_study(tmp_path, "exit 3", search={"algorithm": "random", "max_trials": 7},
                        max_failures=0)
    proc = cli("run", path, "--dir", str(tmp_path / "d"), "--quiet", env=ENV)
    assert proc.returncode == 4 and "every trial failed" in proc.stderr
    assert len(history(str(tmp_path / "d")).trials) == 7


def test_a_changed_command_is_refused_unless_accepted(tmp_path):
    path = _local_study(tmp_path, "echo '{{\"loss\": {x}}}'", search={"max_trials": 2})
    d = str(tmp_path / "d")
    assert cli("run", path, "--dir", d, "--quiet", env=ENV).returncode == 0
    data = yaml.safe_load(open(path))
    data["objective"]["command"] = "echo '{{\"loss\": 0}}'"
    data["search"]["max_trials"] = 3
    write_study(path, data)
    proc = cli("run", path, "--dir", d, "--quiet", env=ENV)
    assert proc.returncode == 2 and len(history(d).trials) == 2
    assert proc.stderr.startswith("autotune: error: objective.command: ") \
        and "--accept-objective-change" in proc.stderr and len(proc.stderr.splitlines()) == 1
    proc = cli("run", path, "--dir", d, "--quiet", "--accept-objective-change", env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert cli("run", path, "--dir", d, "--quiet", env=ENV).returncode == 0  # recorded
    assert len(history(d).trials) == 3


def test_start_lines_say_new_or_resumed_and_warn(tmp_path):
    path = _local_study(tmp_path, "echo '{{\"loss\": {x}}}'", search={"max_trials": 2},
                        executor={"kind": "local", "max_concurrent": (os.cpu_count() or 1) + 3})
    d = str(tmp_path / "d")
    first = cli("run", path, "--dir", d, env=ENV)
    assert first.returncode == 0, first.stderr
    assert f"new study t in {d}: random, up to 2 trials" in first.stderr
    assert "warning: executor.max_concurrent is" in first.stderr
    assert "2/2 done" in first.stderr and "elapsed" in first.stderr
    data = yaml.safe_load(open(path))
    data["search"]["max_trials"] = None
    write_study(path, data)
    driver = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d],
                              cwd=REPO, env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        lines = [driver.stderr.readline() for _ in range(2)]
    finally:
        driver.terminate()
        driver.wait(timeout=60)
        driver.stderr.close()
    assert lines[0].startswith(f"resuming study t in {d}: 2 trials done"), lines
    assert lines[1].startswith("warning: no budget"), lines


def test_progress_line_fits_the_terminal():
    import io

    from autotune.history import History
    from autotune.progress import Progress, fit

    assert fit("x" * 200, 79) == "x" * 78 + "…" and fit("short", 79) == "short"
    p = Progress("min", stream=io.StringIO(), total=40)
    text = p.line(History(), 3)
    assert text.startswith("0/40 done, 3 running, 0s elapsed")


def _wait_for(predicate, what, seconds=60):
    give_up = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_local_trials_outlive_a_killed_driver_and_are_collected_once(tmp_path):
    """kill -9 of the driver: trial 0 finishes meanwhile, trial 1 still runs; the next run
    collects the first and re-attaches to the second, neither runs twice."""
    runs = tmp_path / "runs.log"
    command = (f"echo {{trial}} >> {runs}; while [ ! -e {tmp_path}/gate{{trial}} ]; do "
               "sleep 0.05; done; echo '{{\"loss\": {x}}}'")
    path = _local_study(tmp_path, command, space={"x": {"values": [1, 2]}},
                        search={"algorithm": "grid"})
    d = str(tmp_path / "d")
    driver = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d,
                               "--quiet"], cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
    _wait_for(lambda: runs.exists() and len(runs.read_text().split()) == 2, "two trials started")
    driver.kill()
    driver.wait()
    status = cli("status", d)
    assert "2 running-alone (still running without a driver" in status.stdout, status.stdout
    (tmp_path / "gate0").touch()
    _wait_for(lambda: os.path.exists(os.path.join(d, "trials", "0", "outcome.json")), "trial 0")
    again = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d,
                              "--quiet"], cwd=REPO, env=ENV, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: history(d).trials[0].status == "ok", "trial 0 collected")
    (tmp_path / "gate1").touch()
    assert again.wait(timeout=60) == 0, again.stderr.read()
    again.stderr.close()
    h = history(d)
    assert [(r.status, r.value, r.attempt) for r in h.trials.values()] == [("ok", 1.0, 0),
                                                                         ("ok", 2.0, 0)]
    assert sorted(runs.read_text().split()) == ["0", "1"]  # each ran once


def _gated_trial_driver(tmp_path):
    """A driver running one local trial that waits until ``gate`` exists, then gives loss 1:
    (gate, study file, study dir, the driver's process)."""
    gate = tmp_path / "gate"
    path = _local_study(tmp_path, f"while [ ! -e {gate} ]; do sleep 0.05; done; "
                        "echo '{{\"loss\": 1}}'", space={"x": 1}, search={"algorithm": "grid"})
    d = str(tmp_path / "d")
    driver = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d,
                               "--quiet"], cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
    return gate, path, d, driver


def _trial_left_to_end(tmp_path):
    """``_gated_trial_driver``, its driver killed (-9) once the trial runs, then the gate
    opened: the trial ends with no driver to record it. (study file, study dir)."""
    gate, path, d, driver = _gated_trial_driver(tmp_path)
    _wait_for(lambda: os.path.exists(os.path.join(d, "history.jsonl"))
              and history(d).trials.get(0) is not None
              and history(d).trials[0].status == "running", "the trial")
    driver.kill()
    driver.wait()
    gate.touch()
    return path, d


def test_a_trial_that_ended_without_a_driver_is_charged_its_own_run_time(tmp_path):
    """kill -9 of the driver; the trial ends meanwhile and the next run collects it seconds
    later: its end time and cost are those of the trial, not of its collection."""
    path, d = _trial_left_to_end(tmp_path)
    opened = time.time() - history(d).study["t0"]
    _wait_for(lambda: os.path.exists(os.path.join(d, "trials", "0", "outcome.json")), "its end")
    time.sleep(3)  # no driver collects it meanwhile
    assert cli("run", path, "--dir", d, "--quiet", env=ENV).returncode == 0
    rec = history(d).trials[0]
    assert (rec.status, rec.attempt) == ("ok", 0)
    assert opened <= rec.end_s < opened + 1.5, (opened, rec.end_s)
    assert rec.cost_s == pytest.approx(rec.end_s - rec.start_s, abs=1e-5)


def test_a_trial_whose_outcome_was_damaged_without_a_driver_runs_again_as_status_says(tmp_path):
    """kill -9 of the driver; the trial ends meanwhile, and its outcome.json is cut short
    (its worker writes it whole, so something else damaged it). ``status`` said interrupted
    (runs again on resume) but the next run recorded it failed, "ended without an outcome":
    its result is lost, not its failure, so it runs again, as status says."""
    path, d = _trial_left_to_end(tmp_path)
    outcome = os.path.join(d, "trials", "0", "outcome.json")
    _wait_for(lambda: os.path.exists(outcome), "its end")
    _wait_for(lambda: not os.path.exists(f"/proc/{history(d).trials[0].job_id[4:]}"), "its exit")
    with open(outcome, "r+") as fh:
        fh.truncate(7)
    status = cli("status", d).stdout
    assert "1 interrupted" in status and "ended-alone" not in status, status
    assert cli("run", path, "--dir", d, "--quiet", env=ENV).returncode == 0
    rec = history(d).trials[0]
    assert (rec.status, rec.value, rec.error, rec.starts) == ("ok", 1.0, None, 2)


def test_cancel_stops_local_trials_a_dead_driver_left(tmp_path):
    path = _local_study(tmp_path, "echo $$ > {trial_dir}/sh.pid; sleep 300",
                        space={"x": 1}, search={"algorithm": "grid"})
    d = str(tmp_path / "d")
    driver = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d,
                               "--quiet"], cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
    pid_file = os.path.join(d, "trials", "0", "sh.pid")
    _wait_for(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(), "the trial")
    driver.kill()
    driver.wait()
    shell = int(open(pid_file).read())
    assert os.path.exists(f"/proc/{shell}")
    proc = cli("cancel", d)
    assert "stopped 1 local trial(s) left running by a dead driver" in proc.stdout, proc.stdout
    _wait_for(lambda: not os.path.exists(f"/proc/{shell}"), "the trial's shell to end", 10)
    assert "interrupted (runs again on resume)" in cli("status", d).stdout
    # and so it does: the next run runs the stopped local trial again, under its own id
    data = yaml.safe_load(open(path))
    data["objective"]["command"] = "echo '{{\"loss\": 1}}'"
    write_study(path, data)
    proc = cli("run", path, "--dir", d, "--quiet", "--accept-objective-change", env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert {t: r.status for t, r in history(d).trials.items()} == {0: "ok"}


def test_background_children_end_with_their_trial(tmp_path):
    """``cmd &`` (holding the output pipes, or not) and a Python Popen: all end with the trial,
    whether it succeeded, failed or timed out."""
    command = ("sleep 300 & echo $! > {trial_dir}/bg.pid; "
               "python -c 'import subprocess; print(subprocess.Popen([\"sleep\", \"300\"]).pid)'"
               " > {trial_dir}/popen.pid; "
               "if [ {x} = 1 ]; then echo '{{\"loss\": 1}}'; elif [ {x} = 2 ]; then exit 1; "
               "else sleep 300; fi")
    path = _local_study(tmp_path, command, space={"x": {"values": [1, 2, 3]}},
                        search={"algorithm": "grid"})
    data = yaml.safe_load(open(path))
    data["objective"]["timeout_s"] = 3
    data["executor"]["max_concurrent"] = 3
    write_study(path, data)
    d = str(tmp_path / "d")
    proc = cli("run", path, "--dir", d, "--quiet", env=ENV)
    assert proc.returncode == 0, proc.stderr
    h = history(d)
    assert [r.status for r in h.trials.values()] == ["ok", "failed", "failed"]
    assert "timed out" in h.trials[2].error
    for trial in range(3):
        for name in ("bg.pid", "popen.pid"):
            pid = int(open(os.path.join(d, "trials", str(trial), name)).read())
            _wait_for(lambda: not os.path.exists(f"/proc/{pid}")
                      or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z",
                      f"trial {trial}'s {name} to end", 5)


def test_trajectory_counts_reruns_after_an_interrupt(tmp_path):
    import csv
    import signal

    gate, path, d, driver = _gated_trial_driver(tmp_path)
    _wait_for(lambda: os.path.exists(os.path.join(d, "trials", "0", "worker.pid")), "the trial")
    time.sleep(0.3)
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=60) == 130
    assert "1 interrupted (runs again on resume)" in cli("status", d).stdout
    gate.touch()
    assert cli("run", path, "--dir", d, "--quiet", env=ENV).returncode == 0
    with open(os.path.join(d, "trajectory.csv")) as fh:
        row = next(csv.DictReader(fh))
    assert row["status"] == "ok" and row["attempts"] == "2"


def test_plot_scales_follow_the_declared_grid():
    from autotune.plots import param_scale

    assert param_scale({"low": 1e-5, "high": 1e-1, "log": True}) == ("log", {})
    assert param_scale({"low": 0.0, "high": 1.0}) == ("linear", {})
    assert param_scale({"values": [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 1e-3]}) == ("log", {})
    assert param_scale({"values": [0, 1e-2, 5e-2, 1e-1, 5e-1, 1, 5, 10, 50, 100, 500]}) == \
        ("symlog", {"linthresh": 1e-2})
    assert param_scale({"values": [32, 64, 128, 256]}) == ("linear", {})  # x8: not wide enough
    assert param_scale({"values": [-1.0, 0.0, 1.0]}) == ("linear", {})


def test_report_plots_every_metric_marked_and_labelled(tmp_path):
    """An axis search on a log grid: each metric along each parameter, log axes for the log
    grid in every plot of it, the best trial and the search's reported setting marked, the
    metric named, a title; a study with no successful trial gets notes."""
    import matplotlib

    matplotlib.use("Agg")
    from autotune.plots import plot_along
    from autotune.summary import searcher_view

    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        space={"x": {"values": [0.01, 0.1, 1.0, 10.0, 100.0]}, "y": {"values": [-1.0, -0.5, 0.5]}},
        search={"algorithm": "axis", "max_trials": 20},
        executor={"kind": "simulated", "max_concurrent": 2}))
    d = str(tmp_path / "d")
    assert cli("run", path, "--dir", d, "--quiet").returncode == 0
    h = history(d)
    seen = {}

    def save(fig, out):
        ax = fig.axes[0]
        seen[os.path.basename(out)] = (ax.get_xscale(), ax.get_ylabel(), ax.get_title(),
                                       [t.get_text() for t in ax.get_legend().get_texts()])
        return out

    setting = searcher_view(h).get("base")
    assert setting is not None
    plot_along(h, str(tmp_path / "plots"), setting, save)
    assert sorted(seen) == ["loss_along_x.png", "loss_along_y.png", "score_along_x.png",
                            "score_along_y.png"]
    for name, (scale, ylabel, title, legend) in seen.items():
        metric, param = name[:-4].split("_along_")
        assert scale == ("log" if param == "x" else "linear")
        assert ylabel == metric and title == f"t: {metric} along {param}"
        assert any(t.startswith("best trial") for t in legend)
        assert "the search's setting (status)" in legend
    # nothing succeeded: every plot says so instead of showing empty axes
    bad = write_study(str(tmp_path / "f.yaml"), study_dict(
        objective={"entry": "tests.objectives:raises"}, search={"max_trials": 2}, max_failures=0))
    assert cli("run", bad, "--dir", str(tmp_path / "f"), "--quiet").returncode == 4
    report = cli("report", str(tmp_path / "f"))
    assert report.returncode == 0, report.stderr
    assert "loss_along_x.png" in os.listdir(str(tmp_path / "f" / "plots"))


def test_the_holder_is_named_even_while_it_is_still_writing_its_card(tmp_path):
    """A second driver that finds the lock taken before the first has written driver.json
    names it once it appears (not "holder unknown"); a card that never comes is said so."""
    import threading

    from autotune.studydir import StudyDir

    sdir = StudyDir(str(tmp_path))
    late = threading.Timer(0.3, sdir._write_holder)
    late.start()
    try:
        assert sdir.holder().startswith(f"pid {os.getpid()} on host ")
    finally:
        late.cancel()
    os.remove(os.path.join(str(tmp_path), "driver.json"))
    assert "holder unknown: driver.json is missing" in sdir.holder()


def test_an_entrys_prints_reach_its_log_while_it_runs(tmp_path):
    gate = tmp_path / "gate"
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": "tests.objectives:prints_then_waits"},
        space={"x": 1.0, "gate": str(gate)}, search={"algorithm": "grid"},
        executor={"kind": "local"}))
    d = tmp_path / "d"
    driver = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", str(d),
                               "--quiet"], cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
    log = d / "trials" / "0" / "stdout.log"
    try:
        _wait_for(lambda: log.exists() and "epoch 1" in log.read_text(), "the print in the log")
        gate.touch()
        assert driver.wait(timeout=60) == 0
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


def _kill_the_driver_once_its_trial_runs(path: str, d: str) -> int:
    """``run`` of a one-trial local study, SIGKILLed once its trial's worker started; the
    worker's pid (it runs on without a driver)."""
    driver = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d,
                               "--quiet"], cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
    pid_file = os.path.join(d, "trials", "0", "worker.pid")
    _wait_for(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(), "the trial")
    driver.kill()
    driver.wait()
    return int(open(pid_file).read())


def test_a_trial_left_without_a_driver_still_stops_at_its_time_limit(tmp_path):
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": "tests.objectives:hangs", "timeout_s": 1},
        space={"x": 1.0}, search={"algorithm": "grid"}, executor={"kind": "local"}))
    d = str(tmp_path / "d")
    worker = _kill_the_driver_once_its_trial_runs(path, d)
    assert os.path.exists(f"/proc/{worker}")
    _wait_for(lambda: not os.path.exists(f"/proc/{worker}"), "the watchdog", 20)
    with open(os.path.join(d, "trials", "0", "stderr.log")) as fh:
        assert "with no driver to end the trial" in fh.read()
    # it left the outcome a live driver records: the next run records it, never runs it again
    status = cli("status", d).stdout
    assert "1 ended-alone (ended without a driver: the next run records them)" in status, status
    assert "interrupted" not in status, status
    assert cli("run", path, "--dir", d, "--quiet", env=ENV).returncode == 4  # nothing succeeded
    rec = history(d).trials[0]
    assert (rec.status, rec.failure, rec.error) == ("failed", "timeout", "timed out after 1s")
    assert (rec.attempt, rec.starts) == (0, 1)
    assert 6.0 <= rec.cost_s < 15.0  # the trial ran until its watchdog, past the 5 s grace


def test_a_trial_that_ran_past_its_time_limit_without_a_driver_is_timed_out(tmp_path):
    """Its watchdog waits 5 s past ``timeout_s`` for a driver to end it first; a trial that
    ended within that grace left a result, which the next run recorded as ok although a
    live driver would have ended it at the limit: it is timed out, as the live one says."""
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": None, "command": "sleep 2.5; echo '{{\"loss\": 1}}'",
                   "timeout_s": 1},
        space={"x": 1.0}, search={"algorithm": "grid"}, executor={"kind": "local"}))
    d = str(tmp_path / "d")
    worker = _kill_the_driver_once_its_trial_runs(path, d)
    _wait_for(lambda: not os.path.exists(f"/proc/{worker}"), "the trial's end", 20)
    assert cli("run", path, "--dir", d, "--quiet", env=ENV).returncode == 4  # nothing succeeded
    rec = history(d).trials[0]
    assert (rec.status, rec.failure, rec.error) == ("failed", "timeout", "timed out after 1s")
    assert (rec.attempt, rec.starts) == (0, 1)  # recorded, not run again


def _ctrl_c_at_a_terminal(argv: list[str], when, times: int = 1, seconds: float = 60) -> bytes:
    """Run ``argv`` on a terminal of its own (a pty: its foreground process group), type
    Ctrl-C ``times`` once ``when()`` holds, and return what it wrote."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(REPO)
        os.execve(argv[0], argv, ENV)
    out, typed, give_up = b"", 0, time.monotonic() + seconds
    try:
        while time.monotonic() < give_up:
            if typed < times and when():
                os.write(fd, b"\x03")
                typed += 1
                time.sleep(0.3)
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    out += os.read(fd, 65536)
                except OSError:  # the child is gone
                    pass
            if os.waitpid(pid, os.WNOHANG)[0]:
                return out
        raise AssertionError(f"still running after {seconds}s: {out!r}")
    finally:
        os.close(fd)


def test_ctrl_c_at_the_terminal_lets_an_inline_command_trial_end_as_the_driver_says(tmp_path):
    """Ctrl-C at a terminal signals its whole foreground process group: the driver running
    an inline trial and the trial's command alike. The driver said "stopping once the trial
    running in this process ends (it is recorded)", and recorded the trial failed (command
    killed by signal 2), to be run again only with --retry-failed. The first Ctrl-C now
    reaches the driver alone, and the trial ends well; the second stops it at once."""
    started = tmp_path / "started"
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": None, "command": "touch {started}; sleep 2; "
                                             "echo '{{\"loss\": 1}}'"},
        space={"started": str(started)}, search={"algorithm": "grid"},
        executor={"kind": "inline"}))
    d = str(tmp_path / "d")
    argv = [sys.executable, "-m", "autotune", "run", path, "--dir", d]
    out = _ctrl_c_at_a_terminal(argv, started.exists)
    assert b"stopping once the trial running in this process ends" in out, out
    rec = history(d).trials[0]
    assert (rec.status, rec.error, rec.value) == ("ok", None, 1.0), out
    started.unlink()
    d2 = str(tmp_path / "d2")
    argv = [sys.executable, "-m", "autotune", "run", path, "--dir", d2]
    out = _ctrl_c_at_a_terminal(argv, started.exists, times=2)
    rec = history(d2).trials[0]
    assert (rec.status, rec.error) == ("running", None), out  # interrupted: runs again


def test_a_dead_workers_leftover_processes_are_ended_on_resume(tmp_path):
    """The driver and then the trial's worker are killed; the trial's shell and its
    background child live on. The next run ends that whole group before running it again."""
    import signal

    gate = tmp_path / "gate"
    command = (f"sleep 300 & echo $! >> {tmp_path}/bg.pids; "
               f"while [ ! -e {gate} ]; do sleep 0.05; done; echo '{{{{\"loss\": 1}}}}'")
    path = _local_study(tmp_path, command, space={"x": 1}, search={"algorithm": "grid"})
    d = str(tmp_path / "d")
    driver = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d,
                               "--quiet"], cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
    pids = tmp_path / "bg.pids"
    _wait_for(lambda: pids.exists() and pids.read_text().strip(), "the trial's background child")
    driver.kill()
    driver.wait()
    os.kill(int(open(os.path.join(d, "trials", "0", "worker.pid")).read()), signal.SIGKILL)
    first = int(pids.read_text().split()[0])
    assert os.path.exists(f"/proc/{first}")
    gate.touch()
    proc = cli("run", path, "--dir", d, "--quiet", env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert history(d).trials[0].status == "ok"
    _wait_for(lambda: not os.path.exists(f"/proc/{first}")
              or open(f"/proc/{first}/stat").read().split(") ")[1][0] == "Z",
              "the first attempt's background child to end", 10)


def test_status_after_cancel_of_a_slurm_study_says_the_next_run_records_them():
    from autotune import events as ev
    from autotune.history import History
    from autotune.summary import summary

    h = History()
    identity = {"space": {"x": {"values": [1, 2]}}, "algorithm": "grid", "seed": 0,
                "search_options": {}, "metric": "loss", "mode": "min", "pretrain": None}
    h.apply(ev.study("s", 0.0, identity, {"executor": {"kind": "slurm"}}))
    h.apply(ev.ask(0.0, 2, [ev.trial_entry(0, {"x": 1}), ev.trial_entry(1, {"x": 2})]))
    h.apply(ev.submit(0.1, 0, 0, "4242"))
    h.apply(ev.submit(0.1, 1, 0, "4243"))
    assert "2 running-alone (still running without a driver: the next run collects them)" in \
        summary(h, running_driver=False, directory="/nonexistent")
    h.apply(ev.cancel(5.0, ["4242", "4243"]))
    text = summary(h, running_driver=False, directory="/nonexistent")
    # the next run finds the jobs CANCELLED and records the trials cancelled: not run again
    assert "trials: 2 ended-alone (ended without a driver: the next run records them) " \
        "(2 in all)" in text, text
    assert "2 running" in summary(h, running_driver=True, directory="/nonexistent")


def _reports_epochs(params, ctx):
    """The D-DBPN job's result: its loss and the epochs it trained, a metric named like
    trajectory.csv's own ``epochs`` column."""
    return {"loss": (params["x"] - 1.0) ** 2 + params["value"], "epochs": 3.0}


def test_each_plot_is_named_by_the_trajectory_columns_it_draws(tmp_path):
    """A metric ``epochs`` is the column ``metric_epochs`` (the trials' own ``epochs`` is
    another): its plots are ``metric_epochs_along_*.png``, not ``epochs_along_*``, which
    would read as the training length's; a parameter ``value`` likewise. The plots an
    older report wrote under the old names are removed, not left beside the new."""
    import csv

    import autotune as at

    d = str(tmp_path / "d")
    study = at.Study(name="ep", objective={"entry": _reports_epochs, "metric": "loss"},
                     space={"x": {"low": 0.0, "high": 2.0}, "value": {"values": [0.0, 1.0]}},
                     search={"algorithm": "random", "seed": 0, "max_trials": 4},
                     executor={"kind": "inline"}, dir=d)
    study.run(progress=False)
    os.makedirs(os.path.join(d, "plots"))
    for stale in ("epochs_along_x.png", "loss_along_value.png"):  # an older report's names
        with open(os.path.join(d, "plots", stale), "wb") as fh:
            fh.write(b"old")
    report = cli("report", d)
    assert report.returncode == 0, report.stderr
    with open(os.path.join(d, "trajectory.csv")) as fh:
        columns = next(csv.reader(fh))
    assert "metric_epochs" in columns and "param_value" in columns
    along = sorted(n for n in os.listdir(os.path.join(d, "plots")) if "_along_" in n)
    assert along == ["loss_along_param_value.png", "loss_along_x.png",
                     "metric_epochs_along_param_value.png", "metric_epochs_along_x.png"]
    for name in along:
        metric, param = name[:-4].split("_along_")
        assert metric in columns and param in columns
    assert list(study.load().trials_dataframe()["metric_epochs"]) == [3.0] * 4


LONG = "a_metric_named_at_length_" * 12  # 300 characters: longer than a file name may be


def _slashed_metrics(params, ctx):
    return {"loss": params["x"] ** 2, "val/acc": 1 - params["x"], "val_acc": params["x"],
            LONG: 1.0, "100%": 0.5, "": 2.0}


def test_a_metric_named_like_a_path_is_plotted_under_a_file_name_of_its_own(tmp_path):
    """``val/acc`` (TensorBoard's way of naming) made report crash on a folder ``val`` that
    was not there, after summary.txt and half the plots were written; a name longer than
    255 bytes could not be a file either. Each is one file in plots/, distinct from the
    others, with the metric's own name in its title. A result key "" was a column (and a
    plot) without a name."""
    import autotune as at

    d = str(tmp_path / "d")
    at.Study(name="sl", objective={"entry": _slashed_metrics, "metric": "loss"},
             space={"x": {"low": 0.0, "high": 1.0}},
             search={"algorithm": "random", "seed": 0, "max_trials": 3},
             executor={"kind": "inline"}, dir=d).run(progress=False)
    report = cli("report", d, "--html")
    assert report.returncode == 0 and not report.stderr, report.stderr  # nor a layout warning
    along = sorted(n for n in os.listdir(os.path.join(d, "plots")) if "_along_" in n)
    from autotune.plots import plot_file

    long = plot_file(LONG, "x")
    assert along == ["100%25_along_x.png", long, "loss_along_x.png", "metric__along_x.png",
                     "val%2Facc_along_x.png", "val_acc_along_x.png"]
    assert long.startswith(LONG[:90]) and len(long.encode()) + len(".tmp.png") <= 255
    assert not os.path.exists(os.path.join(d, "plots", "val"))
    with open(os.path.join(d, "report.html"), encoding="utf-8") as fh:
        assert "title='val%2Facc_along_x'" in fh.read()
    # a result key "" is a column named metric_, not one without a name
    with open(os.path.join(d, "trajectory.csv")) as fh:
        columns = fh.readline().strip().split(",")
    assert "" not in columns and "metric_" in columns and "val/acc" in columns
