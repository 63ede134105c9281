"""Writing a window store chunk by chunk (see :mod:`eegkd_bench.data.cache` for the layout and checks).

:class:`WindowStoreWriter` appends windows to ``X.npy`` while a loader reads its recordings one
at a time, hashing the data as it is written; it is re-exported by :mod:`eegkd_bench.data.cache`.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eegkd_bench.api import SPLITS, DataKind, EEGWindows
from eegkd_bench.errors import DataUnavailable, DiskSpaceError
from eegkd_bench.storage import canonical_json, file_sha256

#: Bump when the on-disk layout changes; older entries then miss the cache (new hash).
CACHE_FORMAT = 2
#: ``X.npy`` data is checksummed in pieces of this many bytes (written and verified piece by piece).
HASH_CHUNK = 64 * 1024 * 1024
ENV_CACHE = "EEGKD_CACHE"

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
