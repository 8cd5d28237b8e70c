"""Two-stage training: the pretrain is the driver's own recorded job, run once, before the
fine-tunes, its cost its own (local and inline executors; the SLURM side is in
test_slurm_stages.py)."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from autotune.cli import main
from autotune.contract import Ctx
from autotune.driver import Driver
from autotune.errors import StudyError
from autotune.runner import run_objective
from autotune.stage_runner import STAGE_TRIAL
from autotune.study import parse_study
from tests.helpers import REPO, cli, history, study_dict, write_study


def two_stage(log, executor="local", concurrent=4, trials=6, **pre):
    return study_dict(objective={"entry": "tests.objectives:finetune"},
                      space={"x": {"values": list(range(trials))}},
                      search={"algorithm": "grid"},
                      executor={"kind": executor, "max_concurrent": concurrent},
                      stages={"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 10,
                                           "params": {"log": log, "sleep_s": 1.0, **pre}}})


def events(d, kind):
    with open(os.path.join(d, "history.jsonl")) as fh:
        return [e for e in map(json.loads, fh) if e.get("e") == kind]


def log_lines(log):
    with open(log) as fh:
        return fh.read().split()


def kill_driver_when(path, d, ready):
    """Start ``run`` in a subprocess and SIGKILL it as soon as ``ready()`` holds."""
    proc = subprocess.Popen([sys.executable, "-m", "autotune", "run", path, "--dir", d, "--quiet"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not ready():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_the_pretrain_is_its_own_job_before_any_fine_tune(tmp_path):
    log = str(tmp_path / "pretrain.log")
    study = parse_study(two_stage(log, sleep_s=3.0))
    d = str(tmp_path / "d")
    Driver(study, d, progress=False).run()
    h = history(d)
    pre = h.stages["pretrain"]
    assert [r.status for r in h.trials.values()] == ["ok"] * 6
    assert h.trials[1].value == 1.0  # base 1.0 from the pretrain checkpoint, x = 1
    assert log_lines(log) == log_lines(log)[:1]  # one run, no overlap
    assert pre.status == "ok" and pre.job_id.startswith("pid-") and pre.cost_s >= 3.0
    assert [e["state"] for e in events(d, "stage")] == ["submit", "end"]
    assert min(r.start_s for r in h.trials.values()) >= pre.end_s  # nothing started before it
    assert max(r.cost_s for r in h.trials.values()) < pre.cost_s  # nobody waited on it
    assert h.spent_s == pytest.approx(sum(r.cost_s for r in h.trials.values()) + pre.cost_s)
    with open(os.path.join(d, "trajectory.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["trial"] == "pretrain" and float(rows[0]["cost_s"]) == pytest.approx(pre.cost_s, abs=1e-3)
    assert [r["trial"] for r in rows[1:]] == [str(i) for i in range(6)]
    caches = [p for p in os.listdir(os.path.join(d, "cache")) if not p.endswith(".lock")]
    assert len(caches) == 1 and os.path.exists(os.path.join(d, "cache", caches[0], "done.json"))
    out = cli("status", d)
    assert "pretrain: ok" in out.stdout and "compute spent" in out.stdout


def test_a_killed_driver_reattaches_to_the_local_pretrain_never_runs_it_twice(tmp_path):
    log = str(tmp_path / "pretrain.log")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log, trials=3, sleep_s=4.0))
    d = str(tmp_path / "d")
    kill_driver_when(path, d, lambda: os.path.exists(log))  # the pretrain is running
    assert cli("run", path, "--dir", d, "--quiet").returncode == 0
    assert log_lines(log) == log_lines(log)[:1]  # one run: re-attached, never twice, no overlap
    h = history(d)
    assert h.stages["pretrain"].status == "ok" and h.stages["pretrain"].attempt == 0
    assert [e["state"] for e in events(d, "stage")] == ["submit", "end"]
    assert h.stages["pretrain"].cost_s >= 4.0  # its whole run, across the two drivers
    assert all(r.status == "ok" for r in h.trials.values())
    assert min(r.start_s for r in h.trials.values()) >= h.stages["pretrain"].end_s
    # a third run finds it ready: no job, nothing recorded
    assert cli("run", path, "--dir", d, "--quiet").returncode == 0
    assert len(log_lines(log)) == 1 and len(events(d, "stage")) == 2


def test_a_pretrain_whose_process_died_with_the_driver_runs_again_once(tmp_path):
    log = str(tmp_path / "pretrain.log")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log, trials=2, sleep_s=3.0))
    d = str(tmp_path / "d")
    kill_driver_when(path, d, lambda: os.path.exists(log))
    from autotune.executors.local import kill_orphan
    kill_orphan(os.path.join(d, "stages", "pretrain"))  # its machine rebooted, say
    out = cli("run", path, "--dir", d, "--quiet")
    assert out.returncode == 0, out.stderr
    assert len(log_lines(log)) == 2 and "OVERLAP" not in log_lines(log)
    assert [e["state"] for e in events(d, "stage")] == ["submit", "submit", "end"]


def test_a_killed_pretrain_leaves_no_cache_hit(tmp_path):
    log = str(tmp_path / "pretrain.log")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log, sleep_s=30))
    d = str(tmp_path / "d")
    kill_driver_when(path, d, lambda: os.path.exists(log))
    from autotune.executors.local import kill_orphan
    kill_orphan(os.path.join(d, "stages", "pretrain"))  # the driver's orphan, as a resume would
    cache = os.path.join(d, "cache")
    assert not any(os.path.exists(os.path.join(cache, p, "done.json")) for p in os.listdir(cache))
    assert not os.path.exists(os.path.join(d, "trials"))  # no fine-tune was started


def test_a_failing_pretrain_stops_the_study_with_its_reason_and_runs_again_later(tmp_path):
    log = str(tmp_path / "pretrain.log")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log, trials=2))
    d = str(tmp_path / "d")
    out = cli("run", path, "--dir", d, "--quiet", env={**os.environ, "PRETRAIN_FAILS": "1"})
    assert out.returncode == 1, out.stderr
    assert "pretrain failed: RuntimeError: out of memory in pretrain" in out.stderr
    assert "CUDA out of memory: tried to allocate 20 GiB" in out.stderr  # its stderr tail
    h = history(d)
    assert not h.trials and h.stages["pretrain"].status == "failed"
    assert not [p for p in os.listdir(os.path.join(d, "cache")) if not p.endswith(".lock")]
    env = {k: v for k, v in os.environ.items() if k != "PRETRAIN_FAILS"}
    out = cli("run", path, "--dir", d, "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    h = history(d)
    assert h.stages["pretrain"].status == "ok" and h.stages["pretrain"].attempt == 1
    assert [r.status for r in h.trials.values()] == ["ok", "ok"]
    assert len(log_lines(log)) == 2


def test_a_shared_cache_dir_builds_the_pretrain_once_for_two_studies(tmp_path):
    log = str(tmp_path / "pretrain.log")
    shared = str(tmp_path / "shared")
    data = two_stage(log, executor="inline", trials=2, sleep_s=0.0)
    data["stages"]["pretrain"]["cache_dir"] = shared
    for name in ("a", "b"):
        Driver(parse_study(data), str(tmp_path / name), progress=False).run()
    a, b = history(str(tmp_path / "a")), history(str(tmp_path / "b"))
    assert len(log_lines(log)) == 1
    assert a.stages["pretrain"].status == "ok" and b.stages["pretrain"].status == "cached"
    assert b.stages["pretrain"].cost_s == 0.0 and b.spent_s == sum(r.cost_s for r in b.trials.values())
    assert [r.value for r in b.trials.values()] == [2.0, 1.0]
    assert not os.path.exists(os.path.join(str(tmp_path / "b"), "cache"))


def test_trajectory_csv_shows_the_pretrain_running_before_any_trial(tmp_path):
    """A user watching DIR while the pretrain runs (hours, in the real study) finds
    trajectory.csv there, its header and the pretrain's row saying it runs."""
    d, seen = str(tmp_path / "d"), str(tmp_path / "seen.csv")
    data = two_stage(str(tmp_path / "log"), executor="inline", trials=2)
    data["stages"]["pretrain"] = {"entry": "tests.objectives:pretrain_looks", "epochs": 10,
                                  "params": {"watch": os.path.join(d, "trajectory.csv"),
                                             "seen": seen}}
    Driver(parse_study(data), d, progress=False).run()
    with open(seen) as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["trial"], r["status"], r["round"]) for r in rows] == [("pretrain", "running",
                                                                       "stage")]
    assert {"x", "loss", "value", "start_s", "job_id"} <= set(rows[0])
    assert [r["trial"] for r in csv.DictReader(open(os.path.join(d, "trajectory.csv")))] == \
        ["pretrain", "0", "1"]


def test_a_trial_run_outside_the_driver_builds_the_pretrain_itself(tmp_path):
    log = str(tmp_path / "pretrain.log")
    study = parse_study(two_stage(log, executor="inline", sleep_s=0.0))
    ctx = Ctx(trial=0, trial_dir=str(tmp_path / "t0"), seed=0, study_dir=str(tmp_path / "d"))
    assert run_objective(study.objective, {"x": 3}, ctx)["loss"] == 5.0
    assert ctx.pretrained.startswith(str(tmp_path / "d" / "cache"))
    assert len(log_lines(log)) == 1


def test_the_pretrain_gets_its_jobs_ctx_extra_as_a_trial_does(tmp_path):
    # a SLURM job's ctx says its requeues and job id (slurm_job.TrialCall): the entry that
    # continues from its checkpoint on a requeue reads them as a trial's would
    from autotune.stage_cache import checkpoint_of, run_stage

    log = str(tmp_path / "pretrain.log")
    stage = parse_study(two_stage(log, sleep_s=0.0)).objective.pretrain
    d = str(tmp_path / "d")
    job = Ctx(trial=STAGE_TRIAL, trial_dir=str(tmp_path / "stage"), seed=0, attempt=2,
              study_dir=d, extra={"requeues": 1, "slurm_job_id": "77"})
    assert run_stage({"stage": stage.to_dict(), "study_dir": d}, job)["built"] == 1.0
    with open(checkpoint_of(stage, d)) as fh:
        assert json.load(fh)["extra"] == {"requeues": 1, "slurm_job_id": "77"}


@pytest.mark.parametrize("stages, message", [
    ({"pretrain": {"entry": "nope:f"}}, "stages.pretrain.entry: cannot import module 'nope'"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "epochs": 0}},
     "stages.pretrain.epochs: expected a positive integer"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "wat": 1}}, "stages.pretrain.wat: unknown key"),
    ({"finetune": {}}, "stages.finetune: unknown key"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "params": {"a": [1]}}},
     "stages.pretrain.params.a: expected a number, string or boolean"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "executor": {"time_limit_min": 5}}},
     "stages.pretrain.executor: the study's executor takes no options to override"),

    ({"pretrain": {"entry": "tests.objectives:pretrain", "executor": {"kind": "slurm"}}},
     "stages.pretrain.executor.kind: the study's executor runs the stage"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "timeout_s": -1}},
     "stages.pretrain.timeout_s: expected a positive number"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "cache_dir": 3}},
     "stages.pretrain.cache_dir: expected a string"),
    ({"pretrain": {"entry": "tests.objectives:pretrain", "seed": -1}},
     "stages.pretrain.seed: expected a non-negative integer, got -1"),
])
def test_bad_stages_are_refused(stages, message):
    with pytest.raises(StudyError, match=message):
        parse_study(study_dict(stages=stages))


@pytest.mark.parametrize("kind, override, message", [
    ("slurm", {"time_limit_min": 0},
     "stages.pretrain.executor.time_limit_min: expected a positive integer"),
    ("slurm", {"gpu": 1}, "stages.pretrain.executor.gpu: unknown key"),
    ("local", {"time_limit_min": 5}, "stages.pretrain.executor.time_limit_min: unknown key"),
])
def test_bad_stage_resources_are_refused(kind, override, message):
    data = study_dict(executor={"kind": kind, "max_concurrent": 2},
                      stages={"pretrain": {"entry": "tests.objectives:pretrain",
                                           "executor": override}})
    with pytest.raises(StudyError, match=message):
        parse_study(data)


@pytest.mark.parametrize("kind, said", [
    ("local", "stages.pretrain.executor.partition: unknown key; an option of executor kind "
              "slurm, not of local (expected one of: gpus_per_trial, "),
    ("inline", "stages.pretrain.executor: the study's executor takes no options to override "
               "(got partition); partition: an option of executor kind slurm, not of inline"),
])
def test_a_slurm_option_for_a_stage_off_slurm_says_it_is_slurms(tmp_path, capsys, kind, said):
    """``stages.pretrain.executor.partition`` under a local study was an unknown key, no more,
    where the study's own ``executor.partition`` says it is an option of slurm: said alike,
    one line, exit status 2, nothing written."""
    data = study_dict(executor={"kind": kind},
                      stages={"pretrain": {"entry": "tests.objectives:pretrain",
                                           "executor": {"partition": "gpu"}}})
    path = write_study(str(tmp_path / "s.yaml"), data)
    assert main(["run", path, "--dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"autotune: error: {said}") and err.count("\n") == 1, err
    assert not (tmp_path / "d").exists()


def test_stage_resources_are_read(tmp_path):
    data = study_dict(executor={"kind": "slurm", "max_concurrent": 2, "time_limit_min": 30},
                      stages={"pretrain": {"entry": "tests.objectives:pretrain",
                                           "cache_dir": "pre", "executor": {
                                               "time_limit_min": 600, "cpus_per_job": 8}}})
    stage = parse_study(data, base_dir=str(tmp_path)).objective.pretrain
    assert stage.executor == {"time_limit_min": 600, "cpus_per_job": 8}
    assert stage.cache_dir == str(tmp_path / "pre")


def test_a_changed_pretrain_is_refused_on_resume_but_not_its_cache_or_resources(tmp_path):
    log = str(tmp_path / "pretrain.log")
    d = str(tmp_path / "d")
    Driver(parse_study(two_stage(log, executor="inline", sleep_s=0.0)), d, progress=False).run()
    with pytest.raises(StudyError, match="^stages.pretrain: .* was started with"):
        Driver(parse_study(two_stage(log, executor="inline", sleep_s=0.1)), d, progress=False).run()
    moved = two_stage(log, executor="inline", sleep_s=0.0)
    moved["stages"]["pretrain"]["cache_dir"] = str(tmp_path / "elsewhere")
    Driver(parse_study(moved), d, progress=False).run()  # same pretrain, another cache: built there
    assert len(log_lines(log)) == 2
    assert os.path.exists(os.path.join(str(tmp_path / "elsewhere")))


def test_compare_builds_the_pretrain_once_for_all_its_runs(tmp_path):
    from autotune.compare import compare

    log = str(tmp_path / "pretrain.log")
    data = two_stage(log, executor="inline", trials=3, sleep_s=0.0)
    data["search"]["max_trials"] = 3
    path = write_study(str(tmp_path / "s.yaml"), data)
    out = str(tmp_path / "cmp")
    rows = compare(path, out, "random,grid", 1, None, None, progress=False)
    assert len(rows) == 2 and len(log_lines(log)) == 1
    assert history(os.path.join(out, "pretrain")).stages["pretrain"].status == "ok"
    for run in ("random-s0", "grid-s0"):
        h = history(os.path.join(out, run))
        assert h.stages["pretrain"].status == "cached" and h.stages["pretrain"].cost_s == 0.0
        assert len(h.trials) == 3 and all(r.status == "ok" for r in h.trials.values())
    compare(path, out, "random,grid", 1, None, None, progress=False)  # a re-run: nothing again
    assert len(log_lines(log)) == 1


def test_the_contract_runner_and_stage_modules_import_no_circle():
    """objective.py and stages.py once imported each other (inside functions, to dodge it)."""
    import ast

    root = os.path.join(REPO, "autotune")

    def deps(name):
        tree = ast.parse(open(os.path.join(root, name + ".py")).read())
        inner = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1]
        return {n.module for n in inner if n.module}  # top level and inside functions

    mine = ["contract", "runner", "stage_cache", "stages", "stage_runner", "objective"]
    seen = {m: deps(m) for m in mine}
    for m in mine:
        stack, reached = list(seen[m]), set()
        while stack:
            d = stack.pop()
            if d in reached or not os.path.exists(os.path.join(root, d + ".py")):
                continue
            reached.add(d)
            stack += deps(d)
        assert m not in reached, f"{m} imports itself back through {sorted(reached)}"


def test_cancel_stops_a_local_pretrain_its_dead_driver_left(tmp_path):
    from autotune.executors.procgroup import alive

    log = str(tmp_path / "pretrain.log")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log, trials=2, sleep_s=60.0))
    d = str(tmp_path / "d")
    kill_driver_when(path, d, lambda: os.path.exists(log))
    stage_dir = os.path.join(d, "stages", "pretrain")
    pid = int(history(d).stages["pretrain"].job_id[4:])
    assert alive(pid, stage_dir)
    assert main(["report", d]) == 0  # its row says what status says: not "running"
    assert pretrain_row(d)["status"] == "running-alone"
    out = cli("cancel", d)
    assert out.returncode == 0 and "stopped 1 local trial" in out.stdout, out.stdout + out.stderr
    assert not alive(pid, stage_dir)
    assert pretrain_row(d)["status"] == "interrupted"  # cancel rewrote trajectory.csv


def pretrain_row(d: str) -> dict:
    with open(os.path.join(d, "trajectory.csv")) as fh:
        return next(row for row in csv.DictReader(fh) if row["trial"] == "pretrain")


class _Pending:
    """An executor whose pretrain job pends, for as long as ``reasons`` last."""

    def __init__(self, *reasons: str):
        self.reasons = list(reasons)

    def waiting(self) -> dict[int, str]:
        reason = self.reasons.pop(0) if self.reasons else ""
        return {STAGE_TRIAL: reason} if reason else {}


def test_a_pending_pretrain_says_why_on_the_progress_line_and_warns_once_when_never(tmp_path):
    import io
    from types import SimpleNamespace

    from autotune import events as ev
    from autotune.history import History
    from autotune.progress import Progress
    from autotune.stage_runner import StageRunner

    h = History()
    h._stage(ev.stage_submit(0.0, "pretrain", "k", 0, "728"))
    out = io.StringIO()
    progress = Progress("min", stream=out)
    runner = StageRunner(SimpleNamespace(name="pretrain"), (), str(tmp_path), h, None, progress,
                         None, lambda: False)
    ex = _Pending("Priority", "PartitionConfig", "PartitionConfig", "")
    runner._say_pending(ex)
    assert progress.line(h, 0).startswith("pretrain pending (Priority), 0 done")
    runner._say_pending(ex)
    runner._say_pending(ex)
    assert progress.line(h, 0).startswith("pretrain pending (PartitionConfig), 0 done")
    said = out.getvalue().splitlines()
    assert said == ["pretrain: job 728 pending (Priority)",
                    "warning: pretrain: job 728 pending (PartitionConfig): it asks more than its "
                    "partition allows, so it will not start by itself; fix "
                    f"stages.pretrain.executor, then: python -m autotune cancel {tmp_path} and "
                    "run again"], said  # once, not at every poll
    runner._say_pending(ex)  # it started
    assert progress.line(h, 0).startswith("pretrain running, 0 done")


def test_the_progress_line_of_a_pretrain_run_again_does_not_give_earlier_cost_as_its_own():
    """A pretrain cancelled after 8 s and submitted again: 'pretrain running 8.0s' read as
    eight seconds of the new attempt, which had just started."""
    import io

    from autotune import events as ev
    from autotune.history import History
    from autotune.progress import Progress

    h = History()
    h._stage(ev.stage_submit(0.0, "pretrain", "k", 0, "728"))
    h._stage(ev.stage_end("pretrain", "k", 0, "cancelled", 0.0, 8.0, 8.0, "728", {},
                          "cancelled", "cancelled"))
    h._stage(ev.stage_submit(9.0, "pretrain", "k", 1, "729"))
    progress = Progress("min", stream=io.StringIO())
    line = progress.line(h, 0)
    assert line.startswith("pretrain running (earlier attempts 8.0s), 0 done"), line
    h._stage(ev.stage_end("pretrain", "k", 1, "ok", 9.0, 19.0, 10.0, "729", {}))
    assert progress.line(h, 0).startswith("pretrain ok 18.0s, 0 done")


def test_a_pretrain_past_its_slurm_time_limit_names_the_key_that_gives_it_more(tmp_path):
    from types import SimpleNamespace

    from autotune.executors import Outcome
    from autotune.history import History
    from autotune.progress import Progress
    from autotune.stage_runner import StageRunner

    stage = SimpleNamespace(name="pretrain", key=lambda: "k", cache_root=lambda d: str(tmp_path),
                            core=lambda: {})
    runner = StageRunner(stage, (), str(tmp_path), History(), lambda events: None,
                         Progress("min", stream=open(os.devnull, "w")), None, lambda: False)
    why = "ran past its time limit (time_limit_min 2) and was requeued 1 times (max_requeue 1)"
    out = runner._finish(Outcome(STAGE_TRIAL, 0, None, why, 1.0, 2.0, failure="timeout"))
    assert out.error == f"pretrain failed: {why}; give it more time: " \
                        "stages.pretrain.executor.time_limit_min", out.error
    out = runner._finish(Outcome(STAGE_TRIAL, 0, None, "timed out after 5s", 1.0, 2.0,
                                 failure="timeout"))  # its own timeout_s: another key
    assert out.error == "pretrain failed: timed out after 5s", out.error


def test_a_pretrain_stopped_mid_build_continues_from_its_checkpoint_next_time(tmp_path):
    """A SLURM pretrain requeued at its time limit exits through submitit's SystemExit: its
    build folder (named by the builder's pid) was removed with the checkpoint it had saved,
    and the requeued job, in another folder, started again from nothing, every time."""
    from autotune.contract import StageSpec
    from autotune.stage_cache import checkpoint_of, ensure

    (tmp_path / "steps.py").write_text(
        "import os\n"
        "def pretrain(params, ctx):\n"
        "    done = int(open(ctx.checkpoint_path).read()) if os.path.exists(ctx.checkpoint_path)"
        " else 0\n"
        "    for epoch in range(done, ctx.epochs):\n"
        "        with open(ctx.checkpoint_path, 'w') as fh:\n"
        "            fh.write(str(epoch + 1))\n"
        "        if epoch + 1 == params['stop_at'] and done == 0:\n"
        "            raise SystemExit(-1)  # submitit's exit as it requeues the job\n"
        "    return {'resumed_at': done}\n")
    stage = StageSpec(entry="steps:pretrain", params={"stop_at": 3}, epochs=5,
                      launch_dir=str(tmp_path))
    with pytest.raises(SystemExit):
        ensure(stage, str(tmp_path), (str(tmp_path),))
    made, record = ensure(stage, str(tmp_path), (str(tmp_path),))
    assert made and record["result"] == {"resumed_at": 3}, record
    with open(checkpoint_of(stage, str(tmp_path))) as fh:
        assert fh.read() == "5"


def test_which_pending_reasons_mean_a_job_never_starts():
    from autotune.executors.slurm_query import never_starts

    for reason in ("PartitionConfig", "PartitionTimeLimit", "JobHeldUser", "InvalidQOS",
                   "QOSMaxWallDurationPerJobLimit", "AssocMaxNodesPerJobLimit"):
        assert never_starts(reason), reason
    for reason in ("Priority", "Resources", "QOSMaxJobsPerUserLimit", "BeginTime",
                   "AssocGrpCpuLimit", "ReqNodeNotAvail, UnavailableNodes:n1"):
        assert never_starts(reason) is None, reason


@pytest.mark.parametrize("damage", ["cut", "deleted"])
def test_a_pretrain_checkpoint_damaged_after_its_build_is_built_again(tmp_path, capsys, damage):
    """A checkpoint cut short (a copy or a purge that stopped half-way) or deleted after its
    build recorded ok is built again, as attempt 1, before any fine-tune reads it."""
    log = str(tmp_path / "pretrain.log")
    study = parse_study(two_stage(log, executor="inline", trials=1, sleep_s=0.0))
    d = str(tmp_path / "d")
    Driver(study, d, progress=False).run()
    (checkpoint,) = [os.path.join(root, "checkpoint.pt") for root, _, files
                     in os.walk(os.path.join(d, "cache")) if "checkpoint.pt" in files]
    if damage == "cut":
        with open(checkpoint, "r+") as fh:
            fh.truncate(5)
    else:
        os.remove(checkpoint)
    capsys.readouterr()
    Driver(study, d, progress=False).run()
    assert f"pretrain: its checkpoint {checkpoint} is missing or not the size it was built " \
           "with; building it again" in capsys.readouterr().err
    assert [(e["state"], e["attempt"]) for e in events(d, "stage")] == [
        ("submit", 0), ("end", 0), ("submit", 1), ("end", 1)]
    assert len(log_lines(log)) == 2
    with open(checkpoint) as fh:
        assert json.load(fh)["epochs"] == 10  # whole again
    assert [r.status for r in history(d).trials.values()] == ["ok"]


@pytest.mark.parametrize("key, value, says", [
    ("params", 0, "stages.pretrain.params: expected a mapping, got 0"),
    ("params", "", "stages.pretrain.params: expected a mapping, got ''"),
    ("executor", 0, "stages.pretrain.executor: expected a mapping, got 0"),
    ("executor", [], "stages.pretrain.executor: expected a mapping, got []"),
])
def test_a_pretrain_section_that_is_no_mapping_is_refused(tmp_path, capsys, key, value, says):
    """Read as ``pre.get(key) or {}``, ``params: 0`` was a pretrain with no params and
    ``executor: 0`` one on the study's resources; only a missing key or ~ is empty."""
    data = two_stage(str(tmp_path / "pretrain.log"), executor="inline", concurrent=1)
    data["stages"]["pretrain"][key] = value
    path = write_study(str(tmp_path / "s.yaml"), data)
    d = tmp_path / "out"
    assert main(["run", path, "--dir", str(d)]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert not d.exists()


@pytest.mark.parametrize("key", ["params", "executor"])
def test_a_pretrain_section_left_out_or_null_is_empty(key):
    data = two_stage("unused", executor="inline", concurrent=1)
    data["stages"]["pretrain"][key] = None
    pre = parse_study(data, load_code=False).objective.pretrain
    assert pre.executor == {} and (pre.params == {}) == (key == "params")


def test_a_pretrain_section_an_older_autotune_took_as_empty_is_read_back_so(tmp_path):
    """A history recorded with stages.pretrain.params: 0 (read then as no params) is still
    read: status, report and load_study rebuild its study as it ran."""
    from autotune import events as ev
    from autotune.journal import Journal
    from autotune.study import recorded_study

    data = two_stage("unused", executor="inline", concurrent=1)
    data["stages"]["pretrain"].update(params=0, executor="")
    started = two_stage("unused", executor="inline", concurrent=1)
    started["stages"]["pretrain"].update(params=None, executor=None)
    started = parse_study(started, load_code=False)
    Journal(str(tmp_path / "history.jsonl")).append(
        [ev.study("t", 0.0, started.identity(), data)])
    study = recorded_study(history(str(tmp_path)), load_code=False)
    assert study.identity() == started.identity() and study.objective.pretrain.params == {}


def test_a_resumed_pretrain_runs_where_the_study_was_launched_as_its_trials_do(tmp_path):
    """The pretrain's job ran in the resuming driver's directory, the fine-tunes in the one the
    study was first run from: a relative ``train_dir`` named two folders."""
    (tmp_path / "cwdjob.py").write_text(
        "import os\n"
        "def pretrain(params, ctx):\n"
        "    open(params['log'], 'a').write(os.getcwd() + '\\n')\n"
        "    if os.path.exists(params['flag']):\n"
        "        raise RuntimeError('not yet')\n"
        "    open(ctx.checkpoint_path, 'w').write('w')\n"
        "    return {'loss': 0.0}\n"
        "def finetune(params, ctx):\n"
        "    open(params['log'], 'a').write(os.getcwd() + '\\n')\n"
        "    return {'loss': float(params['x'])}\n")
    log, flag = str(tmp_path / "cwd.log"), tmp_path / "flag"
    flag.write_text("")
    data = study_dict(objective={"entry": "cwdjob:finetune"},
                      space={"x": {"values": [1, 2]}, "log": log},
                      search={"algorithm": "grid"}, executor={"kind": "local", "max_concurrent": 1},
                      stages={"pretrain": {"entry": "cwdjob:pretrain", "epochs": 1,
                                           "params": {"log": log, "flag": str(flag)}}})
    path = write_study(str(tmp_path / "s.yaml"), data)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    d = str(tmp_path / "out")
    assert cli("run", path, "--dir", d, "--quiet", cwd=str(first)).returncode == 1
    flag.unlink()
    done = cli("run", path, "--dir", d, "--quiet", cwd=str(second))
    assert done.returncode == 0, done.stderr
    assert log_lines(log) == [str(first)] * 4  # the failed pretrain, its rerun, two trials


def test_a_shared_cache_keys_relative_paths_where_runs_start_and_reads_4_0_as_4(tmp_path,
                                                                                 monkeypatch):
    """Two studies sharing ``cache_dir`` with the same relative data path, defined in two
    directories, read two folders: the second reused the first's pretrain, trained on the
    other data. ``scale: 4.0`` and ``./data/`` are what ``scale: 4`` and ``data`` train: they
    built it again."""
    (tmp_path / "keyjob.py").write_text(
        "import json\n"
        "def pretrain(params, ctx):\n"
        "    open(params['log'], 'a').write(open(params['data']).read() + '\\n')\n"
        "    json.dump({'base': 1.0}, open(ctx.checkpoint_path, 'w'))\n"
        "    return {}\n"
        "pretrain.path_params = ('data',)\n"
        "def finetune(params, ctx):\n"
        "    return {'loss': json.load(open(ctx.pretrained))['base']}\n")
    log, shared = str(tmp_path / "pretrain.log"), str(tmp_path / "shared")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data").write_text(name.upper())

    def run(where, out, **params):
        data = study_dict(objective={"entry": "keyjob:finetune"}, space={"x": {"values": [1]}},
                          search={"algorithm": "grid"},
                          stages={"pretrain": {"entry": "keyjob:pretrain", "epochs": 1,
                                               "cache_dir": shared,
                                               "params": {"log": log, "data": "data",
                                                          "scale": 4, **params}}})
        monkeypatch.chdir(tmp_path / where)
        Driver(parse_study(data, base_dir=str(tmp_path)), str(tmp_path / out),
               progress=False).run()
        return history(str(tmp_path / out)).stages["pretrain"].status

    assert run("a", "da") == "ok"
    assert run("b", "db") == "ok"  # its own data: its own pretrain
    assert run("a", "da2", scale=4.0) == "cached"
    assert run("a", "da3", data="./data/") == "cached"
    assert log_lines(log) == ["A", "B"]


@pytest.mark.parametrize("old_entry", ["whole", "gone"])
def test_a_pretrain_recorded_under_a_key_before_paths_were_absolute_is_kept_while_whole(
        tmp_path, monkeypatch, capsys, old_entry):
    """A study whose pretrain was recorded under the key an older autotune made (its relative
    path as written): resumed, it keeps that checkpoint while it is whole, since its earlier
    trials were fine-tuned from it (a day's pretrain is not run again, and the study's trials
    do not mix two pretrains); with that entry gone it says so and builds it under the new
    key."""
    import hashlib
    import shutil

    (tmp_path / "oldkeyjob.py").write_text(
        "import json\n"
        "def pretrain(params, ctx):\n"
        "    open(params['log'], 'a').write('built\\n')\n"
        "    json.dump({'base': 1.0}, open(ctx.checkpoint_path, 'w'))\n"
        "    return {}\n"
        "pretrain.path_params = ('data',)\n"
        "def finetune(params, ctx):\n"
        "    return {'loss': json.load(open(ctx.pretrained))['base']}\n")
    log = str(tmp_path / "pretrain.log")
    data = study_dict(objective={"entry": "oldkeyjob:finetune"},
                      space={"x": {"values": [1, 2]}}, search={"algorithm": "grid", "max_trials": 1},
                      stages={"pretrain": {"entry": "oldkeyjob:pretrain", "epochs": 1,
                                           "params": {"log": log, "data": "data"}}})
    monkeypatch.chdir(tmp_path)
    d = str(tmp_path / "d")
    study = parse_study(data, base_dir=str(tmp_path))
    Driver(study, d, progress=False).run()
    new = study.objective.pretrain.key()
    core = study.objective.pretrain.core()
    old = hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert old != new
    shutil.move(os.path.join(d, "cache", new), os.path.join(d, "cache", old))
    if old_entry == "gone":
        shutil.rmtree(os.path.join(d, "cache", old))
    from autotune import events as ev
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        recorded = ev.decode(fh.read()).events
    with open(os.path.join(d, "history.jsonl"), "wb") as fh:  # as the older autotune wrote it
        fh.write(b"".join(ev.encode({**e, "key": old} if e["e"] == "stage" else e)
                          for e in recorded))
    assert history(d).stages["pretrain"].key == old
    capsys.readouterr()
    data["search"]["max_trials"] = 2
    Driver(parse_study(data, base_dir=str(tmp_path)), d, progress=False).run()
    h = history(d)
    assert [r.status for r in h.trials.values()] == ["ok", "ok"]
    if old_entry == "whole":
        assert log_lines(log) == ["built"]
        assert h.stages["pretrain"].key == old
        assert not os.path.exists(os.path.join(d, "cache", new))
    else:
        assert f"recorded under cache key {old}, now {new}" in capsys.readouterr().err
        assert log_lines(log) == ["built", "built"]
        assert h.stages["pretrain"].status == "ok" and h.stages["pretrain"].key == new


def test_a_changed_pretrain_is_refused_in_one_line_naming_what_differs(tmp_path):
    """The refusal printed both whole settings mappings (the log path, every param) for the
    user to compare; it names the keys that differ, each with its old and new value."""
    log = str(tmp_path / "pretrain.log")
    d = str(tmp_path / "d")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log, executor="inline", trials=1,
                                                           sleep_s=0.0))
    assert cli("run", path, "--dir", d, "--quiet").returncode == 0
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        before = fh.read()
    changed = two_stage(log, executor="inline", trials=1, sleep_s=0.5, lr=0.1)
    changed["stages"]["pretrain"]["epochs"] = 20
    path = write_study(str(tmp_path / "s.yaml"), changed)
    out = cli("run", path, "--dir", d, "--quiet")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        f"autotune: error: stages.pretrain: {d} was started with another pretrain (epochs 10 "
        f"-> 20, params.lr (unset) -> 0.1, params.sleep_s 0.0 -> 0.5), and trials have run; use "
        "another --dir for a new search"), out.stderr
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        assert fh.read() == before  # nothing written
    assert len(log_lines(log)) == 1


def test_status_says_a_pretrain_a_killed_driver_left_started_its_cost_unknown(tmp_path):
    """``status`` said ``cost 0.0 s`` of a pretrain a killed driver left, running or
    interrupted, as if it had cost nothing."""
    log = str(tmp_path / "pretrain.log")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log, trials=1, sleep_s=30))
    d = str(tmp_path / "d")
    kill_driver_when(path, d, lambda: os.path.exists(log))
    try:
        out = cli("status", d).stdout
        line = next(x for x in out.splitlines() if x.startswith("pretrain: "))
        assert line.startswith("pretrain: running-alone") and "cost 0.0 s" not in line, out
        assert re.search(r"started at \d+\.\d s; cost not known until its end is recorded$",
                         line), out
    finally:
        from autotune.executors.local import kill_orphan
        kill_orphan(os.path.join(d, "stages", "pretrain"))
    line = next(x for x in cli("status", d).stdout.splitlines() if x.startswith("pretrain: "))
    assert line.startswith("pretrain: interrupted") and "cost 0.0 s" not in line, line
    assert re.search(r"started at \d+\.\d s; cost unknown \(its end was never recorded\)$",
                     line), line


def test_a_pretrain_that_failed_of_its_params_is_fixed_in_place(tmp_path):
    """A pretrain that failed (no checkpoint of it, no trial run) was refused as a changed
    pretrain once its params were fixed, although the failure said to fix it and run again
    with the same --dir. The change is taken and recorded; once its checkpoint is built and
    trials ran, a change is refused again."""
    log = str(tmp_path / "pretrain.log")
    d = str(tmp_path / "d")
    path = str(tmp_path / "s.yaml")
    write_study(path, two_stage(log, executor="inline", trials=2, sleep_s=0.0, fail=1))
    out = cli("run", path, "--dir", d)
    assert out.returncode == 1 and "out of memory in pretrain" in out.stderr, out.stderr
    write_study(path, two_stage(log, executor="inline", trials=2, sleep_s=0.0, fail=0))
    out = cli("run", path, "--dir", d)
    assert out.returncode == 0, out.stderr
    assert "pretrain: changed since it was last tried (params.fail 1 -> 0)" in out.stderr
    h = history(d)
    assert h.stages["pretrain"].status == "ok" and h.stages["pretrain"].attempt == 1
    assert [r.status for r in h.trials.values()] == ["ok", "ok"]
    # recorded: the study record reads the new pretrain from here on, for every reader
    assert h.study["identity"]["pretrain"]["params"]["fail"] == 0
    assert h.study["config"]["stages"]["pretrain"]["params"]["fail"] == 0
    assert [n["pretrain"]["params"]["fail"] for n in events(d, "resume") if "pretrain" in n] \
        == [0]
    out = cli("run", path, "--dir", d)  # the same again: nothing to say of it
    assert out.returncode == 0 and "changed since" not in out.stderr, out.stderr
    write_study(path, two_stage(log, executor="inline", trials=2, sleep_s=0.0, fail=2))
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        before = fh.read()
    out = cli("run", path, "--dir", d)
    assert out.returncode == 2 and out.stderr.strip().endswith(
        "(params.fail 0 -> 2), and trials have run; use another --dir for a new search"), \
        out.stderr
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        assert fh.read() == before  # nothing written


def test_a_changed_pretrain_is_refused_once_its_checkpoint_is_built(tmp_path):
    log = str(tmp_path / "pretrain.log")
    d = str(tmp_path / "d")
    study = parse_study(two_stage(log, executor="inline", sleep_s=0.0))
    assert Driver(study, d, progress=False, stages_only=True).run()
    assert history(d).stages["pretrain"].status == "ok" and not history(d).trials
    with pytest.raises(StudyError, match=r"\(params.sleep_s 0.0 -> 0.1\), and its checkpoint "
                                         r"was built \(ok\); use another"):
        Driver(parse_study(two_stage(log, executor="inline", sleep_s=0.1)), d,
               progress=False).run()


def test_a_changed_pretrain_waits_for_the_job_a_dead_driver_left_to_be_cancelled(tmp_path):
    # its job may still build the old settings' checkpoint: refused until `cancel` ends it
    log = str(tmp_path / "pretrain.log")
    path = write_study(str(tmp_path / "s.yaml"), two_stage(log, trials=1, sleep_s=60.0))
    d = str(tmp_path / "d")
    kill_driver_when(path, d, lambda: os.path.exists(log))
    job = history(d).stages["pretrain"].job_id
    try:
        write_study(path, two_stage(log, trials=1, sleep_s=0.0))
        out = cli("run", path, "--dir", d)
        assert out.returncode == 2 and out.stderr.strip().endswith(
            f"(params.sleep_s 60.0 -> 0.0), and its job {job} may still run or has ended unrecorded (python -m "
            f"autotune run with the study file it was started with records it, python -m "
            f"autotune cancel {d} ends it); use another --dir for a new search"), out.stderr
    finally:
        assert cli("cancel", d).returncode == 0
    out = cli("run", path, "--dir", d)
    assert out.returncode == 0 and "changed since it was last tried" in out.stderr, out.stderr
    assert history(d).stages["pretrain"].status == "ok"


def test_a_study_sharing_cache_dir_waits_in_the_driver_for_another_studys_build(tmp_path,
                                                                                  capsys):
    """The second of two studies sharing cache_dir submitted its own pretrain job, which held
    its slot (a GPU) waiting on the cache lock and was then recorded ok, with a cost. It
    waits in the driver, nothing submitted, says so, and records the checkpoint cached."""
    import threading

    from filelock import FileLock

    from autotune import stage_cache, stage_runner

    log = str(tmp_path / "pretrain.log")
    data = two_stage(log, executor="local", trials=2, sleep_s=0.0)
    data["stages"]["pretrain"]["cache_dir"] = str(tmp_path / "shared")
    study = parse_study(data)
    final = stage_cache.final_dir(study.objective.pretrain, str(tmp_path / "b"))
    os.makedirs(os.path.dirname(final))
    stage_runner.OTHER_BUILD_POLL_S, poll = 0.1, stage_runner.OTHER_BUILD_POLL_S
    other = FileLock(final + ".lock")
    other.acquire()  # another study's builder
    try:
        d = str(tmp_path / "b")
        driver = threading.Thread(target=Driver(study, d, progress=True).run)
        driver.start()
        deadline = time.time() + 30
        while "waiting for that build" not in capsys.readouterr().err:
            assert time.time() < deadline and driver.is_alive()
            time.sleep(0.1)
        time.sleep(1.0)
        assert not events(d, "stage") and not os.path.exists(log)  # no job of its own
        stage_cache.build(study.objective.pretrain, final, ())  # the other study's build
    finally:
        other.release()
        stage_runner.OTHER_BUILD_POLL_S = poll
    driver.join(60)
    h = history(d)
    assert h.stages["pretrain"].status == "cached" and h.stages["pretrain"].cost_s == 0.0
    assert [e["state"] for e in events(d, "stage")] == ["cached"]
    assert [r.status for r in h.trials.values()] == ["ok", "ok"]
    assert len(log_lines(log)) == 1


def test_a_pretrain_job_that_found_it_built_by_another_is_recorded_cached_at_no_cost(tmp_path):
    # two studies that looked at the same moment: the one whose job waited on the lock while
    # the other built it spent no build; its waiting is said (waited_s), not charged
    from autotune import events as ev
    from autotune.executors import Outcome
    from autotune.history import History
    from autotune.progress import Progress
    from autotune.stage_cache import build, final_dir
    from autotune.stage_runner import StageRunner

    log = str(tmp_path / "pretrain.log")
    stage = parse_study(two_stage(log, sleep_s=0.0)).objective.pretrain
    d = str(tmp_path / "d")
    os.makedirs(os.path.join(d, "cache"))
    build(stage, final_dir(stage, d), ())
    h, recorded = History(), []

    def record(evs):
        recorded.extend(evs)
        for e in evs:
            h.apply(e)

    runner = StageRunner(stage, (), d, h, record, Progress("x", enabled=False), None,
                         lambda: False)
    record([ev.stage_submit(0.0, "pretrain", stage.key(), 0, "7")])
    result = runner._finish(Outcome(STAGE_TRIAL, 0, {"built": 0.0, "build_s": 0.1}, None, 1.0,
                                    31.0, job_id="7"))
    assert result.checkpoint and not result.error
    rec = h.stages["pretrain"]
    assert rec.status == "cached" and rec.cost_s == 0.0 and h.spent_s == 0.0
    assert rec.metrics["waited_s"] == 30.0


def test_a_pretrain_changed_before_its_first_run_is_not_said_tried(tmp_path):
    """create_study(load_if_exists=False) records the study at once; a pretrain changed
    before anything ran is taken, but it was never tried: the line said 'changed since it
    was last tried ...; no attempt of it succeeded'."""
    import autotune as at

    log = str(tmp_path / "pretrain.log")
    d = str(tmp_path / "d")
    path = str(tmp_path / "s.yaml")
    write_study(path, two_stage(log, executor="inline", trials=1, sleep_s=0.0, fail=1))
    at.create_study(path, dir=d, load_if_exists=False)
    write_study(path, two_stage(log, executor="inline", trials=1, sleep_s=0.0, fail=0))
    out = cli("run", path, "--dir", d)
    assert out.returncode == 0, out.stderr
    assert "pretrain: changed since it was recorded (never run) (params.fail 1 -> 0); no " \
           "trial ran, so it runs with the new settings" in out.stderr, out.stderr
    assert "last tried" not in out.stderr and "no attempt" not in out.stderr


def leave_stage_result(d: str, job: str) -> None:
    """The result submitit leaves as the pretrain's SLURM job ends (rank 0's)."""
    import pickle

    os.makedirs(os.path.join(d, "slurm", job), exist_ok=True)
    with open(os.path.join(d, "slurm", job, f"{job}_0_result.pkl"), "wb") as fh:
        pickle.dump(("success", {"result": {"built": 1.0}, "started": 1.0, "ended": 4.0}), fh)


@pytest.mark.parametrize("left", ["running", "ended", "cancelled, ran to its end", "cancelled"])
def test_a_resume_under_another_kind_is_refused_while_the_pretrains_job_is_left(tmp_path, left):
    """A pretrain's SLURM job a killed driver left (or that autotune cancel cancelled and that
    ran to its end all the same), resumed with executor kind local: the local executor cannot
    re-attach to it, so it found the checkpoint in the cache and recorded it ``cached`` at no
    cost (the job's compute lost from the study's totals), or built it a second time beside
    the job still running. Refused as trials left so are, nothing written; a job cancel
    stopped (nothing left to collect) is not refused: the pretrain runs again."""
    from autotune import events as ev
    from autotune.driver import new_study_record
    from autotune.journal import Journal

    log = str(tmp_path / "pretrain.log")
    d = str(tmp_path / "d")
    os.makedirs(d)
    slurm = parse_study(two_stage(log, executor="slurm", trials=1, sleep_s=0.0))
    records = [new_study_record(slurm), ev.stage_submit(0.1, "pretrain", "k", 0, "717")]
    if left.startswith("cancelled"):
        records.append(ev.cancel(5.0, ["717"]))
    journal = Journal(os.path.join(d, "history.jsonl"))
    journal.append(records)
    journal.close()
    if left in ("ended", "cancelled, ran to its end"):
        leave_stage_result(d, "717")
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        before = fh.read()
    path = write_study(str(tmp_path / "s.yaml"),
                       two_stage(log, executor="local", trials=1, sleep_s=0.0))
    out = cli("run", path, "--dir", d)
    if left == "cancelled":
        assert out.returncode == 0, out.stderr
        assert history(d).stages["pretrain"].status == "ok" and len(log_lines(log)) == 1
        return
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        f"autotune: error: executor.kind: {d} has the pretrain's slurm job 717, left running "
        "(or ended, not yet recorded) with no driver, which executor kind local can neither "
        "watch nor record: it would build the pretrain again or take its checkpoint at no "
        "cost. Resume with executor kind slurm (it collects it), or, while it still runs, "
        f"stop it with: python -m autotune cancel {d} (the pretrain then runs again)"), \
        out.stderr
    with open(os.path.join(d, "history.jsonl"), "rb") as fh:
        assert fh.read() == before  # nothing written
    assert not os.path.exists(log)  # nothing built
