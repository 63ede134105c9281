"""EEG MiC: the project-then-compress student of DLink, as a wrapper over any student backbone.

``backbone final map (B, *, T')`` -> **projection** ``Pi`` into the teacher layout
``(B, C, P, D)`` (this is what mimics the routed teacher target) -> **structured
compression** (channel mixing ``C -> c``, width ``D -> d``, strided depthwise temporal
reduction over the patches) -> GELU -> flatten -> **one linear classifier**.

Deployed: backbone (without its own, now unused, classification head) + ``Pi`` +
compressor + classifier. Our reading of the paper's "project-then-compress" with the
size constraint of matched compact students, so ``Pi`` is factorized instead of a
dense ``F*T' -> C*P*D`` map:

* time: the backbone map is resampled to ``P`` patches (average pooling);
* ``K`` basis maps ``G_k: F -> r`` (one 1x1 convolution), mixed into the ``C`` teacher
  channels by a learned ``C x K`` matrix (a rank-``K`` channel expansion), and a shared
  ``r -> D`` linear expansion of the width.

Numerics (measured on EEGNet, whose final map is small and off-centre: std ~0.2, ELU mean ~0.15):
``Pi`` starts with a parameter-free batch norm over the backbone's features and has no biases,
so what it projects is the backbone's signal and not an offset; the compressor's mixed code
passes a batch norm before the temporal convolution, so the chain of five linear maps does
not start with a near-zero signal (a plateau where the cross-entropy stays at chance for
epochs, depending on the seed). Both batch norms fold into the neighbouring linear maps at
inference (ONNX exports them as BatchNormalization).

Parameters of ``Pi``: ``K*r*F + C*K + r*D``; of the compressor:
``C*c + D*d + 2*c*d + c*d*(k+1) + c*d*P'*n_classes + n_classes`` (``2*c*d``: the code's batch-norm
scale and shift) with ``k = min(stride, P)`` and ``P' = P // k``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eegkd_bench.api import EEGModel, InputSpec, ModelOutput
from eegkd_bench.adapters import channels_time, resample_time


class TeacherLayoutProjector(nn.Module):
    """``Pi``: student map ``(B, *, T')`` -> ``(B, C, P, D)`` through ``K`` rank-``r`` basis maps."""

    def __init__(self, in_channels: int, layout: tuple[int, int, int], rank: int = 16, basis: int = 4) -> None:
        super().__init__()
        self.n_channels, self.n_patches, self.width = layout
        self.rank, self.n_basis = rank, basis
        # each backbone feature standardised over batch and time (no parameters): backbones hand over
        # maps of any scale and offset, and a bias-free projection then maps signal, not offset
        self.norm = nn.BatchNorm1d(in_channels, affine=False)
        self.basis = nn.Conv1d(in_channels, basis * rank, kernel_size=1, bias=False)
        self.channel_mix = nn.Parameter(torch.randn(self.n_channels, basis) / basis ** 0.5)
        self.expand = nn.Linear(rank, self.width, bias=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = self.norm(resample_time(channels_time(f), self.n_patches))  # (B, F, P)
        z = self.basis(x).reshape(x.shape[0], self.n_basis, self.rank, self.n_patches)
        z = torch.einsum("ck,bkrp->bcpr", self.channel_mix, z)  # (B, C, P, r)
        return self.expand(z)


class StructuredCompressor(nn.Module):
    """``(B, C, P, D)`` -> logits: mix ``C -> c``, ``D -> d``, strided depthwise conv over ``P``, GELU, linear."""

    def __init__(self, layout: tuple[int, int, int], n_classes: int, channels: int = 4, width: int = 8,
                 stride: int = 2) -> None:
        super().__init__()
        n_ch, n_patches, dim = layout
        self.c, self.d = channels, width
        # tokens enter in the teacher's normalised layout (the mimic target is layer-normalised too);
        # no affine parameters: the mixes that follow are linear and would absorb them
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.channel_mix = nn.Linear(n_ch, channels, bias=False)
        self.width_mix = nn.Linear(dim, width, bias=False)
        # the mixed code standardised before the temporal reduction: without it the stack of freshly
        # initialised linear maps (Pi, channel mix, width mix, temporal) starts from a near-zero signal
        # and cross-entropy stays near chance for epochs on some seeds (docs/distillers.md)
        self.code_norm = nn.BatchNorm1d(channels * width)
        k = max(1, min(stride, n_patches))
        self.temporal = nn.Conv1d(channels * width, channels * width, kernel_size=k, stride=k,
                                  groups=channels * width)
        nn.init.zeros_(self.temporal.bias)  # PyTorch's default (+-1/sqrt(k)) would start in GELU's flat region
        self.n_out = (n_patches - k) // k + 1
        self.act = nn.GELU()
        self.classifier = nn.Linear(channels * width * self.n_out, n_classes)

    def compress(self, h: torch.Tensor) -> torch.Tensor:
        """The flattened compressed code ``(B, c*d*P')`` fed to the classifier."""
        b, _, p, _ = h.shape
        z = self.channel_mix(self.norm(h).permute(0, 2, 3, 1))  # (B, P, D, c)
        z = self.width_mix(z.transpose(2, 3))  # (B, P, c, d)
        z = self.code_norm(z.permute(0, 2, 3, 1).reshape(b, self.c * self.d, p))
        return self.act(self.temporal(z)).flatten(1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.compress(h))


def _unused_head_modules(backbone: EEGModel, spec: InputSpec, final: str) -> list[str]:
    """Names of the largest submodules none of whose parameters reach the final feature map."""
    # frozen parameters (fixed filter banks) count as used: only what training moves can be told apart
    params = {n: p for n, p in backbone.named_parameters() if p.requires_grad}
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.enable_grad():
            out = backbone.forward_features(torch.zeros(2, spec.n_channels, spec.n_samples))
            final_map = out.features[final]
            if not params or not final_map.requires_grad:
                return []
            grads = torch.autograd.grad(final_map.sum(), list(params.values()), allow_unused=True)
    finally:
        backbone.train(was_training)
    unused = {name for name, g in zip(params, grads) if g is None}
    found: list[str] = []
    for name, module in backbone.named_modules():
        if not name or any(name.startswith(f + ".") for f in found):
            continue
        own = [f"{name}.{p}" for p, _ in module.named_parameters()]
        if own and all(p in unused for p in own):
            found.append(name)
    return found


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, attr, module)


def drop_unused_head(backbone: EEGModel, spec: InputSpec, final: str) -> list[str]:
    """Replace the backbone's unused classification head by ``nn.Identity`` (MiC brings its own).

    Kept only if the backbone still runs and yields the same final map afterwards; otherwise
    the head stays (and is counted). Returns the names of the dropped modules.
    """
    names = _unused_head_modules(backbone, spec, final)
    if not names:
        return []
    x = torch.randn(2, spec.n_channels, spec.n_samples, generator=torch.Generator().manual_seed(0))
    was_training = backbone.training
    backbone.eval()
    originals = {name: backbone.get_submodule(name) for name in names}
    try:
        with torch.no_grad():
            before = backbone.forward_features(x).features[final]
            for name in names:
                _set_submodule(backbone, name, nn.Identity())
            after = backbone.forward_features(x).features[final]
        if after.shape == before.shape and torch.allclose(after, before):
            return names
    except Exception:  # an unusual backbone whose forward needs its head: keep the head
        pass
    finally:
        backbone.train(was_training)
    for name, module in originals.items():
        _set_submodule(backbone, name, module)
    return []


class MiCStudent(EEGModel):
    """Project-then-compress wrapper: backbone -> ``Pi`` (teacher layout) -> compressor -> linear classifier."""

    feature_names = ()  # a deployed end model: nothing distils from it

    def __init__(self, backbone: EEGModel, spec: InputSpec, final: str, in_channels: int,
                 layout: tuple[int, int, int], *, rank: int = 16, basis: int = 4, channels: int = 4,
                 width: int = 8, stride: int = 2) -> None:
        super().__init__()
        self.final = final
        self.dropped = drop_unused_head(backbone, spec, final)
        self.backbone = backbone
        self.projector = TeacherLayoutProjector(in_channels, layout, rank, basis)
        self.compressor = StructuredCompressor(layout, spec.n_classes, channels, width, stride)

    def forward_mimic(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, Pi(F_s))`` where ``Pi(F_s)`` has the teacher layout ``(B, C, P, D)``."""
        projected = self.projector(self.backbone.forward_features(x).features[self.final])
        return self.compressor(projected), projected

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        projected = self.projector(self.backbone.forward_features(x).features[self.final])
        code = self.compressor.compress(projected)
        return ModelOutput(self.compressor.classifier(code), {}, code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_mimic(x)[0]

    def parts(self) -> dict[str, Any]:
        """Parameter count of each deployed part (JSON-able)."""
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return {"backbone": count(self.backbone), "projector": count(self.projector),
                "compressor": count(self.compressor), "dropped_backbone_modules": list(self.dropped)}
