"""Leaderboards from result records: merge stores, aggregate seeds, paired statistics, render, export.

Everything here is computed from the records alone (see :mod:`eegkd_bench.results`),
so a table can be regenerated on any machine from the published result directories.

* Rows are (teacher, distiller, student); each fine-tuned teacher gets its own
  row (its test metrics and cost), so a student can be read against it.
* Cells are mean ± sample standard deviation (ddof=1) over seeds, with the
  number of seeds kept; failed cells are counted and shown, never averaged;
  datasets that were skipped are listed with the reason under the table.
* The paired comparison matches DLink (every method named ``dlink*``) and each
  baseline on the same (dataset, teacher, student, seed) and applies the
  Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) to the differences.
"""
from __future__ import annotations

import difflib
import html
import io
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from eegkd_bench.api import UserError
from eegkd_bench.metrics import HEADLINE, KEY_METRIC, METRICS

FORMATS = ("md", "csv", "latex", "html")
EXTENSIONS = {"md": "md", "csv": "csv", "latex": "tex", "html": "html"}

#: The distiller label of the teacher rows.
TEACHER_ROW = "teacher"

#: Fewest non-tied pairs for which a two-sided exact Wilcoxon p can reach 0.05
#: (with n pairs the smallest possible p is 2 / 2**n: 0.0625 for n = 5, 0.031 for n = 6).
MIN_PAIRS = 6

#: (record field, frame field) of the deployed student's cost, and the teacher's counterpart.
COST_FIELDS = (("student_params", "params"), ("student_flops", "flops"),
               ("student_latency_ms", "latency_ms"), ("training_only_params", "training_only_params"))
TEACHER_COST = {"params": "teacher_params", "flops": "teacher_flops", "latency_ms": "teacher_latency_ms"}

#: Fields that, when two records share a cell key, must agree for them to count as the same result.
_SUBSTANCE = ("status", "versions", "config", "data_checksum", "teacher_init", "metrics", "val_metrics",
              "teacher_metrics", "student_params", "student_flops")

_LABELS = {"balanced_accuracy": "Bal. acc", "cohen_kappa": "Kappa", "f1_weighted": "F1 (weighted)",
           "accuracy": "Acc", "auroc": "AUROC", "auc_pr": "AUC-PR", "params": "Params", "flops": "FLOPs",
           "latency_ms": "Latency (ms)", "training_only_params": "Train-only params"}


# ----------------------------------------------------------------------- merging
def merge_result_dirs(dirs: Sequence[Path | str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of several result directories merged by cell key, and one warning line per conflict."""
    from eegkd_bench.results import ResultStore

    kept: dict[str, tuple[dict[str, Any], Path]] = {}
    warnings: list[str] = []
    for d in dirs:
        d = Path(d)
        for rec in ResultStore(d, create=False).records():
            key = rec.get("key")
            if not isinstance(key, str) or not key:
                warnings.append(f"a record in {d} has no cell key (dataset {rec.get('dataset')!r}); it was ignored")
                continue
            if key not in kept:
                kept[key] = (rec, d)
                continue
            old, old_dir = kept[key]
            take_new = _preference(rec) > _preference(old)
            differ = [f for f in _SUBSTANCE if _canonical(old.get(f)) != _canonical(rec.get(f))]
            if differ:
                winner, win_dir = (rec, d) if take_new else (old, old_dir)
                warnings.append(
                    f"cell {key} ({_cell_label(rec)}) differs between {old_dir} and {d} in {', '.join(differ)}; "
                    f"kept the {winner.get('status')} record from {win_dir} created {winner.get('created')}")
            if take_new:
                kept[key] = (rec, d)
    return _drop_superseded([r for r, _ in kept.values()]), warnings


def _preference(rec: dict[str, Any]) -> tuple[bool, datetime]:
    return rec.get("status") == "ok", _created(rec)


def _created(rec: dict[str, Any]) -> datetime:
    try:
        t = datetime.fromisoformat(str(rec.get("created")))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _identity(rec: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(rec.get(k) for k in ("dataset", "teacher", "student", "distiller", "seed", "preset")) + (
        _canonical(rec.get("config")),)


def _drop_superseded(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop skipped records of cells that later ran, and failed ones of cells that later succeeded.

    The runner does the same inside one directory (a finished cell deletes its
    stale skip record); across machines the records carry different keys, so
    it has to happen here.
    """
    ran = {_identity(r) for r in records if r.get("status") in ("ok", "failed")}
    succeeded = {_identity(r) for r in records if r.get("status") == "ok"}
    out = []
    for r in records:
        status = r.get("status")
        if (status == "skipped" and _identity(r) in ran) or (status == "failed" and _identity(r) in succeeded):
            continue
        out.append(r)
    return out


def _cell_label(rec: dict[str, Any]) -> str:
    return f"{rec.get('dataset')} · {rec.get('distiller')} → {rec.get('student')} · seed {rec.get('seed')}"


# ------------------------------------------------------------------- aggregation
@dataclass
class _Board:
    """What every output format is built from."""

    frame: pd.DataFrame
    datasets: list[str]
    simulated: list[str]
    metrics: dict[str, list[str]]
    skipped: dict[str, list[tuple[str, int]]]
    notes: list[str]
    ok: list[dict[str, Any]]
    _cells: dict[tuple[Any, Any], float] | None = None

    def at(self, row: tuple[str, str, str], col: tuple[str, str, str]) -> float:
        """One value of the frame (a dict lookup: ``DataFrame.loc`` per cell is slow on wide boards)."""
        if self._cells is None:
            cols = list(self.frame.columns)
            self._cells = {(r, c): float(v) for r, vals in zip(self.frame.index, self.frame.to_numpy())
                           for c, v in zip(cols, vals)}
        return self._cells.get((row, col), math.nan)


def leaderboard_frame(records: Iterable[dict[str, Any]], metric: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Mean ± std over seeds per (teacher, distiller, student) row and (dataset, field, stat) column.

    Metric fields have stats ``mean``, ``std`` (ddof=1) and ``n`` (seeds);
    cost fields (``params``, ``flops``, ``latency_ms``, ``training_only_params``)
    have ``value`` (median over seeds); ``cells`` has ``ok`` and ``failed``.
    ``metric`` is None (each dataset's headline metrics), ``"key"`` (each
    dataset's model-selection metric) or metric names. ``frame.attrs`` holds
    ``datasets``, ``simulated``, ``metrics``, ``skipped`` ({dataset: [(reason,
    n_cells)]}) and ``notes``.
    """
    return _board(list(records), metric).frame


def _board(records: list[dict[str, Any]], metric: str | Sequence[str] | None) -> _Board:
    records = [r for r in records if isinstance(r, dict) and r.get("status") in ("ok", "failed", "skipped")]
    notes: list[str] = []
    label_of = _teacher_labeler(records)
    ok = _newest_per_seed([r for r in records if r.get("status") == "ok"], label_of, notes)
    failed = [r for r in records if r.get("status") == "failed"]
    skipped_recs = [r for r in records if r.get("status") == "skipped"]

    datasets = sorted({r.get("dataset") for r in ok + failed if r.get("dataset") is not None}, key=str)
    simulated = sorted({r["dataset"] for r in records if r.get("data_kind") == "simulated"}, key=str)
    skipped: dict[str, list[tuple[str, int]]] = {}
    for ds in sorted({r.get("dataset") for r in skipped_recs}, key=str):
        reasons = Counter(_reason(r) for r in skipped_recs if r.get("dataset") == ds)
        skipped[ds] = sorted(reasons.items(), key=lambda kv: -kv[1])
    metrics = _resolve_metrics(metric, datasets, ok + failed)

    rows: dict[tuple[str, str, str], dict[tuple[str, str, str], float]] = defaultdict(dict)
    groups: dict[tuple[tuple[str, str, str], str], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        groups[((label_of(r), str(r.get("distiller")), str(r.get("student"))), r["dataset"])].append(r)
    for (row, ds), recs in groups.items():
        for m in metrics[ds]:
            _put_stats(rows[row], ds, m, [_num((r.get("metrics") or {}).get(m)) for r in recs])
        for src, dst in COST_FIELDS:
            rows[row][(ds, dst, "value")] = _median([_num(r.get(src)) for r in recs])
        rows[row][(ds, "cells", "ok")] = float(len(recs))
    for r in failed:
        row = (label_of(r), str(r.get("distiller")), str(r.get("student")))
        key = (r.get("dataset"), "cells", "failed")
        rows[row][key] = rows[row].get(key, 0.0) + 1.0

    # one teacher per (dataset, seed): every cell of that seed reuses the same fine-tuned teacher
    per_seed: dict[tuple[str, str, Any], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        per_seed[(label_of(r), r["dataset"], r.get("seed"))].append(r)
    teacher_groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (label, ds, seed), recs in per_seed.items():
        recs = sorted(recs, key=_created)
        if len({_canonical(x.get("teacher_metrics")) for x in recs}) > 1:
            notes.append(f"teacher {label} on {ds}, seed {seed}: cells disagree on the teacher's test metrics "
                         "(different teacher recipes?); the newest is shown")
        teacher_groups[(label, ds)].append(recs[-1])
    for (label, ds), recs in teacher_groups.items():
        row = (label, TEACHER_ROW, str(recs[-1].get("teacher")))
        for m in metrics[ds]:
            _put_stats(rows[row], ds, m, [_num((r.get("teacher_metrics") or {}).get(m)) for r in recs])
        for dst, src in TEACHER_COST.items():
            rows[row][(ds, dst, "value")] = _median([_num(r.get(src)) for r in recs])
        rows[row][(ds, "cells", "ok")] = float(len(recs))

    columns: list[tuple[str, str, str]] = []
    for ds in datasets:
        for m in metrics[ds]:
            columns += [(ds, m, "mean"), (ds, m, "std"), (ds, m, "n")]
        columns += [(ds, dst, "value") for _, dst in COST_FIELDS]
        columns += [(ds, "cells", "ok"), (ds, "cells", "failed")]
    index = sorted(rows, key=_row_order)
    data = [[rows[i].get(c, 0.0 if c[1:] == ("cells", "failed") else math.nan) for c in columns] for i in index]
    frame = pd.DataFrame(
        data,
        index=pd.MultiIndex.from_tuples(index, names=["teacher", "distiller", "student"]) if index
        else pd.MultiIndex.from_tuples([], names=["teacher", "distiller", "student"]),
        columns=pd.MultiIndex.from_tuples(columns, names=["dataset", "field", "stat"]) if columns
        else pd.MultiIndex.from_tuples([], names=["dataset", "field", "stat"]),
        dtype=float,
    )
    frame.attrs.update(datasets=datasets, simulated=simulated, metrics=metrics, skipped=skipped, notes=notes)
    return _Board(frame=frame, datasets=datasets, simulated=simulated, metrics=metrics, skipped=skipped,
                  notes=notes, ok=ok)


def _reason(rec: dict[str, Any]) -> str:
    text = str(rec.get("error") or "no reason recorded").strip()
    return text[len("skipped:"):].strip() if text.lower().startswith("skipped:") else text


def _teacher_labeler(records: list[dict[str, Any]]):
    """Row label of a record's teacher: its name, plus the init or preset when those tell teachers apart."""
    inits: dict[str, set[str]] = defaultdict(set)
    presets = {r.get("preset") for r in records if r.get("status") != "skipped"}
    for r in records:
        if r.get("teacher_init"):
            inits[str(r.get("teacher"))].add(str(r["teacher_init"]))

    def label(r: dict[str, Any]) -> str:
        name = str(r.get("teacher"))
        parts = []
        if len(inits[name]) > 1 and r.get("teacher_init"):
            init = str(r["teacher_init"])
            parts.append(init[:15] if init.startswith("sha256:") else init)
        if len(presets) > 1:
            parts.append(f"preset {r.get('preset')}")
        return f"{name} ({', '.join(parts)})" if parts else name

    return label


def _newest_per_seed(ok: list[dict[str, Any]], label_of, notes: list[str]) -> list[dict[str, Any]]:
    """One record per (teacher, distiller, student, dataset, seed): the newest, so a seed is never counted twice."""
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    dropped = 0
    for r in ok:
        k = (label_of(r), r.get("distiller"), r.get("student"), r.get("dataset"), r.get("seed"))
        if k in best:
            dropped += 1
            if _created(r) <= _created(best[k]):
                continue
        best[k] = r
    if dropped:
        notes.append(f"{dropped} older record(s) repeat a (teacher, method, student, dataset, seed) with another "
                     "configuration; only the newest of each is counted (pass one results directory per recipe)")
    return list(best.values())


def _resolve_metrics(metric: str | Sequence[str] | None, datasets: list[str],
                     ran: list[dict[str, Any]]) -> dict[str, list[str]]:
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


def _put_stats(row: dict[tuple[str, str, str], float], ds: str, m: str, values: list[float]) -> None:
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    row[(ds, m, "n")] = float(len(v))
    row[(ds, m, "mean")] = float(v.mean()) if len(v) else math.nan
    row[(ds, m, "std")] = float(v.std(ddof=1)) if len(v) > 1 else math.nan


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _median(values: list[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    return float(np.median(v)) if v else math.nan


def _method_rank(name: str) -> int:
    return 0 if name == TEACHER_ROW else 1 if name == "none" else 3 if name.startswith("dlink") else 2


def _row_order(row: tuple[str, str, str]) -> tuple[Any, ...]:
    teacher, distiller, student = row
    return (teacher, _method_rank(distiller), distiller, student)


# ------------------------------------------------------------------- statistics
def paired_comparisons(records: Iterable[dict[str, Any]], metric: str | None = None) -> pd.DataFrame:
    """DLink (each ``dlink*`` method) vs each baseline: Wilcoxon signed-rank over matched (dataset, student, seed).

    Pairs share dataset, teacher, student and seed. ``metric`` is a metric
    name, ``"key"`` (each dataset's model-selection
    metric) or None (balanced accuracy, defined for every task). Differences
    are DLink minus baseline; zero differences are dropped (Wilcoxon's
    convention); with fewer than :data:`MIN_PAIRS` non-zero pairs no p is
    given. ``p_holm`` is Holm's step-down adjustment over all rows.
    """
    board = _board(list(records), None)
    return _paired(board, metric)


def _paired(board: _Board, metric: str | None) -> pd.DataFrame:
    label_of = _teacher_labeler(board.ok)
    chosen = metric or HEADLINE
    if chosen != "key":
        _resolve_metrics(chosen, [], [])  # validates the name
    values: dict[str, dict[tuple[Any, ...], float]] = defaultdict(dict)
    for r in board.ok:
        m = KEY_METRIC.get(str(r.get("task")), HEADLINE) if chosen == "key" else chosen
        v = _num((r.get("metrics") or {}).get(m))
        if math.isfinite(v):
            values[str(r.get("distiller"))][(r.get("dataset"), label_of(r), r.get("student"), r.get("seed"))] = v
    methods = sorted(m for m in values if m.startswith("dlink"))
    baselines = sorted((m for m in values if not m.startswith("dlink")), key=lambda m: (_method_rank(m), m))
    rows = []
    for d in methods:
        for b in baselines:
            common = sorted(set(values[d]) & set(values[b]), key=str)
            diff = np.asarray([values[d][k] - values[b][k] for k in common], dtype=float)
            nonzero = int(np.count_nonzero(diff))
            row = {"method": d, "baseline": b, "metric": chosen, "n_pairs": len(common), "n_nonzero": nonzero,
                   "mean_diff": float(diff.mean()) if len(diff) else math.nan,
                   "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum()),
                   "statistic": math.nan, "p": math.nan, "test": "", "note": ""}
            if nonzero < MIN_PAIRS:
                row["note"] = f"n too small ({nonzero} non-zero pairs; a p below 0.05 needs at least {MIN_PAIRS})"
            else:
                row["statistic"], row["p"], row["test"] = signed_rank_test(diff)
            rows.append(row)
    frame = pd.DataFrame(rows, columns=["method", "baseline", "metric", "n_pairs", "n_nonzero", "mean_diff", "wins",
                                        "ties", "losses", "statistic", "p", "test", "note"])
    frame["p_holm"] = holm(frame["p"].to_numpy(dtype=float)) if len(frame) else []
    return frame


def signed_rank_test(diff: Sequence[float]) -> tuple[float, float, str]:
    """Two-sided Wilcoxon signed-rank test of paired differences: (statistic, p, how p was computed).

    Zero differences are dropped (Wilcoxon's convention). Without ties among
    |d| the exact null distribution is used (n <= 50); with ties and n <= 13
    the p is exact by enumerating all 2**n sign flips of the mid-ranks (what
    ``scipy.stats.wilcoxon`` does too, but here with a vectorized statistic,
    which is thousands of times faster); otherwise the tie-corrected normal
    approximation. The statistic is min(W+, W-).
    """
    from scipy.stats import permutation_test, rankdata, wilcoxon

    # metrics are ratios of counts: differences equal on paper may differ in the last bits
    d = np.round(np.asarray(diff, dtype=float), 12)
    d = d[d != 0]
    n = len(d)
    ties = len(np.unique(np.abs(d))) < n
    if not ties:
        method = "exact" if n <= 50 else "asymptotic"
        res = wilcoxon(d, method=method, alternative="two-sided")
        return float(res.statistic), float(res.pvalue), "exact" if method == "exact" else "normal approximation"
    if n > 13:
        res = wilcoxon(d, method="asymptotic", alternative="two-sided")
        return float(res.statistic), float(res.pvalue), "normal approximation (tie-corrected)"
    ranks = rankdata(np.abs(d))

    def w_plus(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sum(ranks * (x > 0), axis=axis)

    res = permutation_test((d,), w_plus, permutation_type="samples", vectorized=True, n_resamples=np.inf,
                           alternative="two-sided")
    w = float(w_plus(d))
    return min(w, float(ranks.sum()) - w), float(res.pvalue), "exact (all sign flips; tied ranks)"


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (nan entries stay nan and do not count as tests)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def router_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Mean router weight α per teacher layer, per (distiller, dataset), from ``distiller_report``."""
    acc: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    for r in records:
        if r.get("status") != "ok":
            continue
        alpha = _router_alpha(r.get("distiller_report"))
        if alpha is not None:
            acc[(str(r.get("distiller")), str(r.get("dataset")))].append(alpha)
    if not acc:
        return pd.DataFrame()
    width = max(len(a) for vs in acc.values() for a in vs)
    rows, index = [], []
    for key in sorted(acc, key=lambda k: (_method_rank(k[0]), k)):
        same = [a for a in acc[key] if len(a) == max(len(x) for x in acc[key])]
        mean = np.mean(np.stack(same), axis=0)
        rows.append(list(mean) + [math.nan] * (width - len(mean)) + [len(same), int(np.argmax(mean)) + 1])
        index.append(key)
    cols = [f"layer_{i + 1}" for i in range(width)] + ["n", "top_layer"]
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["distiller", "dataset"]), columns=cols)


def _router_alpha(report: Any) -> np.ndarray | None:
    """Overall mean α from a distiller report: a list, or a dict holding one under overall/mean/all."""
    if not isinstance(report, dict) or "router_alpha" not in report:
        return None
    a = report["router_alpha"]
    if isinstance(a, dict):
        a = next((a[k] for k in ("overall", "mean", "all") if k in a), None)
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 2:  # per-class rows: their mean is the overall weight of classes weighted equally
        arr = arr.mean(axis=0)
    if arr.ndim != 1 or not len(arr) or not np.all(np.isfinite(arr)):
        return None
    return arr


# --------------------------------------------------------------- document model
@dataclass
class _Table:
    caption: str
    stub: list[str]
    groups: list[tuple[str, int]]
    columns: list[str]
    rows: list[tuple[list[str], list[tuple[str, bool]]]]
    notes: list[str] = field(default_factory=list)


@dataclass
class _Document:
    title: str
    provenance: list[tuple[str, str]]
    legend: list[str]
    tables: list[_Table]
    after: list[tuple[str, list[str]]]  # (heading, lines) sections under the tables


def render(records: Iterable[dict[str, Any]], fmt: str = "md", title: str | None = None, *,
           command: str | None = None, metric: str | Sequence[str] | None = None, digits: int = 3) -> str:
    """The leaderboard as Markdown, CSV, LaTeX or HTML text, with provenance and the paired statistics."""
    if fmt not in FORMATS:
        close = difflib.get_close_matches(str(fmt), FORMATS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown leaderboard format {fmt!r}; {hint}expected one of {', '.join(FORMATS)}")
    records = list(records)
    board = _board(records, metric)
    return _render_board(board, _paired(board, _paired_metric(metric)), records, fmt, title, command, digits)


def _paired_metric(metric: str | Sequence[str] | None) -> str | None:
    """The paired test uses one metric: the one asked for, or the default when several are shown."""
    return metric if isinstance(metric, str) and "," not in metric else None


def _render_board(board: _Board, paired: pd.DataFrame, records: list[dict[str, Any]], fmt: str,
                  title: str | None, command: str | None, digits: int) -> str:
    if fmt == "csv":
        return _render_csv(board, paired, records, title, command)
    doc = _document(board, paired, router_frame(board.ok), records, title, command, digits)
    return {"md": _render_md, "latex": _render_latex, "html": _render_html}[fmt](doc)


def _title(board: _Board, title: str | None) -> str:
    base = title or "eegkd-bench leaderboard"
    if not board.simulated:
        return base
    if set(board.simulated) >= set(board.datasets):
        return f"{base} — SIMULATED DATA (not real EEG; for checking the pipeline, not for claims)"
    return f"{base} — includes SIMULATED DATA (columns marked (simulated))"


def _provenance(records: list[dict[str, Any]], command: str | None) -> list[tuple[str, str]]:
    status = Counter(r.get("status") for r in records)

    def versions_of(pkg: str) -> str:
        seen = Counter(str((r.get("versions") or {}).get(pkg)) for r in records if (r.get("versions") or {}).get(pkg))
        if not seen:
            return "unknown"
        if len(seen) == 1:
            return next(iter(seen))
        return ", ".join(f"{v} ({n} records)" for v, n in seen.most_common())

    hosts = sorted({str(r.get("host")) for r in records if r.get("host")})
    presets = sorted({str(r.get("preset")) for r in records if r.get("preset")})
    inits = sorted({f"{r.get('teacher')}: {'random init (no pretrained checkpoint)' if r.get('teacher_init') == 'random' else r.get('teacher_init')}"
                    for r in records if r.get("teacher_init")})
    return [
        ("command", command or "not recorded (rendered from Python)"),
        ("eegkd-bench", versions_of("eegkd_bench")),
        ("torch", versions_of("torch")),
        ("generated", datetime.now(timezone.utc).isoformat(timespec="seconds")),
        ("records", f"{len(records)} ({status.get('ok', 0)} ok, {status.get('failed', 0)} failed, "
                    f"{status.get('skipped', 0)} skipped)"),
        ("presets", ", ".join(presets) or "unknown"),
        ("teacher init", "; ".join(inits) or "unknown"),
        ("hosts", ", ".join(hosts) or "unknown"),
    ]


def _ds_label(board: _Board, ds: str) -> str:
    return f"{ds} (simulated)" if ds in board.simulated else ds


def _document(board: _Board, paired: pd.DataFrame, router: pd.DataFrame, records: list[dict[str, Any]],
              title: str | None, command: str | None, digits: int) -> _Document:
    frame = board.frame
    multi_teacher = len(set(frame.index.get_level_values("teacher"))) > 1 if len(frame) else False
    stub = (["Teacher"] if multi_teacher else []) + ["Method", "Student"]
    n_common = _common_n(frame, board)

    def stub_cells(row: tuple[str, str, str]) -> list[str]:
        return ([row[0]] if multi_teacher else []) + [row[1], row[2]]

    # accuracy table
    acc_groups, acc_cols, acc_keys = [], [], []
    for ds in board.datasets:
        acc_groups.append((_ds_label(board, ds), len(board.metrics[ds])))
        for m in board.metrics[ds]:
            acc_cols.append(_LABELS.get(m, m))
            acc_keys.append((ds, m))
    best = {k: _best_rows(frame, k[0], k[1], "mean", lower=False, digits=digits) for k in acc_keys}
    acc_rows = []
    for row in frame.index:
        cells = []
        for ds, m in acc_keys:
            cells.append((_metric_cell(board, row, ds, m, n_common, digits), row in best[(ds, m)]))
        acc_rows.append((stub_cells(row), cells))
    seeds = f"n = {n_common} seeds unless shown" if n_common else "n seeds as shown"
    acc = _Table(caption="Test metrics of the deployed model", stub=stub, groups=acc_groups, columns=acc_cols,
                 rows=acc_rows)

    # cost table
    cost_groups, cost_cols, cost_keys = [], [], []
    for ds in board.datasets:
        cost_groups.append((_ds_label(board, ds), len(COST_FIELDS)))
        for _, f in COST_FIELDS:
            cost_cols.append(_LABELS[f])
            cost_keys.append((ds, f))
    cbest = {k: _best_rows(frame, k[0], k[1], "value", lower=True, digits=None) for k in cost_keys
             if k[1] != "training_only_params"}
    cost_rows = []
    for row in frame.index:
        cells = [(_cost_cell(board.at(row, (ds, f, "value")), f), row in cbest.get((ds, f), ()))
                 for ds, f in cost_keys]
        cost_rows.append((stub_cells(row), cells))
    cost = _Table(caption="Cost of the deployed model (batch 1, CPU; median over seeds)", stub=stub,
                  groups=cost_groups, columns=cost_cols, rows=cost_rows)

    tables = [acc, cost]
    if len(router):
        rt_cols = [c.replace("layer_", "L") for c in router.columns if c.startswith("layer_")]
        rt_rows = []
        for (dist, ds), vals in router.iterrows():
            layer_vals = [vals[c] for c in router.columns if c.startswith("layer_")]
            top = int(vals["top_layer"]) - 1
            rt_rows.append(([dist, _ds_label(board, ds), str(int(vals["n"]))],
                            [("" if not math.isfinite(v) else f"{v:.2f}", i == top) for i, v in enumerate(layer_vals)]))
        tables.append(_Table(caption="Router: mean weight α per teacher layer (bold: the largest)",
                             stub=["Method", "Dataset", "Cells"], groups=[], columns=rt_cols, rows=rt_rows))

    legend = [f"Cells: mean ± sample std (ddof=1) over seeds; {seeds}; failed cells are counted, never averaged.",
              "Bold: best student per column (the teacher row is not ranked); cost: lowest is best.",
              "Method 'none' is the student trained alone; 'teacher' is the fine-tuned foundation model."]
    if board.simulated:
        legend.insert(0, "SIMULATED DATA: columns marked (simulated) come from generated EEG, not recordings.")

    after: list[tuple[str, list[str]]] = []
    if board.skipped:
        lines = []
        for ds, reasons in board.skipped.items():
            partial = " (other cells of it ran)" if ds in board.datasets else ""
            for reason, n in reasons:
                lines.append(f"{ds}{partial}: {n} cell(s) skipped: {reason}")
        after.append(("Skipped datasets", lines))
    after.append(("Paired comparison (Wilcoxon signed-rank)", _paired_lines(paired)))
    if board.notes:
        after.append(("Notes", list(board.notes)))
    return _Document(title=_title(board, title), provenance=_provenance(records, command), legend=legend,
                     tables=tables, after=after)


def _paired_lines(paired: pd.DataFrame) -> list[str]:
    if not len(paired):
        return ["no DLink method and baseline share a (dataset, teacher, student, seed); nothing to compare"]
    metric = paired["metric"].iloc[0]
    what = "each dataset's model-selection metric" if metric == "key" else metric
    lines = [f"DLink minus baseline on {what}, pairs matched on (dataset, teacher, student, seed), pooled over "
             "datasets; two-sided; Holm-adjusted over all comparisons."]
    for _, r in paired.iterrows():
        head = (f"{r['method']} vs {r['baseline']}: n = {r['n_pairs']} pairs, mean diff = {r['mean_diff']:+.4f}, "
                f"wins/ties/losses = {r['wins']}/{r['ties']}/{r['losses']}")
        if r["note"]:
            lines.append(f"{head}; {r['note']}")
        else:
            lines.append(f"{head}; W = {r['statistic']:g}, p = {r['p']:.3g} ({r['test']}), "
                         f"p (Holm) = {r['p_holm']:.3g}")
    return lines


def _common_n(frame: pd.DataFrame, board: _Board) -> int | None:
    ns = Counter()
    for ds in board.datasets:
        for m in board.metrics[ds]:
            ns.update(int(n) for n in frame[(ds, m, "n")] if n > 0)
    return ns.most_common(1)[0][0] if ns else None


def _best_rows(frame: pd.DataFrame, ds: str, f: str, stat: str, *, lower: bool, digits: int | None) -> set:
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


def _metric_cell(board: _Board, row: Any, ds: str, m: str, n_common: int | None, digits: int) -> str:
    mean, std, n = (board.at(row, (ds, m, s)) for s in ("mean", "std", "n"))
    failed = int(board.at(row, (ds, "cells", "failed")))
    text = "—" if not math.isfinite(mean) else (
        f"{mean:.{digits}f} ± {std:.{digits}f}" if math.isfinite(std) else f"{mean:.{digits}f}")
    extra = []
    if math.isfinite(mean) and int(n) != n_common:
        extra.append(f"n={int(n)}")
    if failed:
        extra.append(f"{failed} failed")
    return f"{text} ({', '.join(extra)})" if extra else text


def _cost_cell(v: float, f: str) -> str:
    if not math.isfinite(v):
        return "—"
    if f == "latency_ms":
        return f"{v:.2f}"
    return _human(v)


def _human(v: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.0f}"


# --------------------------------------------------------------------- renderers
def _render_md(doc: _Document) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    out = [f"# {doc.title}", ""]
    out += [f"- **{k}**: `{v}`" if k == "command" else f"- **{k}**: {v}" for k, v in doc.provenance]
    out.append("")
    out += [f"> {line}" for line in doc.legend]
    for t in doc.tables:
        out += ["", f"### {t.caption}", ""]
        header = list(t.stub)
        cols = _flat_columns(t)
        header += cols
        out.append("| " + " | ".join(esc(h) for h in header) + " |")
        out.append("|" + "|".join([":---"] * len(t.stub) + ["---:"] * len(cols)) + "|")
        for stub, cells in t.rows:
            vals = [esc(s) for s in stub] + [f"**{esc(c)}**" if b and c else esc(c) for c, b in cells]
            out.append("| " + " | ".join(vals) + " |")
    for heading, lines in doc.after:
        out += ["", f"### {heading}", ""]
        out += [f"- {line}" for line in lines]
    return "\n".join(out) + "\n"


def _flat_columns(t: _Table) -> list[str]:
    if not t.groups:
        return list(t.columns)
    flat, i = [], 0
    for g, span in t.groups:
        flat += [f"{g} · {c}" for c in t.columns[i:i + span]]
        i += span
    return flat


def _render_html(doc: _Document) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(doc.title)}</title>",
           "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
           "th,td{border:1px solid #bbb;padding:3px 8px}td.num{text-align:right}caption{font-weight:bold;"
           "text-align:left}.sim{color:#b22222}</style>", "</head><body>"]
    sim = "SIMULATED DATA" in doc.title
    h1 = '<h1 class="sim">' if sim else "<h1>"
    out.append(f"{h1}{e(doc.title)}</h1>")
    out.append("<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in doc.provenance) + "</dl>")
    out += [f"<p>{e(line)}</p>" for line in doc.legend]
    for t in doc.tables:
        out.append(f"<table><caption>{e(t.caption)}</caption><thead>")
        if t.groups:
            out.append("<tr>" + "".join(f'<th rowspan="2">{e(s)}</th>' for s in t.stub)
                       + "".join(f'<th colspan="{span}">{e(g)}</th>' for g, span in t.groups) + "</tr>")
            out.append("<tr>" + "".join(f"<th>{e(c)}</th>" for c in t.columns) + "</tr>")
        else:
            out.append("<tr>" + "".join(f"<th>{e(c)}</th>" for c in t.stub + t.columns) + "</tr>")
        out.append("</thead><tbody>")
        for stub, cells in t.rows:
            out.append("<tr>" + "".join(f"<td>{e(s)}</td>" for s in stub) + "".join(
                f'<td class="num">{"<strong>" + e(c) + "</strong>" if b and c else e(c)}</td>' for c, b in cells)
                + "</tr>")
        out.append("</tbody></table>")
    for heading, lines in doc.after:
        out.append(f"<h3>{e(heading)}</h3><ul>" + "".join(f"<li>{e(line)}</li>" for line in lines) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "—": "---", "→": r"$\rightarrow$", "·": r"$\cdot$", "α": r"$\alpha$"}


def _tex(s: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in s)


def _render_latex(doc: _Document) -> str:
    out = ["% generated by eegkd-bench; needs \\usepackage{booktabs}"]
    out += [f"% {k}: {v}" for k, v in doc.provenance]
    out += [f"% {line}" for line in doc.legend]
    for n, t in enumerate(doc.tables):
        out += ["\\begin{table}[t]", "\\centering", "\\scriptsize",
                f"\\caption{{{_tex(doc.title) + ': ' if n == 0 else ''}{_tex(t.caption)}}}",
                "\\begin{tabular}{" + "l" * len(t.stub) + "r" * len(t.columns) + "}", "\\toprule"]
        if t.groups:
            heads, rules, col = [""] * len(t.stub), [], len(t.stub) + 1
            for g, span in t.groups:
                heads.append(f"\\multicolumn{{{span}}}{{c}}{{{_tex(g)}}}")
                rules.append(f"\\cmidrule(lr){{{col}-{col + span - 1}}}")
                col += span
            out.append(" & ".join(heads) + " \\\\")
            out.append(" ".join(rules))
        out.append(" & ".join(_tex(c) for c in t.stub + t.columns) + " \\\\")
        out.append("\\midrule")
        for stub, cells in t.rows:
            vals = [_tex(s) for s in stub] + [f"\\textbf{{{_tex(c)}}}" if b and c else _tex(c) for c, b in cells]
            out.append(" & ".join(vals) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    for heading, lines in doc.after:
        out.append(f"% --- {heading}")
        out += [f"% {line}" for line in lines]
        out.append(f"\\paragraph{{{_tex(heading)}}}")
        out.append("\\begin{itemize}")
        out += [f"\\item {_tex(line)}" for line in lines]
        out.append("\\end{itemize}")
    return "\n".join(out) + "\n"


def _render_csv(board: _Board, paired: pd.DataFrame, records: list[dict[str, Any]], title: str | None,
                command: str | None) -> str:
    """One row per (teacher, method, student, dataset); numbers unformatted; '#' lines carry the rest.

    ``pandas.read_csv(path, comment="#")`` reads the table back.
    """
    frame = board.frame
    all_metrics = list(dict.fromkeys(m for ds in board.datasets for m in board.metrics[ds]))
    best = {(ds, m): _best_rows(frame, ds, m, "mean", lower=False, digits=None)
            for ds in board.datasets for m in board.metrics[ds]}
    rows = []
    for row in frame.index:
        for ds in board.datasets:
            if not math.isfinite(board.at(row, (ds, "cells", "ok"))) and not board.at(row, (ds, "cells", "failed")):
                continue  # this row never ran on this dataset
            out: dict[str, Any] = {"teacher": row[0], "method": row[1], "student": row[2], "dataset": ds,
                                   "data_kind": "simulated" if ds in board.simulated else "real"}
            for m in all_metrics:
                present = m in board.metrics[ds]
                out[f"{m}_mean"] = board.at(row, (ds, m, "mean")) if present else math.nan
                out[f"{m}_std"] = board.at(row, (ds, m, "std")) if present else math.nan
                out[f"{m}_n"] = board.at(row, (ds, m, "n")) if present else math.nan
            for _, f in COST_FIELDS:
                out[f] = board.at(row, (ds, f, "value"))
            out["cells_failed"] = int(board.at(row, (ds, "cells", "failed")))
            out["best"] = ";".join(m for m in board.metrics[ds] if row in best[(ds, m)])
            rows.append(out)
    table = pd.DataFrame(rows)
    lines = [f"# {_title(board, title)}"]
    lines += [f"# {k}: {v}" for k, v in _provenance(records, command)]
    lines.append("# best: metrics on which this row is the best student of its dataset (teacher rows not ranked)")
    for ds, reasons in board.skipped.items():
        lines += [f"# skipped: {ds}: {n} cell(s): {reason}" for reason, n in reasons]
    lines += [f"# paired: {line}" for line in _paired_lines(paired)]
    lines += [f"# note: {line}" for line in board.notes]
    buf = io.StringIO()
    table.to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    return "\n".join(line.replace("\n", " ") for line in lines) + "\n" + buf.getvalue()


# ------------------------------------------------------------------------ output
def write_leaderboard(records: Iterable[dict[str, Any]], out_dir: Path | str,
                      formats: Sequence[str] = ("md", "csv", "html", "latex"), command: str | None = None,
                      *, title: str | None = None, metric: str | None = None) -> list[Path]:
    """Write ``leaderboard.<ext>`` in each format plus one accuracy-vs-FLOPs plot (PNG, SVG) per dataset."""
    from eegkd_bench.plots import save_accuracy_flops

    records = list(records)
    if not records:
        return []
    for fmt in formats:
        if fmt not in FORMATS:
            raise UserError(f"unknown leaderboard format {fmt!r}; expected some of {', '.join(FORMATS)}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create leaderboard directory {out}: {exc.strerror}; pass a writable --out") from None
    board = _board(records, metric)
    paired = _paired(board, _paired_metric(metric))
    paths = []
    for fmt in formats:
        path = out / f"leaderboard.{EXTENSIONS[fmt]}"
        path.write_text(_render_board(board, paired, records, fmt, title, command, 3), encoding="utf-8")
        paths.append(path)
    plot_metric = (metric if isinstance(metric, str) and metric != "key" and "," not in metric else HEADLINE)
    for ds in board.datasets:
        paths += save_accuracy_flops(plot_points(board.frame, ds, plot_metric, records=board.ok), out, dataset=ds,
                                     metric=plot_metric, simulated=ds in board.simulated)
    return paths


def plot_points(frame: pd.DataFrame, dataset: str, metric: str, *,
                records: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """One point per row of the leaderboard frame on one dataset: FLOPs, metric mean and std."""
    if (dataset, metric, "mean") not in frame.columns and records:
        # the plotted metric is not among the table's columns; aggregate it from the records
        frame = _board(records, [metric]).frame
    rows = []
    for row in frame.index:
        if (dataset, metric, "mean") not in frame.columns:
            break
        rows.append({"teacher": row[0], "distiller": row[1], "student": row[2],
                     "flops": frame.loc[row, (dataset, "flops", "value")],
                     "mean": frame.loc[row, (dataset, metric, "mean")],
                     "std": frame.loc[row, (dataset, metric, "std")], "is_teacher": row[1] == TEACHER_ROW})
    return pd.DataFrame(rows, columns=["teacher", "distiller", "student", "flops", "mean", "std", "is_teacher"])


def export_records(records: Iterable[dict[str, Any]], path: Path | str, fmt: str = "csv") -> Path:
    """Write the raw records as one flat table (nested dicts as dotted columns, lists as JSON text)."""
    if fmt not in ("csv", "parquet"):
        raise UserError(f"unknown export format {fmt!r}; expected csv or parquet")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError("writing parquet needs pyarrow; run: pip install pyarrow "
                            "(or pip install 'eegkd-bench[parquet]'), or use --format csv") from None
    table = flat_records(records)
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


def flat_records(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Records as a DataFrame: nested dicts flattened to dotted names, lists and mixed-type columns as JSON text."""
    records = list(records)
    if not records:
        from eegkd_bench.results import RECORD_FIELDS

        return pd.DataFrame(columns=list(RECORD_FIELDS))
    table = pd.json_normalize(records, sep=".")
    for col in table.columns:
        values = table[col]
        if values.dtype != object:
            continue
        kinds = {_kind(v) for v in values if not _missing(v)}
        if kinds - {"str"} and (len(kinds) > 1 or kinds & {"json"}):
            # one type per column, as parquet needs; text stays readable, the rest becomes JSON
            table[col] = [None if _missing(v) else v if isinstance(v, str) else json.dumps(v, default=str)
                          for v in values]
    return table


def _kind(v: Any) -> str:
    if isinstance(v, str):
        return "str"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "number"
    return "json"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


__all__ = ["FORMATS", "MIN_PAIRS", "export_records", "flat_records", "holm", "leaderboard_frame",
           "merge_result_dirs", "paired_comparisons", "plot_points", "render", "router_frame", "write_leaderboard"]
