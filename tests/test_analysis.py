"""Figures read through the trials DataFrame agree with the history they come from."""
import pytest

import autotune as at
from autotune import analysis
from autotune.bench import learning_curves


@pytest.fixture(scope="module")
def asha(tmp_path_factory):
    """A multi-fidelity run: short rungs must not count as results."""
    mapping = learning_curves.study_mapping(
        "lc-branin", "asha", {"seed": 3, "fidelity": {"min": 1, "max": 9, "eta": 3},
                              "max_epochs_total": 150}, workers=4)
    return at.Study(mapping, dir=str(tmp_path_factory.mktemp("a") / "s")).run(progress=False)


def test_the_frame_marks_only_full_length_successes_as_counting(asha):
    df = asha.trials_dataframe()
    assert set(df.loc[df["counts"], "epochs"]) == {9}
    assert (df["epochs"] < 9).any() and not df.loc[df["epochs"] < 9, "counts"].any()
    assert df["end_s"].tolist() == [asha.history.trials[t].end_s for t in df["trial"]]  # unrounded


def test_best_curve_and_incumbents_follow_the_counted_trials(asha):
    df, h = asha.trials_dataframe(), asha.history
    full = sorted((r.end_s, r.trial, r.value) for r in h.trials.values() if h.counts_for_best(r))
    times, bests = analysis.best_curve(df)
    assert list(times) == [t for t, _, _ in full]
    running = [min(v for _, _, v in full[:i + 1]) for i in range(len(full))]
    assert list(bests) == running
    expected, best = [], None
    for _, trial, value in full:
        if best is None or value < best:
            expected.append(trial)
            best = value
    assert analysis.incumbents(df)["trial"].tolist() == expected
    assert bests[-1] == asha.best.value


def test_compute_concurrency_and_figures(asha):
    df, h = asha.trials_dataframe(), asha.history
    ended = [r for r in h.trials.values() if r.end_s is not None]
    t = sorted(r.end_s for r in ended)[len(ended) // 2]
    assert analysis.compute_at(df, [t])[0] == pytest.approx(
        sum(r.cost_s for r in ended if r.end_s <= t))
    times, running = analysis.concurrency(df)
    at_t = max(i for i, x in enumerate(times) if x <= t)
    assert running[at_t] == sum(1 for r in ended if r.start_s <= t < r.end_s)
    assert max(running) <= 4 and running[-1] == 0
    fig = analysis.figures(df, workers=4)
    assert fig.evaluations == len(ended) and fig.best == asha.best.value
    assert fig.compute_s == pytest.approx(sum(r.cost_s for r in ended))
    assert 0 < fig.slot_use <= 1
    first = min(r.end_s for r in ended if h.counts_for_best(r) and r.value == fig.best)
    assert fig.evaluations_to_best == sum(1 for r in ended if r.end_s <= first)
