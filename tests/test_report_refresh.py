"""``report`` without ``--html`` keeps an earlier ``report --html``'s page current: it rewrote
trajectory.csv, summary.txt and the plots beside a page that still showed the older study."""
import os
import re

from tests.helpers import cli, study_dict, write_study


def trials_shown(page: str) -> tuple[int, int]:
    """The page's trial count in its heading, and the rows of its table."""
    with open(page, encoding="utf-8") as fh:
        text = fh.read()
    heading = int(re.search(r"<h2>Trials \((\d+)\)</h2>", text).group(1))
    body = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return heading, body.count("<tr")


def test_a_plain_report_refreshes_the_page_an_earlier_html_report_wrote(tmp_path):
    d = str(tmp_path / "d")
    data = study_dict(search={"max_trials": 2})
    path = write_study(str(tmp_path / "s.yaml"), data)
    assert cli("run", path, "--dir", d, "--quiet").returncode == 0
    assert cli("report", d, "--html").returncode == 0
    page = os.path.join(d, "report.html")
    assert trials_shown(page) == (2, 2)
    data["search"]["max_trials"] = 4  # the study goes on
    assert cli("run", write_study(path, data), "--dir", d, "--quiet").returncode == 0
    out = cli("report", d)
    assert out.returncode == 0, out.stderr
    assert trials_shown(page) == (4, 4)  # as trajectory.csv, rewritten beside it
    with open(os.path.join(d, "trajectory.csv")) as fh:
        assert len(fh.read().splitlines()) == 1 + 4
    assert f"wrote {page}" in out.stdout
    assert not [n for n in os.listdir(d) if ".tmp" in n]


def test_a_plain_report_writes_no_page_where_none_was_asked_for(tmp_path):
    d = str(tmp_path / "d")
    path = write_study(str(tmp_path / "s.yaml"), study_dict(search={"max_trials": 2}))
    assert cli("run", path, "--dir", d, "--quiet").returncode == 0
    out = cli("report", d)
    assert out.returncode == 0, out.stderr
    assert not os.path.exists(os.path.join(d, "report.html")) and "report.html" not in out.stdout
