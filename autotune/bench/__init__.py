"""Benchmark problems for measuring searchers (optional: the engine never imports them).

- :mod:`autotune.bench.landscapes`: analytic test functions on a grid, with noise and cost
  (entry ``autotune.bench.landscapes:objective``).
- :mod:`autotune.bench.learning_curves`: multi-fidelity problems whose loss follows a learning
  curve over epochs and resumes from checkpoints (entries ``...learning_curves:lc_mlp`` and
  ``:lc_branin``).

Kept apart from the engine so that the engine stays small and a new benchmark never touches it.
Old entry strings ``autotune.benchfuncs:...`` and ``autotune.mfbench:...`` still resolve (see
:mod:`autotune.moved`).
"""
