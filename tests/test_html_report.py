"""``autotune report DIR --html``: one self-contained file, checked in a real headless browser."""
import csv
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from .helpers import cli, study_dict, write_study


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Table(HTMLParser):
    """The trial table of a DOM dump: its header names, its rows, and where it says it sorted."""

    def __init__(self):
        super().__init__()
        self.heads, self.rows, self.sorted, self.images = [], [], None, []
        self._in_table = self._in_body = False
        self._row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "trials":
            self._in_table, self.sorted = True, a.get("data-sorted")
        elif self._in_table and tag == "th":
            self.heads.append(a.get("data-col"))
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self._row = []
        elif self._row is not None and tag == "td":
            self._row.append(a.get("data-v"))
        elif tag == "img":
            self.images.append(a.get("src", ""))

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._in_table = self._in_body = False


def dump_dom(url: str) -> Table:
    exe = browser()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium in CI: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no headless browser on this machine (apt-get install chromium)")
    out = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=3000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    table = Table()
    table.feed(out.stdout)
    return table


def test_the_table_has_the_columns_and_rows_of_trajectory_csv(tmp_path):
    """The axis search's grid index as index_<parameter> columns, no column that no trial
    fills (round, epochs, parent), and nothing the CSV lacks: one table, two formats."""
    study = write_study(str(tmp_path / "s.yaml"), study_dict(
        space={"x": {"low": -3.0, "high": 3.0, "steps": 7}, "y": {"values": [-1.0, 0.0, 0.5]}},
        search={"algorithm": "axis", "max_trials": 6}))
    d = str(tmp_path / "d")
    assert cli("run", study, "--dir", d, "--quiet").returncode == 0
    assert cli("report", d, "--html").returncode == 0
    with open(os.path.join(d, "trajectory.csv"), newline="") as fh:
        header, *lines = list(csv.reader(fh))
    table = Table()
    with open(os.path.join(d, "report.html"), encoding="utf-8") as fh:
        table.feed(fh.read())
    assert table.heads == header and {"index_x", "index_y"} <= set(header)
    assert not {"round", "epochs", "parent", "index", "counts"} & set(header)
    assert [row[0] for row in table.rows] == [line[0] for line in lines]
    loss = header.index("loss")
    assert [float(row[loss]) for row in table.rows] == [float(line[loss]) for line in lines]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html")
    study = write_study(str(tmp / "s.yaml"), study_dict(search={"max_trials": 9}))
    d = str(tmp / "d")
    assert cli("run", study, "--dir", d, "--quiet").returncode == 0
    out = cli("report", d, "--html")
    assert out.returncode == 0, out.stderr
    path = os.path.join(d, "report.html")
    assert f"wrote {path}" in out.stdout
    return path


def test_the_file_stands_alone(report):
    text = open(report).read()
    assert not re.search(r"""(src|href)=['"](?!data:)""", text)  # nothing fetched from elsewhere
    assert text.count("data:image/png;base64,") >= 3


def test_a_browser_shows_every_trial_and_the_plots(report):
    table = dump_dom(f"file://{report}")
    assert len(table.rows) == 9 and table.sorted is None
    assert [int(r[table.heads.index("trial")]) for r in table.rows] == list(range(9))
    assert {"x", "y", "loss", "value", "best", "status", "cost_s"} <= set(table.heads)
    assert len(table.images) >= 3 and all(s.startswith("data:image/png;base64,")
                                          for s in table.images)


@pytest.mark.parametrize("desc", [False, True])
def test_the_browser_sorts_the_table(report, desc):
    table = dump_dom(f"file://{report}?sort=loss{'&desc=1' if desc else ''}")
    assert table.sorted == f"loss:{'desc' if desc else 'asc'}"
    losses = [float(r[table.heads.index("loss")]) for r in table.rows]
    assert len(losses) == 9 and losses == sorted(losses, reverse=desc)
    trials = [int(r[table.heads.index("trial")]) for r in table.rows]
    assert trials != list(range(9))  # reordered by the script, not left in trial order
