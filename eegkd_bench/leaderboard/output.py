"""Entry points: render a leaderboard as text, write every format and figure, export the raw records."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable, Sequence

from eegkd_bench.errors import UserError
from eegkd_bench.leaderboard.aggregate import Board, build_board, shown_under_label
from eegkd_bench.leaderboard.document import Document
from eegkd_bench.leaderboard.sections import report_sections
from eegkd_bench.leaderboard.stat_tables import Statistics, board_statistics
from eegkd_bench.leaderboard.stats import paired
from eegkd_bench.leaderboard.tables import build_document

FORMATS = ("md", "csv", "latex", "html")
EXTENSIONS = {"md": "md", "csv": "csv", "latex": "tex", "html": "html"}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        close = difflib.get_close_matches(str(fmt), FORMATS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown leaderboard format {fmt!r}; {hint}expected one of {', '.join(FORMATS)}")


def _prepare(records: list[dict[str, Any]], title: str | None, command: str | None,
             metric: str | Sequence[str] | None, digits: int,
             reference: str | Sequence[str] | None) -> tuple[Board, Statistics, Document]:
    from eegkd_bench.leaderboard.plots import figure_specs
    from eegkd_bench.leaderboard.stat_plots import statistics_figures

    records = [shown_under_label(r) for r in records]
    board = build_board(records, metric, reference=reference)
    # the paired test uses one metric: the one asked for, or the default when several are shown
    one = metric if isinstance(metric, str) and "," not in metric else None
    pooled = paired(board, one)
    per_student = paired(board, "primary", by_student=True)
    sections = report_sections(board.ok, board.roles, board.notes)
    statistics = board_statistics(board)
    doc = build_document(board, pooled, per_student, sections, records, title, command, digits, statistics)
    plot_metric = metric if isinstance(metric, str) and metric != "key" and "," not in metric else None
    doc.figures = figure_specs(board, sections, plot_metric) + statistics_figures(board, statistics)
    return board, statistics, doc


def _text(board: Board, statistics: Statistics, doc: Document, fmt: str, *, figures: bool = False) -> str:
    from eegkd_bench.leaderboard import render_csv, render_html, render_latex, render_md

    if fmt == "csv":
        return render_csv.render_csv(board, doc, statistics)
    if fmt == "md":
        return render_md.render_md(doc, figures=figures)
    if fmt == "latex":
        return render_latex.render_latex(doc)
    return render_html.render_html(doc)


def render(records: Iterable[dict[str, Any]], fmt: str = "md", title: str | None = None, *,
           command: str | None = None, metric: str | Sequence[str] | None = None, digits: int = 3,
           reference: str | Sequence[str] | None = None) -> str:
    """The leaderboard as Markdown, CSV, LaTeX or HTML text, with provenance and the paired statistics.

    ``reference`` names the proposed method(s) the paired tests compare against
    every other (default: the role each plugin declares). HTML embeds its figures.
    """
    _check_format(fmt)
    board, statistics, doc = _prepare(list(records), title, command, metric, digits, reference)
    return _text(board, statistics, doc, fmt)


def write_leaderboard(records: Iterable[dict[str, Any]], out_dir: Path | str,
                      formats: Sequence[str] = ("md", "csv", "html", "latex"), command: str | None = None,
                      *, title: str | None = None, metric: str | None = None,
                      reference: str | Sequence[str] | None = None) -> list[Path]:
    """Write ``leaderboard.<ext>`` in each format plus every figure (PNG, SVG): accuracy vs FLOPs, heatmaps,
    the meta-analysis forest plot and the critical-difference diagram."""
    from eegkd_bench.leaderboard.plots import save_figures

    records = list(records)
    if not records:
        return []
    for fmt in formats:
        _check_format(fmt)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create leaderboard directory {out}: {exc.strerror}; pass a writable --out") from None
    board, statistics, doc = _prepare(records, title, command, metric, 3, reference)
    paths = []
    for fmt in formats:
        path = out / f"leaderboard.{EXTENSIONS[fmt]}"
        path.write_text(_text(board, statistics, doc, fmt, figures=True), encoding="utf-8")
        paths.append(path)
    return paths + save_figures(doc.figures, out)


def export_records(records: Iterable[dict[str, Any]], path: Path | str, fmt: str = "csv") -> Path:
    """Write the raw records as one flat table (:func:`eegkd_bench.results.records_frame`) to a file."""
    from eegkd_bench.results import records_frame

    if fmt not in ("csv", "parquet"):
        raise UserError(f"unknown export format {fmt!r}; expected csv or parquet")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError("writing parquet needs pyarrow; run: pip install pyarrow "
                            "(or pip install 'eegkd-bench[parquet]'), or use --format csv") from None
    table = records_frame(list(records))
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}; choose a writable --out path") from None
    return path
