"""A seeded damage fuzzer: histories cut, spliced, overwritten, with lines lost or copied.

Each case damages a finished history at random offsets, reads it, and resumes the study on
it with a larger budget. Whatever the damage, three things must hold:
- no exception escapes (reading, rebuilding the study record, restoring the searcher, running);
- no result is lost that was not on a damaged line: a trial whose ask line and end line are
  both intact keeps its status and value;
- no trial runs twice: such a trial is not run again, and no trial id runs twice in the resume.
"""
from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import tempfile

import pytest

from autotune.driver import Driver
from autotune.study import parse_study
from tests.helpers import history

CASES = 200
SEED = 20261126
MF = {"min": 1, "max": 9, "eta": 3}
SEARCHES = {"random": {}, "asha": {"fidelity": MF}, "axis": {}}


def study(algorithm: str, log: str, trials: int) -> dict:
    return {"name": f"fuzz-{algorithm}",
            "objective": {"entry": "tests.objectives:quadratic", "metric": "loss"},
            "space": {"x": {"values": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]},
                      "y": {"values": [-1.0, -0.5, 0.0, 0.5]}, "cost_s": 5.0, "log": log},
            "search": {"algorithm": algorithm, "seed": 5, "max_trials": trials,
                       **SEARCHES[algorithm]},
            "executor": {"kind": "simulated", "max_concurrent": 3}}


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """One finished history per searcher (and the log path its study file names)."""
    # in memory where the system offers it: 200 resumes' fsyncs would otherwise be most of
    # the test's time, and durability is not what it checks
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        root = pathlib.Path(tempfile.mkdtemp(prefix="autotune-fuzz-", dir=shm))
    else:
        root = tmp_path_factory.mktemp("fuzz")
    log = str(root / "runs.log")
    out = {}
    for algorithm in SEARCHES:
        d = root / f"base-{algorithm}"
        Driver(parse_study(study(algorithm, log, 14)), str(d), progress=False).run()
        out[algorithm] = (d / "history.jsonl").read_bytes()
    yield root, log, out
    shutil.rmtree(root, ignore_errors=True)


def line_spans(raw: bytes) -> list[tuple[int, int]]:
    """[start, end] of each line, its newline included."""
    spans, start = [], 0
    for line in raw.split(b"\n")[:-1]:
        spans.append((start, start + len(line)))
        start += len(line) + 1
    return spans


def touched(spans: list[tuple[int, int]], a: int, b: int) -> set[int]:
    """Lines that bytes [a, b] reach; a line whose newline is overwritten is joined to the
    next one, which is then damaged too."""
    hit = {i for i, (s, e) in enumerate(spans) if s <= b and a <= e}
    return hit | {i + 1 for i in hit if a <= spans[i][1] <= b and i + 1 < len(spans)}


def noise(rng: random.Random) -> bytes:
    kind = rng.random()
    n = rng.randint(1, 48)
    if kind < 0.4:
        return bytes(rng.randrange(256) for _ in range(n))
    if kind < 0.7:  # JSON-looking fragments, newlines included
        return "".join(rng.choice(['{"e":"end",', '"trial":3', "}", "\n", ",", '"ok"', "1", "[", "]"])
                       for _ in range(rng.randint(1, 8))).encode()
    return b"\x00" * n


def damage(raw: bytes, rng: random.Random,
           spans: list[tuple[int, int]] | None = None) -> tuple[bytes, set[int], str]:
    """The damaged bytes, the original lines that damage reached, and what was done.
    ``spans``: the original's lines, for a second damage over a first that kept the offsets."""
    second = spans is not None
    spans = spans if second else line_spans(raw)
    lines = raw.split(b"\n")[:-1]
    what = rng.choice(["truncate", "inject", "overwrite"] if second else
                      ["truncate", "inject", "overwrite", "delete", "copy", "two"])
    if what == "two":
        first, hit1, d1 = damage(raw, rng)
        if len(first) != len(raw):  # offsets moved: a second damage would be mis-attributed
            return first, hit1, d1
        both, hit2, d2 = damage(first, rng, spans)
        return both, hit1 | hit2, f"{d1} + {d2}"
    at = rng.randrange(len(raw))
    if what == "truncate":
        return raw[:at], {i for i, (s, e) in enumerate(spans) if e >= at}, f"truncate@{at}"
    if what == "inject":
        junk = noise(rng)
        inside = {i for i, (s, e) in enumerate(spans) if s <= at <= e}
        return raw[:at] + junk + raw[at:], inside, f"inject@{at}:{junk[:16]!r}"
    if what == "overwrite":
        junk = noise(rng)
        end = min(len(raw), at + len(junk))
        return raw[:at] + junk[: end - at] + raw[end:], touched(spans, at, end - 1), \
            f"overwrite@{at}:{junk[:16]!r}"
    i = rng.randrange(len(lines))
    if what == "delete":
        return b"".join(ln + b"\n" for j, ln in enumerate(lines) if j != i), {i}, f"delete line {i}"
    j = rng.randrange(len(lines) + 1)  # a copy of an intact line (checksum and all) elsewhere
    copied = lines[:j] + [lines[i]] + lines[j:]
    return b"".join(ln + b"\n" for ln in copied), set(), f"copy line {i} to {j}"


def intact_results(raw: bytes, hit: set[int]) -> dict[int, tuple]:
    """Trials whose ask and final end lines were not reached by the damage: their results."""
    asked, ended = set(), {}
    for i, line in enumerate(raw.split(b"\n")[:-1]):
        if i in hit:
            continue
        event = json.loads(line)
        if event["e"] == "ask":
            asked |= {s["trial"] for s in event["trials"]}
        elif event["e"] == "end" and event.get("final", True):
            ended[event["trial"]] = (event["status"], event["metrics"].get("loss"))
    return {t: result for t, result in ended.items() if t in asked}


def test_damage_fuzzer(bases):
    root, log, originals = bases
    rng = random.Random(SEED)
    kinds: dict[str, int] = {}
    for case in range(CASES):
        algorithm = list(SEARCHES)[case % len(SEARCHES)]
        raw = originals[algorithm]
        damaged, hit, what = damage(raw, rng)
        kinds[what.split("@")[0].split(" ")[0]] = kinds.get(what.split("@")[0].split(" ")[0], 0) + 1
        d = root / f"case-{case}"
        d.mkdir()
        (d / "history.jsonl").write_bytes(damaged)
        open(log, "w").close()
        where = f"case {case} ({algorithm}, {what})"
        try:
            history(str(d))
            Driver(parse_study(study(algorithm, log, 20)), str(d), progress=False).run()
            after = history(str(d))
        except Exception as exc:  # noqa: BLE001 - the point: nothing may escape
            raise AssertionError(f"{where}: {type(exc).__name__}: {exc}") from exc
        runs = [json.loads(line)["trial"] for line in open(log)]
        kept = intact_results(raw, hit)
        for trial, (status, loss) in kept.items():
            rec = after.trials.get(trial)
            assert rec is not None and (rec.status, rec.value) == (status, loss), \
                f"{where}: trial {trial}'s result ({status}, {loss}) was lost: {rec}"
        again = set(runs) & set(kept)
        assert not again, f"{where}: trials {sorted(again)} had finished and ran again"
        assert len(runs) == len(set(runs)), f"{where}: a trial ran twice in one resume: {runs}"
        assert all(r.done for r in after.trials.values()), f"{where}: left unfinished"
        shutil.rmtree(d)
    assert set(kinds) >= {"truncate", "inject", "overwrite", "delete", "copy"}, kinds
