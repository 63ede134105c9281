"""``kd``: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".

Loss: ``(1 - alpha) * CE(s, y) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))``.
The ``T^2`` factor keeps the soft-target gradients on the scale of the hard-target
ones when ``T`` changes (paper, section 2). Defaults ``T = 4, alpha = 0.9``: the
paper advises a much larger weight on the soft targets than on the labels, and
``T = 4, alpha = 0.9`` is the setting the common KD benchmarks (RepDistiller /
mdistiller CIFAR recipes) use, so our KD row is comparable to theirs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from eegkd_bench import hookimpl
from eegkd_bench.api import (TRANSFER_OPTION, Distiller, EEGModel, InputSpec, Option, TeacherBatch, TeacherInfo,
                             TeacherNeeds, UserError)
from eegkd_bench.adapters import require_teacher
from eegkd_plugins.distillers.common import cross_entropy


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T))`` averaged over the batch (teacher detached)."""
    t = temperature
    log_p_s = F.log_softmax(student_logits / t, dim=1)
    p_t = F.softmax(teacher_logits.detach().float() / t, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * (t * t)


def teacher_logits(distiller: str, teacher: TeacherBatch) -> torch.Tensor:
    """The batch's teacher logits, or a clear error when the runner did not provide them."""
    if teacher.logits is None:
        raise UserError(f"{distiller}: the teacher batch has no logits; the runner must honour teacher_needs()")
    return teacher.logits.float()


class KD(Distiller):
    """Soft-target distillation on the logits, mixed with the label cross-entropy."""

    name = "kd"
    defaults = {"temperature": Option(4.0, "softmax temperature T of the soft targets", min=0, exclusive_min=True),
                "alpha": Option(0.9, "weight of the soft-target term (1 - alpha weighs the label CE)", min=0, max=1),
                "transfer": TRANSFER_OPTION}

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, **hparams) -> None:
        super().__init__(student, teacher, spec, **hparams)
        require_teacher(self.name, teacher)

    def teacher_needs(self) -> TeacherNeeds:
        return TeacherNeeds(logits=True)

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        a, t = self.hparams["alpha"], self.hparams["temperature"]
        logits = self.student(x)
        return {
            "ce": (1.0 - a) * cross_entropy(logits, y),
            "kd": a * kd_loss(logits, teacher_logits(self.name, teacher), t),
        }


@hookimpl
def eegkd_register_distillers(register) -> None:
    register("kd", KD, description="Hinton et al. 2015: soft teacher logits at temperature T, mixed with CE")
