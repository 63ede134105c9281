"""``fitnets``: Romero et al. (2015), "FitNets: Hints for Thin Deep Nets".

Stage 1 (hint training): a learned regressor maps the student's *guided* layer to
the teacher's *hint* layer and the student, up to the guided layer, minimizes the
regression error (only the hint term is optimized, so the layers after the guided
one receive no gradient, as in the paper). Stage 2: the whole student is trained
with KD on the logits plus the label cross-entropy.

Our reading where the paper does not fit EEG or this loop:

* hint/guided layers default to the middle of each network (the paper's choice):
  teacher ``layer_{L//2}``, student ``feature_names[(n-1)//2]``;
* the regressor is :class:`~eegkd_bench.adapters.TimeProjector`
  (student time resampled to the teacher's patches, 1x1 conv ``F -> D``) against the
  teacher layer averaged over its channel axis ``(B, D, P)``; it is training-only;
* the hint loss is the mean (not the sum) of squared errors, so its scale does not
  depend on the layer size; the paper's 1/2 is folded into ``hint_weight``;
* stage 2 uses Hinton's KD (``T^2`` scaled) with a constant weight instead of the
  paper's 4 -> 1 annealed weight;
* ``stage="two-stage"`` (default) runs ``hint_epochs`` epochs of stage 1 then stage 2 in one
  run of the recipe (one optimizer and learning-rate schedule); by default the hint stage is a
  quarter of the recipe's epochs (at least 1), so stage 2 keeps most of the run whatever its
  length, and no stage-1 epoch is restored as the best-validation state (its classifier is untrained);
  ``stage="joint"`` optimizes ``CE + hint_weight * hint + kd_weight * KD`` from the start.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from eegkd_bench import hookimpl
from eegkd_bench.api import (TRANSFER_OPTION, Distiller, EEGModel, InputSpec, Option, TeacherBatch, TeacherInfo,
                             TeacherNeeds)
from eegkd_bench.adapters import (
    TimeProjector,
    as_float,
    channels_time,
    check_student_features,
    require_teacher,
    teacher_layer_shape,
    teacher_time_major,
)
from eegkd_plugins.distillers.common import cross_entropy, resolve_student_layer, stage_epochs
from eegkd_plugins.distillers.kd import kd_loss, teacher_logits


def hint_loss(regressed: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the regressed guided layer and the (detached) teacher hint."""
    return F.mse_loss(regressed, hint.detach())


class FitNets(Distiller):
    """Hint regression from a middle student layer to a middle teacher layer, then KD."""

    name = "fitnets"
    needs_student_features = True
    defaults = {
        "transfer": TRANSFER_OPTION,
        "stage": Option("two-stage", "two-stage: hint epochs first, then CE + KD; joint: all terms together",
                        choices=("two-stage", "joint")),
        "hint_epochs": Option(None, "epochs of the hint-only stage (two-stage; none: a quarter of the recipe's "
                              "epochs, at least 1)", type=int, min=0),
        "hint_weight": Option(1.0, "weight of the hint term (joint)", min=0),
        "kd_weight": Option(1.0, "weight of the KD term after the hint stage", min=0),
        "temperature": Option(4.0, "KD softmax temperature", min=0, exclusive_min=True),
        "student_layer": Option(None, "student feature map that is guided (default: the middle one)", type=str),
        "teacher_layer": Option(None, "teacher hint layer (default: layer L/2)", type=str),
    }

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, **hparams: Any) -> None:
        super().__init__(student, teacher, spec, **hparams)
        info = require_teacher(self.name, teacher)
        hp = self.hparams
        out = check_student_features(self.name, student, spec)
        n = len(student.feature_names)
        self.student_layer = resolve_student_layer(self.name, student, hp["student_layer"], (n - 1) // 2)
        layers = info.layer_names
        self.teacher_layer = hp["teacher_layer"] or layers[max(0, len(layers) // 2 - 1)]
        _, n_patches, width = teacher_layer_shape(self.name, info, self.teacher_layer)
        in_channels = channels_time(out.features[self.student_layer]).shape[1]
        self.regressor = TimeProjector(in_channels, width, n_patches)
        self.epochs_done = 0

    @property
    def hint_epochs(self) -> int:
        """The hint stage's length: the option, else a quarter of the recipe's epochs."""
        return stage_epochs(self.hparams["hint_epochs"], self.total_epochs, 1 / 4)

    @property
    def in_hint_stage(self) -> bool:
        return self.hparams["stage"] == "two-stage" and self.epochs_done < self.hint_epochs

    def selectable_epoch(self) -> bool:
        return not self.in_hint_stage

    def teacher_needs(self) -> TeacherNeeds:
        kd = self.hparams["kd_weight"] > 0
        return TeacherNeeds(logits=kd, layers=(self.teacher_layer,))

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        hp = self.hparams
        out = self.student.forward_features(x)
        hint = teacher_time_major(as_float(teacher.features[self.teacher_layer]))
        h = hint_loss(self.regressor(out.features[self.student_layer]), hint)
        if self.in_hint_stage:
            # stage 1 trains the student up to the guided layer only: no label or logit term
            return {"ce": torch.zeros((), device=x.device), "hint": hp["hint_weight"] * h}
        terms = {"ce": cross_entropy(out.logits, y)}
        if hp["stage"] == "joint":
            terms["hint"] = hp["hint_weight"] * h
        if hp["kd_weight"] > 0:
            t = teacher_logits(self.name, teacher)
            terms["kd"] = hp["kd_weight"] * kd_loss(out.logits, t, hp["temperature"])
        return terms

    def on_epoch_end(self, epoch: int) -> None:
        self.epochs_done = epoch + 1

    def report(self) -> dict[str, Any]:
        return {"student_layer": self.student_layer, "teacher_layer": self.teacher_layer,
                "stage": self.hparams["stage"], "hint_epochs": self.hint_epochs,
                "regressor_params": sum(p.numel() for p in self.regressor.parameters())}


@hookimpl
def eegkd_register_distillers(register) -> None:
    register("fitnets", FitNets, description="Romero et al. 2015: hint regression on middle layers, then KD")
