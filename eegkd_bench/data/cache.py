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

import errno
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eegkd_bench.api import SPLITS, DataKind, EEGWindows
from eegkd_bench.errors import DataUnavailable, DiskSpaceError
from eegkd_bench.storage import atomic_directory, canonical_json, file_sha256, stable_hash

#: Bump when the on-disk layout changes; older entries then miss the cache (new hash).
CACHE_FORMAT = 2
#: ``X.npy`` data is checksummed in pieces of this many bytes (written and verified piece by piece).
HASH_CHUNK = 64 * 1024 * 1024
ENV_CACHE = "EEGKD_CACHE"
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


class StoreWriteError(OSError):
    """The window store could not be written (full disk, unwritable folder); nothing partial is kept."""


class WindowStoreWriter:
    """Builds a window store chunk by chunk, for loaders that read one recording at a time.

    ``append`` writes each chunk of windows straight to ``<folder>/X.npy`` and keeps only the
    per-window labels, subjects and splits in memory; ``finish`` closes the store and returns
    :class:`EEGWindows` whose ``X`` is a read-only memory map of that file. Without a folder the
    windows are collected in memory instead (the fallback when the cache cannot be written).
    Loaders usually get a writer from :func:`cached_stream` rather than making one::

        def write(writer: WindowStoreWriter) -> EEGWindows:
            for recording in recordings:                       # one at a time
                X, y = windows_of(recording)                   # (k, channels, samples), (k,)
                writer.append(X, y, subjects=subject_of(recording), split=split_of(recording))
            return writer.finish(name=..., sfreq=200.0, ch_names=..., class_names=..., kind="real",
                                 checksum=..., notes=...)

        windows = cached_stream(key_parts, write, cache_dir)

    A split that is known only after every recording was read (e.g. train/val by the subjects
    that turned out usable) is passed as ``split=None`` and set by :meth:`assign_splits`.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None, key_parts: Any = None) -> None:
        self.folder = None if folder is None else Path(folder)
        self.key_parts = key_parts
        self._row_shape: tuple[int, ...] | None = None
        self._n = 0
        self._fh: Any = None
        self._offset = 0
        self._hash = hashlib.sha256()
        self._fill = 0
        self._chunks: list[str] = []
        self._mem: list[np.ndarray] = []
        self._y: list[np.ndarray] = []
        self._subjects: list[np.ndarray] = []
        self._split: list[np.ndarray] = []
        self.finished = False
        self._expected = 0
        self._appends = 0

    def __len__(self) -> int:
        return self._n

    def expect(self, appends: int) -> None:
        """Announce how many :meth:`append` calls (e.g. recordings) will come, so a store that cannot fit stops early.

        After the 1st, 2nd, 4th, 8th ... append the size so far is extrapolated; when the rest would
        not fit in the free space of the folder, :class:`~eegkd_bench.errors.DiskSpaceError` is raised
        (the partial store is removed).
        """
        self._expected = int(appends)

    def append(self, X: np.ndarray, y: int | np.ndarray, subjects: str | Sequence[str] | np.ndarray,
               split: str | Sequence[str] | np.ndarray | None = None) -> None:
        """Add windows ``X`` ``(k, channels, samples)`` (stored as float32) with their labels, subjects and split.

        ``y``, ``subjects`` and ``split`` are one value for all ``k`` windows or one per window;
        ``split=None`` leaves the split to :meth:`assign_splits`.
        """
        if self.finished:
            raise RuntimeError("WindowStoreWriter.append after finish()")
        X = np.asarray(X)
        if X.ndim != 3:
            raise ValueError(f"windows must be (k, channels, samples), got shape {X.shape}")
        k = len(X)
        if k == 0:
            return
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self._row_shape is None:
            self._row_shape = tuple(X.shape[1:])
            if self.folder is not None:
                self._open()
        elif tuple(X.shape[1:]) != self._row_shape:
            raise ValueError(f"windows of shape {tuple(X.shape[1:])} after windows of shape {self._row_shape}; "
                             "every window of a dataset must have the same channels and samples")
        split_arr = np.full(k, "", dtype=object) if split is None else _per_window(split, k, "split")
        bad = sorted({str(s) for s in split_arr if s != "" and s not in SPLITS})
        if bad:
            raise ValueError(f"split value(s) {bad}; expected one of {SPLITS}")
        y_arr = np.broadcast_to(np.asarray(y, dtype=np.int64), (k,)).copy()
        subj_arr = _per_window(subjects, k, "subjects")
        if self.folder is None:
            self._mem.append(X.copy())
        else:
            self._write(memoryview(X).cast("B"))
        self._y.append(y_arr)
        self._subjects.append(subj_arr)
        self._split.append(split_arr)
        self._n += k
        self._appends += 1
        if self.folder is not None and self._expected > self._appends and not self._appends & (self._appends - 1):
            self._check_space()

    def _check_space(self) -> None:
        written = self._n * int(np.prod(self._row_shape)) * 4
        rest = written / self._appends * (self._expected - self._appends)
        free = shutil.disk_usage(self.folder).free
        if rest > free:
            self.close()
            raise DiskSpaceError(f"the window store needs about {(written + rest) / 1e9:.1f} GB in "
                                 f"{self.folder.parent} but only {(written + free) / 1e9:.1f} GB are free; "
                                 f"pass --cache-dir on a larger disk (or set ${ENV_CACHE})")

    def assign_splits(self, split_of: Mapping[str, str], default: str | None = None) -> None:
        """Set the split of windows appended with ``split=None`` from their subject (else ``default``)."""
        for subjects, split in zip(self._subjects, self._split):
            pending = split == ""
            if pending.any():
                split[pending] = [split_of.get(s, default) or "" for s in subjects[pending]]
                bad = sorted({str(v) for v in split[pending] if v not in SPLITS})
                if bad:
                    raise ValueError(f"assign_splits gave split(s) {bad}; expected one of {SPLITS}")

    def extend(self, windows: EEGWindows) -> EEGWindows:
        """Append every window of ``windows`` (in chunks) and finish with its name, classes and checksum."""
        X = windows.X
        step = max(1, HASH_CHUNK // max(1, X[:1].nbytes))
        for start in range(0, len(X), step):
            sl = slice(start, start + step)
            self.append(X[sl], windows.y[sl], np.asarray(windows.subjects[sl]), np.asarray(windows.split[sl]))
        return self.finish(name=windows.name, sfreq=windows.sfreq, ch_names=windows.ch_names,
                           class_names=windows.class_names, kind=windows.kind, checksum=windows.checksum,
                           notes=windows.notes)

    def finish(self, *, name: str, sfreq: float, ch_names: Sequence[str], class_names: Sequence[str],
               kind: DataKind, checksum: str, notes: str = "") -> EEGWindows:
        """Close the store and return its windows; raises DataUnavailable when nothing was appended."""
        if self._n == 0:
            self.close()
            raise DataUnavailable(f"{name}: no usable windows in any file ({notes or 'no files'})")
        if any((s == "").any() for s in self._split):
            raise ValueError(f"{name}: some windows have no split; call assign_splits() before finish()")
        y = np.concatenate(self._y)
        subjects = np.concatenate(self._subjects).astype(str)
        split = np.concatenate(self._split).astype(str)
        fields = {"name": name, "sfreq": float(sfreq), "ch_names": list(ch_names), "class_names": list(class_names),
                  "kind": kind, "checksum": checksum, "notes": notes}
        if self.folder is None:
            X = np.concatenate(self._mem)
            self._mem = []
        else:
            arrays_meta = {"X": self._close_x()}
            for arr_name, arr in (("y", y), ("subjects", subjects), ("split", split)):
                path = self.folder / f"{arr_name}.npy"
                self._guard(lambda: np.save(path, arr, allow_pickle=False))
                arrays_meta[arr_name] = {"shape": list(arr.shape), "dtype": arr.dtype.str,
                                         "bytes": path.stat().st_size, "sha256": file_sha256(path)}
            meta = {"cache_format": CACHE_FORMAT, "key_parts": self.key_parts, "arrays": arrays_meta,
                    "windows": fields}
            text = canonical_json(meta)
            self._guard(lambda: (self.folder / "meta.json").write_text(text, encoding="utf-8"))
            X = np.load(self.folder / "X.npy", mmap_mode="r")
        self.finished = True
        return EEGWindows(X=X, y=y, subjects=subjects, split=split, **fields)

    def close(self) -> None:
        """Close the open file (after an error; :meth:`finish` closes it otherwise)."""
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None

    # -- the X file
    def _guard(self, op: Callable[[], Any]) -> Any:
        try:
            return op()
        except StoreWriteError:
            raise
        except OSError as exc:
            self.close()
            raise StoreWriteError(exc.errno or errno.EIO, exc.strerror or str(exc)) from exc

    def _header(self, n: int) -> None:
        header = {"descr": np.dtype(np.float32).str, "fortran_order": False, "shape": (n, *self._row_shape)}
        np.lib.format.write_array_header_1_0(self._fh, header)

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fh = self._guard(lambda: open(self.folder / "X.npy", "wb"))
        # numpy pads the header of a (0, ...) array so the row count can grow in place to 21 digits
        self._guard(lambda: self._header(0))
        self._offset = self._fh.tell()

    def _write(self, buf: memoryview) -> None:
        self._guard(lambda: self._fh.write(buf))
        while len(buf):
            take = min(len(buf), HASH_CHUNK - self._fill)
            self._hash.update(buf[:take])
            self._fill += take
            buf = buf[take:]
            if self._fill == HASH_CHUNK:
                self._chunks.append(self._hash.hexdigest())
                self._hash, self._fill = hashlib.sha256(), 0

    def _close_x(self) -> dict[str, Any]:
        if self._fill:
            self._chunks.append(self._hash.hexdigest())
            self._hash, self._fill = hashlib.sha256(), 0

        def header() -> None:
            self._fh.flush()
            self._fh.seek(0)
            self._header(self._n)
            if self._fh.tell() != self._offset:
                raise OSError(errno.EIO, f"the X.npy header grew from {self._offset} to {self._fh.tell()} bytes")
            self._fh.close()

        self._guard(header)
        self._fh = None
        size = (self.folder / "X.npy").stat().st_size
        return {"shape": [self._n, *self._row_shape], "dtype": np.dtype(np.float32).str, "bytes": size,
                "offset": self._offset, "chunk_bytes": HASH_CHUNK, "chunks": list(self._chunks)}


def _per_window(value: Any, k: int, what: str) -> np.ndarray:
    """One value per window as an object array (strings): a scalar is repeated ``k`` times."""
    if isinstance(value, str) or np.ndim(value) == 0:
        return np.full(k, str(value), dtype=object)
    arr = np.asarray(value).astype(str).astype(object)
    if arr.shape != (k,):
        raise ValueError(f"{what} has {arr.shape} entries for {k} windows")
    return arr


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
