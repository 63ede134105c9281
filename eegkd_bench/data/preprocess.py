"""Shared preprocessing for the real-data loaders (CBraMod downstream recipes).

What lives here: where a dataset's files are (``$EEGKD_DATA/<subfolder>``),
reading an EDF robustly, selecting channels by name, MNE resample/filter/notch,
the TUH bipolar TCP montage, windowing, subject splits, the source-file
checksum, the skip log (one line per unusable file) and the on-disk cache call.
The per-dataset recipes are in ``plugins/eegkd_plugins/{tuh,faced,mumtaz,moabb_datasets}.py``.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from eegkd_bench.api import EEGWindows
from eegkd_bench.data import cache as window_cache
from eegkd_bench.data.cache import WindowStoreWriter
from eegkd_bench.errors import DataUnavailable

ENV_DATA = "EEGKD_DATA"
TARGET_SFREQ = 200.0
#: CBraMod feeds microvolts / 100 to every model.
UV_DIVISOR = 100.0

#: The 16 TCP bipolar derivations CBraMod keeps (TCP rows 0-7 and 14-21), as (anode, cathode).
TCP_PAIRS: tuple[tuple[str, str], ...] = (
    ("FP1", "F7"), ("F7", "T3"), ("T3", "T5"), ("T5", "O1"),
    ("FP2", "F8"), ("F8", "T4"), ("T4", "T6"), ("T6", "O2"),
    ("FP1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"),
    ("FP2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2"),
)
TCP_NAMES: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in TCP_PAIRS)
#: The 19 referential electrodes the TCP derivations need, in a fixed order.
TCP_ELECTRODES: tuple[str, ...] = tuple(dict.fromkeys(e for pair in TCP_PAIRS for e in pair))


class DataWarning(UserWarning):
    """A file of a real dataset was skipped or adjusted; the rest of the dataset loads."""


class SkipFile(Exception):
    """One source file cannot be used; the message says why in one line."""


# ----------------------------------------------------------------------------- where
def data_root(data_dir: str | os.PathLike | None) -> Path | None:
    """The root folder of the real datasets: ``data_dir``, else ``$EEGKD_DATA``, else None."""
    value = data_dir if data_dir is not None else os.environ.get(ENV_DATA) or None
    return Path(value).expanduser() if value else None


def find_dir(base: Path, accept: Callable[[Path], bool], max_depth: int = 3) -> Path | None:
    """The shallowest folder under ``base`` (``base`` included) that ``accept`` matches.

    Within one depth the lexically last match wins, so ``v2.0.1`` beats ``v2.0.0``.
    """
    level = [base] if base.is_dir() else []
    for _ in range(max_depth + 1):
        hits = [d for d in level if accept(d)]
        if hits:
            return sorted(hits)[-1]
        level = sorted(c for d in level for c in _subdirs(d))
    return None


def _subdirs(d: Path) -> list[Path]:
    try:
        return [c for c in d.iterdir() if c.is_dir() and not c.name.startswith(".")]
    except OSError:
        return []


@dataclass
class Located:
    """Result of looking for a dataset on disk."""

    folder: Path | None  # the dataset's data folder (None: not found)
    where: str  # where we looked, for messages
    hint: str = ""  # what looks wrong, when something similar was found


def locate(name: str, subfolder: str, data_dir: str | os.PathLike | None,
           accept: Callable[[Path], bool], layout: str, max_depth: int = 3) -> Located:
    """Find a dataset under ``<root>/<subfolder>``; explain a root that points at the wrong level."""
    root = data_root(data_dir)
    if root is None:
        return Located(None, f"${ENV_DATA}/{subfolder} (${ENV_DATA} is not set and no data_dir was given)")
    base = root / subfolder
    if not base.is_dir():  # tolerate 'TUEV/' for 'tuev/'
        base = next((d for d in _subdirs(root) if d.name.lower() == subfolder.lower()), base)
    found = find_dir(base, accept, max_depth)
    if found is not None:
        return Located(found, str(base))
    if base.is_dir():
        hint = f"{base} exists but holds no {layout} within {max_depth} folder levels"
    else:
        # the root may point at the dataset itself, or hold it under another name
        inner = find_dir(root, accept, max_depth)
        hint = (f"found {name} files at {inner}, but the loader looks in {base}; move or link them there, "
                f"or set {ENV_DATA} to the folder that holds '{subfolder}/'") if inner else ""
    return Located(None, str(base), hint)


def unavailable_message(name: str, loc: Located, how_to_get: str, subfolder: str) -> str:
    """The one-line 'not found' message shared by availability and load."""
    msg = f"{name}: not found at {loc.where}"
    if loc.hint:
        msg += f" ({loc.hint})"
    return f"{msg}; {how_to_get}, put it at <root>/{subfolder}/ and set {ENV_DATA}=<root> (or pass data_dir)"


# ------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class SourceFile:
    """One source file with the stat facts that key the cache."""

    path: Path
    rel: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path, folder: Path) -> "SourceFile":
        """Stat ``path``; ``rel`` is relative to ``folder``."""
        st = path.stat()
        return cls(path, path.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns)


def source_files(paths: Iterable[Path], folder: Path) -> list[SourceFile]:
    """Stat every source file (sorted by relative path)."""
    return sorted((SourceFile.of(p, folder) for p in paths), key=lambda s: s.rel)


def files_checksum(files: Sequence[SourceFile]) -> str:
    """``files-sha256:<hex>`` of the sorted (relative name, size) list.

    Names and sizes, not contents: hashing tens of GB of EDF on every run would
    cost minutes; a changed file almost always changes size, and the cache key
    also includes modification times.
    """
    h = hashlib.sha256()
    for f in sorted(files, key=lambda s: s.rel):
        h.update(f"{f.rel}\t{f.size}\n".encode())
    return "files-sha256:" + h.hexdigest()


def cache_manifest(files: Sequence[SourceFile]) -> list[list[Any]]:
    """What of the source files goes into the cache key: names, sizes, mtimes."""
    return [[f.rel, f.size, f.mtime_ns] for f in files]


def natural_key(text: str) -> list[Any]:
    """Sort key that orders ``S2`` before ``S10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


# ----------------------------------------------------------------------- skip log
@dataclass
class SkipLog:
    """Unusable files: each is warned about once and listed in ``EEGWindows.notes``."""

    name: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)

    def skip(self, rel: str, reason: str) -> None:
        """Record and warn about one skipped file."""
        self.skipped.append((rel, reason))
        warnings.warn(f"{self.name}: skipped {rel}: {reason}", DataWarning, stacklevel=2)

    def remark(self, text: str) -> None:
        """Record and warn about something the user should know (not a skipped file)."""
        self.remarks.append(text)
        warnings.warn(f"{self.name}: {text}", DataWarning, stacklevel=2)

    def notes(self) -> str:
        """One line for ``EEGWindows.notes``."""
        parts = list(self.remarks)
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} file(s): "
                         + "; ".join(f"{rel} ({why})" for rel, why in self.skipped))
        return " | ".join(parts)


# --------------------------------------------------------------------------- EDF
def read_edf(path: Path, channels: Sequence[str] | None = None) -> Any:
    """Read an EDF with MNE; with ``channels`` keep only those (matched case-insensitively), in that order.

    Raises :class:`SkipFile` for an unreadable file or a missing channel.
    """
    import mne

    try:
        raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
    except Exception as exc:  # MNE raises several types for a damaged header
        raise SkipFile(f"unreadable EDF ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
    if channels is not None:
        picks = pick_names(raw.ch_names, channels)
        raw.pick(picks)
        raw.reorder_channels(picks)
    try:
        raw.load_data(verbose="error")
    except Exception as exc:
        raise SkipFile(f"unreadable EDF data ({type(exc).__name__}: {exc})")
    return raw


def pick_names(available: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """The names in ``available`` that match ``wanted`` case-insensitively (in ``wanted`` order)."""
    index = {n.strip().upper(): n for n in available}
    missing = [w for w in wanted if w.strip().upper() not in index]
    if missing:
        raise SkipFile(f"missing channel(s) {missing}; expected all of {list(wanted)}")
    return [index[w.strip().upper()] for w in wanted]


def resample_filter(raw: Any, *, l_freq: float | None, h_freq: float | None, notch: float | None,
                    sfreq: float = TARGET_SFREQ) -> Any:
    """CBraMod's order: resample to ``sfreq``, then band-pass, then notch (all MNE, in place)."""
    if raw.info["sfreq"] != sfreq:
        raw.resample(sfreq, verbose="error")
    if l_freq is not None or h_freq is not None:
        raw.filter(l_freq=l_freq, h_freq=h_freq, verbose="error")
    if notch is not None:
        raw.notch_filter(notch, verbose="error")
    return raw


def tcp_bipolar(data: np.ndarray, ch_names: Sequence[str], suffix: str = "-REF") -> np.ndarray:
    """The 16 TCP bipolar channels from referential ``EEG <E><suffix>`` signals, picked by name."""
    names = [f"EEG {e}{suffix}" for e in TCP_ELECTRODES]
    picked = pick_names(ch_names, names)
    pos = {e: list(ch_names).index(p) for e, p in zip(TCP_ELECTRODES, picked)}
    return np.stack([data[pos[a]] - data[pos[b]] for a, b in TCP_PAIRS])


def fixed_windows(data: np.ndarray, length: int) -> np.ndarray:
    """Non-overlapping windows ``(k, channels, length)``; the tail shorter than a window is dropped."""
    k = data.shape[-1] // length
    return data[:, : k * length].reshape(data.shape[0], k, length).transpose(1, 0, 2)


def wrapped_window(data: np.ndarray, start: int, before: int, length: int) -> np.ndarray:
    """``length`` samples from ``start - before``, wrapping around the recording's ends.

    Equivalent to CBraMod's slice of the signal concatenated three times.
    """
    idx = np.arange(start - before, start - before + length) % data.shape[-1]
    return data[:, idx]


# ------------------------------------------------------------------------- splits
def split_sorted(ids: Sequence[str], train_fraction: float = 0.8) -> tuple[list[str], list[str]]:
    """CBraMod's subject split: sort, the first ``int(f * n)`` train, the rest validation."""
    ordered = sorted(set(ids))
    cut = int(len(ordered) * train_fraction)
    return ordered[:cut], ordered[cut:]


def split_fractions(ids: Sequence[str], train: float, val: float,
                    key: Callable[[str], Any] = natural_key) -> dict[str, str]:
    """Assign sorted ids to train/val/test by fractions; each split gets one id when there are three or more."""
    ordered = sorted(set(ids), key=key)
    n = len(ordered)
    n_train, n_val = int(n * train), int(n * (train + val)) - int(n * train)
    if n >= 3:
        n_val = max(n_val, 1)
        n_train = max(1, min(n_train, n - n_val - 1))
    out = {}
    for i, s in enumerate(ordered):
        out[s] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return out


def recipe(*, resample: str, band_pass_hz: tuple[float | None, float | None] | None, notch_hz: float | None,
           reference: str) -> dict[str, Any]:
    """A dataset's declared preprocessing (see :meth:`eegkd_bench.api.Dataset.preprocessing`)."""
    return {"resample": resample, "band_pass_hz": None if band_pass_hz is None else list(band_pass_hz),
            "notch_hz": notch_hz, "reference": reference, "scaling": f"microvolts / {UV_DIVISOR:g}"}


# ------------------------------------------------------------------------ windows
class WindowStack:
    """Collects windows in uV with labels, subjects and splits; builds :class:`EEGWindows`.

    Bound to the writer that :func:`cached_stream` hands a loader, every :meth:`add` goes
    straight to the on-disk store, so a loader that adds one recording at a time needs memory
    for one recording, whatever the dataset size. Unbound, it collects in memory.
    """

    def __init__(self, writer: WindowStoreWriter | None = None) -> None:
        self.writer = writer if writer is not None else WindowStoreWriter(None)

    def add(self, X: np.ndarray, y: int | np.ndarray, subject: str, split: str | None) -> None:
        """Add windows ``(k, ch, samples)`` in uV, stored as uV / 100 float32; ``split=None``: see assign_splits."""
        if len(X) == 0:
            return
        self.writer.append((np.asarray(X) / UV_DIVISOR).astype(np.float32), y, subject, split)

    def expect(self, recordings: int) -> None:
        """Announce how many recordings will be added, so a store too large for the disk stops early."""
        self.writer.expect(recordings)

    def assign_splits(self, split_of: dict[str, str], default: str | None = None) -> None:
        """Set the split of windows added with ``split=None`` from their subject (else ``default``)."""
        self.writer.assign_splits(split_of, default)

    def __len__(self) -> int:
        return len(self.writer)

    def build(self, name: str, *, ch_names: Sequence[str], class_names: Sequence[str],
              checksum: str, notes: str = "", sfreq: float = TARGET_SFREQ) -> EEGWindows:
        """The collected windows as :class:`EEGWindows` (raises DataUnavailable when there are none)."""
        return self.writer.finish(name=name, sfreq=float(sfreq), ch_names=list(ch_names),
                                  class_names=list(class_names), kind="real", checksum=checksum, notes=notes)


def require_splits(name: str, windows: EEGWindows, hint: str) -> EEGWindows:
    """Raise :class:`DataUnavailable` when a protocol split ended up empty (too few usable subjects)."""
    empty = [s for s in ("train", "val", "test") if not (windows.split == s).any()]
    if empty:
        raise DataUnavailable(f"{name}: no usable windows for split(s) {empty}; {hint}")
    return windows


# -------------------------------------------------------------------------- cache
def _cache_key(name: str, files: Sequence[SourceFile], params: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": name, "files": cache_manifest(files), "params": params}


def cached_stream(name: str, files: Sequence[SourceFile], params: dict[str, Any],
                  build: Callable[[WindowStack], EEGWindows], cache_dir: str | os.PathLike | None) -> EEGWindows:
    """Preprocessed windows from the on-disk cache, keyed by dataset, source files and parameters.

    On a miss, ``build(stack)`` adds one recording at a time to a store on disk.

    ``build`` adds windows to the :class:`WindowStack` it is given and returns ``stack.build(...)``;
    peak memory is one recording plus one chunk, whatever the dataset size.
    """
    return window_cache.cached_stream(_cache_key(name, files, params), lambda writer: build(WindowStack(writer)),
                          None if cache_dir is None else str(cache_dir))
