"""Resume after damage, a full disk and repeated signals: what the driver does about each."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from autotune import cli
from autotune.driver import Driver
from autotune.errors import DiskFull, StudyError
from autotune.executors import local as local_mod
from autotune.study import parse_study
from tests.helpers import REPO, history, mark_written_by_newer, study_dict, tree, write_study


def study_record_line(d: str) -> int:
    lines = open(os.path.join(d, "history.jsonl"), "rb").read().split(b"\n")
    return next(i for i, ln in enumerate(lines) if ln.startswith(b'{"e":"study"'))


def damage_line(d: str, index: int, how: bytes = b"\x00") -> None:
    path = os.path.join(d, "history.jsonl")
    lines = open(path, "rb").read().split(b"\n")
    lines[index] = how * len(lines[index])
    open(path, "wb").write(b"\n".join(lines))


# ---- a damaged study record -----------------------------------------------------------------
def test_a_damaged_study_record_is_rebuilt_from_the_matching_study_file(tmp_path, capsys):
    d = str(tmp_path / "d")
    Driver(parse_study(study_dict(search={"max_trials": 5})), d, progress=False).run()
    before = {t: r.value for t, r in history(d).trials.items()}
    damage_line(d, study_record_line(d))
    assert not history(d).study
    assert cli.main(["status", d]) == 0  # readable meanwhile, saying what is wrong
    assert "study record is damaged" in capsys.readouterr().out
    summary = Driver(parse_study(study_dict(search={"max_trials": 8})), d, progress=False).run()
    assert "rebuilt it from" in capsys.readouterr().err
    h = history(d)
    assert h.study["recovered"]["damaged_lines"] == 1
    assert {t: h.trials[t].value for t in before} == before  # values and best are kept
    assert summary.trials == 8 and h.best("min") is not None
    assert all(r.value is not None for r in h.trials.values())
    # once rebuilt, the record is checked like any other: a changed space is refused
    with pytest.raises(StudyError, match="space"):
        Driver(parse_study(study_dict(space={"x": {"low": -9.0, "high": 9.0}})), d,
               progress=False).run()


def test_a_study_file_that_contradicts_the_trials_is_refused_and_nothing_written(tmp_path):
    d = str(tmp_path / "d")
    Driver(parse_study(study_dict(search={"max_trials": 4})), d, progress=False).run()
    damage_line(d, study_record_line(d))
    size = os.path.getsize(os.path.join(d, "history.jsonl"))
    other = study_dict(space={"x": {"low": 10.0, "high": 20.0}, "y": {"values": [-1.0, -0.5, 0.0, 0.5]}})
    with pytest.raises(StudyError, match="study record is damaged.*outside the space"):
        Driver(parse_study(other), d, progress=False).run()
    renamed = study_dict(space={"z": {"low": -3.0, "high": 3.0}, "y": {"values": [-1.0, -0.5, 0.0, 0.5]}})
    with pytest.raises(StudyError, match="not in the space"):
        Driver(parse_study(renamed), d, progress=False).run()
    metric = study_dict(objective={"metric": "accuracy"})
    with pytest.raises(StudyError, match="no result carries the metric 'accuracy'"):
        Driver(parse_study(metric), d, progress=False).run()
    assert os.path.getsize(os.path.join(d, "history.jsonl")) == size


def test_a_resume_record_pins_the_search_a_rebuilt_record_must_match(tmp_path):
    """Seed and algorithm leave no trace in the trials' parameters; a resume record's
    fingerprint of the study's identity catches them."""
    d = str(tmp_path / "d")
    Driver(parse_study(study_dict(search={"max_trials": 2})), d, progress=False).run()
    Driver(parse_study(study_dict(search={"max_trials": 3})), d, progress=False).run()
    damage_line(d, study_record_line(d))
    size = os.path.getsize(os.path.join(d, "history.jsonl"))
    with pytest.raises(StudyError, match="differ from the ones a resume record names"):
        Driver(parse_study(study_dict(search={"max_trials": 4, "seed": 9})), d,
               progress=False).run()
    assert os.path.getsize(os.path.join(d, "history.jsonl")) == size
    Driver(parse_study(study_dict(search={"max_trials": 4})), d, progress=False).run()
    assert len(history(d).trials) == 4


def test_a_rebuilt_record_must_agree_on_fidelity(tmp_path):
    mf = {"algorithm": "asha", "fidelity": {"min": 1, "max": 9, "eta": 3}}
    d = str(tmp_path / "d")
    Driver(parse_study(study_dict(search={**mf, "max_trials": 4})), d, progress=False).run()
    damage_line(d, study_record_line(d))
    with pytest.raises(StudyError, match="fidelity"):
        Driver(parse_study(study_dict(search={"max_trials": 6})), d, progress=False).run()
    short = {**mf, "fidelity": {"min": 3, "max": 9, "eta": 3}, "max_trials": 6}
    with pytest.raises(StudyError, match="fidelity 1 is outside"):
        Driver(parse_study(study_dict(search=short)), d, progress=False).run()


def test_a_rebuilt_record_takes_t0_from_a_resume_record(tmp_path):
    d = str(tmp_path / "d")
    Driver(parse_study(study_dict(search={"max_trials": 2})), d, progress=False).run()
    t0 = history(d).study["t0"]
    Driver(parse_study(study_dict(search={"max_trials": 3})), d, progress=False).run()
    damage_line(d, study_record_line(d), b"#")
    Driver(parse_study(study_dict(search={"max_trials": 4})), d, progress=False).run()
    h = history(d)
    assert h.study["t0"] == t0 and h.study["recovered"]["t0_from"] == "a resume record"


def test_a_history_from_a_newer_schema_is_refused(tmp_path):
    from autotune import events as ev
    from autotune.journal import Journal

    d = tmp_path / "d"
    d.mkdir()
    record = ev.study("t", 0.0, {"metric": "loss"}, {})
    record["version"] = ev.SCHEMA + 1
    Journal(str(d / "history.jsonl")).append([record])
    with pytest.raises(StudyError, match="newer autotune"):
        Driver(parse_study(study_dict()), str(d), progress=False).run()


def test_a_history_from_a_newer_schema_is_read_with_a_warning_and_run_refuses_in_one_line(
        tmp_path, capsys):
    """`status`, `report` and `at.load` read such a history as this version understands it
    (lines it does not know skipped): they did so without a word, as if it were its own."""
    import autotune as at
    from autotune import events as ev

    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 2}))
    d = str(tmp_path / "d")
    assert cli.main(["run", path, "--dir", d, "--quiet"]) == 0
    mark_written_by_newer(d)
    said = (f"written by a newer autotune (history schema {ev.SCHEMA + 1}; this one reads up "
            f"to {ev.SCHEMA}): shown as far as this version understands it; upgrade autotune "
            "to resume it or to read it whole")
    capsys.readouterr()
    assert cli.main(["status", d]) == 0
    out = capsys.readouterr().out
    assert "trials: 2 ok" in out and f"warning: {said}" in out, out
    assert at.load(d).warnings == [said]
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        before = fh.read()
    assert cli.main(["run", path, "--dir", d, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"autotune: error: {d}/history.jsonl: written by a newer autotune (history schema "
        f"{ev.SCHEMA + 1}; this one reads up to {ev.SCHEMA}); upgrade autotune to resume it"], err
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        assert fh.read() == before


# ---- a full disk ----------------------------------------------------------------------------
def test_a_full_disk_at_the_journal_is_one_line_and_the_study_resumes(tmp_path, monkeypatch, capsys):
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 6}))
    d = str(tmp_path / "d")
    real_write, calls = os.write, []

    def fills_up(fd, data):
        calls.append(fd)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", fills_up)
    assert cli.main(["run", path, "--dir", d, "--quiet"]) == cli.DISK_FULL_EXIT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"autotune: error: no space left on device writing "
                   f"{os.path.join(os.path.abspath(d), 'history.jsonl')}; free some space, then "
                   "run the same command again to resume"]
    monkeypatch.setattr(os, "write", real_write)
    assert not history(d).warnings
    assert cli.main(["run", path, "--dir", d, "--quiet"]) == 0
    h = history(d)
    assert sorted(h.trials) == list(range(6)) and all(r.status == "ok" for r in h.trials.values())


def fills_disk_once(params: dict, ctx) -> dict:
    """Fails for lack of space the first time trial 2 runs (a marker file says which time)."""
    marker = os.path.join(os.path.dirname(ctx.study_dir), "disk-was-full")
    if ctx.trial == 2 and not os.path.exists(marker):
        open(marker, "w").close()
        raise OSError(errno.ENOSPC, "No space left on device", os.path.join(ctx.trial_dir, "ckpt"))
    return {"loss": float(params["x"]) ** 2}


def test_a_trial_that_failed_for_lack_of_space_is_not_failed_and_runs_again(tmp_path):
    s = study_dict(objective={"entry": "tests.test_resume_damage:fills_disk_once"},
                   search={"max_trials": 5})
    d = str(tmp_path / "d")
    with pytest.raises(DiskFull, match=r"trials/2/ckpt"):
        Driver(parse_study(s), d, progress=False).run()
    h = history(d)
    assert h.trials[2].status != "failed" and not h.trials[2].done
    Driver(parse_study(s), d, progress=False).run()
    h = history(d)
    assert all(r.status == "ok" for r in h.trials.values()) and len(h.trials) == 5


def no_room_for_the_outcome(params: dict, ctx) -> dict:
    """The trial works, but the worker cannot write its outcome (first time trial 1 runs)."""
    marker = os.path.join(os.path.dirname(ctx.study_dir), "outcome-disk-full")
    if ctx.trial == 1 and not os.path.exists(marker):
        open(marker, "w").close()

        def full(path, data):
            raise OSError(errno.ENOSPC, "No space left on device")
        sys.modules["__main__"].write_json_atomic = full  # the worker runs as __main__
    return {"loss": float(params["x"]) ** 2}


def test_a_worker_that_cannot_write_its_outcome_leaves_the_trial_to_run_again(tmp_path):
    s = study_dict(objective={"entry": "tests.test_resume_damage:no_room_for_the_outcome"},
                   search={"max_trials": 3}, executor={"kind": "local", "max_concurrent": 1})
    d = str(tmp_path / "d")
    with pytest.raises(DiskFull, match="trials/1"):
        Driver(parse_study(s), d, progress=False).run()
    assert not history(d).trials[1].done
    Driver(parse_study(s), d, progress=False).run()
    assert [r.status for _, r in sorted(history(d).trials.items())] == ["ok"] * 3


# ---- repeated signals -----------------------------------------------------------------------
def signals_the_driver(params: dict, ctx) -> dict:
    """A long trial that asks its driver to stop (as a user's Ctrl-C would) once all run."""
    started = os.path.join(ctx.study_dir, f"started-{ctx.trial}")
    open(started, "w").close()
    if len([f for f in os.listdir(ctx.study_dir) if f.startswith("started-")]) >= 3:
        os.kill(os.getppid(), signal.SIGINT)
    time.sleep(60)
    return {"loss": 0.0}


def test_a_second_signal_during_shutdown_still_ends_every_trial(tmp_path, monkeypatch):
    """The second signal lands in the middle of ending the trials: each one is still ended."""
    s = study_dict(objective={"entry": "tests.test_resume_damage:signals_the_driver"},
                   search={"max_trials": 3}, executor={"kind": "local", "max_concurrent": 3})
    d = str(tmp_path / "d")
    real_kill, killed = local_mod.kill_group, []

    def kill_and_signal_again(pid):
        killed.append(pid)
        if len(killed) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # the impatient second Ctrl-C / SIGTERM
        real_kill(pid)

    monkeypatch.setattr(local_mod, "kill_group", kill_and_signal_again)
    summary = Driver(parse_study(s), d, progress=False).run()
    assert summary.stopped == "interrupted" and len(killed) == 3
    for pid in killed:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)
    assert not any(r.done for r in history(d).trials.values())  # they run again on resume


def _zombie(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"
    except OSError:
        return True


def test_two_quick_ctrl_c_exit_130_with_every_trial_ended_and_no_traceback(tmp_path):
    s = study_dict(objective={"entry": "tests.objectives:hangs"}, space={"x": {"low": 0.0, "high": 1.0}},
                   search={"max_trials": 3}, executor={"kind": "local", "max_concurrent": 3})
    path = write_study(str(tmp_path / "s.yaml"), s)
    d = str(tmp_path / "d")
    proc = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": REPO})
    pids_at = [os.path.join(d, "trials", str(i), "worker.pid") for i in range(3)]
    deadline = time.time() + 30
    while not all(os.path.exists(p) and open(p).read().strip() for p in pids_at):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.02)
    pids = [int(open(p).read()) for p in pids_at]
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err.decode()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)


# ---- readers never import the objective -----------------------------------------------------
def test_status_and_report_do_not_import_the_objective(tmp_path):
    module = tmp_path / "heavyobj.py"
    module.write_text(textwrap.dedent("""
        def f(params, ctx):
            return {"loss": (params["x"] - 2) ** 2 + params["y"]}
    """))
    s = study_dict(objective={"entry": "heavyobj:f"},
                   space={"x": {"values": [0, 1, 2, 3]}, "y": {"values": [0, 1]}},
                   search={"algorithm": "axis", "max_trials": 12})
    path = write_study(str(tmp_path / "s.yaml"), s)
    d = str(tmp_path / "d")
    run = subprocess.run([sys.executable, "-m", "autotune", "run", path, "--dir", d, "--quiet"],
                         cwd=str(tmp_path), capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert run.returncode == 0, run.stderr
    module.write_text("raise ImportError('no torch on the login node')\n")
    for command in ("status", "report"):
        proc = subprocess.run([sys.executable, "-m", "autotune", command, d], cwd=str(tmp_path),
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO})
        assert proc.returncode == 0, proc.stderr
        assert "the search's setting" in proc.stdout and "x = 2" in proc.stdout


# ---- a lost ask line ------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm,options", [("random", {}), ("axis", {}),
                                               ("asha", {"fidelity": {"min": 1, "max": 9, "eta": 3}})])
def test_a_lost_ask_line_costs_its_trials_and_the_study_resumes(tmp_path, algorithm, options):
    space = {"x": {"values": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]}, "y": {"values": [-1.0, -0.5, 0.0, 0.5]},
             "cost_s": 10.0}  # simulated times from the objective, not the machine: deterministic
    s = lambda n: study_dict(space=space, search={"algorithm": algorithm, "max_trials": n, **options},  # noqa: E731
                             executor={"kind": "simulated", "max_concurrent": 3})
    d = str(tmp_path / "d")
    Driver(parse_study(s(12)), d, progress=False).run()
    before = history(d)
    path = os.path.join(d, "history.jsonl")
    lines = open(path, "rb").read().split(b"\n")
    asks = [i for i, ln in enumerate(lines) if ln.startswith(b'{"e":"ask"')]
    victim = asks[len(asks) // 2]
    lost = {t["trial"] for t in json.loads(lines[victim])["trials"]}
    lines[victim] = b"\x00" * len(lines[victim])
    open(path, "wb").write(b"\n".join(lines))
    summary = Driver(parse_study(s(20)), d, progress=False).run()
    h = history(d)
    assert h.lost == lost and not lost & set(h.trials)
    assert summary.trials == len(h.trials) and len(before.trials) < len(h.trials) <= 20
    for t, rec in before.trials.items():  # every other result is kept as it was
        if t not in lost:
            assert h.trials[t].status == rec.status and h.trials[t].value == rec.value
    assert min(set(h.trials) - set(before.trials)) > max(lost | set(before.trials))


def test_a_block_of_nuls_over_the_middle_costs_only_the_lines_it_covers(tmp_path):
    s = lambda n: study_dict(search={"max_trials": n}, executor={"kind": "simulated", "max_concurrent": 4})  # noqa: E731
    d = str(tmp_path / "d")
    Driver(parse_study(s(60)), d, progress=False).run()
    path = os.path.join(d, "history.jsonl")
    raw = open(path, "rb").read()
    middle = len(raw) // 2
    damaged = bytearray(raw)
    damaged[middle:middle + 4096] = b"\x00" * 4096
    open(path, "wb").write(bytes(damaged))
    hit = {i for i, ln in enumerate(raw.split(b"\n"))
           if ln and not (raw.index(ln) + len(ln) <= middle or raw.index(ln) >= middle + 4096)}
    h = history(d)
    assert h.damaged <= len(hit)
    Driver(parse_study(s(80)), d, progress=False).run()
    h = history(d)
    assert len(h.trials) == 80 and all(r.status == "ok" for r in h.trials.values())


def test_many_damaged_lines_are_said_in_a_few_lines_and_every_one_is_kept(tmp_path, capsys):
    """Appended junk skips many lines alike: status and a resume name three and count the
    rest, every time, instead of printing them all again; the view keeps every warning."""
    import autotune as at

    d = str(tmp_path / "d")
    Driver(parse_study(study_dict(search={"max_trials": 3})), d, progress=False).run()
    with open(os.path.join(d, "history.jsonl"), "ab") as fh:
        fh.write(b"".join(b"junk %d\n" % i for i in range(8)))
    capsys.readouterr()
    assert cli.main(["status", d]) == 0
    said = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("warning:")]
    assert len(said) == 4 and said[3] == ("warning: ... and 5 more damaged history lines, "
                                          "skipped alike"), said
    Driver(parse_study(study_dict(search={"max_trials": 4})), d, progress=True).run()
    err = capsys.readouterr().err
    assert err.count("warning: history line") == 3 and "... and 5 more" in err
    assert len(at.load(d).warnings) == 8


def copy_line(d: str, index: int, after: int) -> None:
    """Put a copy of history line ``index`` after line ``after`` (a damaged history's)."""
    path = os.path.join(d, "history.jsonl")
    lines = open(path, "rb").read().split(b"\n")
    lines.insert(after + 1, lines[index])
    open(path, "wb").write(b"\n".join(lines))


@pytest.mark.parametrize("copied, after, cut", [
    ("end", "end", True),        # an attempt to be retried, its end line twice
    ("end", "end", False),
    ("submit", "submit", False),  # a start line twice
    ("submit", "end", True),     # the start of an attempt that has ended, after its end
])
def test_a_copied_line_of_an_attempt_changes_nothing(tmp_path, copied, after, cut):
    """A copied end line of an attempt to be retried added its cost twice (to the trial and
    to the compute spent, which max_compute_s is judged by), and a copied submit line counted
    a second start; one after the attempt's end set it running again, so a resume would wait
    for it instead of retrying it. Each changes nothing now."""
    s = study_dict(objective={"entry": "tests.objectives:flaky"}, search={"max_trials": 2},
                   retries=1)
    d = str(tmp_path / "d")
    Driver(parse_study(s), d, progress=False).run()
    path = os.path.join(d, "history.jsonl")
    lines = open(path, "rb").read().split(b"\n")
    first = {kind: next(i for i, ln in enumerate(lines) if ln.startswith(b'{"e":"%s"' % kind))
             for kind in (b"submit", b"end")}
    if cut:  # the driver died before the retry started: the trial waits to run again
        open(path, "wb").write(b"\n".join(lines[:first[b"end"] + 1] + [b""]))
    before = history(d)
    copy_line(d, first[copied.encode()], first[after.encode()])
    h = history(d)
    rec, was = h.trials[0], before.trials[0]
    assert (rec.status, rec.attempt, rec.starts, rec.cost_s) == (
        was.status, was.attempt, was.starts, was.cost_s)
    assert h.spent_s == before.spent_s
    if cut:
        assert rec.status == "pending" and rec.next_attempt == 1



@pytest.mark.parametrize("name, folder, commands", [
    ("history.jsonl", False, ("status", "report", "run")),
    ("history.lock", False, ("run",)),
    ("trajectory.csv", False, ("report", "run")),
    ("summary.txt", False, ("report",)),
    ("trials", True, ("run",)),
])
def test_a_directory_where_a_file_goes_is_one_line(tmp_path, capsys, name, folder, commands):
    """A directory in a study file's place (a copy gone wrong) was an IsADirectoryError
    traceback: history.jsonl from status, report and run, history.lock from run, trajectory.csv
    from report and run (replacing it), summary.txt from report; and trials/ as a file from
    run. Each command now says so in one line, exit status 2, and changes nothing."""
    d = str(tmp_path / "d")
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 3}))
    Driver(parse_study(study_dict(search={"max_trials": 2})), d, progress=False).run()
    target = os.path.join(d, name)
    if os.path.isdir(target):
        shutil.rmtree(target)
    elif os.path.exists(target):
        os.remove(target)
    if folder:
        open(target, "w").close()
    else:
        os.mkdir(target)
    before = sorted(os.listdir(d))
    argvs = {"status": ["status", d], "report": ["report", d],
             "run": ["run", path, "--dir", d, "--quiet"]}
    for command in commands:
        assert cli.main(argvs[command]) == 2, command
        err = capsys.readouterr().err.strip()
        found = "a file, expected a directory" if folder else "a directory"
        assert err.count("\n") == 0 and f"{target}: is {found}" in err, err
    assert sorted(os.listdir(d)) == before


# ---- a history damaged past recovery --------------------------------------------------------


def damage_lines(d: str, keep: str = "") -> int:
    """Every line of the history replaced by bytes of its length that no reader can use
    (newlines kept), but for lines of the event kind ``keep``; how many were replaced."""
    path = os.path.join(d, "history.jsonl")
    lines = open(path, "rb").read().split(b"\n")
    hit = [i for i, ln in enumerate(lines) if ln and not (keep and f'"e":"{keep}"'.encode() in ln)]
    for i in hit:
        junk = bytes((7 * i + 13 * j) % 256 or 1 for j in range(len(lines[i])))
        lines[i] = junk.replace(b"\n", b"~")
    open(path, "wb").write(b"\n".join(lines))
    return len(hit)


@pytest.mark.parametrize("keep, folders, says", [
    ("", True, "no line of it can be read"),
    ("", False, "no line of it can be read"),  # the inline executor leaves no trials/<id>/
    # a resume record survives, every trial's line is lost: trials 0.. would run again
    ("resume", True, "its study record and every line naming a trial are unreadable"),
    ("resume", False, "its study record and every line naming a trial are unreadable"),
])
def test_a_history_damaged_past_recovery_is_refused_and_nothing_written(tmp_path, capsys, keep,
                                                                         folders, says):
    """A history whose every line was damaged, in a directory whose trajectory.csv and
    trials/<id>/ show a study ran there: run rebuilt the study record from the study file
    ('matches the 0 recorded trial(s)') and ran trials 0, 1, ... again under their old numbers,
    over their folders and trajectory.csv. It is refused in one line, exit 2."""
    d = str(tmp_path / "d")
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 3}))
    Driver(parse_study(study_dict(search={"max_trials": 2})), d, progress=False).run()
    if keep:
        Driver(parse_study(study_dict(search={"max_trials": 3})), d, progress=False).run()
    for trial in (0, 1) if folders else ():  # what the local executor leaves of each trial
        os.makedirs(os.path.join(d, "trials", str(trial)))
        open(os.path.join(d, "trials", str(trial), "stdout.log"), "w").write("trained\n")
    n = damage_lines(d, keep)
    before = tree(d)
    capsys.readouterr()
    assert cli.main(["run", path, "--dir", d, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert f"{d}/history.jsonl: damaged past recovery: {says} ({n} damaged lines)" in err
    assert "the directory holds trajectory.csv" + (", trials/" if folders else ";") in err
    assert "restore history.jsonl from a backup, or move" in err
    assert tree(d) == before


def test_a_history_torn_in_its_first_line_still_starts(tmp_path):
    """A driver killed while writing its study record recorded nothing: that one torn line,
    alone in the directory, is no study to protect, and the run goes on as before."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "history.jsonl").write_bytes(b'{"e":"study","name":"t","t0":17')
    study = parse_study(study_dict(search={"max_trials": 2}))
    summary = Driver(study, str(d), progress=False).run()
    assert summary.trials == 2 and history(str(d)).study["recovered"]["damaged_lines"] == 1


def test_a_damaged_record_of_a_study_with_only_its_pretrain_is_rebuilt(tmp_path):
    """The pretrain's lines survive and no trial ran (trajectory.csv has the pretrain's row
    alone): recovery rebuilds the record as before, and the pretrain is not run again."""
    log = str(tmp_path / "pretrain.log")
    study = lambda: parse_study(study_dict(  # noqa: E731
        objective={"entry": "tests.objectives:finetune"}, space={"x": {"values": [0, 1]}},
        search={"algorithm": "grid"},
        stages={"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 10,
                             "params": {"log": log, "sleep_s": 0.0}}}))
    d = str(tmp_path / "d")
    Driver(study(), d, progress=False, stages_only=True).run()
    assert os.path.exists(os.path.join(d, "trajectory.csv"))
    damage_line(d, study_record_line(d))
    summary = Driver(study(), d, progress=False).run()
    h = history(d)
    assert summary.trials == 2 and h.study["recovered"]["damaged_lines"] == 1
    assert len(open(log).read().split()) == 1
