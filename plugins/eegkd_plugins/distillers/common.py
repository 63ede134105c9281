"""Shared pieces of the distillers: input checks, layout adapters and pooled embeddings.

Layouts (see :mod:`eegkd_bench.api`):

* teacher layers ``H_l``: ``(B, C, P, D)`` — channels, patches (time), model width;
* student maps: ``(B, *, T')`` with time last; every non-time axis is treated as a
  feature channel (:func:`channels_time`), so ``(B, F, 1, T')`` and ``(B, F, T')``
  look the same to the adapters.

The default mapping between the two (our reading; the baseline papers were written
for images) is: pool the teacher over its channel axis to ``(B, D, P)``, resample the
student's time axis to ``P`` patches (average pooling, or linear interpolation when
the student map is shorter), then a learned 1x1 convolution ``F -> D``
(:class:`TimeProjector`). It keeps the temporal order, which is what EEG teachers
and students share; the teacher's electrode axis has no counterpart in most compact
students after their spatial filters.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eegkd_bench.api import UNLABELLED, Distiller, EEGModel, InputSpec, ModelOutput, TeacherBatch, TeacherInfo, TeacherNeeds, UserError


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


def resolve_student_layer(distiller: str, student: EEGModel, name: str | None, default: int) -> str:
    """A student feature name: ``name`` if given (checked), else ``feature_names[default]``."""
    names = tuple(student.feature_names)
    if name is None:
        return names[default]
    if name not in names:
        raise UserError(f"{distiller}: student {type(student).__name__} has no feature {name!r}; "
                        f"expected one of {', '.join(names)}")
    return name


def stage_epochs(option: int | None, total_epochs: int, share: float) -> int:
    """A stage's length in epochs: ``option`` when set, else ``share`` of the recipe's epochs (at least 1;
    1 when the recipe's length is unknown, ``total_epochs == 0``)."""
    if option is not None:
        return int(option)
    return max(1, round(total_epochs * share))


def check_choice(distiller: str, option: str, value: Any, choices: Sequence[Any]) -> None:
    """UserError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise UserError(f"{distiller}: option {option}={value!r} is not valid; expected one of "
                        f"{', '.join(repr(c) for c in choices)}")


def check_positive(distiller: str, hparams: dict[str, Any], names: Sequence[str], *, allow_zero: bool = False) -> None:
    """UserError unless each named option is a positive (or non-negative) number."""
    for name in names:
        v = hparams[name]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (v >= 0 if allow_zero else v > 0)
        if not ok:
            need = "a number >= 0" if allow_zero else "a number > 0"
            raise UserError(f"{distiller}: option {name}={v!r} is not valid; expected {need}")


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled windows (``UNLABELLED`` ones, from the transfer split, are
    skipped; a batch of only those gives 0 with a gradient of 0)."""
    known = y != UNLABELLED
    if bool(known.all()):
        return F.cross_entropy(logits, y)
    if not bool(known.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[known], y[known])


class EmbeddingRelationDistiller(Distiller):
    """Base of distillers that relate the student's embedding to the teacher's pooled last layer.

    Subclasses set ``weights`` (the hyper-parameters that must be >= 0) and implement
    :meth:`relation_terms`, returning the weighted terms for one batch of embeddings.
    """

    needs_student_features = True
    weights: tuple[str, ...] = ()

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, **hparams: Any) -> None:
        super().__init__(student, teacher, spec, **hparams)
        info = require_teacher(self.name, teacher)
        check_positive(self.name, self.hparams, list(self.weights), allow_zero=True)
        check_student_features(self.name, student, spec)
        self.teacher_layer = info.layer_names[-1]
        teacher_layer_shape(self.name, info, self.teacher_layer)

    def teacher_needs(self) -> TeacherNeeds:
        return TeacherNeeds(layers=(self.teacher_layer,))

    def relation_terms(self, s: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        out = self.student.forward_features(x)
        s = student_embedding(out, self.student.feature_names[-1])
        t = pooled_teacher_embedding(as_float(teacher.features[self.teacher_layer]))
        return {"ce": cross_entropy(out.logits, y), **self.relation_terms(s, t)}
