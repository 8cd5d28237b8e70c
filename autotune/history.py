"""The study's state, rebuilt by replaying the journal.

The journal is the one truth; ``History`` is what it says, derived event by event by the very
same ``apply`` the driver uses live, so a resumed driver sees exactly what the dead one had
made durable. It also keeps the order of asks and tells, which is what lets a fresh searcher
be brought back to the same state by making the same calls again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from .journal import Journal

FINAL = ("ok", "failed", "cancelled")


@dataclass(slots=True)
class TrialRecord:
    trial: int
    params: dict[str, Any]
    fidelity: int | None = None
    parent: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"          # pending | running | ok | failed | cancelled
    attempt: int = 0                 # the latest attempt submitted
    metrics: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    error: str | None = None
    failure: str = ""
    start_s: float | None = None     # first start of the latest attempt
    end_s: float | None = None
    cost_s: float = 0.0              # summed over every attempt
    job_id: str = ""
    asked_s: float = 0.0

    @property
    def done(self) -> bool:
        return self.status in FINAL


@dataclass
class History:
    study: dict[str, Any] = field(default_factory=dict)
    trials: dict[int, TrialRecord] = field(default_factory=dict)
    #: the searcher calls in the order they were made: ("ask", n, [ids]) or ("tell", id)
    calls: list[tuple] = field(default_factory=list)
    last_t: float = 0.0
    warnings: list[str] = field(default_factory=list)
    events: int = 0
    notes: list[dict] = field(default_factory=list)  # resume, stop, cancel records
    metric: str = ""                 # the optimised metric, from the study record
    spent_s: float = 0.0             # compute of every attempt that ended
    full_fidelity: int | None = None  # multi-fidelity: only full-length results count as best
    next_id: int = 0                 # the id the next trial gets: never one the journal names

    @classmethod
    def load(cls, journal: Journal) -> "History":
        events, warnings = journal.read()
        history = cls(warnings=warnings)
        for event in events:
            history.apply(event)
        return history

    def apply(self, event: dict) -> None:
        self.events += 1
        handler = _HANDLERS.get(event.get("e"))
        if handler is None:
            kind = event.get("e")
            self.warnings.append(f"history event {self.events}: unknown kind {kind!r} skipped")
            return
        try:
            handler(self, event)
        except (KeyError, TypeError, ValueError) as exc:
            self.warnings.append(f"history event {self.events} ({event.get('e')}): unreadable "
                                 f"({type(exc).__name__}: {exc}), skipped")

    # ---- handlers -------------------------------------------------------------------------
    def _study(self, e: dict) -> None:
        if not self.study:
            self.study = e
            identity = e.get("identity", {})
            self.metric = identity.get("metric", "")
            fidelity = (identity.get("search_options") or {}).get("fidelity") or {}
            self.full_fidelity = fidelity.get("max")

    def _ask(self, e: dict) -> None:
        ids = []
        t = float(e.get("t", 0.0))
        trials = self.trials
        for s in e["trials"]:  # the event's own dicts are kept: nothing mutates them
            trial = s["trial"]
            trials[trial] = TrialRecord(trial, s["params"], s.get("fidelity"), s.get("parent"),
                                        s.get("info") or {}, asked_s=t)
            ids.append(trial)
            if trial >= self.next_id:
                self.next_id = trial + 1
        self.calls.append(("ask", int(e["n"]), ids))
        self._clock(t)

    def _submit(self, e: dict) -> None:
        rec = self.trials[e["trial"]]
        attempt, t = e.get("attempt", 0), e["t"]
        if attempt != rec.attempt or rec.start_s is None:
            rec.start_s = t
        rec.attempt = attempt
        rec.status = "running"
        rec.job_id = e.get("job_id", "")
        if t > self.last_t:
            self.last_t = t

    def _end(self, e: dict) -> None:
        rec = self.trials[e["trial"]]
        if rec.status in FINAL:
            return  # a duplicate report of a finished trial changes nothing
        cost = e.get("cost_s", 0.0)
        rec.cost_s += cost
        self.spent_s += cost
        rec.start_s = e.get("start_s", rec.start_s)
        rec.end_s = end = e.get("end_s") or 0.0
        rec.error = e.get("error")
        rec.failure = e.get("failure", "")
        rec.metrics = metrics = e.get("metrics") or {}
        status = e["status"]
        rec.value = metrics.get(self.metric) if status == "ok" else None
        if "job_id" in e:
            rec.job_id = e["job_id"]
        if e.get("final", True):
            rec.status = status
            self.calls.append(("tell", rec.trial))
        else:
            rec.status = "pending"  # to be retried
        if end > self.last_t:
            self.last_t = end

    def _note(self, e: dict) -> None:
        self.notes.append(e)  # notes carry wall-clock stamps: they do not move the study clock

    def _clock(self, t: float) -> None:
        if t > self.last_t:
            self.last_t = t

    # ---- views ----------------------------------------------------------------------------
    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for rec in self.trials.values():
            counts[rec.status] = counts.get(rec.status, 0) + 1
        return counts

    def in_flight(self) -> list[TrialRecord]:
        """Trials asked for but not finished: a resumed driver must run (or re-attach) them."""
        return [rec for rec in self.trials.values() if not rec.done]

    def finished(self) -> Iterator[TrialRecord]:
        return (rec for rec in self.trials.values() if rec.done)

    def counts_for_best(self, rec: TrialRecord) -> bool:
        """A successful result at full length: a 1-epoch screening value is not a result."""
        return (rec.status == "ok" and rec.value is not None
                and (self.full_fidelity is None or rec.fidelity in (None, self.full_fidelity)))

    def best(self, mode: str) -> TrialRecord | None:
        ok = [r for r in self.trials.values() if self.counts_for_best(r)]
        if not ok:
            return None
        key = (lambda r: r.value) if mode == "min" else (lambda r: -r.value)
        return min(ok, key=key)


_HANDLERS = {
    "study": History._study,
    "ask": History._ask,
    "submit": History._submit,
    "end": History._end,
    "resume": History._note,
    "stop": History._note,
    "cancel": History._note,
}
