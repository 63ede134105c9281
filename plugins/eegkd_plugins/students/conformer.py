"""EEG Conformer (Song et al., "EEG Conformer: Convolutional Transformer for EEG Decoding and
Visualization", IEEE TNSRE 2023), after the authors' release (github.com/eeyhsong/EEG-Conformer).

* Convolution module: temporal conv (40 filters, 25 samples at 250 Hz) -> spatial conv over all
  electrodes (40) -> BatchNorm -> ELU -> average pool (75, stride 15) -> dropout 0.5 -> 1x1 conv
  projection to the token width 40; each pooled time step is a token (no positional embedding).
* 6 pre-norm transformer blocks (width 40, 10 heads, MLP x4 with GELU, dropout 0.5). As in the
  release, attention scores are divided by sqrt(width) (not sqrt(head width)).
* Classifier: the release's fully connected head on the flattened tokens:
  tokens*40 -> 256 (ELU, dropout 0.5) -> 32 (ELU, dropout 0.3) -> n_classes. The release also
  builds a mean-pooling head that its forward never uses; we leave it out.

Our reading for other sampling rates: conv kernel and pooling lengths are rescaled by sfreq/250
(at 200 Hz and 4-s windows this gives the release's 61 tokens).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from eegkd_bench.api import InputSpec, ModelOutput, Option, UserError
from eegkd_plugins.students.common import Student, out_len, scaled, take_options

DEFAULTS = {"emb_size": Option(40, "token width"), "depth": Option(6, "transformer blocks"),
            "num_heads": Option(10, "attention heads"), "dropout": Option(0.5, "dropout rate")}


class ConformerAttention(nn.Module):
    """Multi-head self-attention of the release (separate q/k/v linears, scores / sqrt(width))."""

    def __init__(self, emb: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = math.sqrt(emb)
        self.keys = nn.Linear(emb, emb)
        self.queries = nn.Linear(emb, emb)
        self.values = nn.Linear(emb, emb)
        self.att_drop = nn.Dropout(dropout)
        self.projection = nn.Linear(emb, emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, e = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, n, self.heads, e // self.heads).transpose(1, 2)

        q, k, v = split(self.queries(x)), split(self.keys(x)), split(self.values(x))
        att = self.att_drop(torch.softmax(q @ k.transpose(-2, -1) / self.scale, dim=-1))
        return self.projection((att @ v).transpose(1, 2).reshape(b, n, e))


class ConformerBlock(nn.Module):
    """x + Dropout(MHA(LN(x))); x + Dropout(MLP(LN(x)))."""

    def __init__(self, emb: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(emb)
        self.attn = ConformerAttention(emb, heads, dropout)
        self.drop1 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(emb)
        self.mlp = nn.Sequential(nn.Linear(emb, 4 * emb), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * emb, emb))
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop1(self.attn(self.norm1(x)))
        return x + self.drop2(self.mlp(self.norm2(x)))


class EEGConformer(Student):
    """EEG Conformer; features ``patch_embed`` and ``layer_1 .. layer_6``, each (B, 40, tokens)."""

    name = "eegconformer"

    def __init__(self, spec: InputSpec, emb_size: int = 40, depth: int = 6, num_heads: int = 10,
                 dropout: float = 0.5) -> None:
        k = scaled(25, spec.sfreq, 250)
        pool, stride = scaled(75, spec.sfreq, 250), scaled(15, spec.sfreq, 250)
        super().__init__(spec, lambda t: out_len(out_len(t, k), pool, stride))
        self.kernel, self.pool_size, self.pool_stride = k, pool, stride
        self.feature_names = ("patch_embed",) + tuple(f"layer_{i + 1}" for i in range(depth))
        self.shallownet = nn.Sequential(
            nn.Conv2d(1, 40, (1, k)),
            nn.Conv2d(40, 40, (spec.n_channels, 1)),
            nn.BatchNorm2d(40),
            nn.ELU(),
            nn.AvgPool2d((1, pool), (1, stride)),
            nn.Dropout(dropout),
        )
        self.projection = nn.Conv2d(40, emb_size, 1)
        self.blocks = nn.ModuleList(ConformerBlock(emb_size, num_heads, dropout) for _ in range(depth))
        self.n_tokens = out_len(out_len(spec.n_samples, k), pool, stride)
        self.fc = nn.Sequential(
            nn.Linear(self.n_tokens * emb_size, 256), nn.ELU(), nn.Dropout(0.5),
            nn.Linear(256, 32), nn.ELU(), nn.Dropout(0.3),
            nn.Linear(32, spec.n_classes),
        )

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        """Logits, token maps (time last) and the flattened tokens fed to the classifier."""
        self.check_input(x)
        h = self.projection(self.shallownet(x.unsqueeze(1))).squeeze(2).transpose(1, 2)  # (B, tokens, E)
        feats = {"patch_embed": h.transpose(1, 2)}
        for name, block in zip(self.feature_names[1:], self.blocks):
            h = block(h)
            feats[name] = h.transpose(1, 2)
        emb = h.flatten(1)
        return ModelOutput(self.fc(emb), feats, emb)


def build(spec: InputSpec, **options: Any) -> EEGConformer:
    """Registry factory for ``eegconformer``."""
    opts = take_options("eegconformer", options, DEFAULTS)
    if opts["emb_size"] % opts["num_heads"]:
        raise UserError(f"eegconformer: emb_size={opts['emb_size']} is not divisible by "
                        f"num_heads={opts['num_heads']}; pick e.g. emb_size=40, num_heads=10")
    return EEGConformer(spec, **opts)
