"""Report sections: tables (and heatmaps) a method contributes to the leaderboard through its records.

A distiller's ``report()`` is stored as ``record["distiller_report"]``. Under
its key ``"sections"`` it may hold named sections, each a small matrix of
numbers::

    {"sections": {"router": {
        "title": "Router: mean weight per teacher layer",    # heading in the leaderboard
        "columns": ["layer_1", "layer_2", "layer_3"],         # column labels
        "rows": {"all classes": [0.2, 0.3, 0.5],              # row label -> one number per column
                 "class 0": [0.1, 0.4, 0.5]},
        "plot": "heatmap",                                    # optional: also draw a heatmap per dataset
        "highlight": "max",                                   # optional: bold the max (or "min") of each row
        "note": "..."}}}                                      # optional: a line under the table

The leaderboard averages each row over the seeds of a (method, student,
dataset) and renders one table per section name (and one heatmap per dataset
when asked). A record whose report has no ``"sections"`` (one stored before its
plugin wrote them) gets them from the function the plugin registered as
``sections=`` (``register(name, factory, sections=fn)``, ``fn(report) ->
sections``). A row labelled ``"class K"`` (K a class index, as a distiller
that knows only the labels' indices writes it) is shown under the K-th class
name of the record's dataset (``record["class_names"]``, else the names the
dataset's plugin declares), so a table reads "left_hand", not "class 0".
Malformed sections are skipped with a note. CONTRIBUTING.md ("Report
sections") documents this for plugin authors.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from eegkd_bench.leaderboard.aggregate import registered_dataset, student_label
from eegkd_bench.leaderboard.roles import Roles, dataset_class_names, plugin_metadata

_CLASS_ROW = re.compile(r"class (\d+)")


@dataclass
class SectionRow:
    """One averaged row of a section: whose it is, its label, the mean per column and the seeds averaged."""

    method: str
    student: str
    dataset: str
    label: str
    values: list[float]
    n: int


@dataclass
class Section:
    """One named section, with its rows over every (method, student, dataset) that reported it."""

    name: str
    title: str
    columns: list[str]
    plot: str | None = None
    highlight: str | None = None
    notes: list[str] = field(default_factory=list)
    rows: list[SectionRow] = field(default_factory=list)

    def datasets(self) -> list[str]:
        """The datasets with rows, in order."""
        return list(dict.fromkeys(r.dataset for r in self.rows))


def report_sections(records: Iterable[dict[str, Any]], roles: Roles | None = None,
                    problems: list[str] | None = None) -> list[Section]:
    """The sections of the ok records' ``distiller_report``, averaged over seeds; problems appended as lines."""
    roles = roles or Roles()
    problems = problems if problems is not None else []
    records = [r for r in records if r.get("status") == "ok" and isinstance(r.get("distiller_report"), dict)]
    derive = plugin_metadata({str(r.get("distiller")) for r in records
                              if "sections" not in r["distiller_report"]}, "sections")
    declared = dataset_class_names({registered_dataset(r) for r in records if not r.get("class_names")})
    meta: dict[str, dict[str, Any]] = {}
    acc: dict[tuple[str, str, str, str, str], list[np.ndarray]] = defaultdict(list)
    for r in records:
        class_names = r.get("class_names") or declared.get(registered_dataset(r)) or []
        sections = r["distiller_report"].get("sections")
        if sections is None and callable(derive.get(str(r.get("distiller")))):
            try:
                sections = derive[str(r["distiller"])](r["distiller_report"])
            except Exception as exc:  # noqa: BLE001 - a plugin's bug costs its section, not the leaderboard
                problems.append(f"the sections function of {r.get('distiller')} failed on a record of "
                                f"{r.get('dataset')}: {type(exc).__name__}: {exc}")
                continue
        if not isinstance(sections, dict):
            continue
        for name, sec in sections.items():
            parsed = _parse(sec)
            if isinstance(parsed, str):
                problems.append(f"report section {name!r} of {r.get('distiller')} on {r.get('dataset')} "
                                f"(seed {r.get('seed')}) was skipped: {parsed}")
                continue
            title, columns, rows = parsed
            first = meta.setdefault(name, {"title": title, "columns": columns, "plot": sec.get("plot"),
                                           "highlight": sec.get("highlight"), "notes": []})
            if columns != first["columns"]:
                problems.append(f"report section {name!r} of {r.get('distiller')} on {r.get('dataset')} "
                                f"(seed {r.get('seed')}) has columns {columns}, others {first['columns']}; skipped")
                continue
            if sec.get("note") and sec["note"] not in first["notes"]:
                first["notes"].append(str(sec["note"]))
            for label, values in rows.items():
                label = _class_named(label, class_names)
                key = (name, str(r.get("distiller")), student_label(r), str(r.get("dataset")), label)
                acc[key].append(np.asarray(values, dtype=float))
    out = []
    for name in sorted(meta):
        m = meta[name]
        sec = Section(name, m["title"], m["columns"], m["plot"], m["highlight"], m["notes"])
        keys = [k for k in acc if k[0] == name]
        order = {label: i for i, label in enumerate(dict.fromkeys(k[4] for k in keys))}
        for key in sorted(keys, key=lambda k: (k[3], roles.key(k[1]), k[2], order[k[4]])):
            mean = np.mean(np.stack(acc[key]), axis=0)
            sec.rows.append(SectionRow(key[1], key[2], key[3], key[4], [float(v) for v in mean], len(acc[key])))
        out.append(sec)
    return out


def _class_named(label: str, class_names: list[str]) -> str:
    """``"class 2"`` -> the third class name, when there is one; any other label unchanged."""
    m = _CLASS_ROW.fullmatch(label)
    if m and int(m.group(1)) < len(class_names):
        return str(class_names[int(m.group(1))])
    return label


def _parse(sec: Any) -> tuple[str, list[str], dict[str, list[float]]] | str:
    """(title, columns, rows) of a well-formed section, else the reason it is not."""
    if not isinstance(sec, dict):
        return "not a mapping"
    columns, rows = sec.get("columns"), sec.get("rows")
    if not isinstance(columns, list) or not columns:
        return "'columns' must be a non-empty list of labels"
    if not isinstance(rows, dict) or not rows:
        return "'rows' must map row labels to lists of numbers"
    out = {}
    for label, values in rows.items():
        try:
            arr = [float(v) for v in values]
        except (TypeError, ValueError):
            return f"row {label!r} is not a list of numbers"
        if len(arr) != len(columns) or not all(math.isfinite(v) for v in arr):
            return f"row {label!r} needs {len(columns)} finite numbers, one per column"
        out[str(label)] = arr
    return str(sec.get("title") or "Report section"), [str(c) for c in columns], out
