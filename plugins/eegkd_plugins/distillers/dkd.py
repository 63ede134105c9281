"""``dkd``: Zhao, Cui, Song, Qiu & Liang (2022), "Decoupled Knowledge Distillation".

KD is split into target-class KD (TCKD: KL between the binary distributions
``[p_target, 1 - p_target]``) and non-target-class KD (NCKD: KL between the
distributions over the non-target classes, renormalized); the loss is
``CE + warm * (alpha * TCKD + beta * NCKD) * T^2`` with ``alpha = 1, beta = 8, T = 4``
and a linear warm-up ``warm = min(epoch / warmup, 1)``. The official CIFAR-100
configuration warms up over 20 of 240 epochs; by default ``warmup`` keeps that share of
the recipe's epochs (``round(epochs / 12)``, at least 1), so a short run is not spent
mostly in warm-up; set ``warmup`` to fix it. For binary tasks NCKD is zero (a single
non-target class) and DKD reduces to a reweighted TCKD.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from eegkd_bench import hookimpl
from eegkd_bench.api import Distiller, EEGModel, InputSpec, Option, TeacherBatch, TeacherInfo, TeacherNeeds
from eegkd_bench.adapters import require_teacher
from eegkd_plugins.distillers.common import cross_entropy, stage_epochs
from eegkd_plugins.distillers.kd import teacher_logits

_TINY = 1e-12
_MASK = 1000.0  # subtracted from the target logit so it vanishes from the non-target softmax


def tckd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Target-class KD: ``T^2 * KL(b_t || b_s)`` of the binary target / non-target distributions."""
    gt = F.one_hot(y, student_logits.shape[1]).to(student_logits.dtype)
    p_s = F.softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits.detach().float() / temperature, dim=1)
    b_s = torch.stack([(p_s * gt).sum(1), (p_s * (1 - gt)).sum(1)], dim=1).clamp_min(_TINY)
    b_t = torch.stack([(p_t * gt).sum(1), (p_t * (1 - gt)).sum(1)], dim=1)
    return F.kl_div(b_s.log(), b_t, reduction="batchmean") * temperature ** 2


def nckd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Non-target-class KD: ``T^2 * KL`` between the distributions over the non-target classes."""
    gt = F.one_hot(y, student_logits.shape[1]).to(student_logits.dtype)
    log_q_s = F.log_softmax(student_logits / temperature - _MASK * gt, dim=1)
    q_t = F.softmax(teacher_logits.detach().float() / temperature - _MASK * gt, dim=1)
    return F.kl_div(log_q_s, q_t, reduction="batchmean") * temperature ** 2


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor,
             alpha: float, beta: float, temperature: float) -> torch.Tensor:
    """``alpha * TCKD + beta * NCKD`` (both ``T^2``-scaled)."""
    return (alpha * tckd_loss(student_logits, teacher_logits, y, temperature)
            + beta * nckd_loss(student_logits, teacher_logits, y, temperature))


class DKD(Distiller):
    """Decoupled KD on the logits with a linear warm-up, plus CE."""

    name = "dkd"
    defaults = {
        "alpha": Option(1.0, "weight of the target-class term (TCKD)", min=0),
        "beta": Option(8.0, "weight of the non-target-class term (NCKD)", min=0),
        "temperature": Option(4.0, "softmax temperature", min=0, exclusive_min=True),
        "warmup": Option(None, "epochs of linear warm-up of the DKD terms (none: 1/12 of the recipe's epochs, "
                         "the official 20 of 240, at least 1)", type=int, min=0),
        "ce_weight": Option(1.0, "weight of the label cross-entropy", min=0),
    }

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, **hparams: Any) -> None:
        super().__init__(student, teacher, spec, **hparams)
        require_teacher(self.name, teacher)
        self.epoch = 1  # 1-based, as in the official implementation's warm-up

    def teacher_needs(self) -> TeacherNeeds:
        return TeacherNeeds(logits=True)

    @property
    def warmup_epochs(self) -> int:
        """The warm-up length: the option, else the official 20 of 240 epochs' share of the recipe."""
        return stage_epochs(self.hparams["warmup"], self.total_epochs, 20 / 240)

    def warm(self) -> float:
        """Current warm-up factor in [0, 1]."""
        w = self.warmup_epochs
        return 1.0 if w <= 0 else min(self.epoch / w, 1.0)

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        hp = self.hparams
        logits = self.student(x)
        t = teacher_logits(self.name, teacher)
        return {
            "ce": hp["ce_weight"] * cross_entropy(logits, y),
            "dkd": self.warm() * dkd_loss(logits, t, y, hp["alpha"], hp["beta"], hp["temperature"]),
        }

    def on_epoch_end(self, epoch: int) -> None:
        self.epoch = epoch + 2  # the next epoch, 1-based

    def report(self) -> dict[str, Any]:
        return {"warmup_epochs": self.warmup_epochs, "final_warmup_factor": self.warm()}


@hookimpl
def eegkd_register_distillers(register) -> None:
    register("dkd", DKD, description="Zhao et al. 2022: decoupled target / non-target class KD")
