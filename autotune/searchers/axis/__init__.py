"""The axis searches: the AT study's line searches along directions of the index grid.

``s2018`` (the sequential method), ``radial`` (the study's parallel rounds) and ``search``
(``axis``, autotune's asynchronous default) share the pieces below, one idea a module:
directions, the index grid, the options and first points, the store of measurements, one
line search, and the ask/tell skeleton (base). ``screen`` adds successive halving to ``axis``.
"""
from . import radial, s2018, search  # noqa: F401  (each registers its searcher)
