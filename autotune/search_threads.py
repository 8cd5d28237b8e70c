"""One BLAS thread while a searcher computes, however many cores the machine has.

The searchers' arithmetic is many small solves (least squares over a few dozen rows,
predictions over a grid of some thousand points). OpenBLAS starts a thread per core, and
after each call its idle threads spin for a while waiting for the next one: on a 2-core
machine an 8-parameter axis study of 1,500 simulated trials used 4.9 s of CPU against 2.7 s
with one thread, in the same wall time; on a login node of 64 cores the driver would keep
all of them busy, where a shared login node's rules (and its other users) expect one.

The limit is set through the library (threadpoolctl), not the environment, and holds only
while the searcher works: trial processes never see it, and an objective run in the
driver's own process (the inline executor, ``Study.optimize`` without one) keeps every
thread.
"""
from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

#: (len(sys.modules) when scanned, the controller of the BLAS libraries loaded then)
_scanned: tuple[int, Any] | None = None


def one_blas_thread() -> AbstractContextManager:
    """A context in which the BLAS libraries loaded in this process use one thread. The
    libraries are scanned again (4 ms) only after new modules were imported: a peer's
    sampler can bring scipy's own OpenBLAS in after the first ask."""
    global _scanned
    if "numpy" not in sys.modules:      # no BLAS loaded yet: nothing to limit
        return nullcontext()
    if _scanned is None or _scanned[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _scanned = (len(sys.modules), ThreadpoolController())
    return _scanned[1].limit(limits=1, user_api="blas")
