"""Hyperband (Li et al., JMLR 2018): synchronous successive halving in brackets.

With rungs r_0 < ... < r_K (see mf_common; R = r_K = fidelity.max) one Hyperband iteration
runs the brackets s = K, K-1, ..., 0. Bracket s starts

    n = ceil((K + 1) / (s + 1) * eta**s)

configurations at rung K - s, and at each of its stages i = 0..s evaluates floor(n * eta**-i)
of them at rung K - s + i: the stage waits until every result is in, then promotes the best
floor(n * eta**-(i+1)) (failed ones rank last and are never promoted). With R=81, eta=3:
81 configs at 1 epoch, 34 at 3, 15 at 9, 8 at 27 and 5 at 81. A promotion is a new trial
continuing the configuration's trial at the stage below (parent), so it trains only the
extra epochs.

Options (``search:``):
  fidelity          {min, max, eta}, required
  brackets          how many brackets to run, cycling s = K..0 (default: one iteration, K+1
                    brackets; when max_epochs_total, max_trials or max_compute_s is set they repeat until
                    that budget stops the search)
  overlap           true (default): when every started bracket waits for a stage to fill,
                    free workers start the next bracket (stages stay synchronous inside a
                    bracket); false: one bracket at a time, as in the paper's loop
  max_epochs_total  stop proposing once this many epochs are committed; a new bracket
                    starts only while the budget is not all promised to the unfinished
                    older brackets' remaining stages, and a bracket launches a trial only
                    from the budget its elders do not need: started brackets can finish,
                    only the youngest may be cut short
max_trials (the study's) is shared out the same way: a bracket starts a trial only while
the older brackets' remaining stages leave one over (the trials are counted by id, as the
driver counts them)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import describe
from ..errors import StudyError
from .base import Result, SearchSettings, Suggestion
from .mf_common import INF, MultiFidelitySearcher
from .registry import register


def bracket_plan(top: int, eta: float, s: int) -> list[int]:
    """Configurations at each stage of bracket ``s`` (top = K = s_max)."""
    n0 = int(math.ceil((top + 1) / (s + 1) * eta ** s - 1e-9))
    return [max(1, int(math.floor(n0 * eta ** -i + 1e-9))) for i in range(s + 1)]


@dataclass
class Bracket:
    index: int                         # 0, 1, 2, ... in the order started
    s: int                             # successive-halving aggressiveness; stages 0..s
    plan: list[int]                    # configurations per stage
    stage: int = 0
    fresh: int = 0                     # stage 0: new configurations still to launch
    queue: list[int] = field(default_factory=list)      # later stages: configs to launch
    launched: list[int] = field(default_factory=list)   # trial ids of this stage
    waiting: int = 0                   # launched, not yet told
    done: bool = False


@register
class HyperbandSearcher(MultiFidelitySearcher):
    name = "hyperband"
    options = {"fidelity": "mapping", "brackets": "positive-int", "overlap": "bool",
               "max_epochs_total": "positive-number"}

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        opts = settings.options
        limit = opts.get("brackets")
        if limit is not None and not (isinstance(limit, int) and limit > 0):
            raise StudyError(f"search.brackets: expected a positive integer, got {describe(limit)}")
        if (limit is None and self.budget is None and settings.max_trials is None
                and settings.max_compute_s is None):
            limit = self.fidelity.top + 1          # one Hyperband iteration
        self.limit: int | None = limit             # None: until a budget stops the search
        self.overlap = bool(opts.get("overlap", True))
        self.brackets: list[Bracket] = []

    # ---- arithmetic -----------------------------------------------------------------------
    def bracket_s(self, index: int) -> int:
        top = self.fidelity.top
        return top - index % (top + 1)

    def first_rung(self, b: Bracket) -> int:
        return self.fidelity.top - b.s

    def most_new(self) -> int | None:
        """With a bracket limit, no more new configurations than its brackets start."""
        bounds = [n for n in (super().most_new(), self.planned_new()) if n is not None]
        return min(bounds) if bounds else None

    def planned_new(self) -> int | None:
        """New configurations the ``brackets`` limit plans (None: no limit)."""
        if self.limit is None:
            return None
        cycle = self.fidelity.top + 1          # the brackets' plans repeat every iteration
        starts = [self.make_bracket(i).plan[0] for i in range(min(cycle, self.limit))]
        whole, part = divmod(self.limit, cycle)
        return whole * sum(starts) + sum(starts[:part]) if whole else sum(starts)

    def first_to_top(self) -> list[int]:
        """The first bracket's plan: it starts at the bottom rung and is served first."""
        return bracket_plan(self.fidelity.top, self.fidelity.eta, self.fidelity.top)

    def until(self) -> str:
        if self.settings.max_trials is None and self.budget is None and self.limit is not None:
            return ("its bracket has started" if self.limit == 1
                    else f"its {self.limit} brackets have started")
        return super().until()

    # ---- ask ------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Suggestion]:
        out: list[Suggestion] = []
        for index in range(len(self.brackets)):
            self.launch(index, n, out)
        while len(out) < n and self.budget_left() and self.may_start():
            before = len(out)
            self.launch(len(self.brackets), n, out)   # the first launch adopts the bracket
            if len(out) == before:
                break
        return out

    def may_start(self) -> bool:
        if self.limit is not None and len(self.brackets) >= self.limit:
            return False
        if not self.affordable(len(self.brackets)):
            return False  # what is left of the budget is promised to the running brackets
        return self.overlap or all(b.done for b in self.brackets)

    def affordable(self, index: int) -> bool:
        """May bracket ``index`` start another trial? Not if the older brackets' remaining
        stages need what is left of ``max_epochs_total`` or of ``max_trials``: started
        brackets are served in order, so a younger one started by free workers (overlap)
        cannot take the trials an older one needs to reach the top rung."""
        older = [b for b in self.brackets[:index] if not b.done]
        limit = self.settings.max_trials
        if limit is not None and self.next_trial + sum(map(self.remaining_trials, older)) >= limit:
            return False
        if self.budget is None:
            return True
        return self.committed + sum(map(self.remaining, older)) < self.budget

    def stage_epochs(self, b: Bracket, stage: int) -> int:
        """Epochs one trial of ``stage`` trains (promotions: only the extra ones)."""
        k = self.first_rung(b) + stage
        return self.fidelity.rungs[k] - (self.fidelity.rungs[k - 1] if stage else 0)

    def remaining(self, b: Bracket) -> int:
        """Epochs bracket ``b`` will still commit if every stage fills (an upper bound)."""
        total = (b.fresh + len(b.queue)) * self.stage_epochs(b, b.stage)
        return total + sum(b.plan[i] * self.stage_epochs(b, i) for i in range(b.stage + 1, b.s + 1))

    def remaining_trials(self, b: Bracket) -> int:
        """Trials bracket ``b`` will still start if every stage fills (an upper bound)."""
        return b.fresh + len(b.queue) + sum(b.plan[i] for i in range(b.stage + 1, b.s + 1))

    def make_bracket(self, index: int) -> Bracket:
        s = self.bracket_s(index)
        plan = bracket_plan(self.fidelity.top, self.fidelity.eta, s)
        return Bracket(index, s, plan, fresh=plan[0])

    def launch(self, index: int, n: int, out: list[Suggestion]) -> None:
        """Trials of bracket ``index``'s current stage, while it has some to start."""
        while len(out) < n and self.budget_left() and self.affordable(index):
            b = self.brackets[index] if index < len(self.brackets) else self.make_bracket(index)
            info = {"bracket": b.index, "stage": b.stage, "s": b.s}
            rung = self.first_rung(b) + b.stage
            if b.stage == 0 and b.fresh > 0:
                params, repeat = self.new_params(self.rng_for(self.next_trial))
                out.append(self.propose(None, rung, params, **info, **repeat))
            elif b.stage > 0 and b.queue:
                out.append(self.propose(b.queue[0], rung, **info))
            else:
                return

    def adopted_run(self, s: Suggestion, run, before) -> None:
        while len(self.brackets) <= run.bracket:
            self.brackets.append(self.make_bracket(len(self.brackets)))
        b = self.brackets[run.bracket]
        if before is None:
            b.fresh = max(0, b.fresh - 1)
        elif run.config in b.queue:
            b.queue.remove(run.config)
        b.launched.append(s.trial)
        b.waiting += 1

    def tell(self, result: Result) -> None:
        run = self.record(result)
        if run is None:
            return
        b = self.brackets[run.bracket]
        b.waiting -= 1
        if b.waiting == 0 and not b.queue and not b.fresh:
            self.advance(b)

    def advance(self, b: Bracket) -> None:
        """The stage is complete: promote its best to the next stage, or close the bracket."""
        if b.stage == b.s:
            b.done = True
            return
        ranked = sorted((self.runs[t].loss, self.runs[t].config) for t in b.launched)
        keep = b.plan[b.stage + 1]
        chosen = [config for loss, config in ranked[:keep] if loss < INF]
        if not chosen:
            b.done = True
            return
        b.stage += 1
        b.queue = chosen
        b.launched = []

    # ---- state ----------------------------------------------------------------------------
    @property
    def bounded(self) -> bool:
        """Its brackets are limited (by default, without any budget, to one iteration)."""
        return self.limit is not None or super().bounded

    @property
    def finished(self) -> bool:
        if not self.budget_left():
            return True
        if self.limit is None or len(self.brackets) < self.limit:
            return False
        return all(b.done for b in self.brackets)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out["brackets"] = [{"index": b.index, "s": b.s, "plan": b.plan, "stage": b.stage,
                            "done": b.done} for b in self.brackets]
        return out
