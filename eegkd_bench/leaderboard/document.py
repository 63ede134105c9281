"""The document model every renderer reads: title, provenance, legend, tables, figures, sections of text."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

SIMULATED_BANNER = "SIMULATED DATA"

#: How metrics and cost fields are named in tables and figures.
LABELS = {"balanced_accuracy": "Bal. acc", "cohen_kappa": "Kappa", "f1_weighted": "F1 (weighted)",
          "accuracy": "Acc", "auroc": "AUROC", "auc_pr": "AUC-PR", "params": "Params", "flops": "FLOPs",
          "latency_ms": "Latency (ms)", "training_only_params": "Train-only params", "onnx_kb": "ONNX size",
          "onnx_latency_ms": "ONNX latency (ms)", "int8_kb": "int8 size", "int8_drop": "int8 drop"}


@dataclass
class Cell:
    """One table cell: its text, whether it is the best of its column, and the number it sorts by."""

    text: str
    best: bool = False
    sort: float | None = None


@dataclass
class Row:
    """One table row: the stub (row labels), the cells, and tags (method, student, dataset) filters use."""

    stub: list[str]
    cells: list[Cell]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Table:
    """A table with optional column groups (``(label, span)`` over ``columns``)."""

    key: str
    caption: str
    stub: list[str]
    columns: list[str]
    rows: list[Row]
    groups: list[tuple[str, int]] = field(default_factory=list)
    column_datasets: list[str | None] = field(default_factory=list)  # the dataset of each column, if any
    dataset: str | None = None  # the table is about one dataset
    notes: list[str] = field(default_factory=list)

    def flat_columns(self) -> list[str]:
        """Column labels with their group prefixed (``"sim-mi · Bal. acc"``), for one-header-row formats."""
        if not self.groups:
            return list(self.columns)
        flat, i = [], 0
        for g, span in self.groups:
            flat += [f"{g} · {c}" if g else c for c in self.columns[i:i + span]]
            i += span
        return flat + list(self.columns[i:])


@dataclass
class FigureSpec:
    """A figure: the file stem it is saved under, its caption, a function that draws it, where it goes."""

    stem: str
    caption: str
    draw: Callable[[], Any]
    dataset: str | None = None
    table: str = "headline"  # the key of the table it is shown under


@dataclass
class Document:
    """Everything a rendered leaderboard shows, independent of the output format."""

    title: str
    simulated: str  # "": no simulated data; else the banner text
    provenance: list[tuple[str, str]]
    legend: list[str]
    tables: list[Table]
    figures: list[FigureSpec]
    after: list[tuple[str, list[str]]]  # (heading, lines) sections under the tables
    filters: dict[str, list[str]] = field(default_factory=dict)  # tag -> values, for interactive formats


def eng(v: float, unit: str = "") -> str:
    """Engineering notation: 41_000_000 -> ``"41 M"``, 5170 -> ``"5.17 k"``, 312 -> ``"312"``."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {suffix}{unit}"
    return f"{v:.3g} {unit}".rstrip() if abs(v) < 100 else f"{v:.0f} {unit}".rstrip()


def title_of(datasets: list[str], simulated: list[str], title: str | None) -> str:
    """The document title, saying SIMULATED DATA when any dataset is simulated."""
    base = title or "eegkd-bench leaderboard"
    if not simulated:
        return base
    if set(simulated) >= set(datasets):
        return f"{base} — {SIMULATED_BANNER} (not real EEG; for checking the pipeline, not for claims)"
    return f"{base} — includes {SIMULATED_BANNER} (columns marked (simulated))"


def provenance(records: list[dict[str, Any]], command: str | None) -> list[tuple[str, str]]:
    """(label, text) lines: command, versions, date, record counts, presets, data kind, teacher init, hosts, CPUs."""
    status = Counter(r.get("status") for r in records)

    def versions_of(pkg: str) -> str:
        seen = Counter(str((r.get("versions") or {}).get(pkg)) for r in records if (r.get("versions") or {}).get(pkg))
        if not seen:
            return "unknown"
        if len(seen) == 1:
            return next(iter(seen))
        return ", ".join(f"{v} ({n} records)" for v, n in seen.most_common())

    def init_text(r: dict[str, Any]) -> str:
        init = r.get("teacher_init")
        return f"{r.get('teacher')}: {'random init (no pretrained checkpoint)' if init == 'random' else init}"

    kinds = Counter(str(r.get("data_kind")) for r in records if r.get("data_kind"))
    hosts = sorted({str(r.get("host")) for r in records if r.get("host")})
    cpus = sorted({f"{c.get('model')} ({c.get('logical_cores')} logical cores, torch kernels {c.get('torch_capability')})"
                   for c in (r.get("cpu") for r in records) if isinstance(c, dict)})
    presets = sorted({str(r.get("preset")) for r in records if r.get("preset")})
    inits = sorted({init_text(r) for r in records if r.get("teacher_init")})
    return [
        ("command", command or "not recorded (rendered from Python)"),
        ("eegkd-bench", versions_of("eegkd_bench")),
        ("torch", versions_of("torch")),
        ("generated", datetime.now(timezone.utc).isoformat(timespec="seconds")),
        ("records", f"{len(records)} ({status.get('ok', 0)} ok, {status.get('failed', 0)} failed, "
                    f"{status.get('skipped', 0)} skipped)"),
        ("data", ", ".join(f"{k} ({n} records)" for k, n in sorted(kinds.items())) or "unknown"),
        ("presets", ", ".join(presets) or "unknown"),
        ("teacher init", "; ".join(inits) or "unknown"),
        ("hosts", ", ".join(hosts) or "unknown"),
        ("CPUs", "; ".join(cpus) or "not recorded"),
    ]
