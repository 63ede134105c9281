"""``at``: Zagoruyko & Komodakis (2017), "Paying More Attention to Attention".

Activation-based attention transfer: the attention map of a feature tensor is the
mean over its channels of the squared activations (``p = 2``), flattened and
L2-normalized; the loss is ``beta/2 * sum over layer pairs of mean((Q_s - Q_t)^2)``
(the authors' code; ``beta = 1000``), added to the label cross-entropy.

Our reading for EEG (the paper pairs image feature maps of equal resolution):
the attention is *temporal*. Teacher layer ``(B, C, P, D)`` -> mean over channels
and width of ``H^2`` -> ``(B, P)``; student map ``(B, *, T')`` -> mean over its
feature axes of ``f^2`` -> ``(B, T')``, average-pooled (or interpolated) to ``P``.
By default every student feature map is paired with an evenly spaced teacher layer
(student map ``i`` of ``n`` with ``layer_ceil((i+1) L / n)``, so the last map meets
the last layer); ``student_layers`` / ``teacher_layers`` override the pairing.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from eegkd_bench import hookimpl
from eegkd_bench.api import (TRANSFER_OPTION, Distiller, EEGModel, InputSpec, Option, TeacherBatch, TeacherInfo,
                             TeacherNeeds, UserError)
from eegkd_bench.adapters import (
    as_float,
    channels_time,
    check_student_features,
    require_teacher,
    resample_time,
    teacher_layer_shape,
)
from eegkd_plugins.distillers.common import cross_entropy, resolve_student_layer


def student_attention(f: torch.Tensor, n_patches: int) -> torch.Tensor:
    """Normalized temporal attention ``(B, P)`` of a student map ``(B, *, T')``."""
    a = channels_time(f).pow(2).mean(dim=1, keepdim=True)  # (B, 1, T')
    return F.normalize(resample_time(a, n_patches).squeeze(1), p=2, dim=1)


def teacher_attention(h: torch.Tensor) -> torch.Tensor:
    """Normalized temporal attention ``(B, P)`` of a teacher layer ``(B, C, P, D)``."""
    return F.normalize(h.pow(2).mean(dim=(1, 3)), p=2, dim=1)


def at_loss(student_attention_map: torch.Tensor, teacher_attention_map: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of two normalized attention maps (teacher detached)."""
    return (student_attention_map - teacher_attention_map.detach()).pow(2).mean()


def default_pairs(student_names: tuple[str, ...], layer_names: tuple[str, ...]) -> list[tuple[str, str]]:
    """Pair student map ``i`` of ``n`` with teacher layer ``ceil((i+1) L / n)`` (1-based)."""
    n, L = len(student_names), len(layer_names)
    return [(s, layer_names[math.ceil((i + 1) * L / n) - 1]) for i, s in enumerate(student_names)]


class AttentionTransfer(Distiller):
    """Temporal attention maps of student maps matched to those of teacher layers, plus CE."""

    name = "at"
    needs_student_features = True
    defaults = {
        "transfer": TRANSFER_OPTION,
        "beta": Option(1000.0, "weight of the attention term (the loss is beta/2 times the sum)", min=0),
        "student_layers": Option(None, "student feature maps matched (default: all)", type=list),
        "teacher_layers": Option(None, "one teacher layer per student map (default: evenly spaced)", type=list),
    }

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, **hparams: Any) -> None:
        super().__init__(student, teacher, spec, **hparams)
        info = require_teacher(self.name, teacher)
        hp = self.hparams
        check_student_features(self.name, student, spec)
        s_names = tuple(hp["student_layers"] or student.feature_names)
        s_names = tuple(resolve_student_layer(self.name, student, s, -1) for s in s_names)
        if hp["teacher_layers"] is None:
            self.pairs = default_pairs(s_names, info.layer_names)
        else:
            t_names = tuple(hp["teacher_layers"])
            if len(t_names) != len(s_names):
                raise UserError(f"{self.name}: teacher_layers has {len(t_names)} entries but there are "
                                f"{len(s_names)} student layers {list(s_names)}; give one teacher layer per student layer")
            self.pairs = list(zip(s_names, t_names))
        self.n_patches = {t: teacher_layer_shape(self.name, info, t)[1] for _, t in self.pairs}

    def teacher_needs(self) -> TeacherNeeds:
        return TeacherNeeds(layers=tuple(dict.fromkeys(t for _, t in self.pairs)))

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        out = self.student.forward_features(x)
        total = sum(
            at_loss(student_attention(out.features[s], self.n_patches[t]),
                    teacher_attention(as_float(teacher.features[t])))
            for s, t in self.pairs
        )
        return {"ce": cross_entropy(out.logits, y), "at": self.hparams["beta"] / 2.0 * total}

    def report(self) -> dict[str, Any]:
        return {"pairs": [list(p) for p in self.pairs]}


@hookimpl
def eegkd_register_distillers(register) -> None:
    register("at", AttentionTransfer, description="Zagoruyko & Komodakis 2017: attention transfer (temporal maps)")
