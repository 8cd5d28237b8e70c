"""Example and reference objectives shipped with autotune (optional: the engine never imports them).

They live inside the ``autotune`` package so that installing autotune adds one name to
site-packages: a user's own ``jobs/`` or ``demo.py`` can neither shadow them nor be shadowed.

- ``autotune.jobs.demo:objective``: a pretend training run that costs a fraction of a second.
- ``autotune.jobs.ddbpn.train:pretrain`` / ``:finetune``: D-DBPN super-resolution (needs the
  ``ddbpn`` extra: torch, scikit-image, scipy, pillow).

Histories written before the move name ``jobs.demo`` and ``jobs.ddbpn...``; those entry strings
still resolve (see :mod:`autotune.moved`).
"""
