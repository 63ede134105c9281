"""``none``: the student trained on labels only — the "no distillation" row of every leaderboard."""
from __future__ import annotations

import torch

from eegkd_bench import hookimpl
from eegkd_bench.api import Distiller, TeacherBatch
from eegkd_plugins.distillers.common import cross_entropy


class NoDistillation(Distiller):
    """Cross-entropy on the labels; the teacher is not used."""

    name = "none"
    defaults: dict = {}

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        return {"ce": cross_entropy(self.student(x), y)}


@hookimpl
def eegkd_register_distillers(register) -> None:
    register("none", NoDistillation, role="baseline",
             description="no distillation: cross-entropy on the labels only")
