"""Aggregation: one row per (teacher, method, student), mean ± std over seeds per dataset and metric.

* Each fine-tuned teacher gets its own row (its test metrics and cost), so a
  student can be read against it.
* Cells are mean ± sample standard deviation (ddof=1) over seeds, with the
  number of seeds kept; failed cells are counted, never averaged; datasets that
  were skipped are listed with the reason.
* A student's row label is ``record["student_label"]`` when the record has one
  (a wrapped student, such as a Mimic-then-Compress head on EEGNet, is a
  different deployed model from the plain one), else ``record["student"]``.
"""
from __future__ import annotations

import difflib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from eegkd_bench.errors import UserError
from eegkd_bench.leaderboard.merge import canonical, created
from eegkd_bench.leaderboard.roles import TEACHER_ROW, Roles, resolve_roles
from eegkd_bench.metrics import HEADLINE, KEY_METRIC, METRICS
from eegkd_bench.identity import init_label, row_identity

#: (record field, frame field) of the deployed student's cost, and the teacher's counterpart.
COST_FIELDS = (("student_params", "params"), ("student_flops", "flops"),
               ("student_latency_ms", "latency_ms"), ("training_only_params", "training_only_params"))
TEACHER_COST = {"params": "teacher_params", "flops": "teacher_flops", "latency_ms": "teacher_latency_ms"}

#: (path in ``record["export"]``, frame field, path in ``record["teacher_export"]`` or None) of the ONNX export.
EXPORT_FIELDS = ((("fp32", "size_kb"), "onnx_kb", ("fp32", "size_kb")),
                 (("fp32", "latency_ms"), "onnx_latency_ms", ("fp32", "latency_ms")),
                 (("int8", "size_kb"), "int8_kb", None),
                 (("int8", "key_metric_drop"), "int8_drop", None))

#: The metric of the headline table, per task: AUROC for binary tasks, else balanced accuracy.
PRIMARY = {"binary": "auroc"}


@dataclass
class Board:
    """What every output format is built from."""

    frame: pd.DataFrame
    datasets: list[str]
    simulated: list[str]
    metrics: dict[str, list[str]]
    primary: dict[str, str]
    skipped: dict[str, list[tuple[str, int]]]
    notes: list[str]
    ok: list[dict[str, Any]]
    roles: Roles
    export_fields: list[str]
    raw_student: dict[tuple[str, str, str], str]
    _cells: dict[tuple[Any, Any], float] | None = None

    def at(self, row: tuple[str, str, str], col: tuple[str, str, str]) -> float:
        """One value of the frame (a dict lookup: ``DataFrame.loc`` per cell is slow on wide boards)."""
        if self._cells is None:
            cols = list(self.frame.columns)
            self._cells = {(r, c): float(v) for r, vals in zip(self.frame.index, self.frame.to_numpy())
                           for c, v in zip(cols, vals)}
        return self._cells.get((row, col), math.nan)

    def ds_label(self, ds: str) -> str:
        """A dataset's name, marked when it is simulated."""
        return f"{ds} (simulated)" if ds in self.simulated else ds


def shown_under_label(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` with ``dataset`` replaced by its ``dataset_label`` (the name plus any non-default dataset
    options), so cells run on differently configured data never share a column."""
    label = rec.get("dataset_label")
    return {**rec, "dataset": label} if label and label != rec.get("dataset") else rec


def registered_dataset(rec: dict[str, Any]) -> str:
    """The registered dataset name of ``rec``, whether or not it is shown under its label (``sim-mi[seed=3]``)."""
    return str(rec.get("dataset")).split("[")[0]


def student_label(rec: dict[str, Any]) -> str:
    """The deployed student's name in tables: the record's ``student_label``, else its ``student``."""
    return str(rec.get("student_label") or rec.get("student"))


def leaderboard_frame(records: Iterable[dict[str, Any]], metric: str | Sequence[str] | None = None, *,
                      reference: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Mean ± std over seeds per (teacher, distiller, student) row and (dataset, field, stat) column.

    Metric fields have stats ``mean``, ``std`` (ddof=1) and ``n`` (seeds);
    cost fields (``params``, ``flops``, ``latency_ms``, ``training_only_params``
    and, when records carry an ONNX export, ``onnx_kb``, ``onnx_latency_ms``,
    ``int8_kb``, ``int8_drop``) have ``value`` (median over seeds); ``cells``
    has ``ok`` and ``failed``. ``metric`` is None (each dataset's headline
    metrics), ``"key"`` (each dataset's model-selection metric) or metric
    names. ``frame.attrs`` holds ``datasets``, ``simulated``, ``metrics``,
    ``primary``, ``skipped`` ({dataset: [(reason, n_cells)]}) and ``notes``.
    """
    return build_board(list(records), metric, reference=reference).frame


def build_board(records: list[dict[str, Any]], metric: str | Sequence[str] | None, *,
                reference: str | Sequence[str] | None = None) -> Board:
    """Aggregate records into the :class:`Board` the tables, statistics and plots are made from."""
    records = [r for r in records if isinstance(r, dict) and r.get("status") in ("ok", "failed", "skipped")]
    notes: list[str] = []
    label_of = teacher_labeler(records)
    ok = _newest_per_seed([r for r in records if r.get("status") == "ok"], label_of, notes)
    failed = [r for r in records if r.get("status") == "failed"]
    skipped_recs = [r for r in records if r.get("status") == "skipped"]
    roles = resolve_roles(ok + failed, reference)

    datasets = sorted({r.get("dataset") for r in ok + failed if r.get("dataset") is not None}, key=str)
    simulated = sorted({r["dataset"] for r in records if r.get("data_kind") == "simulated"}, key=str)
    skipped: dict[str, list[tuple[str, int]]] = {}
    for ds in sorted({r.get("dataset") for r in skipped_recs}, key=str):
        reasons = Counter(_reason(r) for r in skipped_recs if r.get("dataset") == ds)
        skipped[ds] = sorted(reasons.items(), key=lambda kv: -kv[1])
    metrics = resolve_metrics(metric, datasets, ok + failed)
    primary = {ds: PRIMARY.get(str(_task(ds, ok + failed)), HEADLINE) for ds in datasets}
    export_fields = [f for path, f, _ in EXPORT_FIELDS
                     if any(math.isfinite(num(_dig(r.get("export"), path))) for r in ok)]

    rows: dict[tuple[str, str, str], dict[tuple[str, str, str], float]] = defaultdict(dict)
    raw_student: dict[tuple[str, str, str], str] = {}
    groups: dict[tuple[tuple[str, str, str], str], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        row = (label_of(r), str(r.get("distiller")), student_label(r))
        raw_student[row] = str(r.get("student"))
        groups[(row, r["dataset"])].append(r)
    for (row, ds), recs in groups.items():
        for m in dict.fromkeys(metrics[ds] + [primary[ds]]):
            put_stats(rows[row], ds, m, [num((r.get("metrics") or {}).get(m)) for r in recs])
        for src, dst in COST_FIELDS:
            rows[row][(ds, dst, "value")] = _median([num(r.get(src)) for r in recs])
        for path, dst, _ in EXPORT_FIELDS:
            if dst in export_fields:
                rows[row][(ds, dst, "value")] = _median([num(_dig(r.get("export"), path)) for r in recs])
        rows[row][(ds, "cells", "ok")] = float(len(recs))
    for r in failed:
        row = (label_of(r), str(r.get("distiller")), student_label(r))
        raw_student.setdefault(row, str(r.get("student")))
        key = (r.get("dataset"), "cells", "failed")
        rows[row][key] = rows[row].get(key, 0.0) + 1.0
    _teacher_rows(ok, label_of, metrics, primary, export_fields, rows, raw_student, notes)

    columns: list[tuple[str, str, str]] = []
    for ds in datasets:
        for m in dict.fromkeys(metrics[ds] + [primary[ds]]):
            columns += [(ds, m, "mean"), (ds, m, "std"), (ds, m, "n")]
        columns += [(ds, dst, "value") for _, dst in COST_FIELDS]
        columns += [(ds, f, "value") for f in export_fields]
        columns += [(ds, "cells", "ok"), (ds, "cells", "failed")]
    index = sorted(rows, key=lambda row: (row[0], roles.key(row[1]), row[2]))
    data = [[rows[i].get(c, 0.0 if c[1:] == ("cells", "failed") else math.nan) for c in columns] for i in index]
    frame = pd.DataFrame(
        data,
        index=pd.MultiIndex.from_tuples(index, names=["teacher", "distiller", "student"]) if index
        else pd.MultiIndex.from_tuples([], names=["teacher", "distiller", "student"]),
        columns=pd.MultiIndex.from_tuples(columns, names=["dataset", "field", "stat"]) if columns
        else pd.MultiIndex.from_tuples([], names=["dataset", "field", "stat"]),
        dtype=float,
    )
    frame.attrs.update(datasets=datasets, simulated=simulated, metrics=metrics, primary=primary, skipped=skipped,
                       notes=notes)
    return Board(frame=frame, datasets=datasets, simulated=simulated, metrics=metrics, primary=primary,
                 skipped=skipped, notes=notes, ok=ok, roles=roles, export_fields=export_fields,
                 raw_student=raw_student)


def _teacher_rows(ok, label_of, metrics, primary, export_fields, rows, raw_student, notes) -> None:
    """One teacher per (dataset, seed): every cell of that seed reuses the same fine-tuned teacher."""
    per_seed: dict[tuple[str, str, Any], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        per_seed[(label_of(r), r["dataset"], r.get("seed"))].append(r)
    teacher_groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (label, ds, seed), recs in per_seed.items():
        recs = sorted(recs, key=created)
        if len({canonical(x.get("teacher_metrics")) for x in recs}) > 1:
            notes.append(f"teacher {label} on {ds}, seed {seed}: cells disagree on the teacher's test metrics "
                         "(different teacher recipes?); the newest is shown")
        teacher_groups[(label, ds)].append(recs[-1])
    for (label, ds), recs in teacher_groups.items():
        row = (label, TEACHER_ROW, str(recs[-1].get("teacher")))
        raw_student[row] = row[2]
        for m in dict.fromkeys(metrics[ds] + [primary[ds]]):
            put_stats(rows[row], ds, m, [num((r.get("teacher_metrics") or {}).get(m)) for r in recs])
        for dst, src in TEACHER_COST.items():
            rows[row][(ds, dst, "value")] = _median([num(r.get(src)) for r in recs])
        for _, dst, path in EXPORT_FIELDS:
            if dst in export_fields and path is not None:
                rows[row][(ds, dst, "value")] = _median([num(_dig(r.get("teacher_export"), path)) for r in recs])
        rows[row][(ds, "cells", "ok")] = float(len(recs))


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(value, dict):
            return None
        value = value.get(k)
    return value


def _reason(rec: dict[str, Any]) -> str:
    text = str(rec.get("error") or "no reason recorded").strip()
    return text[len("skipped:"):].strip() if text.lower().startswith("skipped:") else text


def teacher_labeler(records: list[dict[str, Any]]):
    """Row label of a record's teacher: its name, plus its init label (:func:`eegkd_bench.results.init_label`)
    or preset when those tell teachers apart."""
    inits: dict[str, set[str]] = defaultdict(set)
    presets = {r.get("preset") for r in records if r.get("status") != "skipped"}
    for r in records:
        if r.get("teacher_init"):
            inits[str(r.get("teacher"))].add(init_label(r["teacher_init"]))

    def label(r: dict[str, Any]) -> str:
        name = str(r.get("teacher"))
        parts = []
        if len(inits[name]) > 1 and r.get("teacher_init"):
            init = init_label(r["teacher_init"])
            parts.append(init[:15] if init.startswith("sha256:") else init)
        if len(presets) > 1:
            parts.append(f"preset {r.get('preset')}")
        return f"{name} ({', '.join(parts)})" if parts else name

    return label


def _newest_per_seed(ok: list[dict[str, Any]], label_of, notes: list[str]) -> list[dict[str, Any]]:
    """One record per row (:func:`eegkd_bench.results.row_identity`; and preset, when the teacher's row label
    names it): the newest, so a seed is never counted twice."""
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    dropped = 0
    for r in ok:
        k = row_identity(r) + (label_of(r),)
        if k in best:
            dropped += 1
            if created(r) <= created(best[k]):
                continue
        best[k] = r
    if dropped:
        notes.append(f"{dropped} older record(s) repeat a (teacher, method, student, dataset, seed) with another "
                     "configuration; only the newest of each is counted (pass one results directory per recipe)")
    return list(best.values())


def resolve_metrics(metric: str | Sequence[str] | None, datasets: list[str],
                    ran: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The metric columns of each dataset (see :func:`leaderboard_frame` for ``metric``)."""
    known = sorted({m for names in METRICS.values() for m in names})
    tasks = {ds: _task(ds, ran) for ds in datasets}
    if metric is None:
        # a dataset whose every cell failed before its task was known still gets a column, for the failures
        return {ds: [m for m in METRICS[t] if m != "accuracy"] if t in METRICS else _seen_metrics(ds, ran) or [HEADLINE]
                for ds, t in tasks.items()}
    names = [m.strip() for m in metric.split(",")] if isinstance(metric, str) else [str(m) for m in metric]
    names = [m for m in names if m]
    for m in names:
        if m != "key" and m not in known:
            close = difflib.get_close_matches(m, known + ["key"], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"unknown metric {m!r}; {hint}expected 'key' or one of {', '.join(known)}")
    if not names:
        raise UserError(f"empty metric selection {metric!r}; expected 'key' or one of {', '.join(known)}")
    out: dict[str, list[str]] = {}
    for ds, t in tasks.items():
        chosen = [KEY_METRIC.get(t, HEADLINE) if m == "key" else m for m in names]
        out[ds] = list(dict.fromkeys(chosen))
    return out


def _task(ds: str, ok: list[dict[str, Any]]) -> str | None:
    tasks = Counter(r.get("task") for r in ok if r.get("dataset") == ds and r.get("task"))
    if tasks:
        return tasks.most_common(1)[0][0]
    n = Counter(r.get("n_classes") for r in ok if r.get("dataset") == ds and r.get("n_classes"))
    if n:
        return "binary" if n.most_common(1)[0][0] == 2 else "multiclass"
    return None


def _seen_metrics(ds: str, ok: list[dict[str, Any]]) -> list[str]:
    return sorted({m for r in ok if r.get("dataset") == ds for m in (r.get("metrics") or {})})


def put_stats(row: dict[tuple[str, str, str], float], ds: str, m: str, values: list[float]) -> None:
    """Mean, sample std and n of the finite values, into a row's (dataset, metric, stat) cells."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    row[(ds, m, "n")] = float(len(v))
    row[(ds, m, "mean")] = float(v.mean()) if len(v) else math.nan
    row[(ds, m, "std")] = float(v.std(ddof=1)) if len(v) > 1 else math.nan


def num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def finite_or_none(v: Any) -> float | None:
    """``v`` as a float when it is a finite number, else None (a sort key, an error bar)."""
    f = num(v)
    return f if math.isfinite(f) else None


def multi_teacher(board: Board) -> bool:
    """Whether the board's rows come from more than one teacher (tables then show a teacher column)."""
    return len(set(board.frame.index.get_level_values("teacher"))) > 1 if len(board.frame) else False


def _median(values: list[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    return float(np.median(v)) if v else math.nan


