"""The end of a log: its last line for a one-line failure message (a trial's stderr, local
or its launcher's ranks, or a SLURM job's error log), its last lines for the failure
summary. Only the file's end is read: logs of long training runs grow to gigabytes."""
from __future__ import annotations

import os
from typing import Callable

TAIL_BYTES = 4096


def _end(path: str, max_bytes: int) -> str | None:
    """The file's last ``max_bytes`` as text; None when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read().decode(errors="replace")
    except OSError:
        return None


def last_line(path: str, limit: int = 200, skip: Callable[[str], bool] | None = None) -> str:
    """The last non-blank line (not one ``skip`` says is noise), cut to ``limit``
    characters; "" when there is none or the file cannot be read."""
    text = _end(path, TAIL_BYTES) or ""
    lines = [ln for ln in text.splitlines() if ln.strip() and not (skip and skip(ln))]
    return lines[-1].strip()[:limit] if lines else ""


def tail_lines(path: str, n: int, max_bytes: int = 16384) -> list[str]:
    """The last ``n`` non-empty lines, each cut to 300 characters (a progress bar's
    carriage returns count as line ends); [] when the file cannot be read."""
    text = _end(path, max_bytes) or ""
    lines = [ln.rstrip()[:300] for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-n:]
