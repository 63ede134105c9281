"""On-disk store of preprocessed windows, keyed by a hash of everything that determines them.

Layout: ``<cache_dir>/windows/<sha256>/`` holds one ``.npy`` file per array -- ``X.npy``
``(n, channels, samples)`` float32, ``y.npy``, ``subjects.npy``, ``split.npy`` -- and
``meta.json`` (key parts, shapes, dtypes, byte sizes, checksums and the scalar fields of
:class:`EEGWindows`).

Streaming: :class:`WindowStoreWriter` appends windows to ``X.npy`` while a loader reads its
recordings one at a time, so building a store needs memory for one recording plus one chunk,
whatever the dataset size. ``X.npy`` is written with a header for zero rows; numpy's header
keeps spare room for the row count to grow, and the final header is written in place at the
end. Labels, subjects and splits (a few bytes per window) stay in memory until then.

Integrity: ``X.npy``'s data is hashed with sha256 in chunks of :data:`HASH_CHUNK` bytes as it is
written (no second read), the small arrays in full; every load checks the size of every file and
re-hashes every chunk (about 1.4 GB/s with SHA-NI on the development machine: a 1 GB ``X``
costs ~0.7 s, the order of reading it from disk). A size-only check would let a bit-flipped or
truncated-then-padded file through. ``X`` is returned memory-mapped read-only
(``mmap_mode="r"``): its pages are file-backed page cache shared by every process, and core
code reads it batch by batch by index (:class:`eegkd_bench.api.WindowRows`), never whole.

Atomicity: an entry is written into a temporary sibling directory and renamed into place
(:func:`eegkd_bench.storage.atomic_directory`), so a reader sees either a complete entry or none
(a full disk leaves nothing behind).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from eegkd_bench.api import EEGWindows
from eegkd_bench.storage import atomic_directory, canonical_json, file_sha256, stable_hash
from eegkd_bench.data.store_writer import CACHE_FORMAT, ENV_CACHE, HASH_CHUNK, StoreWriteError, WindowStoreWriter

__all__ = ["CACHE_FORMAT", "CacheWarning", "ENV_CACHE", "HASH_CHUNK", "StoreWriteError", "WindowStoreWriter",
           "cached_stream", "cached_windows", "default_cache_dir"]

_ARRAYS = ("X", "y", "subjects", "split")
_READ = 8 * 1024 * 1024
_warned_dirs: set[str] = set()


class CacheWarning(UserWarning):
    """The window cache was stale, corrupt or unwritable; the windows were rebuilt."""


def default_cache_dir() -> Path:
    """``$EEGKD_CACHE`` if set, else ``~/.cache/eegkd-bench``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "eegkd-bench"


def _warn_unwritable(root: Path, reason: str) -> None:
    if str(root) not in _warned_dirs:
        _warned_dirs.add(str(root))
        warnings.warn(f"eegkd-bench: cannot write the window cache under {root} ({reason}); "
                      f"using uncached windows in memory (set ${ENV_CACHE} to a writable folder with space)",
                      CacheWarning, stacklevel=3)


def cached_stream(key_parts: dict, write: Callable[[WindowStoreWriter], EEGWindows],
                  cache_dir: str | Path | None = None, *, refresh: bool = False) -> EEGWindows:
    """Windows from the on-disk store keyed by a hash of key_parts; else ``write(writer)`` streams them into it.

    ``write`` appends windows to the :class:`WindowStoreWriter` it is given and returns
    ``writer.finish(...)``. A store that cannot be written (full disk, unwritable folder) leaves
    nothing behind; the windows are then built again in memory, with one warning per folder.
    """
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
    writer = None
    try:
        with atomic_directory(entry) as tmp:
            writer = WindowStoreWriter(tmp, expected_parts)
            try:
                _checked(write(writer), writer)
            finally:
                writer.close()
        return _open_entry(entry)
    except StoreWriteError as exc:
        reason = exc.strerror or str(exc)
    except OSError as exc:
        if writer is not None and not writer.finished:
            raise  # the build's own error (e.g. reading a source file), not the store's
        reason = exc.strerror or str(exc)
    _warn_unwritable(root, reason)
    return _checked(write(WindowStoreWriter(None)), None)


def _checked(windows: Any, writer: WindowStoreWriter | None) -> EEGWindows:
    if not isinstance(windows, EEGWindows):
        raise TypeError(f"window store: the build returned {type(windows).__name__}, expected EEGWindows")
    if writer is not None and not writer.finished:
        raise TypeError("window store: the build must return writer.finish(...)")
    return windows


def cached_windows(key_parts: dict, build: Callable[[], EEGWindows], cache_dir: str | Path | None = None,
                   *, refresh: bool = False) -> EEGWindows:
    """Like :func:`cached_stream` for a build that returns all windows at once (small datasets)."""
    def write(writer: WindowStoreWriter) -> EEGWindows:
        windows = build()
        if not isinstance(windows, EEGWindows):
            raise TypeError(f"cached_windows: build() returned {type(windows).__name__}, expected EEGWindows")
        return writer.extend(windows)

    return cached_stream(key_parts, write, cache_dir, refresh=refresh)


class _StaleEntry(Exception):
    pass


def _verify_chunks(path: Path, info: dict[str, Any]) -> bool:
    """Whether every ``chunk_bytes`` piece of the data after ``offset`` matches its recorded sha256."""
    step = int(info["chunk_bytes"])
    with open(path, "rb") as fh:
        fh.seek(int(info["offset"]))
        for expected in info["chunks"]:
            h, left = hashlib.sha256(), step
            while left and (piece := fh.read(min(_READ, left))):
                h.update(piece)
                left -= len(piece)
            if h.hexdigest() != expected:
                return False
        return not fh.read(1)


def _load_entry(entry: Path, expected_parts: Any) -> EEGWindows:
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _StaleEntry(f"unreadable (meta.json: {type(exc).__name__})") from None
    if meta.get("cache_format") != CACHE_FORMAT or meta.get("key_parts") != expected_parts:
        raise _StaleEntry("stale (its key parts differ)")
    for name in _ARRAYS:
        info = meta.get("arrays", {}).get(name)
        path = entry / f"{name}.npy"
        if not info:
            raise _StaleEntry(f"incomplete (no record of {name}.npy)")
        try:
            size = path.stat().st_size
        except OSError:
            raise _StaleEntry(f"incomplete ({name}.npy is missing)") from None
        if size != info.get("bytes"):
            raise _StaleEntry(f"corrupt ({name}.npy has {size} bytes, expected {info.get('bytes')})")
        try:
            ok = _verify_chunks(path, info) if "chunks" in info else file_sha256(path) == info["sha256"]
        except (KeyError, TypeError, ValueError):
            raise _StaleEntry(f"corrupt (meta.json has no valid checksum of {name}.npy)") from None
        if not ok:
            raise _StaleEntry(f"corrupt ({name}.npy fails its sha256 check)")
    return _open_entry(entry, meta)


def _open_entry(entry: Path, meta: dict[str, Any] | None = None) -> EEGWindows:
    """The windows of a complete entry (``X`` memory-mapped read-only); checks shapes, not checksums."""
    try:
        if meta is None:
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        arrays: dict[str, np.ndarray] = {}
        for name in _ARRAYS:
            info = meta["arrays"][name]
            arr = np.load(entry / f"{name}.npy", mmap_mode="r" if name == "X" else None, allow_pickle=False)
            if list(arr.shape) != info["shape"] or arr.dtype.str != info["dtype"]:
                raise _StaleEntry(f"corrupt ({name}.npy is {arr.dtype.str}{list(arr.shape)}, "
                                  f"expected {info['dtype']}{info['shape']})")
            arrays[name] = arr
        w = meta["windows"]
        return EEGWindows(name=w["name"], sfreq=w["sfreq"], ch_names=list(w["ch_names"]),
                          class_names=list(w["class_names"]), kind=w["kind"], checksum=w["checksum"],
                          notes=w.get("notes", ""), **arrays)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise _StaleEntry(f"corrupt ({exc})") from None


def _store_entry(entry: Path, windows: EEGWindows, key_parts: Any) -> None:
    """Write ``windows`` as a complete entry (through a temporary sibling folder)."""
    with atomic_directory(entry) as tmp:
        writer = WindowStoreWriter(tmp, key_parts)
        try:
            writer.extend(windows)
        finally:
            writer.close()
