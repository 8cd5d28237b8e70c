"""Optuna's samplers as autotune searchers: ``optuna-tpe`` and ``optuna-cmaes`` (the peers).

They exist so that ``compare`` and the search benchmark can put the axis search beside the
strongest general-purpose alternatives a researcher would reach for, driven through the very
same asynchronous ask/tell protocol, on the user's own study. Optuna is an optional extra
(``pip install -e ".[peers]"``); the engine never imports it unless one of these is chosen.

The space as Optuna sees it: a parameter with a grid (a values list, or a range with
``steps:``) is an integer index over that grid (Optuna's samplers would otherwise treat the
values as unordered categories); a range is a float or int distribution, log where the space
says log. Fixed values stay outside Optuna.

State and restore. One in-memory Optuna study holds a trial per adopted suggestion, in the
order adopted (RUNNING until told, then COMPLETE with the loss, or FAIL). Every draw is made
by a fresh sampler seeded from (study seed, trial id), so what it proposes depends on that
study's trials alone, not on the process history. Live, ``ask`` lets Optuna create the
study's next trial while sampling (a sampler must see the trial it samples for); the
suggestion then carries everything that trial holds beyond its parameters (the sampler's
system attributes: CMA-ES's generation and, after each generation's update, its pickled
optimizer) in ``info["_optuna"]`` (kept in the history, no trajectory column; CMA-ES's
generation is also shown as ``generation``). ``adopt`` takes that trial over when it is the one ``ask`` just made, and
otherwise (resume) creates the same trial from the suggestion: parameters plus those
attributes are all a sampler ever reads back, so both paths leave the same study.

Options (``search:``): n_startup_trials (random draws before the model; Optuna's default),
fidelity (as for random: every trial runs at the top fidelity, so that a multi-fidelity
study can compare), and for optuna-cmaes popsize (Optuna's default 4 + 3 ln d; at least 2).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

from ..errors import StudyError
from ..space import Range, SearchSpace, grid_index
from .base import Result, Searcher, SearchSettings, Suggestion
from .mf_common import parse_fidelity
from .registry import register

EXTRA = 'pip install -e ".[peers]"'


def import_optuna(algorithm: str) -> Any:
    """Optuna, or one clear line (a StudyError: exit status 2) naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise StudyError(f"search.algorithm: {algorithm} needs Optuna, which is not installed; "
                         f"install the peers extra: {EXTRA}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class Encoding:
    """The free parameters as Optuna distributions, and the way back to autotune's params."""

    def __init__(self, space: SearchSpace, optuna: Any):
        dist = optuna.distributions
        self.space = space
        self.grids: dict[str, tuple] = {}
        self.distributions: dict[str, Any] = {}
        for p in space.free:
            grid = p.grid()
            if grid is not None:
                self.grids[p.name] = tuple(grid)
                self.distributions[p.name] = dist.IntDistribution(0, len(grid) - 1)
            elif isinstance(p, Range) and p.integer:
                self.distributions[p.name] = dist.IntDistribution(int(p.low), int(p.high), log=p.log)
            else:
                self.distributions[p.name] = dist.FloatDistribution(float(p.low), float(p.high),
                                                                    log=p.log)

    def params(self, internal: dict[str, Any]) -> dict[str, Any]:
        """Autotune's parameters (fixed ones included, in the space's order) of Optuna's."""
        out = dict(self.space.fixed)
        for name, value in internal.items():
            out[name] = self.grids[name][int(value)] if name in self.grids else value
        return {name: out[name] for name in self.space.params}

    def internal(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """Optuna's view of recorded parameters; None if they lie outside this space."""
        out: dict[str, Any] = {}
        for name, d in self.distributions.items():
            if name not in params:
                return None
            value = params[name]
            if name in self.grids:
                index = grid_index(self.grids[name], value)  # 1 is 1.0; True is not 1
                if index is None:
                    return None
                out[name] = index
            else:
                try:
                    if not d._contains(d.to_internal_repr(value)):
                        return None
                except (TypeError, ValueError):
                    return None
                out[name] = value
        return out


class OptunaPeer(Searcher):
    """The ask/tell bridge; subclasses say which sampler a draw uses."""

    options = {"fidelity": "mapping", "n_startup_trials": "nonneg-int"}  # 0: the model at once

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        self.optuna = import_optuna(self.name)
        opts = settings.options
        self.epochs = None if opts.get("fidelity") is None else parse_fidelity(opts, self.name).max
        self.encoding = Encoding(self.space, self.optuna)
        if not self.encoding.distributions:
            raise StudyError(f"space: {self.name} needs at least one free parameter")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.study = self.optuna.create_study(direction="minimize")
        self.storage = self.study._storage
        self.study_id = self.study._study_id
        self.trial_ids: dict[int, int] = {}       # autotune trial -> Optuna's trial id
        self._made: dict[int, int] = {}           # trials ask has just let Optuna create
        self.told = 0
        self.completed = 0                        # trials Optuna holds as COMPLETE

    def sampler(self, seed: int) -> Any:
        raise NotImplementedError

    def shown(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """What of the sampler's attributes is worth a trajectory column."""
        return {}

    def fixed_space(self, sampler: Any) -> Any:
        """A fresh sampler would recompute the intersection of every trial's distributions
        (a third of a TPE ask at 1,000 trials). Here every trial has the same distributions,
        so that intersection is known: all of them once a trial has completed, none before
        (what Optuna's IntersectionSearchSpace returns). Only where the sampler is built
        the way this relies on; otherwise it is left alone."""
        space = getattr(sampler, "_search_space", None)
        if type(space) is self.optuna.search_space.IntersectionSearchSpace:
            sampler._search_space = _KnownSpace(self)
        return sampler

    def ask(self, n: int) -> list[Suggestion]:
        out = []
        for _ in range(n):
            trial = self.next_trial
            seed = int(self.rng_for(trial).integers(2 ** 31 - 1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.study.sampler = self.fixed_space(self.sampler(seed))
                made = self.study.ask(self.encoding.distributions)
            frozen = self.storage.get_trial(made._trial_id)
            info: dict[str, Any] = {}
            if frozen.system_attrs:
                info["_optuna"] = dict(frozen.system_attrs)
            info.update(self.shown(frozen.system_attrs))
            self._made[trial] = made._trial_id
            out.append(self.suggestion(self.encoding.params(frozen.params),
                                       fidelity=self.epochs, **info))
        return out

    def adopted(self, s: Suggestion) -> None:
        made = self._made.pop(s.trial, None)
        if made is not None:                      # live: the trial ask let Optuna create
            self.trial_ids[s.trial] = made
            return
        internal = self.encoding.internal(s.params)
        if internal is None:                      # a record from another space: not Optuna's
            return
        frozen = self.optuna.trial.create_trial(
            state=self.optuna.trial.TrialState.RUNNING, params=internal,
            distributions=self.encoding.distributions,
            system_attrs=dict(s.info.get("_optuna") or {}))
        self.trial_ids[s.trial] = self.storage.create_new_trial(self.study_id, template_trial=frozen)

    def tell(self, result: Result) -> None:
        trial_id = self.trial_ids.pop(result.trial, None)
        if trial_id is None:
            return
        state = self.optuna.trial.TrialState
        self.told += 1
        if result.ok and math.isfinite(result.loss):
            self.storage.set_trial_state_values(trial_id, state.COMPLETE, [float(result.loss)])
            self.completed += 1
        else:
            self.storage.set_trial_state_values(trial_id, state.FAIL)

    def summary(self) -> dict[str, Any]:
        """The best completed trial (Optuna's pick: the lowest single measurement)."""
        done = self.study.get_trials(deepcopy=False,
                                     states=(self.optuna.trial.TrialState.COMPLETE,))
        if not done:
            return {"told": self.told}
        best = min(done, key=lambda t: t.value)
        return {"told": self.told, "best_loss": best.value,
                "best": self.encoding.params(best.params)}


class _KnownSpace:
    """The intersection search space of a study whose trials all share one set of
    distributions (see OptunaPeer.fixed_space)."""

    def __init__(self, peer: OptunaPeer):
        self.peer = peer

    def calculate(self, study: Any, use_cache: bool = False) -> dict[str, Any]:
        if self.peer.completed == 0:
            return {}
        return dict(sorted(self.peer.encoding.distributions.items()))


@register
class OptunaTPE(OptunaPeer):
    """Optuna's TPESampler, multivariate with the constant liar (for parallel asks)."""

    name = "optuna-tpe"

    def sampler(self, seed: int) -> Any:
        kwargs: dict[str, Any] = {"seed": seed, "multivariate": True, "constant_liar": True}
        if "n_startup_trials" in self.settings.options:
            kwargs["n_startup_trials"] = self.settings.options["n_startup_trials"]
        return self.optuna.samplers.TPESampler(**kwargs)


@register
class OptunaCMAES(OptunaPeer):
    """Optuna's CmaEsSampler (needs the ``cmaes`` package, part of the same extra)."""

    name = "optuna-cmaes"
    options = {**OptunaPeer.options, "popsize": "positive-int"}
    #: CMA-ES recombines the best half of a generation: a generation of one has no half, and
    #: the cmaes package asserts (an AssertionError after the first trial) on its learning rates
    MIN_POPSIZE = 2

    def __init__(self, settings: SearchSettings):
        popsize = settings.options.get("popsize")
        if popsize is not None and popsize < self.MIN_POPSIZE:
            raise StudyError(f"search.popsize: expected at least {self.MIN_POPSIZE} (CMA-ES "
                             f"recombines the best half of each generation), got {popsize}")
        super().__init__(settings)
        try:
            import cmaes  # noqa: F401  (Optuna imports it only when sampling)
        except ImportError:
            raise StudyError(f"search.algorithm: {self.name} needs the cmaes package, which is "
                             f"not installed; install the peers extra: {EXTRA}") from None

    def shown(self, attrs: dict[str, Any]) -> dict[str, Any]:
        generation = attrs.get("cma:generation")
        return {} if generation is None else {"generation": generation}

    def sampler(self, seed: int) -> Any:
        kwargs: dict[str, Any] = {"seed": seed}
        for key in ("n_startup_trials", "popsize"):
            if key in self.settings.options:
                kwargs[key] = self.settings.options[key]
        return self.optuna.samplers.CmaEsSampler(**kwargs)
