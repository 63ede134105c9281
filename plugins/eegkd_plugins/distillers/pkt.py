"""``pkt``: Passalis & Tefas (2018), "Learning Deep Representations with Probabilistic Knowledge Transfer".

Each batch's embeddings define conditional probabilities ``p(j | i)`` through the
cosine-similarity kernel ``K(a, b) = (cos(a, b) + 1) / 2`` normalized per row; the
student minimizes ``KL(P_teacher || P_student)``. As in the authors' reference code the
KL terms are averaged over all ``B^2`` entries (diagonal included), which is why the
weight is large: ``weight = 30000`` is the value of the CRD/RepDistiller benchmark
(Tian et al. 2020) for this exact formulation. Dimensions need not match.

Our reading: teacher embedding = last layer averaged over channels and patches;
student embedding = ``ModelOutput.embedding``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from eegkd_bench import hookimpl
from eegkd_bench.api import Distiller, EEGModel, InputSpec, TeacherBatch, TeacherInfo, TeacherNeeds
from eegkd_plugins.distillers.common import (
    as_float,
    check_positive,
    check_student_features,
    cross_entropy,
    pooled_teacher_embedding,
    require_teacher,
    student_embedding,
    teacher_layer_shape,
)


def cosine_conditional_probabilities(e: torch.Tensor) -> torch.Tensor:
    """Row-normalized cosine kernel ``(cos + 1) / 2`` of the rows of ``e`` ``(B, E)``."""
    u = F.normalize(e, p=2, dim=1)
    k = (u @ u.t() + 1.0) / 2.0
    return k / k.sum(dim=1, keepdim=True)


def pkt_loss(student: torch.Tensor, teacher: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """``mean_ij p_t log((p_t + eps) / (p_s + eps))`` over the conditional probability matrices."""
    with torch.no_grad():
        p_t = cosine_conditional_probabilities(teacher.detach().float())
    p_s = cosine_conditional_probabilities(student)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()


class PKT(Distiller):
    """Probabilistic knowledge transfer on embeddings, plus CE."""

    name = "pkt"
    needs_student_features = True
    defaults = {"weight": 30000.0}

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, **hparams: Any) -> None:
        super().__init__(student, teacher, spec, **hparams)
        info = require_teacher(self.name, teacher)
        check_positive(self.name, self.hparams, ["weight"], allow_zero=True)
        check_student_features(self.name, student, spec)
        self.teacher_layer = info.layer_names[-1]
        teacher_layer_shape(self.name, info, self.teacher_layer)

    def teacher_needs(self) -> TeacherNeeds:
        return TeacherNeeds(layers=(self.teacher_layer,))

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        out = self.student.forward_features(x)
        s = student_embedding(out, self.student.feature_names[-1])
        t = pooled_teacher_embedding(as_float(teacher.features[self.teacher_layer]))
        return {"ce": cross_entropy(out.logits, y), "pkt": self.hparams["weight"] * pkt_loss(s, t)}


@hookimpl
def eegkd_register_distillers(register) -> None:
    register("pkt", PKT, description="Passalis & Tefas 2018: match cosine-kernel probability distributions")
