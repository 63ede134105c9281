"""The example plugin's own tests: the loss against a hand-computed value, and one training step's terms."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from eegkd_bench.api import EEGModel, InputSpec, ModelOutput, TeacherBatch, UserError
from eegkd_logit_mse import LogitMSE, logit_mse_loss

SPEC = InputSpec(n_channels=2, n_samples=8, n_classes=3)


class Linear(EEGModel):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(SPEC.n_channels * SPEC.n_samples, SPEC.n_classes)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(self.fc(x.flatten(1)))


def test_the_loss_is_half_the_summed_squared_logit_difference_averaged_over_the_batch() -> None:
    student = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    teacher = torch.tensor([[1.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    # row 1: 0 + 4 + 0 = 4; row 2: 1 + 1 + 1 = 3; 0.5 * mean(4, 3) = 1.75
    assert logit_mse_loss(student, teacher).item() == pytest.approx(1.75)
    assert logit_mse_loss(teacher, teacher).item() == 0.0


def test_a_step_gives_the_weighted_terms_and_unknown_options_are_refused() -> None:
    torch.manual_seed(0)
    method = LogitMSE(student=Linear(), teacher=None, spec=SPEC, beta=0.5)
    x, y = torch.randn(4, 2, 8), torch.tensor([0, 1, 2, 0])
    teacher = TeacherBatch(logits=torch.zeros(4, 3))
    terms = method.losses(x, y, teacher)
    assert set(terms) == {"ce", "logit_mse"}
    expected = 0.5 * logit_mse_loss(method.student(x), teacher.logits)
    assert terms["logit_mse"].item() == pytest.approx(expected.item())
    sum(terms.values()).backward()
    assert method.student.fc.weight.grad is not None
    with pytest.raises(UserError, match="unknown option"):
        LogitMSE(student=Linear(), teacher=None, spec=SPEC, gamma=1.0)
