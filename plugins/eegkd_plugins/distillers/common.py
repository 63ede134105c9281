"""Pieces the built-in distillers share beyond the public adapters (:mod:`eegkd_bench.adapters`): choosing a
student layer, stage lengths, the label term that skips unlabelled windows, and the base of the
embedding-relation methods (PKT, RKD)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from eegkd_bench.adapters import (
    as_float,
    check_student_features,
    pooled_teacher_embedding,
    require_teacher,
    student_embedding,
    teacher_layer_shape,
)
from eegkd_bench.api import UNLABELLED, Distiller, EEGModel, InputSpec, TeacherBatch, TeacherInfo, TeacherNeeds, UserError


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

    Subclasses set ``weights`` (the weight options, declared with ``min=0``) and implement
    :meth:`relation_terms`, returning the weighted terms for one batch of embeddings.
    """

    needs_student_features = True
    weights: tuple[str, ...] = ()

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, **hparams: Any) -> None:
        super().__init__(student, teacher, spec, **hparams)
        info = require_teacher(self.name, teacher)
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
