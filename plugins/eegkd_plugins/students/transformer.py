"""TinyTransformer: a small patch-token transformer student (our design, no paper).

x (B, C, T) -> 1x1 spatial mixing to 8 virtual channels + BatchNorm -> non-overlapping
1-s patches embedded by a strided conv (width 32) -> learned position embedding -> 2 pre-norm
transformer layers (4 heads, MLP x2, GELU, dropout 0.1) -> LayerNorm -> mean over tokens ->
linear classifier. One token per second lines the student's time axis up with the 1-s patches
of the CBraMod and LaBraM teachers. Samples after the last whole patch are ignored.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eegkd_bench.api import InputSpec, ModelOutput, Option, UserError
from eegkd_plugins.students.common import Student, take_options

DEFAULTS = {"width": Option(32, "token width"), "depth": Option(2, "transformer blocks"),
            "heads": Option(4, "attention heads"), "spatial": Option(8, "virtual channels of the spatial mixing"),
            "patch_s": Option(1.0, "patch length in seconds"), "dropout": Option(0.1, "dropout rate")}


class TinyTransformer(Student):
    """Patch-token transformer; features ``patch_embed``, ``layer_1 .. layer_L`` of shape (B, width, P)."""

    name = "tinytransformer"

    def __init__(self, spec: InputSpec, width: int = 32, depth: int = 2, heads: int = 4, spatial: int = 8,
                 patch_s: float = 1.0, dropout: float = 0.1) -> None:
        if width % heads:
            raise UserError(f"tinytransformer: width={width} is not divisible by heads={heads}; "
                            f"pick e.g. width=32, heads=4")
        patch = max(1, int(round(patch_s * spec.sfreq)))
        super().__init__(spec, lambda t: t // patch)
        self.patch = patch
        self.n_tokens = spec.n_samples // patch
        self.feature_names = ("patch_embed",) + tuple(f"layer_{i + 1}" for i in range(depth))
        self.spatial = nn.Sequential(nn.Conv1d(spec.n_channels, spatial, 1, bias=False), nn.BatchNorm1d(spatial))
        self.patch_embed = nn.Conv1d(spatial, width, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.n_tokens, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        self.classifier = nn.Linear(width, spec.n_classes)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        """Logits, token maps (time last) and the mean-pooled token."""
        self.check_input(x)
        h = self.patch_embed(self.spatial(x[..., : self.n_tokens * self.patch]))  # (B, width, P)
        feats = {"patch_embed": h}
        h = h.transpose(1, 2) + self.pos_embed
        for name, layer in zip(self.feature_names[1:], self.layers):
            h = layer(h)
            feats[name] = h.transpose(1, 2)
        emb = self.norm(h).mean(dim=1)
        return ModelOutput(self.classifier(emb), feats, emb)


def build(spec: InputSpec, **options: Any) -> TinyTransformer:
    """Registry factory for ``tinytransformer``."""
    return TinyTransformer(spec, **take_options("tinytransformer", options, DEFAULTS))
