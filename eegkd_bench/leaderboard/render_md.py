"""Markdown renderer."""
from __future__ import annotations

from eegkd_bench.leaderboard.document import Document, Table


def _esc(s: str) -> str:
    return s.replace("|", "\\|")


def table_md(t: Table) -> list[str]:
    """A Markdown table (group labels folded into the column names), bold marking the best cells."""
    header = list(t.stub) + t.flat_columns()
    out = ["| " + " | ".join(_esc(h) for h in header) + " |",
           "|" + "|".join([":---"] * len(t.stub) + ["---:"] * len(t.columns)) + "|"]
    for row in t.rows:
        vals = [_esc(s) for s in row.stub] + [f"**{_esc(c.text)}**" if c.best and c.text else _esc(c.text)
                                              for c in row.cells]
        out.append("| " + " | ".join(vals) + " |")
    return out


def render_md(doc: Document, *, figures: bool = False) -> str:
    """The document as Markdown; ``figures`` links the PNG files written next to it."""
    out = [f"# {doc.title}", ""]
    out += [f"- **{k}**: `{v}`" if k == "command" else f"- **{k}**: {v}" for k, v in doc.provenance]
    out.append("")
    out += [f"> {line}" for line in doc.legend]
    for t in doc.tables:
        out += ["", f"## {t.caption}", ""]
        out += table_md(t)
        out += ["", *[f"*{note}*" for note in t.notes]] if t.notes else []
        if figures:
            for f in (f for f in doc.figures if f.table == t.key):
                out += ["", f"![{_esc(f.caption)}]({f.stem}.png)"]
    for heading, lines in doc.after:
        out += ["", f"## {heading}", ""]
        out += [f"- {line}" for line in lines]
    return "\n".join(out) + "\n"
