"""scripts/bench_real.py on an analytic two-stage study (simulated executor): the comparison,
the re-training of each reported setting from the shared pretrain, the table, bad input."""
from __future__ import annotations

import json
import os
import random

import pytest

from scripts import bench_real
from tests.helpers import history, write_study


def noisy_finetune(params: dict, ctx) -> dict:
    """A fine-tune from the pretend pretrain: a bowl with seeded noise, shorter runs worse."""
    with open(ctx.pretrained) as fh:
        base = json.load(fh)["base"]
    value = base + (params["x"] - 1.0) ** 2 + (params["y"] + 0.5) ** 2
    value += 0.05 * random.Random(ctx.seed).gauss(0.0, 1.0)
    epochs = ctx.epochs or params["epochs"]
    value += 1.0 / epochs
    return {"loss": value, "cost_s": 100.0 * epochs / 3}


def study(tmp_path) -> str:
    data = {
        "name": "bowl",
        "objective": {"entry": "tests.test_bench_real:noisy_finetune", "metric": "loss"},
        "space": {"x": {"values": [-1.0, 0.0, 1.0, 2.0, 3.0]},
                  "y": {"values": [-1.0, -0.5, 0.0, 0.5]}, "epochs": 3},
        "stages": {"pretrain": {"entry": "tests.objectives:pretrain",
                                "params": {"log": str(tmp_path / "pretrain.log"), "sleep_s": 0.0,
                                           "base": 0.5}}},
        "search": {"algorithm": "axis", "seed": 0, "max_trials": 5, "start": {"x": 3.0, "y": 0.5}},
        "executor": {"kind": "simulated", "max_concurrent": 2},
    }
    return write_study(str(tmp_path / "bowl.yaml"), data)


def trials_in(root: str) -> int:
    return sum(len(history(os.path.join(root, d)).trials) for d in os.listdir(root))


def test_the_bench_retrains_every_reported_setting_from_the_one_pretrain(tmp_path, capsys):
    out = str(tmp_path / "bench")
    argv = ["--study", study(tmp_path), "--methods", "axis,asha-bo,random", "--seeds", "2",
            "--budget", "1500", "--repeats", "2", "--dir", out]
    assert bench_real.main(argv) == 0
    text = capsys.readouterr().out
    table = text[text.index("re-trained loss"):]
    for method, source in (("axis", "setting"), ("asha-bo", "best"), ("random", "best")):
        assert any(line.split()[:2] == [method, source] for line in table.splitlines()), table
    assert "start       fixed" in table and "target: axis's median" in table
    # asha-bo searched on the epochs (the fixed epochs: 3 left its space), the others at 3
    asha = history(os.path.join(out, "asha-bo-s0"))
    assert {r.fidelity for r in asha.trials.values()} >= {1, 3}
    assert "epochs" not in asha.study["config"]["space"]
    # every re-train: 2 runs of one fixed setting, different training seeds, full length
    retrain = os.path.join(out, "retrain")
    for name in os.listdir(retrain):
        h = history(os.path.join(retrain, name))
        runs = list(h.trials.values())
        assert len(runs) == 2 and all(r.status == "ok" for r in runs)
        assert runs[0].params == runs[1].params and runs[0].params["epochs"] == 3
        assert runs[0].value != runs[1].value
    reference = [n for n in os.listdir(retrain)
                 if history(os.path.join(retrain, n)).trials[0].params["x"] == 3.0]
    assert reference, "the conventional setting was re-trained"
    # one pretrain for the searches and the re-trains
    with open(tmp_path / "pretrain.log") as fh:
        assert len(fh.read().split()) == 1
    # a second invocation re-reads what was done: no new trial anywhere
    before = trials_in(retrain)
    assert bench_real.main(argv) == 0
    again = capsys.readouterr().out
    assert again[again.index("re-trained loss"):].splitlines()[:6] == table.splitlines()[:6]
    assert trials_in(retrain) == before


def test_the_retrained_values_are_the_objectives_own(tmp_path):
    raw = bench_real.read_study(study(tmp_path))
    got = bench_real.retrain(raw, {"x": 1.0, "y": -0.5}, str(tmp_path / "r"), repeats=3,
                             seed=7, cache_dir=str(tmp_path / "cache"))
    assert len(got.values) == 3 and got.failed == 0
    # base 0.5 + 1/3 at the bowl's minimum, plus noise of sd 0.05
    assert all(abs(v - (0.5 + 1 / 3)) < 0.25 for v in got.values)
    assert len(set(got.values)) == 3
    # a second re-train seed adds its runs to the first's, which are re-read, not re-run
    pooled = bench_real.retrain_pooled(raw, {"x": 1.0, "y": -0.5}, str(tmp_path / "r"), 3,
                                       [7, 8], str(tmp_path / "cache"))
    assert pooled.values[:3] == got.values and len(set(pooled.values)) == 6
    assert len(history(got.directory).trials) == 3
    with pytest.raises(bench_real.StudyError, match="re-train: the setting has no value for y"):
        bench_real.retrain(raw, {"x": 1.0}, str(tmp_path / "r"), 1, 7, None)


def make_bench(axis: float, other: float) -> bench_real.Bench:
    def run(method, seed, mean):
        r = bench_real.Retrained({"x": 1.0}, [mean - 0.1, mean + 0.1], 0, f"{method}-{seed}")
        return bench_real.RunResult(method, seed, "setting" if method == "axis" else "best",
                                    mean - 0.5, 300.0, 12, r)

    b = bench_real.Bench([run("axis", 0, axis), run("axis", 1, axis + 1),
                          run("random", 0, other), run("random", 1, other + 1)])
    b.reference = bench_real.Retrained({"x": 3.0}, [9.0, 11.0], 0, "start")
    return b


def test_the_table_gives_medians_ratios_and_the_verdict():
    text = bench_real.format_table(make_bench(2.0, 4.0), "niqe")
    rows = {line.split()[0]: line.split() for line in text.splitlines()[1:5] if line.strip()}
    assert rows["axis"][1:6] == ["setting", "2.0000", "3.0000", "2.5000", "1.000"]
    assert rows["random"][1:6] == ["best", "4.0000", "5.0000", "4.5000", "1.800"]
    assert rows["random"][6:] == ["4.0000", "300", "12"]   # searched (median), compute s, evals
    assert rows["start"][1:4] == ["fixed", "10.0000", "4.000"]
    assert "is no worse than any other method's" in text
    # four settings re-run as mean +- 0.1, the reference as 10 +- 1: sqrt((4 * 0.02 + 2) / 5)
    assert "re-run noise: pooled sd 0.6450 over 5 re-trained settings" in text
    # seed 1 is 0.2 above seed 0 for four settings, 2.0 for the fifth: residual sd sqrt(1.296 / 4)
    assert "without the seeds' common effect the sd is 0.5692" in text
    same = make_bench(2.0, 4.0)
    same.reference = bench_real.Retrained({"x": 3.0}, [9.9, 10.1], 0, "start")
    assert bench_real.paired_noise(same) == pytest.approx(0.0, abs=1e-12)
    worse = bench_real.format_table(make_bench(4.0, 2.0), "niqe")
    assert "target: axis's median re-trained value is WORSE than random (2.5000)" in worse


@pytest.mark.parametrize("args, words", [
    (["--methods", "axis,nope"], "--methods: unknown 'nope'"),
    (["--budget", "0"], "--budget: expected a positive number"),
    (["--seeds", "0"], "--seeds: expected a positive integer"),
    (["--study", "no/such.yaml"], "--study: no such file"),
    (["--retrain-seed", "1,x"], "--retrain-seed: expected integers"),
    (["--retrain-seed", "1,1"], "--retrain-seed: a seed given twice"),
    (["--workers", "0"], "--workers: expected a positive integer"),
])
def test_bad_input_is_one_line_with_exit_2_and_nothing_written(tmp_path, capsys, args, words):
    out = tmp_path / "bench"
    assert bench_real.main([*args, "--dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_study_the_runs_cannot_take_is_refused_before_anything_is_written(tmp_path, capsys):
    path = study(tmp_path)
    with open(path) as fh:
        text = fh.read()
    with open(path, "w") as fh:
        fh.write(text.replace("epochs: 3", "epochs: 2"))   # asha-bo's fidelity max is 3
    out = tmp_path / "bench"
    assert bench_real.main(["--study", path, "--dir", str(out)]) == 2
    assert "fidelity.max: expected the study's space.epochs (2)" in capsys.readouterr().err
    assert not out.exists()


def test_workers_sets_how_many_trials_run_at_once_in_every_run_and_re_train(tmp_path, capsys):
    out = str(tmp_path / "bench")
    argv = ["--study", study(tmp_path), "--methods", "axis,random", "--seeds", "1",
            "--budget", "600", "--repeats", "3", "--workers", "3", "--dir", out]
    assert bench_real.main(argv) == 0
    runs = [os.path.join(out, d) for d in ("axis-s0", "random-s0")]
    runs += [os.path.join(out, "retrain", d) for d in os.listdir(os.path.join(out, "retrain"))]
    for run in runs:
        assert history(run).study["config"]["executor"]["max_concurrent"] == 3, run
