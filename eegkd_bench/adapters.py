"""Public helpers for distillers: the layouts of teacher and student features, and the checks every method needs.

Layouts (see :mod:`eegkd_bench.api`):

* teacher layers ``H_l``: ``(B, C, P, D)`` — channels, patches (time), model width;
* student maps: ``(B, *, T')`` with time last; every non-time axis is treated as a
  feature channel (:func:`channels_time`), so ``(B, F, 1, T')`` and ``(B, F, T')``
  look the same to the adapters.

The default mapping between the two is: pool the teacher over its channel axis to
``(B, D, P)``, resample the student's time axis to ``P`` patches (average pooling, or
linear interpolation when the student map is shorter), then a learned 1x1 convolution
``F -> D`` (:class:`TimeProjector`). It keeps the temporal order, which is what EEG
teachers and students share; the teacher's electrode axis has no counterpart in most
compact students after their spatial filters.

Third-party distillers may use everything here; it is part of the public API, like
:mod:`eegkd_bench.api`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eegkd_bench.api import EEGModel, InputSpec, ModelOutput, TeacherInfo
from eegkd_bench.errors import UserError


# ------------------------------------------------------------------ tensors
def as_float(t: Any) -> torch.Tensor:
    """A float32 tensor from a tensor or a (memory-mapped, float16) array slice."""
    if isinstance(t, torch.Tensor):
        return t.float()
    return torch.from_numpy(np.asarray(t, dtype=np.float32))


def channels_time(f: torch.Tensor) -> torch.Tensor:
    """``(B, *, T')`` -> ``(B, prod(*), T')``: every non-time axis becomes a feature channel."""
    if f.dim() == 2:
        return f.unsqueeze(1)
    return f.reshape(f.shape[0], -1, f.shape[-1])


def resample_time(x: torch.Tensor, n: int) -> torch.Tensor:
    """``(B, F, T)`` -> ``(B, F, n)``: average pooling when shrinking, linear interpolation when growing."""
    if x.shape[-1] == n:
        return x
    if x.shape[-1] > n:
        return F.adaptive_avg_pool1d(x, n)
    return F.interpolate(x, size=n, mode="linear", align_corners=False)


def teacher_time_major(h: torch.Tensor) -> torch.Tensor:
    """Teacher layer ``(B, C, P, D)`` pooled over channels to ``(B, D, P)``."""
    return h.mean(dim=1).transpose(1, 2)


def pooled_teacher_embedding(h: torch.Tensor) -> torch.Tensor:
    """Teacher layer ``(B, C, P, D)`` averaged over channels and patches: ``(B, D)``."""
    return h.mean(dim=(1, 2))


def student_embedding(out: ModelOutput, final: str) -> torch.Tensor:
    """The student's pooled embedding, or its final map averaged over time when it gives none."""
    if out.embedding is not None:
        return out.embedding.flatten(1)
    return channels_time(out.features[final]).mean(dim=-1)


class TimeProjector(nn.Module):
    """Student map ``(B, *, T')`` -> ``(B, D, P)``: resample time to ``P``, then a 1x1 convolution."""

    def __init__(self, in_channels: int, out_dim: int, n_patches: int) -> None:
        super().__init__()
        self.n_patches = n_patches
        self.proj = nn.Conv1d(in_channels, out_dim, kernel_size=1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.proj(resample_time(channels_time(f), self.n_patches))


# ------------------------------------------------------------------ checks
def require_teacher(distiller: str, teacher: TeacherInfo | None) -> TeacherInfo:
    """The teacher info, or a UserError when the distiller was built without a teacher."""
    if teacher is None:
        raise UserError(f"distiller {distiller!r} needs a teacher but none was given; "
                        "choose one (see eegkd-bench list teachers) or use distiller 'none'")
    return teacher


def teacher_layer_shape(distiller: str, teacher: TeacherInfo, layer: str) -> tuple[int, int, int]:
    """``(C, P, D)`` of a teacher layer; UserError naming the valid layers when it does not exist."""
    if layer not in teacher.layer_names:
        names = list(teacher.layer_names)
        shown = ", ".join(names) if len(names) <= 6 else f"{names[0]} .. {names[-1]}"
        raise UserError(f"{distiller}: teacher {teacher.name!r} has no layer {layer!r}; "
                        f"expected one of {shown}")
    shape = tuple(teacher.feature_shapes.get(layer, ()))
    if len(shape) != 3:
        raise UserError(f"{distiller}: teacher {teacher.name!r} layer {layer!r} has shape {shape}; "
                        "expected (channels, patches, width); this teacher does not follow the layer contract")
    return shape  # type: ignore[return-value]


def probe_student(student: EEGModel, spec: InputSpec) -> ModelOutput:
    """One no-grad forward of two zero windows in eval mode (shapes only; batch-norm stats untouched)."""
    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            return student.forward_features(torch.zeros(2, spec.n_channels, spec.n_samples))
    finally:
        student.train(was_training)


def compatible_students(spec: InputSpec, limit: int = 40) -> list[str]:
    """Registered students that expose feature maps for ``spec`` (best effort; only for error messages)."""
    try:
        from eegkd_bench.plugins import get_registry

        entries = get_registry(check=False).entries("students")[:limit]
    except Exception:  # listing is a courtesy; never hide the real error behind another one
        return []
    names = []
    for entry in entries:
        try:
            model = entry.factory(spec)
            if getattr(model, "feature_names", ()):
                names.append(entry.name)
        except Exception:
            continue
    return names


def check_student_features(distiller: str, student: EEGModel, spec: InputSpec) -> ModelOutput:
    """Probe the student once; UserError when it exposes no feature maps (or not the ones it names)."""
    names = tuple(getattr(student, "feature_names", ()) or ())
    if not names:
        ok = compatible_students(spec)
        hint = f"use one of: {', '.join(ok)}" if ok else "see eegkd-bench list students"
        raise UserError(f"distiller {distiller!r} needs student feature maps but student "
                        f"{type(student).__name__} exposes none (empty feature_names); {hint}")
    out = probe_student(student, spec)
    missing = [n for n in names if n not in out.features]
    if missing:
        raise UserError(f"distiller {distiller!r}: student {type(student).__name__} declares feature(s) "
                        f"{missing} but forward_features returned only {sorted(out.features)}; fix the student")
    return out


__all__ = ["TimeProjector", "as_float", "channels_time", "check_student_features", "compatible_students", "pooled_teacher_embedding", "probe_student", "require_teacher", "resample_time", "student_embedding", "teacher_layer_shape", "teacher_time_major"]
