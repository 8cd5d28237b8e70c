"""Why trials failed, said where the user looks: the end of ``run``, ``status``, summary.txt.

A study whose trials all fail usually fails for one reason (a typo in the command, a missing
file); the most frequent error with the tail of one such trial's stderr says it at once,
without opening trial directories.
"""
from __future__ import annotations

import os
from collections import Counter

from .history import History

TAIL_LINES = 5


def failure_lines(history: History, study_dir: str | None) -> list[str]:
    """The most frequent error among failed trials and the tail of one's stderr.log."""
    failed = sorted((r for r in history.trials.values() if r.status == "failed"),
                    key=lambda r: r.trial)
    if not failed:
        return []
    counts = Counter(r.error or "no error recorded" for r in failed)
    error, n = counts.most_common(1)[0]
    example = next(r for r in failed if (r.error or "no error recorded") == error)
    lines = [f"most frequent error ({n} of {len(failed)} failed trial(s), e.g. trial "
             f"{example.trial}): {error}"]
    if study_dir:
        path = os.path.join(study_dir, "trials", str(example.trial), "stderr.log")
        tail = tail_lines(path, TAIL_LINES)
        if tail:
            lines.append(f"  last lines of {path}:")
            lines += [f"    {line}" for line in tail]
    if len(counts) > 1:
        lines.append(f"  ({len(counts) - 1} other error(s); see the error column of "
                     "trajectory.csv)")
    return lines


def tail_lines(path: str, n: int, max_bytes: int = 16384) -> list[str]:
    """The last ``n`` non-empty lines of a file (reads at most its last ``max_bytes``)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            text = fh.read().decode(errors="replace")
    except OSError:
        return []
    lines = [ln.rstrip()[:300] for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-n:]
