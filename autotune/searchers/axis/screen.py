"""Successive halving inside the axis search: screen new points with short runs.

With ``search.fidelity: {min, max, eta}`` the ``axis`` search measures a point it has not
measured before in steps, like ASHA does a configuration: first a short run at the bottom
rung (``min`` epochs), then, if that result is promising, a continuation to the next rung
from its checkpoint (the trial's ``parent``), and so on up to ``max``. Only a point that
reaches ``max`` gets a value the line searches and the base see; one that falls out on the
way counts as measured without a value (like a failed point), so the lines move on without
paying for its full length.

A result at rung r passes (the point goes on to rung r + 1) when it is

* among the best ceil(n / eta) of the n results rung r has had so far (itself included:
  the first result of a rung always passes), or
* no worse than the current base's own result at rung r (the base reached ``max`` through
  the same rungs), or the base has none to compare with.

The first test keeps the search honest where short runs rank points differently from long
ones; the second makes sure nothing that looks like a move is screened out.

Two kinds of run skip the screen and train the full length from scratch: repeats (the noise
probe, ``repeats``, second measurements of challengers: they are there to measure the noise
of the final value), and points a line's fitted d-Spline predicts to beat the base. Those
are the likely moves: most would pass anyway, and a noisy short run that drops one can cost
the search its best point (on the lc-branin benchmark screening them too ended worse in 4
of 10 seeds, for 0.26 instead of 0.64 of the compute; scripts/bench_axis_mf.py).

The decision is taken when the result arrives, from results alone, so a replayed search
takes the same decisions.
"""
from __future__ import annotations

import bisect
import math
from typing import Any

from ..mf_common import Fidelity
from .directions import Point


class Screening:
    """Which trials are short screens, their results per rung, and promotions waiting."""

    def __init__(self, fidelity: Fidelity):
        self.fidelity = fidelity
        self.ranked: list[list[float]] = [[] for _ in fidelity.rungs]   # per rung, sorted
        self.by_point: dict[Point, dict[int, float]] = {}              # rung -> value
        self.chain: dict[Point, dict[int, int]] = {}                   # rung -> trial id
        self.trial_rung: dict[int, int] = {}
        self.waiting: list[tuple[Point, int]] = []                     # (point, next rung)
        self.dropped: dict[Point, int] = {}                            # point -> rung it fell at
        self.screens = 0                                               # short runs told
        self.epochs = 0                                                # epochs proposed

    @property
    def top(self) -> int:
        return self.fidelity.top

    def epochs_at(self, rung: int) -> int:
        return self.fidelity.rungs[rung]

    def started(self, trial: int, p: Point, rung: int) -> None:
        """Record a trial of ``p`` at ``rung`` (continuing its run at rung - 1, if any)."""
        chain = self.chain.setdefault(p, {})
        done = self.epochs_at(rung - 1) if rung > 0 else 0
        chain[rung] = trial
        self.trial_rung[trial] = rung
        self.epochs += self.epochs_at(rung) - done

    def started_full(self) -> None:
        """A full-length run from scratch (a repeat) was proposed."""
        self.epochs += self.fidelity.max

    def is_screen(self, trial: int) -> bool:
        """Is this trial a short run (below the top rung)?"""
        rung = self.trial_rung.get(trial)
        return rung is not None and rung < self.top

    def judge(self, trial: int, p: Point, value: float, base: Point | None) -> bool:
        """Take in a short run's value; True when ``p`` goes on to the next rung."""
        rung = self.trial_rung[trial]
        ranked = self.ranked[rung]
        bisect.insort(ranked, value)
        self.by_point.setdefault(p, {})[rung] = value
        self.screens += 1
        keep = math.ceil(len(ranked) / self.fidelity.eta)
        theirs = None if base is None else self.by_point.get(base, {}).get(rung)
        passed = (bisect.bisect_left(ranked, value) < keep or theirs is None
                  or value <= theirs)
        if passed:
            self.waiting.append((p, rung + 1))
        else:
            self.dropped[p] = rung
        return passed

    def summary(self) -> dict[str, Any]:
        fell = [0] * len(self.fidelity.rungs)
        for rung in self.dropped.values():
            fell[rung] += 1
        return {"rungs": list(self.fidelity.rungs), "eta": self.fidelity.eta,
                "screens": self.screens, "screened_out_per_rung": fell[:-1],
                "epochs_proposed": self.epochs}
