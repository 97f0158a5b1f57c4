"""leaderboard.html: the leaderboard as one self-contained page — the ranked table (sortable, with intervals and
the significance marks), every pair's verdict, effective robustness with its intervals and plot, and the notes.

Everything is inline (the plot a data: URI, style and script in the page) and the Content-Security-Policy
forbids any fetch, as report.html's. The board is read, never imported from here (leaderboard.py calls this),
and every string from the results is escaped by Jinja's autoescape.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from .leaderboard_stats import DIGITS, INCOMPARABLE, NOT_SEPARATED, UNTESTED

MARK_SIGNS = {NOT_SEPARATED: "=", INCOMPARABLE: "?"}  # as leaderboard.MARKS: the markdown and the page agree

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<link rel="icon" href="data:,">
<title>shift_hub leaderboard — {{ count }}</title>
<style>
  :root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --accent: #0969da; --warn: #9a6700; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: var(--fg); }
  main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 48px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  h2 { font-size: 17px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
  .meta, .note, figcaption { color: var(--muted); }
  code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--bg); padding: 1px 4px; border-radius: 4px; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
  th.text, td.text { text-align: left; }
  thead th { background: var(--bg); cursor: pointer; user-select: none; position: sticky; top: 0; }
  thead th:hover { color: var(--accent); }
  thead th::after { content: " \\2195"; color: #afb8c1; }
  thead th[aria-sort="ascending"]::after { content: " \\25B2"; color: var(--accent); }
  thead th[aria-sort="descending"]::after { content: " \\25BC"; color: var(--accent); }
  tbody tr:hover { background: #f0f6ff; }
  .pm { color: var(--muted); }
  .mark { font-weight: 700; color: var(--warn); margin-left: 4px; }
  .incomparable { color: var(--warn); }
  ul.marks { margin: 8px 0; padding-left: 20px; }
  figure { margin: 12px 0; }
  figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
</style>
</head>
<body>
<main>
<h1>shift_hub leaderboard</h1>
<p class="meta">Ranked by <code>{{ sort }}</code> ({{ count }}; {{ units }})
{%- if bootstrap %}; each value ± the half-width of its {{ level }} interval ({{ bootstrap.method }},
{{ bootstrap.resamples }} resamples, seed {{ bootstrap.seed }}){% elif p_intervals %}; ImageNet-P values ± the
half-width of the interval their results.json gives, no other value resampled (see the notes){% else %};
no intervals (bootstrap off, or no predictions.jsonl: see the notes){% endif %}.
Click a column header to sort.</p>

<h2>Ranking</h2>
<div class="scroll">
<table id="ranking" class="sortable">
<thead><tr>{% for c in columns %}<th data-type="{{ c.type }}" class="{{ c.type }}{{ c.css }}"{% if c.title %} title="{{ c.title }}"{% endif %}>{{ c.name }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in rows %}
<tr data-model="{{ row.label }}">{% for cell in row.cells %}<td class="{{ cell.type }}" data-sort="{{ cell.sort }}">{{ cell.text }}
{%- if cell.pm %} <span class="pm">± {{ cell.pm }}</span>{% endif %}
{%- if cell.mark %}<span class="mark" title="{{ cell.title }}">{{ cell.mark }}</span>{% endif %}</td>{% endfor %}</tr>
{%- endfor %}
</tbody>
</table>
</div>
{%- if marks %}
<ul class="marks" id="marks">
{%- for m in marks %}
<li><span class="mark">{{ m.sign }}</span> #{{ m.rank }} {{ m.label }}: {{ m.words }}</li>
{%- endfor %}
</ul>
{%- endif %}
{%- if pairs %}

<h2>Significance between models</h2>
<p class="note">A paired bootstrap of the difference in <code>{{ sort }}</code> over the images both models scored:
separated when its {{ level }} interval excludes 0. Results on other data, subsets or images are incomparable and
never compared.</p>
<div class="scroll">
<table id="pairs" class="sortable">
<thead><tr><th class="text" data-type="text">first</th><th class="text" data-type="text">second</th>
<th data-type="num">difference (first minus second)</th><th class="text" data-type="text">{{ level }} interval</th>
<th class="text" data-type="text">verdict</th></tr></thead>
<tbody>
{%- for p in pairs %}
<tr class="{{ p.css }}"><td class="text" data-sort="{{ p.first_sort }}">{{ p.first }}</td><td class="text" data-sort="{{ p.second_sort }}">{{ p.second }}</td>
<td data-sort="{{ p.sort }}">{{ p.difference }}</td><td class="text" data-sort="{{ p.interval }}">{{ p.interval }}</td>
<td class="text" data-sort="{{ p.verdict }}">{{ p.verdict }}</td></tr>
{%- endfor %}
</tbody>
</table>
</div>
{%- endif %}
{%- if er_columns %}

<h2>Effective robustness</h2>
<p class="note">Accuracy points above the line fitted across these models to logit(shifted top-1) vs logit(clean
top-1) (Taori et al. 2020; Miller et al. 2021). Each interval resamples the model's own clean and shifted top-1
(paired) with the line held fixed.</p>
<div class="scroll">
<table id="effective-robustness" class="sortable">
<thead><tr><th class="text" data-type="text">model</th>{% for c in er_columns %}<th data-type="num">{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in er_rows %}
<tr>{% for cell in row %}<td class="{{ cell.type }}" data-sort="{{ cell.sort }}">{{ cell.text }}
{%- if cell.pm %} <span class="pm">± {{ cell.pm }}</span>{% endif %}</td>{% endfor %}</tr>
{%- endfor %}
</tbody>
</table>
</div>
<p class="note">Fits (logit space): {% for f in fits %}<code>{{ f.id }}</code> = {{ f.line }}{% if not loop.last %}; {% endif %}{% endfor %}</p>
{%- if plot %}
<figure><img id="er-plot" src="{{ plot }}" alt="effective robustness: shifted vs clean top-1 per model, with 95 % error bars">
<figcaption>Shifted vs clean top-1 on logit axes; bars: each accuracy's {{ level }} interval.</figcaption></figure>
{%- else %}
<p class="note">The plot was not drawn (--no-plots, or it failed: see the warning).</p>
{%- endif %}
{%- endif %}
{%- if notes %}

<h2>Notes</h2>
<ul id="notes">{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>
{%- endif %}
</main>
<script>
// Sort a table by the clicked column; missing values ("") stay last either way.
document.querySelectorAll("table.sortable thead th").forEach(function (th) {
  th.addEventListener("click", function () {
    var col = th.cellIndex, table = th.closest("table"), body = table.tBodies[0];
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.dataset.type === "num";
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
</script>
</body>
</html>
"""


def write_leaderboard_html(board, path, plot=None) -> Path:
    """Render the page for `board` (a leaderboard.Leaderboard) at `path`; `plot` is the effective-robustness PNG."""
    from jinja2 import Environment

    level = f"{100 * board.bootstrap.get('level', 0.95):g} %"
    count = f"{len(board.rows)} model" + ("" if len(board.rows) == 1 else "s")
    fitted = [t.id for t in board.shift_tasks if board.fits.get(t.id)]
    resampled = any(k not in board.p_columns for r in board.rows for k in r.intervals)  # ImageNet-P's are not
    page = Environment(autoescape=True).from_string(PAGE).render(
        sort=board.sort, count=count, level=level, units=board.units(),
        bootstrap=board.bootstrap if resampled else None, p_intervals=any(r.intervals for r in board.rows),
        columns=[{"name": "rank", "type": "num"}, {"name": "model", "type": "text"},
                 *(_header(board, i) for i in board.columns), {"name": "data", "type": "text"}],
        rows=[{"label": r.label, "cells": _cells(board, k, level)} for k, r in enumerate(board.rows)],
        marks=[{"sign": MARK_SIGNS[r.versus.status], "rank": r.rank, "label": r.label, "words": board.mark_words(k)}
               for k, r in enumerate(board.rows) if r.versus and r.versus.status in MARK_SIGNS],
        pairs=[_pair(board, p) for p in board.pairs] if any(p.status != UNTESTED for p in board.pairs) else [],
        er_columns=fitted, er_rows=[_er_cells(r, fitted) for r in board.rows],
        fits=[{"id": t, "line": board.fit_text(t)} for t in fitted],
        plot=_data_uri(plot), notes=[plain(n) for n in board.notes])
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def _cells(board, k: int, level: str) -> list[dict]:
    row = board.rows[k]
    rank = {"type": "num", "text": str(row.rank), "sort": str(row.rank)}
    sign = MARK_SIGNS.get(row.versus.status) if row.versus else None
    if sign:
        rank.update(mark=sign, title=board.mark_words(k))
    cells = [rank, {"type": "text", "text": row.label, "sort": row.label}]
    for column in board.columns:
        cell = _number(row.values.get(column), row.intervals.get(column), digits=DIGITS.get(column, 2))
        why = board.p_incomparable.get(column)
        if why and row.values.get(column) is not None:  # the models of this column compare unlike with unlike
            cell.update(type="num incomparable", mark="?", title=f"incomparable: {why}")
        cells.append(cell)
    return cells + [{"type": "text", "text": row.data, "sort": row.data}]


def _header(board, column: str) -> dict:
    why = board.p_incomparable.get(column)
    return {"name": column, "type": "num", "css": " incomparable" if why else "",
            "title": f"incomparable: {why}" if why else ""}


def _er_cells(row, fitted: list) -> list[dict]:
    return [{"type": "text", "text": row.label, "sort": row.label},
            *(_number(row.effective_robustness.get(t), row.er_intervals.get(t), signed=True) for t in fitted)]


def _number(value, ci, signed: bool = False, digits: int = 2) -> dict:
    """A value cell: two decimals (or `digits`), the half-width of its interval beside it, the unrounded value to
    sort by."""
    if value is None:
        return {"type": "num", "text": "-", "sort": ""}
    shown = round(value, digits) + 0.0
    text = f"{shown:+.{digits}f}" if signed and shown else f"{shown:.{digits}f}"
    return {"type": "num", "text": text, "sort": repr(float(value)),
            "pm": "" if ci is None else f"{(ci[1] - ci[0]) / 2:.{digits}f}"}


def _pair(board, pair) -> dict:
    a, b = board.rows[pair.first], board.rows[pair.second]
    compared = pair.low is not None
    return {"first": f"#{a.rank} {a.label}", "second": f"#{b.rank} {b.label}",
            "first_sort": f"{a.rank:06d}", "second_sort": f"{b.rank:06d}",
            "difference": "-" if pair.difference is None else f"{pair.difference:+.2f}",
            "sort": "" if pair.difference is None else repr(float(pair.difference)),
            "interval": f"[{pair.low:+.2f}, {pair.high:+.2f}]" if compared else "-",
            "verdict": pair.status + (f": {pair.reason}" if pair.reason else ""), "css": pair.status.replace(" ", "-")}


def plain(note: str) -> str:
    """A markdown note as plain text: its escapes and code-span backticks gone, its HTML entities read back
    (the page escapes it again)."""
    return html.unescape(re.sub(r"\\(.)|`", lambda m: m.group(1) or "", note))


def _data_uri(path) -> str:
    if not path or not Path(path).is_file():
        return ""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
