"""HTML building blocks of the report: a page that fits a laptop screen, tables that wrap
instead of overflowing, figures one per row with a caption saying what a good GAN looks like.

Every function returns a string; images arrive as PNG bytes (the stage reads the files), so
the page is self-contained and can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

from audit.reporting.verdicts import Row, columns_of, p_text, recovered_text

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1180px;margin:1.5em auto;padding:0 1em;
     color:#1f2328;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.8em}
h3{margin-top:1.4em}
.note{color:#57606a;font-size:14px}.warn{background:#fff8c5;padding:.6em .8em;border:1px solid #d4a72c;border-radius:6px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px;margin:.6em 0}
td,th{border:1px solid #d0d7de;padding:4px 7px;vertical-align:top}th{background:#f6f8fa;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
table.verdicts{width:100%;table-layout:fixed}table.verdicts td,table.verdicts th{overflow-wrap:anywhere}
table.verdicts td.gan{font-weight:600}
td.flagged{background:#ffebe9}td.not-flagged{background:#dafbe1}td.undefined{background:#f6f8fa;color:#57606a}
td .p{display:block;color:#57606a;font-size:11px}
td.recovered{color:#1a7f37;font-weight:600}td.missed{color:#cf222e;font-weight:600}
figure{margin:1em 0 1.6em}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:13px;margin-top:.3em}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border:1px solid #d0d7de;font-size:12px}
nav a{margin-right:.8em;font-size:14px}
"""


def esc(value) -> str:
    return html.escape(str(value))


def fmt(value, digits: int = 4) -> str:
    """A table cell: booleans as yes/no, floats to ``digits`` significant figures, never 'nan'."""
    if value is None:
        return "&ndash;"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "&ndash;"
        return "inf" if np.isinf(value) else f"{value:.{digits}g}"
    return esc(value)


def table(frame: pd.DataFrame, numeric_right: bool = True) -> str:
    """A plain table in a horizontally scrollable box (never wider than the page)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        cells = []
        for value in values:
            numeric = numeric_right and isinstance(value, (int, float, np.integer, np.floating)) \
                and not isinstance(value, (bool, np.bool_))
            cells.append(f'<td class="num">{fmt(value)}</td>' if numeric else f"<td>{fmt(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def figure(png: bytes, caption: str, alt: str) -> str:
    """One figure across the page width, with its caption (HTML allowed in ``caption``)."""
    data = base64.b64encode(png).decode()
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def verdict_table(rows: list[Row]) -> str:
    """The table the report opens with: a row per GAN, a column per test, coloured by state."""
    titles = columns_of(rows)
    any_planted = any(row.planted for row in rows)
    head = "<th>GAN</th>" + "".join(f"<th>{esc(t)}</th>" for t in titles)
    head += "<th>planted truth</th>" if any_planted else ""
    body = []
    for row in rows:
        cells = [f'<td class="gan">{esc(row.gan)}<span class="p">{esc(row.planted or row.kind)}</span></td>']
        for title in titles:
            cell = row.cells.get(title)
            if cell is None:
                cells.append('<td class="undefined">not run</td>')
                continue
            p = p_text(cell)
            cells.append(f'<td class="{cell["state"].replace(" ", "-")}" title="{esc(cell["hypothesis"])}">'
                         f'{esc(cell["text"])}{f"<span class=p>{p}</span>" if p else ""}</td>')
        if any_planted:
            text = recovered_text(row)
            css = "recovered" if row.recovered else ("missed" if row.recovered is False else "")
            cells.append(f'<td class="{css}">{esc(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    legend = ('<p class="legend note"><span class="flagged" style="background:#ffebe9">flagged: H0 rejected</span>'
              '<span style="background:#dafbe1">not flagged: consistent with H0</span>'
              '<span style="background:#f6f8fa">undefined: the test could not run</span> '
              "Each cell is a test with a stated error rate (hover for its null hypothesis); "
              "not flagged means the test found no evidence, not that the GAN is proven right. "
              "A row's cells are decided together (Holm's adjustment over its tests, the adjusted p-value "
              "shown after the test's own): a GAN that learned the distribution gets any flag with "
              "probability at most the tests' level.</p>")
    return (f'<table class="verdicts"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            + legend)


def page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")
