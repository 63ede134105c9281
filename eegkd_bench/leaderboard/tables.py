"""The leaderboard's tables, built from an aggregated board: headline, one per dataset, report sections."""
from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from eegkd_bench.leaderboard.aggregate import COST_FIELDS, Board, multi_teacher
from eegkd_bench.leaderboard.document import LABELS, Cell, Document, Row, Table, eng, provenance, title_of
from eegkd_bench.leaderboard.roles import TEACHER_ROW
from eegkd_bench.leaderboard.sections import Section
from eegkd_bench.leaderboard.stat_tables import Statistics, statistics_tables
from eegkd_bench.leaderboard.stats import ALPHA, MIN_PAIRS, paired_lines

#: Cost columns of the headline, and which of them get a share of the teacher's.
HEADLINE_COST = ("params", "flops", "latency_ms")
_VS_TEACHER = {"params", "flops", "latency_ms", "onnx_kb", "onnx_latency_ms"}


def build_document(board: Board, paired_pooled: pd.DataFrame, paired_student: pd.DataFrame,
                   sections: list[Section], records: list[dict[str, Any]], title: str | None,
                   command: str | None, digits: int, statistics: Statistics | None = None) -> Document:
    """The whole leaderboard as a :class:`Document` (figures are added by the caller)."""
    n_common = common_n(board)
    tables = [headline_table(board, paired_student, n_common, digits)]
    tables += [dataset_table(board, ds, n_common, digits) for ds in board.datasets]
    tables += [section_table(board, s) for s in sections]
    if statistics is not None:
        tables += statistics_tables(board, statistics, digits)
    ref = board.roles.label()
    seeds = (f"n = {n_common} seed{'s' if n_common != 1 else ''} unless shown" if n_common
             else "the number of seeds as shown")
    roles = {role: [m for m in board.roles.order(set(board.frame.index.get_level_values("distiller")))
                    if board.roles.role(m) == role] for role in ("baseline", "proposed", "ablation")}
    legend = [
        "Headline: each dataset's primary metric (AUROC on binary tasks, balanced accuracy otherwise; named in "
        f"each column), mean ± sample std (ddof=1) over seeds; {seeds}; failed cells are counted, never averaged.",
        "Bold: best student per column (the teacher row is not ranked); cost: lowest is best.",
        "Cost: batch 1 on the CPU, median over seeds (headline: and over datasets); the percentage is the "
        "share of the teacher's.",
        f"Methods: proposed {', '.join(roles['proposed']) or '— (none declared)'}; baseline (student trained "
        f"alone) {', '.join(roles['baseline']) or '—'}; ablations {', '.join(roles['ablation']) or '—'}; "
        "'teacher' is the fine-tuned foundation model.",
    ]
    if board.roles.reference:
        legend.insert(3, f"Δ vs {board.roles.reference[0]}: this row minus the reference on the primary metric, "
                      "mean over pairs matched on (dataset, teacher, student backbone, seed); "
                      f"* Wilcoxon signed-rank p (Holm) < {ALPHA}; unmarked: tested, not significant; † fewer "
                      f"than {MIN_PAIRS} non-tied pairs, no test; the tests pooled over students, with the "
                      "difference each could detect, are under 'Paired comparison'.")
    if board.simulated:
        legend.insert(0, "SIMULATED DATA: datasets marked (simulated) are generated EEG, not recordings.")
    after: list[tuple[str, list[str]]] = []
    if board.skipped:
        lines = []
        for ds, reasons in board.skipped.items():
            partial = " (other cells of it ran)" if ds in board.datasets else ""
            lines += [f"{ds}{partial}: {n} cell(s) skipped: {reason}" for reason, n in reasons]
        after.append(("Skipped datasets", lines))
    after.append(("Paired comparison (Wilcoxon signed-rank)", paired_lines(paired_pooled, ref)))
    if ref and paired_student["student"].nunique() > 1:  # one student: the same tests as pooled
        after.append(("Paired comparison by student", paired_lines(paired_student, ref)))
    if board.notes:
        after.append(("Notes", list(board.notes)))
    title_text = title_of(board.datasets, board.simulated, title)
    banner = title_text[title_text.index("—") + 2:] if board.simulated else ""
    index = board.frame.index
    filters = {"dataset": list(board.datasets),
               "method": board.roles.order(set(index.get_level_values("distiller"))),
               "student": sorted(set(index.get_level_values("student")))}
    return Document(title=title_text, simulated=banner, provenance=provenance(records, command), legend=legend,
                    tables=tables, figures=[], after=after, filters=filters)


def _stub(board: Board) -> tuple[list[str], Any]:
    multi = multi_teacher(board)

    def cells(row: tuple[str, str, str]) -> list[str]:
        return ([row[0]] if multi else []) + [row[1], row[2]]

    return (["Teacher"] if multi else []) + ["Method", "Student"], cells


def _tags(row: tuple[str, str, str], dataset: str | None = None) -> dict[str, str]:
    tags = {"teacher": row[0], "method": row[1], "student": row[2]}
    return {**tags, "dataset": dataset} if dataset else tags


def headline_table(board: Board, paired_student: pd.DataFrame, n_common: int | None, digits: int) -> Table:
    """One row per (method, student): the primary metric per dataset, Δ vs the reference, cost once."""
    stub, stub_cells = _stub(board)
    frame = board.frame
    groups = [(board.ds_label(ds), 1) for ds in board.datasets]
    columns = [LABELS.get(board.primary[ds], board.primary[ds]) for ds in board.datasets]
    ref = board.roles.reference[0] if board.roles.reference else None
    if ref:
        groups.append(("", 1))
        columns.append(f"Δ vs {ref}")
    cost_fields = list(HEADLINE_COST) + board.export_fields
    groups.append(("Cost", len(cost_fields)))
    columns += [LABELS[f] + (" (% of teacher)" if f in _VS_TEACHER else "") for f in cost_fields]
    best = {ds: best_rows(frame, ds, board.primary[ds], "mean", lower=False, digits=digits) for ds in board.datasets}
    teachers = {row[0]: row for row in frame.index if row[1] == TEACHER_ROW}
    costs = {f: {row: _cost_over_datasets(board, row, teachers.get(row[0]), f) for row in frame.index}
             for f in cost_fields}
    cost_best = {f: _lowest({row: v[0] for row, v in costs[f].items() if row[1] != TEACHER_ROW})
                 for f in cost_fields}
    rows = []
    for row in frame.index:
        cells = [metric_cell(board, row, ds, board.primary[ds], n_common, digits, row in best[ds])
                 for ds in board.datasets]
        if ref:
            cells.append(_delta_cell(board, row, ref, paired_student))
        for f in cost_fields:
            value, share = costs[f][row]
            text = cost_text(value, f) + (f" ({_percent(share)})" if math.isfinite(share) else "")
            cells.append(Cell(text, row in cost_best[f], value if math.isfinite(value) else None))
        rows.append(Row(stub_cells(row), cells, _tags(row)))
    return Table("headline", "Headline: primary metric per dataset, and cost", stub, columns, rows, groups,
                 column_datasets=list(board.datasets) + [None] * (len(columns) - len(board.datasets)))


def _cost_over_datasets(board: Board, row: tuple[str, str, str], teacher: tuple[str, str, str] | None,
                        f: str) -> tuple[float, float]:
    """(median over datasets of a cost, median over datasets of its share of the teacher's)."""
    values, shares = [], []
    for ds in board.datasets:
        v = board.at(row, (ds, f, "value"))
        if not math.isfinite(v):
            continue
        values.append(v)
        t = board.at(teacher, (ds, f, "value")) if teacher and f in _VS_TEACHER else math.nan
        if row[1] != TEACHER_ROW and math.isfinite(t) and t > 0:
            shares.append(v / t)
    return (float(np.median(values)) if values else math.nan, float(np.median(shares)) if shares else math.nan)


def _delta_cell(board: Board, row: tuple[str, str, str], ref: str, paired_student: pd.DataFrame) -> Cell:
    if row[1] == ref:
        return Cell("reference")
    if row[1] == TEACHER_ROW or not len(paired_student):
        return Cell("—")
    hit = paired_student[(paired_student["method"] == ref) & (paired_student["baseline"] == row[1])
                         & (paired_student["student"] == board.raw_student.get(row))]
    if not len(hit) or not math.isfinite(hit["mean_diff"].iloc[0]):
        return Cell("—")
    r = hit.iloc[0]
    d = -float(r["mean_diff"])
    mark = " *" if math.isfinite(r["p_holm"]) and r["p_holm"] < ALPHA else " †" if r["note"] else ""
    return Cell(f"{d:+.3f}{mark}", sort=d)


def dataset_table(board: Board, ds: str, n_common: int | None, digits: int) -> Table:
    """Every metric and cost of one dataset, one row per (method, student) that ran on it."""
    stub, stub_cells = _stub(board)
    frame = board.frame
    metrics = board.metrics[ds]
    cost_fields = [f for _, f in COST_FIELDS] + board.export_fields
    ran = [row for row in frame.index
           if math.isfinite(board.at(row, (ds, "cells", "ok"))) or board.at(row, (ds, "cells", "failed"))]
    best = {m: best_rows(frame.loc[ran], ds, m, "mean", lower=False, digits=digits) for m in metrics}
    cbest = {f: _lowest({row: board.at(row, (ds, f, "value")) for row in ran if row[1] != TEACHER_ROW})
             for f in cost_fields if f != "training_only_params"}
    rows = []
    for row in ran:
        cells = [metric_cell(board, row, ds, m, n_common, digits, row in best[m]) for m in metrics]
        for f in cost_fields:
            v = board.at(row, (ds, f, "value"))
            cells.append(Cell(cost_text(v, f), row in cbest.get(f, ()), v if math.isfinite(v) else None))
        rows.append(Row(stub_cells(row), cells, _tags(row, ds)))
    columns = [LABELS.get(m, m) for m in metrics] + [LABELS[f] for f in cost_fields]
    groups = [("Test metrics", len(metrics)), ("Cost (batch 1, CPU)", len(cost_fields))]
    return Table(f"dataset-{ds}", f"{board.ds_label(ds)}: all metrics and cost", stub, columns, rows, groups,
                 column_datasets=[ds] * len(columns), dataset=ds)


def section_table(board: Board, section: Section) -> Table:
    """A report section: one row per (method, student, dataset, row label), its mean per column."""
    rows = []
    for r in section.rows:
        values = np.asarray(r.values)
        top = (int(np.argmax(values)) if section.highlight == "max" else int(np.argmin(values))
               if section.highlight == "min" else -1)
        cells = [Cell(f"{v:.2f}", i == top, v) for i, v in enumerate(r.values)]
        rows.append(Row([r.method, r.student, board.ds_label(r.dataset), r.label, str(r.n)], cells,
                        {"method": r.method, "student": r.student, "dataset": r.dataset}))
    emphasis = {"max": " (bold: the largest of each row)", "min": " (bold: the smallest of each row)"}
    return Table(f"section-{section.name}", section.title + emphasis.get(section.highlight or "", ""),
                 ["Method", "Student", "Dataset", "Row", "Seeds"], list(section.columns), rows,
                 notes=list(section.notes))


def common_n(board: Board) -> int | None:
    """The most frequent number of seeds per cell, stated once in the legend."""
    ns: Counter = Counter()
    for ds in board.datasets:
        for m in board.metrics[ds]:
            ns.update(int(n) for n in board.frame[(ds, m, "n")] if n > 0)
    return ns.most_common(1)[0][0] if ns else None


def best_rows(frame: pd.DataFrame, ds: str, f: str, stat: str, *, lower: bool, digits: int | None) -> set:
    """The student rows with the best value of a column (ties included; teacher rows are not ranked)."""
    students = [i for i in frame.index if i[1] != TEACHER_ROW]
    if not students or (ds, f, stat) not in frame.columns:
        return set()
    vals = frame.loc[students, (ds, f, stat)].astype(float)
    if digits is not None:  # what the reader sees: equal printed values are equally best
        vals = vals.round(digits)
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return set()
    target = vals.min() if lower else vals.max()
    return set(vals.index[np.isclose(vals.to_numpy(), target, rtol=0, atol=1e-12)])


def _lowest(values: dict[Any, float]) -> set:
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    if not finite:
        return set()
    low = min(finite.values())
    return {k for k, v in finite.items() if math.isclose(v, low, rel_tol=1e-9, abs_tol=1e-12)}


def metric_cell(board: Board, row: Any, ds: str, m: str, n_common: int | None, digits: int, best: bool) -> Cell:
    """``mean ± std`` with the seed count when it differs from the common one, and failed cells."""
    mean, std, n = (board.at(row, (ds, m, s)) for s in ("mean", "std", "n"))
    failed = int(board.at(row, (ds, "cells", "failed")) or 0)
    text = "—" if not math.isfinite(mean) else (
        f"{mean:.{digits}f} ± {std:.{digits}f}" if math.isfinite(std) else f"{mean:.{digits}f}")
    extra = []
    if math.isfinite(mean) and int(n) != n_common:
        extra.append(f"n={int(n)}")
    if failed:
        extra.append(f"{failed} failed")
    text = f"{text} ({', '.join(extra)})" if extra else text
    return Cell(text, best, mean if math.isfinite(mean) else None)


def cost_text(v: float, f: str) -> str:
    """A cost value as text: latency in ms, sizes in bytes, the int8 drop signed, counts in engineering notation."""
    if not math.isfinite(v):
        return "—"
    if f.endswith("latency_ms"):
        return f"{v:.2f}"
    if f.endswith("_kb"):
        return eng(v * 1e3, "B")
    if f == "int8_drop":
        return f"{v:+.3f}"
    return eng(v)


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%" if share >= 0.1 else f"{100 * share:.2g}%"
