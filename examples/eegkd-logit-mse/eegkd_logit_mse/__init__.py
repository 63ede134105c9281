"""Logit regression ("Do deep nets really need to be deep?", Ba & Caruana 2014) as an eegkd-bench plugin.

The student regresses the teacher's logits with a mean squared error, mixed
with cross-entropy on the labels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from eegkd_bench import hookimpl
from eegkd_bench.api import Distiller, Option, TeacherBatch, TeacherNeeds


def logit_mse_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the squared logit differences summed over classes, halved (paper's L2)."""
    return 0.5 * ((student_logits - teacher_logits) ** 2).sum(dim=1).mean()


class LogitMSE(Distiller):
    """CE + beta * logit regression towards the frozen teacher's logits."""

    defaults = {"beta": Option(0.1, "weight of the logit regression term")}

    def teacher_needs(self) -> TeacherNeeds:
        return TeacherNeeds(logits=True)

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        logits = self.student(x)
        return {
            "ce": F.cross_entropy(logits, y),
            "logit_mse": self.hparams["beta"] * logit_mse_loss(logits, teacher.logits),
        }


@hookimpl
def eegkd_register_distillers(register):
    register("logit-mse", LogitMSE, description="logit regression (Ba & Caruana 2014), example third-party plugin")
