"""The last line of a log, for a one-line failure message: a trial's stderr (local, its
launcher's ranks) or a SLURM job's error log. Only the file's end is read: logs of long
training runs grow to gigabytes."""
from __future__ import annotations

import os
from typing import Callable

TAIL_BYTES = 4096


def last_line(path: str, limit: int = 200, skip: Callable[[str], bool] | None = None) -> str:
    """The last non-blank line (not one ``skip`` says is noise), cut to ``limit``
    characters; "" when there is none or the file cannot be read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - TAIL_BYTES))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [ln for ln in text.splitlines() if ln.strip() and not (skip and skip(ln))]
    return lines[-1].strip()[:limit] if lines else ""
