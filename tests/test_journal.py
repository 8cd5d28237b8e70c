import errno
import json
import os
import zlib

import pytest

from autotune import events as ev
from autotune.errors import DiskFull

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


def sealed(event: dict) -> bytes:
    """A line with a correct checksum whatever it holds (as a buggy or foreign writer might)."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return body[:-1] + b',"c":"%08x"}\n' % zlib.crc32(body)


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
    Journal(str(path)).append([ev.ask(9, 1, [ev.trial_entry(3, {})])])
    h = History.load(Journal(str(path)))
    assert 3 in h.trials and len(h.warnings) == 1 and "no checksum" in h.warnings[0]


def test_corrupt_middle_line_and_garbage_are_skipped(tmp_path):
    path = tmp_path / "history.jsonl"
    lines = [ev.encode(e) for e in events(2)]
    lines.insert(2, b"\x00\x00garbage\n")
    lines.insert(4, b"[1, 2]\n")  # valid JSON, not an event
    path.write_bytes(b"".join(lines))
    h = History.load(Journal(str(path)))
    assert len(h.warnings) == 2 and h.damaged == 2
    assert sorted(h.trials) == [0, 1] and h.trials[1].status == "ok"


def test_a_changed_byte_costs_its_line_only(tmp_path):
    """An end line whose trial id was overwritten by another digit is still valid JSON; the
    checksum is what keeps it from being applied to the wrong trial."""
    path = tmp_path / "history.jsonl"
    Journal(str(path)).append(events(3))
    raw = path.read_bytes().split(b"\n")
    end1 = next(i for i, ln in enumerate(raw) if b'"e":"end","trial":1' in ln)
    raw[end1] = raw[end1].replace(b'"trial":1', b'"trial":2')
    path.write_bytes(b"\n".join(raw))
    h = History.load(Journal(str(path)))
    assert h.damaged == 1 and "checksum" in h.warnings[0]
    assert h.trials[1].status == "running" and h.trials[2].value == 2.0


def test_version_1_lines_are_read_and_upgraded(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events(2)))  # no checksums
    journal = Journal(str(path))
    h = History.load(journal)
    assert not h.warnings and h.version == 1 and sorted(h.trials) == [0, 1]
    journal.append([ev.ask(5, 1, [ev.trial_entry(2, {"x": 2})])])
    with open(path, "a") as fh:  # an unchecked line after a checked one is damage, not v1
        fh.write(json.dumps({"e": "ask", "t": 6, "n": 1, "trials": [{"trial": 3, "params": {}}]}) + "\n")
    h = History.load(journal)
    assert sorted(h.trials) == [0, 1, 2] and h.damaged == 1


def test_unknown_and_malformed_events_are_skipped(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_bytes(sealed({"e": "study", "t0": 0, "identity": {"metric": "loss"}})
                     + sealed({"e": "mystery"})
                     + sealed({"e": "end", "trial": 99, "status": "ok"}))  # no attempt
    h = History.load(Journal(str(path)))
    assert len(h.warnings) == 2 and not h.trials and not h.lost


def test_writers_cannot_write_malformed_events(tmp_path):
    journal = Journal(str(tmp_path / "h.jsonl"))
    for bad in ({"e": "mystery"}, {"e": "ask", "t": 0, "trials": [{"trial": 0, "params": {}}]},
                {"e": "submit", "t": 0, "trial": -1, "attempt": 0},
                {"e": "ask", "t": 0, "n": 2, "trials": [{"trial": 1, "params": {}}] * 2}):
        with pytest.raises(ev.Damaged):
            journal.append([ev.study("j", 0.0, {"metric": "loss"}, {}), bad])
    assert not os.path.exists(tmp_path / "h.jsonl") or not (tmp_path / "h.jsonl").read_bytes()


def test_an_ask_without_n_is_skipped_whole(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_bytes(sealed({"e": "study", "t0": 0, "identity": {"metric": "loss"}})
                     + sealed({"e": "ask", "t": 0, "trials": [{"trial": 0, "params": {"x": 1}}]}))
    h = History.load(Journal(str(path)))
    assert h.damaged == 1 and not h.trials and not h.calls


def test_an_injected_ask_reusing_an_id_is_refused(tmp_path):
    path = tmp_path / "history.jsonl"
    journal = Journal(str(path))
    journal.append(events(3))
    journal.append([ev.ask(9, 1, [ev.trial_entry(7, {"x": 7}), ev.trial_entry(1, {"x": 99})])])
    with open(path, "ab") as fh:  # a copy of a real line, checksum and all
        fh.write(path.read_bytes().split(b"\n")[1] + b"\n")
    h = History.load(journal)
    assert h.damaged == 2 and all("reuses the id of trial" in w for w in h.warnings)
    assert h.trials[1].params == {"x": 1} and h.trials[1].status == "ok" and 7 not in h.trials
    assert h.calls.count(("ask", 1, [0])) == 1


def test_a_finished_trial_is_not_submitted_again(tmp_path):
    path = tmp_path / "history.jsonl"
    journal = Journal(str(path))
    journal.append(events(2))
    journal.append([ev.submit(5, 1, 0, "again")])
    h = History.load(journal)
    assert h.damaged == 1 and h.trials[1].status == "ok" and not h.in_flight()


def test_a_copy_of_a_finished_trials_submit_line_changes_nothing_silently(tmp_path):
    """The tail of a history appended again (by hand, by a sync tool): a copy of a finished
    trial's end line changed nothing silently, but a copy of its submit line was skipped with
    a warning, one per copied trial on every read (status, report, each run), while the
    README says a copy of a line that starts an attempt changes nothing."""
    path = tmp_path / "history.jsonl"
    journal = Journal(str(path))
    journal.append(events(3))
    lines = path.read_bytes().splitlines(keepends=True)
    with open(path, "ab") as fh:
        fh.writelines(lines[-6:])  # trials 1 and 2: ask, submit, end each
        fh.writelines(ln for ln in lines if ln.startswith(b'{"e":"submit"'))
    h = History.load(journal)
    assert [w for w in h.warnings if "submit" in w] == []
    assert [(r.status, r.starts, r.cost_s) for r in h.trials.values()] == [("ok", 1, 0.5)] * 3
    assert h.spent_s == 1.5
    journal.append([ev.submit(9, 1, 0, "another job")])  # not a copy: still refused, said
    assert History.load(journal).warnings[-1].endswith("submit of trial 1, which had finished, "
                                                       "skipped")


def test_a_trial_whose_ask_is_lost_is_marked_lost_and_its_id_kept(tmp_path):
    path = tmp_path / "history.jsonl"
    Journal(str(path)).append(events(4))
    lines = path.read_bytes().split(b"\n")
    ask2 = next(i for i, ln in enumerate(lines) if b'"trial":2,"params"' in ln)
    lines[ask2] = b"\x00" * len(lines[ask2])
    path.write_bytes(b"\n".join(lines))
    h = History.load(Journal(str(path)))
    assert sorted(h.trials) == [0, 1, 3] and h.lost == {2}
    assert h.next_id == 4 and ("tell", 2) not in h.calls
    assert any("marked lost" in w for w in h.warnings)
    # the last ask lost too: its id is still above every id a new trial may take
    lines[-4] = b"garbage"  # the ask of trial 3 (the file ends with a newline)
    path.write_bytes(b"\n".join(lines))
    h = History.load(Journal(str(path)))
    assert h.lost == {2, 3} and h.next_id == 4


def test_a_study_record_after_its_trials_gives_them_their_values(tmp_path):
    path = tmp_path / "history.jsonl"
    evs = list(events(2))
    Journal(str(path)).append(evs[1:] + evs[:1])
    h = History.load(Journal(str(path)))
    assert h.trials[1].value == 1.0 and h.best("min").trial == 0


def test_a_full_disk_leaves_no_half_line(tmp_path, monkeypatch):
    path = tmp_path / "history.jsonl"
    journal = Journal(str(path))
    journal.append(events(1))
    before = path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 10:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(DiskFull, match="history.jsonl"):
        journal.append(events(2))
    monkeypatch.setattr(os, "write", real_write)
    assert path.read_bytes() == before
    journal.append([ev.ask(3, 1, [ev.trial_entry(5, {})])])
    assert not History.load(journal).warnings


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


def test_numpy_numbers_are_numbers_to_the_writer(tmp_path):
    import numpy as np

    journal = Journal(str(tmp_path / "h.jsonl"))
    journal.append([ev.study("j", 0.0, {"metric": "loss"}, {}),
                    ev.ask(np.float64(1.5), 1, [ev.trial_entry(0, {"x": 1})]),
                    ev.submit(2.0, 0, 0, "j0"),
                    ev.end(0, 0, "ok", np.float64(2.0), 3.0, np.float64(1.0), {"loss": np.float64(0.5)})])
    h = History.load(journal)
    assert not h.warnings and h.trials[0].value == 0.5 and h.last_t == 3.0


def test_every_kind_has_a_spec_and_a_reader():
    from autotune.history import _HANDLERS

    assert set(ev.Kind) == set(ev.SPECS) == {ev.Kind(k) for k in _HANDLERS}


def test_another_studys_history_appended_adds_none_of_its_trials(tmp_path):
    """A second study's history.jsonl appended to this one (cat b >> a): its study record
    was skipped, and so were its asks of ids this study had used, but its later trials (ids
    8.. here) were taken as this study's, with parameters of another space, their values
    counted for best, their number against max_trials. An ask for parameters other than
    the study record's is another study's line: skipped, its trials never counted."""
    def one(name, space, params, loss):
        journal = Journal(str(tmp_path / f"{name}.jsonl"))
        journal.append([ev.study(name, 0.0, {"space": space, "metric": "loss"}, {})])
        for t, (p, v) in enumerate(zip(params, loss)):
            journal.append([ev.ask(t, 1, [ev.trial_entry(t, p)]), ev.submit(t, t, 0, f"j{t}"),
                            ev.end(t, 0, "ok", t, t + 1, 1.0, {"loss": v})])
        return tmp_path / f"{name}.jsonl"

    a = one("a", {"x": {"values": [1, 2]}, "λ": 3}, [{"x": 1, "λ": 3}, {"x": 2, "λ": 3}], [5, 6])
    b = one("b", {"x": {"values": [7, 8, 9]}}, [{"x": 7}, {"x": 8}, {"x": 9}], [1, 2, 0.5])
    with open(a, "ab") as fh:
        fh.write(b.read_bytes())
    h = History.load(Journal(str(a)))
    assert sorted(h.trials) == [0, 1] and h.best("min").value == 5 and h.spent_s == 2.0
    assert h.next_id == 3 and h.lost == {2}  # its trial 2's id is never handed out here
    assert any("ask for trial 2 with parameters x, not this study's (x, λ): another study's "
               "line, skipped" in w for w in h.warnings)


def test_an_end_of_a_finished_trial_with_another_result_is_warned_of_a_copy_is_not(tmp_path):
    """A second study of the same space appended (cat b >> a): its asks reuse this study's
    ids and are refused, but its ends of trials 0 and 1, which had finished here, were
    dropped without a word, while the README says an inconsistent line is skipped with a
    warning. A copy of a trial's own end line (a replay) still changes nothing, silently."""
    def one(name, loss):
        journal = Journal(str(tmp_path / f"{name}.jsonl"))
        journal.append([ev.study(name, 0.0, {"space": {"x": [1, 2]}, "metric": "loss"}, {})])
        for t, v in enumerate(loss):
            journal.append([ev.ask(t, 1, [ev.trial_entry(t, {"x": t + 1})]),
                            ev.submit(t, t, 0, f"j{t}"),
                            ev.end(t, 0, "ok", t, t + 1, 1.0, {"loss": v})])
        return tmp_path / f"{name}.jsonl"

    a, b = one("a", [5, 6]), one("b", [1, 2])
    lines = a.read_bytes().splitlines(keepends=True)
    with open(a, "ab") as fh:
        fh.write(lines[-1])  # trial 1's own end again: a replay
    assert not History.load(Journal(str(a))).warnings
    with open(a, "ab") as fh:
        fh.write(b.read_bytes())
    h = History.load(Journal(str(a)))
    assert [(r.value, r.cost_s) for r in h.trials.values()] == [(5, 1.0), (6, 1.0)]
    ends = [w for w in h.warnings if ": end of trial" in w]
    assert ends == [f"history line {n}: end of trial {t}, which had finished, with another "
                    "result than its own (another study's line?), skipped"
                    for n, t in ((12, 0), (15, 1))], h.warnings
