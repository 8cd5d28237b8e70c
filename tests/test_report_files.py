"""``autotune report DIR``'s files as a demanding user meets them: written whole or not at
all (a full disk part-way is one line, exit status 75, and leaves no temporary file), the
concurrency plot of a study still running, the HTML table's order on infinite values."""
from __future__ import annotations

import errno
import os

import pytest

from autotune.cli import DISK_FULL_EXIT, main
from autotune.driver import Driver
from autotune.study import parse_study
from tests.helpers import study_dict


@pytest.fixture
def done(tmp_path):
    """A finished 4-trial study (inline), reported once."""
    d = str(tmp_path / "d")
    Driver(parse_study(study_dict(search={"max_trials": 4})), d, progress=False).run()
    assert main(["report", d, "--html"]) == 0
    return d


def leftovers(d: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(root, n), d) for root, _, files in os.walk(d)
                  for n in files if ".tmp" in n)


def no_space(path: str) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")  # a write's: it names no file


def test_a_full_disk_writing_a_plot_is_one_line_and_leaves_no_half_written_file(
        done, capsys, monkeypatch):
    from matplotlib.figure import Figure

    before = open(os.path.join(done, "plots", "concurrency.png"), "rb").read()
    real = Figure.savefig

    def savefig(self, fname, *args, **kw):
        if "concurrency" in str(fname):  # part of the file written, then the disk is full
            with open(fname, "wb") as fh:
                fh.write(b"\x89PNG\r\n")
            raise no_space(fname)
        return real(self, fname, *args, **kw)

    monkeypatch.setattr(Figure, "savefig", savefig)
    capsys.readouterr()
    assert main(["report", done]) == DISK_FULL_EXIT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on device" in err[0], err
    assert os.path.join(done, "plots", "concurrency.png") in err[0] and "report" in err[0]
    assert leftovers(done) == []
    assert open(os.path.join(done, "plots", "concurrency.png"), "rb").read() == before


@pytest.mark.parametrize("name", ["report.html", "summary.txt", "trajectory.csv"])
def test_a_full_disk_writing_a_file_of_the_report_names_it_and_leaves_it_whole(
        done, capsys, monkeypatch, name):
    path = os.path.join(done, name)
    before = open(path, "rb").read()
    real = os.replace

    def replace(src, dst, *args, **kw):
        if os.fspath(dst) == path:  # the temporary file written, then no room for its entry
            raise OSError(errno.EDQUOT, "Disk quota exceeded", os.fspath(src))
        return real(src, dst, *args, **kw)

    monkeypatch.setattr(os, "replace", replace)
    capsys.readouterr()
    assert main(["report", done, "--html"]) == DISK_FULL_EXIT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"autotune: error: no space left on device writing {path}; free some "
                   "space, then run report again"]
    assert leftovers(done) == []
    assert open(path, "rb").read() == before


def signed(params: dict, ctx) -> dict:
    """A finite loss, and a second metric out to the infinities (only the optimised metric
    must be finite) or not a number."""
    other = {"a": float("-inf"), "b": -1e300, "c": -1.0, "d": 0.0, "e": float("inf"),
             "f": float("nan")}[params["k"]]
    return {"loss": params["x"], "other": other}


def test_the_html_table_sorts_infinities_at_the_ends_and_shows_nan(tmp_path):
    from tests.test_html_report import dump_dom

    import autotune as at

    d = str(tmp_path / "d")
    at.Study(name="inf", objective={"entry": signed, "metric": "loss"}, dir=d,
             space={"k": {"values": ["e", "c", "a", "f", "d", "b"]}, "x": 1.0},
             search={"algorithm": "grid"}, executor={"kind": "inline"}).run(progress=False)
    assert main(["report", d, "--html"]) == 0
    page = os.path.join(d, "report.html")
    for desc in (False, True):
        table = dump_dom(f"file://{page}?sort=other{'&desc=1' if desc else ''}")
        ks = [r[table.heads.index("k")] for r in table.rows]
        assert ks == (["a", "b", "c", "d", "e", "f"] if not desc
                      else ["e", "d", "c", "b", "a", "f"])  # NaN, as blanks, last
    assert "<td data-v=''>nan</td>" in open(page, encoding="utf-8").read()  # as the CSV


def test_the_concurrency_plot_of_a_running_study_counts_the_trials_still_running(
        tmp_path, monkeypatch):
    """A report while trials run (here an ask/tell loop's, held open) drew the ended trials
    only: its plot fell to 0 trials running while two ran."""
    import autotune as at
    import autotune.report as report

    seen = []
    real = report.concurrency

    def spy(df, *args):
        seen.append(real(df, *args))
        return seen[-1]

    monkeypatch.setattr(report, "concurrency", spy)
    d = str(tmp_path / "d")
    study = at.Study(name="live", objective={"metric": "loss"}, dir=d,
                     space={"x": {"low": 0.0, "high": 1.0}}, search={"max_trials": 5})
    with study:
        first = study.ask()
        study.ask(), study.ask()       # two held open: they run
        study.tell(first, {"loss": 1.0})
        assert main(["report", d]) == 0
    (times, running), = seen
    assert running[-1] == 2 and max(running) == 3
