"""The live progress line: done / running / failed and the best so far.

On a terminal it rewrites one line in place; in a log (not a tty) it prints a line at most
every ``LOG_EVERY_S`` seconds, so a batch job's output stays readable.
"""
from __future__ import annotations

import sys
import time

from .history import History

LOG_EVERY_S = 30.0
TTY_EVERY_S = 0.2


class Progress:
    def __init__(self, mode: str, enabled: bool = True, stream=None, shown: list[str] | None = None):
        self.mode = mode
        self.shown = shown  # the parameters worth printing (the free ones); None: all
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._dirty = False

    def line(self, history: History, running: int) -> str:
        counts = history.by_status()
        best = history.best(self.mode)
        text = (f"done {counts.get('ok', 0)}  running {running}  failed {counts.get('failed', 0)}"
                f"  trials {len(history.trials)}")
        if best is not None:
            params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in best.params.items()
                               if self.shown is None or k in self.shown)
            text += f"  best {best.value:.6g} (trial {best.trial}: {params})"
        return text

    def update(self, history: History, running: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < (TTY_EVERY_S if self.tty else LOG_EVERY_S):
            return
        self._last = now
        text = self.line(history, running)
        if self.tty:
            self.stream.write("\r\033[K" + text[:200])
            self._dirty = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _clear(self) -> None:
        if self._dirty:
            self.stream.write("\n")
            self._dirty = False

    def say(self, text: str) -> None:
        if self.enabled:
            self._clear()
            self.stream.write(text + "\n")
            self.stream.flush()

    def warn(self, text: str) -> None:
        self._clear()
        self.stream.write(f"warning: {text}\n")
        self.stream.flush()

    def close(self, history: History) -> None:
        if self.enabled:
            self._clear()
            self.stream.write(self.line(history, 0) + "\n")
            self.stream.flush()
