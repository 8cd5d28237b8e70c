"""``autotune cancel DIR`` against fake SLURM commands (no cluster needed): what it cancels and
what it says. tests/test_slurm.py cancels real jobs on a local cluster."""
from __future__ import annotations

import os

from autotune import events as ev
from autotune.cli import main
from autotune.executors.slurm_query import job_name
from autotune.journal import Journal

SPACE = {"x": {"values": [1, 2, 3]}}


def slurm_history(d, *events) -> None:
    """A SLURM study's history: its record, two trials asked, then ``events``."""
    identity = {"space": SPACE, "algorithm": "grid", "seed": 0, "search_options": {},
                "metric": "loss", "mode": "min", "pretrain": None}
    journal = Journal(str(d / "history.jsonl"))
    journal.append([ev.study("s", 0.0, identity, {"executor": {"kind": "slurm"}}),
                    ev.ask(0.0, 2, [ev.trial_entry(0, {"x": 1}), ev.trial_entry(1, {"x": 2})]),
                    *events])
    journal.close()


def fake_slurm(tmp_path, monkeypatch, sacct: str, squeue: str = "") -> str:
    """``sacct`` and ``squeue`` on PATH that run these shell lines instead of SLURM's, and a
    ``scancel`` that only logs its arguments, one call a line, into the file returned."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "scancel.log"
    for name, body in (("sacct", sacct), ("squeue", squeue),
                       ("scancel", f'echo "$@" >> {log}')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return str(log)


def test_a_second_cancel_says_nothing_was_left_to_cancel(tmp_path, monkeypatch, capsys):
    """cancel run twice: the second re-reported the jobs the first had cancelled as cancelled
    again ('cancelled 2 slurm job(s): 101 102', and scancelled them again). SLURM says they
    ended: nothing is left, and it says so, exit status 0; the jobs are named as cancelled
    before, not by this call."""
    d = tmp_path / "s"
    d.mkdir()
    slurm_history(d, ev.submit(0.1, 0, 0, "101"), ev.submit(0.1, 1, 0, "102"),
                  ev.cancel(5.0, ["101", "102"]))
    rows = [f"{job}|{job_name(str(d), t, 0)}|CANCELLED by 0|2026-01-01T00:00:00|"
            "2026-01-01T00:00:01|2026-01-01T00:00:05|0:15" for t, job in ((0, "101"), (1, "102"))]
    scancelled = fake_slurm(tmp_path, monkeypatch, "echo '" + "\n".join(rows) + "'")
    assert main(["cancel", str(d)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "nothing to cancel: no driver holds the study and none of its SLURM jobs is queued or "
        "running (cancelled before: 101 102; the next run records them)"], out
    assert not os.path.exists(scancelled) or "101" not in open(scancelled).read()


def test_cancel_cancels_the_jobs_slurm_still_runs_and_those_it_cannot_list(tmp_path,
                                                                            monkeypatch, capsys):
    """A recorded job SLURM still runs is cancelled, one it says ended is not; where sacct
    fails (squeue alone answers), a recorded job neither lists is cancelled all the same."""
    d = tmp_path / "s"
    d.mkdir()
    slurm_history(d, ev.submit(0.1, 0, 0, "101"), ev.submit(0.1, 1, 0, "102"))
    name0, name1 = job_name(str(d), 0, 0), job_name(str(d), 1, 0)
    scancelled = fake_slurm(
        tmp_path, monkeypatch,
        f"echo '101|{name0}|RUNNING|2026-01-01T00:00:00|2026-01-01T00:00:01|Unknown|0:0'\n"
        f"echo '102|{name1}|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:00:01|"
        "2026-01-01T00:00:05|0:0'")
    assert main(["cancel", str(d)]) == 0
    assert capsys.readouterr().out.startswith("cancelled 1 slurm job(s): 101")
    assert open(scancelled).read().split() == ["101"]
    os.remove(scancelled)
    (tmp_path / "bin" / "sacct").write_text("#!/bin/sh\necho down >&2\nexit 1\n")
    assert main(["cancel", str(d)]) == 0
    assert capsys.readouterr().out.startswith("cancelled 2 slurm job(s): 101 102")
    assert open(scancelled).read().split() == ["101", "102"]
