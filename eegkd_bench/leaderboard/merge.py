"""Merging result directories: one record per cell key, conflicts reported, superseded records dropped."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from eegkd_bench.identity import row_identity
from eegkd_bench.results import ResultStore

#: Fields that, when two records share a cell key, must agree for them to count as the same result.
_SUBSTANCE = ("status", "versions", "config", "data_checksum", "teacher_init", "metrics", "val_metrics",
              "teacher_metrics", "student_params", "student_flops")


def merge_result_dirs(dirs: Sequence[Path | str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of several result directories merged by cell key, and one warning line per conflict."""
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
            differ = [f for f in _SUBSTANCE if canonical(old.get(f)) != canonical(rec.get(f))]
            if differ:
                winner, win_dir = (rec, d) if take_new else (old, old_dir)
                warnings.append(
                    f"cell {key} ({_cell_label(rec)}) differs between {old_dir} and {d} in {', '.join(differ)}; "
                    f"kept the {winner.get('status')} record from {win_dir} created {winner.get('created')}")
            if take_new:
                kept[key] = (rec, d)
    return _drop_superseded([r for r, _ in kept.values()]), warnings


def created(rec: dict[str, Any]) -> datetime:
    """When a record was written (timezone-aware; unreadable dates sort first)."""
    try:
        t = datetime.fromisoformat(str(rec.get("created")))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def canonical(value: Any) -> str:
    """A JSON text that is equal for equal values, so nested fields compare as strings."""
    return json.dumps(value, sort_keys=True, default=str)


def _preference(rec: dict[str, Any]) -> tuple[bool, datetime]:
    return rec.get("status") == "ok", created(rec)


def _identity(rec: dict[str, Any]) -> tuple[Any, ...]:
    """The cell's row (:func:`eegkd_bench.results.row_identity`), its preset and its configuration."""
    return row_identity(rec) + (rec.get("preset"), canonical(rec.get("config")))


def _without_init(identity: tuple[Any, ...]) -> tuple[Any, ...]:
    return identity[:2] + identity[3:]


def _drop_superseded(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop skipped records of cells that later ran, and failed ones of cells that later succeeded.

    The runner does the same inside one directory (a finished cell deletes its
    stale skip record); across machines the records carry different keys, so
    it has to happen here. A skipped record that does not name its teacher's init
    is superseded by a run of the cell with any init.
    """
    ran = {_identity(r) for r in records if r.get("status") in ("ok", "failed")}
    ran_any_init = {_without_init(i) for i in ran}
    succeeded = {_identity(r) for r in records if r.get("status") == "ok"}
    out = []
    for r in records:
        status, identity = r.get("status"), _identity(r)
        if status == "skipped" and (identity in ran or (not identity[2] and _without_init(identity) in ran_any_init)):
            continue
        if status == "failed" and identity in succeeded:
            continue
        out.append(r)
    return out


def _cell_label(rec: dict[str, Any]) -> str:
    return f"{rec.get('dataset')} · {rec.get('distiller')} → {rec.get('student')} · seed {rec.get('seed')}"
