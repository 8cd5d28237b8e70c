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


def test_the_executor_takes_slurms_word_over_an_error_the_sigterm_caused(tmp_path):
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

    t = _Tracked(job, "77", 0.0)
    assert ex._from_results(t) is None and not t.results       # on disk: not taken, not kept
    assert ex._judge(t, info("PENDING")) is None               # requeued: it runs again
    out = ex._judge(t, info("CANCELLED"))
    assert (out.failure, out.error) == ("cancelled", "slurm job 77 cancelled (scancel or an "
                                                     "administrator)"), out
    t = _Tracked(job, "77", 0.0)
    out = ex._judge(t, info("COMPLETED"))  # SLURM did not end it: the error is the trial's
    assert (out.failure, out.error) == ("exception", "RuntimeError: command killed by signal 15")


def test_a_refused_submission_names_the_jobs_it_leaves_in_flight(tmp_path, monkeypatch):
    """sbatch refusing a trial mid-run (a submit limit reached) stops the run: the jobs already
    in flight run on, and the one error line says so and how to go on."""
    import time

    import pytest

    from autotune.errors import StudyError
    from autotune.executors import slurm
    from autotune.executors.base import TrialJob
    from autotune.executors.slurm import SlurmExecutor, _Tracked
    from autotune.objective import ObjectiveSpec

    ex = SlurmExecutor(str(tmp_path), 2, time.time(), {"time_limit_min": 10})
    ex._known = {}
    ctx = Ctx(trial=1, trial_dir=str(tmp_path / "trials" / "1"), seed=0)
    job = TrialJob(1, 0, {}, ctx, ObjectiveSpec(command="true", metric="loss"))
    ex._tracked[0] = _Tracked(job, "77", 0.0)

    def refuse(call: object) -> None:
        raise RuntimeError("sbatch: error: Batch job submission failed: Job violates "
                           "accounting/QOS policy (job submit limit)")

    monkeypatch.setattr(ex._ex, "submit", refuse)
    monkeypatch.setattr(slurm.time, "sleep", lambda s: None)
    with pytest.raises(StudyError) as refused:
        ex.submit(job)
    assert str(refused.value) == (
        "executor: sbatch refused trial 1: sbatch: error: Batch job submission failed: Job "
        "violates accounting/QOS policy (job submit limit); 1 trial job left queued or running "
        f"on SLURM (the next run re-attaches to them; python -m autotune cancel {tmp_path} "
        "cancels them)")
