"""``autotune cancel``'s note to the driver it stops (``cancel_mark``): believed only when it
names this process and its writer still runs, so a stale or foreign note never makes a
driver stopped otherwise say that its SLURM jobs are being cancelled."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from autotune import cancel_mark


def test_the_note_is_believed_only_for_this_driver_while_its_writer_runs(tmp_path):
    d = str(tmp_path)
    assert not cancel_mark.stopped_by_cancel(d)            # none written
    cancel_mark.mark(d, os.getpid())                        # written by this (live) process
    assert cancel_mark.stopped_by_cancel(d)
    cancel_mark.mark(d, os.getpid() + 100000)               # another driver's
    assert not cancel_mark.stopped_by_cancel(d)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(d, cancel_mark.NAME), "w") as fh:  # a cancel killed half-way
        json.dump({"driver": os.getpid(), "by": int(gone)}, fh)
    assert not cancel_mark.stopped_by_cancel(d)
    with open(os.path.join(d, cancel_mark.NAME), "w") as fh:
        fh.write("{not json")
    assert not cancel_mark.stopped_by_cancel(d)
    cancel_mark.clear(d)
    cancel_mark.clear(d)  # twice: nothing to remove is no error
    assert os.listdir(d) == []


LOOP = """
import sys, time
import autotune as at
study = at.Study(name="loop", objective={"metric": "loss"}, space={"x": {"low": 0.0, "high": 1.0}},
                 search={"algorithm": "random", "max_trials": 1000}, dir=sys.argv[1])
with study:
    while (trial := study.ask()) is not None:
        print("asked", flush=True)
        time.sleep(0.05)
        study.tell(trial, trial.params["x"])
    print(study.finished, study.end_reason, flush=True)
"""


def test_cancel_asks_an_ask_tell_loop_to_stop_and_sends_it_no_signal(tmp_path):
    """An ask/tell loop is the user's own Python process (a notebook's kernel): cancel's
    SIGTERM killed it. Cancel leaves it a note instead; its next ask() returns None, the
    loop ends as it would at max_trials, and the next session resumes."""
    import autotune as at
    from autotune.cancel import cancel_study

    d = str(tmp_path / "s")
    loop = subprocess.Popen([sys.executable, "-c", LOOP, d], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert loop.stdout.readline() == "asked\n"
        said = cancel_study(d)
        out, _ = loop.communicate(timeout=20)
    finally:
        loop.kill()
    assert said.startswith(f"asked the ask/tell loop holding the study (pid {loop.pid} on host")
    assert loop.returncode == 0 and out.endswith("True cancelled by autotune cancel\n")
    assert not os.path.exists(os.path.join(d, cancel_mark.ASKING))  # removed as it closed
    again = at.Study(name="loop", objective={"metric": "loss"}, dir=d,
                     space={"x": {"low": 0.0, "high": 1.0}},
                     search={"algorithm": "random", "max_trials": 1000})
    with again:
        assert again.ask() is not None and again.end_reason == ""  # a new session resumes


def test_a_cancel_note_left_before_the_study_record_does_not_refuse_the_new_study(tmp_path):
    """A cancel killed half-way (or a loop refused at its start) leaves its note beside an
    empty history: the directory holds no study's results, and a new study starts there."""
    from autotune.driver import Driver
    from autotune.study import parse_study
    from tests.helpers import study_dict

    d = tmp_path / "d"
    d.mkdir()
    (d / "history.jsonl").write_text("")
    for name in (cancel_mark.NAME, cancel_mark.ASKING, f"{cancel_mark.NAME}.123.tmp",
                 f"{cancel_mark.ASKING}.123.tmp"):
        (d / name).write_text("{}")
    study = parse_study(study_dict(executor={"kind": "inline"}, search={"max_trials": 1}))
    assert Driver(study, str(d), progress=False).run().trials == 1
