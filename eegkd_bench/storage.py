"""Crash-safe files on disk: atomic writes, atomic directories, inter-process locks, content hashes.

Every cache and store of the suite writes through these helpers, so a run killed at any
moment leaves either a complete file (or directory) or none, and several worker processes
can share a cache.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

_CHUNK = 8 * 1024 * 1024


# ------------------------------------------------------------------------ hashing
def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"cannot hash a {type(obj).__name__} ({obj!r}); use JSON types, numpy scalars or paths")


def canonical_json(obj: Any) -> str:
    """Canonical JSON text of ``obj`` (sorted keys, no whitespace, numpy scalars as Python)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=True)


def stable_hash(obj: Any) -> str:
    """sha256 hex digest of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file, read in 8 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------ writing
def atomic_write(path: Path, write: Callable[[BinaryIO], None], *, sync: bool = True) -> None:
    """Let ``write`` fill a temporary sibling of ``path`` (an open binary file), then rename it into place.

    Readers see the old file or the complete new one; a failed ``write`` leaves no partial file.
    ``sync`` flushes the data to disk before the rename (records); caches verified by checksum skip it.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def atomic_write_text(path: Path, text: str, *, sync: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), sync=sync)


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory to fill; on success it replaces ``final`` in one rename.

    An existing ``final`` (stale, or just published by a concurrent writer) is moved aside first,
    so readers never see a mix of the two; on an error the temporary directory is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name[:16]}-", dir=final.parent))
    try:
        yield tmp
        _publish(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, final: Path) -> None:
    try:
        os.rename(tmp, final)
        return
    except OSError:
        if not final.exists():
            raise
    trash = final.parent / f".trash-{final.name[:16]}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(final, trash)
    except OSError:
        return  # another process replaced it first; theirs is as good as ours
    try:
        os.rename(tmp, final)
    except OSError:
        pass  # lost a race with a concurrent writer; its entry stands
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock held while the block runs (e.g. workers wanting one teacher)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


__all__ = ["atomic_directory", "atomic_write", "atomic_write_text", "canonical_json", "file_lock", "file_sha256",
           "stable_hash"]
