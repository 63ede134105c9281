"""DeepConvNet (Schirrmeister et al., Hum. Brain Mapp. 2017).

As in the paper: block 1 = temporal conv (25 filters, 10 samples at 250 Hz) + spatial conv over
all electrodes (25 filters), BatchNorm, ELU, max pool 3 stride 3; blocks 2-4 = dropout 0.5,
conv (50, 100, 200 filters, 10 samples), BatchNorm, ELU, max pool 3 stride 3; then a dense
softmax classifier over the flattened last map. Convolutions followed by BatchNorm have no bias.

Our reading for other sampling rates: the conv kernel (40 ms) is rescaled by sfreq/250; the
pool size/stride 3 is a downsampling ratio and stays 3.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eegkd_bench.api import InputSpec, ModelOutput, Option
from eegkd_plugins.students.common import Student, out_len, scaled, take_options

DEFAULTS = {"dropout": Option(0.5, "dropout rate")}
FILTERS = (25, 50, 100, 200)


class DeepConvNet(Student):
    """DeepConvNet; features ``block1 .. block4`` of shape (B, filters, T_i)."""

    name = "deepconvnet"
    feature_names = ("block1", "block2", "block3", "block4")

    def __init__(self, spec: InputSpec, dropout: float = 0.5) -> None:
        k = scaled(10, spec.sfreq, 250)

        def final_len(t: int) -> int:
            for _ in FILTERS:
                t = out_len(out_len(t, k), 3, 3)
            return t

        super().__init__(spec, final_len)
        self.kernel = k
        f = FILTERS
        self.blocks = nn.ModuleList([
            nn.Sequential(nn.Conv2d(1, f[0], (1, k)), nn.Conv2d(f[0], f[0], (spec.n_channels, 1), bias=False),
                          nn.BatchNorm2d(f[0]), nn.ELU(), nn.MaxPool2d((1, 3), (1, 3))),
        ])
        for fin, fout in zip(f[:-1], f[1:]):
            self.blocks.append(nn.Sequential(nn.Dropout(dropout), nn.Conv2d(fin, fout, (1, k), bias=False),
                                             nn.BatchNorm2d(fout), nn.ELU(), nn.MaxPool2d((1, 3), (1, 3))))
        self.n_time = final_len(spec.n_samples)
        self.classifier = nn.Linear(f[-1] * self.n_time, spec.n_classes)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        """Logits, the four block maps (time last) and the flattened last map."""
        self.check_input(x)
        h = x.unsqueeze(1)
        feats = {}
        for name, block in zip(self.feature_names, self.blocks):
            h = block(h)
            feats[name] = h.squeeze(2)
        emb = h.flatten(1)
        return ModelOutput(self.classifier(emb), feats, emb)


def build(spec: InputSpec, **options: Any) -> DeepConvNet:
    """Registry factory for ``deepconvnet``."""
    return DeepConvNet(spec, **take_options("deepconvnet", options, DEFAULTS))
