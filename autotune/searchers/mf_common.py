"""Shared pieces of the multi-fidelity searchers (hyperband, asha, asha-bo).

The fidelity is the number of (fine-tune) epochs a trial trains; the study file gives it as
``fidelity: {min: 1, max: 81, eta: 3}``. The rungs are the fidelities a configuration can be
evaluated at: ``max * eta**-i`` for i = K..0, rounded to whole epochs, where
``K = floor(log_eta(max / min))``; the top rung is always ``max`` (what random search runs
every draw at), the bottom one is at least ``min``. With min 1, max 81, eta 3: 1, 3, 9, 27, 81.

A promotion continues the configuration's previous rung trial from its checkpoint, so it
costs only the extra epochs; ``max_epochs_total`` caps the sum of those costs (epochs
committed by the trials proposed so far), which is how a benchmark gives every algorithm
the same compute.

In a finite space (grids, ``steps:``, int ranges) new configurations are drawn round by round
(finite.Rounds): every setting is started once before any is started twice, and a budget that
goes past the space starts them again, each a new configuration with its own seed (``repeat``
in its info), as random search does; the run says so at its start.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import check, describe, is_finite, is_number, reject_unknown
from ..errors import StudyError
from .base import Result, Searcher, SearchSettings, Suggestion
from .finite import Rounds

FIDELITY_KEYS = ["min", "max", "eta"]
MAX_STEPS = 1000  # divisions by eta from max down to min (rungs before equal ones merge)
INF = float("inf")


@dataclass(frozen=True)
class Fidelity:
    min: int
    max: int
    eta: float
    rungs: tuple[int, ...]            # ascending epochs; rungs[-1] == max

    @property
    def top(self) -> int:
        """Index of the top rung (K)."""
        return len(self.rungs) - 1


def rung_epochs(low: int, high: int, eta: float) -> tuple[int, ...]:
    """The rung fidelities, anchored at ``high``: high * eta**-i, i = K..0, rounded."""
    top = int(math.floor(math.log(high / low) / math.log(eta) + 1e-9))
    out: list[int] = []
    for i in range(top, -1, -1):
        epochs = max(low, int(round(high * eta ** -i)))
        if not out or epochs > out[-1]:
            out.append(epochs)
    return tuple(out)


def parse_fidelity(options: dict[str, Any], algorithm: str) -> Fidelity:
    """Read and check ``search.fidelity``; every mistake is one line naming the key."""
    raw = options.get("fidelity")
    where = "search.fidelity"
    if raw is None:
        raise StudyError(f"{where}: missing ({algorithm} needs {{min: .., max: .., eta: ..}}, the "
                         "epochs of the lowest and highest rung and the reduction factor)")
    if not isinstance(raw, dict):
        raise StudyError(f"{where}: expected a mapping {{min, max, eta}}, got {describe(raw)}")
    reject_unknown(raw, FIDELITY_KEYS, where)
    for key in ("min", "max"):
        if key not in raw or raw[key] is None:
            raise StudyError(f"{where}.{key}: missing (expected a positive integer, epochs)")
        check(raw[key], "positive-int", f"{where}.{key}")  # a whole float: says to write the int
    low, high = raw["min"], raw["max"]
    if high < low:
        raise StudyError(f"{where}.max: expected at least min ({low}), got {high}")
    eta = raw.get("eta", 3)
    if not (is_number(eta) and is_finite(eta) and eta > 1):
        raise StudyError(f"{where}.eta: expected a number > 1, got {describe(eta)}")
    check_steps(low, high, float(eta), where)
    return Fidelity(low, high, float(eta), rung_epochs(low, high, float(eta)))


def check_steps(low: int, high: int, eta: float, where: str) -> None:
    """Refuse an eta so close to 1 that max takes more than MAX_STEPS divisions by eta to
    reach min: the rungs are computed one division at a time, so such an eta (a typo for
    1.5, say) would hang the run before its first line."""
    span = math.log(high) - math.log(low)
    steps = math.floor(span / math.log(eta) + 1e-9)     # as rung_epochs counts them
    if steps > MAX_STEPS:
        least = math.ceil(math.exp(span / (MAX_STEPS + 1)) * 1e6) / 1e6
        raise StudyError(f"{where}.eta: {eta!r} is too close to 1: max ({high}) reaches min "
                         f"({low}) only after {steps:,} divisions by eta, more than "
                         f"{MAX_STEPS:,}; expected {least:g} or more")


def parse_budget(options: dict[str, Any]) -> float | None:
    budget = options.get("max_epochs_total")
    if budget is not None and not (is_number(budget) and is_finite(budget) and budget > 0):
        raise StudyError(f"search.max_epochs_total: expected a positive number, got {describe(budget)}")
    return None if budget is None else float(budget)


def check_fraction(options: dict[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if not (is_number(value) and 0.0 <= value <= 1.0):
        raise StudyError(f"search.{key}: expected a number from 0 to 1, got {describe(value)}")
    return float(value)


def top_count(n: int, eta: float) -> int:
    """How many of ``n`` results form the top 1/eta of a rung: floor(n / eta)."""
    return int(math.floor(n / eta + 1e-9))


@dataclass
class Run:
    """One proposed trial as the searcher sees it."""

    config: int
    rung: int                          # index into Fidelity.rungs
    epochs: int                        # extra epochs this trial trains (its compute)
    bracket: int = 0
    loss: float | None = None          # set when told; inf for failed/cancelled


class MultiFidelitySearcher(Searcher):
    """Configurations, the trials that evaluate them at each rung, and the epoch budget."""

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        opts = settings.options
        self.fidelity = parse_fidelity(opts, self.name)
        self.budget = parse_budget(opts)
        self.configs: list[dict[str, Any]] = []
        self.runs: dict[int, Run] = {}                     # trial id -> run
        self.trial_at: list[dict[int, int]] = []           # config -> {rung: trial id}
        self.committed = 0.0                               # epochs proposed so far
        self.told = 0
        self.failed = 0
        self.rounds = Rounds.of(self.space)              # None: a continuous range

    # ---- new configurations ---------------------------------------------------------------
    def new_params(self, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
        """A random new configuration and its info: in a finite space one not yet started
        this round, so a small grid is not sampled with replacement."""
        if self.rounds is None:
            return self.space.sample(rng), {}
        params = self.rounds.draw(rng)
        return params, self.repeat_info(params)

    def repeat_info(self, params: dict[str, Any]) -> dict[str, Any]:
        """``repeat``: how many times this setting was started before (only when it was)."""
        done = 0 if self.rounds is None else self.rounds.times(params)
        return {"repeat": done} if done else {}

    def most_new(self) -> int | None:
        """An upper bound on the new configurations the limits let this search start (None:
        unbounded): one per trial, and each costs at least the bottom rung's epochs."""
        bounds = []
        if self.settings.max_trials is not None:
            bounds.append(self.settings.max_trials)
        if self.budget is not None:
            bounds.append(math.ceil(self.budget / self.fidelity.rungs[0]))
        return min(bounds) if bounds else None

    def until(self) -> str:
        """What ends the starting of new configurations, in words for the notice."""
        epochs = () if self.budget is None else (f"max_epochs_total ({self.budget:g})",)
        return Rounds.until(self.settings, *epochs)

    @property
    def notice(self) -> str:
        """Said at the start of a run that may start more configurations than a finite space
        holds: they will be started again."""
        if self.rounds is None:
            return ""
        most = self.most_new()
        if most is not None and most <= self.rounds.size:
            return ""
        return self.rounds.notice(self.name, "starts", "a new configuration", self.until())

    # ---- can the limits reach max? --------------------------------------------------------
    def first_to_top(self) -> list[int]:
        """The fewest trials at each rung that take a first configuration to the top one. ASHA
        promotes m configurations from a rung only once it has m * eta results there."""
        counts = [1]
        for _ in range(self.fidelity.top):
            counts.insert(0, math.ceil(counts[0] * self.fidelity.eta - 1e-9))
        return counts

    @property
    def warning(self) -> str:
        """Said at the start of a run whose max_trials or max_epochs_total cannot take any
        configuration to max: every result would be short, and only full-length results
        count as best, so the run would end with none."""
        counts = self.first_to_top()
        rungs = self.fidelity.rungs
        steps = [e - (rungs[i - 1] if i else 0) for i, e in enumerate(rungs)]
        epochs = sum(n * step for n, step in zip(counts, steps))
        short = []
        limit = self.settings.max_trials
        if limit is not None and limit < sum(counts):
            short.append(f"max_trials ({limit}) is fewer than the {sum(counts)} trials")
        if self.budget is not None and self.budget <= epochs - steps[-1]:  # proposing stops there
            short.append(f"max_epochs_total ({self.budget:g}) is less than the {epochs} epochs")
        plan = ", ".join(f"{n} at {e}" for n, e in zip(counts, rungs))
        if not short:
            return self._crowded_warning(counts, plan)
        return (f"{' and '.join(short)} {self.name} needs to take a first configuration to max "
                f"({self.fidelity.max} epochs: {plan}): no result will be full length, and "
                "only full-length results count as best")

    #: whether new configurations start while a promotion waits for results (ASHA: every free
    #: worker takes one), rather than the first bracket being served first (Hyperband)
    starts_while_promoting = False

    def _crowded_warning(self, counts: list[int], plan: str) -> str:
        """Said where max_trials covers the trials one at a time takes to max but not what
        parallel workers cost: ASHA starts a new configuration on every free worker while a
        promotion waits for the result it needs, so each rung on the way up takes about
        workers - 1 trials more. Measured with results in random order (eta 3, 1-9 epochs,
        30 runs): at exactly the one-at-a-time count of 13, 4 workers took a configuration to
        max in 1 run, 8 workers in none; with the allowance, in 23 and 26 (the 4-worker case
        is a test in tests/test_mf_searchers.py)."""
        limit, workers = self.settings.max_trials, self.settings.workers
        if not self.starts_while_promoting or limit is None or workers <= 1:
            return ""
        need = sum(counts) + (workers - 1) * self.fidelity.top
        if limit >= need:
            return ""
        return (f"max_trials ({limit}) leaves {self.name} little room to take a configuration "
                f"to max ({self.fidelity.max} epochs): one trial at a time needs {sum(counts)} "
                f"({plan}), but with {workers} at once it starts new configurations while a "
                f"promotion waits for results, about {workers - 1} more per rung "
                f"({need} in all): the run may end with no full-length result, and only "
                "full-length results count as best")

    # ---- budget ---------------------------------------------------------------------------
    def budget_left(self) -> bool:
        return self.budget is None or self.committed < self.budget

    @property
    def bounded(self) -> bool:
        return self.budget is not None

    @property
    def finished(self) -> bool:
        """Only a spent ``max_epochs_total`` ends ASHA (else the driver's max_trials does)."""
        return not self.budget_left()

    # ---- proposals ------------------------------------------------------------------------
    def new_config(self, params: dict[str, Any]) -> int:
        self.configs.append(params)
        self.trial_at.append({})
        return len(self.configs) - 1

    def propose(self, config: int | None, rung: int, params: dict[str, Any] | None = None,
                bracket: int = 0, **info: Any) -> Suggestion:
        """A trial evaluating ``config`` at ``rung``, continuing its trial at the rung below;
        ``config`` None: a new configuration, ``params``, starting at ``rung``."""
        parent = None
        if config is not None:
            params = dict(self.configs[config])
            below = [r for r in self.trial_at[config] if r < rung]
            if below:
                parent = self.trial_at[config][max(below)]
        else:
            config = len(self.configs)   # the number adopt gives it
        return self.suggestion(params, fidelity=self.fidelity.rungs[rung], parent=parent,
                               round=rung, rung=rung, bracket=bracket, config=config, **info)

    def adopted(self, s: Suggestion) -> None:
        """A configuration's trial at a rung: a continuation of its parent's configuration,
        or a new configuration; the epochs it adds are committed."""
        rungs = self.fidelity.rungs
        rung = rungs.index(s.fidelity) if s.fidelity in rungs else int(s.info.get("rung", 0))
        before = self.runs.get(s.parent) if s.parent is not None else None
        config = before.config if before is not None else self.new_config(dict(s.params))
        if before is None and self.rounds is not None:
            self.rounds.count(s.params)
        done = rungs[before.rung] if before is not None else 0
        run = Run(config, rung, rungs[rung] - done, int(s.info.get("bracket", 0)))
        self.runs[s.trial] = run
        self.trial_at[config][rung] = s.trial
        self.committed += run.epochs
        self.adopted_run(s, run, before)

    def adopted_run(self, s: Suggestion, run: "Run", before: "Run | None") -> None:
        """Hook for subclasses: ``run`` was proposed (``before``: the run it continues)."""

    def record(self, result: Result) -> Run | None:
        """Store a result's loss (inf when it failed); None for a trial not ours."""
        run = self.runs.get(result.trial)
        if run is None or run.loss is not None:
            return None
        loss = float(result.loss) if result.ok and math.isfinite(result.loss) else INF
        run.loss = loss
        self.told += 1
        if loss == INF:
            self.failed += 1
        return run

    def summary(self) -> dict[str, Any]:
        per_rung = [0] * len(self.fidelity.rungs)
        for run in self.runs.values():
            per_rung[run.rung] += 1
        best = None
        top = [(r.loss, t) for t, r in self.runs.items()
               if r.rung == self.fidelity.top and r.loss is not None and r.loss < INF]
        if top:
            loss, trial = min(top)
            best = {"trial": trial, "loss": loss, "params": self.configs[self.runs[trial].config]}
        return {"rungs": list(self.fidelity.rungs), "eta": self.fidelity.eta,
                "configurations": len(self.configs), "trials_per_rung": per_rung,
                "epochs_committed": self.committed, "max_epochs_total": self.budget,
                "failed": self.failed, "best_at_max_fidelity": best}
