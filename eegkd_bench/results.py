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
from pathlib import Path
from typing import Any, Iterator

from eegkd_bench.errors import UserError
from eegkd_bench.storage import atomic_write, atomic_write_text

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "skipped")

#: The fields of a finished (``ok``) record, in this order in an empty export table; failed and
#: skipped records carry the ones that describe the cell and its provenance. Others are optional
#: (``distiller_report``, ``export``, ``history``). A record may lack ``per_subject``, and
#: ``teacher_per_subject`` is null when the fine-tuned teacher was cached without it; the
#: leaderboard's statistics then pair seeds instead of subjects.
#:
#: ``per_subject`` (and the teacher's ``teacher_per_subject``) holds the test metrics of each test
#: subject: ``{"subjects": [id, ...], "n_windows": [n, ...], "<metric>": [value or null, ...]}``,
#: one entry per subject in the same order, for every metric of the task; ``null`` where a metric
#: is undefined on that subject's windows (AUROC of a subject with one class).
RECORD_FIELDS = (
    "key", "schema_version", "status", "error",
    # what the cell is
    "dataset", "dataset_label", "data_kind", "data_checksum", "split_protocol", "task", "n_classes", "class_names",
    "teacher", "teacher_init", "student", "student_label", "distiller", "teacher_base", "student_base",
    "distiller_base", "seed", "preset", "config",
    # what it measured
    "metrics", "per_subject", "val_metrics", "teacher_metrics", "teacher_per_subject", "teacher_val_metrics",
    "key_metric", "student_params", "student_flops", "student_latency_ms", "training_only_params",
    "teacher_params", "teacher_flops", "teacher_latency_ms", "teacher_head_params",
    "train_time_s", "best_epoch", "epochs", "teacher_cache", "teacher_cached", "teacher_train_time_s",
    # provenance
    "versions", "provenance", "created", "host", "cpu", "device", "torch_threads", "wall_time_s",
)


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

    def put(self, record: dict[str, Any]) -> None:
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
