"""A study directory the user may not read or write is one line and exit status 2, found
before anything is written; status on a read-only study still works (it only reads).

Root ignores file modes, so as root the commands run with every capability dropped
(``setpriv``): root then meets the owner's mode bits like anyone else.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from autotune.driver import Driver
from autotune.study import parse_study
from tests.helpers import REPO, study_dict, tree, write_study

SETPRIV = shutil.which("setpriv")
DROP = [SETPRIV, "--inh-caps=-all", "--bounding-set=-all", "--ambient-caps=-all"]


def as_user(*args: str) -> subprocess.CompletedProcess:
    """``python -m autotune ARGS`` as a process that file modes apply to."""
    prefix = DROP if os.geteuid() == 0 else []
    return subprocess.run([*prefix, sys.executable, "-m", "autotune", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": REPO})


@pytest.fixture(scope="module")
def modes_apply(tmp_path_factory):
    if os.geteuid() == 0 and SETPRIV is None:
        pytest.skip("running as root without setpriv: file modes cannot be tested")
    probe = tmp_path_factory.mktemp("probe") / "f"
    probe.write_text("x")
    probe.chmod(0)
    prefix = DROP if os.geteuid() == 0 else []
    if subprocess.run([*prefix, "cat", str(probe)], capture_output=True).returncode == 0:
        pytest.skip("file modes do not apply to this process (capabilities kept)")


@pytest.fixture
def done(tmp_path, modes_apply):
    """A finished 4-trial study and its study file (local executor, room for more trials)."""
    d = tmp_path / "d"
    Driver(parse_study(study_dict(search={"max_trials": 4})), str(d), progress=False).run()
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        search={"max_trials": 8}, executor={"kind": "local", "max_concurrent": 1}))
    yield d, path
    for root, dirs, files in os.walk(d):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


def one_line(proc: subprocess.CompletedProcess, *parts: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert all(p in lines[0] for p in parts), lines[0]


def test_an_unreadable_history_is_one_line_for_every_command(done):
    d, path = done
    (d / "history.jsonl").chmod(0)
    before = tree(d)
    history = str(d / "history.jsonl")
    one_line(as_user("status", str(d)), f"cannot read {history}")
    one_line(as_user("report", str(d)), f"cannot read {history}")
    one_line(as_user("run", path, "--dir", str(d), "--quiet"), f"cannot read {history}")
    assert tree(d) == before


def test_a_read_only_history_refuses_run_and_still_shows_status(done):
    d, path = done
    (d / "history.jsonl").chmod(0o444)
    before = tree(d)
    one_line(as_user("run", path, "--dir", str(d), "--quiet"),
             f"cannot write {d / 'history.jsonl'}")
    assert tree(d) == before
    status = as_user("status", str(d))
    assert status.returncode == 0 and "4 ok" in status.stdout, status.stderr


def test_a_read_only_directory_refuses_run_and_report_but_not_status(done):
    d, path = done
    os.remove(d / "driver.lock")  # a copied study: status must not need to make it
    d.chmod(0o555)
    before = tree(d)
    one_line(as_user("run", path, "--dir", str(d), "--quiet"), f"cannot write {d} ")
    one_line(as_user("report", str(d)), f"cannot write {d} ", "report writes")
    status = as_user("status", str(d))
    assert status.returncode == 0 and "4 ok" in status.stdout, status.stderr
    assert tree(d) == before


def test_read_only_trials_refuse_run_before_a_trial_is_asked(done):
    d, path = done
    (d / "trials").mkdir(exist_ok=True)  # the inline executor made none
    (d / "trials").chmod(0o555)
    before = tree(d)
    one_line(as_user("run", path, "--dir", str(d), "--quiet"), f"cannot write {d / 'trials'}")
    assert tree(d) == before  # no ask line recorded for a trial that could not run


def test_report_into_read_only_plots_writes_nothing(done):
    d, path = done
    assert as_user("report", str(d)).returncode == 0
    (d / "plots").chmod(0o555)
    before = tree(d)
    one_line(as_user("report", str(d)), f"cannot write {d / 'plots'}")
    assert tree(d) == before


def test_cancel_in_a_read_only_directory_records_the_cancel_and_names_no_temp_file(
        done, tmp_path, monkeypatch):
    """A directory the user may not add files to, its files theirs (a study made read-only
    with ``chmod a-w DIR``): ``cancel`` recorded the cancel, then failed as it took the lock
    to rewrite trajectory.csv, on driver.json's temporary file (``cannot access
    DIR/driver.json.tmpNNNN``, exit 2). The lock is refused as the directory's, and the
    view left as it was, as for any CSV that cannot be written: the cancel stands (a SLURM
    job in flight, fake SLURM commands: a cancel that cancels no job records nothing)."""
    from autotune import events as ev
    from autotune.executors.slurm_query import job_name
    from autotune.journal import Journal
    from tests.helpers import fake_slurm

    d, _ = done
    journal = Journal(str(d / "history.jsonl"))
    journal.append([ev.ask(9.0, 1, [ev.trial_entry(4, {"x": 0.5, "y": 0.0})]),
                    ev.submit(9.1, 4, 0, "101")])
    journal.close()
    fake_slurm(tmp_path, monkeypatch, f"echo '101|{job_name(str(d), 4, 0)}|RUNNING|"
               "2026-01-01T00:00:00|2026-01-01T00:00:01|Unknown|0:0'")
    d.chmod(0o555)
    before = tree(d)
    out = as_user("cancel", str(d))
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    assert out.stdout.startswith("cancelled 1 slurm job(s): 101"), out.stdout
    after = tree(d)
    assert sorted(after) == sorted(before)  # no temporary file left, nothing made
    assert after["trajectory.csv"] == before["trajectory.csv"]
    assert after["history.jsonl"].startswith(before["history.jsonl"])
    assert b'"e":"cancel"' in after["history.jsonl"][len(before["history.jsonl"]):]


def test_cancel_of_a_read_only_study_is_one_line_naming_the_directory(done):
    """``chmod -R a-w DIR``: cancel named its internal lock file (``cannot access
    DIR/history.lock (Permission denied)``). It says the directory is read-only, before it
    stops a driver or cancels a job, exit status 2, nothing written; a history alone that
    may not be written is named as such."""
    d, _ = done
    for path in [*d.rglob("*"), d]:
        path.chmod(path.stat().st_mode & ~0o222)
    before = tree(d)
    said = as_user("cancel", str(d))
    one_line(said, f"cannot write {d} (permission denied): the study directory is read-only",
             "nothing was cancelled")
    assert "history.lock" not in said.stderr
    assert tree(d) == before
    d.chmod(0o755)
    (d / "history.lock").chmod(0o644)
    one_line(as_user("cancel", str(d)), f"cannot write {d / 'history.jsonl'} (permission denied)")
    assert tree(d) == before


def test_cancel_of_a_read_only_comparison_is_one_line(done, tmp_path):
    """``chmod -R a-w`` on a compare DIR: cancel said the same refusal once per run, the
    first line alone prefixed 'autotune: error:'. One line names the runs and the reason,
    exit status 2 as for one study, nothing written."""
    d, _ = done
    out = tmp_path / "cmp"
    out.mkdir()
    for name in ("grid-s0", "random-s0", "random-s1"):
        shutil.copytree(d, out / name)
    for path in [*out.rglob("*"), out]:
        path.chmod(path.stat().st_mode & ~0o222)
    before = tree(out)
    try:
        one_line(as_user("cancel", str(out)),
                 f"{out}: each of its 3 studies (grid-s0, random-s0, random-s1): cannot write "
                 f"{out}/<study> (permission denied): the study directory is read-only",
                 "nothing was cancelled")
        assert tree(out) == before
    finally:
        for path in [*out.rglob("*"), out]:
            path.chmod(path.stat().st_mode | 0o200)
