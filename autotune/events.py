"""The journal's event kinds: the one place that says what a history line may hold.

Every writer (driver, ``cancel``, anything that appends) builds its events with the
constructors here and every reader gets them back through ``decode``, so the on-disk format
has one owner. That is what makes three promises keepable:

- a damaged line costs what it held and nothing more: each line written carries a CRC-32 of
  its own bytes (the ``"c"`` field, last), so a line overwritten, truncated or spliced with
  other bytes is recognised and skipped whole, before any of it is applied;
- a history outlives the code that wrote it: the study record names the schema version, and
  ``upgrade`` brings an event of any older version to the current shape before it is read;
- a malformed event (a field missing or of the wrong type) is refused by ``validate`` before
  it changes any state, on reading and on writing alike.

Schema versions:
  1  lines without checksums (autotune before the events module); read as they are.
  2  every line ends with ``"c":"<crc32 hex>"``; the study record says ``"version": 2``;
     resume records carry ``t0`` so a damaged study record can be rebuilt exactly.
A journal started under version 1 and resumed now is a prefix of version-1 lines followed by
checksummed lines; a line without a checksum after the first checksummed one is damage.

To add a kind of event: a member of ``Kind``, its ``Spec`` in ``SPECS``, a constructor here,
and a handler in ``history._HANDLERS`` (a reader older than the kind skips it with a warning).
To add a field to an existing kind: put it in the spec's ``optional`` (older histories lack
it). To change what an existing field means, or to require a new one: raise ``SCHEMA``, add
``UPGRADES[old]`` that rewrites an old event into the new shape, and commit a history of the
new version with tests/data/make_history.py.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

SCHEMA = 2
_SUFFIX_HEAD = b',"c":"'          # + 8 hex digits + b'"}'
_SUFFIX_LEN = len(_SUFFIX_HEAD) + 8 + 2
_dumps = json.JSONEncoder(separators=(",", ":"), default=str, allow_nan=True).encode


class Kind(str, Enum):
    """Every kind of line a history may hold."""

    STUDY = "study"      # the study's identity and configuration; first line of a journal
    ASK = "ask"          # the searcher proposed trials (their ids, params, fidelity, ...)
    SUBMIT = "submit"    # an attempt of a trial was handed to the executor (with its job id)
    END = "end"          # an attempt ended: ok, failed or cancelled; final or to be retried
    RESUME = "resume"    # a driver started on an existing history
    STOP = "stop"        # (version 1 only; read and kept as a note)
    CANCEL = "cancel"    # ``autotune cancel`` cancelled the study's jobs
    RETRY = "retry"      # ``run --retry-failed``: these failed trials run again
    STAGE = "stage"      # the study's own stage (the pretrain): submitted, ended, or cached


class Damaged(ValueError):
    """An event that must not be applied; the message says why."""


# ---- field checks ----------------------------------------------------------------------------
Check = Callable[[Any], bool]


# exact types first (what JSON gives back, fast), subclasses such as numpy's float64 second
_NUMS = frozenset((int, float))


def _num(v: Any) -> bool:
    return type(v) in _NUMS or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _int(v: Any) -> bool:
    return type(v) is int or (isinstance(v, int) and not isinstance(v, bool))


def _id(v: Any) -> bool:
    return (type(v) is int or (isinstance(v, int) and not isinstance(v, bool))) and v >= 0


def _str(v: Any) -> bool:
    return type(v) is str or isinstance(v, str)


def _dict(v: Any) -> bool:
    return type(v) is dict or isinstance(v, dict)


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _opt(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _metrics(v: Any) -> bool:
    return isinstance(v, dict) and all(type(x) in _NUMS or _num(x) for x in v.values())


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _identity(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("metric"), str) \
        and isinstance(v.get("space", {}), dict)


_TRIAL_FIELDS: dict[str, Check] = {"trial": _id, "params": _dict}
_TRIAL_OPTIONAL: dict[str, Check] = {"fidelity": _opt(_int), "parent": _opt(_id),
                                     "info": _opt(_dict)}


def _trials(v: Any) -> bool:
    if not isinstance(v, list) or not v:
        return False
    ids = set()
    for s in v:
        if not isinstance(s, dict) or _bad_fields(s, _TRIAL_FIELDS, _TRIAL_OPTIONAL):
            return False
        ids.add(s["trial"])
    return len(ids) == len(v)  # one ask names each trial once


@dataclass(frozen=True)
class Spec:
    """What an event of one kind must (``required``) and may (``optional``) carry.

    Fields not named are allowed and kept: a later version may add some, and an older
    reader must still be able to use what it understands.
    """

    required: dict[str, Check]
    optional: dict[str, Check] = field(default_factory=dict)


SPECS: dict[Kind, Spec] = {
    Kind.STUDY: Spec({"t0": _num, "identity": _identity},
                     {"name": _str, "config": _dict, "source": _str, "version": _int,
                      "recovered": _dict, "launch_dir": _str, "compared": _bool}),
    Kind.ASK: Spec({"t": _num, "n": _id, "trials": _trials}),
    Kind.SUBMIT: Spec({"t": _num, "trial": _id, "attempt": _id},
                      {"job_id": _str}),
    Kind.END: Spec({"trial": _id, "attempt": _id,
                    "status": lambda v: v in ("ok", "failed", "cancelled")},
                   {"start_s": _opt(_num), "end_s": _opt(_num), "cost_s": _num,
                    "metrics": _opt(_metrics), "error": _opt(_str), "failure": _str,
                    "final": _bool, "job_id": _str, "extra": _dict}),
    Kind.RESUME: Spec({}, {"wall": _num, "host": _str, "pid": _int, "t0": _num, "t": _num,
                           "objective": _dict, "identity": _str}),
    Kind.STOP: Spec({}),
    Kind.CANCEL: Spec({}, {"t": _num, "jobs": _str_list}),
    Kind.RETRY: Spec({"trials": lambda v: isinstance(v, list) and all(_id(x) for x in v)},
                     {"wall": _num}),
    Kind.STAGE: Spec({"stage": _str, "key": _str,
                      "state": lambda v: v in ("submit", "end", "cached")},
                     {"t": _num, "attempt": _id, "job_id": _str,
                      "status": lambda v: v in ("ok", "failed", "cancelled"),
                      "start_s": _opt(_num), "end_s": _opt(_num), "cost_s": _num,
                      "metrics": _opt(_metrics), "error": _opt(_str), "failure": _str,
                      "built_s": _opt(_num), "path": _str}),
}


_BY_NAME: dict[str, Kind] = {k.value: k for k in Kind}


_ABSENT = object()


def _bad_fields(event: dict, required: dict[str, Check], optional: dict[str, Check]) -> str:
    get = event.get
    for key, check in required.items():
        value = get(key, _ABSENT)
        if value is _ABSENT:
            return f"no {key!r}"
        if not check(value):
            return f"bad {key!r}: {str(value)[:40]!r}"
    for key, check in optional.items():
        value = get(key, _ABSENT)
        if value is not _ABSENT and not check(value):
            return f"bad {key!r}: {str(value)[:40]!r}"
    return ""


def validate(event: Any) -> Kind:
    """The event's kind if it is well formed; ``Damaged`` (saying what is wrong) if not."""
    if not isinstance(event, dict):
        raise Damaged(f"not an event ({type(event).__name__})")
    kind = _BY_NAME.get(event.get("e"))  # type: ignore[arg-type]
    if kind is None:
        raise Damaged(f"unknown kind {str(event.get('e'))[:40]!r}")
    spec = SPECS[kind]
    problem = _bad_fields(event, spec.required, spec.optional)
    if problem:
        raise Damaged(f"{kind.value} event: {problem}")
    return kind


# ---- constructors: what the writers call -----------------------------------------------------
def study(name: str, t0: float, identity: dict, config: dict, source: str = "",
          compared: bool = False, **extra: Any) -> dict:
    """The study record: first line of a history, and the schema version it is written in.
    ``compared``: one run of a comparison (``autotune compare``), whose command may name
    fields only the other runs fill; recorded so that the run is read back as one."""
    marks = {"compared": True} if compared else {}
    return {"e": Kind.STUDY.value, "name": name, "t0": t0, "identity": identity,
            "source": source, "config": config, "version": SCHEMA, **marks, **extra}


def trial_entry(trial: int, params: dict, fidelity: int | None = None,
                parent: int | None = None, info: dict | None = None) -> dict:
    """One proposed trial inside an ``ask`` event."""
    entry: dict[str, Any] = {"trial": trial, "params": params}
    if fidelity is not None:
        entry["fidelity"] = fidelity
    if parent is not None:
        entry["parent"] = parent
    if info:
        entry["info"] = info
    return entry


def ask(t: float, n: int, trials: list[dict]) -> dict:
    return {"e": Kind.ASK.value, "t": t, "n": n, "trials": trials}


def submit(t: float, trial: int, attempt: int, job_id: str) -> dict:
    return {"e": Kind.SUBMIT.value, "t": t, "trial": trial, "attempt": attempt,
            "job_id": job_id}


def end(trial: int, attempt: int, status: str, start_s: float, end_s: float, cost_s: float,
        metrics: dict, error: str | None = None, failure: str = "", final: bool = True,
        job_id: str | None = None, extra: dict | None = None) -> dict:
    event: dict[str, Any] = {"e": Kind.END.value, "trial": trial, "attempt": attempt,
                             "status": status, "start_s": start_s, "end_s": end_s,
                             "cost_s": cost_s, "metrics": metrics}
    if extra:  # the result's other values (strings, lists, mappings), as plain JSON
        event["extra"] = extra
    if job_id is not None:
        event["job_id"] = job_id
    if error is not None:
        event["error"] = error
        event["failure"] = failure or "result"
    if not final:
        event["final"] = False
    return event


def resume(wall: float, host: str, pid: int, t0: float, identity: dict) -> dict:
    """A driver started on this history. It repeats the study's start time and a fingerprint
    of its identity, so that a damaged study record can be rebuilt exactly and checked."""
    return {"e": Kind.RESUME.value, "wall": wall, "host": host, "pid": pid, "t0": t0,
            "identity": fingerprint(identity)}


def fingerprint(identity: dict) -> str:
    """A short hash of a study's identity (space, algorithm, seed, options, metric, ...)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cancel(t: float, jobs: list[str]) -> dict:
    return {"e": Kind.CANCEL.value, "t": t, "jobs": jobs}


def retry(wall: float, trials: list[int]) -> dict:
    return {"e": Kind.RETRY.value, "wall": wall, "trials": trials}


def stage_submit(t: float, stage: str, key: str, attempt: int, job_id: str) -> dict:
    """The stage's job was handed to the executor (a trial's ``submit``, for the pretrain)."""
    return {"e": Kind.STAGE.value, "stage": stage, "key": key, "state": "submit", "t": t,
            "attempt": attempt, "job_id": job_id}


def stage_end(stage: str, key: str, attempt: int, status: str, start_s: float, end_s: float,
              cost_s: float, job_id: str, metrics: dict, error: str | None = None,
              failure: str = "") -> dict:
    """The stage's job ended; its cost is the study's, counted once."""
    event: dict[str, Any] = {"e": Kind.STAGE.value, "stage": stage, "key": key, "state": "end",
                             "attempt": attempt, "status": status, "start_s": start_s,
                             "end_s": end_s, "cost_s": cost_s, "job_id": job_id,
                             "metrics": metrics}
    if error is not None:
        event["error"] = error
        event["failure"] = failure or "exception"
    return event


def stage_cached(t: float, stage: str, key: str, path: str, built_s: float | None) -> dict:
    """The stage's checkpoint was found built (earlier, or by another study): nothing ran."""
    return {"e": Kind.STAGE.value, "stage": stage, "key": key, "state": "cached", "t": t,
            "path": path, "built_s": built_s}


# ---- the line format -------------------------------------------------------------------------
def encode(event: dict) -> bytes:
    """One line (with its newline) for a valid event; ``Damaged`` for an invalid one, so a
    writer's mistake is caught before it reaches the disk."""
    validate(event)
    if "c" in event:
        raise Damaged("'c' is reserved for the line checksum")
    body = _dumps(event).encode()
    return b"%s,\"c\":\"%08x\"}\n" % (body[:-1], zlib.crc32(body))


@dataclass
class Decoded:
    """What a journal's bytes hold: valid events (upgraded to ``SCHEMA``) with their line
    numbers, one warning per line skipped, and how many lines were damaged."""

    events: list[dict] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    damaged: int = 0
    version: int = SCHEMA   # of the study record, when one was read

    def skip(self, number: int, what: str, line: bytes) -> None:
        self.damaged += 1
        text = line[:60].decode("utf-8", errors="replace")
        self.warnings.append(f"history line {number}: {what}, skipped: {text!r}")


def decode(raw: bytes) -> Decoded:
    """Check, parse, upgrade and validate every line; anything doubtful is skipped whole."""
    out = Decoded()
    lines = raw.split(b"\n")
    complete = raw.endswith(b"\n") or not raw
    if complete:
        lines.pop()
    bodies: list[bytes] = []
    numbers: list[int] = []
    legacy_until = 0  # lines up to this number may be version 1 (no checksum)
    checked_seen = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        torn = number == len(lines) and not complete
        if line[-_SUFFIX_LEN:-10] == _SUFFIX_HEAD and line.endswith(b'"}'):
            body = line[:-_SUFFIX_LEN] + b"}"
            try:
                good = int(line[-10:-2], 16) == zlib.crc32(body)
            except ValueError:
                good = False
            if not good:
                out.skip(number, "damaged (checksum does not match)", line)
                continue
            checked_seen = True
            bodies.append(body)
        elif checked_seen or torn:
            out.skip(number, "torn last line (crash mid-write?)" if torn
                     else "damaged (no checksum)", line)
            continue
        else:
            legacy_until = number
            bodies.append(line)
        numbers.append(number)
    parsed = _parse_all(bodies, numbers, out, lines)
    # the version the checksummed lines were written in: the study record's
    for event in parsed:
        if isinstance(event, dict) and event.get("e") == Kind.STUDY.value:
            version = event.get("version", 1)
            out.version = version if _int(version) else SCHEMA
            break
    for event, number in zip(parsed, numbers):
        if event is None:
            continue
        try:
            if not isinstance(event, dict):
                raise Damaged(f"not an event ({type(event).__name__})")
            event = upgrade(event, 1 if number <= legacy_until else out.version)
            validate(event)
        except Damaged as exc:
            out.skip(number, f"unreadable ({exc})", lines[number - 1])
            continue
        out.events.append(event)
        out.lines.append(number)
    return out


def _parse_all(bodies: list[bytes], numbers: list[int], out: Decoded,
               lines: list[bytes]) -> list[Any]:
    """JSON of every line: one C-level parse of the whole when it is clean, else line by line
    (a line that is not JSON becomes ``None`` and a warning)."""
    try:
        parsed = json.loads(b"[" + b",".join(bodies) + b"]")
        if len(parsed) == len(bodies):
            return parsed
    except ValueError:
        pass
    parsed = []
    for body, number in zip(bodies, numbers):
        try:
            parsed.append(json.loads(body))
        except ValueError:
            out.skip(number, "corrupt line (not JSON)", lines[number - 1])
            parsed.append(None)
    return parsed


# ---- upgrades --------------------------------------------------------------------------------
def _from_v1(event: dict) -> dict:
    """Version 1 differs only in carrying no checksums and, in its first releases, an end's
    value beside its metrics (the value is read from the metrics now)."""
    if event.get("e") == Kind.STUDY.value and "version" not in event:
        event["version"] = 1
    return event


#: version -> the function that brings an event of that version to the next one
UPGRADES: dict[int, Callable[[dict], dict]] = {1: _from_v1}


def upgrade(event: dict, version: int) -> dict:
    """The event in the current schema, whatever schema it was written in."""
    if version > SCHEMA:
        return event  # a newer writer: read what we understand; the driver refuses to run it
    while version < SCHEMA:
        event = UPGRADES[version](event)
        version += 1
    return event
