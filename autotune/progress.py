"""What the user sees while ``run`` works: a start line, warnings, and a live progress line.

On a terminal the progress line is rewritten in place and cut to the terminal's width (a
longer line would wrap, and every refresh would leave a new line behind); in a log (not a
tty) a full line is printed at most every ``LOG_EVERY_S`` seconds, so a batch job's output
stays readable.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TYPE_CHECKING

from .errors import term
from .history import History

if TYPE_CHECKING:
    from .study import Study

LOG_EVERY_S = 30.0
TTY_EVERY_S = 0.2


class Progress:
    def __init__(self, mode: str, enabled: bool = True, stream=None, shown: list[str] | None = None,
                 total: int | None = None, budget_s: float | None = None):
        self.mode = mode
        self.shown = shown  # the parameters worth printing (the free ones); None: all
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = total          # max_trials, for done/total and the ETA
        self.budget_s = budget_s    # max_compute_s, for the ETA when there is no trial count
        self._began = time.monotonic()
        self._start: tuple[int, float] | None = None  # (trials ended, compute) when we began
        self._last = 0.0
        self._dirty = False
        #: a stage's state in words where its record says less ("pending (Resources)")
        self.stage_notes: dict[str, str] = {}
        #: of the trials running, those whose jobs the scheduler has not started (SLURM)
        self.queued = 0

    def line(self, history: History, running: int, held: int = 0) -> str:
        """The progress line. ``held``: trials asked but held back by the scheduler's submit
        limit (a SLURM QOS's MaxSubmitJobs), not yet in flight: said beside the running ones,
        and while none runs the pace says nothing of what is left (no ETA)."""
        counts = history.by_status()
        ended = sum(counts.get(k, 0) for k in ("ok", "failed", "cancelled"))
        if self._start is None:
            self._start = (ended, history.spent_s)
        if self.total and ended > self.total:  # max_trials lowered below what was done
            parts = [f"{ended} done (max_trials {self.total} reached)"]
        else:
            parts = [f"{ended}{f'/{self.total}' if self.total else ''} done"]
        if counts.get("failed"):
            parts[0] += f" ({counts['failed']} failed)"
        # the pretrain, its own job: running, ok or cached, and what it cost (counted once);
        # while an attempt runs, what its earlier ones cost is theirs, not its running time
        parts[:0] = [f"{st.name} {self.stage_notes.get(st.name) or st.status}"
                     + ("" if not st.cost_s else f" {st.cost_s:.1f}s"
                        if st.status != "running" else f" (earlier attempts {st.cost_s:.1f}s)")
                     for st in history.stages.values()]
        # a stage with nothing recorded yet (waiting for another study's build of it)
        parts[:0] = [f"{name} {note}" for name, note in self.stage_notes.items()
                     if name not in history.stages]
        queued = min(self.queued, running)  # none once the driver lets its jobs go
        parts.append(f"{running} running" + (f" ({queued} queued)" if queued else "")
                     + (f", {held} waiting for a submit slot" if held else ""))
        elapsed = time.monotonic() - self._began
        parts.append(f"{clock(elapsed)} elapsed")
        eta = None if held and not running else self.eta(ended, history.spent_s, elapsed)
        if eta is not None:
            parts.append(f"ETA {clock(eta)}")
        text = ", ".join(parts)
        best = history.best(self.mode)
        if best is not None:
            params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in best.params.items()
                               if self.shown is None or k in self.shown)
            text += f"  best {best.value:.6g} (trial {best.trial}{': ' + params if params else ''})"
        return text

    def eta(self, ended: int, spent: float, elapsed: float) -> float | None:
        """Time left at this run's pace: by trials left, else by compute budget left."""
        if self._start is None or elapsed <= 0:
            return None
        done_here, spent_here = ended - self._start[0], spent - self._start[1]
        if self.total and ended >= self.total:
            return None
        if self.total and done_here > 0:
            return max(0.0, (self.total - ended) * elapsed / done_here)
        if self.budget_s and spent_here > 0:
            return max(0.0, (self.budget_s - spent) * elapsed / spent_here)
        return None

    def update(self, history: History, running: int, held: int = 0) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < (TTY_EVERY_S if self.tty else LOG_EVERY_S):
            return
        self._last = now
        text = self.line(history, running, held)
        if self.tty:
            width = shutil.get_terminal_size((80, 24)).columns - 1
            self.stream.write("\r\033[K" + fit(text, width))
            self._dirty = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _clear(self) -> None:
        if self._dirty:
            self.stream.write("\r\033[K")
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


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, marked with '…' when cut."""
    width = max(width, 10)
    return text if len(text) <= width else text[:width - 1] + "…"


def clock(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def budget_reached(study: "Study", history: History) -> str:
    """The study's limit that its history has reached, in words ("" for none): a run starts
    no new trial past it, a resume says so in its first line, and ``Study.end_reason`` gives
    it as why ``ask()`` hands out no more."""
    if study.max_trials is not None and len(history.trials) >= study.max_trials:
        return f"max_trials ({study.max_trials}) reached"
    if study.max_compute_s is not None and history.spent_s >= study.max_compute_s:
        return f"max_compute_s ({study.max_compute_s:g} s) spent ({history.spent_s:.1f} s)"
    return ""


def start_lines(study: "Study", history: History, directory: str, fresh: bool, executor: str,
                retrying: bool = False, until_stopped: bool = True) -> list[str]:
    """Said once at start: a new study or a resume (and how far it got), then what deserves a
    warning before hours are spent: no budget at all, more local trials than cores, local
    trials outliving a killed driver. ``until_stopped``: whether the driver's loop is to run
    as long as the study's own limits allow; False for a loop of the caller's own (ask/tell)
    or a run with limits of its own, to which the no-budget warning does not apply."""
    where = os.path.relpath(directory) if not os.path.relpath(directory).startswith("..") \
        else directory
    if fresh:
        limit = (f"up to {study.max_trials} trial{'' if study.max_trials == 1 else 's'}"
                 if study.max_trials else
                 f"up to {study.max_compute_s:g} s of compute" if study.max_compute_s else
                 "no trial or compute limit")
        lines = [f"new study {study.name} in {where}: {study.algorithm}, {limit}, "
                 f"{study.max_concurrent} at a time ({executor})"]
        if executor == "local":
            lines.append("local trials run on if this driver is killed: run the same command "
                         f"again to collect them, or `python -m autotune cancel {where}` to stop "
                         "them")
    else:
        counts = history.by_status()
        done = counts.get("ok", 0) + counts.get("failed", 0) + counts.get("cancelled", 0)
        flight = len(history.in_flight())
        recorded = str(history.study.get("name") or study.name)
        renamed = ("" if recorded == study.name else
                   f" ({term('study')} says {study.name}; the directory keeps {recorded})")
        text = f"resuming study {recorded}{renamed} in {where}: {done} trial{'' if done == 1 else 's'} done"
        if counts.get("failed"):
            text += f" ({counts['failed']} failed{', run again now' if retrying else ''})"
        if flight:
            text += f", {flight} to finish or run again"
        reached = budget_reached(study, history)
        if reached:
            text += f"; {reached}: no new trials"
        lines = [text]
    if until_stopped and study.max_trials is None and study.max_compute_s is None \
            and not study.make_searcher().bounded:
        lines.append(f"warning: no budget (search.max_trials, search.max_compute_s): "
                     f"{study.algorithm} may run until stopped (Ctrl-C stops it; run again to "
                     "resume)")
    cores = os.cpu_count() or 1
    if executor == "local" and study.max_concurrent > cores:
        lines.append(f"warning: executor.max_concurrent is {study.max_concurrent} but this "
                     f"machine has {cores} CPU cores: the trials will share them")
    return lines
