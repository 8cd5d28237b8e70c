"""What a SLURM job runs (``slurm_job.TrialCall``), called here in-process: no cluster needed.

SLURM ends a job (scancel, its time limit, a preemption) with SIGTERM to every process of it.
submitit's handler lets the Python side run on, but a ``command:`` objective dies of it at
once; its "command killed by signal 15" must reach the driver marked as such, so that sacct's
state of the job (CANCELLED, TIMEOUT, ...) is the trial's outcome, not a failure of its own.
"""
from __future__ import annotations

import os
import signal

from autotune.executors.slurm_job import TrialCall
from autotune.objective import Ctx


def call(tmp_path, command: str) -> dict:
    ctx = Ctx(trial=0, trial_dir=str(tmp_path / "trials" / "0"), seed=0, attempt=0,
              study_dir=str(tmp_path), launch_dir=str(tmp_path))
    objective = {"command": command, "metric": "loss", "mode": "min"}
    return TrialCall(objective, {}, ctx.as_dict())()


def test_a_command_killed_after_the_jobs_sigterm_is_marked_so(tmp_path):
    seen: list[int] = []

    def submitits(signum: int, frame: object) -> None:
        seen.append(signum)

    before = signal.signal(signal.SIGTERM, submitits)
    try:
        # SLURM's SIGTERM reaches the job's Python process ($PPID) and the command alike
        out = call(tmp_path, "kill -TERM $PPID; sleep 0.5; kill -TERM $$")
        assert "killed by signal 15" in out["error"] and "sigterm" in out, out
        assert seen == [signal.SIGTERM]  # submitit's own handler still ran
        assert signal.getsignal(signal.SIGTERM) is submitits  # and is its handler again
        out = call(tmp_path, "exit 3")  # a failure of its own, no SIGTERM: not marked
        assert "error" in out and "sigterm" not in out, out
        # a shell that outlives its child's SIGTERM and prints a result anyway: marked too,
        # for the driver to take SLURM's word (CANCELLED) over it
        out = call(tmp_path, "kill -TERM $PPID; sleep 0.5; echo '{{\"loss\": 30}}'")
        assert out["result"] == {"loss": 30} and "sigterm" in out, out
        out = call(tmp_path, "echo '{{\"loss\": 1}}'")  # no SIGTERM: a plain result
        assert out["result"] == {"loss": 1} and "sigterm" not in out, out
    finally:
        signal.signal(signal.SIGTERM, before)


def test_outside_submitit_sigterm_is_left_alone(tmp_path):
    """No handler of submitit's (SIG_DFL): TrialCall installs none of its own."""
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    out = call(tmp_path, "echo '{{\"loss\": 1}}'")
    assert out["result"] == {"loss": 1}, out
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_failed_commands_log_ends_with_its_own_words(tmp_path, capsys):
    """As under the local executor (worker.show_traceback): autotune's frames raising on the
    exit status are not written after the command's stderr, which the failure summary's tail
    shows (the job's slurm-<id>.stderr.log); an entry's traceback is."""
    out = call(tmp_path, "echo oops >&2; exit 3")
    assert out["error"] == "RuntimeError: command exited with status 3: oops", out
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "oops" and "Traceback" not in err, err


def test_the_executor_takes_slurms_word_over_an_error_the_sigterm_caused(tmp_path, monkeypatch):
    """Such an error waits for sacct: a requeued job (still active) runs again and leaves a
    new result, a cancelled one is cancelled; a job SLURM let complete keeps the error."""
    import time

    from submitit.core.utils import cloudpickle_dump

    from autotune.executors.base import TrialJob
    from autotune.executors.slurm import SlurmExecutor, _Tracked
    from autotune.executors.slurm_query import JobInfo
    from autotune.objective import ObjectiveSpec

    ex = SlurmExecutor(str(tmp_path), 1, time.time(), {"time_limit_min": 10})
    ctx = Ctx(trial=0, trial_dir=str(tmp_path / "trials" / "0"), seed=0)
    job = TrialJob(0, 0, {}, ctx, ObjectiveSpec(command="true", metric="loss"))
    os.makedirs(ex._job_dir("77"))
    cloudpickle_dump(("success", {"error": "RuntimeError: command killed by signal 15",
                             "failure": "exception", "started": 1.0, "ended": 2.0,
                             "sigterm": 1.5}), ex._result_path("77"))

    def info(state: str) -> JobInfo:
        return JobInfo("77", "n", state, None, None, None, "0:15", 0, [])

    import submitit.core.utils

    loads = []
    load = submitit.core.utils.pickle_load
    monkeypatch.setattr(submitit.core.utils, "pickle_load",
                        lambda path: loads.append(path) or load(path))
    t = _Tracked(job, "77", 0.0)
    for _ in range(3):  # on disk: not taken, not kept, and read once while it is the same
        assert ex._from_results(t) is None and not t.results
    assert len(loads) == 1
    assert ex._judge(t, info("PENDING")) is None               # requeued: it runs again
    out = ex._judge(t, info("CANCELLED"))
    assert (out.failure, out.error) == ("cancelled", "slurm job 77 cancelled (scancel or an "
                                                     "administrator)"), out
    t = _Tracked(job, "77", 0.0)
    out = ex._judge(t, info("COMPLETED"))  # SLURM did not end it: the error is the trial's
    assert (out.failure, out.error) == ("exception", "RuntimeError: command killed by signal 15")
    t = _Tracked(job, "77", 0.0)
    assert ex._from_results(t) is None
    cloudpickle_dump(("success", {"result": {"loss": 1.0}, "started": 3.0, "ended": 4.0}),
                     ex._result_path("77"))  # the requeued job's next run ended well
    assert ex._from_results(t).result == {"loss": 1.0}
    # a command's result printed after the SIGTERM (its shell outlived the killed child):
    # not taken before sacct's word; CANCELLED is the outcome, COMPLETED keeps the result
    cloudpickle_dump(("success", {"result": {"loss": 30.0}, "started": 3.0, "ended": 4.0,
                                  "sigterm": 3.5}), ex._result_path("77"))
    t = _Tracked(job, "77", 0.0)
    assert ex._from_results(t) is None and not t.results
    assert ex._judge(t, info("PENDING")) is None
    out = ex._judge(t, info("CANCELLED"))
    assert (out.failure, out.result) == ("cancelled", None), out
    t = _Tracked(job, "77", 0.0)
    out = ex._judge(t, info("COMPLETED"))
    assert (out.failure, out.result) == ("", {"loss": 30.0}), out


def sacct_times(*rows: tuple[str, str, str, str]) -> str:
    """sacct -X -D -P lines of job 77: (state, submit, start, end), the times in seconds
    after 2026-01-01T00:00:00 local time."""
    import time

    def at(s: str) -> str:
        base = time.mktime(time.strptime("2026-01-01T00:00:00", "%Y-%m-%dT%H:%M:%S"))
        return s if not s.isdigit() else time.strftime("%Y-%m-%dT%H:%M:%S",
                                                       time.localtime(base + int(s)))

    return "".join(f"77|n|{st}|{at(a)}|{at(b)}|{at(c)}|0:0\n" for st, a, b, c in rows)


def test_sacct_says_when_a_requeued_jobs_run_before_ended():
    """A requeued job's earlier record ends at its requeue (sacct -D: REQUEUED, then the new
    record from the same second on): results its ranks left before it are that run's."""
    from autotune.executors.slurm_query import parse_sacct, parse_time

    base = parse_time("2026-01-01T00:00:00")
    info = parse_sacct(sacct_times(("RUNNING", "0", "6", "Unknown")))["77"]
    assert (info.requeues, info.requeued_at) == (0, None)
    info = parse_sacct(sacct_times(("REQUEUED", "0", "6", "21")))["77"]
    assert (info.state, info.requeues, info.requeued_at) == ("PENDING", 1, base + 21)
    info = parse_sacct(sacct_times(("REQUEUED", "0", "6", "21"), ("PENDING", "21", "Unknown",
                                                                  "Unknown")))["77"]
    assert (info.state, info.requeues, info.requeued_at) == ("PENDING", 1, base + 21)
    info = parse_sacct(sacct_times(("PREEMPTED", "0", "6", "21"), ("REQUEUED", "21", "30", "40"),
                                   ("COMPLETED", "40", "50", "60")))["77"]
    assert (info.state, info.requeues, info.requeued_at) == ("COMPLETED", 2, base + 40)


def test_sacct_counts_the_time_each_requeued_run_ran():
    """sacct -D has a record per run; the runs before the latest ran too: their Start to End
    is compute the job used (a job held pending between its runs ran nothing then)."""
    from autotune.executors.slurm_query import parse_sacct

    info = parse_sacct(sacct_times(("RUNNING", "0", "6", "Unknown")))["77"]
    assert info.earlier_s == 0.0
    info = parse_sacct(sacct_times(("REQUEUED", "0", "6", "21")))["77"]
    assert info.earlier_s == 15.0
    info = parse_sacct(sacct_times(("PREEMPTED", "0", "6", "21"), ("REQUEUED", "21", "30", "40"),
                                   ("COMPLETED", "40", "50", "60")))["77"]
    assert info.earlier_s == 25.0


def test_a_requeued_jobs_cost_counts_every_run(tmp_path, monkeypatch):
    """A job timed out at its limit and was requeued twice: its cost was its last run's alone
    (70 s of 185). Every run counts, whether sacct said of the requeues while the job ran or
    only its result (SLURM_RESTART_COUNT) says of them: then one sacct call asks."""
    from autotune.executors import slurm
    from autotune.executors.slurm_query import JobInfo

    ex, t, info, _ = requeue_executor(tmp_path, monkeypatch, 1)
    ex._tracked[0], ex._by_id["77"] = t, 0
    seen = JobInfo("77", "n", "PENDING", None, None, None, "0:0", 2, ["TIMEOUT", "TIMEOUT"],
                   1120.0, earlier_s=115.0)
    assert ex._judge(t, seen) is None
    leave(ex, 0, {"result": {"loss": 2.0}, "started": 1130.0, "ended": 1200.0, "rank": 0,
                  "restarts": 2})
    queries: list[list[str]] = []
    monkeypatch.setattr(slurm, "sacct", lambda ids: queries.append(ids) or {"77": seen})
    out, = ex._collect_results()
    assert (out.result, round(out.run_s, 3)) == ({"loss": 2.0}, 185.0), out
    assert queries == []  # sacct had said of both requeues: not asked again

    ex, t, info, _ = requeue_executor(tmp_path / "b", monkeypatch, 1)
    ex._tracked[0], ex._by_id["77"] = t, 0
    leave(ex, 0, {"result": {"loss": 2.0}, "started": 1130.0, "ended": 1200.0, "rank": 0,
                  "restarts": 2})
    monkeypatch.setattr(slurm, "sacct", lambda ids: queries.append(ids) or {"77": seen})
    out, = ex._collect_results()
    assert round(out.run_s, 3) == 185.0 and queries == [["77"]], (out, queries)


def test_a_job_past_max_requeue_costs_every_run(tmp_path, monkeypatch):
    """Ended by SLURM with no result (cancelled past max_requeue): its runs before count."""
    from autotune.executors.slurm_query import JobInfo

    ex, t, info, _ = requeue_executor(tmp_path, monkeypatch, 1)
    t0 = ex.t0
    ended = JobInfo("77", "n", "TIMEOUT", t0, t0 + 100.0, t0 + 160.0, "0:0", 1, ["TIMEOUT"],
                    t0 + 70.0, earlier_s=60.0)
    out = ex._judge(t, ended)
    assert out.failure == "timeout" and round(out.run_s, 3) == 120.0, out


def test_a_trials_result_says_how_often_its_job_restarted(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    assert call(tmp_path, "echo loss: 1")["restarts"] == 2
    monkeypatch.delenv("SLURM_RESTART_COUNT")
    assert call(tmp_path, "exit 3")["restarts"] == 0


def requeue_executor(tmp_path, monkeypatch, world: int):
    """A SlurmExecutor of ``world`` ranks (one node), its job 77 tracked for a command:
    trial; scancel is noted, not run; ``info(state, requeued_at)`` is sacct's word."""
    import time

    from autotune.executors import slurm
    from autotune.executors.base import TrialJob
    from autotune.executors.slurm import SlurmExecutor, _Tracked
    from autotune.executors.slurm_query import JobInfo
    from autotune.objective import ObjectiveSpec

    cancelled: list[list[str]] = []
    monkeypatch.setattr(slurm, "scancel", cancelled.append)
    ex = SlurmExecutor(str(tmp_path), 1, time.time(), {"time_limit_min": 10,
                                                        "tasks_per_node": world})
    ctx = Ctx(trial=0, trial_dir=str(tmp_path / "trials" / "0"), seed=0)
    job = TrialJob(0, 0, {}, ctx, ObjectiveSpec(command="true", metric="loss"))
    os.makedirs(ex._job_dir("77"))

    def info(state: str, requeued_at: float | None = None) -> JobInfo:
        return JobInfo("77", "n", state, None, None, None, "0:0", int(bool(requeued_at)),
                       ["PREEMPTED"] if requeued_at else [], requeued_at)

    return ex, _Tracked(job, "77", 0.0), info, cancelled


def test_a_job_that_timed_out_too_often_names_its_time_limit_and_requeues(tmp_path):
    """submitit's own words ('Job not requeued because: timed-out too many times.') named
    neither the time limit nor the key to raise: a pretrain hours long was left at that."""
    import time

    from submitit.core.utils import cloudpickle_dump

    from autotune.executors.base import TrialJob
    from autotune.executors.slurm import SlurmExecutor, _Tracked
    from autotune.objective import ObjectiveSpec

    ex = SlurmExecutor(str(tmp_path), 1, time.time(), {"time_limit_min": 10, "max_requeue": 2})
    ctx = Ctx(trial=0, trial_dir=str(tmp_path / "trials" / "0"), seed=0)
    job = TrialJob(0, 0, {}, ctx, ObjectiveSpec(command="true", metric="loss"))
    os.makedirs(ex._job_dir("77"))
    cloudpickle_dump(("error", "Traceback (most recent call last):\n  ...\nsubmitit.core.utils."
                      "UncompletedJobError: Job not requeued because: timed-out too many "
                      "times."), ex._result_path("77"))
    out = ex._from_results(_Tracked(job, "77", 0.0))
    assert out.failure == "timeout", out
    assert out.error == ("ran past its time limit (time_limit_min 10) and was requeued 2 "
                         "times (max_requeue 2), without ending; submitit: submitit.core."
                         "utils.UncompletedJobError: Job not requeued because: timed-out too "
                         "many times."), out.error


def leave(ex, rank: int, payload: dict) -> None:
    """A rank's result pickle, as submitit writes it (a later one: another mtime)."""
    import time

    from submitit.core.utils import cloudpickle_dump

    path = ex._result_path("77", rank)
    cloudpickle_dump(("success", payload), path)
    later = time.time_ns() + rank * 1000 + 10**9 * len(os.listdir(ex._job_dir("77")))
    os.utime(path, ns=(later, later))


def test_a_result_the_run_before_a_requeue_left_is_never_the_trials(tmp_path, monkeypatch):
    """A preempted job, requeued: its earlier run's command printed a result after the
    SIGTERM. sacct saying COMPLETED before the new run's result is seen on disk (NFS)
    took that old result as the trial's; it is not: the new one is waited for."""
    ex, t, info, _ = requeue_executor(tmp_path, monkeypatch, 1)
    leave(ex, 0, {"result": {"loss": 30.0}, "started": 1000.0, "ended": 1005.0,
                  "sigterm": 1004.0, "rank": 0})
    assert ex._from_results(t) is None and not t.results
    assert ex._judge(t, info("PENDING", 1006.0)) is None
    assert ex._judge(t, info("COMPLETED", 1006.0)) is None and not t.results  # grace: NFS
    leave(ex, 0, {"result": {"loss": 2.0}, "started": 1020.0, "ended": 1030.0, "rank": 0})
    out = ex._judge(t, info("COMPLETED", 1006.0))
    assert (out.failure, out.result) == ("", {"loss": 2.0}), out


def test_a_rank_that_ended_well_before_a_requeue_runs_again(tmp_path, monkeypatch):
    """Two ranks; SLURM's SIGTERM killed rank 0's command (its error marked sigterm), rank 1
    had ended well just before (no mark). The job, requeued, runs both ranks again: rank 1's
    old result stayed the trial's, and its new failure went unseen (the trial ok)."""
    ex, t, info, cancelled = requeue_executor(tmp_path, monkeypatch, 2)
    leave(ex, 0, {"error": "RuntimeError: command killed by signal 15", "failure": "exception",
                  "started": 1000.0, "ended": 1005.0, "sigterm": 1004.0, "rank": 0})
    leave(ex, 1, {"result": {"loss": 9.0}, "started": 1000.0, "ended": 1003.0, "rank": 1})
    assert ex._from_results(t) is None and set(t.results) == {1}  # rank 0 waits for sacct
    assert ex._judge(t, info("PENDING", 1006.0)) is None and not t.results  # requeued
    assert ex._from_results(t) is None and not t.results
    leave(ex, 0, {"result": {"loss": 2.0}, "started": 1020.0, "ended": 1030.0, "rank": 0})
    assert ex._from_results(t) is None and set(t.results) == {0}
    leave(ex, 1, {"error": "RuntimeError: command exited with status 1: NCCL timeout",
                  "failure": "exception", "started": 1020.0, "ended": 1031.0, "rank": 1})
    out = ex._from_results(t)
    assert (out.failure, out.error) == ("exception", "rank 1: RuntimeError: command exited "
                                                     "with status 1: NCCL timeout"), out
    assert cancelled == [["77"]]


def test_a_multi_rank_job_slurm_ended_is_as_sacct_says_whatever_one_rank_left(tmp_path,
                                                                             monkeypatch):
    """Two ranks, scancel: rank 0's command result came after the SIGTERM (marked), rank 1
    ended well before it: the job is CANCELLED, not ok with rank 0's result; a job SLURM let
    complete keeps rank 0's result."""
    ex, t, info, cancelled = requeue_executor(tmp_path, monkeypatch, 2)
    leave(ex, 0, {"result": {"loss": 30.0}, "started": 1000.0, "ended": 1005.0,
                  "sigterm": 1004.0, "rank": 0})
    leave(ex, 1, {"result": {"loss": 9.0}, "started": 1000.0, "ended": 1003.0, "rank": 1})
    assert ex._from_results(t) is None
    out = ex._judge(t, info("CANCELLED"))
    assert (out.failure, out.result) == ("cancelled", None), out
    t2 = type(t)(t.job, "77", 0.0)
    out = ex._judge(t2, info("COMPLETED"))
    assert (out.failure, out.result) == ("", {"loss": 30.0}), out
    assert cancelled == []


def refusing_executor(tmp_path, monkeypatch, says: str):
    """A SlurmExecutor whose sbatch (a script first on PATH) refuses with ``says`` on
    stderr, trial 0's job already in flight, and a job for trial 1; sleeps are counted.
    SLURM knows none of the study's jobs, for the executor and for the states a driver
    leaves its asked trials in (``states.unrecorded_jobs``): the real sacct and squeue are
    never run, their subprocess waits calling the time.sleep the tests count."""
    import time

    from autotune.executors import slurm, slurm_query
    from autotune.executors.base import TrialJob
    from autotune.executors.slurm import SlurmExecutor, _Tracked
    from autotune.objective import ObjectiveSpec

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\necho 1 >> {tmp_path}/calls\n"
                                    f"printf '{says}\\n' >&2\nexit 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    sleeps: list[float] = []
    monkeypatch.setattr(slurm.time, "sleep", sleeps.append)
    study = tmp_path / "study"
    ex = SlurmExecutor(str(study), 2, time.time(), {"time_limit_min": 10, "partition": "debug"})
    ex._known = {}
    monkeypatch.setattr(slurm_query, "list_study_jobs", lambda *args: ({}, []))
    ex._ex._throttling = 0.0  # submitit's pause between two sbatch calls sleeps too
    ctx = Ctx(trial=1, trial_dir=str(study / "trials" / "1"), seed=0)
    job = TrialJob(1, 0, {}, ctx, ObjectiveSpec(command="true", metric="loss"))
    ex._tracked[0] = _Tracked(job, "77", 0.0)
    return ex, job, sleeps


def sbatch_calls(tmp_path) -> int:
    return len((tmp_path / "calls").read_text().splitlines())


LIMIT_SAYS = ("sbatch: error: QOSMaxSubmitJobPerUserLimit\\nsbatch: error: Batch job submission "
              "failed: Job violates accounting/QOS policy (job submit limit, user\\047s size "
              "and/or time limits)")


def test_a_submit_limit_is_said_once_and_not_tried_again(tmp_path, monkeypatch, capsys):
    """sbatch at MaxSubmitJobs: submitit printed its stderr on each of four tries (13 s),
    then the error said it a fifth time. Now: one try, SubmitLimit (the driver holds the
    trial back), sbatch's words in it once and on stderr never."""
    import pytest

    from autotune.executors.base import SubmitLimit

    ex, job, sleeps = refusing_executor(tmp_path, monkeypatch, LIMIT_SAYS)
    with pytest.raises(SubmitLimit) as refused:
        ex.submit(job)
    assert refused.value.reason == (
        "sbatch: error: QOSMaxSubmitJobPerUserLimit; sbatch: error: Batch job submission "
        "failed: Job violates accounting/QOS policy (job submit limit, user's size and/or "
        "time limits)")
    assert str(refused.value) == (
        f"executor: sbatch refused trial 1: {refused.value.reason}; 1 trial job left queued "
        f"or running on SLURM (the next run re-attaches to them; python -m autotune cancel "
        f"{ex.study_dir} cancels them)")
    assert sbatch_calls(tmp_path) == 1 and sleeps == []
    assert "sbatch" not in capsys.readouterr().err


def test_a_refused_submission_leaves_no_files_of_submitit_behind(tmp_path, monkeypatch):
    """submitit writes the call's pickle and the sbatch script in DIR/slurm/ under a uuid and
    moves them into the job's folder once sbatch answers: a refused sbatch left both there,
    two more files on each try (a submit limit is tried again and again)."""
    import pytest

    from autotune.executors.base import SubmitLimit

    ex, job, _ = refusing_executor(tmp_path, monkeypatch, LIMIT_SAYS)
    with pytest.raises(SubmitLimit):
        ex.submit(job)
    with pytest.raises(SubmitLimit):
        ex.submit(job)
    assert sbatch_calls(tmp_path) == 2 and os.listdir(ex.folder) == []


def test_what_a_driver_killed_in_a_submission_left_goes_at_the_next_drivers_first(
        tmp_path, monkeypatch):
    """A driver SIGKILLed between submitit's writing a submission's files and sbatch's answer
    left them in DIR/slurm/ for good. The next driver drops them before it submits; a job's
    folder, the links to its script and anything newer than the executor stay."""
    import time

    import pytest

    from autotune.executors.base import SubmitLimit

    ex, job, _ = refusing_executor(tmp_path, monkeypatch, LIMIT_SAYS)
    folder = ex.folder
    os.makedirs(os.path.join(folder, "77"))
    kept_script = os.path.join(folder, "77", "77_submission.sh")
    open(kept_script, "w").close()
    old = [f"{'a' * 32}.pkl", f".submission_file_{'b' * 32}.sh"]
    kept = [f"{'c' * 32}.pkl", "notes.pkl", f".submission_file_{'d' * 32}.sh"]
    for name in old + kept[:2]:
        open(os.path.join(folder, name), "w").close()
    os.symlink(kept_script, os.path.join(folder, kept[2]))  # submitit's link to a job's script
    then = time.time() - 3600
    for name in old + ["notes.pkl"]:
        os.utime(os.path.join(folder, name), (then, then))
    later = time.time() + 5  # written after the executor began (a submission of its own)
    os.utime(os.path.join(folder, kept[0]), (later, later))
    with pytest.raises(SubmitLimit):
        ex.submit(job)
    assert sorted(os.listdir(folder)) == sorted(kept + ["77"])
    assert os.listdir(os.path.join(folder, "77")) == ["77_submission.sh"]


def test_options_sbatch_refuses_mid_run_are_one_line_naming_them(tmp_path, monkeypatch, capsys):
    """A partition sbatch refuses at a job's submission (the preflight's --test-only let be
    on a controller too slow to answer): said once, naming the options asked, untried again."""
    import pytest

    from autotune.errors import StudyError
    from autotune.executors.base import SubmitLimit

    ex, job, sleeps = refusing_executor(
        tmp_path, monkeypatch, "sbatch: error: invalid partition specified: debug\\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified")
    with pytest.raises(StudyError) as refused:
        ex.submit(job)
    assert not isinstance(refused.value, SubmitLimit)
    assert str(refused.value).startswith(
        "executor: sbatch refuses the job these options ask for (--cpus-per-task=1 --nodes=1 "
        "--ntasks-per-node=1 --partition=debug --time=10): sbatch: error: invalid partition "
        "specified: debug; sbatch: error: Batch job submission failed: Invalid partition name "
        "specified; 1 trial job left"), refused.value
    assert sbatch_calls(tmp_path) == 1 and sleeps == []
    assert "sbatch" not in capsys.readouterr().err


def test_a_controller_that_does_not_answer_is_tried_four_times_said_once(tmp_path, monkeypatch,
                                                                         capsys):
    import pytest

    from autotune.errors import StudyError

    ex, job, sleeps = refusing_executor(
        tmp_path, monkeypatch, "sbatch: error: Batch job submission failed: Unable to contact "
        "slurm controller (connect failure)")
    with pytest.raises(StudyError, match="^executor: sbatch refused trial 1: sbatch: error: "
                                         "Batch job submission failed: Unable to contact"):
        ex.submit(job)
    assert sbatch_calls(tmp_path) == 4 and sleeps == [1.0, 3.0, 9.0]
    assert "sbatch" not in capsys.readouterr().err


def test_the_preflight_pings_the_controller_once_with_a_pretrains_options(tmp_path, monkeypatch):
    """stages.pretrain.executor options go through sbatch --test-only of their own, but the
    controller was pinged for them a second time (scontrol ping, up to 5 s each)."""
    from autotune.driver import Driver
    from autotune.executors import slurm, slurm_query
    from autotune.study import parse_study
    from tests.helpers import study_dict

    pings, checked = [], []
    monkeypatch.setattr(slurm_query, "check_cluster", lambda: pings.append(1))
    monkeypatch.setattr(slurm, "check_submission", lambda o: checked.append(o.get("partition")))
    study = parse_study(study_dict(
        executor={"kind": "slurm", "max_concurrent": 2, "partition": "debug"},
        objective={"entry": "tests.objectives:finetune"},
        stages={"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 1,
                             "executor": {"partition": "gpu"}}}))
    Driver(study, str(tmp_path / "d"), progress=False)._preflight()
    assert len(pings) == 1 and checked == ["debug", "gpu"]


GENERIC_SAYS = ("sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
                "(job submit limit, user\\047s size and/or time limits)")
GENERIC_SAID = ("sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
                "(job submit limit, user's size and/or time limits)")


def wait_at_most(monkeypatch, waits: int) -> None:
    """time.sleep returns at once, and fails the test past ``waits`` calls: a run that
    waits for ever (as it did on a refusal that never clears) ends the test instead."""
    import time

    count = []

    def sleep(s: float) -> None:
        count.append(s)
        assert len(count) <= waits, f"still waiting after {waits} waits"

    monkeypatch.setattr(time, "sleep", sleep)


def staged_slurm_study(tmp_path, stages: bool = True):
    from autotune.study import parse_study
    from tests.helpers import study_dict

    return parse_study(study_dict(
        executor={"kind": "slurm", "max_concurrent": 2},
        objective={"entry": "tests.objectives:finetune"},
        space={"x": {"values": [0, 1]}}, search={"algorithm": "grid"},
        stages={"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 1,
                             "params": {"log": str(tmp_path / "pretrain.log"), "sleep_s": 0}}}
        if stages else None))


def test_a_pretrain_at_a_submit_limit_waits_for_a_slot_until_ctrl_c(tmp_path, monkeypatch,
                                                                   capsys):
    """sbatch refusing the pretrain's job at MaxSubmitJobs (a queue full of the user's other
    jobs) stopped the whole run, where the trials wait. It waits too: said once, tried again,
    never given up (the words name the limit), and Ctrl-C leaves nothing of it recorded, so
    the next run submits it and runs the study."""
    import signal
    import time

    from autotune import submit_wait
    from autotune.driver import Driver
    from autotune.executors.inline import InlineExecutor
    from tests.helpers import history

    ex, _, _ = refusing_executor(tmp_path, monkeypatch, LIMIT_SAYS)
    ex._tracked.clear()
    monkeypatch.setattr(submit_wait, "RETRY_S", 0.0)
    monkeypatch.setattr(submit_wait, "UNSURE_LIMIT_S", 0.0)  # not for words naming the limit
    d = str(tmp_path / "d")
    driver = Driver(staged_slurm_study(tmp_path), d, executor=ex, progress=False)
    left = []

    def sleep(s: float) -> None:  # the third wait: Ctrl-C
        left.append(driver._left_in_flight())
        if len(left) == 3:
            driver._on_signal(signal.SIGINT, None)

    monkeypatch.setattr(time, "sleep", sleep)
    assert driver.run().stopped == "interrupted"
    assert sbatch_calls(tmp_path) == 4
    said = [ln for ln in capsys.readouterr().err.splitlines() if "sbatch" in ln]
    assert said == [
        "warning: pretrain: sbatch takes no more jobs for now (sbatch: error: "
        "QOSMaxSubmitJobPerUserLimit; sbatch: error: Batch job submission failed: Job violates "
        "accounting/QOS policy (job submit limit, user's size and/or time limits)): its job "
        "waits for a submit slot (tried again every 0 s; Ctrl-C stops the run, and the next "
        "submits it)"], said
    assert left[-1] == ("the pretrain waits for a submit slot, its job not submitted: the next "
                        "run submits it")
    assert history(d).stages == {} and not os.path.exists(tmp_path / "pretrain.log")
    monkeypatch.undo()
    summary = Driver(staged_slurm_study(tmp_path), d, executor=InlineExecutor(d, 2, 0.0),
                     progress=False).run()
    assert summary.counts == {"ok": 2} and history(d).stages["pretrain"].status == "ok"


def refusing_always_in_generic_words(tmp_path, monkeypatch):
    """An executor whose sbatch always refuses in the generic QOS words alone, nothing of
    the study tracked, retried at once and given up on at once (UNSURE_LIMIT_S 0)."""
    from autotune import submit_wait

    ex, _, _ = refusing_executor(tmp_path, monkeypatch, GENERIC_SAYS)
    ex._tracked.clear()
    monkeypatch.setattr(submit_wait, "RETRY_S", 0.0)
    monkeypatch.setattr(submit_wait, "UNSURE_LIMIT_S", 0.0)
    wait_at_most(monkeypatch, 50)
    return ex


def test_sbatchs_generic_refusal_lasting_with_nothing_in_flight_stops_the_run(tmp_path,
                                                                            monkeypatch, capsys):
    """'Job violates accounting/QOS policy' alone is also a job the QOS never takes (too
    long, too many GPUs, on a site that denies such jobs): the run waited for ever, warned
    once. Refused so with none of the study's jobs in flight for UNSURE_LIMIT_S, it stops
    with one line saying what sbatch said and what to check; the trials stay asked."""
    import pytest

    from autotune.driver import Driver
    from autotune.errors import StudyError
    from tests.helpers import history

    ex = refusing_always_in_generic_words(tmp_path, monkeypatch)
    d = str(tmp_path / "d")
    driver = Driver(staged_slurm_study(tmp_path, stages=False), d, executor=ex, progress=False)
    with pytest.raises(StudyError) as stopped:
        driver.run()
    assert str(stopped.value) == (
        f"sbatch still refuses trial 0 after 0s with none of this study's jobs in flight "
        f"({GENERIC_SAID}): the job may be larger or longer than the QOS or account ever "
        "takes; check their limits (sacctmgr show qos; sacctmgr show assoc user=$USER) against "
        "the job's nodes, GPUs, CPUs, memory and time_limit_min, and your jobs queued elsewhere "
        "(squeue -u $USER); the 2 trial(s) waiting are recorded as asked and the next run "
        "submits them")
    assert sbatch_calls(tmp_path) == 2
    assert {t: r.status for t, r in history(d).trials.items()} == {0: "pending", 1: "pending"}
    said = [ln for ln in capsys.readouterr().err.splitlines() if "sbatch" in ln]
    assert len(said) == 1 and said[0].endswith(
        "sbatch's words may also mean a job the QOS never takes: refused so for 0s with none "
        "of this study's jobs in flight, the run stops"), said


def test_a_pretrain_refused_in_sbatchs_generic_words_alone_stops_in_one_line(tmp_path,
                                                                          monkeypatch):
    import pytest

    from autotune.driver import Driver
    from autotune.errors import StudyError
    from tests.helpers import history

    ex = refusing_always_in_generic_words(tmp_path, monkeypatch)
    d = str(tmp_path / "d")
    with pytest.raises(StudyError, match=r"^pretrain: sbatch still refuses the pretrain's job "
                                         r"after 0s .*; its job is not submitted, nothing of "
                                         r"it recorded: the next run submits it$"):
        Driver(staged_slurm_study(tmp_path), d, executor=ex, progress=False).run()
    assert sbatch_calls(tmp_path) == 2 and history(d).stages == {}


WALL_SAYS = ("sbatch: error: QOSMaxWallDurationPerJobLimit\\nsbatch: error: Batch job submission "
             "failed: Job violates accounting/QOS policy (job submit limit, user\\047s size and/or "
             "time limits)")
WALL_SAID = ("sbatch: error: QOSMaxWallDurationPerJobLimit; sbatch: error: Batch job submission "
             "failed: Job violates accounting/QOS policy (job submit limit, user's size and/or "
             "time limits)")


def test_a_per_job_limit_beside_the_generic_line_stops_at_once_naming_what_to_change(
        tmp_path, monkeypatch, capsys):
    """sbatch's generic QOS line with QOSMaxWallDurationPerJobLimit beside it (a site that
    denies jobs past a per-job limit) was taken for a submit limit that might clear: the
    trial waited, and the run stopped only after 10 minutes. The limit is on this job and
    never clears: one line at once, as for options sbatch refuses, naming the limit and the
    key to change, after one try."""
    import pytest

    from autotune.errors import StudyError
    from autotune.executors.base import SubmitLimit

    ex, job, sleeps = refusing_executor(tmp_path, monkeypatch, WALL_SAYS)
    with pytest.raises(StudyError) as refused:
        ex.submit(job)
    assert not isinstance(refused.value, SubmitLimit)
    assert str(refused.value) == (
        "executor: sbatch refuses the job these options ask for (--cpus-per-task=1 --nodes=1 "
        f"--ntasks-per-node=1 --partition=debug --time=10): {WALL_SAID}; "
        "QOSMaxWallDurationPerJobLimit is a limit of the QOS or account on one job, which this "
        "job breaks however long it waits: lower time_limit_min (now 10) (sacctmgr show qos; "
        "sacctmgr show assoc user=$USER give the limit); 1 trial job left queued or running on "
        f"SLURM (the next run re-attaches to them; python -m autotune cancel {ex.study_dir} "
        "cancels them)")
    assert sbatch_calls(tmp_path) == 1 and sleeps == []
    assert "sbatch" not in capsys.readouterr().err


def test_each_per_job_limit_names_the_key_to_change():
    """SLURM's per-job (and per-node, and minimum) limits of a QOS or association, by their
    reason names (job_state_reason.c); a submit limit, per-user or group limit is none."""
    from autotune.executors.slurm_refusal import job_limit, limit_advice, refusal_kind

    o = {"time_limit_min": 600, "gpus_per_node": 8, "nodes": 2, "tasks_per_node": 4,
         "mem_gb": 32}
    advice = {
        "QOSMaxWallDurationPerJobLimit": "lower time_limit_min (now 600)",
        "AssocMaxWallDurationPerJobLimit": "lower time_limit_min (now 600)",
        "QOSMaxGRESPerJob": "lower gpus_per_node (now 8)",
        "QOSMaxGRESPerNode": "lower gpus_per_node (now 8)",
        "AssocMaxGRESPerJob": "lower gpus_per_node (now 8)",
        "QOSMaxCpuPerJobLimit": "lower cpus_per_task (now 1) or tasks_per_node (now 4)",
        "AssocMaxCpuPerNode": "lower cpus_per_task (now 1) or tasks_per_node (now 4)",
        "QOSMaxNodePerJobLimit": "lower nodes (now 2)",
        "AssocMaxNodePerJobLimit": "lower nodes (now 2)",
        "QOSMaxMemoryPerJob": "lower mem_gb (now 32)",
        "AssocMaxMemPerNode": "lower mem_gb (now 32)",
        "QOSMaxCpuMinutesPerJobLimit": "lower time_limit_min (now 600) or cpus_per_task (now 1) "
                                       "or tasks_per_node (now 4)",
        "QOSMaxGRESMinutesPerJob": "lower time_limit_min (now 600) or gpus_per_node (now 8)",
        "QOSMaxNodeMinutesPerJob": "lower time_limit_min (now 600) or nodes (now 2)",
        "QOSMinGRES": "raise gpus_per_node (now 8)",
        "QOSMinCpuNotSatisfied": "raise cpus_per_task (now 1) or tasks_per_node (now 4)",
        "QOSMaxLicensePerJob": "change what the job asks for (sbatch_extra, sbatch_flags)",
    }
    for limit, says in advice.items():
        said = f"sbatch: error: {limit}; sbatch: error: Batch job submission failed: {GENERIC_SAID}"
        assert (refusal_kind(said), job_limit(said)) == ("job_limit", limit), limit
        assert limit_advice(limit, o) == says, limit
    for limit in ("QOSMaxSubmitJobPerUserLimit", "AssocMaxSubmitJobLimit",
                  "AssocGrpSubmitJobsLimit", "QOSMaxJobsPerUserLimit", "QOSGrpGRES",
                  "QOSMaxCpuPerUserLimit"):
        said = f"sbatch: error: {limit}; {GENERIC_SAID}"
        assert (refusal_kind(said), job_limit(said)) == ("limit", ""), limit
    assert limit_advice("QOSMaxMemoryPerJob", {}) == (
        "lower mem_gb (not set: the partition's default applies)")
    assert limit_advice("QOSMaxGRESPerJob", {"gpus_per_task": 2, "tasks_per_node": 4}) == (
        "lower gpus_per_task (now 2)")


def test_a_run_whose_jobs_break_a_per_job_limit_stops_at_once(tmp_path, monkeypatch):
    """The run, and a pretrain's job likewise, stop at the first refusal naming a per-job
    limit, with nothing of the study's in flight: no 10-minute wait (UNSURE_LIMIT_S kept at
    its own value here), no retry. The pretrain's line names its executor options, as the
    preflight's does (it said 'executor: ...', the study's options, before)."""
    import pytest

    from autotune import submit_wait
    from autotune.driver import Driver
    from autotune.errors import StudyError
    from tests.helpers import history

    assert submit_wait.UNSURE_LIMIT_S == 600.0
    for stages in (False, True):
        root = tmp_path / str(stages)
        root.mkdir()
        ex, _, _ = refusing_executor(root, monkeypatch, WALL_SAYS)
        ex._tracked.clear()
        wait_at_most(monkeypatch, 5)
        d = str(root / "d")
        with pytest.raises(StudyError) as stopped:
            Driver(staged_slurm_study(root, stages=stages), d, executor=ex,
                   progress=False).run()
        said = str(stopped.value)
        assert said.startswith("stages.pretrain.executor: sbatch refuses" if stages
                               else "executor: sbatch refuses"), said
        assert said.endswith("QOSMaxWallDurationPerJobLimit is a limit of the QOS or account "
                             "on one job, which this job breaks however long it waits: lower "
                             "time_limit_min (now 10) (sacctmgr show qos; sacctmgr show assoc "
                             "user=$USER give the limit)"), said
        assert sbatch_calls(root) == 1
        if stages:
            assert history(d).stages == {}
        monkeypatch.undo()


def test_the_preflight_names_a_per_job_limit_and_the_key_to_change(tmp_path, monkeypatch):
    """sbatch --test-only refusing in the same words (the QOS's limits are checked there
    too): the preflight's one line names the limit and the key as well."""
    import pytest

    from autotune.errors import StudyError
    from autotune.executors.slurm import check_submission

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ncat > /dev/null\nprintf '{WALL_SAYS}\\n' >&2\n"
                                    "exit 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with pytest.raises(StudyError) as refused:
        check_submission({"time_limit_min": 2880})
    assert str(refused.value) == (
        "executor: sbatch refuses the job these options ask for (--cpus-per-task=1 --nodes=1 "
        f"--ntasks-per-node=1 --time=2880): {WALL_SAID}; QOSMaxWallDurationPerJobLimit is a "
        "limit of the QOS or account on one job, which this job breaks however long it waits: "
        "lower time_limit_min (now 2880) (sacctmgr show qos; sacctmgr show assoc user=$USER "
        "give the limit)")


def test_a_pretrains_job_sbatch_will_not_take_is_named_so(tmp_path, monkeypatch):
    """A controller that never answers the pretrain's sbatch: the line said 'sbatch refused
    trial -1' (the stage's id with the executors) of the study's 'executor'."""
    import pytest

    from autotune.driver import Driver
    from autotune.errors import StudyError

    ex, _, _ = refusing_executor(tmp_path, monkeypatch, "sbatch: error: Batch job submission "
                                 "failed: Unable to contact slurm controller (connect failure)")
    ex._tracked.clear()
    wait_at_most(monkeypatch, 5)
    with pytest.raises(StudyError) as stopped:
        Driver(staged_slurm_study(tmp_path), str(tmp_path / "d"), executor=ex,
               progress=False).run()
    assert str(stopped.value) == (
        "stages.pretrain.executor: sbatch refused the pretrain's job: sbatch: error: Batch job "
        "submission failed: Unable to contact slurm controller (connect failure)")
    assert sbatch_calls(tmp_path) == 4


def test_a_finished_jobs_result_stays_until_its_outcome_is_recorded(tmp_path):
    """``poll`` hands the outcome back; the driver then records it. The job's folder (its
    result) was removed as ``poll`` handed it back, so a driver killed before it wrote the
    end left a COMPLETED job with no result: the next run recorded the trial as failed
    (lost), its training wasted. The folder goes once the outcome is ``release``d."""
    import time

    from submitit.core.utils import cloudpickle_dump

    from autotune.executors.base import TrialJob
    from autotune.executors.slurm import SlurmExecutor
    from autotune.objective import ObjectiveSpec

    ex = SlurmExecutor(str(tmp_path), 1, time.time(), {"time_limit_min": 10})
    ctx = Ctx(trial=0, trial_dir=str(tmp_path / "trials" / "0"), seed=0)
    job = TrialJob(0, 0, {}, ctx, ObjectiveSpec(command="true", metric="loss"))
    os.makedirs(ex._job_dir("77"))
    cloudpickle_dump(("success", {"result": {"loss": 1.0}, "started": 3.0, "ended": 4.0}),
                     ex._result_path("77"))
    with open(ex._job_file("77", "0_log.out"), "w") as fh:
        fh.write("trained\n")
    ex._track(job, "77", None)
    [out] = ex.poll(timeout=0)
    assert out.result == {"loss": 1.0}
    # the driver is killed here: a restarted one re-attaches and finds the result again
    again = SlurmExecutor(str(tmp_path), 1, time.time(), {"time_limit_min": 10})
    again._track(job, "77", None)
    [found] = again.poll(timeout=0)
    assert found.result == {"loss": 1.0}
    again.release([found])  # recorded: the folder goes (cleanup: done), its log kept
    assert not os.path.exists(ex._job_dir("77"))
    with open(os.path.join(ctx.trial_dir, "slurm-77.stdout.log")) as fh:
        assert fh.read() == "trained\n"


def test_a_command_past_its_timeout_is_ended_with_what_it_started(tmp_path):
    """The job's timer cuts the command's reading short: the command (its shell and the
    training the shell started) ran on after the trial was recorded timed out, on a node
    the next job may share."""
    import time

    child = tmp_path / "child.pid"
    ctx = Ctx(trial=0, trial_dir=str(tmp_path / "trials" / "0"), seed=0, attempt=0,
              study_dir=str(tmp_path), launch_dir=str(tmp_path))
    objective = {"command": f"sleep 30 & echo $! > {child}; wait", "metric": "loss",
                 "mode": "min", "timeout_s": 1}
    out = TrialCall(objective, {}, ctx.as_dict())()
    assert (out["failure"], out["error"]) == ("timeout", "timed out after 1s"), out
    pid = int(child.read_text())
    for _ in range(50):  # SIGKILLed: gone once its parent, init, reaps it
        if not os.path.exists(f"/proc/{pid}"):
            break
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the command's child outlived the trial's timeout")


def test_a_commands_result_waits_briefly_for_a_sigterm_on_its_way():
    """slurmstepd signals a job's processes one by one: under load the shell that outlived
    its killed child printed its result before the job's Python process was signalled, and
    the result, unmarked, passed for the trial's (a CI run). It now waits ``grace_s`` for it,
    and no longer once it is noted."""
    import threading
    import time

    from autotune.executors.slurm_job import late_sigterm

    noted: list[float] = []
    threading.Timer(0.1, lambda: noted.append(time.time())).start()
    began = time.monotonic()
    late_sigterm(noted, grace_s=5.0)
    assert noted and time.monotonic() - began < 2.0
    began = time.monotonic()
    late_sigterm([], grace_s=0.2)
    assert 0.2 <= time.monotonic() - began < 1.0


def test_a_commands_result_as_slurm_ends_the_job_is_marked_whatever_the_signals_timing(
        tmp_path, monkeypatch):
    """scancel from outside: slurmstepd's SIGTERM killed the command's child, its shell
    printed a result, and the job's Python process was signalled only after the half-second
    grace: the result, unmarked, was recorded ok. The job asks SLURM instead: the controller
    says the job is ending (COMPLETING) before any process is signalled, so the result is
    marked with no SIGTERM seen at all, and the driver takes sacct's word (CANCELLED). A job
    SLURM says RUNNING keeps its result unmarked at once (no grace waited); where squeue
    cannot answer, the grace stands in."""
    import time

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    before = signal.signal(signal.SIGTERM, lambda signum, frame: None)  # submitit's, never called
    try:
        squeue.write_text("#!/bin/sh\necho '4242|COMPLETING'\n")
        squeue.chmod(0o755)
        out = call(tmp_path, "echo '{{\"loss\": 30}}'")
        assert out["result"] == {"loss": 30} and "sigterm" in out, out
        squeue.write_text("#!/bin/sh\necho '4242|RUNNING'\n")
        began = time.monotonic()
        out = call(tmp_path, "echo '{{\"loss\": 1}}'")
        assert out["result"] == {"loss": 1} and "sigterm" not in out, out
        assert time.monotonic() - began < 0.45  # the grace is not waited
        squeue.write_text("#!/bin/sh\necho 'slurm_load_jobs error' >&2\nexit 1\n")
        began = time.monotonic()
        out = call(tmp_path, "echo '{{\"loss\": 1}}'")
        assert "sigterm" not in out and time.monotonic() - began >= 0.5, out
    finally:
        signal.signal(signal.SIGTERM, before)
