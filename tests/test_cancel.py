"""``autotune cancel DIR`` against fake SLURM commands (no cluster needed): what it cancels and
what it says. tests/test_slurm.py cancels real jobs on a local cluster."""
from __future__ import annotations

import os

from autotune import events as ev
from autotune.cli import main
from autotune.executors.slurm_query import job_name
from tests.helpers import fake_slurm, slurm_history

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


def test_a_cancel_that_cancels_no_job_records_nothing(tmp_path, monkeypatch, capsys):
    """Every cancel appended a ``cancel`` record, a second one (or one of a local study)
    naming no job. Only the jobs a record names are ever read (``states.cancelled_jobs``:
    'cancelled by autotune cancel', not by someone else), and a driver is stopped by its
    signal, not by the record: a cancel that cancelled no job leaves the history as it was.
    One that cancelled jobs records them."""
    d = tmp_path / "s"
    d.mkdir()
    slurm_history(d, ev.submit(0.1, 0, 0, "101"))
    name = job_name(str(d), 0, 0)
    fake_slurm(tmp_path, monkeypatch,
               f"echo '101|{name}|RUNNING|2026-01-01T00:00:00|2026-01-01T00:00:01|Unknown|0:0'")
    assert main(["cancel", str(d)]) == 0
    assert capsys.readouterr().out.startswith("cancelled 1 slurm job(s): 101")
    with open(d / "history.jsonl", "rb") as fh:
        before = fh.read()
    assert before.count(b'"e":"cancel"') == 1 and b'"jobs":["101"]' in before
    (tmp_path / "bin" / "sacct").write_text(
        f"#!/bin/sh\necho '101|{name}|CANCELLED by 0|2026-01-01T00:00:00|"
        "2026-01-01T00:00:01|2026-01-01T00:00:05|0:15'\n")
    assert main(["cancel", str(d)]) == 0
    assert capsys.readouterr().out.startswith("nothing to cancel")
    with open(d / "history.jsonl", "rb") as fh:
        assert fh.read() == before


def test_a_comparison_cancel_says_each_outcome_once(tmp_path, monkeypatch, capsys):
    """``cancel DIR`` on a comparison said one line per study, the same one over and over
    (four runs, four 'nothing to cancel' lines). The studies that fared alike share one line
    naming them; a study alone keeps its own."""
    out = tmp_path / "cmp"
    for name in ("grid-s0", "random-s0", "random-s1"):
        (out / name).mkdir(parents=True)
        slurm_history(out / name, *([ev.submit(0.1, 0, 0, "101")] if name == "grid-s0" else []))
    fake_slurm(tmp_path, monkeypatch,
               f"echo '101|{job_name(str(out / 'grid-s0'), 0, 0)}|RUNNING|2026-01-01T00:00:00|"
               "2026-01-01T00:00:01|Unknown|0:0'")
    assert main(["cancel", str(out)]) == 0
    none = ("nothing to cancel: no driver holds the study and none of its SLURM jobs is "
            "queued or running")
    assert capsys.readouterr().out.splitlines() == [
        f"{out}/grid-s0: cancelled 1 slurm job(s): 101",
        f"{out}: 2 of its 3 studies (random-s0, random-s1): {none}"]
    os.remove(out / "grid-s0" / "history.jsonl")
    assert main(["cancel", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{out}: each of its 2 studies (random-s0, random-s1): {none}"]


def test_a_history_lock_that_is_a_directory_is_refused_before_any_job_is_cancelled(
        tmp_path, monkeypatch, capsys):
    """history.lock made a directory: cancel scancelled the study's jobs, then failed to
    append the record naming them (one line, exit status 2), the jobs cancelled and not
    recorded as autotune's. It is refused first: nothing is cancelled."""
    d = tmp_path / "s"
    d.mkdir()
    slurm_history(d, ev.submit(0.1, 0, 0, "101"))
    scancelled = fake_slurm(
        tmp_path, monkeypatch,
        f"echo '101|{job_name(str(d), 0, 0)}|RUNNING|2026-01-01T00:00:00|"
        "2026-01-01T00:00:01|Unknown|0:0'")
    os.remove(d / "history.lock")
    os.mkdir(d / "history.lock")
    assert main(["cancel", str(d)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"autotune: error: cannot access {d / 'history.lock'} (Is a directory)"]
    assert not os.path.exists(scancelled)
