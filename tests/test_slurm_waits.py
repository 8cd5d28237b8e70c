"""``status`` says why SLURM has not started the trials' jobs, as it does the pretrain's: one
squeue call for all, counted by reason, a warning for a reason that never ends by itself.
squeue is faked here (no cluster needed); tests/test_slurm.py sees it on a real one."""
from __future__ import annotations

from autotune import events as ev
from autotune.cli import main
from autotune.executors import slurm_query
from autotune.journal import Journal

SPACE = {"x": {"values": [1, 2, 3, 4]}}


def slurm_study(directory, jobs: list[str]) -> None:
    """A study whose trials were submitted as these SLURM jobs, none ended."""
    identity = {"space": SPACE, "algorithm": "grid", "seed": 0, "search_options": {},
                "metric": "loss", "mode": "min", "pretrain": None}
    journal = Journal(str(directory / "history.jsonl"))
    journal.append([ev.study("s", 0.0, identity, {"executor": {"kind": "slurm"}}),
                    ev.ask(0.0, len(jobs), [ev.trial_entry(t, {"x": t + 1})
                                            for t in range(len(jobs))])]
                   + [ev.submit(0.1, t, 0, job) for t, job in enumerate(jobs)])
    journal.close()


def fake_squeue(monkeypatch, lines: list[str]) -> list[list[str]]:
    calls: list[list[str]] = []

    def run(args: list[str], timeout: float = 60.0) -> str:
        calls.append(args)
        assert args[0] == "squeue"
        return "".join(line + "\n" for line in lines)

    monkeypatch.setattr(slurm_query, "run_command", run)
    return calls


def test_status_says_why_the_trials_jobs_wait_and_warns_of_a_hold(tmp_path, monkeypatch, capsys):
    slurm_study(tmp_path, ["101", "102", "103", "104"])
    calls = fake_squeue(monkeypatch, ["101|PENDING|Resources", "102|PENDING|JobHeldUser",
                                      "103|RUNNING|None", "104|PENDING|Resources"])
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "trial jobs pending on SLURM: 3 of 4 (Resources: 2, JobHeldUser: 1)" in out, out
    assert ("warning: trial 1: job 102 pending (JobHeldUser): it is held until released "
            "(scontrol release), so it will not start by itself") in out, out
    assert "Resources):" not in out  # a wait that ends is no warning
    assert len(calls) == 1 and calls[0][calls[0].index("-j") + 1] == "101,102,103,104"


def test_many_held_trial_jobs_are_one_warning_line(tmp_path, monkeypatch, capsys):
    jobs = [str(200 + i) for i in range(8)]
    slurm_study(tmp_path, jobs)
    fake_squeue(monkeypatch, [f"{j}|PENDING|PartitionTimeLimit" for j in jobs])
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "trial jobs pending on SLURM: 8 of 8 (PartitionTimeLimit: 8)" in out, out
    assert ("warning: trials: 8 jobs (200, 201, 202, 203, 204 and 3 more) pending "
            "(PartitionTimeLimit), each: its time limit exceeds its partition's, so none will "
            "start by itself") in out, out


def test_no_line_when_squeue_fails_or_nothing_waits(tmp_path, monkeypatch, capsys):
    slurm_study(tmp_path, ["301"])
    fake_squeue(monkeypatch, ["301|RUNNING|None"])
    assert main(["status", str(tmp_path)]) == 0
    assert "pending on SLURM" not in capsys.readouterr().out

    def down(args: list[str], timeout: float = 60.0) -> str:
        raise slurm_query.SlurmError("squeue: not found")

    monkeypatch.setattr(slurm_query, "run_command", down)
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "trials: 1 running-alone" in out and "pending on SLURM" not in out, out


def test_run_counts_the_queued_trials_and_warns_once_of_a_wait_that_never_ends(tmp_path):
    """The driver's side (``QueueWatch``, fed by ``Executor.waiting``): the progress line says
    how many of the running trials wait in the queue; a hold is a warning, once per reason."""
    import io

    from autotune.history import History
    from autotune.progress import Progress
    from autotune.slurm_waits import QueueWatch

    slurm_study(tmp_path, ["101", "102", "103"])
    h = History.load(Journal(str(tmp_path / "history.jsonl")))
    out = io.StringIO()
    progress = Progress("min", stream=out, total=3)
    watch = QueueWatch(progress, str(tmp_path))
    watch.update({0: "Resources", 1: "JobHeldUser", 2: "JobHeldUser"}, h)
    watch.update({0: "Resources", 1: "JobHeldUser", 2: "JobHeldUser"}, h)
    assert progress.line(h, 3).startswith("0/3 done, 3 running (3 queued), "), progress.line(h, 3)
    assert out.getvalue().splitlines() == [
        "warning: trials: 2 jobs (102, 103) pending (JobHeldUser), each: it is held until "
        f"released (scontrol release), so none will start by itself (python -m autotune cancel "
        f"{tmp_path} cancels them)"]
    watch.update({}, h)  # they started
    assert progress.line(h, 3).startswith("0/3 done, 3 running, ")
    watch.update({2: "JobHeldUser"}, h)
    assert progress.line(h, 0).startswith("0/3 done, 0 running, ")  # the driver let them go
    assert len(out.getvalue().splitlines()) == 1


def test_the_slurm_executor_asks_squeue_once_for_all_its_pending_jobs(tmp_path, monkeypatch):
    import time

    from autotune.executors.base import TrialJob
    from autotune.executors.slurm import SlurmExecutor, _Tracked
    from autotune.objective import Ctx, ObjectiveSpec

    ex = SlurmExecutor(str(tmp_path), 3, time.time(), {"time_limit_min": 10})
    for t, job_id in enumerate(["101", "102", "103"]):
        job = TrialJob(t, 0, {}, Ctx(trial=t, trial_dir=str(tmp_path), seed=0),
                       ObjectiveSpec(command="true", metric="loss"))
        ex._tracked[t] = _Tracked(job, job_id, 0.0, state="RUNNING" if t == 2 else "PENDING")
    calls = fake_squeue(monkeypatch, ["101|PENDING|Priority", "102|PENDING|JobHeldUser"])
    assert ex.waiting() == {0: "Priority", 1: "JobHeldUser"}
    assert ex.waiting() == {0: "Priority", 1: "JobHeldUser"}  # asked again only later
    assert ex.waiting().get(2, "") == ""  # a running job waits for nothing
    assert len(calls) == 1 and calls[0][calls[0].index("-j") + 1] == "101,102"
