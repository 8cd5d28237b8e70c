"""A trial that fails in the driver's own process (``inline``, ``simulated``) shows its
traceback where ``status`` looks, as a local worker's stderr.log does: an entry's
``traceback.txt``, a command's own stderr (which went nowhere) in its ``stderr.log``."""
import os

import pytest

from tests.helpers import cli, study_dict, write_study


@pytest.mark.parametrize("kind", ["inline", "simulated"])
def test_status_shows_the_traceback_of_an_entry_that_raised_in_process(tmp_path, kind):
    d = str(tmp_path / "d")
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": "tests.objectives:raises"}, search={"max_trials": 1},
        executor={"kind": kind}))
    assert cli("run", path, "--dir", d, "--quiet").returncode == 4
    out = cli("status", d)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    at = lines.index(f"  last lines of {os.path.join(d, 'trials', '0', 'traceback.txt')}:")
    shown = lines[at + 1:at + 6]
    assert any("tests/objectives.py" in ln and "in raises" in ln for ln in shown)  # its frame
    assert shown[-1] == "    ValueError: bad hyperparameters"


def test_a_command_run_inline_keeps_its_output_in_the_trial_logs(tmp_path):
    d = str(tmp_path / "d")
    command = ("echo training {x}; echo 'CUDA error: out of memory at step 7' >&2; "
               "echo 'giving up' >&2; exit 3")
    data = study_dict(space={"x": {"values": [1]}}, search={"algorithm": "grid"},
                      executor={"kind": "inline"})
    data["objective"] = {"command": command, "metric": "loss"}
    path = write_study(str(tmp_path / "s.yaml"), data)
    assert cli("run", path, "--dir", d, "--quiet").returncode == 4
    trial = os.path.join(d, "trials", "0")
    with open(os.path.join(trial, "stdout.log")) as fh:
        assert fh.read() == "training 1\n"
    with open(os.path.join(trial, "stderr.log")) as fh:
        assert fh.read() == "CUDA error: out of memory at step 7\ngiving up\n"
    out = cli("status", d)
    assert f"  last lines of {os.path.join(trial, 'stderr.log')}:" in out.stdout
    assert "    CUDA error: out of memory at step 7" in out.stdout.splitlines()
