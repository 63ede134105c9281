"""On-disk cache of preprocessed windows, keyed by a hash of everything that determines them.

Layout: ``<cache_dir>/windows/<sha256>/`` holds ``X.npy``, ``y.npy``, ``subjects.npy``,
``split.npy`` and ``meta.json`` (key parts, shapes, dtypes, byte sizes and a sha256 of every
array file, plus the scalar fields of :class:`EEGWindows`).

Integrity: every array file is hashed in full with sha256 when written, and hashed again in
full on every load (chunked 8 MiB reads; about 1.4 GB/s with SHA-NI on the development
machine, so a 1 GB ``X`` costs ~0.7 s, the same order as reading it from disk). A cheaper
size-only check would let a bit-flipped or truncated-then-padded file through, so we pay the
full hash. ``X`` is returned memory-mapped copy-on-write (``mmap_mode="c"``): pages stay shared
through the page cache and writing to the array never touches the cache file.

Atomicity: an entry is written into a temporary sibling directory and renamed into place, so a
reader sees either a complete entry or none; when two processes build the same entry the first
rename wins and the other discards its copy.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from eegkd_bench.api import EEGWindows
from eegkd_bench.storage import atomic_directory, canonical_json, file_sha256, stable_hash

#: Bump when the on-disk layout changes; older entries then miss the cache (new hash).
CACHE_FORMAT = 1
ENV_CACHE = "EEGKD_CACHE"
_ARRAYS = ("X", "y", "subjects", "split")
_warned_dirs: set[str] = set()


class CacheWarning(UserWarning):
    """The window cache was stale, corrupt or unwritable; the windows were rebuilt."""


def default_cache_dir() -> Path:
    """``$EEGKD_CACHE`` if set, else ``~/.cache/eegkd-bench``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "eegkd-bench"


def cached_windows(key_parts: dict, build: Callable[[], EEGWindows], cache_dir: str | Path | None = None,
                   *, refresh: bool = False) -> EEGWindows:
    """Return windows from the on-disk cache keyed by a hash of key_parts, else build and store them."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    key = stable_hash({"cache_format": CACHE_FORMAT, "key_parts": key_parts})
    # What the key parts look like after a JSON round trip is what meta.json will hold.
    expected_parts = json.loads(canonical_json(key_parts))
    entry = root / "windows" / key
    if not refresh and entry.exists():
        try:
            return _load_entry(entry, expected_parts)
        except _StaleEntry as exc:
            warnings.warn(f"eegkd-bench: window cache {entry} is {exc}; rebuilding it", CacheWarning,
                          stacklevel=2)
    windows = build()
    if not isinstance(windows, EEGWindows):
        raise TypeError(f"cached_windows: build() returned {type(windows).__name__}, expected EEGWindows")
    try:
        _store_entry(entry, windows, expected_parts)
    except OSError as exc:
        if str(root) not in _warned_dirs:
            _warned_dirs.add(str(root))
            warnings.warn(f"eegkd-bench: cannot write the window cache under {root} ({exc.strerror or exc}); "
                          f"using uncached windows (set ${ENV_CACHE} to a writable folder)", CacheWarning,
                          stacklevel=2)
    return windows


class _StaleEntry(Exception):
    pass


def _load_entry(entry: Path, expected_parts: Any) -> EEGWindows:
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _StaleEntry(f"unreadable (meta.json: {type(exc).__name__})") from None
    if meta.get("cache_format") != CACHE_FORMAT or meta.get("key_parts") != expected_parts:
        raise _StaleEntry("stale (its key parts differ)")
    arrays: dict[str, np.ndarray] = {}
    for name in _ARRAYS:
        info = meta.get("arrays", {}).get(name)
        path = entry / f"{name}.npy"
        if not info:
            raise _StaleEntry(f"incomplete (no record of {name}.npy)")
        try:
            size = path.stat().st_size
        except OSError:
            raise _StaleEntry(f"incomplete ({name}.npy is missing)") from None
        if size != info["bytes"]:
            raise _StaleEntry(f"corrupt ({name}.npy has {size} bytes, expected {info['bytes']})")
        if file_sha256(path) != info["sha256"]:
            raise _StaleEntry(f"corrupt ({name}.npy fails its sha256 check)")
        try:
            arr = np.load(path, mmap_mode="c" if name == "X" else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise _StaleEntry(f"corrupt ({name}.npy: {exc})") from None
        if list(arr.shape) != info["shape"] or arr.dtype.str != info["dtype"]:
            raise _StaleEntry(f"corrupt ({name}.npy is {arr.dtype.str}{list(arr.shape)}, "
                              f"expected {info['dtype']}{info['shape']})")
        arrays[name] = arr
    w = meta["windows"]
    try:
        return EEGWindows(name=w["name"], sfreq=w["sfreq"], ch_names=list(w["ch_names"]),
                          class_names=list(w["class_names"]), kind=w["kind"], checksum=w["checksum"],
                          notes=w.get("notes", ""), **arrays)
    except (KeyError, ValueError) as exc:
        raise _StaleEntry(f"corrupt ({exc})") from None


def _store_entry(entry: Path, windows: EEGWindows, key_parts: Any) -> None:
    with atomic_directory(entry) as tmp:
        arrays_meta = {}
        for name in _ARRAYS:
            arr = np.asarray(getattr(windows, name))
            if arr.dtype == object:  # e.g. subject ids kept as Python strings
                arr = arr.astype(str)
            path = tmp / f"{name}.npy"
            np.save(path, np.ascontiguousarray(arr), allow_pickle=False)
            arrays_meta[name] = {"shape": list(arr.shape), "dtype": arr.dtype.str,
                                 "bytes": path.stat().st_size, "sha256": file_sha256(path)}
        meta = {
            "cache_format": CACHE_FORMAT,
            "key_parts": key_parts,
            "arrays": arrays_meta,
            "windows": {"name": windows.name, "sfreq": float(windows.sfreq), "ch_names": list(windows.ch_names),
                        "class_names": list(windows.class_names), "kind": windows.kind,
                        "checksum": windows.checksum, "notes": windows.notes},
        }
        (tmp / "meta.json").write_text(canonical_json(meta), encoding="utf-8")
