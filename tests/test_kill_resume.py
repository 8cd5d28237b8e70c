"""SIGKILL the real driver at several points, run it again, and check nothing is lost or repeated."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autotune.driver import Driver
from autotune.states import trial_states
from autotune.study import parse_study
from tests.helpers import REPO, cli, history, study_dict, write_study

N = 10


def make_study(tmp_path, log):
    return study_dict(space={"x": {"low": -3.0, "high": 3.0}, "y": {"values": [-1.0, 0.0, 1.0]},
                             "sleep_s": 0.4, "log": log},
                      search={"max_trials": N},
                      executor={"kind": "local", "max_concurrent": 2})


def done_in(d):
    path = os.path.join(d, "history.jsonl")
    if not os.path.exists(path):
        return -1
    return sum(1 for r in history(d).trials.values() if r.status == "ok")


def start(path, d):
    return subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d, "--quiet"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when(proc, d, done_at_least):
    deadline = time.time() + 60
    while done_in(d) < done_at_least:
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return {t for t, r in history(d).trials.items() if r.status == "ok"}


# ---- a driver in this process, killed between two of its steps ------------------------------
def one_trial(log, sleep, **over):
    """A study of one local trial that logs a line per run of its objective and sleeps."""
    keys = {"space": {"x": {"values": [0.5]}, "sleep_s": sleep, "log": log},
            "search": {"max_trials": 1}, "executor": {"kind": "local", "max_concurrent": 1}}
    return parse_study(study_dict(**{**keys, **over}))


def holding(study, d):
    """A driver that holds the study and has started, as run() has before its loop."""
    driver = Driver(study, d, progress=False)
    driver.dir.check_run()
    driver.dir.acquire()
    driver._start()
    return driver


def wait_for(ready):
    deadline = time.time() + 60
    while not ready():
        assert time.time() < deadline
        time.sleep(0.05)


def wait_ended(driver, d):
    """Its only worker's outcome written and its process gone (the outcome comes first)."""
    wait_for(lambda: os.path.exists(os.path.join(d, "trials", "0", "outcome.json")))
    driver.executor._running[0].proc.wait(timeout=60)


def left_by_a_killed_driver(study, d: str, log: str, state: str, recorded: bool = True,
                            before_kill=lambda: None):
    """The driver of ``study`` in ``d`` that started its one trial (and recorded the start,
    unless not ``recorded``: killed in between) and was killed while the trial ran on
    (``state`` "running": it has begun writing ``log``) or once it had ended alone
    ("ended"), ``before_kill`` done just before; returned, killed."""
    first = holding(study, d)
    [rec] = first.ask_trials(1)
    if recorded:
        first._submit([rec])
    else:
        first.executor.submit(first._job(rec))
    if state == "running":
        wait_for(lambda: os.path.exists(log))
    else:
        wait_ended(first, d)
    before_kill()
    killed(first)
    return first


def killed(driver):
    """What a SIGKILL leaves of a driver: its journal's lines, the lock let go."""
    driver.journal.close()
    driver.dir.release()


def resumed_once(study, d, log):
    """The next run finishes the trial, its objective having run once in all."""
    summary = Driver(study, d, progress=False).run()
    assert summary.counts == {"ok": 1}, history(d).trials[0].error
    assert len(open(log).readlines()) == 1      # the objective ran once, not twice
    rec = history(d).trials[0]
    assert (rec.status, rec.attempt, rec.value) == ("ok", 0, 0.5)
    return rec


@pytest.mark.parametrize("kill_points", [[0], [3], [2, 6]], ids=["at-start", "after-3", "twice"])
def test_sigkill_then_resume_loses_nothing_and_repeats_nothing(tmp_path, kill_points):
    log = str(tmp_path / "runs.log")
    path = write_study(str(tmp_path / "s.yaml"), make_study(tmp_path, log))
    d = str(tmp_path / "d")
    kills = []  # (trials finished before the kill, runs logged by then)
    for point in kill_points:
        finished = kill_when(start(path, d), d, point)
        kills.append((finished, len(open(log).readlines()) if os.path.exists(log) else 0))
    proc = cli("run", path, "--dir", d, "--quiet")
    assert proc.returncode == 0, proc.stderr

    h = history(d)
    assert sorted(h.trials) == list(range(N))
    assert all(r.status == "ok" for r in h.trials.values())
    lines = [json.loads(line)["trial"] for line in open(log)]
    for finished, logged in kills:
        again = finished & set(lines[logged:])
        assert not again, f"trials {again} had finished before a kill but ran again after it"
    assert set(lines) == set(range(N))
    assert len(kills[-1][0]) >= kill_points[-1]  # the kills did land where intended

    # the seeded searcher continued the trajectory an uninterrupted run takes
    reference = parse_study(study_dict(space={"x": {"low": -3.0, "high": 3.0},
                                              "y": {"values": [-1.0, 0.0, 1.0]},
                                              "sleep_s": 0.0, "log": ""},
                                       search={"max_trials": N}))
    ref_dir = str(tmp_path / "ref")
    Driver(reference, ref_dir, progress=False).run()
    ref = history(ref_dir)
    assert [(r.params["x"], r.params["y"]) for _, r in sorted(h.trials.items())] == \
           [(r.params["x"], r.params["y"]) for _, r in sorted(ref.trials.items())]


def test_a_second_run_is_refused_while_the_first_holds_the_study(tmp_path):
    log = str(tmp_path / "runs.log")
    data = make_study(tmp_path, log)
    # outlasts two CLI starts and a status on a loaded machine (2 s did not: two benchmarks
    # and two test runs on these two cores, and the first run had ended before status)
    data["space"]["sleep_s"] = 6.0
    data["search"]["max_trials"] = 2  # the last run runs both again, at once: 6 s
    path = write_study(str(tmp_path / "s.yaml"), data)
    d = str(tmp_path / "d")
    first = start(path, d)
    try:
        deadline = time.time() + 30
        while not os.path.exists(os.path.join(d, "driver.json")):
            assert time.time() < deadline
            time.sleep(0.02)
        second = cli("run", path, "--dir", d)
        assert second.returncode == 3
        assert f"is being run by pid {first.pid} on host" in second.stderr
        status = cli("status", d)
        assert "a driver is running" in status.stdout
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert first.returncode == 130  # interrupted cleanly; resumable
    assert cli("run", path, "--dir", d, "--quiet").returncode == 0
    assert sorted(history(d).trials) == list(range(2))


def test_ctrl_c_under_inline_says_the_running_trial_ends_and_is_recorded(tmp_path):
    """In the driver's own process the running trial is not cut short by a first Ctrl-C:
    the message says so (and how to stop it now), and the trial is recorded."""
    log = str(tmp_path / "runs.log")
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        space={"x": {"values": [1.0, 2.0]}, "sleep_s": 1.5, "log": log},
        search={"algorithm": "grid"}, executor={"kind": "inline"}))
    d = str(tmp_path / "d")
    proc = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (os.path.exists(log) and open(log).read()):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert ("SIGINT: stopping once the trial running in this process ends (it is recorded); "
            "again to stop it now (it runs again on resume)") in err
    assert history(d).trials[0].status == "ok"


@pytest.mark.parametrize("state", ["running", "ended"])
def test_a_worker_started_but_not_recorded_as_started_is_watched_again_not_run_twice(tmp_path,
                                                                                      state):
    # the driver records a batch's starts once all its workers are started: killed in
    # between, the history holds the trial as asked only, while its worker runs (or ended)
    log, d = str(tmp_path / "runs.log"), str(tmp_path / "d")
    study = one_trial(log, 1.5 if state == "running" else 0.3)
    left_by_a_killed_driver(study, d, log, state, recorded=False)
    assert history(d).trials[0].status == "pending"
    # status, the CSV and the DataFrame say what the next run does with it
    assert trial_states(history(d), False, d) == {0: f"{state}-alone"}
    resumed_once(study, d, log)


@pytest.mark.parametrize("recorded", [True, False], ids=["start-recorded", "start-unrecorded"])
def test_a_worker_whose_trial_folder_was_removed_is_watched_again_not_run_twice(tmp_path,
                                                                                recorded):
    """The trial's folder (job.json, worker.pid with it) removed while its worker runs and
    no driver is left: the resume could not find the worker and ran the trial again beside
    it, the first run then overwriting the second's outcome. It is found by its mark and
    watched again, its folder made again for its outcome."""
    import shutil

    log, d = str(tmp_path / "runs.log"), str(tmp_path / "d")
    study = one_trial(log, 1.5)
    left_by_a_killed_driver(study, d, log, "running", recorded,     # the objective runs
                            before_kill=lambda: shutil.rmtree(os.path.join(d, "trials", "0")))
    # status says what the resume does with it (found by its mark; it said interrupted)
    assert trial_states(history(d), False, d) == {0: "running-alone"}
    assert resumed_once(study, d, log).starts == 1


@pytest.mark.parametrize("state", ["running", "ended"])
@pytest.mark.parametrize("pid_file", ["missing", "stale"])
def test_a_worker_whose_pid_was_never_written_is_found_not_run_twice(tmp_path, state, pid_file):
    # a driver killed inside the worker's start (after the process began, before its pid
    # reached worker.pid) leaves no pid file, or an earlier start's: the worker is still found
    log, d = str(tmp_path / "runs.log"), str(tmp_path / "d")
    sleep = 1.5 if state == "running" else 0.3
    study = one_trial(log, sleep)
    first = holding(study, d)
    [rec] = first.ask_trials(1)
    first.executor.submit(first._job(rec))
    pid_path = os.path.join(d, "trials", "0", "worker.pid")
    if pid_file == "missing":
        os.remove(pid_path)
    else:  # the pid of a process that is no worker of this trial (an earlier one, long gone)
        with open(pid_path, "w") as fh:
            fh.write(str(os.getpid()))
    if state == "running":
        wait_for(lambda: os.path.exists(log))
    else:
        wait_ended(first, d)
    killed(first)
    assert trial_states(history(d), False, d) == {0: f"{state}-alone"}
    rec = resumed_once(study, d, log)
    assert rec.cost_s >= sleep - 0.05           # its own run time, not the moment it was found


@pytest.mark.parametrize("state", ["running", "ended"])
def test_a_resume_under_another_executor_kind_is_refused_while_local_trials_are_left(tmp_path,
                                                                                      state):
    # the inline executor can neither watch a local worker nor read its outcome: it ran the
    # trial a second time, both runs writing into the same trial folder
    from autotune.errors import StudyError

    log, d = str(tmp_path / "runs.log"), str(tmp_path / "d")
    sleep = 3.0 if state == "running" else 0.3
    study = one_trial(log, sleep)
    left_by_a_killed_driver(study, d, log, state)
    before = open(os.path.join(d, "history.jsonl"), "rb").read()

    inline = one_trial(log, sleep, executor={"kind": "inline"})
    with pytest.raises(StudyError, match=r"executor.kind: .* has trial\(s\) 0 that a killed "
                                         r"driver left running .* as local jobs"):
        Driver(inline, d, progress=False).run()
    assert open(os.path.join(d, "history.jsonl"), "rb").read() == before   # nothing written
    resumed_once(study, d, log)                     # its own kind: fine


def test_cancel_stops_a_worker_whose_start_was_never_recorded(tmp_path):
    # the driver records a batch's starts once all are started: killed in between, the
    # history names no job for the trial, and cancel left its worker running
    from autotune.cancel import cancel_study

    log, d = str(tmp_path / "runs.log"), str(tmp_path / "d")
    first = holding(one_trial(log, 300.0), d)
    [rec] = first.ask_trials(1)
    first.executor.submit(first._job(rec))          # started; the start never recorded
    worker = first.executor._running[0].proc
    wait_for(lambda: os.path.exists(log))
    killed(first)
    try:
        assert "stopped 1 local trial(s) left running by a dead driver" in cancel_study(d)
        worker.wait(timeout=10)
        assert trial_states(history(d), False, d) == {0: "interrupted"}
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)


@pytest.mark.parametrize("state", ["ended", "running"])
def test_a_trial_started_again_on_resume_counts_from_that_start(tmp_path, state):
    """Ctrl-C ends a trial (recorded as started, not ended); the resume starts it again under
    the same attempt, and that driver is killed; the next resume collects it (ended
    meanwhile, or still running). Its start was the first, interrupted one: cost and end
    counted the gap between the two drivers, and its timeout counted from the old start, so
    that a trial still running was timed out early."""
    log, d = str(tmp_path / "runs.log"), str(tmp_path / "d")
    sleep, gap = 1.5, 3.0
    study = one_trial(log, sleep, objective={"timeout_s": 4.0})
    first = holding(study, d)
    [rec] = first.ask_trials(1)
    first._submit([rec])                            # recorded as started
    wait_for(lambda: os.path.exists(log) and open(log).read().endswith("\n"))  # it runs
    first.executor.shutdown()                       # Ctrl-C: its trials ended, none recorded
    killed(first)
    first_start = history(d).trials[0].start_s
    time.sleep(gap)                                 # the wait before the resume

    second = holding(study, d)
    second._restart_in_flight()                     # runs it again: a new start, same attempt
    rec = history(d).trials[0]
    assert (rec.attempt, rec.starts) == (0, 2)
    assert rec.start_s >= first_start + gap         # the new start, not the first
    second_start = rec.start_s
    if state == "ended":                            # killed; its worker ends meanwhile
        wait_ended(second, d)
    killed(second)

    summary = Driver(study, d, progress=False).run()
    assert summary.counts == {"ok": 1}, history(d).trials[0].error
    rec = history(d).trials[0]
    assert (rec.status, rec.attempt, rec.value) == ("ok", 0, 0.5)
    assert rec.start_s == pytest.approx(second_start, abs=0.05)
    assert sleep <= rec.cost_s < gap               # its own run, not the wait before it
    assert rec.end_s - rec.start_s == pytest.approx(rec.cost_s, abs=0.01)
    assert len(open(log).readlines()) == 2          # the interrupted run and the collected one


def test_cancel_leaves_trajectory_csv_saying_what_status_says(tmp_path):
    """A killed driver's last trajectory.csv says `running`; cancel stops the trial it left
    and records the cancel, and the CSV went on saying `running` (status: `interrupted`)
    until a later run or report."""
    import csv

    from autotune.cancel import cancel_study
    from autotune.trajectory import write_trajectory

    log, d = str(tmp_path / "runs.log"), str(tmp_path / "d")
    study = one_trial(log, 300.0)
    first = holding(study, d)
    [rec] = first.ask_trials(1)
    first._submit([rec])
    worker = first.executor._running[0].proc
    write_trajectory(first.history, study, first.dir.trajectory)   # as the live driver did
    wait_for(lambda: os.path.exists(log))
    killed(first)
    csv_path = os.path.join(d, "trajectory.csv")
    assert [r["status"] for r in csv.DictReader(open(csv_path))] == ["running"]
    try:
        assert "stopped 1 local trial(s) left running by a dead driver" in cancel_study(d)
        worker.wait(timeout=10)
        assert trial_states(history(d), False, d) == {0: "interrupted"}
        assert [r["status"] for r in csv.DictReader(open(csv_path))] == ["interrupted"]
        assert not os.path.exists(os.path.join(d, "driver.json"))  # the lock let go again
        # a second cancel stops nothing and says so (it said the trial "was in flight")
        assert cancel_study(d) == ("nothing to cancel: no driver holds the study and none of "
                                   "the 1 local trial(s) it left in flight still runs")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
