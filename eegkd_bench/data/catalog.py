"""The registered datasets: rows for ``eegkd-bench datasets``, selecting them for a run, loading them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping


from eegkd_bench.api import EEGWindows
from eegkd_bench.errors import DataUnavailable, UserError
from eegkd_bench.registry import Registry

COLUMNS = ("name", "kind", "paradigm", "subjects", "available", "where", "size", "classes", "channels", "window_s",
           "sfreq", "description", "how_to_get", "plugin", "exact")
_MAX_FILES = 20_000  # stop counting bytes of a huge tree: the listing must stay under a second


def human_size(n_bytes: int) -> str:
    """``1536`` -> ``"1.5 KB"`` (decimal units, like ``du --si``)."""
    size = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""  # pragma: no cover - loop always returns


def disk_size(where: str) -> str:
    """Human-readable size of a file or folder, ``""`` if it is not a local path (">" when capped)."""
    path = Path(where)
    try:
        if path.is_file():
            return human_size(path.stat().st_size)
        if not path.is_dir():
            return ""
        total, count = 0, 0
        for root, _dirs, files in os.walk(path):
            for f in files:
                try:
                    total += os.stat(os.path.join(root, f), follow_symlinks=False).st_size
                except OSError:
                    continue
                count += 1
                if count >= _MAX_FILES:
                    return f">{human_size(total)}"
        return human_size(total)
    except OSError:
        return ""


def dataset_rows(registry: Registry, data_dir: str | None = None, pattern: str | None = None) -> list[dict[str, Any]]:
    """One row per registered dataset (static facts + availability); never loads or downloads data.

    ``exact`` is False where a plugin only has approximate facts (e.g. MOABB's
    summary tables before MOABB's classes were read).
    """
    rows = []
    for entry in registry.entries("datasets", pattern):
        row: dict[str, Any] = {k: "" for k in COLUMNS}
        row.update(name=entry.name, plugin=entry.plugin, description=entry.description, available=False)
        try:
            ds = entry.factory()
            names = list(getattr(ds, "class_names", ()) or ())
            n_classes = len(names) or int(getattr(ds, "n_classes", 0) or 0)
            row.update(
                kind=getattr(ds, "kind", "") or entry.metadata.get("kind", ""),
                paradigm=getattr(ds, "paradigm", "") or "",
                subjects=int(getattr(ds, "n_subjects", 0) or 0) or "",
                exact=bool(getattr(getattr(ds, "facts", None), "exact", True)),
                description=getattr(ds, "description", "") or entry.description,
                classes=f"{n_classes}: {', '.join(names)}" if names else (str(n_classes) if n_classes else ""),
                channels=int(getattr(ds, "n_channels", 0) or 0) or "",
                window_s=float(getattr(ds, "window_s", 0.0) or 0.0) or "",
                sfreq=float(getattr(ds, "sfreq", 0.0) or 0.0) or "",
            )
            av = ds.availability(data_dir)
            row.update(available=bool(av.available), where=av.where, how_to_get=av.how_to_get)
            if av.detail:
                row["detail"] = av.detail
            if av.available and row["kind"] == "real":
                row["size"] = disk_size(av.where)
        except Exception as exc:  # one broken plugin must not hide the others
            msg = str(exc).splitlines()[0] if str(exc) else ""
            row["error"] = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
            row["where"] = row["where"] or "?"
        rows.append(row)
    return rows


def select_datasets(registry: Registry, spec: str, *, simulated_only: bool) -> list[str]:
    """Resolve a dataset selection; ``all`` honours the preset (quick: simulated only)."""
    names = registry.select("datasets", spec)
    if spec.strip() == "all":  # unlabeled pretraining corpora are never part of a grid
        names = [n for n in names if getattr(registry.get("datasets", n).factory, "labeled", True)]
    if simulated_only and spec.strip() == "all":
        names = [n for n in names if getattr(registry.get("datasets", n).factory, "kind", None) == "simulated"
                 or _instance_kind(registry, n) == "simulated"]
        if not names:
            raise UserError("no simulated dataset is registered; is the 'simulated' plugin disabled? "
                            "see eegkd-bench plugins")
    return names


def _instance_kind(registry: Registry, name: str) -> str:
    try:
        return registry.get("datasets", name).factory().kind
    except Exception:
        return "?"


def make_dataset(registry: Registry, name: str, options: Mapping[str, Any] | None = None) -> Any:
    """A registered dataset built with ``options`` (resolved, see :func:`eegkd_bench.config.resolve`)."""
    return registry.get("datasets", name).factory(**dict(options or {}))


def load_dataset(registry: Registry, name: str, data_dir: str | None, cache_dir: Path,
                 options: Mapping[str, Any] | None = None) -> EEGWindows:
    """Instantiate a registered dataset with ``options`` and load it (raises DataUnavailable when absent)."""
    dataset = make_dataset(registry, name, options)
    avail = dataset.availability(data_dir)
    if not avail.available:
        how = f"; {avail.how_to_get}" if avail.how_to_get else ""
        raise DataUnavailable(f"not downloaded: looked in {avail.where}{how}")
    windows = dataset.load(data_dir, str(cache_dir))
    bad = windows.first_nonfinite()
    if bad is not None:
        raise UserError(f"dataset {name!r} has non-finite values (first in window {bad}); check its files, "
                        f"then delete its cached windows under {cache_dir / 'windows'} and run again")
    for split in ("train", "val", "test"):
        if len(windows.indices(split)) == 0:
            raise UserError(f"dataset {name!r} has an empty {split} split; it needs train, val and test subjects")
    return windows
