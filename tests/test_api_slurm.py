"""The Python API on the local SLURM cluster: an ask/tell loop after ``autotune cancel``
cancelled the jobs of a run whose driver was killed."""
import os
import signal

import pytest

import autotune as at
from autotune.executors.slurm_query import slurm_reachable

from .helpers import history
from .test_slurm import start_driver, study_file, submits, wait_for

pytestmark = [
    pytest.mark.skipif(not slurm_reachable(),
                       reason="no SLURM reachable (sinfo failed); start a local one with: "
                              "bash scripts/slurm-local.sh start"),
    pytest.mark.xdist_group("slurm"),  # one node, shared with the other SLURM tests
]


def test_a_loop_after_cancel_records_the_cancelled_slurm_trials_and_goes_on(tmp_path):
    """A run on SLURM, its driver killed with two trials running, then ``cancel``: an
    ask/tell loop left both in flight (ended-alone, neither open nor ever recorded) while it
    asked and told past them. It records them cancelled as it opens, as the next run would."""
    from autotune.cancel import cancel_study

    # 100 s trials: cancelled long before their end, even where SLURM's KillWait is long
    space = {"steps": {"values": [200]}, "x": {"values": [0, 1, 2]}, "step_s": {"values": [0.5]}}
    study = study_file(tmp_path, "apicancel", "stepper", space, 3, max_concurrent=2)
    d = str(tmp_path / "d")
    proc = start_driver(study, d)
    wait_for("2 jobs submitted", lambda: len(submits(d)) == 2, timeout=60)
    wait_for("both trials started", lambda: all(
        os.path.exists(os.path.join(d, "trials", str(t), "checkpoint.pt")) for t in (0, 1)),
        timeout=90)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # running alone: a loop can neither watch nor record them; the refusal says what cancel
    # leaves (it said "the next run() then records them", which a loop then did not need)
    with pytest.raises(at.StudyError, match=r"python -m autotune cancel .* \(ask\(\) then "
                                            r"records them cancelled\)$"):
        at.load_study(d).ask()
    said = cancel_study(d)
    assert "cancelled 2 slurm job(s): " in said, said
    loop = at.load_study(d)
    with loop:
        trial = loop.ask()
        assert trial.number == 2 and loop.open_trials == [2]
        assert [t.status for t in loop.trials] == ["cancelled", "cancelled", "running"]
        loop.tell(trial, 0.5)
        assert loop.ask() is None and loop.finished
    recs = history(d).trials
    for t in (0, 1):
        assert recs[t].job_id in said
        assert recs[t].error == f"slurm job {recs[t].job_id} cancelled by autotune cancel"
    assert [e["job_id"] for e in submits(d)][2:] == ["external"]  # none run again
