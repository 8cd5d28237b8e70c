"""The local quadratic around the base: exact on a bowl, and what it adds to the search."""
from __future__ import annotations

import itertools

import numpy as np

from autotune.searchers.axis.quadratic import IDENTITY, LeastSquares, LocalQuadratic, rank_agreement


def rotated_bowl(p) -> float:
    """A narrow valley along (2, 1, -1): no -1/0/+1 line through a point near it follows it."""
    x = np.asarray(p, dtype=float) - np.array([3.0, 7.0, 4.0])
    along = np.array([2.0, 1.0, -1.0]) / np.sqrt(6.0)
    return float(x @ x - 0.97 * (x @ along) ** 2)


def test_fitted_to_a_bowl_it_names_the_grid_minimum_first():
    shape = (9, 11, 10)
    model = LocalQuadratic(shape)
    base = (6, 6, 3)
    for p in itertools.product(*(range(max(0, b - 2), min(n, b + 3)) for b, n in zip(base, shape))):
        model.set(p, rotated_bowl(p))
    coef = model.fit(base)
    points, pred = model.candidates(base, coef, seed=0)
    every = min(itertools.product(*map(range, shape)), key=rotated_bowl)
    assert tuple(points[0]) == every == (3, 7, 4)       # the model's own minimum, 3 steps away
    assert np.all(np.diff(pred) >= 0)
    assert np.isclose(pred[0], rotated_bowl(every))


def test_a_repeat_replaces_the_points_mean_and_too_few_points_fit_nothing():
    model = LocalQuadratic((5, 5))
    for p in itertools.product(range(3), range(3)):
        model.set(p, 1.0)
    assert model.fit((1, 1)) is None                    # 6 unknowns: 18 points needed
    for p in itertools.product(range(5), range(5)):
        model.set(p, float((p[0] - 2) ** 2 + (p[1] - 1) ** 2))
    model.set((0, 0), 100.0)
    model.set((0, 0), 5.0)                              # the mean after a repeat
    assert len(model._row) == 25
    coef = model.fit((2, 2))
    points, _ = model.candidates((2, 2), coef, seed=0)
    assert tuple(points[0]) == (2, 1)


def test_the_search_reaches_an_oblique_valleys_bottom_through_the_quadratic():
    """With the quadratic's picks the search measures the bottom of the rotated bowl; the
    lines alone (quadratic off) have not by then."""
    with_it, without = first_hit(rotated_bowl), first_hit(rotated_bowl, quadratic=False)
    assert with_it < without


def test_the_search_reaches_a_logged_valleys_bottom_sooner_through_the_warp():
    """The same valley seen through a log (a loss on a log scale): the warped quadratic names
    its bottom; the plain one (quadratic_warp off) is bent by the walls (50 against 119
    evaluations)."""

    def logged(p) -> float:
        return float(np.log1p(50.0 * rotated_bowl(p)))

    assert first_hit(logged) < first_hit(logged, quadratic_warp=False)
    assert first_hit(rotated_bowl) == first_hit(rotated_bowl, quadratic_warp=False)  # exact already


def first_hit(value, **options) -> int:
    """Evaluations until an 8-worker axis search (batches of 8) measures the bowl's bottom."""
    from autotune.searchers import SEARCHERS, Result, SearchSettings
    from autotune.space import parse_space

    space = parse_space({"a": {"values": list(range(9))}, "b": {"values": list(range(11))},
                         "c": {"values": list(range(10))}})
    start = {"a": 8, "b": 0, "c": 9}
    s = SEARCHERS["axis"](SearchSettings(space, 0, 8, 400,
                                         options={"start": start, **options}))
    told = 0
    while not s.finished and told < 400:
        batch = s.ask(8)
        if not batch:
            break
        for sug in batch:
            p = (sug.params["a"], sug.params["b"], sug.params["c"])
            s.tell(Result(sug.trial, "ok", value(p)))
            told += 1
            if p == (3, 7, 4):
                return told
    return 10 ** 6


def test_a_lucky_point_is_judged_with_its_neighbours_under_noise():
    """On a smooth bowl measured with noise, the point whose own two values were luckiest is
    pulled towards what its neighbours say, and the true minimum, measured no better than
    its value, comes out lower."""
    model = LocalQuadratic((9, 9))
    rng = np.random.default_rng(3)
    sigma = 0.5

    def bowl(p):
        return float((p[0] - 4) ** 2 + (p[1] - 4) ** 2) * 0.1

    for p in itertools.product(range(9), range(9)):
        model.set(p, bowl(p) + sigma * rng.normal())
    lucky, truth = (6, 6), (4, 4)
    model.set(lucky, bowl(lucky) - 1.0)     # two unlucky-for-us values, mean 1.0 too low
    model.set(truth, bowl(truth) + 0.2)
    judged_lucky = model.smoothed(lucky, bowl(lucky) - 1.0, 2, sigma)
    judged_truth = model.smoothed(truth, bowl(truth) + 0.2, 2, sigma)
    assert bowl(lucky) - 1.0 < bowl(truth) + 0.2       # by their own means the lucky one wins
    assert judged_truth < judged_lucky                  # judged with the neighbours it does not
    assert model.smoothed(lucky, 1.23, 2, 0.0) == 1.23  # no noise: the mean stands


def judging_error(model: LocalQuadratic, truth, noisy: dict, sigma: float) -> float:
    """Mean absolute error of the judged values against the truth, over every point."""
    return float(np.mean([abs(model.smoothed(p, v, 1, sigma) - truth(p))
                          for p, v in noisy.items()]))


def test_a_point_is_judged_by_a_wider_fit_where_the_landscape_is_smooth(monkeypatch):
    """On a noisy bowl the widest fit averages most noise, so judging with it errs less than
    with the narrowest; on a rugged landscape the fit's misfit leaves each point's own mean
    to decide, whatever the width."""
    from autotune.searchers.axis import quadratic

    rng = np.random.default_rng(5)
    sigma = 0.3
    grid = list(itertools.product(range(10), range(11), range(11)))

    def bowl(p):
        return 0.05 * float((p[0] - 4) ** 2 + 2 * (p[1] - 6) ** 2 + (p[2] - 5) ** 2)

    noisy = {p: bowl(p) + sigma * rng.normal() for p in grid}
    model = LocalQuadratic((10, 11, 11))
    for p, v in noisy.items():
        model.set(p, v)
    probe = dict(itertools.islice(noisy.items(), 0, None, 37))
    wide = judging_error(model, bowl, probe, sigma)
    monkeypatch.setattr(quadratic, "JUDGE_WIDTHS", (3,))
    narrow = judging_error(model, bowl, probe, sigma)
    own = float(np.mean([abs(v - bowl(p)) for p, v in probe.items()]))
    assert wide < 0.8 * narrow < 0.8 * own

    monkeypatch.undo()
    values = {p: 5.0 * rng.normal() for p in grid}          # rugged: no quadratic fits it
    rugged = LocalQuadratic((10, 11, 11))
    for p, v in values.items():
        rugged.set(p, v)
    some = list(values)[::53]
    assert all(abs(rugged.smoothed(p, values[p], 2, 0.1) - values[p]) < 0.01 for p in some)


def _fill_box(model: LocalQuadratic, base, shape, value) -> None:
    for p in itertools.product(*(range(max(0, b - 2), min(n, b + 3)) for b, n in zip(base, shape))):
        model.set(p, value(p))


def test_a_bowl_seen_through_a_log_is_fitted_under_a_warp_that_names_its_bottom_first():
    """log(1 + 50 q) of the rotated bowl: the plain fit, bent by the walls, puts another
    point first; the warped fit (an exponential warp undoes the log) puts the minimum first."""
    shape = (9, 11, 10)
    base = (5, 6, 3)

    def logged(p) -> float:
        return float(np.log1p(50.0 * rotated_bowl(p)))

    model = LocalQuadratic(shape)
    _fill_box(model, base, shape, logged)
    every = min(itertools.product(*map(range, shape)), key=logged)
    plain_first = model.candidates(base, model.fit(base), seed=0)[0][0]
    coef, warp = model.fit_warped(base)
    points, pred = model.candidates(base, coef, seed=0)
    assert warp.strength > 0
    assert tuple(plain_first) != every
    assert tuple(points[0]) == every
    assert pred[0] < float(warp(logged(base)))     # below the base in the warped units too


def test_where_no_warp_orders_the_points_well_the_plain_fit_is_used():
    shape = (7, 7, 7)
    base = (3, 3, 3)
    rng = np.random.default_rng(5)
    rugged = {p: float(rng.normal()) for p in itertools.product(*map(range, shape))}
    model = LocalQuadratic(shape)
    _fill_box(model, base, shape, rugged.__getitem__)
    coef, warp = model.fit_warped(base)
    assert warp == IDENTITY
    assert np.allclose(coef, model.fit(base))
    assert rank_agreement(np.arange(5.0), np.arange(5.0) ** 3) == 1.0


def test_the_bases_neighbours_go_lowest_predicted_first_where_the_quadratic_is_trusted():
    # once the base is a step from the bottom the optimum is one of its 80 neighbours (four
    # axes), which at 50 workers take one and a half waves: a trusted fit names it first
    from autotune.searchers.axis.quadratic import WARP_TRUST
    from .test_axis import drive, make

    s = make("axis", "convex")
    drive(s, "convex", limit=60)
    fit = s._quadratic_fit()
    assert fit is not None and fit[2] >= WARP_TRUST      # a rotated bowl: trusted
    coef, warp, _ = fit
    got = [tuple(x[0]) for x in s.work(400) if x[1]["kind"] == "neighbour"]
    pred = s.quadratic.features(np.asarray(got) - np.asarray(s.base)) @ coef
    below = pred < float(warp(s.store.mean(s.base)))
    k = int(below.sum())
    assert k >= 1 and below[:k].all()                     # those below the base first ...
    assert np.all(np.diff(pred[:k]) >= 0)                 # ... lowest first
    s.neighbour_order = False                             # the same state, level order
    level_order = [tuple(x[0]) for x in s.work(400) if x[1]["kind"] == "neighbour"]
    assert sorted(level_order) == sorted(got) and level_order != got


def test_an_untrusted_fit_leaves_the_neighbours_in_level_order(monkeypatch):
    from .test_axis import drive, make

    s = make("axis", "convex")
    drive(s, "convex", limit=60)
    coef, warp, _ = s._quadratic_fit()
    points = [tuple(x[0]) for x in s.work(400) if x[1]["kind"] == "neighbour"]
    monkeypatch.setattr(s, "_quadratic_fit", lambda: (coef, warp, 0.5))   # a ringed landscape's
    assert s._by_quadratic(points[::-1]) == points[::-1]


def test_points_that_leave_a_cross_term_open_widen_the_fit_instead_of_passing_through_them():
    """The nearest points all on the two axis lines through the base say nothing of the
    cross term: the fit widens to points off the lines and is exact; with no such point
    there is no fit (a least-squares fit through them would look perfectly trusted)."""

    def tilted(p) -> float:
        x, y = p[0] - 5.0, p[1] - 8.0
        return x * x + y * y + 1.5 * x * y

    model = LocalQuadratic((13, 13))
    base = (6, 6)
    for k in range(-6, 7):                       # the two axis lines: 25 points
        model.set((6 + k, 6), tilted((6 + k, 6)))
        model.set((6, 6 + k), tilted((6, 6 + k)))
    assert model.fit(base) is None and model.fit_warped(base) is None
    for p in [(2, 2), (2, 10), (10, 2), (10, 10)]:   # farther than the 18 nearest
        model.set(p, tilted(p))
    coef = model.fit(base)
    off_line = np.array([[1, 1], [-2, 3]])
    assert np.allclose(model.features(off_line) @ coef, [tilted((7, 7)), tilted((4, 9))])
    coef, warp = model.fit_warped(base)
    assert warp == IDENTITY and model.trust > 0.99
    assert np.allclose(model.features(off_line) @ coef, [tilted((7, 7)), tilted((4, 9))])


def test_an_axis_of_two_values_leaves_no_square_term_to_determine():
    """Offsets 0 and 1 make an axis's square its linear term: such a grid still fits."""
    model = LocalQuadratic((2, 9))
    for p in itertools.product(range(2), range(9)):
        model.set(p, float(p[0] + (p[1] - 4) ** 2 + 0.5 * p[0] * p[1]))
    coef = model.fit((0, 4))
    assert coef is not None
    assert np.isclose(model.features(np.array([[1, 2]])) @ coef, 1 + 4 + 0.5 * 6)


def test_one_decomposition_solves_as_lstsq_does_for_every_warp_at_once():
    """The fit under every warp shares one decomposition of its design: its rank is
    matrix_rank's and its coefficients are lstsq's minimum-norm ones (to rounding), for one
    value vector or several, on a design that determines every coefficient and on one that
    leaves some open (an axis of two values: its square is its linear term)."""
    rng = np.random.default_rng(3)
    for shape in ((9, 11, 10), (2, 9, 7)):
        model = LocalQuadratic(shape)
        pts = np.array(list(itertools.product(*map(range, shape))))
        x = model.features(pts[rng.choice(len(pts), 3 * model.unknowns, replace=False)] - 1)
        ys = rng.normal(size=(len(x), 4))
        lsq = LeastSquares(x)
        assert lsq.rank == np.linalg.matrix_rank(x) == model.determinable
        together = lsq.solve(ys)
        for i in range(ys.shape[1]):
            alone, *_ = np.linalg.lstsq(x, ys[:, i], rcond=None)
            assert np.allclose(lsq.solve(ys[:, i]), alone, rtol=1e-9, atol=1e-12)
            assert np.allclose(together[:, i], alone, rtol=1e-9, atol=1e-12)


def test_with_six_parameters_every_point_a_step_from_the_base_is_a_candidate():
    """Six parameters' box of two steps is sampled (15,625 points), but every one of the
    729 points a step away is proposed, and those a step from the model's own minimum:
    an ill-conditioned bowl's lowest grid point may be any of them."""
    shape = (6,) * 6
    model = LocalQuadratic(shape)
    base = (2, 2, 2, 2, 2, 2)
    coef = np.zeros(model.unknowns)
    coef[1 + 6:] = [1.0 if i == j else 0.0 for i, j in model._pairs]   # |x|^2 around base
    points, pred = model.candidates(base, coef, seed=0)
    got = {tuple(int(v) for v in q) for q in points}
    step = {tuple(b + o for b, o in zip(base, off))
            for off in itertools.product((-1, 0, 1), repeat=6)}
    assert step <= got
    assert np.all(np.diff(pred) >= 0)
