"""Result records and the embedded result store.

The store is a directory holding one JSON file per cell (``cells/<key>.json``),
written atomically (temporary file + ``os.replace``), so several worker
processes can write at once and a run killed at any moment leaves either the
complete record or none. ``store.json`` pins the schema version.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

from eegkd_bench.errors import UserError
from eegkd_bench.storage import atomic_write, atomic_write_text

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "skipped")

#: The version of a record's fields. Format 1 is every record written before the fields were typed (no
#: ``record_format`` key); it loads unchanged, its absent fields read as None.
RECORD_FORMAT = 2


@dataclass
class Record:
    """One cell's stored result, as written to ``cells/<key>.json`` (see ``docs/results.md``).

    The fields before ``metrics`` describe the cell and are in every record, ``ok``, ``failed`` or
    ``skipped``; the measured ones are in every ``ok`` record (None where not measured, e.g.
    latency with ``--no-latency``); the last ones are present only when set.

    ``per_subject`` (and the teacher's ``teacher_per_subject``) holds the test metrics of each test
    subject: ``{"subjects": [id, ...], "n_windows": [n, ...], "<metric>": [value or null, ...]}``, one
    entry per subject in the same order, for every metric of the task; ``null`` where a metric is
    undefined on that subject's windows (AUROC of a subject with one class). A record may lack it, and
    ``teacher_per_subject`` is null when the fine-tuned teacher was cached without it; the
    leaderboard's statistics then pair seeds instead of subjects.
    """

    # ---- what the cell is (every record)
    key: str | None = None
    schema_version: int = SCHEMA_VERSION
    record_format: int = RECORD_FORMAT
    status: str | None = None
    error: str = ""
    dataset: str = ""
    dataset_label: str = ""
    data_kind: str | None = None  # "real" or "simulated"
    data_checksum: str | None = None
    split_protocol: str = ""
    task: str | None = None  # "binary" or "multiclass"
    n_classes: int | None = None
    class_names: list[str] | None = None
    teacher: str = ""
    teacher_init: str | None = None  # "random", "sha256:<hex>" or "<label> sha256:<hex>"
    student: str = ""
    distiller: str = ""
    teacher_base: str = ""
    student_base: str = ""
    distiller_base: str = ""
    seed: int = 0
    preset: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    created: str = ""
    host: str = ""
    cpu: dict[str, Any] = field(default_factory=dict)  # model, instruction sets, math libraries
    # ---- what it measured (every ok record)
    metrics: dict[str, float] | None = None
    per_subject: dict[str, list[Any]] | None = None
    val_metrics: dict[str, float] | None = None
    teacher_metrics: dict[str, float] | None = None
    teacher_per_subject: dict[str, list[Any]] | None = None
    teacher_val_metrics: dict[str, float] | None = None
    key_metric: str | None = None
    student_params: int | None = None
    student_flops: int | None = None
    student_latency_ms: float | None = None
    training_only_params: int | None = None
    teacher_params: int | None = None
    teacher_flops: int | None = None
    teacher_latency_ms: float | None = None
    teacher_head_params: int | None = None
    train_time_s: float | None = None
    best_epoch: int | None = None
    epochs: int | None = None
    stopped_early: bool | None = None
    teacher_cache: dict[str, Any] | None = None
    teacher_cached: bool | None = None
    teacher_train_time_s: float | None = None
    device: str | None = None
    torch_threads: int | None = None
    wall_time_s: float | None = None
    train_windows: int | None = None
    transfer_windows: int | None = None
    history: list[dict[str, Any]] | None = None
    student_label: str | None = None
    distiller_report: dict[str, Any] | None = None
    student_weights: dict[str, Any] | None = None
    distiller_role: str | None = None
    hparams: dict[str, Any] | None = None
    # ---- present only when set
    split_sizes: dict[str, dict[str, int]] | None = None
    traceback: str | None = None
    export: dict[str, Any] | None = None
    teacher_export: dict[str, Any] | None = None
    export_error: str | None = None
    #: keys of a stored record that this version does not know (kept when the record is written back)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored for this record."""
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and not (f.name in DESCRIBING or (self.status == "ok" and f.name in MEASURED)):
                continue
            out[f.name] = value
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        """A stored record of any format (format 1 has no ``record_format`` key)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("record_format", 1)
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})


_NAMES = [f.name for f in fields(Record) if f.name != "extra"]
#: the fields that describe a cell (every record has them)
DESCRIBING = tuple(_NAMES[:_NAMES.index("metrics")])
#: the fields every ok record has
MEASURED = tuple(_NAMES[_NAMES.index("metrics"):_NAMES.index("split_sizes")])
#: the columns of an empty export table, in this order
RECORD_FIELDS = DESCRIBING + MEASURED


def versions() -> dict[str, str]:
    """Versions of the packages that determine a result."""
    import numpy
    import torch

    import eegkd_bench

    out = {"eegkd_bench": eegkd_bench.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
           "python": platform.python_version()}
    try:
        import sklearn

        out["scikit_learn"] = sklearn.__version__
    except ImportError:  # pragma: no cover - a declared dependency
        pass
    return out


class ResultStore:
    """A results directory of atomic per-cell JSON records."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True, missing_ok: bool = False) -> None:
        """Open (``create``: or make) the store at ``root``; ``missing_ok``: an absent directory reads as empty."""
        self.root = Path(root)
        self.cells = self.root / "cells"
        meta = self.root / "store.json"
        if meta.exists():
            try:
                info = json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise UserError(f"results directory {self.root} has an unreadable store.json ({exc}); "
                                "point --results at another directory") from None
            if info.get("schema_version") != SCHEMA_VERSION:
                raise UserError(
                    f"results directory {self.root} uses schema version {info.get('schema_version')!r}, "
                    f"this eegkd-bench writes version {SCHEMA_VERSION}; use another --results directory "
                    "or the eegkd-bench version that wrote it"
                )
        elif create:
            try:
                self.cells.mkdir(parents=True, exist_ok=True)
                atomic_write_text(meta, json.dumps({"schema_version": SCHEMA_VERSION, "format": "eegkd-bench results"}))
            except OSError as exc:
                raise UserError(f"cannot write results directory {self.root}: {exc.strerror}; "
                                "choose a writable --results directory") from None
        elif missing_ok and not self.root.exists():
            pass
        elif not self.root.exists():
            raise UserError(f"results directory {self.root} does not exist; run eegkd-bench run --results {self.root} first")
        else:
            raise UserError(f"{self.root} is not an eegkd-bench results directory (no store.json)")

    def path(self, key: str) -> Path:
        return self.cells / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record of a cell, or None (a damaged file counts as absent)."""
        try:
            return json.loads(self.path(key).read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            return None

    def put(self, record: Record | dict[str, Any]) -> None:
        """Store a record (atomically; a record of the same key is replaced)."""
        if isinstance(record, Record):
            record = record.to_dict()
        if record.get("status") not in STATUSES:
            raise ValueError(f"record status must be one of {STATUSES}, got {record.get('status')!r}")
        text = json.dumps(record, indent=1, sort_keys=True, default=_json_default)
        try:
            self.cells.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path(record["key"]), text)
        except OSError as exc:  # full disk, quota, read-only mount: stop the grid, keep what is stored
            raise UserError(f"cannot store a result in {self.cells} ({exc.strerror or exc}); free space there or "
                            "pass another --results, then run the same command again: finished cells are kept "
                            "and only the rest run") from None

    def weights_path(self, key: str) -> Path:
        """Where the deployed student's weights of a finished cell are kept."""
        return self.root / "weights" / f"{key}.pt"

    def put_weights(self, key: str, payload: dict[str, Any]) -> Path:
        """Store a cell's deployed-model payload (``torch.save``, atomic); returns its path."""
        import torch

        path = self.weights_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda fh: torch.save(payload, fh))
        except OSError as exc:
            raise UserError(f"cannot store student weights in {path.parent} ({exc.strerror or exc}); free space "
                            "there or pass another --results") from None
        return path

    def get_weights(self, key: str) -> dict[str, Any] | None:
        """A cell's stored deployed-model payload, or None when it has none."""
        import torch

        path = self.weights_path(key)
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated or foreign file
            raise UserError(f"stored student weights {path} are unreadable ({type(exc).__name__}); delete the "
                            "file and the cell's record, then run the cell again") from None

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.cells.exists():
            return
        for p in sorted(self.cells.glob("*.json")):
            try:
                yield json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                continue

    def frame(self):  # -> pandas.DataFrame
        """All records as a flat DataFrame (nested dicts become ``metrics.balanced_accuracy`` etc.)."""
        return records_frame(list(self.records()))


def records_frame(records: list[dict[str, Any]]):
    """Records as one flat table: the one flattener behind ``eegkd-bench results`` (stdout and files) and exports.

    Nested dicts become dotted columns (``metrics.balanced_accuracy``,
    ``config.student_cfg.lr``); lists, and columns that mix types, become JSON
    text, so every column has one type (as parquet needs).
    """
    import math

    import pandas as pd

    if not records:
        return pd.DataFrame(columns=list(RECORD_FIELDS))
    table = pd.json_normalize(records, sep=".")
    for col in table.columns:
        values = table[col]
        if values.dtype != object:
            continue
        missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in values]
        kinds = {_kind(v) for v, gone in zip(values, missing) if not gone}
        if kinds - {"str"} and (len(kinds) > 1 or kinds & {"json"}):
            table[col] = [None if gone else v if isinstance(v, str) else json.dumps(v, default=_json_default)
                          for v, gone in zip(values, missing)]
    return table


def _kind(v: Any) -> str:
    import numpy as np

    if isinstance(v, str):
        return "str"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "number"
    return "json"


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
