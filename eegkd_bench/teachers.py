"""Fine-tuned teachers and their frozen outputs, both cached on disk.

* A fine-tuned teacher is keyed by (teacher, options, init checkpoint, dataset
  checksum, split protocol, seed, recipe) and reused by every distiller,
  student and later run. Without a pretrained checkpoint it is trained from
  random init and says so (``init_source = "random"``).
* The frozen teacher's outputs on the training split (logits, embedding and
  the layers distillers ask for) are computed once per (fine-tuned teacher,
  window set), stored as memory-mapped ``.npy`` files (layers in float16 when
  their range allows) with sha256 checksums, and shared by all cells. A
  missing, stale or corrupt file is recomputed, never reused.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eegkd_bench.api import EEGWindows, InputSpec, TeacherBatch, TeacherInfo, TeacherModel
from eegkd_bench.errors import UserError
from eegkd_bench.storage import atomic_directory, atomic_write, atomic_write_text, file_lock, file_sha256, stable_hash
from eegkd_bench.device import module_device
from eegkd_bench.training import ProgressFn, TrainConfig, evaluate, fit

TEACHER_FORMAT = 1
OUTPUTS_FORMAT = 1
FLOAT16_MAX = 6.0e4


class FineTune(nn.Module):
    """Wraps a teacher for supervised fine-tuning (CBraMod recipe: CE with label smoothing)."""

    def __init__(self, teacher: nn.Module, label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.teacher = teacher
        self.label_smoothing = label_smoothing

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(self.teacher(x), y, label_smoothing=self.label_smoothing)}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher(x)


@dataclass
class PreparedTeacher:
    """A fine-tuned (or loaded) teacher ready to be distilled from."""

    name: str
    key: str
    model: TeacherModel
    init_source: str
    info: TeacherInfo
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    train_time_s: float
    cached: bool
    meta: dict[str, Any] = field(default_factory=dict)


def teacher_info(name: str, model: TeacherModel, spec: InputSpec) -> TeacherInfo:
    """What a distiller may know about ``model``: its layers, their shapes (one dummy forward pass), its classes."""
    model.eval()
    with torch.no_grad():
        out = model.forward_features(torch.zeros(1, spec.n_channels, spec.n_samples, device=module_device(model)))
    shapes = {k: tuple(v.shape[1:]) for k, v in out.features.items()}
    return TeacherInfo(name, tuple(model.feature_names), shapes, int(out.logits.shape[1]))


def teacher_key(name: str, options: dict[str, Any], init_source: str, windows: EEGWindows, seed: int,
                cfg: TrainConfig, label_smoothing: float, finetune: bool,
                provenance: dict[str, str] | None = None) -> str:
    """Cache key of a fine-tuned teacher (``provenance``: the packages, with versions, that build it)."""
    return stable_hash({
        "format": TEACHER_FORMAT, "teacher": name, "options": options, "init": init_source,
        "dataset": windows.name, "data_checksum": windows.checksum, "split": split_digest(windows),
        "seed": seed, "recipe": cfg.as_dict(), "label_smoothing": label_smoothing, "finetune": finetune,
        "provenance": provenance or {},
    })[:24]


def split_digest(windows: EEGWindows) -> str:
    """Digest of the protocol split assignment (part of teacher and cell keys)."""
    return hashlib.sha256(np.asarray(windows.split).astype("U5").tobytes()).hexdigest()[:16]


def checkpoint_init(checkpoint: str | None) -> str:
    """``"random"``, ``"sha256:<hex>"`` of a checkpoint file, or ``"<label> sha256:<hex>"`` when the
    checkpoint's ``eegkd-bench pretrain`` sidecar (same name, ``.json``) names how it was made, e.g.
    ``"sim-pretrained sha256:…"`` for a teacher pretrained on simulated EEG only."""
    if not checkpoint:
        return "random"
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise UserError(f"teacher checkpoint {checkpoint!r} not found; pass an existing file (or a checkpoint name the "
                        "teacher registers, see eegkd-bench list teachers) to --teacher-checkpoint")
    digest = file_sha256(path)
    try:
        side = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        side = {}
    label = side.get("label") if isinstance(side, dict) and side.get("sha256") == digest else None
    return f"{label} sha256:{digest}" if label else f"sha256:{digest}"


def resolve_checkpoint(entry: Any, value: str | None) -> str | None:
    """``--teacher-checkpoint``: a file, a checkpoint name the teacher registers (``checkpoints`` metadata,
    e.g. ``sim-pretrained``), or ``none``/``random`` for random init -> a file path or None."""
    if value is None or value.strip().lower() in ("", "none", "random"):
        return None
    named = dict(entry.metadata.get("checkpoints") or {})
    if value in named and not Path(value).exists():
        if not Path(named[value]).is_file():
            raise UserError(f"checkpoint {value!r} of teacher {entry.name!r} is missing from this installation "
                            f"({named[value]}); reinstall eegkd-bench, or pass --teacher-checkpoint none")
        return str(named[value])
    if not Path(value).expanduser().is_file():
        known = f"; {entry.name} registers {', '.join(named)}" if named else ""
        raise UserError(f"teacher checkpoint {value!r} is neither a file nor a checkpoint name of teacher "
                        f"{entry.name!r}{known}; pass a .pt/.pth file, a registered name, or none for random init")
    return value


def build_teacher(factory: Any, name: str, spec: InputSpec, options: dict[str, Any], checkpoint: str | None) -> TeacherModel:
    """Instantiate a registered teacher and load its pretrained checkpoint when given."""
    model = factory(spec, **options)
    if not isinstance(model, TeacherModel):
        raise UserError(f"teacher {name!r} is not a TeacherModel (got {type(model).__name__}); "
                        "fix the plugin that registers it")
    if checkpoint:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise UserError(f"teacher checkpoint {str(path)!r} not found; pass an existing file to --teacher-checkpoint")
        model.load_pretrained(str(path))
        model.init_source = checkpoint_init(str(path))
    else:
        model.init_source = "random"
    return model


def prepare_teacher(
    factory: Any,
    name: str,
    windows: EEGWindows,
    *,
    seed: int,
    cfg: TrainConfig,
    cache_dir: Path,
    options: dict[str, Any] | None = None,
    checkpoint: str | None = None,
    label_smoothing: float = 0.1,
    finetune: bool = True,
    progress: ProgressFn | None = None,
    device: str = "cpu",
    provenance: dict[str, str] | None = None,
) -> PreparedTeacher:
    """Return the fine-tuned teacher for (teacher, dataset, seed, recipe), from cache when possible.

    The model is fine-tuned (or loaded) onto ``device`` and stays there for the teacher's forward passes.
    """
    options = dict(options or {})
    spec = windows.input_spec()
    init_source = checkpoint_init(checkpoint) if checkpoint and Path(checkpoint).is_file() else "random"
    key = teacher_key(name, options, init_source, windows, seed, cfg, label_smoothing, finetune, provenance)
    folder = cache_dir / "teachers" / key
    with file_lock(cache_dir / "teachers" / f"{key}.lock"):
        torch.manual_seed(seed)
        model = build_teacher(factory, name, spec, options, checkpoint)
        meta = _load_cached_teacher(folder, model)
        model.to(device)
        cached = meta is not None
        if meta is None:
            X_tr, y_tr = windows.part("train")
            X_va, y_va = windows.part("val")
            t0 = time.perf_counter()
            if finetune:
                fit(FineTune(model, label_smoothing), X_tr, y_tr, X_va, y_va, windows.n_classes, cfg,
                    seed=seed, progress=progress)
            train_time = time.perf_counter() - t0
            X_te, y_te = windows.part("test")
            meta = {
                "format": TEACHER_FORMAT, "teacher": name, "options": options, "init_source": model.init_source,
                "dataset": windows.name, "seed": seed, "recipe": cfg.as_dict(), "finetuned": finetune,
                "val_metrics": evaluate(model, X_va, y_va, windows.n_classes),
                "test_metrics": evaluate(model, X_te, y_te, windows.n_classes),
                "train_time_s": train_time, "head_params": model.head_params,
            }
            try:
                _save_teacher(folder, model, meta)
            except OSError as exc:  # e.g. a full disk: this run goes on with the teacher in memory
                warnings.warn(f"eegkd-bench: cannot cache the fine-tuned teacher in {folder} "
                              f"({exc.strerror or exc}); using it from memory, later runs will fine-tune again",
                              stacklevel=2)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    info = teacher_info(name, model, spec)
    return PreparedTeacher(name, key, model, meta["init_source"], info, meta["val_metrics"], meta["test_metrics"],
                           float(meta["train_time_s"]), cached, meta)


def _save_teacher(folder: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    with atomic_directory(folder) as tmp:
        torch.save(model.state_dict(), tmp / "model.pt")
        meta = {**meta, "model_sha256": file_sha256(tmp / "model.pt")}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=float))


def _load_cached_teacher(folder: Path, model: nn.Module) -> dict[str, Any] | None:
    meta_path, weights = folder / "meta.json", folder / "model.pt"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("model_sha256") != file_sha256(weights):
            raise ValueError("checksum mismatch")
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        model.init_source = meta["init_source"]
        return meta
    except Exception as exc:  # any damage means: fine-tune again
        warnings.warn(f"eegkd-bench: cached teacher {folder} is unusable ({exc}); fine-tuning again", stacklevel=2)
        shutil.rmtree(folder, ignore_errors=True)
        return None


# ------------------------------------------------------------------ teacher outputs
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
        feats = {n: out.features[n].clone() for n in self.names if n not in ("logits", "embedding")}
        return TeacherBatch(
            logits=out.logits.clone() if "logits" in self.names else None,
            features=feats,
            embedding=out.embedding.clone() if "embedding" in self.names and out.embedding is not None else None,
        )


class TeacherOutputs:
    """The frozen teacher's outputs on the training split, memory-mapped from the cache."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def batch(self, idx: np.ndarray, x: torch.Tensor | None = None) -> TeacherBatch:
        def get(name: str) -> torch.Tensor:
            return torch.from_numpy(np.asarray(self.arrays[name][idx], dtype=np.float32))

        feats = {k: get(k) for k in self.arrays if k not in ("logits", "embedding")}
        return TeacherBatch(
            logits=get("logits") if "logits" in self.arrays else None,
            features=feats,
            embedding=get("embedding") if "embedding" in self.arrays else None,
        )

    def all(self) -> TeacherBatch:
        n = len(next(iter(self.arrays.values()))) if self.arrays else 0
        return self.batch(np.arange(n))


def teacher_outputs(
    teacher: PreparedTeacher,
    X: np.ndarray,
    names: set[str],
    cache_dir: Path | None,
    *,
    subset: str = "train",
    data_checksum: str = "",
    batch_size: int = 64,
) -> TeacherOutputs:
    """Outputs ``names`` (subset of {"logits", "embedding", layer names}) of the frozen teacher on ``X``."""
    if not names:
        return TeacherOutputs({})
    if cache_dir is None:
        return TeacherOutputs(_compute_outputs(teacher.model, X, names, batch_size))
    key = stable_hash({"format": OUTPUTS_FORMAT, "teacher": teacher.key, "subset": subset,
                       "data": data_checksum, "n": int(len(X)), "shape": list(X.shape)})[:24]
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
                ok = file_sha256(path) == entry["sha256"]
                if not ok:
                    warnings.warn(f"eegkd-bench: cached teacher output {path} is corrupt; recomputing", stacklevel=2)
            if ok:
                arrays[name] = np.load(path, mmap_mode="r")
                if len(arrays[name]) != len(X):
                    missing.add(name)
            else:
                missing.add(name)
        if missing:
            fresh = _compute_outputs(teacher.model, X, missing, batch_size)
            for name, arr in fresh.items():
                if name not in ("logits", "embedding") and np.abs(arr).max(initial=0.0) < FLOAT16_MAX:
                    fresh[name] = arr.astype(np.float16)  # what a cached read returns, whether or not it is stored
            try:
                _store_outputs(folder, fresh, index, arrays)
            except OSError as exc:  # e.g. a full disk: this cell goes on with the outputs in memory
                warnings.warn(f"eegkd-bench: cannot cache teacher outputs in {folder} ({exc.strerror or exc}); "
                              "keeping them in memory for this cell", stacklevel=2)
                arrays.update(fresh)
    return TeacherOutputs(arrays)


def _store_outputs(folder: Path, fresh: dict[str, np.ndarray], index: dict[str, Any],
                   arrays: dict[str, np.ndarray]) -> None:
    """Write ``fresh`` arrays atomically beside their checksums; a failed write leaves no partial file."""
    for name, arr in fresh.items():
        path = folder / f"{name}.npy"
        atomic_write(path, lambda fh, arr=arr: np.save(fh, arr), sync=False)
        index[name] = {"size": path.stat().st_size, "sha256": file_sha256(path), "dtype": str(arr.dtype)}
        arrays[name] = np.load(path, mmap_mode="r")
    atomic_write_text(folder / "index.json", json.dumps(index, indent=1), sync=False)


@torch.inference_mode()
def _compute_outputs(model: TeacherModel, X: np.ndarray, names: set[str], batch_size: int) -> dict[str, np.ndarray]:
    model.eval()
    device = module_device(model)
    chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for start in range(0, len(X), batch_size):
        out = model.forward_features(torch.from_numpy(np.ascontiguousarray(X[start:start + batch_size])).to(device))
        for n in names:
            if n == "logits":
                t = out.logits
            elif n == "embedding":
                if out.embedding is None:
                    raise UserError(f"teacher {type(model).__name__} exposes no embedding; "
                                    "choose a distiller that does not need one")
                t = out.embedding
            else:
                if n not in out.features:
                    raise UserError(f"teacher {type(model).__name__} has no layer {n!r}; "
                                    f"it has {', '.join(out.features)}")
                t = out.features[n]
            chunks[n].append(t.float().cpu().numpy())
    return {n: np.concatenate(c) for n, c in chunks.items()}
