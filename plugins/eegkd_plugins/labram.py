"""LaBraM teachers (Jiang et al., "Large Brain Model for Learning Generic Representations with
Tremendous EEG Data in BCI", ICLR 2024).

Our implementation of the fine-tuning model of the public release
(github.com/935963004/LaBraM, ``modeling_finetune.py``), with its module and
parameter names, so the backbone keys match the release:

* every channel's 1-s patch (200 samples) is embedded by a 3-layer temporal conv
  stack (``patch_embed``: 8 filters x 25 positions = 200 features),
* a [CLS] token is prepended; learned channel embeddings (``pos_embed``, 128
  electrode slots + CLS) and time embeddings (``time_embed``, up to 16 patches)
  are added,
* 12 pre-norm ViT blocks over all C*P tokens (width 200, 10 heads, MLP 800,
  LayerNorm on queries and keys, no qkv bias, layer scale ``gamma_1/2``
  initialised at 0.1, stochastic depth 0.1 while fine-tuning),
* the downstream head is the release's mean-pooling one: LayerNorm of the mean
  patch token (``fc_norm``), then a linear layer.

``layer_i`` is block i's output without the CLS token, reshaped to
``(B, C, P, D)`` (tokens are channel-major in the release).

Our reading where the release needs more than an input array: without
``ch_names`` channel ``i`` uses electrode slot ``i + 1`` (the release looks each
name up in its 10-20 list); ``labram-mini`` (4 blocks, width 64, 4 heads,
temporal stride 25 so that 8 filters x 8 positions = 64) is our small member of
the family. ``load_pretrained`` accepts the release's pretraining checkpoint
layout (``{"model": {"student.<key>": ...}}``) or a bare backbone state dict;
it has been checked against state dicts written in that layout, not against the
released file itself.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from eegkd_bench import hookimpl
from eegkd_bench.api import InputSpec, ModelOutput, Option, TeacherModel, UserError
from eegkd_plugins.cbramod import (PATCH_SIZE, _options, check_spec, check_state_dict, read_state_dict,
                                   to_patches)

MAX_PATCHES = 16  # rows of the release's time embedding
MAX_CHANNELS = 128  # electrode slots of the release's channel embedding
# Electrode order of the release's channel embedding (slot = index + 1; slot 0 is CLS).
STANDARD_1020 = (
    "FP1 FPZ FP2 AF9 AF7 AF5 AF3 AF1 AFZ AF2 AF4 AF6 AF8 AF10 F9 F7 F5 F3 F1 FZ F2 F4 F6 F8 F10 "
    "FT9 FT7 FC5 FC3 FC1 FCZ FC2 FC4 FC6 FT8 FT10 T9 T7 C5 C3 C1 CZ C2 C4 C6 T8 T10 "
    "TP9 TP7 CP5 CP3 CP1 CPZ CP2 CP4 CP6 TP8 TP10 P9 P7 P5 P3 P1 PZ P2 P4 P6 P8 P10 "
    "PO9 PO7 PO5 PO3 PO1 POZ PO2 PO4 PO6 PO8 PO10 O1 OZ O2 O9 CB1 CB2 IZ O10 T3 T5 T4 T6 M1 M2 A1 A2 "
    "CFC1 CFC2 CFC3 CFC4 CFC5 CFC6 CFC7 CFC8 CCP1 CCP2 CCP3 CCP4 CCP5 CCP6 CCP7 CCP8 "
    "T1 T2 FTT9H TTP7H TPP9H FTT10H TPP8H TPP10H "
    "FP1-F7 F7-T7 T7-P7 P7-O1 FP2-F8 F8-T8 T8-P8 P8-O2 FP1-F3 F3-C3 C3-P3 P3-O1 FP2-F4 F4-C4 C4-P4 P4-O2"
).split()
# Keys of the pretraining checkpoint that fine-tuning does not use.
PRETRAIN_ONLY = re.compile(r"^(mask_token|lm_head\..*|norm\..*|projection_head\..*|head\..*|fc_norm\..*|"
                           r".*relative_position_index)$")


@dataclass(frozen=True)
class LaBraMConfig:
    """Size of a LaBraM backbone."""

    embed_dim: int = 200
    depth: int = 12
    num_heads: int = 10
    mlp_ratio: float = 4.0
    out_chans: int = 8  # filters of the temporal conv stack
    temporal_stride: int = 8  # first conv: kernel 2*stride-1, padding stride-1
    qkv_bias: bool = False
    init_values: float = 0.1  # layer scale
    drop_path: float = 0.1


BASE = LaBraMConfig()
MINI = LaBraMConfig(embed_dim=64, depth=4, num_heads=4, temporal_stride=25)


class TemporalConv(nn.Module):
    """Per-channel patch embedding: three conv + GroupNorm + GELU stages, flattened position-major."""

    def __init__(self, out_chans: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, out_chans, kernel_size=(1, 2 * stride - 1), stride=(1, stride),
                               padding=(0, stride - 1))
        self.gelu1 = nn.GELU()
        self.norm1 = nn.GroupNorm(4, out_chans)
        self.conv2 = nn.Conv2d(out_chans, out_chans, kernel_size=(1, 3), padding=(0, 1))
        self.gelu2 = nn.GELU()
        self.norm2 = nn.GroupNorm(4, out_chans)
        self.conv3 = nn.Conv2d(out_chans, out_chans, kernel_size=(1, 3), padding=(0, 1))
        self.norm3 = nn.GroupNorm(4, out_chans)
        self.gelu3 = nn.GELU()

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """``(B, C, P, S)`` -> ``(B, C*P, D)`` tokens, channel-major."""
        b, c, p, s = patches.shape
        h = patches.reshape(b, 1, c * p, s)
        h = self.gelu1(self.norm1(self.conv1(h)))
        h = self.gelu2(self.norm2(self.conv2(h)))
        h = self.gelu3(self.norm3(self.conv3(h)))  # (B, filters, C*P, positions)
        return h.permute(0, 2, 3, 1).reshape(b, c * p, -1)  # position-major, as the release


class Attention(nn.Module):
    """Multi-head self-attention with LayerNorm on queries and keys."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        if qkv_bias:  # the release learns q and v biases only
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.q_norm = nn.LayerNorm(head_dim, eps=1e-6)
        self.k_norm = nn.LayerNorm(head_dim, eps=1e-6)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = self.q_norm(qkv[0]), self.k_norm(qkv[1]), qkv[2]
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head_dim), as the release
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """Two-layer GELU MLP."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero a sample's residual branch with probability ``p`` (rescaled)."""
    if p <= 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


class Block(nn.Module):
    """Pre-norm transformer block with layer scale and stochastic depth."""

    def __init__(self, cfg: LaBraMConfig, drop_prob: float) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = Attention(d, cfg.num_heads, cfg.qkv_bias)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d, int(d * cfg.mlp_ratio))
        self.gamma_1 = nn.Parameter(cfg.init_values * torch.ones(d))
        self.gamma_2 = nn.Parameter(cfg.init_values * torch.ones(d))
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + drop_path(self.gamma_1 * self.attn(self.norm1(x)), self.drop_prob, self.training)
        return x + drop_path(self.gamma_2 * self.mlp(self.norm2(x)), self.drop_prob, self.training)


class LaBraMBackbone(nn.Module):
    """Patch embedding, channel/time embeddings and transformer blocks (release key names)."""

    def __init__(self, cfg: LaBraMConfig = BASE) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        positions = (PATCH_SIZE - 1) // cfg.temporal_stride + 1
        if positions * cfg.out_chans != d:
            raise ValueError(f"out_chans x {positions} positions must equal embed_dim={d}")
        self.patch_embed = TemporalConv(cfg.out_chans, cfg.temporal_stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, MAX_CHANNELS + 1, d))
        self.time_embed = nn.Parameter(torch.zeros(1, MAX_PATCHES, d))
        rates = torch.linspace(0, cfg.drop_path, cfg.depth).tolist()
        self.blocks = nn.ModuleList(Block(cfg, r) for r in rates)
        self._init_like_release()

    def _init_like_release(self) -> None:
        for p in (self.pos_embed, self.time_embed, self.cls_token):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        with torch.no_grad():  # the release shrinks each residual output by sqrt(2 * depth index)
            for i, blk in enumerate(self.blocks, start=1):
                blk.attn.proj.weight.div_((2.0 * i) ** 0.5)
                blk.mlp.fc2.weight.div_((2.0 * i) ** 0.5)

    def forward(self, patches: torch.Tensor, channel_slots: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, P, 200)`` -> every block's output ``(B, 1 + C*P, D)`` (CLS first)."""
        b, c, p, _ = patches.shape
        tokens = self.patch_embed(patches)
        chan = self.pos_embed[0, channel_slots]  # (C, D)
        tokens = tokens + (chan[:, None, :] + self.time_embed[0, :p][None, :, :]).reshape(c * p, -1)
        cls = self.cls_token.expand(b, -1, -1) + self.pos_embed[:, :1]
        h = torch.cat((cls, tokens), dim=1)
        outs = []
        for blk in self.blocks:
            h = blk(h)
            outs.append(h)
        return outs


class MeanPoolHead(nn.Module):
    """The release's downstream head: LayerNorm of the mean patch token, then a linear layer."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.out = nn.Linear(dim, n_classes)
        nn.init.trunc_normal_(self.out.weight, std=0.02)
        nn.init.zeros_(self.out.bias)
        with torch.no_grad():
            self.out.weight.mul_(0.001)  # the release's init_scale

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.fc_norm(tokens.mean(dim=1))
        return self.out(emb), emb


class LaBraMTeacher(TeacherModel):
    """LaBraM backbone + mean-pooling head; ``layer_i`` are block outputs as ``(B, C, P, D)``."""

    def __init__(self, spec: InputSpec, cfg: LaBraMConfig = BASE, *, ch_names: list[str] | None = None,
                 name: str = "labram") -> None:
        super().__init__()
        self.name = name
        check_spec(name, spec, max_patches=MAX_PATCHES)
        self.spec = spec
        self.cfg = cfg
        self.n_patches = spec.n_samples // PATCH_SIZE
        self.register_buffer("channel_slots", channel_slots(name, spec.n_channels, ch_names), persistent=False)
        self.backbone = LaBraMBackbone(cfg)
        self.head = MeanPoolHead(cfg.embed_dim, spec.n_classes)
        self.feature_names = tuple(f"layer_{i + 1}" for i in range(cfg.depth))

    def forward_features(self, x: torch.Tensor, return_features: bool = True) -> ModelOutput:
        """Logits, ``layer_1 .. layer_L`` of shape ``(B, C, P, D)`` and the pooled embedding."""
        patches = to_patches(self.name, x, self.spec)
        b, c, p, _ = patches.shape
        outs = self.backbone(patches, self.channel_slots)
        logits, emb = self.head(outs[-1][:, 1:])
        feats = {}
        if return_features:
            feats = {n: h[:, 1:].unflatten(1, (c, p)) for n, h in zip(self.feature_names, outs)}
        return ModelOutput(logits=logits, features=feats, embedding=emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x, return_features=False).logits

    def load_pretrained(self, path: str) -> str:
        """Load backbone weights in the release's layout (strict on the backbone); return ``"sha256:<hex>"``."""
        # Release checkpoints may carry the training arguments next to the weights.
        with torch.serialization.safe_globals([argparse.Namespace]):
            state, digest = read_state_dict(self.name, path)
        for prefix in ("module.", "student."):
            if any(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        state = {k: v for k, v in state.items() if not PRETRAIN_ONLY.match(k)}
        own = self.backbone.state_dict()
        check_state_dict(self.name, path, state, own, _describe_labram(state, self.cfg))
        self.backbone.load_state_dict(state, strict=True)
        self.init_source = f"sha256:{digest}"
        return self.init_source


def channel_slots(name: str, n_channels: int, ch_names: list[str] | None) -> torch.Tensor:
    """Rows of ``pos_embed`` used by each channel: the release's 10-20 slots, or 1..C without names."""
    if ch_names is None:
        if n_channels > MAX_CHANNELS:
            raise UserError(f"{name}: at most {MAX_CHANNELS} channels are supported, got {n_channels}; "
                            f"select fewer channels")
        return torch.arange(1, n_channels + 1)
    if len(ch_names) != n_channels:
        raise UserError(f"{name}: ch_names has {len(ch_names)} names for {n_channels} channels; pass one name "
                        f"per channel")
    unknown = [c for c in ch_names if c.upper() not in STANDARD_1020]
    if unknown:
        raise UserError(f"{name}: channel(s) {unknown[:5]} are not in LaBraM's 10-20 list; rename them "
                        f"(e.g. 'T7', 'FP1') or leave ch_names out")
    return torch.tensor([STANDARD_1020.index(c.upper()) + 1 for c in ch_names])


def _describe_labram(state: Mapping[str, torch.Tensor], cfg: LaBraMConfig) -> str:
    """A guess at what a non-matching checkpoint is, for the error message."""
    if any(k.startswith(("patch_embedding.", "encoder.layers.")) for k in state):
        return "a CBraMod checkpoint: use the cbramod teacher"
    cls = state.get("cls_token")
    if cls is not None and cls.ndim == 3:
        depth = len({int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))})
        return (f"a LaBraM of another size (embed_dim {cls.shape[-1]}, {depth} blocks; this model has "
                f"{cfg.embed_dim}, {cfg.depth}) or with qkv bias: use the teacher of that size")
    return "a checkpoint for another architecture; expected LaBraM's labram-base.pth"


OPTIONS = {"ch_names": Option(None, "10-20 names of the input channels, in order (default: electrode slots "
                                   "1..n)", type=list)}


def labram(spec: InputSpec, checkpoint: str | None = None, **options: Any) -> LaBraMTeacher:
    """LaBraM-Base (12 blocks, width 200, ~5.8M params)."""
    opts = _options("labram", options, OPTIONS)
    model = LaBraMTeacher(spec, BASE, ch_names=opts["ch_names"], name="labram")
    if checkpoint:
        model.load_pretrained(checkpoint)
    return model


def labram_mini(spec: InputSpec, checkpoint: str | None = None, **options: Any) -> LaBraMTeacher:
    """A small LaBraM (4 blocks, width 64)."""
    opts = _options("labram-mini", options, OPTIONS)
    model = LaBraMTeacher(spec, MINI, ch_names=opts["ch_names"], name="labram-mini")
    if checkpoint:
        model.load_pretrained(checkpoint)
    return model


@hookimpl
def eegkd_register_teachers(register: Any) -> None:
    register("labram", labram, description="LaBraM-Base (ICLR 2024): per-channel patch tokens, 12 ViT blocks, "
             "width 200, ~5.8M params", family="labram", layers=12, options=OPTIONS)
    register("labram-mini", labram_mini, description="small LaBraM (our reading): 4 blocks, width 64",
             family="labram", layers=4, options=OPTIONS)
