import json
import os

from autotune.history import History
from autotune.journal import Journal


def events(n):
    yield {"e": "study", "name": "j", "t0": 0.0, "identity": {"mode": "min", "metric": "loss"}}
    for i in range(n):
        yield {"e": "ask", "t": i, "n": 1, "trials": [{"trial": i, "params": {"x": i}}]}
        yield {"e": "submit", "t": i, "trial": i, "attempt": 0, "job_id": f"j{i}"}
        yield {"e": "end", "trial": i, "attempt": 0, "status": "ok", "value": float(i),
               "metrics": {"loss": float(i)}, "start_s": i, "end_s": i + 0.5, "cost_s": 0.5}


def test_append_and_replay(tmp_path):
    journal = Journal(str(tmp_path / "history.jsonl"))
    journal.append(events(5))
    h = History.load(journal)
    assert not h.warnings
    assert sorted(h.trials) == [0, 1, 2, 3, 4]
    assert all(r.status == "ok" for r in h.trials.values())
    assert h.best("min").trial == 0 and h.best("max").trial == 4
    assert h.calls[:2] == [("ask", 1, [0]), ("tell", 0)]
    assert h.last_t == 4.5


def test_torn_last_line_is_reported_and_skipped(tmp_path):
    path = tmp_path / "history.jsonl"
    journal = Journal(str(path))
    journal.append(events(3))
    with open(path, "ab") as fh:
        fh.write(b'{"e": "end", "trial": 2, "stat')  # a crash mid-write
    h = History.load(Journal(str(path)))
    assert len(h.warnings) == 1 and "torn last line" in h.warnings[0]
    assert len(h.trials) == 3
    # the next append starts on a fresh line: the torn one cannot swallow it
    Journal(str(path)).append([{"e": "ask", "t": 9, "n": 1, "trials": [{"trial": 3, "params": {}}]}])
    h = History.load(Journal(str(path)))
    assert 3 in h.trials and len(h.warnings) == 1 and "corrupt line" in h.warnings[0]


def test_corrupt_middle_line_and_garbage_are_skipped(tmp_path):
    path = tmp_path / "history.jsonl"
    lines = [json.dumps(e) for e in events(2)]
    lines.insert(2, "\x00\x00garbage")
    lines.insert(4, "[1, 2]")  # valid JSON, not an event
    path.write_text("\n".join(lines) + "\n")
    h = History.load(Journal(str(path)))
    assert len(h.warnings) == 2
    assert sorted(h.trials) == [0, 1] and h.trials[1].status == "ok"


def test_unknown_and_malformed_events_are_skipped(tmp_path):
    path = tmp_path / "history.jsonl"
    Journal(str(path)).append([{"e": "study", "t0": 0}, {"e": "mystery"},
                               {"e": "end", "trial": 99, "status": "ok"}])
    h = History.load(Journal(str(path)))
    assert len(h.warnings) == 2 and not h.trials


def test_retry_then_final(tmp_path):
    journal = Journal(str(tmp_path / "h.jsonl"))
    journal.append([
        {"e": "study", "t0": 0, "identity": {"metric": "loss"}},
        {"e": "ask", "t": 0, "n": 1, "trials": [{"trial": 0, "params": {}}]},
        {"e": "submit", "t": 0, "trial": 0, "attempt": 0},
        {"e": "end", "trial": 0, "attempt": 0, "status": "failed", "final": False, "error": "x",
         "start_s": 0, "end_s": 1, "cost_s": 1},
    ])
    h = History.load(journal)
    assert h.trials[0].status == "pending" and h.in_flight()[0].trial == 0
    assert ("tell", 0) not in h.calls
    journal.append([{"e": "submit", "t": 1, "trial": 0, "attempt": 1},
                    {"e": "end", "trial": 0, "attempt": 1, "status": "ok", "metrics": {"loss": 2.0},
                     "start_s": 1, "end_s": 3, "cost_s": 2}])
    h = History.load(journal)
    assert h.trials[0].status == "ok" and h.trials[0].cost_s == 3 and h.trials[0].attempt == 1


def test_missing_file_is_empty(tmp_path):
    h = History.load(Journal(str(tmp_path / "none.jsonl")))
    assert not h.trials and not h.study and not os.path.exists(tmp_path / "none.jsonl")


def test_only_full_length_results_count_as_best(tmp_path):
    journal = Journal(str(tmp_path / "h.jsonl"))
    identity = {"metric": "loss", "mode": "min",
                "search_options": {"fidelity": {"min": 1, "max": 9, "eta": 3}}}
    journal.append([{"e": "study", "t0": 0, "identity": identity},
                    {"e": "ask", "t": 0, "n": 2, "trials": [
                        {"trial": 0, "params": {}, "fidelity": 1},
                        {"trial": 1, "params": {}, "fidelity": 9}]}])
    journal.append([{"e": "end", "trial": t, "attempt": 0, "status": "ok", "metrics": {"loss": v},
                     "start_s": 0, "end_s": 1 + t, "cost_s": 1} for t, v in ((0, 0.1), (1, 0.5))])
    h = History.load(journal)
    assert h.best("min").trial == 1  # the 1-epoch screening value is lower, but not a result
