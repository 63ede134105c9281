"""The frozen teacher's outputs on the training split, cached on disk, or computed online.

The outputs (logits, embedding, the layers and the per-layer summaries
distillers ask for) are computed once per (fine-tuned teacher, window set) in
one pass streamed batch by batch into memory-mapped ``.npy`` files (layers in
float16 when their range allows) with sha256 checksums, and shared by all cells.
A missing, stale or corrupt file is recomputed, never reused. A distiller's
derived target (e.g. DLink's routed layer) is computed per cell into a scratch
file (:func:`teacher_target`). Whether a cell reads this cache or runs the teacher
online is decided in :mod:`eegkd_bench.teacher_cache.policy`.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from eegkd_bench.api import (
    ModelOutput,
    TeacherBatch,
    TeacherModel,
    WindowRows,
    layer_summary,
    read_rows,
)
from eegkd_bench.errors import UserError
from eegkd_bench.storage import atomic_write_text, file_lock, file_sha256, stable_hash
from eegkd_bench.device import module_device
from eegkd_bench.teachers import PreparedTeacher

OUTPUTS_FORMAT = 1
FLOAT16_MAX = 6.0e4


def _role(name: str) -> str:
    """``logits``, ``embedding``, ``target``, ``summary`` (``layer.stat``) or ``layer``."""
    if name in ("logits", "embedding", "target"):
        return name
    return "summary" if "." in name else "layer"


class OnlineTeacher:
    """Runs the frozen teacher on every batch: used with augmentation, or when caching is off."""

    def __init__(self, model: TeacherModel, names: set[str]) -> None:
        self.model = model
        self.names = names

    @torch.inference_mode()
    def batch(self, idx: np.ndarray, x: torch.Tensor | None = None) -> TeacherBatch:
        if not self.names:
            return TeacherBatch()
        if x is None:
            raise ValueError("an online teacher needs the batch inputs")
        self.model.eval()
        out = self.model.forward_features(x)
        return TeacherBatch(
            logits=out.logits.clone() if "logits" in self.names else None,
            features={n: out.features[n].clone() for n in self.names if _role(n) == "layer"},
            embedding=out.embedding.clone() if "embedding" in self.names and out.embedding is not None else None,
            summaries={n: _output(self.model, out, n).clone() for n in self.names if _role(n) == "summary"},
        )


class TeacherOutputs:
    """The frozen teacher's outputs on the training split, memory-mapped from the cache and read by index."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def batch(self, idx: np.ndarray, x: torch.Tensor | None = None) -> TeacherBatch:
        """Rows ``idx`` of every output as float32 tensors (only those rows are read)."""
        def get(name: str) -> torch.Tensor | None:
            if name not in self.arrays:
                return None
            return torch.from_numpy(np.asarray(self.arrays[name][idx], dtype=np.float32))

        return TeacherBatch(
            logits=get("logits"),
            features={k: get(k) for k in self.arrays if _role(k) == "layer"},
            embedding=get("embedding"),
            summaries={k: get(k) for k in self.arrays if _role(k) == "summary"},
            target=get("target"),
        )

    def for_training(self, **arrays: np.ndarray) -> "TeacherOutputs":
        """What training batches read: these outputs without the warm-up's summaries, plus ``arrays`` (a target)."""
        return TeacherOutputs({**{k: v for k, v in self.arrays.items() if _role(k) != "summary"}, **arrays})


def outputs_key(teacher: str, shape: tuple[int, ...], subset: str = "train", data_checksum: str = "") -> str:
    """Cache key of the outputs of fine-tuned ``teacher`` (its key) on windows of ``shape`` (a folder of ``teacher_outputs/``)."""
    return stable_hash({"format": OUTPUTS_FORMAT, "teacher": teacher, "subset": subset,
                        "data": data_checksum, "n": int(shape[0]), "shape": list(shape)})[:24]


def teacher_outputs(
    teacher: PreparedTeacher,
    X: np.ndarray | WindowRows,
    names: set[str],
    cache_dir: Path | None,
    *,
    subset: str = "train",
    data_checksum: str = "",
    batch_size: int = 64,
) -> TeacherOutputs:
    """Outputs ``names`` of the frozen teacher on ``X``: "logits", "embedding", layer names, summaries.

    With ``cache_dir`` every output is streamed batch by batch into a memory-mapped ``.npy``
    file (layers in float16 when their range allows) and read back memory-mapped; without, the
    outputs are computed into memory.
    """
    if not names:
        return TeacherOutputs({})
    if cache_dir is None:
        return TeacherOutputs(_compute_outputs(teacher.model, X, names, batch_size, None))
    key = outputs_key(teacher.key, tuple(X.shape), subset, data_checksum)
    folder = cache_dir / "teacher_outputs" / key
    with file_lock(cache_dir / "teacher_outputs" / f"{key}.lock"):
        folder.mkdir(parents=True, exist_ok=True)
        index_path = folder / "index.json"
        try:
            index = json.loads(index_path.read_text())
        except (OSError, json.JSONDecodeError):
            index = {}
        arrays: dict[str, np.ndarray] = {}
        missing = set()
        for name in sorted(names):
            entry = index.get(name)
            path = folder / f"{name}.npy"
            ok = False
            if entry and path.exists() and path.stat().st_size == entry["size"]:
                ok = _verified(path, entry["sha256"])
                if not ok:
                    warnings.warn(f"eegkd-bench: cached teacher output {path} is corrupt; recomputing", stacklevel=2)
            if ok:
                arrays[name] = np.load(path, mmap_mode="r")
                if len(arrays[name]) != len(X):
                    missing.add(name)
            else:
                missing.add(name)
        if missing:
            try:
                fresh = _compute_outputs(teacher.model, X, missing, batch_size, folder)
                _publish_outputs(folder, fresh, index, arrays)
            except OSError as exc:  # e.g. a full disk: this cell goes on with the outputs in memory
                _remove_tmp(folder)
                warnings.warn(f"eegkd-bench: cannot cache teacher outputs in {folder} ({exc.strerror or exc}); "
                              "keeping them in memory for this cell", stacklevel=2)
                arrays.update(_compute_outputs(teacher.model, X, missing, batch_size, None,
                                               half={n for n in missing if _role(n) == "layer"}))
    return TeacherOutputs(arrays)


#: files whose checksum this process has verified: (path, inode, size, mtime_ns) -> sha256
_VERIFIED: dict[tuple[str, int, int, int], str] = {}
#: a file modified this recently when checked is hashed again next time: a same-size rewrite within the
#: file system's timestamp granularity would keep its modification time
_RACY_NS = 2_000_000_000


def _verified(path: Path, sha256: str) -> bool:
    """Whether ``path`` has the checksum its index records; each file is hashed once per process
    (while its size and modification time stay the same), not once per cell that reads it."""
    stat = path.stat()
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)  # a file replaced by another process: new inode
    if key in _VERIFIED:
        return _VERIFIED[key] == sha256
    digest = file_sha256(path)
    if time.time_ns() - stat.st_mtime_ns > _RACY_NS:
        _VERIFIED[key] = digest
    return digest == sha256


def teacher_target(
    teacher: PreparedTeacher,
    X: np.ndarray | WindowRows,
    layers: set[str],
    derive: Callable[[TeacherBatch], torch.Tensor],
    folder: Path | None,
    *,
    batch_size: int = 64,
) -> np.ndarray:
    """``derive(batch of layers)`` for every window of ``X`` in one teacher pass, memory-mapped in ``folder``.

    This is how a distiller's :meth:`~eegkd_bench.api.Distiller.teacher_target` (e.g. a frozen
    router's mix of layers) is cached: one array instead of every layer.
    """
    def make(out: ModelOutput) -> torch.Tensor:
        return derive(TeacherBatch(logits=out.logits, features={n: out.features[n] for n in layers},
                                   embedding=out.embedding))

    arrays = _stream_pass(teacher.model, X, {"target": make}, batch_size, folder, half={"target"})
    if folder is not None:
        _publish_outputs(folder, arrays, {}, arrays)
    return arrays["target"]


@contextlib.contextmanager
def scratch_dir(cache_dir: Path) -> Iterator[Path]:
    """A private folder under ``<cache_dir>/scratch`` for one cell's large temporary files; removed after."""
    root = cache_dir / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_scratch(cache_dir: Path) -> None:
    """Remove scratch folders left by processes that no longer run (e.g. killed workers)."""
    root = cache_dir / "scratch"
    for path in root.glob("*-*") if root.is_dir() else ():
        try:
            os.kill(int(path.name.split("-", 1)[0]), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, PermissionError):
            pass


def _output(model: TeacherModel, out: ModelOutput, name: str) -> torch.Tensor:
    """One named output of a forward pass (logits, embedding, a layer or a layer summary)."""
    role = _role(name)
    if role == "logits":
        return out.logits
    if role == "embedding":
        if out.embedding is None:
            raise UserError(f"teacher {type(model).__name__} exposes no embedding; "
                            "choose a distiller that does not need one")
        return out.embedding
    layer, stat = name.rsplit(".", 1) if role == "summary" else (name, "")
    if layer not in out.features:
        raise UserError(f"teacher {type(model).__name__} has no layer {layer!r}; it has {', '.join(out.features)}")
    return layer_summary(out.features[layer], stat) if stat else out.features[layer]


def _compute_outputs(model: TeacherModel, X: Any, names: set[str], batch_size: int, folder: Path | None,
                     half: set[str] | None = None) -> dict[str, np.ndarray]:
    """One teacher pass writing every output in ``names``; layers in float16 when stored on disk."""
    if half is None:
        half = {n for n in names if _role(n) == "layer"} if folder is not None else set()
    makers = {n: (lambda out, n=n: _output(model, out, n)) for n in names}
    return _stream_pass(model, X, makers, batch_size, folder, half)


class _Float16Overflow(Exception):
    pass


@torch.inference_mode()
def _stream_pass(model: TeacherModel, X: Any, makers: dict[str, Callable[[ModelOutput], torch.Tensor]],
                 batch_size: int, folder: Path | None, half: set[str]) -> dict[str, np.ndarray]:
    """Run the frozen teacher over ``X`` once; each output is written batch by batch.

    With ``folder`` the arrays are preallocated ``.<name>.tmp.npy`` files (a full disk fails
    here, before any work) written through memory maps, so memory stays flat whatever ``len(X)``;
    otherwise plain arrays. An output in ``half`` is stored as float16 unless a value exceeds
    float16's range, in which case the pass is repeated with that output in float32.
    """
    half = set(half)
    while True:
        try:
            return _stream_pass_once(model, X, makers, batch_size, folder, half)
        except _Float16Overflow as exc:
            half.discard(exc.args[0])
            if folder is not None:
                _remove_tmp(folder)


def _stream_pass_once(model: TeacherModel, X: Any, makers: dict[str, Callable[[ModelOutput], torch.Tensor]],
                      batch_size: int, folder: Path | None, half: set[str]) -> dict[str, np.ndarray]:
    model.eval()
    device = module_device(model)
    n = len(X)
    arrays: dict[str, np.ndarray] = {}
    for start in range(0, n, batch_size):
        out = model.forward_features(torch.from_numpy(read_rows(X, slice(start, start + batch_size))).to(device))
        for name, make in makers.items():
            t = make(out).float().cpu().numpy()
            if name not in arrays:
                dtype = np.float16 if name in half else np.float32
                shape = (n, *t.shape[1:])
                arrays[name] = (allocate_npy(folder / f".{name}.tmp.npy", dtype, shape) if folder is not None
                                else np.empty(shape, dtype=dtype))
            if name in half and np.abs(t).max(initial=0.0) >= FLOAT16_MAX:
                raise _Float16Overflow(name)
            arrays[name][start:start + len(t)] = t
    return arrays


def allocate_npy(path: Path, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A new ``.npy`` file with its disk space reserved, opened as a writable memory map.

    Reserving the space up front turns a full disk into an ``OSError`` here rather than a
    SIGBUS when a page of the map is written later.
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                  "shape": tuple(shape)})
        try:
            os.posix_fallocate(fh.fileno(), 0, fh.tell() + nbytes)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            fh.truncate(fh.tell() + nbytes)  # a file system without fallocate
    return np.lib.format.open_memmap(path, mode="r+")


def _remove_tmp(folder: Path) -> None:
    for tmp in folder.glob(".*.tmp.npy"):
        tmp.unlink(missing_ok=True)


def _publish_outputs(folder: Path, fresh: dict[str, np.ndarray], index: dict[str, Any],
                     arrays: dict[str, np.ndarray]) -> None:
    """Move the finished ``.<name>.tmp.npy`` files into place beside their checksums; a failure leaves no partial file."""
    try:
        for name, arr in fresh.items():
            if isinstance(arr, np.memmap):
                arr.flush()
            path = folder / f"{name}.npy"
            os.replace(folder / f".{name}.tmp.npy", path)
            index[name] = {"size": path.stat().st_size, "sha256": file_sha256(path), "dtype": str(arr.dtype)}
            arrays[name] = np.load(path, mmap_mode="r")
        atomic_write_text(folder / "index.json", json.dumps(index, indent=1), sync=False)
    finally:
        _remove_tmp(folder)
