"""braindecode's foundation models as teachers, with every transformer layer tapped as ``(B, C, P, D)``.

An adapter exists where braindecode's model keeps one token per (channel, patch) through its
layers, so each layer's output is the teacher layout the feature distillers and DLink's router
read (``C`` channels, ``P`` patches of 1 s at 200 Hz, width ``D``):

* ``bd-cbramod`` — braindecode's CBraMod: 12 criss-cross layers ``encoder.layers.*`` whose
  outputs are already ``(B, C, P, 200)``;
* ``bd-labram`` — braindecode's LaBraM: 12 ViT blocks ``blocks.*`` over ``[CLS] + C*P`` tokens
  (channel-major); the ``[CLS]`` token is dropped and the rest unflattened to ``(B, C, P, 200)``.
  Channels are matched to LaBraM's position embeddings by their 10-20 names (option
  ``ch_names``; default: the first ``C`` names of braindecode's ``LABRAM_CHANNEL_ORDER``).

Checkpoints: ``--teacher-checkpoint PATH`` loads a state dict in braindecode's layout (a
``.safetensors`` or ``torch.save`` file, e.g. the ``model.safetensors`` of braindecode's
Hugging Face repository), strict on everything but ``final_layer``; ``--teacher-checkpoint
hub`` fetches that file from the Hub when online.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from eegkd_bench.api import InputSpec, ModelOutput, Option, TeacherModel, UserError, check_value
from eegkd_plugins.bdzoo.catalogue import ModelInfo, options_of
from eegkd_plugins.bdzoo.student import HEAD, build_braindecode
from eegkd_plugins.cbramod import check_state_dict, file_digest, read_state_dict

PATCH = 200  # samples per patch token (1 s at 200 Hz) in both models

Reshape = Callable[[torch.Tensor, int, int], torch.Tensor]


def _as_is(h: torch.Tensor, c: int, p: int) -> torch.Tensor:
    return h


def _drop_cls(h: torch.Tensor, c: int, p: int) -> torch.Tensor:
    return h[:, 1:].unflatten(1, (c, p))


#: braindecode class -> (module list whose outputs are the layers, reshape to (B, C, P, D), Hub repository,
#: the constructor argument that sets the depth)
ADAPTERS: dict[str, tuple[str, Reshape, str, str]] = {
    "CBraMod": ("encoder.layers", _as_is, "braindecode/cbramod-pretrained", "n_layer"),
    "Labram": ("blocks", _drop_cls, "braindecode/labram-pretrained", "num_layers"),
}
#: Constructor arguments the layout depends on, not offered as options.
FIXED = ("patch_size", "neural_tokenizer", "learned_patcher")
HUB_FILE = "model.safetensors"


def teacher_unavailable(info: ModelInfo) -> str:
    if info.name in ADAPTERS:
        return ""
    return "no layer adapter yet (its layers are not tapped as channel x patch tokens)"


class BraindecodeTeacher(TeacherModel):
    """A braindecode foundation model (``backbone``, its ``final_layer`` the head) with all layers tapped."""

    def __init__(self, name: str, cls: Any, spec: InputSpec, ch_names: list[str] | None = None,
                 **options: Any) -> None:
        super().__init__()
        if spec.n_samples % PATCH:
            raise UserError(f"{name}: windows of {spec.n_samples} samples are not whole {PATCH}-sample patches "
                            f"(1 s at 200 Hz); resample to 200 Hz and use whole seconds")
        self.name, self.spec = name, spec
        self.n_patches = spec.n_samples // PATCH
        path, self._reshape, _, _ = ADAPTERS[cls.__name__]
        self.backbone = build_braindecode(name, cls, spec, options)
        self.layers = self.backbone.get_submodule(path)
        self.feature_names = tuple(f"layer_{i + 1}" for i in range(len(self.layers)))
        self._forward_kw: dict[str, Any] = {}
        if cls.__name__ == "Labram":
            self._forward_kw["ch_names"] = labram_channels(name, spec.n_channels, ch_names)

    @property
    def head_params(self) -> int:
        return sum(p.numel() for p in getattr(self.backbone, HEAD).parameters())

    @property
    def backbone_params(self) -> int:
        return sum(p.numel() for p in self.backbone.parameters()) - self.head_params

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        """Logits, ``layer_1 .. layer_L`` as ``(B, C, P, D)`` and the last layer averaged over tokens."""
        outs: list[torch.Tensor] = []
        handles = [layer.register_forward_hook(lambda m, i, o: outs.append(o)) for layer in self.layers]
        try:
            logits = self.backbone(x, **self._forward_kw)
        finally:
            for h in handles:
                h.remove()
        c, p = x.shape[1], self.n_patches
        feats = {n: self._reshape(h, c, p) for n, h in zip(self.feature_names, outs)}
        emb = feats[self.feature_names[-1]].mean(dim=(1, 2))
        return ModelOutput(logits, feats, emb)

    def load_pretrained(self, path: str) -> str:
        """braindecode-layout weights, strict on all but the classification head; ``"sha256:<hex>"``."""
        state, digest = read_weights(self.name, path)
        state = {k: v for k, v in state.items() if not k.startswith(HEAD + ".")}
        own = {k: v for k, v in self.backbone.state_dict().items() if not k.startswith(HEAD + ".")}
        check_state_dict(self.name, path, state, own, f"expected braindecode's {type(self.backbone).__name__} "
                                                      f"weights (e.g. {HUB_FILE} of its Hub repository)")
        self.backbone.load_state_dict(state, strict=False)
        self.init_source = f"sha256:{digest}"
        return self.init_source


def read_weights(name: str, path: str) -> tuple[dict[str, torch.Tensor], str]:
    """A state dict from a ``.safetensors`` file or a ``torch.save`` file, and the file's sha256."""
    if str(path).endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise UserError(f"{name}: reading {path!r} needs safetensors; pip install safetensors") from None
        file = Path(path).expanduser()
        try:
            return dict(load_file(str(file))), file_digest(file)
        except Exception as exc:
            raise UserError(f"{name}: could not read {path!r} as safetensors ({type(exc).__name__}); pass "
                            f"braindecode's {HUB_FILE} or a torch.save state dict") from None
    return read_state_dict(name, path)


def labram_channels(name: str, n_channels: int, ch_names: list[str] | None) -> list[str]:
    from braindecode.models.labram import LABRAM_CHANNEL_ORDER

    if ch_names is None:
        return list(LABRAM_CHANNEL_ORDER[:n_channels])
    if len(ch_names) != n_channels:
        raise UserError(f"{name}: ch_names has {len(ch_names)} names for {n_channels} channels; pass one 10-20 "
                        f"name per channel")
    known = {c.upper() for c in LABRAM_CHANNEL_ORDER}
    unknown = [c for c in ch_names if c.upper() not in known]
    if unknown:
        raise UserError(f"{name}: channel(s) {unknown[:5]} are not among LaBraM's {len(known)} channel names; "
                        f"rename them (e.g. 'T7', 'FP1') or leave ch_names out")
    return list(ch_names)


def teacher_options(info: ModelInfo) -> dict[str, Option]:
    """braindecode's plain constructor arguments but those that fix the token layout, plus Labram's ``ch_names``."""
    out = {k: v for k, v in options_of(info.cls).items() if k not in FIXED}
    if info.name == "Labram":
        out["ch_names"] = Option(None, "10-20 names of the input channels, in order (default: the first C of "
                                       "LABRAM_CHANNEL_ORDER)", type=list)
    return out


def default_depth(info: ModelInfo) -> int:
    return int(options_of(info.cls)[ADAPTERS[info.name][3]].default)


def teacher_factory(name: str, info: ModelInfo) -> Callable[..., BraindecodeTeacher]:
    declared = teacher_options(info)

    def build(spec: InputSpec, checkpoint: str | None = None, **options: Any) -> BraindecodeTeacher:
        for option, value in options.items():  # checked like --set: name, type, choices, range
            check_value(name, option, value, declared, "teacher")
        model = BraindecodeTeacher(name, info.cls, spec, **options)
        if checkpoint:
            model.load_pretrained(checkpoint)
        return model

    return build


def hub_checkpoint(info: ModelInfo) -> str:
    """The ``hf://`` address of the teacher's weights on the Hugging Face Hub."""
    return f"hf://{ADAPTERS[info.name][2]}/{HUB_FILE}"


__all__ = ["ADAPTERS", "BraindecodeTeacher", "default_depth", "hub_checkpoint", "teacher_factory",
           "teacher_options", "teacher_unavailable"]
