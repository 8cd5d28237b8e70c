"""Histories written by earlier versions (tests/data, one set per schema) resume under this one.

The files are never regenerated: tests/data/make_history.py writes a new set when the schema
version changes, and the old sets stay, so each is checked under every later version.
"""
from __future__ import annotations

import copy
import glob
import json
import os

import pytest

from autotune import events as ev
from autotune.driver import Driver
from autotune.summary import summary
from autotune.study import parse_study
from tests.helpers import history

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
FILES = sorted(glob.glob(os.path.join(DATA, "history_v*_*.jsonl")))


def test_there_is_a_history_for_every_schema_version():
    versions = {int(os.path.basename(f).split("_")[1][1:]) for f in FILES}
    assert versions == set(range(1, ev.SCHEMA + 1))


@pytest.mark.parametrize("cut", [None, 30], ids=["finished", "killed-mid-study"])
@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[8:-6] for f in FILES])
def test_an_old_history_resumes_here(tmp_path, path, cut):
    d = tmp_path / "d"
    d.mkdir()
    lines = open(path, "rb").read().split(b"\n")[:-1]
    (d / "history.jsonl").write_bytes(b"".join(ln + b"\n" for ln in lines[:cut]))
    before = history(str(d))
    assert not before.warnings and before.study
    config = copy.deepcopy(before.study["config"])
    config["search"]["max_trials"] += 8
    summary_ = Driver(parse_study(config), str(d), progress=False).run()
    after = history(str(d))
    assert not after.warnings and after.damaged == 0
    assert summary_.trials == len(after.trials)
    assert len(before.trials) < len(after.trials) <= config["search"]["max_trials"]
    for t, rec in before.trials.items():
        kept = after.trials[t]
        assert (kept.params, kept.fidelity, kept.parent) == (rec.params, rec.fidelity, rec.parent)
        if rec.done:
            assert (kept.status, kept.value, kept.cost_s) == (rec.status, rec.value, rec.cost_s)
    assert all(r.done for r in after.trials.values())
    assert min(set(after.trials) - set(before.trials)) == before.next_id
    assert "trials:" in summary(after)
    # what this version appended is in its own schema: every new line carries a checksum
    new = (d / "history.jsonl").read_bytes().split(b"\n")[len(lines[:cut]):-1]
    assert new and all(b',"c":"' in ln for ln in new)
    assert json.loads(lines[0])["e"] == "study"


def test_a_start_recorded_before_its_submission_shows_as_the_submission(tmp_path):
    """Older SLURM code took sacct's whole seconds as they came: a pretrain submitted at 0.6 s
    and started at once was recorded as started at -0.4 s (status showed '-0.4-5.0 s'), a
    trial submitted at 7.5 s as started at 7 s. A job starts no earlier than its submission:
    that is what status, report and trajectory.csv show, and no span runs backwards."""
    from autotune.journal import Journal
    from autotune.trajectory import rows, stage_rows

    space = {"x": {"values": [0, 1]}}
    journal = Journal(str(tmp_path / "history.jsonl"))
    journal.append([
        ev.study("old", 100.0, {"space": space, "metric": "loss", "mode": "min"}, {}),
        ev.stage_submit(0.6, "pretrain", "k", 0, "51"),
        ev.stage_end("pretrain", "k", 0, "ok", -0.4, 5.0, 4.0, "51", {}),
        ev.ask(5.0, 1, [ev.trial_entry(0, {"x": 0}), ev.trial_entry(1, {"x": 1})]),
        ev.submit(7.5, 0, 0, "52"),
        ev.end(0, 0, "ok", 7.0, 9.0, 2.0, {"loss": 1.0}, None),
        ev.submit(7.5, 1, 0, "53"),
        ev.end(1, 0, "failed", 7.0, 7.0, 0.0, None, "boom"),
    ])
    h = history(str(tmp_path))
    assert not h.warnings
    pre = h.stages["pretrain"]
    assert (pre.start_s, pre.end_s) == (0.6, 5.0)
    assert (h.trials[0].start_s, h.trials[0].end_s) == (7.5, 9.0)
    assert (h.trials[1].start_s, h.trials[1].end_s) == (7.5, 7.5)
    assert "pretrain: ok, job 51, 0.6-5.0 s" in summary(h, running_driver=False)
    _, table = rows(h, "old", "grid", ["x"], "min", "loss")
    table += stage_rows(h, "grid")
    assert len(table) == 3 and all(r["start_s"] >= 0 and r["end_s"] >= r["start_s"] for r in table)


def test_a_grid_point_recorded_unrounded_by_an_older_version_is_one_setting_in_the_plots():
    """Before steps: grids were rounded, 1e-05 of a log grid was recorded as numpy's
    9.999999999999999e-06; resumed now, the same point is recorded as 1e-05. The searchers
    take both for one point; the plots joined only equal reprs, so a setting run twice showed
    as two settings run once, and the search path gave the old value a row of its own."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from autotune.history import TrialRecord
    from autotune.plots import draw_along, panel_rows, setting_keys

    space = {"lr": {"low": 1e-6, "high": 1.0, "log": True, "int": False, "steps": 13},
             "y": {"values": [0.0, 0.5]}}
    recs = [TrialRecord(t, {"lr": lr, "y": 0.0}, status="ok", metrics={"loss": v}, value=v)
            for t, lr, v in ((0, 9.999999999999999e-06, 1.0), (1, 1e-05, 2.0), (2, 1e-06, 3.0))]
    fig, ax = plt.subplots()
    setting_of = setting_keys(space, ["lr", "y"])
    keys = {r.trial: setting_of(r.params) for r in recs}
    draw_along(ax, recs, "lr", space, "loss", recs[0], {"lr": 1e-05, "y": 0.0}, [], keys,
               setting_of)
    labels = ax.get_legend_handles_labels()[1]
    plt.close(fig)
    assert "a setting run 2x (mean -)" in labels and "the search's setting (status)" in labels
    values, row = panel_rows(space["lr"], [r.params["lr"] for r in recs])
    assert len(values) == 13 and values[2] == 1e-05
    assert row(9.999999999999999e-06) == row(1e-05) == 2 and row(1e-06) == 0


def test_a_study_an_older_version_started_with_an_unfilled_command_field_resumes(tmp_path):
    """Older versions accepted a command field no trial fills ({pretrained} without a
    pretrain: every trial got it empty); the check that came later refused such a study on
    resume, and its half-done search was lost to it. It resumes with one warning; a new
    study with that command is still refused, and so is a command changed to hold one."""
    from tests.helpers import cli, study_dict, write_study

    lines = [f'{{"loss": {v}}}' for v in (3, 1, 2, 4)]
    command = "printf '%s%s\\n' {x} {pretrained}"
    data = study_dict(objective={"entry": None, "command": "printf '%s\\n' {x}"},
                      space={"x": {"values": lines}},
                      search={"algorithm": "grid", "max_trials": 2})
    d = tmp_path / "d"
    Driver(parse_study(data), str(d), progress=False).run()
    as_older_version_recorded(d, command)
    data["objective"]["command"] = command
    data["search"]["max_trials"] = 4
    study = write_study(str(tmp_path / "s.yaml"), data)
    done = cli("run", study, "--dir", str(d), "--quiet")
    assert done.returncode == 0, done.stderr
    warned = [ln for ln in done.stderr.splitlines() if "{pretrained}" in ln]
    assert len(warned) == 1 and warned[0].startswith("warning: objective.command: {pretrained} "
                                                     "is empty in every trial")
    h = history(str(d))
    assert [h.trials[t].value for t in range(4)] == [3, 1, 2, 4] and not h.warnings
    new = cli("run", study, "--dir", str(tmp_path / "new"), "--quiet")
    assert new.returncode == 2 and not (tmp_path / "new").exists()
    assert new.stderr.strip() == ("autotune: error: objective.command: {pretrained} would be "
                                  "empty in every trial: the study has no stages.pretrain; "
                                  "remove it from the command")
    data["objective"]["command"] = command + " {epochs}"
    changed = cli("run", write_study(str(tmp_path / "c.yaml"), data), "--dir", str(d),
                  "--accept-objective-change")
    assert changed.returncode == 2 and "{pretrained} would be empty" in changed.stderr
    assert len(history(str(d)).notes) == 1  # the refused run recorded nothing


def as_older_version_recorded(d, command: str) -> None:
    """The study record of ``d`` rewritten to hold ``command``, as a version before the
    unfilled-field check recorded it (no checksum: the record is rebuilt as it was)."""
    path = d / "history.jsonl"
    raw = path.read_bytes().split(b"\n")
    record = json.loads(raw[0])
    del record["c"]
    record["config"]["objective"]["command"] = command
    path.write_bytes(ev.encode(record) + b"\n".join(raw[1:]))


def test_a_comparison_an_older_version_started_with_an_unfilled_field_resumes(tmp_path, capsys):
    """compare resumes such a study as run does: one warning for the whole comparison (not one
    per run), every run continued; a new comparison with that command is still refused, one
    line, exit status 2, nothing written."""
    from autotune.cli import main
    from tests.helpers import study_dict, write_study

    lines = [f'{{"loss": {v}}}' for v in (3, 1, 2, 4)]
    command = "printf '%s%s\\n' {x} {pretrained}"
    data = study_dict(objective={"entry": None, "command": "printf '%s\\n' {x}"},
                      space={"x": {"values": lines}}, search={"max_trials": 2})
    out = tmp_path / "cmp"
    args = ["--algorithms", "random,grid", "--seeds", "1", "--dir"]
    assert main(["compare", write_study(str(tmp_path / "old.yaml"), data), *args, str(out)]) == 0
    for run in ("random-s0", "grid-s0"):
        as_older_version_recorded(out / run, command)
    data["objective"]["command"] = command
    data["search"]["max_trials"] = 4
    study = write_study(str(tmp_path / "s.yaml"), data)
    capsys.readouterr()
    assert main(["compare", study, *args, str(out)]) == 0
    warned = [ln for ln in capsys.readouterr().err.splitlines() if "{pretrained}" in ln]
    assert len(warned) == 1 and warned[0].startswith("warning: objective.command: {pretrained} "
                                                     "is empty in every trial")
    for run in ("random-s0", "grid-s0"):
        assert len(history(str(out / run)).trials) == 4
    assert main(["compare", study, *args, str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new").exists()
    assert capsys.readouterr().err.strip() == ("autotune: error: [random] objective.command: {pretrained} "
                                  "would be empty in every trial: the study has no "
                                  "stages.pretrain; remove it from the command")
