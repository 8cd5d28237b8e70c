"""ASHA with Bayesian optimisation of new configurations, BOHB-style (Falkner et al. 2018).

Promotions follow ASHA exactly (see asha.py). A new configuration is drawn at random with
probability ``random_fraction``, and otherwise from a TPE/KDE model (autotune.tpe): the
model is fitted on the highest rung that has at least ``min_points_in_model`` ok results
(default: free parameters + 2), l(x) on its best ``gamma`` share and g(x) on the rest
(failed trials count as bad); ``candidates`` draws from l with bandwidths widened by
``bandwidth_factor`` are scored and the one maximising l(x)/g(x) is taken. Until a rung has
enough results every new configuration is random. In a finite space the model's pick is its
best candidate not yet started this round (every setting once before any twice, as for the
random draws); when all its candidates were, the configuration is a random unused setting.

Options (``search:``): fidelity (required), max_epochs_total, random_fraction (1/3),
min_points_in_model (d+2), gamma (0.15), candidates (64), bandwidth_factor (3),
min_bandwidth (0.01).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..config import describe
from ..errors import StudyError
from ..tpe import Encoder, TPEModel
from .asha import ASHASearcher
from .base import SearchSettings
from .mf_common import INF, check_fraction
from .registry import register


@register
class ASHABOSearcher(ASHASearcher):
    name = "asha-bo"
    options = {"fidelity": "mapping", "max_epochs_total": "positive-number",
               "random_fraction": "number", "min_points_in_model": "positive-int",
               "gamma": "number", "candidates": "positive-int",
               "bandwidth_factor": "positive-number", "min_bandwidth": "positive-number"}

    def __init__(self, settings: SearchSettings):
        super().__init__(settings)
        opts = settings.options
        self.encoder = Encoder(self.space)
        self.random_fraction = check_fraction(opts, "random_fraction", 1.0 / 3.0)
        self.gamma = check_fraction(opts, "gamma", 0.15)
        if self.gamma <= 0.0:
            raise StudyError("search.gamma: expected a number above 0 and at most 1, got 0")
        self.min_points = opts.get("min_points_in_model", self.encoder.dims + 2)
        self.candidates = opts.get("candidates", 64)
        self.widen = float(opts.get("bandwidth_factor", 3.0))
        self.min_bw = float(opts.get("min_bandwidth", 0.01))
        if not 0 < self.min_bw <= 1:
            raise StudyError(f"search.min_bandwidth: expected a number in (0, 1], got "
                             f"{describe(opts.get('min_bandwidth'))}")
        self.ok_at = [0] * len(self.fidelity.rungs)          # ok results per rung
        self.model_picks = 0
        self.random_picks = 0
        self.model_rungs: dict[int, int] = {}
        self._model: tuple | None = None     # ((rung, results), TPEModel): a cache, not state
        self._encoded: dict[int, tuple] = {}

    def model_rung(self) -> int | None:
        if self.encoder.dims == 0:
            return None
        for rung in range(self.fidelity.top, -1, -1):
            if self.ok_at[rung] >= self.min_points:
                return rung
        return None

    def sample_new(self) -> tuple[dict[str, Any], dict[str, Any]]:
        rng = self.rng_for(self.next_trial)
        explore = rng.random() < self.random_fraction
        rung = None if explore else self.model_rung()
        params = None if rung is None else self.model_pick(rung, rng)
        if params is None:
            params, info = self.new_params(rng)
            return params, {"source": "random", **info}
        return params, {"source": "model", "model_rung": rung, **self.repeat_info(params)}

    def model_pick(self, rung: int, rng: np.random.Generator) -> dict[str, Any] | None:
        """The model's best candidate; in a finite space its best one not yet started this
        round (None when every candidate was: a random unused setting is drawn instead)."""
        model = self.model(rung)
        if self.rounds is None:
            return model.propose(rng, self.candidates, self.widen)
        ranked = model.ranked(rng, self.candidates, self.widen)
        return next((params for params in ranked if self.rounds.fresh(params)), None)

    def adopted_run(self, s, run, before) -> None:
        super().adopted_run(s, run, before)
        if before is not None:
            return
        if s.info.get("source") == "model":
            self.model_picks += 1
            rung = int(s.info.get("model_rung", 0))
            self.model_rungs[rung] = self.model_rungs.get(rung, 0) + 1
        else:
            self.random_picks += 1

    def model(self, rung: int) -> TPEModel:
        """The model of ``rung``'s results, refitted only when they changed."""
        key = (rung, len(self.ranked[rung]))
        if self._model is None or self._model[0] != key:
            ranked = self.ranked[rung]
            points = [self.configs[config] for _, config in ranked]
            encoded = [self.encoded(config) for _, config in ranked]
            self._model = (key, TPEModel(self.encoder, points, [loss for loss, _ in ranked],
                                         self.gamma, self.min_bw, encoded))
        return self._model[1]

    def encoded(self, config: int):
        if config not in self._encoded:
            self._encoded[config] = self.encoder.encode(self.configs[config])
        return self._encoded[config]

    def observed(self, run) -> None:
        if run.loss < INF and math.isfinite(run.loss):
            self.ok_at[run.rung] += 1

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out.update({"model_picks": self.model_picks, "random_picks": self.random_picks,
                    "model_rungs": {self.fidelity.rungs[k]: v for k, v in sorted(self.model_rungs.items())}})
        return out
