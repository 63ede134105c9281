"""HTML renderer: one self-contained page (inline CSS, script and SVG figures; nothing fetched at view time).

Columns sort on a click on their header (numbers by value, missing values
last); check boxes filter rows and columns by dataset, student and method.
"""
from __future__ import annotations

import html
import io
import re

from eegkd_bench.leaderboard.document import Document, FigureSpec, Table

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222}
h1{font-size:1.5em}h1.sim{color:#b22222}
.banner{background:#b22222;color:#fff;font-weight:bold;padding:.6em 1em;border-radius:4px;margin:1em 0}
dl.prov{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;font-size:.9em}
dl.prov dt{font-weight:bold}dl.prov dd{margin:0}
.legend{font-size:.9em;color:#444;max-width:70em}
fieldset{display:inline-block;vertical-align:top;border:1px solid #ccc;margin:0 1em .5em 0;font-size:.9em}
table.board{border-collapse:collapse;margin:.5em 0 1.5em}
table.board th,table.board td{border:1px solid #bbb;padding:3px 8px}
table.board td.num{text-align:right;font-variant-numeric:tabular-nums}
table.board th[data-col]{cursor:pointer;user-select:none;background:#f3f3f3}
table.board th[aria-sort=ascending]::after{content:" ▲"}table.board th[aria-sort=descending]::after{content:" ▼"}
table.board caption{font-weight:bold;text-align:left;padding:.3em 0}
.hidden{display:none}
figure{display:inline-block;margin:.5em 1em 1em 0;vertical-align:top}
figure svg{max-width:100%;height:auto}figcaption{font-size:.85em;color:#444}
"""

_SCRIPT = """
function sortKey(td){const s=td.dataset.sort;return s===undefined||s===''?null:parseFloat(s);}
function sortTable(th){
  const table=th.closest('table'),col=+th.dataset.col,body=table.tBodies[0];
  const dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
  table.querySelectorAll('th[data-col]').forEach(h=>h.removeAttribute('aria-sort'));
  th.setAttribute('aria-sort',dir===1?'ascending':'descending');
  const rows=Array.from(body.rows);
  rows.sort((a,b)=>{
    const x=a.cells[col],y=b.cells[col],kx=sortKey(x),ky=sortKey(y);
    if(kx===null&&ky===null)return dir*x.textContent.localeCompare(y.textContent);
    if(kx===null)return 1;if(ky===null)return -1;return dir*(kx-ky);
  });
  rows.forEach(r=>body.appendChild(r));
}
function applyFilters(){
  const keep={};
  document.querySelectorAll('input[data-filter]').forEach(b=>{
    (keep[b.dataset.filter]=keep[b.dataset.filter]||new Set());if(b.checked)keep[b.dataset.filter].add(b.value);});
  const shown=el=>Object.keys(keep).every(k=>el.dataset[k]===undefined||keep[k].has(el.dataset[k]));
  document.querySelectorAll('[data-filtered]').forEach(el=>el.classList.toggle('hidden',!shown(el)));
}
document.querySelectorAll('th[data-col]').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
document.querySelectorAll('input[data-filter]').forEach(b=>b.addEventListener('change',applyFilters));
"""


def _attrs(tags: dict[str, str | None]) -> str:
    return "".join(f' data-{k}="{html.escape(v, quote=True)}"' for k, v in tags.items() if v) + (
        " data-filtered" if any(tags.values()) else "")


def _table(t: Table) -> str:
    e = html.escape
    cols = t.column_datasets or [None] * len(t.columns)
    n_stub = len(t.stub)
    out = [f'<table class="board" id="{e(t.key, quote=True)}"><caption>{e(t.caption)}</caption><thead>']
    sortable = "".join(f'<th data-col="{i}"{" rowspan=2" if t.groups else ""}>{e(s)}</th>' for i, s in enumerate(t.stub))
    if t.groups:
        group_cells, i = [], 0
        for g, span in t.groups:
            # a group over one dataset's columns hides with them
            tag = _attrs({"dataset": cols[i]}) if len(set(cols[i:i + span])) == 1 else ""
            group_cells.append(f'<th colspan="{span}"{tag}>{e(g)}</th>')
            i += span
        out.append(f"<tr>{sortable}{''.join(group_cells)}</tr><tr>")
    else:
        out.append(f"<tr>{sortable}")
    out.append("".join(f'<th data-col="{n_stub + j}"{_attrs({"dataset": cols[j]})}>{e(c)}</th>'
                       for j, c in enumerate(t.columns)) + "</tr></thead><tbody>")
    for row in t.rows:
        cells = "".join(f"<td>{e(s)}</td>" for s in row.stub)
        for j, c in enumerate(row.cells):
            sort = "" if c.sort is None else f' data-sort="{c.sort:.10g}"'
            text = f"<strong>{e(c.text)}</strong>" if c.best and c.text else e(c.text)
            cells += f'<td class="num"{sort}{_attrs({"dataset": cols[j]})}>{text}</td>'
        out.append(f"<tr{_attrs(row.tags)}>{cells}</tr>")
    out.append("</tbody></table>")
    out += [f'<p class="legend">{e(n)}</p>' for n in t.notes]
    wrap = _attrs({"dataset": t.dataset}) if t.dataset else ""
    return f"<section{wrap}>" + "\n".join(out) + "</section>"


def inline_svg(fig: FigureSpec, n: int) -> str:
    """The figure drawn as SVG markup for embedding, its element ids made unique within the page."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    figure = fig.draw()
    FigureCanvasSVG(figure)
    buf = io.StringIO()
    with rc_context({"svg.hashsalt": "eegkd-bench"}):
        figure.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[svg.index("<svg"):], flags=re.S)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    prefix = f"f{n}-"

    def fix(m: re.Match) -> str:
        name = m.group(2)
        return f"{m.group(1)}{prefix}{name}" if name in ids else m.group(0)

    svg = re.sub(r'(\bid=")([^"]+)', fix, svg)
    return re.sub(r'((?:href="|url\()#)([^")]+)', fix, svg)


def render_html(doc: Document) -> str:
    """The document as one self-contained HTML page."""
    e = html.escape
    sim = ' class="sim"' if doc.simulated else ""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(doc.title)}</title><style>{_CSS}</style></head><body>", f"<h1{sim}>{e(doc.title)}</h1>"]
    if doc.simulated:
        out.append(f'<div class="banner" role="alert">{e(doc.simulated)}</div>')
    out.append('<dl class="prov">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in doc.provenance) + "</dl>")
    out.append('<form id="filters">' + "".join(
        f"<fieldset><legend>{e(tag.capitalize())}</legend>" + "".join(
            f'<label><input type="checkbox" data-filter="{e(tag, quote=True)}" value="{e(v, quote=True)}" checked> '
            f"{e(v)}</label> " for v in values) + "</fieldset>"
        for tag, values in doc.filters.items() if values) + "</form>")
    out += [f'<p class="legend">{e(line)}</p>' for line in doc.legend]
    n = 0
    for t in doc.tables:
        out.append(_table(t))
        for f in (f for f in doc.figures if f.table == t.key):
            n += 1
            out.append(f"<figure{_attrs({'dataset': f.dataset})}>{inline_svg(f, n)}"
                       f"<figcaption>{e(f.caption)}</figcaption></figure>")
    for heading, lines in doc.after:
        out.append(f"<h2>{e(heading)}</h2><ul>" + "".join(f"<li>{e(line)}</li>" for line in lines) + "</ul>")
    out.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"
