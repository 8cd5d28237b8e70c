"""The study's state, rebuilt by replaying the journal.

The journal is the one truth; ``History`` is what it says, derived event by event by the very
same ``apply`` the driver uses live, so a resumed driver sees exactly what the dead one had
made durable. It also keeps the order of asks and tells, which is what a fresh searcher is
restored from.

Every event is checked before it is applied (``events.validate`` for its shape, the handler
for its sense: an ask may not reuse a trial id, a finished trial is not submitted again nor
ended again with another result), and one that fails is skipped whole: a damaged line costs
what it held, never more.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any, Iterator

from .events import SCHEMA, Damaged, validate
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
    extra: dict[str, Any] = field(default_factory=dict)  # the result's values that are no number
    error: str | None = None
    failure: str = ""
    start_s: float | None = None     # the latest start of the latest attempt
    end_s: float | None = None
    cost_s: float = 0.0              # summed over every attempt
    job_id: str = ""
    asked_s: float = 0.0
    starts: int = 0                  # times it was started: retries and re-runs after interrupts

    @property
    def number(self) -> int:
        """The trial's number, ``trial`` by its Optuna name: what ``Study.ask()``'s
        ``Trial.number`` calls it, so that code written for either finds it."""
        return self.trial

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def next_attempt(self) -> int:
        """The attempt a run of this trial is: the one in flight while it is running, the
        latest while it never started, else (a retry) the one after."""
        if self.status == "running" or self.start_s is None:
            return self.attempt
        return self.attempt + 1


@dataclass(slots=True)
class StageRecord:
    """A stage of the study (the pretrain): its own job, its own cost, counted once."""

    name: str
    key: str = ""
    status: str = "pending"          # pending | running | ok | failed | cancelled | cached
    attempt: int = 0
    job_id: str = ""
    start_s: float | None = None
    end_s: float | None = None
    cost_s: float = 0.0              # summed over every attempt this study ran
    error: str | None = None
    failure: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.status in ("ok", "cached")


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
    #: trials whose ask line was damaged: named by submit/end lines, their params unknown.
    #: They are not run again under that id, and no new trial ever gets one of their ids.
    lost: set[int] = field(default_factory=set)
    damaged: int = 0                 # lines skipped: unreadable, or refused as inconsistent
    next_id: int = 0                 # the id the next trial gets: never one the journal names
    #: while loading: how many ask lines not yet applied name each trial id. A submit or end
    #: of a trial whose ask is still ahead is out of order (an injected or copied line).
    _asks_ahead: dict[int, int] = field(default_factory=dict, repr=False)
    stages: dict[str, StageRecord] = field(default_factory=dict)  # by stage name (pretrain)
    #: every job id a line applied names (each attempt's of each trial, the stages'): a
    #: record keeps only its latest, and a job folder an earlier attempt left (``cleanup``
    #: keeps them) is no job submitted unrecorded (``states.unrecorded_jobs``)
    job_ids: set[str] = field(default_factory=set)
    #: each running trial's latest submit as (attempt, t, job_id, era): a line equal to it is
    #: a copy (a damaged history's), not a start. ``_era`` counts the study and note records
    #: (resume, stop, cancel): a resumed simulated run restarts a trial at the same virtual
    #: time under the same job id, a line like the first but after a resume record
    _submits: dict[int, tuple] = field(default_factory=dict, repr=False)
    _era: int = field(default=0, repr=False)
    #: each trial's latest end line: another end of an attempt that ended is a copy when
    #: equal to it (said nothing), else another study's line (a warning)
    _ends: dict[int, tuple] = field(default_factory=dict, repr=False)
    #: the parameter names of the study record's space: an ask for other parameters is
    #: another study's line (a history copied or appended into this one), not this study's
    _names: frozenset | None = field(default=None, repr=False)

    @classmethod
    def load(cls, journal: Journal) -> "History":
        # reading builds one container per event and nothing cyclic: the cycle collector
        # would only rescan the growing heap again and again (a third of the time at 50k)
        paused = gc.isenabled()
        gc.disable()
        try:
            return cls._load(journal)
        finally:
            if paused:
                gc.enable()

    @classmethod
    def _load(cls, journal: Journal) -> "History":
        decoded = journal.read()
        history = cls(warnings=decoded.warnings, damaged=decoded.damaged)
        ahead = history._asks_ahead
        for event in decoded.events:
            if event["e"] == "ask":
                for s in event["trials"]:
                    ahead[s["trial"]] = ahead.get(s["trial"], 0) + 1
        apply = history._apply
        for event, line in zip(decoded.events, decoded.lines):
            apply(event, line)
        ahead.clear()  # live events that follow are in order by construction
        history._lost_warning()
        return history

    @property
    def version(self) -> int:
        """The schema version the study record was written in."""
        return int(self.study.get("version", 1)) if self.study else SCHEMA

    def apply(self, event: dict) -> None:
        """Let one event (validated here) change the state, or refuse it whole."""
        try:
            validate(event)
        except Damaged as exc:
            self.events += 1
            self._refuse(f"history event {self.events}", exc)
            return
        self._apply(event, None)

    def _apply(self, event: dict, line: int | None) -> None:
        self.events += 1
        try:
            _HANDLERS[event["e"]](self, event)
        except Damaged as exc:
            self._refuse(f"history line {line}" if line else f"history event {self.events}", exc)
            return
        job_id = event.get("job_id")
        if job_id:
            self.job_ids.add(job_id)

    def _refuse(self, where: str, exc: Exception) -> None:
        self.damaged += 1
        self.warnings.append(f"{where}: {exc}, skipped")

    def brief_warnings(self, most: int = 3) -> list[str]:
        """The warnings to print: the first ``most`` skipped lines and how many more, then the
        rest. A damaged tail (appended junk, a disk that filled) skips many lines alike, and
        every status, report and resume would print them all again: the lines stay in
        history.jsonl as they are (ignored), and ``warnings`` keeps every one."""
        lines = [w for w in self.warnings if w.startswith("history line ")]
        rest = [w for w in self.warnings if not w.startswith("history line ")]
        if len(lines) > most:
            lines = lines[:most] + [f"... and {len(lines) - most} more damaged history lines, "
                                    "skipped alike"]
        return lines + rest

    def _lost_warning(self) -> None:
        if self.lost:
            ids = sorted(self.lost)
            shown = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
            self.warnings.append(f"{len(ids)} trial(s) whose ask line is damaged are marked lost "
                                 f"(their parameters are unknown; ids not reused): {shown}")

    # ---- handlers: each checks everything first and raises Damaged before changing anything --
    def _study(self, e: dict) -> None:
        if self.study:
            raise Damaged("a second study record")
        self.study = e
        self._era += 1
        identity = e["identity"]
        space = identity.get("space")
        self._names = frozenset(space) if isinstance(space, dict) and space else None
        self.metric = identity.get("metric", "")
        fidelity = (identity.get("search_options") or {}).get("fidelity") or {}
        self.full_fidelity = fidelity.get("max") if isinstance(fidelity, dict) else None
        if self.trials:  # a record rebuilt after its trials: read their values now
            for rec in self.trials.values():
                rec.value = rec.metrics.get(self.metric) if rec.status == "ok" else None
        if self.version > SCHEMA:  # `run` refuses it; the views read it, but not silently
            self.warnings.append(newer_schema(self.version))

    def _ask(self, e: dict) -> None:
        trials, lost = self.trials, self.lost
        entries = e["trials"]
        ahead = self._asks_ahead
        if ahead:
            for s in entries:
                ahead[s["trial"]] -= 1
        names = self._names
        for s in entries:
            trial = s["trial"]
            if trial in trials or trial in lost:
                raise Damaged(f"ask reuses the id of trial {trial}")
            if names is not None and s["params"].keys() != names:
                raise Damaged(f"ask for trial {trial} with parameters "
                              f"{', '.join(sorted(map(str, s['params'])))}, not this study's "
                              f"({', '.join(sorted(names))}): another study's line")
        t = float(e["t"])
        ids = []
        for s in entries:  # the event's own dicts are kept: nothing mutates them
            trial = s["trial"]
            trials[trial] = TrialRecord(trial, s["params"], s.get("fidelity"), s.get("parent"),
                                        s.get("info") or {}, asked_s=t)
            ids.append(trial)
            if trial >= self.next_id:
                self.next_id = trial + 1
        self.calls.append(("ask", e["n"], ids))
        if t > self.last_t:
            self.last_t = t

    def _unknown(self, trial: int) -> None:
        """A trial named by a submit or an end line whose ask line was lost."""
        if trial >= self.next_id:
            self.next_id = trial + 1
        if self._asks_ahead.get(trial):
            raise Damaged(f"trial {trial} named before the line that asks for it")
        self.lost.add(trial)

    def _submit(self, e: dict) -> None:
        rec = self.trials.get(e["trial"])
        if rec is None:
            self._unknown(e["trial"])
            return
        attempt, t = e["attempt"], e["t"]
        key = (attempt, t, e.get("job_id", ""), self._era)
        if (rec.done or _attempt_ended(rec)) and key[:3] == self._submits.get(rec.trial, ())[:3]:
            # a copy of the line that started the attempt, appended after its end (a tool or
            # a hand that appended the tail again): it changes nothing, as a copy of the end
            # line does (README), rather than a warning on every read
            return
        if rec.done:
            raise Damaged(f"submit of trial {rec.trial}, which had finished")
        if attempt < rec.attempt:
            raise Damaged(f"submit of attempt {attempt} of trial {rec.trial} after attempt "
                          f"{rec.attempt}")
        if attempt == rec.attempt and _attempt_ended(rec):  # a retry is the next attempt
            raise Damaged(f"submit of attempt {attempt} of trial {rec.trial}, which had ended")
        if rec.status == "running" and self._submits.get(rec.trial) == key:
            return  # a copy of the line that started it: one start, not two
        self._submits[rec.trial] = key
        # every start is its own, also one of the same attempt (run again after an interrupt
        # or a killed driver): a later driver that re-attaches to it counts its run time and
        # timeout from here, not from the start it replaced
        rec.start_s = t
        rec.attempt = attempt
        rec.status = "running"
        rec.starts += 1
        rec.job_id = e.get("job_id", "")
        if t > self.last_t:
            self.last_t = t

    def _end(self, e: dict) -> None:
        rec = self.trials.get(e["trial"])
        if rec is None:
            self._unknown(e["trial"])
            return
        if rec.status in FINAL or _attempt_ended(rec):
            if tuple(e.values()) == self._ends.get(rec.trial):
                return  # a copy of the line that ended it changes nothing (its cost counts once)
            raise Damaged(f"end of trial {rec.trial}, which had "
                          f"{'finished' if rec.done else 'ended'}, with another result than "
                          "its own (another study's line?)")
        if e["attempt"] < rec.attempt:
            raise Damaged(f"end of attempt {e['attempt']} of trial {rec.trial} after attempt "
                          f"{rec.attempt} began")
        self._ends[rec.trial] = tuple(e.values())
        cost = e.get("cost_s", 0.0)
        rec.cost_s += cost
        self.spent_s += cost
        submitted = rec.start_s if rec.status == "running" and e["attempt"] == rec.attempt else None
        start = e.get("start_s")
        if start is not None:
            rec.start_s = start = started_at(start, submitted)
        rec.end_s = end = max(e.get("end_s") or 0.0, start or 0.0)
        rec.error = e.get("error")
        rec.failure = e.get("failure", "")
        rec.metrics = metrics = e.get("metrics") or {}
        rec.extra = e.get("extra") or {}
        status = e["status"]
        rec.value = metrics.get(self.metric) if status == "ok" else None
        if "job_id" in e:
            rec.job_id = e["job_id"]
        rec.attempt = e["attempt"]
        if e.get("final", True):
            rec.status = status
            self.calls.append(("tell", rec.trial))
        else:
            rec.status = "pending"  # to be retried
        if end > self.last_t:
            self.last_t = end

    def _stage(self, e: dict) -> None:
        """One event kind for a stage's life: submit, end (ok/failed/cancelled), or cached
        (found built in the cache: nothing run, nothing spent by this study)."""
        state, name = e["state"], e["stage"]
        old = self.stages.get(name)
        if state == "end" and (old is None or old.status != "running" or "status" not in e):
            raise Damaged(f"end of stage {name!r} that is not running")
        rec = self.stages.setdefault(name, StageRecord(name))
        rec.key = e["key"]
        t = float(e.get("t", e.get("end_s")) or 0.0)
        if state == "submit":
            attempt = e.get("attempt", 0)
            rec.start_s = t  # its own start, also when run again after a killed driver
            rec.attempt, rec.status, rec.job_id = attempt, "running", e.get("job_id", "")
            rec.error, rec.failure, rec.end_s = None, "", None
        elif state == "end":
            cost = float(e.get("cost_s", 0.0))
            rec.cost_s += cost
            self.spent_s += cost
            rec.status = e["status"]
            start = started_at(e.get("start_s", rec.start_s), rec.start_s)
            end = e.get("end_s")
            rec.start_s = start
            rec.end_s = end if end is None or start is None else max(end, start)
            rec.job_id = e.get("job_id", rec.job_id)
            rec.error, rec.failure = e.get("error"), e.get("failure", "")
            rec.metrics = e.get("metrics") or {}
            t = rec.end_s or t
        else:  # cached
            rec.status, rec.metrics = "cached", e.get("metrics") or {}
            rec.error, rec.failure = None, ""
            if rec.start_s is None:
                rec.start_s = rec.end_s = t
        if t > self.last_t:
            self.last_t = t

    def stage_cost_s(self) -> float:
        return sum(s.cost_s for s in self.stages.values())

    def _note(self, e: dict) -> None:
        self.notes.append(e)  # notes carry wall-clock stamps: they do not move the study clock
        self._era += 1

    def _resume(self, e: dict) -> None:
        """A driver's start. One that took a changed pretrain in place of one that never
        succeeded, before any trial (see ``driver.pretrain_refusal``), records it, its
        ``core()`` and the study file's ``stages`` section: the study record reads so from
        here on, for every reader (the next run's check, ``status``, ``load_study``)."""
        self._note(e)
        pretrain = e.get("pretrain")
        if isinstance(pretrain, dict) and self.study:
            config = dict(self.study.get("config") or {})
            if isinstance(e.get("stages"), dict):
                config["stages"] = e["stages"]
            self.study = {**self.study, "config": config,
                          "identity": {**self.study.get("identity", {}), "pretrain": pretrain}}

    def identity_hint(self) -> str | None:
        """The fingerprint of the study's identity as a resume record gives it."""
        for note in reversed(self.notes):
            if note.get("e") == "resume" and "identity" in note:
                return str(note["identity"])
        return None

    def start_time(self) -> float | None:
        """The wall time the study started (its study record's, else a resume record's)."""
        return float(self.study["t0"]) if self.study else self.t0_hint()

    def t0_hint(self) -> float | None:
        """The study's start time as a resume record gives it (to rebuild a damaged record)."""
        for note in reversed(self.notes):
            if note.get("e") == "resume" and "t0" in note:
                return float(note["t0"])
        return None

    def _retry(self, e: dict) -> None:
        """``run --retry-failed``: failed trials run again under their own ids. Their failure
        is taken back from the searcher's record, so it hears only the new result."""
        self.notes.append(e)
        for trial in e["trials"]:
            rec = self.trials.get(trial)
            if rec is None or rec.status != "failed":
                continue
            rec.status, rec.error, rec.failure, rec.value = "pending", None, "", None
            try:
                self.calls.remove(("tell", trial))
            except ValueError:
                pass

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


def started_at(claimed: float | None, submitted: float | None) -> float | None:
    """The start an end line claims, never before the submission it followed nor before the
    study began. Older SLURM code took sacct's whole seconds as they came, so a job started
    at once after a submission at 0.9 s was recorded as started at 0 s (or -0.1 s): its
    histories hold such starts, and every view (status, report, trajectory.csv) shows the
    submission instead, which is when the job can at the earliest have started."""
    if claimed is None:
        return submitted
    floor = max(0.0, submitted or 0.0)
    return claimed if claimed >= floor else floor


def _attempt_ended(rec: TrialRecord) -> bool:
    """Whether the trial's latest attempt has ended and the trial waits to run again (a
    retry, ``--retry-failed``): pending is otherwise only a trial never started, which has
    no end. Another end or start of that attempt can only be a copied line."""
    return rec.status == "pending" and rec.end_s is not None


_HANDLERS = {
    "study": History._study,
    "ask": History._ask,
    "submit": History._submit,
    "end": History._end,
    "stage": History._stage,
    "resume": History._resume,
    "stop": History._note,
    "cancel": History._note,
    "retry": History._retry,
}


def newer_schema(version: int) -> str:
    """What a history a newer autotune wrote is to this one: readable as far as the lines it
    knows go (a newer version may add fields and events this one skips), not resumable."""
    return (f"written by a newer autotune (history schema {version}; this one reads up to "
            f"{SCHEMA}): shown as far as this version understands it; upgrade autotune to "
            "resume it or to read it whole")
