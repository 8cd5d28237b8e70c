"""What ``compare`` says while it works: its runs go one after another without a progress line
of their own (18 runs of the analytic comparison take a good while), so the user hears how
many there are at the start, and with each run's start how far it got and, once a run has
been done here, about how long the rest will take at the pace of the runs done so far. One
line per event: nothing is printed between two runs' starts.
"""
from __future__ import annotations

import sys
from time import monotonic
from typing import TextIO

from .progress import clock


class CompareClock:
    """The comparison's lines: counts the runs begun and times those that did work here, the
    only fair measure of the runs still to come."""

    def __init__(self, runs: int, algorithms: int, seeds: int, done_before: int = 0,
                 enabled: bool = True, stream: TextIO | None = None):
        self.runs = runs
        self.algorithms = algorithms
        self.seeds = seeds
        #: runs whose budget was spent before this command: resumed in an instant, they are
        #: no measure of a run's time and no part of the time left
        self.done_before = done_before
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self._started = 0
        self._fresh = 0  # runs started here that were not done before
        self._timed: list[float] = []  # wall seconds of the runs that did work here
        self._began = 0.0

    def begin(self, out_dir: str) -> None:
        per = (f" ({self.algorithms} algorithm{'s' if self.algorithms != 1 else ''} x "
               f"{self.seeds} seed{'s' if self.seeds != 1 else ''})")
        already = f", {self.done_before} done already" if self.done_before else ""
        self._say(f"compare: {self.runs} run{'s' if self.runs != 1 else ''}{per} in "
                  f"{out_dir}{already}")

    def run_starts(self, algorithm: str, seed: int, directory: str, done: bool) -> None:
        """A run begins; ``done``: its budget was spent before this command."""
        self._started += 1
        left = self.left()
        eta = f" (about {clock(left)} left)" if left is not None else ""
        self._say(f"compare: run {self._started}/{self.runs}: {algorithm} seed {seed} -> "
                  f"{directory}{eta}")
        self._fresh += 0 if done else 1
        self._began = monotonic()

    def run_ended(self, worked: bool) -> None:
        """The run begun last ended; ``worked``: it ended trials here (a resumed run already
        done ends at once, and would make the rest look quick)."""
        if worked:
            self._timed.append(monotonic() - self._began)

    def left(self) -> float | None:
        """Seconds left for the runs not done before this command and not yet started (the
        one starting included), at the mean pace of the runs timed so far; None before the
        first."""
        if not self._timed:
            return None
        to_do = self.runs - self.done_before - self._fresh
        return max(0, to_do) * sum(self._timed) / len(self._timed)

    def _say(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)
