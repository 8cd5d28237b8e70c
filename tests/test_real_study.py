"""A researcher's first own study, as they meet it on the command line: their own training
script run from where they launched, numbers written the way people write them, odd paths,
a cluster that does not answer, logs to watch while a trial runs."""
import json
import os
import stat
import subprocess
import sys
import time

import yaml

from tests.helpers import REPO, cli, history, study_dict, write_study

ENV = {**os.environ, "PYTHONPATH": REPO}

TRAIN = """\
import json, os, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
os.makedirs(args["--out"], exist_ok=True)
with open(os.path.join(args["--out"], "argv.json"), "w") as fh:
    json.dump(sys.argv[1:], fh)
print(json.dumps({"loss": float(args["--lr"]) * 10}))
"""


def test_the_readme_command_runs_where_run_was_launched_and_resumes_from_elsewhere(tmp_path):
    home = tmp_path / "my project"  # a space in every path the command sees
    home.mkdir()
    (home / "train.py").write_text(TRAIN)
    write_study(str(home / "s.yaml"), study_dict(
        objective={"entry": None, "command": "python train.py --lr {lr} --out {trial_dir}"},
        space={"lr": {"values": [1e-4, 1e-3, 1e-2]}}, search={"algorithm": "grid", "max_trials": 2},
        executor={"kind": "local", "max_concurrent": 2}))
    d = str(home / "runs dir" / "s")
    proc = cli("run", "s.yaml", "--dir", d, "--quiet", cwd=str(home), env=ENV)
    assert proc.returncode == 0, proc.stderr
    h = history(d)
    assert [h.trials[t].status for t in (0, 1)] == ["ok", "ok"], [r.error for r in h.trials.values()]
    assert h.study["launch_dir"] == str(home)
    with open(os.path.join(d, "trials", "1", "argv.json")) as fh:
        assert json.load(fh) == ["--lr", "0.001", "--out", os.path.join(d, "trials", "1")]
    # resumed from another directory (the study file by its absolute path): still runs there
    data = yaml.safe_load((home / "s.yaml").read_text())
    data["search"]["max_trials"] = 3
    write_study(str(home / "s.yaml"), data)
    proc = cli("run", str(home / "s.yaml"), "--dir", d, "--quiet", cwd=str(tmp_path), env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert history(d).trials[2].status == "ok"


def test_study_file_dir_and_quoted_values(tmp_path):
    conf = tmp_path / "conf 'dir'"
    conf.mkdir()
    (conf / "train.py").write_text(
        "import json, sys\nprint(sys.argv[1:], file=open(sys.argv[-1] + '/argv.txt', 'w'))\n"
        "json.dump(sys.argv[1:], open(sys.argv[-1] + '/argv.json', 'w'))\n"
        "print(json.dumps({'loss': 1.0}))\n")
    write_study(str(conf / "s.yaml"), study_dict(
        objective={"entry": None,
                   "command": "python {study_file_dir}/train.py {msg} \"say: {msg}\" '{msg}' "
                              "{flags!u} {trial_dir}"},
        space={"msg": {"values": ["it's", 'a "b" $HOME `c` \\ d']}, "flags": "--a --b"},
        search={"algorithm": "grid"}, executor={"kind": "local", "max_concurrent": 2}))
    d = str(tmp_path / "out dir")
    proc = cli("run", str(conf / "s.yaml"), "--dir", d, "--quiet", cwd=str(tmp_path), env=ENV)
    assert proc.returncode == 0, proc.stderr
    for trial, msg in ((0, "it's"), (1, 'a "b" $HOME `c` \\ d')):
        with open(os.path.join(d, "trials", str(trial), "argv.json")) as fh:
            assert json.load(fh) == [msg, f"say: {msg}", msg, "--a", "--b",
                                     os.path.join(d, "trials", str(trial))]


def test_yaml_numbers_are_read_as_people_write_them(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("""\
name: y12
objective: {entry: "tests.objectives:quadratic", metric: loss}
space:
  x: {values: [1e-4, 1e-3]}
  y: 010
  flag: yes
  when: 2024-01-01
search: {algorithm: grid}
executor: {kind: inline}
""")
    d = str(tmp_path / "d")
    proc = cli("run", str(path), "--dir", d, "--quiet")
    assert proc.returncode == 0, proc.stderr
    params = history(d).trials[0].params
    assert params == {"x": 1e-4, "y": 10, "flag": "yes", "when": "2024-01-01"}
    assert isinstance(params["x"], float) and isinstance(params["y"], int)


def test_unwritable_directory_is_one_line_and_nothing_written(tmp_path):
    path = write_study(str(tmp_path / "s.yaml"), study_dict())
    for where in ("/proc/autotune-test/d", "/sys/kernel/autotune-test"):
        proc = cli("run", path, "--dir", where)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [
            proc.stderr.strip()] and "--dir: cannot write a study into" in proc.stderr
    assert not os.path.exists("/proc/autotune-test")


def test_a_cluster_that_does_not_answer_is_refused_at_once(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"
    fake.write_text("#!/bin/sh\necho 'Slurmctld(primary) at head is DOWN'\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    path = write_study(str(tmp_path / "s.yaml"), study_dict(executor={"kind": "slurm"}))
    d = tmp_path / "d"
    began = time.monotonic()
    proc = cli("run", path, "--dir", str(d),
               env={**ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert time.monotonic() - began < 10
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("autotune: error: executor.kind: slurm, but the cluster does "
                                   "not answer (Slurmctld(primary) at head is DOWN)")
    assert not d.exists()


def test_a_commands_output_reaches_its_log_while_it_runs(tmp_path):
    gate = tmp_path / "gate"
    path = write_study(str(tmp_path / "s.yaml"), study_dict(
        objective={"entry": None,
                   "command": f"echo epoch 1; while [ ! -e {gate} ]; do sleep 0.05; done; "
                              "echo '{{\"loss\": 1}}'"},
        space={"x": 1}, search={"algorithm": "grid"}, executor={"kind": "local"}))
    d = tmp_path / "d"
    driver = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", str(d),
                               "--quiet"], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    log = d / "trials" / "0" / "stdout.log"
    try:
        give_up = time.monotonic() + 60
        while not (log.exists() and "epoch 1" in log.read_text()):
            assert time.monotonic() < give_up and driver.poll() is None, "no streamed output"
            time.sleep(0.05)
        gate.touch()
        assert driver.wait(timeout=60) == 0, driver.stderr.read()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        driver.stdout.close()
        driver.stderr.close()
    assert history(str(d)).trials[0].value == 1.0
