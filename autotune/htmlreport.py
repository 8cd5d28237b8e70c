"""``autotune report DIR --html``: the report as one self-contained HTML file.

The summary, every plot (embedded as base64 PNG) and the trial table in one file that opens in
any browser, mailed or copied off the cluster without its directory. The table sorts on a
click of its header (a little inline script, nothing fetched); ``report.html?sort=value&desc=1``
opens it sorted, which is also how a test checks the sorting in a headless browser. Once
written, every later ``report`` rewrites it with the rest (``refreshed``).
"""
from __future__ import annotations

import base64
import html
import math
import os
from typing import Any

from .history import History

SCRIPT = r"""
(function () {
  var table = document.getElementById("trials");
  var body = table.tBodies[0];
  function key(cell) {
    var v = cell.getAttribute("data-v");
    if (v === null || v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortBy(col, desc) {
    var heads = table.tHead.rows[0].cells, index = -1;
    for (var i = 0; i < heads.length; i++) {
      heads[i].removeAttribute("aria-sort");
      if (heads[i].getAttribute("data-col") === col) index = i;
    }
    if (index < 0) return false;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      if (x === null || y === null) return x === y ? 0 : (x === null ? 1 : -1); // blanks last
      // numbers before words in a column holding both: a total order, which sort needs
      var c = typeof x !== typeof y ? (typeof x === "number" ? -1 : 1)
                                    : (x < y ? -1 : (x > y ? 1 : 0));
      return desc ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    heads[index].setAttribute("aria-sort", desc ? "descending" : "ascending");
    table.setAttribute("data-sorted", col + (desc ? ":desc" : ":asc"));
    return true;
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    th.addEventListener("click", function () {
      var col = th.getAttribute("data-col");
      sortBy(col, table.getAttribute("data-sorted") === col + ":asc");
    });
  });
  var q = new URLSearchParams(window.location.search);
  if (q.get("sort")) sortBy(q.get("sort"), q.get("desc") === "1");
})();
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; }
.plots img { max-width: 48%; margin: .3em; border: 1px solid #ddd; vertical-align: top; }
table { border-collapse: collapse; font-size: 13px; }
th { cursor: pointer; background: #eee; position: sticky; top: 0; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
tr.failed td { color: #a33; }
"""


def refreshed(study_dir: str, asked: bool, name: str = "report.html") -> bool:
    """Whether ``report`` writes the HTML page: asked for (``--html``), or one an earlier
    ``report --html`` left in ``study_dir``. Rewriting the CSV, the summary and the plots
    beside it and not the page left a page that disagreed with them (fewer trials, another
    best); kept current instead, as the rest of the report is."""
    return asked or os.path.isfile(os.path.join(study_dir, name))


def write_html_report(history: History, summary_text: str, plots: list[str], study_dir: str,
                      name: str = "report.html", states: dict[int, str] | None = None,
                      stages: dict[str, str] | None = None) -> str:
    """Write ``<study_dir>/report.html`` (atomically); returns its path. ``states`` and
    ``stages``: each trial's and stage's state as ``status`` says it
    (``states.trial_states``, ``states.stage_states``)."""
    from .trajectory import table, write_whole

    columns, rows = table(history, states, stages)  # trajectory.csv's own columns and rows
    trials = sum(1 for row in rows if row.get("round") != "stage")
    title = f"autotune report: {history.study.get('name', '')}"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<pre id='summary'>{html.escape(summary_text)}</pre>",
             "<h2>Plots</h2><div class='plots'>"]
    for path in plots:
        with open(path, "rb") as fh:
            data = base64.b64encode(fh.read()).decode("ascii")
        label = html.escape(os.path.splitext(os.path.basename(path))[0])
        parts.append(f"<img alt='{label}' title='{label}' src='data:image/png;base64,{data}'>")
    parts.append(f"</div><h2>Trials ({trials})</h2>")
    parts.append(table_html(columns, rows))
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    path = os.path.join(study_dir, name)

    def fill(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\n".join(parts))

    write_whole(path, fill)
    return path


def table_html(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """The trial table, trajectory.csv's columns and rows: each cell shows a rounded value and
    sorts by the one the CSV holds."""
    heads = "".join(f"<th data-col='{html.escape(str(c))}'>{html.escape(str(c))}</th>"
                    for c in columns)
    out = [f"<table id='trials'><thead><tr>{heads}</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(cell_html(row.get(c)) for c in columns)
        out.append(f"<tr class='{html.escape(str(row.get('status', '')))}'>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def cell_html(value: Any) -> str:
    """A cell: shown rounded, sorted by ``data-v``, the value the CSV holds. A float NaN (a
    failed trial's metric) shows as the CSV's ``nan`` and sorts with the blanks, last; an
    infinity sorts by the name JavaScript reads as one (``Infinity``; ``inf`` it reads as a
    word, which sorted ``-inf`` among the numbers)."""
    if isinstance(value, float) and math.isnan(value):
        return "<td data-v=''>nan</td>"
    if value is None or (not isinstance(value, str) and _is_na(value)):
        return "<td data-v=''></td>"
    if isinstance(value, float):
        shown = f"{value:.6g}"
        key = ("Infinity" if value > 0 else "-Infinity") if math.isinf(value) else str(value)
    else:
        shown = key = str(value)
    return f"<td data-v='{html.escape(key)}'>{html.escape(shown)}</td>"


def _is_na(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
    except ImportError:  # pragma: no cover - pandas is a dependency
        return isinstance(value, float) and math.isnan(value)
