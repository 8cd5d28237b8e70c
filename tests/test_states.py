"""A trial's state is said alike by every view: ``status``, trajectory.csv, the DataFrame,
``counts()`` and the HTML report (all through ``states.trial_states``)."""
import csv
import os
import subprocess
import time

import autotune as at
from autotune import events as ev
from autotune.cli import main
from autotune.history import History
from autotune.journal import Journal
from tests.helpers import fake_slurm, slurm_history

SPACE = {"x": {"values": [1, 2, 3]}}


def csv_states(directory):
    with open(os.path.join(directory, "trajectory.csv")) as fh:
        return {row["trial"]: row["status"] for row in csv.DictReader(fh)}


def test_an_asked_trial_never_told_is_interrupted_in_every_view(tmp_path, capsys):
    d = str(tmp_path / "own")
    own = at.Study(name="own", objective={"metric": "loss"}, space=SPACE, dir=d,
                   search={"algorithm": "grid", "max_trials": 3})
    with own:
        first = own.ask()
        own.tell(first, {"loss": 1.0})
        own.ask()  # asked, never told
    assert csv_states(d) == {"0": "ok", "1": "interrupted"}  # written as the loop closed
    view = at.load(d)
    assert list(view.trials_dataframe()["status"]) == ["ok", "interrupted"]
    assert view.counts() == {"ok": 1, "interrupted": 1}
    assert "1 interrupted (runs again on resume)" in view.summary()
    assert main(["report", d, "--html"]) == 0
    assert "1 interrupted (runs again on resume)" in capsys.readouterr().out
    assert csv_states(d) == {"0": "ok", "1": "interrupted"}
    with open(os.path.join(d, "report.html")) as fh:
        assert "<tr class='interrupted'>" in fh.read()


def test_a_job_running_without_a_driver_is_running_alone_in_every_view(tmp_path, capsys):
    """A SLURM job left by a killed driver: ``status``, the CSV, the frame and the HTML
    report all say running-alone (the next run collects it), not plain running."""
    d = tmp_path / "slurm"
    d.mkdir()
    identity = {"space": SPACE, "algorithm": "grid", "seed": 0, "search_options": {},
                "metric": "loss", "mode": "min", "pretrain": None}
    journal = Journal(str(d / "history.jsonl"))
    journal.append([ev.study("s", 0.0, identity, {"executor": {"kind": "slurm"}}),
                    ev.ask(0.0, 2, [ev.trial_entry(0, {"x": 1}), ev.trial_entry(1, {"x": 2})]),
                    ev.submit(0.1, 0, 0, "4242"), ev.submit(0.1, 1, 0, "")])
    journal.close()
    assert main(["report", str(d), "--html"]) == 0
    out = capsys.readouterr().out
    assert "1 running-alone (still running without a driver: the next run collects them)" in out
    assert "1 interrupted (runs again on resume)" in out
    assert csv_states(str(d)) == {"0": "running-alone", "1": "interrupted"}
    view = at.load(str(d))
    assert list(view.trials_dataframe()["status"]) == ["running-alone", "interrupted"]
    assert view.counts() == {"running-alone": 1, "interrupted": 1}
    with open(d / "report.html") as fh:
        assert "<tr class='running-alone'>" in fh.read()


def test_a_job_submitted_after_a_cancel_is_not_taken_for_cancelled(tmp_path):
    """cancel stopped trial 0's job; the next driver recorded it cancelled, submitted trial 1
    and was killed: trial 1's job runs on, the cancel record does not name it."""
    d = tmp_path / "slurm"
    d.mkdir()
    slurm_history(d, ev.submit(0.1, 0, 0, "4242"), ev.cancel(1.0, ["4242"]),
                  ev.resume(2.0, "h", 1, 0.0, {}),
                  ev.end(0, 0, "cancelled", 0.1, 2.1, 2.0, {}, "job cancelled", "cancelled"),
                  ev.submit(2.2, 1, 0, "4250"))
    assert at.load(str(d)).counts() == {"cancelled": 1, "running-alone": 1}


def test_a_job_a_cancel_record_names_ended_alone(tmp_path):
    """The next run finds the cancelled job ended (CANCELLED) and records the trial
    cancelled, without running it again: it is not interrupted (which runs again)."""
    d = tmp_path / "slurm"
    d.mkdir()
    slurm_history(d, ev.submit(0.1, 0, 0, "4242"), ev.submit(0.1, 1, 0, "4243"),
                  ev.cancel(1.0, ["4242"]))
    assert at.load(str(d)).counts() == {"running-alone": 1, "ended-alone": 1}


def test_a_slurm_job_that_ended_leaving_its_result_is_ended_alone(tmp_path, capsys):
    """A driver killed during the fine-tunes whose jobs then completed: submitit left their
    results in DIR/slurm/<job id>/, the next run records them. status says they ended (to
    when they wrote it), not that they still run; the pretrain's the same."""
    d = tmp_path / "slurm"
    d.mkdir()
    slurm_history(d, ev.stage_submit(0.0, "pretrain", "k", 0, "700"),
                  ev.submit(0.1, 0, 0, "4242"), ev.submit(0.1, 1, 0, "4243"))
    for job in ("700", "4242"):
        (d / "slurm" / job).mkdir(parents=True)
        (d / "slurm" / job / f"{job}_0_result.pkl").write_bytes(b"x")
        os.utime(d / "slurm" / job / f"{job}_0_result.pkl", (30.5, 30.5))  # t0 is 0.0
    view = at.load(str(d))
    assert view.counts() == {"ended-alone": 1, "running-alone": 1}
    assert pretrain_line(d).startswith("pretrain: ended-alone (ended without a driver: the "
                                       "next run records it), job 700"), pretrain_line(d)
    assert elapsed_of(d, capsys) == "30.5 s (to the last trial's end, the driver gone)"


def pretrain_line(d) -> str:
    (line,) = [ln for ln in at.load(str(d)).summary().splitlines() if ln.startswith("pretrain:")]
    return line


def test_a_pretrain_job_left_without_a_driver_runs_alone_until_cancel_names_it(tmp_path):
    """A driver killed during a SLURM pretrain: its job runs on, and status says so, as it
    does of a trial's; once ``cancel`` cancelled it, nothing runs it."""
    d = tmp_path / "slurm"
    d.mkdir()
    slurm_history(d, ev.stage_submit(0.1, "pretrain", "k", 0, "717"))
    line = pretrain_line(d)
    assert line.startswith("pretrain: running-alone (its job runs without a driver: the next "
                           "run waits for it), job 717"), line
    journal = Journal(str(d / "history.jsonl"))
    journal.append([ev.cancel(5.0, ["717"])])
    journal.close()
    line = pretrain_line(d)
    assert line.startswith("pretrain: interrupted (nothing runs it: the next run runs it "
                           "again), job 717"), line


def leave_result(d, job: str, payload: dict) -> None:
    """The result submitit leaves as a job's step ends (rank 0's)."""
    import pickle

    (d / "slurm" / job).mkdir(parents=True, exist_ok=True)
    with open(d / "slurm" / job / f"{job}_0_result.pkl", "wb") as fh:
        pickle.dump(("success", payload), fh)


def test_a_cancelled_pretrain_job_that_ran_to_its_end_is_ended_alone(tmp_path):
    """submitit ignores SLURM's SIGTERM until KillWait: a pretrain cancelled near its end
    finished its step, its checkpoint built, and the next run records it ok from its result.
    status said it interrupted ('the next run runs it again'); it says what the run does.
    Where no result stands (none left, or an error left after the SIGTERM) it stays
    interrupted: the next run records it cancelled and builds it again."""
    from autotune.states import left_to_another_kind

    d = tmp_path / "slurm"
    d.mkdir()
    slurm_history(d, ev.stage_submit(0.1, "pretrain", "k", 0, "717"),
                  ev.submit(0.1, 0, 0, "4242"), ev.cancel(5.0, ["717", "4242"]))
    assert pretrain_line(d).startswith("pretrain: interrupted (nothing runs it")
    leave_result(d, "717", {"error": "stopped", "failure": "exception", "sigterm": 3.0})
    assert pretrain_line(d).startswith("pretrain: interrupted (nothing runs it")
    leave_result(d, "717", {"result": {"built": 1.0}, "started": 1.0, "ended": 4.0})
    line = pretrain_line(d)
    assert line.startswith("pretrain: ended-alone (ended without a driver: the next run "
                           "records it), job 717"), line
    # a cancelled trial's job that ran to its end: its result is the next run's to record,
    # which a resume under another kind cannot do: refused, not run a second time
    history = History.load(Journal(str(d / "history.jsonl")))
    assert left_to_another_kind(history, str(d), "local") == {}
    leave_result(d, "4242", {"result": {"loss": 1.0}, "started": 1.0, "ended": 4.0})
    assert at.load(str(d)).counts() == {"ended-alone": 1, "interrupted": 1}  # 1: never run
    assert left_to_another_kind(history, str(d), "local") == {0: "slurm"}


def test_a_cancelled_multi_rank_job_stands_only_as_the_executor_takes_it(tmp_path):
    """rank 0 ran to its end, rank 1 did not (SLURM stopped it, or it ended after the
    SIGTERM): the executor waits for every rank and records the job cancelled, as sacct
    says; status said ended-alone (rank 0's result alone was read). A rank's own error
    stands (recorded failed); every rank's result, none after the SIGTERM, stands."""
    import pickle

    from autotune.states import result_stands

    d = tmp_path / "slurm"
    d.mkdir()
    slurm_history(d, ev.stage_submit(0.1, "pretrain", "k", 0, "717"), ev.cancel(5.0, ["717"]))
    job = d / "slurm" / "717"
    leave_result(d, "717", {"result": {"built": 1.0}, "started": 1.0, "ended": 4.0})
    for rank in (0, 1):
        (job / f"717_{rank}_log.out").write_text("")
    assert not result_stands(str(d), "717")
    assert pretrain_line(d).startswith("pretrain: interrupted (nothing runs it")

    def rank_1(payload: dict, status: str = "success") -> None:
        with open(job / "717_1_result.pkl", "wb") as fh:
            pickle.dump((status, payload), fh)

    rank_1({"error": "stopped", "failure": "exception", "sigterm": 3.0})
    assert not result_stands(str(d), "717")
    rank_1({"error": "rank 1 diverged", "failure": "exception", "started": 1.0, "ended": 2.0})
    assert result_stands(str(d), "717")  # recorded failed, by its error
    rank_1({"result": None, "started": 1.0, "ended": 4.0})
    assert result_stands(str(d), "717")
    assert pretrain_line(d).startswith("pretrain: ended-alone")


def test_a_local_pretrain_whose_worker_is_gone_is_interrupted(tmp_path):
    d = tmp_path / "local"
    d.mkdir()
    slurm_history(d, ev.stage_submit(0.1, "pretrain", "k", 0, "pid-999999999"))
    assert pretrain_line(d).startswith("pretrain: interrupted (nothing runs it")


def test_a_resume_under_another_kind_is_not_refused_for_cancelled_jobs(tmp_path):
    """ended-alone, a cancelled job is no job another kind must leave alone: such a resume
    runs the trial again (it cannot see the job), the one still running is refused."""
    from autotune.states import left_to_another_kind

    d = tmp_path / "slurm"
    d.mkdir()
    slurm_history(d, ev.submit(0.1, 0, 0, "4242"), ev.submit(0.1, 1, 0, "4243"),
                  ev.cancel(1.0, ["4242"]))
    history = History.load(Journal(str(d / "history.jsonl")))
    assert left_to_another_kind(history, str(d), "local") == {1: "slurm"}


def test_status_looks_through_proc_once_for_all_trials_to_be_retried(tmp_path, monkeypatch):
    """Local trials to be retried (pending, each its trial folder's job.json) are each
    looked for as a worker started but not recorded: one pass over /proc serves them all
    (a pass each was a second or more per trial on a busy login node)."""
    import json

    from autotune.executors import procgroup
    from autotune.states import trial_states

    d = tmp_path / "local"
    entries, events = [], []
    for t in range(5):
        entries.append(ev.trial_entry(t, {"x": 1 + t % 3}))
        events += [ev.submit(0.1, t, 0, f"pid-{999_999_000 + t}"),
                   ev.end(t, 0, "failed", 0.1, 0.2, 0.1, {}, "boom", "exception", final=False)]
        os.makedirs(d / "trials" / str(t))
        (d / "trials" / str(t) / "job.json").write_text(json.dumps({"ctx": {"attempt": 0}}))
    identity = {"space": SPACE, "algorithm": "grid", "seed": 0, "search_options": {},
                "metric": "loss", "mode": "min", "pretrain": None}
    journal = Journal(str(d / "history.jsonl"))
    journal.append([ev.study("s", 0.0, identity, {"executor": {"kind": "local"}}),
                    ev.ask(0.0, 5, entries), *events])
    journal.close()
    passes = []
    leaders = procgroup._leaders
    monkeypatch.setattr(procgroup, "_leaders", lambda: passes.append(1) or leaders())
    history = History.load(Journal(str(d / "history.jsonl")))
    assert trial_states(history, False, str(d)) == dict.fromkeys(range(5), "interrupted")
    assert len(passes) == 1


def local_history(d, t0, *events) -> None:
    """A local study's history started at ``t0`` (wall clock): two trials asked, ``events``."""
    identity = {"space": SPACE, "algorithm": "grid", "seed": 0, "search_options": {},
                "metric": "loss", "mode": "min", "pretrain": None}
    journal = Journal(str(d / "history.jsonl"))
    journal.append([ev.study("s", t0, identity, {"executor": {"kind": "local"}}),
                    ev.ask(0.0, 2, [ev.trial_entry(0, {"x": 1}), ev.trial_entry(1, {"x": 2})]),
                    *events])
    journal.close()


def elapsed_of(d, capsys) -> str:
    assert main(["status", str(d)]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "elapsed: " in ln]
    return line.split("elapsed: ", 1)[1]


def test_status_elapsed_of_a_killed_driver_runs_to_its_trials_ends(tmp_path, capsys):
    """A driver killed right after its submits (~0 s) whose local trials then ended alone:
    status's elapsed runs to the last end their workers stamped, and says so, not 0.0 s."""
    d = tmp_path / "local"
    d.mkdir()
    local_history(d, 1000.0, ev.submit(0.02, 0, 0, "pid-999999998"),
                  ev.submit(0.03, 1, 0, "pid-999999999"))
    for trial, end_t in ((0, 1012.3), (1, 1007.0)):
        folder = d / "trials" / str(trial)
        folder.mkdir(parents=True)
        (folder / "job.json").write_text('{"ctx": {"attempt": 0}}')
        (folder / "outcome.json").write_text(f'{{"result": {{"loss": 1}}, "end_t": {end_t}}}')
    assert elapsed_of(d, capsys) == "12.3 s (to the last trial's end, the driver gone)"


def test_status_elapsed_of_a_killed_driver_runs_on_with_its_live_trial(tmp_path, capsys):
    """Its local trial still runs (its worker is in /proc): the study goes on, now."""
    d = tmp_path / "local"
    folder = d / "trials" / "0"
    folder.mkdir(parents=True)
    from autotune.executors.procgroup import MARK

    worker = subprocess.Popen(["sleep", "30"], env={**os.environ, MARK: str(folder)})
    try:
        local_history(d, time.time() - 40.0, ev.submit(0.02, 0, 0, f"pid-{worker.pid}"))
        text = elapsed_of(d, capsys)
    finally:
        worker.kill()
        worker.wait()
    seconds, meaning = text.split(" s ", 1)
    assert 40.0 <= float(seconds) < 45.0 and meaning == "(to now: trials run on without a driver)"


def test_status_elapsed_of_a_killed_driver_runs_to_its_slurm_jobs_last_write(tmp_path, capsys):
    d = tmp_path / "slurm"
    d.mkdir()
    slurm_history(d, ev.submit(0.1, 0, 0, "4242"))
    folder = d / "trials" / "0"
    folder.mkdir(parents=True)
    (folder / "slurm-4242.stdout.log").write_text("epoch 3\n")
    os.utime(folder / "slurm-4242.stdout.log", (20.0, 20.0))  # the study's t0 is 0.0
    assert elapsed_of(d, capsys) == ("20.0 s (to the last write in a SLURM job's folder, the "
                                     "driver gone)")


def test_status_elapsed_of_a_killed_driver_runs_to_its_slurm_pretrains_log(tmp_path, capsys):
    """A driver killed during a SLURM pretrain: its job's logs grow in DIR/slurm/<job id>/
    (stages/pretrain/ is empty until its end); status said 'elapsed: 0.1 s'."""
    d = tmp_path / "slurm"
    d.mkdir()
    slurm_history(d, ev.stage_submit(0.1, "pretrain", "k", 0, "717"))
    (d / "stages" / "pretrain").mkdir(parents=True)
    (d / "slurm" / "717").mkdir(parents=True)
    (d / "slurm" / "717" / "717_0_log.out").write_text("epoch 40\n")
    os.utime(d / "slurm" / "717" / "717_0_log.out", (900.0, 900.0))  # the study's t0 is 0.0
    assert elapsed_of(d, capsys) == ("900.0 s (to the last write in a SLURM job's folder, the "
                                     "driver gone)")


def test_status_elapsed_of_a_killed_drivers_interrupted_trial_runs_to_its_last_write(
        tmp_path, capsys):
    """Its local trial's worker is gone and left no outcome (interrupted): the last write in
    its folder (its logs) is its last sign of life, not the history's last record (~0 s)."""
    d = tmp_path / "local"
    folder = d / "trials" / "0"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text('{"ctx": {"attempt": 0}}')
    (folder / "stderr.log").write_text("epoch 3\n")
    local_history(d, 1000.0, ev.submit(0.02, 0, 0, "pid-999999998"))
    os.utime(folder / "job.json", (1000.0, 1000.0))
    os.utime(folder / "stderr.log", (1007.5, 1007.5))
    assert elapsed_of(d, capsys) == ("7.5 s (to the last write in an interrupted trial's "
                                     "folder, the driver gone)")


def test_status_after_ctrl_c_before_any_trial_ended_says_how_long_the_run_went(tmp_path):
    """Ctrl-C'd while its local trials all ran: the history holds nothing after their submits
    (no stop record), and status said 'elapsed: 0.0 s'. The executor stamps each trial's
    stderr.log as it stops it: elapsed runs to then."""
    import signal
    import sys

    from tests.helpers import REPO, study_dict, write_study

    study = study_dict(search={"max_trials": 2}, executor={"kind": "local", "max_concurrent": 2})
    study["objective"] = {"command": "sleep 30; echo loss: 1", "metric": "loss"}
    path = write_study(str(tmp_path / "s.yaml"), study)
    d = str(tmp_path / "d")
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d,
                             "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        pids = [os.path.join(d, "trials", str(t), "worker.pid") for t in (0, 1)]
        deadline = time.monotonic() + 30
        while not all(map(os.path.exists, pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    said = subprocess.run([sys.executable, "-m", "autotune", "status", d], env=env,
                          capture_output=True, text=True, timeout=30).stdout
    assert "trials: 2 interrupted" in said, said
    (line,) = [ln for ln in said.splitlines() if "elapsed: " in ln]
    seconds, meaning = line.split("elapsed: ", 1)[1].split(" s ", 1)
    assert 1.5 <= float(seconds) < 20 and meaning == (
        "(to the last write in an interrupted trial's folder, the driver gone)"), line


def test_status_elapsed_of_a_killed_drivers_local_pretrain_names_the_pretrain(tmp_path, capsys):
    """A driver killed during its local pretrain, before any trial: elapsed runs to now while
    the pretrain's worker runs on, and to its stamped end once it ended alone; said of the
    pretrain, not of trials (it said 'trials run on without a driver' with none started)."""
    from autotune.executors.procgroup import MARK

    d = tmp_path / "local"
    folder = d / "stages" / "pretrain"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text('{"ctx": {"attempt": 0}}')
    worker = subprocess.Popen(["sleep", "30"], env={**os.environ, MARK: str(folder)})
    try:
        local_history(d, time.time() - 40.0,
                      ev.stage_submit(0.02, "pretrain", "k", 0, f"pid-{worker.pid}"))
        text = elapsed_of(d, capsys)
    finally:
        worker.kill()
        worker.wait()
    seconds, meaning = text.split(" s ", 1)
    assert 40.0 <= float(seconds) < 45.0, text
    assert meaning == "(to now: the pretrain runs on without a driver)", text
    ended = tmp_path / "ended"
    folder = ended / "stages" / "pretrain"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text('{"ctx": {"attempt": 0}}')
    (folder / "outcome.json").write_text('{"result": {"loss": 1}, "end_t": 1012.3}')
    local_history(ended, 1000.0, ev.stage_submit(0.02, "pretrain", "k", 0, "pid-999999998"))
    assert elapsed_of(ended, capsys) == "12.3 s (to the pretrain's end, the driver gone)"


def asked_only_history(d) -> None:
    """A SLURM study whose driver was killed after submitting trial 0's job (1 attempt 0)
    and before recording the submit: the history says only that both were asked."""
    slurm_history(d)
    os.makedirs(d / "slurm" / "777")
    (d / "slurm" / "777" / "777_submitted.pkl").write_bytes(b"")


def test_a_job_submitted_but_never_recorded_is_said_as_the_next_run_finds_it(tmp_path,
                                                                              monkeypatch,
                                                                              capsys):
    """The next run adopts trial 0's job by its name (nothing runs twice): status says it runs
    alone, not 'interrupted (runs again on resume)'; trial 1, whose job SLURM does not know,
    is interrupted. A job of that name not submitted into this directory is not its own."""
    from autotune.executors.slurm_query import job_name

    d = tmp_path / "s"
    d.mkdir()
    asked_only_history(d)
    name0, name1 = job_name(str(d), 0, 0), job_name(str(d), 1, 0)
    fake_slurm(tmp_path, monkeypatch,
               f"echo '777|{name0}|RUNNING|2026-01-01T00:00:00|2026-01-01T00:00:01|Unknown|0:0'",
               f"echo '778|{name1}|PENDING'")  # 778: not submitted here (no folder)
    assert main(["status", str(d)]) == 0
    out = capsys.readouterr().out
    assert "1 running-alone (still running without a driver" in out, out
    assert "1 interrupted (runs again on resume)" in out, out
    history = History.load(Journal(str(d / "history.jsonl")))
    from autotune.states import left_to_another_kind, trial_states_found

    assert trial_states_found(history, False, str(d)) == (
        {0: "running-alone", 1: "interrupted"}, {0: "777"})
    assert left_to_another_kind(history, str(d), "local") == {0: "slurm"}
    assert left_to_another_kind(history, str(d), "slurm") == {}


def test_a_slurm_that_does_not_answer_leaves_status_as_the_history_says(tmp_path,
                                                                        monkeypatch, capsys):
    """sacct and squeue that hang: status waits a bounded time, then says what the history
    alone says (interrupted), and fails not."""
    import autotune.states as states

    d = tmp_path / "s"
    d.mkdir()
    asked_only_history(d)
    fake_slurm(tmp_path, monkeypatch, "exec sleep 30", "exec sleep 30")
    monkeypatch.setattr(states, "SLURM_QUERY_S", 0.5)
    began = time.monotonic()
    assert main(["status", str(d)]) == 0
    assert time.monotonic() - began < 5.0
    assert "2 interrupted (runs again on resume)" in capsys.readouterr().out


def test_a_pretrain_left_to_another_kind_is_its_job_running_or_ended_alone(tmp_path):
    """The pretrain's SLURM job left running-alone or ended-alone (a result standing, a
    cancelled one's included) is one another kind cannot collect; a cancelled one with no
    result standing, or a pretrain recorded cancelled, leaves nothing to collect."""
    from autotune.states import stage_left_to_another_kind

    def left(*events):
        """A study directory whose pretrain's job 717 was submitted, then ``events``."""
        d = tmp_path / str(len(list(tmp_path.iterdir())))
        d.mkdir()
        slurm_history(d, ev.stage_submit(0.1, "pretrain", "k", 0, "717"), *events)
        return d, History.load(Journal(str(d / "history.jsonl")))

    d, history = left()
    assert stage_left_to_another_kind(history, str(d), "local") == {"pretrain": ("717", "slurm")}
    assert stage_left_to_another_kind(history, str(d), "slurm") == {}
    leave_result(d, "717", {"result": {"built": 1.0}, "started": 1.0, "ended": 4.0})
    assert stage_left_to_another_kind(history, str(d), "local") == {"pretrain": ("717", "slurm")}
    d, history = left(ev.cancel(5.0, ["717"]))
    assert stage_left_to_another_kind(history, str(d), "local") == {}  # interrupted
    leave_result(d, "717", {"result": {"built": 1.0}, "started": 1.0, "ended": 4.0})
    assert stage_left_to_another_kind(history, str(d), "local") == {"pretrain": ("717", "slurm")}
    d, history = left(ev.stage_end("pretrain", "k", 0, "cancelled", 0.1, 5.0, 4.9, "717", {},
                                   "cancelled by autotune cancel", "cancelled"))
    assert stage_left_to_another_kind(history, str(d), "local") == {}


def test_stopping_with_trials_never_submitted_asks_slurm_nothing_of_them(tmp_path, monkeypatch,
                                                                        capsys):
    """A SLURM driver stopped while its trials wait for a submit slot (asked, never
    submitted): its last views and ``run``'s last lines asked sacct and squeue (5 s each)
    for jobs a killed driver might have submitted unrecorded, twice. No job was submitted
    into the directory unrecorded: there is none to ask about, and nothing is asked."""
    from autotune.cli import slurm_jobs_left
    from autotune.driver import Driver
    from autotune.executors import slurm_query
    from autotune.study import parse_study
    from tests.helpers import full_executor, study_dict

    asked = []
    monkeypatch.setattr(slurm_query, "run_command",
                        lambda args, timeout=60.0: asked.append(args[0]) or "")
    study = parse_study(study_dict(executor={"kind": "slurm", "max_concurrent": 2},
                                   search={"max_trials": 2}))
    d = str(tmp_path / "d")
    driver = Driver(study, d, executor=full_executor(d, 2), progress=False)
    driver._tick = lambda: setattr(driver, "_stop", "interrupted")  # Ctrl-C while they wait
    assert driver.run().stopped == "interrupted"
    assert slurm_jobs_left(d) == ""
    assert main(["status", d]) == 0
    assert "2 interrupted (runs again on resume)" in capsys.readouterr().out
    assert asked == []
    # a job submitted here that no record names (a driver killed before recording it) is
    # still looked for, as the next run's executor would adopt it
    os.makedirs(os.path.join(d, "slurm", "777"))
    assert main(["status", d]) == 0
    assert asked == ["sacct", "squeue"]


def test_the_study_directory_names_submitits_files_of_a_job_as_submitit_does(tmp_path):
    """Every name of submitit's files of a job is made in one place (``StudyDir``), which
    ``status``'s judgement of a cancelled job's ranks (``result_stands``), the adoption of a job
    submitted unrecorded (``submitted_into``) and the executor read through, and it is the
    one submitit writes."""
    from submitit.core.utils import JobPaths

    from autotune.studydir import StudyDir

    study = StudyDir(str(tmp_path))
    for rank in (0, 2):
        paths = JobPaths(os.path.join(study.slurm, "%j"), job_id="77", task_id=rank)
        assert study.slurm_job_dir("77") == str(paths.folder)
        assert study.slurm_submitted("77") == str(paths.submitted_pickle)
        assert study.slurm_result("77", rank) == str(paths.result_pickle)
        assert (study.slurm_log("77", rank, "out"), study.slurm_log("77", rank)) == (
            str(paths.stdout), str(paths.stderr))
    assert study.slurm_ranks("77") == set()
    os.makedirs(study.slurm_job_dir("77"))
    for path in (study.slurm_log("77", 1), study.slurm_result("77", 3), study.slurm_submitted("77"),
                 os.path.join(study.slurm_job_dir("77"), "770_5_log.err")):
        open(path, "w").close()
    assert study.slurm_ranks("77") == {1, 3}
    assert study.slurm_job_ids() == {"77"}


def test_job_folders_kept_of_earlier_attempts_ask_slurm_nothing(tmp_path, monkeypatch, capsys):
    """``cleanup: keep`` (or ``done`` for a failed attempt) keeps DIR/slurm/<job id>/ of an
    attempt retried since: every job there is recorded, but only the latest job of each trial
    counted as such, so every ``status`` (and every run's views) asked sacct and squeue for
    jobs a killed driver might have submitted unrecorded. None was: nothing is asked. A
    folder no line names is still looked for."""
    from autotune.executors import slurm_query

    d = tmp_path / "s"
    d.mkdir()
    slurm_history(d, ev.submit(0.1, 0, 0, "101"),
                  ev.end(0, 0, "failed", 0.1, 1.0, 0.9, {}, error="boom", failure="exit",
                         final=False, job_id="101"),
                  ev.submit(1.1, 0, 1, "102"),
                  ev.end(0, 1, "failed", 1.1, 2.0, 0.9, {}, error="boom", failure="exit",
                         final=False, job_id="102"))
    for job in ("101", "102"):  # kept; trial 0 waits for its third attempt, trial 1 its first
        (d / "slurm" / job).mkdir(parents=True)
        (d / "slurm" / job / f"{job}_submitted.pkl").write_bytes(b"")
    asked = []
    monkeypatch.setattr(slurm_query, "run_command",
                        lambda args, timeout=60.0: asked.append(args[0]) or "")
    assert main(["status", str(d)]) == 0
    assert "2 interrupted" in capsys.readouterr().out
    assert asked == []
    (d / "slurm" / "103").mkdir()  # a job submitted here that no line names
    assert main(["status", str(d)]) == 0
    assert asked == ["sacct", "squeue"]
