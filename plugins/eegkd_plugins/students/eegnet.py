"""EEGNet-8,2 (Lawhern et al., "EEGNet: a compact convolutional neural network for EEG-based
brain-computer interfaces", J. Neural Eng. 2018).

Faithful to the paper's Table 2: temporal conv (F1=8, length sfreq/2, no bias) -> BN ->
depthwise spatial conv (D=2 per filter, max-norm 1, no bias) -> BN -> ELU -> average pool 4 ->
dropout -> separable conv (depthwise length 16 at 32 Hz, pointwise to F2=16, no bias) -> BN ->
ELU -> average pool 8 -> dropout -> flatten -> dense with max-norm 0.25. 'same' padding as in
the Keras reference; BatchNorm momentum/epsilon are Keras' defaults.

Our reading for other sampling rates: the paper's kernel lengths are durations (64 samples =
0.5 s at 128 Hz; the separable conv spans 16 samples = 0.5 s after the 4x pooling), so
they become round(sfreq/2) and round(sfreq/8); the pool sizes 4 and 8 stay as in the paper.
Dropout defaults to 0.25, the paper's cross-subject value (ours are subject-disjoint splits).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eegkd_bench.api import InputSpec, ModelOutput, Option
from eegkd_plugins.students.common import MaxNormConv2d, MaxNormLinear, Student, take_options

DEFAULTS = {"F1": Option(8, "temporal filters"), "D": Option(2, "spatial filters per temporal filter"),
            "F2": Option(16, "pointwise filters of the separable convolution"),
            "dropout": Option(0.25, "dropout rate")}


def _bn(n: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(n, momentum=0.01, eps=1e-3)  # Keras defaults (momentum 0.99)


def _same(kernel: int) -> tuple[int, int, int, int]:
    """Keras 'same' padding along time: the odd sample of an even kernel goes on the right."""
    return ((kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2, 0, 0)


class EEGNet(Student):
    """EEGNet-F1,D; features ``block1`` (B, F1*D, T/4) and ``block2`` (B, F2, T/32)."""

    name = "eegnet"
    feature_names = ("block1", "block2")

    def __init__(self, spec: InputSpec, F1: int = 8, D: int = 2, F2: int = 16, dropout: float = 0.25) -> None:
        super().__init__(spec, lambda t: (t // 4) // 8)
        c = spec.n_channels
        self.kernel_temporal = max(1, round(spec.sfreq / 2))
        self.kernel_separable = max(1, round(spec.sfreq / 8))
        self.pad_temporal = nn.ZeroPad2d(_same(self.kernel_temporal))
        self.conv_temporal = nn.Conv2d(1, F1, (1, self.kernel_temporal), bias=False)
        self.bn1 = _bn(F1)
        self.conv_spatial = MaxNormConv2d(F1, F1 * D, (c, 1), groups=F1, bias=False, max_norm=1.0)
        self.bn2 = _bn(F1 * D)
        self.pool1 = nn.AvgPool2d((1, 4))
        self.drop1 = nn.Dropout(dropout)
        self.pad_separable = nn.ZeroPad2d(_same(self.kernel_separable))
        self.conv_separable_depth = nn.Conv2d(F1 * D, F1 * D, (1, self.kernel_separable), groups=F1 * D,
                                              bias=False)
        self.conv_separable_point = nn.Conv2d(F1 * D, F2, 1, bias=False)
        self.bn3 = _bn(F2)
        self.pool2 = nn.AvgPool2d((1, 8))
        self.drop2 = nn.Dropout(dropout)
        self.elu = nn.ELU()
        self.n_time = (spec.n_samples // 4) // 8
        self.classifier = MaxNormLinear(F2 * self.n_time, spec.n_classes, max_norm=0.25)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        """Logits, block feature maps (time last) and the flattened final map."""
        self.check_input(x)
        h = self.bn1(self.conv_temporal(self.pad_temporal(x.unsqueeze(1))))
        h = self.drop1(self.pool1(self.elu(self.bn2(self.conv_spatial(h)))))
        block1 = h.squeeze(2)
        h = self.bn3(self.conv_separable_point(self.conv_separable_depth(self.pad_separable(h))))
        h = self.drop2(self.pool2(self.elu(h)))
        block2 = h.squeeze(2)
        emb = block2.flatten(1)
        return ModelOutput(self.classifier(emb), {"block1": block1, "block2": block2}, emb)


def build(spec: InputSpec, **options: Any) -> EEGNet:
    """Registry factory for ``eegnet``."""
    return EEGNet(spec, **take_options("eegnet", options, DEFAULTS))
