"""Where modules that objectives are named by went: old entry strings keep working.

A history or study file records its objective as an entry string (``module:function``), and
such files outlive a package layout. When a module was moved, its old name is resolved here,
at the one place entries are imported, rather than by leaving stub modules in the engine.
An old name is only redirected when it does not import as written, so a user's own module
that happens to carry the same name (their own ``jobs/demo.py``, say) still wins.
"""
from __future__ import annotations

# old module (or package) name -> its current name; a prefix match covers submodules
MOVED: dict[str, str] = {
    "jobs.ddbpn": "autotune.jobs.ddbpn",
    "jobs.demo": "autotune.jobs.demo",
    "autotune.benchfuncs": "autotune.bench.landscapes",
    "autotune.mfbench": "autotune.bench.learning_curves",
}


def current_name(module: str) -> str | None:
    """The present name of a moved module, or None where ``module`` was never moved."""
    for old, new in MOVED.items():
        if module == old or module.startswith(old + "."):
            return new + module[len(old):]
    return None
