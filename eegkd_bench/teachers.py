"""Fine-tuned teachers, cached on disk (their keys and init labels are defined in :mod:`eegkd_bench.identity`).

A fine-tuned teacher is keyed by (teacher, options, init checkpoint, dataset
checksum, split protocol, seed, recipe) and reused by every distiller, student
and later run. Without a pretrained checkpoint it is trained from random init
and says so (``init_source = "random"``). Its frozen outputs are cached by
:mod:`eegkd_bench.teacher_cache`.
"""
from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from eegkd_bench.api import EEGWindows, InputSpec, TeacherBatch, TeacherInfo, TeacherModel
from eegkd_bench.errors import UserError, one_line
from eegkd_bench.identity import LABEL_SMOOTHING, TEACHER_FORMAT, checkpoint_init, teacher_key
from eegkd_bench.storage import atomic_directory, file_lock, file_sha256
from eegkd_bench.device import module_device
from eegkd_bench.training import ProgressFn, TrainConfig, evaluate, fit, test_scores


class FineTune(nn.Module):
    """Wraps a teacher for supervised fine-tuning (CBraMod recipe: CE with label smoothing)."""

    def __init__(self, teacher: nn.Module, label_smoothing: float = LABEL_SMOOTHING) -> None:
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


def resolve_checkpoint(entry: Any, value: str | None) -> str | None:
    """``--teacher-checkpoint``: a file, a checkpoint name the teacher registers (``checkpoints`` metadata,
    e.g. ``sim-pretrained``), or ``none``/``random`` for random init -> a file path or None."""
    if value is None or value.strip().lower() in ("", "none", "random"):
        return None
    named = dict(entry.metadata.get("checkpoints") or {})
    if value in named and not Path(value).exists() and str(named[value]).startswith(HUB_SCHEME):
        return fetch_hub_file(entry.name, value, str(named[value]))
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


HUB_SCHEME = "hf://"


def fetch_hub_file(teacher: str, name: str, address: str) -> str:
    """A registered ``hf://<owner>/<repo>/<file>`` checkpoint, downloaded to (or found in) the Hugging Face
    cache; the local file is what the record's init hashes."""
    owner, repo, filename = address[len(HUB_SCHEME):].split("/", 2)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise UserError(f"checkpoint {name!r} of teacher {teacher!r} is on the Hugging Face Hub ({owner}/{repo}); "
                        f"pip install huggingface_hub, or download {filename} and pass --teacher-checkpoint PATH"
                        ) from None
    try:
        return str(hf_hub_download(f"{owner}/{repo}", filename))
    except Exception as exc:  # offline, no such repository, or a refused download
        raise UserError(f"cannot fetch checkpoint {name!r} of teacher {teacher!r} from the Hugging Face Hub "
                        f"({owner}/{repo}/{filename}: {one_line(exc)[:160]}); download the file where you are "
                        f"online and pass --teacher-checkpoint PATH") from None


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
    label_smoothing: float = LABEL_SMOOTHING,
    finetune: bool = True,
    progress: ProgressFn | None = None,
    device: str = "cpu",
    provenance: dict[str, str] | None = None,
    dataset_options: dict[str, Any] | None = None,
    key: str | None = None,
) -> PreparedTeacher:
    """Return the fine-tuned teacher for (teacher, dataset, seed, recipe), from cache when possible.

    The model is fine-tuned (or loaded) onto ``device`` and stays there for the teacher's forward passes.
    """
    options = dict(options or {})
    spec = windows.input_spec()
    if key is None:  # a cell's teacher is keyed by identity.cell_teacher_key
        init_source = checkpoint_init(checkpoint) if checkpoint and Path(checkpoint).is_file() else "random"
        key = teacher_key(name, options, init_source, windows, seed, cfg, label_smoothing, finetune, provenance,
                          dataset_options)
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
            test_metrics, test_per_subject = test_scores(model, windows)
            meta = {
                "format": TEACHER_FORMAT, "teacher": name, "options": options, "init_source": model.init_source,
                "dataset": windows.name, "seed": seed, "recipe": cfg.as_dict(), "finetuned": finetune,
                "val_metrics": evaluate(model, X_va, y_va, windows.n_classes),
                "test_metrics": test_metrics, "test_per_subject": test_per_subject,
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
