"""CBraMod teachers (Wang et al., "CBraMod: A Criss-Cross Brain Foundation Model for EEG Decoding", ICLR 2025).

The backbone follows the public release (github.com/wjq-learning/CBraMod,
``models/cbramod.py`` and ``models/criss_cross_transformer.py``): module and
parameter names and shapes match it, so the official
``pretrained_weights/pretrained_weights.pth`` loads with ``strict=True`` into
:class:`CBraModBackbone`.

* Input ``(B, C, T)`` at 200 Hz is cut into 1-s patches ``(B, C, P, 200)``.
* Patch embedding: a 3-layer temporal conv stack (25 filters x 8 positions =
  200 features) plus a linear projection of the patch's rfft magnitude
  (101 bins), plus a depthwise (19 x 7) conv over (channels, patches) as the
  positional encoding.
* 12 pre-norm criss-cross layers: the first half of the width attends across
  channels (spatial), the second half across patches (temporal), 4 heads each.
* ``proj_out`` is the pretraining reconstruction head; downstream code
  discards it, so our teachers keep it only for checkpoint compatibility,
  frozen and never called.

Downstream heads (``models/model_for_*.py``): ``flatten`` is the official
default ``all_patch_reps`` head (flatten every patch, C*P*D -> P*D -> D -> n
with ELU and dropout), ``avgpool`` is the official ``avgpooling_patch_reps``
(mean over channels and patches, D -> n). ``chanpool`` is our reading, not in the release:
mean over patches only, then a dropout and one linear layer over the flattened channels x width
(C*D -> n). Averaging over channels as ``avgpool`` does erases which electrode carries a rhythm
(lateralised mu desynchronisation, frontal alpha asymmetry), the information the simulated
paradigms hide their labels in; ``chanpool`` keeps it at C*D*n head parameters.

``cbramod-mini`` is our reading of a small member of the same family: the same
layer types at d_model 64, feed-forward 128, 4 heads (2 per branch), 4 layers,
with 8 conv filters x 8 positions in the patch embedding.

``cbramod-sim`` keeps CBraMod's full width (d_model 200, feed-forward 800, 8
heads, 25 x 8 conv features) in 4 layers with the ``chanpool`` head: the teacher of the
simulated benchmarks, over 10x the FLOPs of their EEGNet student. It registers the
checkpoints ``sim-pretrained`` (``checkpoints/cbramod-sim.pt``): this backbone
pretrained by masked-patch reconstruction on simulated EEG only, and
``sim-ssl+sup-pretrained`` (``checkpoints/cbramod-sim-sup.pt``): the same, then
trained with labels on thousands of other simulated subjects of the four paradigms.
Neither is an official CBraMod release.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from eegkd_bench import hookimpl
from eegkd_bench.api import InputSpec, ModelOutput, Option, TeacherModel, UserError, take_options

PATCH_SIZE = 200  # samples per patch: 1 s at the 200 Hz of the CBraMod recipe
SFREQ = 200.0
HEADS = ("flatten", "avgpool", "chanpool")
WEIGHTS_URL = "https://huggingface.co/weighting666/CBraMod"
#: cbramod-sim pretrained by ``eegkd-bench pretrain`` on the simulated corpus (command and loss curve in
#: the .json sidecar beside it; docs/pretraining.md). Shipped as package data.
SIM_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "cbramod-sim.pt"
#: ``sim-ssl+sup-pretrained``: SIM_CHECKPOINT, then a supervised stage on thousands of other labelled
#: simulated subjects (``sim-pretrain-sup``); the default teacher of the simulated presets
SIM_SUP_CHECKPOINT = SIM_CHECKPOINT.with_name("cbramod-sim-sup.pt")


@dataclass(frozen=True)
class CBraModConfig:
    """Size of a CBraMod backbone."""

    d_model: int = 200
    dim_feedforward: int = 800
    n_layer: int = 12
    nhead: int = 8
    conv_channels: int = 25  # filters of the temporal conv stack; x 8 positions = d_model
    gn_groups: int = 5
    out_dim: int = 200  # width of the (unused downstream) reconstruction head
    dropout: float = 0.1


FULL = CBraModConfig()
MINI = CBraModConfig(d_model=64, dim_feedforward=128, n_layer=4, nhead=4, conv_channels=8, gn_groups=2, out_dim=200)
#: Full CBraMod width in 4 layers: the default teacher of the simulated benchmarks (``cbramod-sim``).
SIM = CBraModConfig(d_model=200, dim_feedforward=800, n_layer=4, nhead=8, conv_channels=25, gn_groups=5, out_dim=200)


class PatchEmbedding(nn.Module):
    """Temporal-conv + spectral embedding of each 1-s patch, plus a conv positional encoding."""

    def __init__(self, cfg: CBraModConfig, patch_size: int = PATCH_SIZE) -> None:
        super().__init__()
        positions = (patch_size + 2 * 24 - 49) // 25 + 1  # output length of the strided first conv
        if cfg.conv_channels * positions != cfg.d_model:
            raise ValueError(f"conv_channels x {positions} positions must equal d_model={cfg.d_model}")
        self.d_model = cfg.d_model
        d, c, g = cfg.d_model, cfg.conv_channels, cfg.gn_groups
        self.positional_encoding = nn.Sequential(
            nn.Conv2d(d, d, kernel_size=(19, 7), stride=(1, 1), padding=(9, 3), groups=d),
        )
        # Used only by masked pretraining; kept so the official state dict loads strictly.
        self.mask_encoding = nn.Parameter(torch.zeros(patch_size), requires_grad=False)
        self.proj_in = nn.Sequential(
            nn.Conv2d(1, c, kernel_size=(1, 49), stride=(1, 25), padding=(0, 24)),
            nn.GroupNorm(g, c),
            nn.GELU(),
            nn.Conv2d(c, c, kernel_size=(1, 3), stride=(1, 1), padding=(0, 1)),
            nn.GroupNorm(g, c),
            nn.GELU(),
            nn.Conv2d(c, c, kernel_size=(1, 3), stride=(1, 1), padding=(0, 1)),
            nn.GroupNorm(g, c),
            nn.GELU(),
        )
        self.spectral_proj = nn.Sequential(nn.Linear(patch_size // 2 + 1, d), nn.Dropout(cfg.dropout))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """``(B, C, P, S)`` patches -> ``(B, C, P, D)`` embeddings."""
        b, c, p, s = patches.shape
        temporal = self.proj_in(patches.reshape(b, 1, c * p, s))  # (B, filters, C*P, positions)
        # filter-major flattening of (filters, positions), as in the release
        temporal = temporal.permute(0, 2, 1, 3).reshape(b, c, p, self.d_model)
        spectrum = torch.fft.rfft(patches, dim=-1, norm="forward").abs()
        emb = temporal + self.spectral_proj(spectrum)
        return emb + self.positional_encoding(emb.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class CrissCrossLayer(nn.Module):
    """Pre-norm layer: half the width attends over channels, half over patches, then a GELU MLP."""

    def __init__(self, cfg: CBraModConfig) -> None:
        super().__init__()
        half = cfg.d_model // 2
        self.self_attn_s = nn.MultiheadAttention(half, cfg.nhead // 2, dropout=cfg.dropout, batch_first=True)
        self.self_attn_t = nn.MultiheadAttention(half, cfg.nhead // 2, dropout=cfg.dropout, batch_first=True)
        self.linear1 = nn.Linear(cfg.d_model, cfg.dim_feedforward)
        self.dropout = nn.Dropout(cfg.dropout)
        self.linear2 = nn.Linear(cfg.dim_feedforward, cfg.d_model)
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=1e-5)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._criss_cross(self.norm1(x))
        return x + self.dropout2(self.linear2(self.dropout(F.gelu(self.linear1(self.norm2(x))))))

    def _criss_cross(self, h: torch.Tensor) -> torch.Tensor:
        b, c, p, d = h.shape
        half = d // 2
        spatial = h[..., :half].transpose(1, 2).reshape(b * p, c, half)  # sequences over channels
        temporal = h[..., half:].reshape(b * c, p, half)  # sequences over patches
        s = self.self_attn_s(spatial, spatial, spatial, need_weights=False)[0]
        t = self.self_attn_t(temporal, temporal, temporal, need_weights=False)[0]
        s = s.reshape(b, p, c, half).transpose(1, 2)
        t = t.reshape(b, c, p, half)
        return self.dropout1(torch.cat((s, t), dim=-1))


class CrissCrossEncoder(nn.Module):
    """A stack of criss-cross layers (``encoder.layers.N`` in the official state dict)."""

    def __init__(self, cfg: CBraModConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CrissCrossLayer(cfg) for _ in range(cfg.n_layer))


class CBraModBackbone(nn.Module):
    """The pretrained part of CBraMod; its state dict has the official keys and shapes."""

    def __init__(self, cfg: CBraModConfig = FULL) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embedding = PatchEmbedding(cfg)
        self.encoder = CrissCrossEncoder(cfg)
        self.proj_out = nn.Sequential(nn.Linear(cfg.d_model, cfg.out_dim))
        self.apply(_official_init)
        self.proj_out.requires_grad_(False)  # pretraining-only head: never trained downstream

    def forward(self, patches: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, P, 200)`` -> the output of every layer, each ``(B, C, P, D)``."""
        h = self.patch_embedding(patches)
        outs = []
        for layer in self.encoder.layers:
            h = layer(h)
            outs.append(h)
        return outs


def _official_init(m: nn.Module) -> None:
    # The release initialises every Linear (attention out_proj included) this way.
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class FlattenHead(nn.Module):
    """Official ``all_patch_reps`` head: C*P*D -> P*D -> D -> n_classes."""

    def __init__(self, n_channels: int, n_patches: int, d_model: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(n_channels * n_patches * d_model, n_patches * d_model),
            nn.ELU(),
            nn.Dropout(dropout),
            nn.Linear(n_patches * d_model, d_model),
            nn.ELU(),
            nn.Dropout(dropout),
        )
        self.out = nn.Linear(d_model, n_classes)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.mlp(h.flatten(1))
        return self.out(emb), emb


class AvgPoolHead(nn.Module):
    """Official ``avgpooling_patch_reps`` head: mean over channels and patches, D -> n_classes."""

    def __init__(self, d_model: int, n_classes: int) -> None:
        super().__init__()
        self.out = nn.Linear(d_model, n_classes)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = h.mean(dim=(1, 2))
        return self.out(emb), emb


class ChanPoolHead(nn.Module):
    """Our reading: mean over patches, keep channels, C*D -> n_classes."""

    def __init__(self, n_channels: int, d_model: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(n_channels * d_model, n_classes)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = h.mean(dim=2).flatten(1)
        return self.out(self.dropout(emb)), emb


class CBraModTeacher(TeacherModel):
    """CBraMod backbone + downstream head; ``layer_i`` taps are the criss-cross layer outputs."""

    def __init__(self, spec: InputSpec, cfg: CBraModConfig = FULL, *, head: str = "flatten",
                 dropout: float = 0.1, name: str = "cbramod") -> None:
        super().__init__()
        self.name = name
        check_spec(name, spec, max_patches=None)
        if head not in HEADS:
            raise UserError(f"{name}: unknown head {head!r}; expected one of {', '.join(HEADS)}")
        if not 0.0 <= float(dropout) < 1.0:
            raise UserError(f"{name}: dropout={dropout!r} is outside [0, 1); pass e.g. dropout=0.1")
        self.spec = spec
        self.cfg = cfg
        self.head_kind = head
        self.n_patches = spec.n_samples // PATCH_SIZE
        self.backbone = CBraModBackbone(cfg)
        if head == "flatten":
            self.head: nn.Module = FlattenHead(spec.n_channels, self.n_patches, cfg.d_model, spec.n_classes,
                                               float(dropout))
        elif head == "chanpool":
            self.head = ChanPoolHead(spec.n_channels, cfg.d_model, spec.n_classes, float(dropout))
        else:
            self.head = AvgPoolHead(cfg.d_model, spec.n_classes)
        # The classifier starts at zero: fine-tuning begins from uniform predictions (loss ln K) rather
        # than from logits several times that, which cost a short fine-tuning its first epoch (measured
        # on the simulated benchmarks; the backbone's init is the release's).
        nn.init.zeros_(self.head.out.weight)
        nn.init.zeros_(self.head.out.bias)
        self.feature_names = tuple(f"layer_{i + 1}" for i in range(cfg.n_layer))

    def forward_features(self, x: torch.Tensor, return_features: bool = True) -> ModelOutput:
        """Logits, ``layer_1 .. layer_L`` of shape ``(B, C, P, D)`` and the head's input embedding."""
        patches = to_patches(self.name, x, self.spec)
        layers = self.backbone(patches)
        logits, emb = self.head(layers[-1])
        feats = {n: h for n, h in zip(self.feature_names, layers)} if return_features else {}
        return ModelOutput(logits=logits, features=feats, embedding=emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x, return_features=False).logits

    # -- masked-patch pretraining, as in the release: a masked patch is replaced by ``mask_encoding``
    # (frozen zeros) before the patch embedding, and ``proj_out`` maps each token back to its 200 samples
    patch_size = PATCH_SIZE

    def patch_tokens(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Last criss-cross layer ``(B, C, P, D)`` with the masked patches hidden; any channel and patch count."""
        b, c, t = x.shape
        patches = x.reshape(b, c, t // PATCH_SIZE, PATCH_SIZE)
        patches = torch.where(mask[..., None], self.backbone.patch_embedding.mask_encoding, patches)
        return self.backbone(patches)[-1]

    def reconstruct_patches(self, tokens: torch.Tensor) -> torch.Tensor:
        """The pretraining head ``proj_out``: tokens ``(B, C, P, D)`` -> patches ``(B, C, P, 200)``."""
        return self.backbone.proj_out(tokens)

    def pretraining_parameters(self) -> list[nn.Parameter]:
        """Every backbone parameter but the frozen mask encoding (the reconstruction head included).

        The reconstruction head starts at zero (the release initialises it like every Linear): its
        first predictions are then the all-zero patch (normalised MSE 1) instead of outputs tens of
        times the signal's power, which cost the first few hundred steps of a short run.
        """
        head = self.backbone.proj_out[0]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.zero_()
        self.backbone.proj_out.requires_grad_(True)
        return [p for n, p in self.backbone.named_parameters() if n != "patch_embedding.mask_encoding"]

    def load_pretrained(self, path: str) -> str:
        """Load the official backbone weights (strictly); return ``"sha256:<hex>"``."""
        state, digest = read_state_dict(self.name, path)
        state = _strip_prefix(state, "module.")
        if any(k.startswith("backbone.") for k in state):  # a whole downstream model: take its backbone
            state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        own = self.backbone.state_dict()
        if not any(k.startswith("proj_out.") for k in state):
            # downstream checkpoints drop the reconstruction head; it is never used here
            state = {**state, **{k: v for k, v in own.items() if k.startswith("proj_out.")}}
        check_state_dict(self.name, path, state, own, _describe_cbramod(state, self.cfg))
        self.backbone.load_state_dict(state, strict=True)
        self.init_source = f"sha256:{digest}"
        return self.init_source


# ------------------------------------------------------------------ shared helpers
def check_spec(name: str, spec: InputSpec, *, max_patches: int | None) -> None:
    """Raise UserError when a patch-based FM cannot take this input."""
    if abs(float(spec.sfreq) - SFREQ) > 1e-6:
        raise UserError(f"{name}: expects {SFREQ:g} Hz input (1-s patches of {PATCH_SIZE} samples), got "
                        f"sfreq={spec.sfreq:g}; resample the dataset to {SFREQ:g} Hz")
    if spec.n_samples < PATCH_SIZE or spec.n_samples % PATCH_SIZE:
        raise UserError(f"{name}: window length must be a positive multiple of {PATCH_SIZE} samples, "
                        f"got {spec.n_samples}; crop or pad windows to whole seconds")
    if max_patches is not None and spec.n_samples // PATCH_SIZE > max_patches:
        raise UserError(f"{name}: at most {max_patches} patches ({max_patches * PATCH_SIZE} samples) are "
                        f"supported, got {spec.n_samples} samples; use shorter windows")
    if spec.n_channels < 1 or spec.n_classes < 2:
        raise UserError(f"{name}: needs >= 1 channel and >= 2 classes, got {spec.n_channels} channels and "
                        f"{spec.n_classes} classes")


def to_patches(name: str, x: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """Validate ``(B, C, T)`` input and view it as ``(B, C, T/200, 200)`` patches (no copy)."""
    if x.ndim != 3:
        raise UserError(f"{name}: expected input (batch, channels, samples), got shape {tuple(x.shape)}")
    _, c, t = x.shape
    if c != spec.n_channels:
        raise UserError(f"{name}: built for {spec.n_channels} channels, got {c}; build the teacher for this "
                        f"dataset's input spec")
    if t % PATCH_SIZE or t != spec.n_samples:
        raise UserError(f"{name}: built for {spec.n_samples} samples (a multiple of {PATCH_SIZE}), got {t}; "
                        f"build the teacher for this dataset's input spec")
    # A data-dependent check has no place in an exported graph; the deployment input contract says "no NaN".
    if not torch.compiler.is_exporting() and torch.isnan(x).any():
        raise UserError(f"{name}: input contains NaN values; clean or interpolate the data before training")
    return x.reshape(x.shape[0], c, t // PATCH_SIZE, PATCH_SIZE)


def file_digest(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(name: str, path: str) -> tuple[dict[str, torch.Tensor], str]:
    """Read a checkpoint safely (``weights_only``) and unwrap common containers."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{name}: checkpoint {str(p)!r} not found; pass the path of an existing .pth file")
    digest = file_digest(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is the user's to fix
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{name}: could not read {str(p)!r} as a PyTorch state dict ({first[:120]}); "
                        f"expected a .pth file saved with torch.save(state_dict)") from None
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{name}: {str(p)!r} holds a {type(obj).__name__}, not a state dict of tensors; "
                        f"expected a .pth file saved with torch.save(model.state_dict())")
    return dict(obj), digest


def check_state_dict(name: str, path: str, state: Mapping[str, torch.Tensor],
                     own: Mapping[str, torch.Tensor], looks_like: str) -> None:
    """Raise one UserError line listing missing/unexpected keys and shape mismatches."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape file vs model", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    raise UserError(f"{name}: checkpoint {path!r} does not fit this model: {'; '.join(parts)}; "
                    f"it looks like {looks_like}")


def _strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def _describe_cbramod(state: Mapping[str, torch.Tensor], cfg: CBraModConfig) -> str:
    """A guess at what a non-matching checkpoint is, for the error message."""
    w = state.get("patch_embedding.spectral_proj.0.weight")
    if w is not None and w.ndim == 2:
        layers = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
        return (f"a CBraMod of another size (d_model {w.shape[0]}, {len(layers)} layers; this model has "
                f"d_model {cfg.d_model}, {cfg.n_layer} layers): use the teacher of that size")
    if any(k.startswith(("blocks.", "student.")) for k in state):
        return "a LaBraM/ViT-style checkpoint: use the labram teacher"
    return (f"a checkpoint for another architecture; expected CBraMod's pretrained_weights.pth from "
            f"{WEIGHTS_URL}")


def _options(name: str, options: dict[str, Any], declared: dict[str, Option]) -> dict[str, Any]:
    """``options`` over the declared defaults, each checked like ``--set`` (name, type, choices, range)."""
    return take_options(name, options, declared, "teacher")


def _head_options(head: str) -> dict[str, Option]:
    return {"head": Option(head, "downstream classification head: flatten (release default), avgpool (mean over "
                                 "channels and patches), chanpool (mean over patches, channels kept)", choices=HEADS),
            "dropout": Option(0.1, "dropout of the classification head")}


OPTIONS = {"cbramod": _head_options("flatten"), "cbramod-mini": _head_options("avgpool"),
           "cbramod-sim": _head_options("chanpool")}


def _build(name: str, cfg: CBraModConfig, spec: InputSpec, checkpoint: str | None,
           options: dict[str, Any]) -> CBraModTeacher:
    opts = _options(name, options, OPTIONS[name])
    model = CBraModTeacher(spec, cfg, head=opts["head"], dropout=opts["dropout"], name=name)
    if checkpoint:
        model.load_pretrained(checkpoint)
    return model


def cbramod(spec: InputSpec, checkpoint: str | None = None, **options: Any) -> CBraModTeacher:
    """Full CBraMod (12 layers, d_model 200) with the official flatten head by default."""
    return _build("cbramod", FULL, spec, checkpoint, options)


def cbramod_mini(spec: InputSpec, checkpoint: str | None = None, **options: Any) -> CBraModTeacher:
    """A small CBraMod (4 layers, d_model 64) with the average-pooling head by default."""
    return _build("cbramod-mini", MINI, spec, checkpoint, options)


def cbramod_sim(spec: InputSpec, checkpoint: str | None = None, **options: Any) -> CBraModTeacher:
    """CBraMod at full width in 4 layers (d_model 200, feed-forward 800) with the channel-keeping head."""
    return _build("cbramod-sim", SIM, spec, checkpoint, options)


@hookimpl
def eegkd_register_teachers(register: Any) -> None:
    register("cbramod", cbramod, description="CBraMod (ICLR 2025): 12 criss-cross layers, d_model 200, ~4.9M "
             "backbone params; loads the official pretrained_weights.pth", family="cbramod", layers=12,
             pretrained_url=WEIGHTS_URL, options=OPTIONS["cbramod"])
    register("cbramod-mini", cbramod_mini, description="small CBraMod (our reading): 4 criss-cross layers, "
             "d_model 64, average-pooling head; trains in seconds on a CPU", family="cbramod", layers=4,
             options=OPTIONS["cbramod-mini"])
    register("cbramod-sim", cbramod_sim, description="CBraMod at full width in 4 layers (d_model 200, ~1.7M "
             "backbone params), channel-keeping head (chanpool); the simulated benchmarks' teacher, with checkpoints "
             "pretrained on simulated EEG: sim-pretrained (self-supervised) and sim-ssl+sup-pretrained (then "
             "supervised on thousands of other simulated subjects)", family="cbramod", layers=4,
             checkpoints={"sim-pretrained": str(SIM_CHECKPOINT), "sim-ssl+sup-pretrained": str(SIM_SUP_CHECKPOINT)},
             options=OPTIONS["cbramod-sim"])
