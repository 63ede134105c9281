"""CSV renderer: one row per (teacher, method, student, dataset), numbers unformatted, '#' lines for the rest.

``pandas.read_csv(path, comment="#")`` reads the table back. The statistics tables
(bootstrap intervals, per-dataset comparisons, meta-analysis, ranks) are '#' lines too,
one per table row; each row's own interval is also a column (``subject_mean``,
``subject_ci_low``, ``subject_ci_high``, ``n_subjects``).
"""
from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd

from eegkd_bench.leaderboard.aggregate import COST_FIELDS, Board
from eegkd_bench.leaderboard.document import Document
from eegkd_bench.leaderboard.stat_tables import Statistics
from eegkd_bench.leaderboard.tables import best_rows


def render_csv(board: Board, doc: Document, statistics: Statistics | None = None) -> str:
    """The board as a long CSV table under '#' lines of title, provenance, skipped cells, statistics, notes."""
    intervals = statistics.intervals if statistics is not None else {}
    frame = board.frame
    all_metrics = list(dict.fromkeys(m for ds in board.datasets for m in board.metrics[ds]))
    best = {(ds, m): best_rows(frame, ds, m, "mean", lower=False, digits=None)
            for ds in board.datasets for m in board.metrics[ds]}
    rows = []
    for row in frame.index:
        for ds in board.datasets:
            if not math.isfinite(board.at(row, (ds, "cells", "ok"))) and not board.at(row, (ds, "cells", "failed")):
                continue  # this row never ran on this dataset
            out: dict[str, Any] = {"teacher": row[0], "method": row[1], "role": board.roles.role(row[1]) or "",
                                   "student": row[2], "dataset": ds,
                                   "data_kind": "simulated" if ds in board.simulated else "real",
                                   "primary_metric": board.primary[ds]}
            for m in all_metrics:
                present = m in board.metrics[ds]
                for stat in ("mean", "std", "n"):
                    out[f"{m}_{stat}"] = board.at(row, (ds, m, stat)) if present else math.nan
            for f in [f for _, f in COST_FIELDS] + board.export_fields:
                out[f] = board.at(row, (ds, f, "value"))
            mean, low, high, n = intervals.get((row, ds), (math.nan, math.nan, math.nan, 0))
            out.update(subject_mean=mean, subject_ci_low=low, subject_ci_high=high, n_subjects=n)
            out["cells_failed"] = int(board.at(row, (ds, "cells", "failed")))
            out["best"] = ";".join(m for m in board.metrics[ds] if row in best[(ds, m)])
            rows.append(out)
    lines = [f"# {doc.title}"]
    lines += [f"# {k}: {v}" for k, v in doc.provenance]
    lines.append("# best: metrics on which this row is the best student of its dataset (teacher rows not ranked)")
    for t in doc.tables:
        if t.key.startswith("stats-"):
            tag = t.key[len("stats-"):]
            lines.append(f"# {tag}: {t.caption}")
            lines.append(f"# {tag}: " + " | ".join(t.stub + t.flat_columns()))
            lines += [f"# {tag}: " + " | ".join(r.stub + [c.text for c in r.cells]) for r in t.rows]
            lines += [f"# {tag}: {note}" for note in t.notes]
    for heading, body in doc.after:
        tag = heading.split()[0].lower().rstrip(":")
        lines += [f"# {tag}: {line}" for line in body]
    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    return "\n".join(line.replace("\n", " ") for line in lines) + "\n" + buf.getvalue()
