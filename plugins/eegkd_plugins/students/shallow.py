"""ShallowConvNet (Schirrmeister et al., "Deep learning with convolutional neural networks for
EEG decoding and visualization", Hum. Brain Mapp. 2017).

As in the paper: temporal conv (40 filters, 25 samples at 250 Hz) -> spatial conv over all
electrodes (40 filters) -> BatchNorm -> square -> mean pooling (75 samples, stride 15) -> log ->
dropout 0.5 -> dense softmax classifier over the whole pooled map (written as a linear layer on
the flattened map, which has the same parameters as the paper's final conv). The spatial conv
has no bias because BatchNorm follows it.

Our reading for other sampling rates: kernel and pooling lengths are durations (100 ms kernel,
300 ms window, 60 ms stride) and are rescaled by sfreq/250.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eegkd_bench.api import InputSpec, ModelOutput, Option
from eegkd_plugins.students.common import Student, out_len, scaled, take_options

DEFAULTS = {"n_filters": Option(40, "temporal and spatial filters"), "dropout": Option(0.5, "dropout rate")}


class ShallowConvNet(Student):
    """ShallowConvNet; features ``conv`` (B, 40, T1) and ``pool`` (B, 40, T2), the log band power map."""

    name = "shallowconvnet"
    feature_names = ("conv", "pool")

    def __init__(self, spec: InputSpec, n_filters: int = 40, dropout: float = 0.5) -> None:
        k = scaled(25, spec.sfreq, 250)
        pool, stride = scaled(75, spec.sfreq, 250), scaled(15, spec.sfreq, 250)
        super().__init__(spec, lambda t: out_len(out_len(t, k), pool, stride))
        self.kernel, self.pool_size, self.pool_stride = k, pool, stride
        self.conv_time = nn.Conv2d(1, n_filters, (1, k))
        self.conv_spatial = nn.Conv2d(n_filters, n_filters, (spec.n_channels, 1), bias=False)
        self.bn = nn.BatchNorm2d(n_filters)
        self.pool = nn.AvgPool2d((1, pool), (1, stride))
        self.drop = nn.Dropout(dropout)
        self.n_time = out_len(out_len(spec.n_samples, k), pool, stride)
        self.classifier = nn.Linear(n_filters * self.n_time, spec.n_classes)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        """Logits, feature maps (time last) and the flattened log-power map."""
        self.check_input(x)
        h = self.bn(self.conv_spatial(self.conv_time(x.unsqueeze(1))))
        conv = h.squeeze(2)
        h = torch.log(torch.clamp(self.pool(h * h), min=1e-6))  # clamp: log of an all-zero window
        pooled = h.squeeze(2)
        emb = self.drop(pooled).flatten(1)
        return ModelOutput(self.classifier(emb), {"conv": conv, "pool": pooled}, emb)


def build(spec: InputSpec, **options: Any) -> ShallowConvNet:
    """Registry factory for ``shallowconvnet``."""
    return ShallowConvNet(spec, **take_options("shallowconvnet", options, DEFAULTS))
