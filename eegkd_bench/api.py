"""The contracts between the core and every plugin (datasets, models, distillers).

Plugins register factories through the hooks in :mod:`eegkd_bench.hookspecs`;
the runner only talks to them through the types defined here. This module declares
contracts only; the errors a plugin raises live in :mod:`eegkd_bench.errors` and are
re-exported here.

Conventions that every plugin relies on:

* EEG windows are float32 arrays ``(n, channels, samples)`` in the dataset's
  own unit scale (the CBraMod recipe divides microvolts by 100).
* Every task is single-label classification with ``n_classes >= 2`` logits,
  binary tasks included (two logits, softmax cross-entropy), so logit-based
  distillers need no special case.
* A model's ``forward(x)`` returns logits ``(B, n_classes)``;
  ``forward_features(x)`` returns a :class:`ModelOutput` with named
  intermediate features.

  - Teachers expose ``layer_1 .. layer_L`` (in depth order), each of shape
    ``(B, C, P, D)``: channels, patches (time, in order), model width.
  - Students expose features of shape ``(B, *, T')`` whose last axis is time
    (or time-ordered tokens); ``feature_names[-1]`` is the last feature map
    before the classifier. ``embedding`` is the pooled vector fed to the
    classifier, ``(B, E)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
import torch
from torch import nn

from eegkd_bench.errors import DataUnavailable, UserError

SPLITS = ("train", "val", "test")
DataKind = Literal["real", "simulated"]


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Availability:
    """Whether a dataset's files are present, where we looked, and how to get them."""

    available: bool
    where: str
    how_to_get: str = ""
    detail: str = ""  # e.g. "9 subjects, 1.2 GB" or the reason it is missing


@dataclass
class EEGWindows:
    """Preprocessed windows of one dataset with its declared protocol split."""

    name: str
    X: np.ndarray  # (n, channels, samples) float32
    y: np.ndarray  # (n,) int64 class indices in [0, n_classes)
    subjects: np.ndarray  # (n,) subject ids (str)
    split: np.ndarray  # (n,) one of SPLITS
    sfreq: float
    ch_names: list[str]
    class_names: list[str]
    kind: DataKind
    checksum: str  # of the source files (real) or the generator and its parameters (simulated)
    notes: str = ""

    def __post_init__(self) -> None:
        n = len(self.X)
        if self.X.dtype != np.float32:
            raise ValueError(f"{self.name}: X must be float32, got {self.X.dtype}; cast it in the dataset plugin")
        if self.X.ndim != 3:
            raise ValueError(f"{self.name}: X must be (n, channels, samples), got shape {self.X.shape}")
        for attr in ("y", "subjects", "split"):
            if len(getattr(self, attr)) != n:
                raise ValueError(f"{self.name}: {attr} has {len(getattr(self, attr))} entries, X has {n}")
        if self.X.shape[1] != len(self.ch_names):
            raise ValueError(
                f"{self.name}: X has {self.X.shape[1]} channels but {len(self.ch_names)} channel names"
            )

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_channels(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[2])

    @property
    def task(self) -> Literal["binary", "multiclass"]:
        return "binary" if self.n_classes == 2 else "multiclass"

    def indices(self, split: str) -> np.ndarray:
        """Indices of the windows in one protocol split."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return np.flatnonzero(self.split == split)

    def part(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` of one protocol split."""
        idx = self.indices(split)
        return self.X[idx], self.y[idx]

    def input_spec(self) -> "InputSpec":
        return InputSpec(self.n_channels, self.n_samples, self.n_classes, float(self.sfreq))

    def summary(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "kind": self.kind,
            "n_windows": int(len(self.X)),
            "n_channels": self.n_channels,
            "n_samples": self.n_samples,
            "sfreq": float(self.sfreq),
            "classes": list(self.class_names),
            "n_subjects": {s: int(len(set(self.subjects[self.split == s]))) for s in SPLITS},
            "n_per_split": {s: int((self.split == s).sum()) for s in SPLITS},
            "checksum": self.checksum,
        }


class Dataset:
    """A registered dataset. Subclasses set the class attributes and implement two methods."""

    name: ClassVar[str] = ""
    kind: ClassVar[DataKind] = "real"
    description: ClassVar[str] = ""
    paradigm: ClassVar[str] = ""  # e.g. "motor imagery", "abnormal EEG", "events", "emotion"
    # static facts shown by `eegkd-bench datasets` even when the files are absent
    class_names: ClassVar[tuple[str, ...]] = ()
    n_channels: ClassVar[int] = 0
    window_s: ClassVar[float] = 0.0  # window length in seconds after preprocessing
    sfreq: ClassVar[float] = 200.0  # sampling rate after preprocessing

    def availability(self, data_dir: str | None = None) -> Availability:
        """Report whether the data is on disk (never downloads, never touches the network)."""
        raise NotImplementedError

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        """Return the preprocessed windows; raise :class:`DataUnavailable` when files are missing."""
        raise NotImplementedError

    def preprocessing(self) -> dict[str, Any]:
        """How recordings become the windows a model sees, for whoever deploys a model trained on them.

        Keys (``None`` where a step is absent): ``resample``, ``band_pass_hz`` (``[low, high]``, either
        may be ``None``), ``notch_hz``, ``reference``, ``scaling`` (the unit of the values).
        An empty dict means the plugin does not declare it.
        """
        return {}
    # -- unlabeled pretraining corpora (``eegkd-bench pretrain``); never part of a benchmark grid
    #: False for a corpus that only streams unlabeled windows through :meth:`stream_batch`.
    labeled: ClassVar[bool] = True

    def stream_batch(self, index: int, batch_size: int) -> np.ndarray:
        """Unlabeled batch number ``index``: float32 ``(batch_size, channels, samples)``, the same for the
        same ``index`` every time (so an interrupted pretraining run resumes on the same data)."""
        raise NotImplementedError(f"{type(self).__name__} is not a streamed corpus")


# ------------------------------------------------------------------------- models
@dataclass(frozen=True)
class InputSpec:
    """What a model must accept and produce."""

    n_channels: int
    n_samples: int
    n_classes: int
    sfreq: float = 200.0


@dataclass
class ModelOutput:
    logits: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    embedding: torch.Tensor | None = None


class EEGModel(nn.Module):
    """Base class of teachers and students.

    Subclasses implement :meth:`forward_features` and set ``feature_names``
    (the keys that ``forward_features(x).features`` holds, in depth order).
    """

    feature_names: tuple[str, ...] = ()

    def forward_features(self, x: torch.Tensor) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).logits


class TeacherModel(EEGModel):
    """A foundation-model teacher. ``feature_names`` are ``layer_1 .. layer_L``.

    ``init_source`` is ``"random"`` or ``"sha256:<hex>"`` of the pretrained
    checkpoint it was initialised from; every result record carries it.
    ``head_params`` is the size of its downstream classification head.
    """

    init_source: str = "random"

    @property
    def n_layers(self) -> int:
        return len(self.feature_names)

    @property
    def head_params(self) -> int:
        """Parameters of the downstream classification head (submodule ``head``; 0 without one)."""
        head = getattr(self, "head", None)
        return sum(p.numel() for p in head.parameters()) if isinstance(head, nn.Module) else 0

    @property
    def backbone_params(self) -> int:
        """Parameters of the pretrained backbone (submodule ``backbone``; 0 without one)."""
        backbone = getattr(self, "backbone", None)
        return sum(p.numel() for p in backbone.parameters()) if isinstance(backbone, nn.Module) else 0

    def load_pretrained(self, path: str) -> str:
        """Load official pretrained backbone weights; return ``"sha256:<hex>"``."""
        raise NotImplementedError(f"{type(self).__name__} cannot load pretrained weights")

    # -- masked-patch pretraining (``eegkd-bench pretrain``); optional, enabled by ``patch_size > 0``
    #: Samples per patch token at the model's sampling rate; 0 means the teacher cannot be pretrained here.
    patch_size: int = 0

    def patch_tokens(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Last backbone layer ``(B, C, P, D)`` for input ``(B, C, P * patch_size)``, patches where
        ``mask`` ``(B, C, P)`` is True hidden the model's own way; any channel and patch count."""
        raise NotImplementedError(f"{type(self).__name__} exposes no patch tokens")

    def reconstruct_patches(self, tokens: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(B, C, P, patch_size)`` of the signal from patch tokens (a head inside ``backbone``)."""
        raise NotImplementedError(f"{type(self).__name__} exposes no patch tokens")

    def pretraining_parameters(self) -> list[nn.Parameter]:
        """The parameters masked-patch pretraining trains; all of them live in ``backbone``."""
        raise NotImplementedError(f"{type(self).__name__} exposes no patch tokens")


@dataclass(frozen=True)
class TeacherInfo:
    """What a distiller may know about the teacher before training starts."""

    name: str
    layer_names: tuple[str, ...]
    feature_shapes: Mapping[str, tuple[int, ...]]  # without the batch axis
    n_classes: int


# ------------------------------------------------------------------------ options
@dataclass(frozen=True)
class Option:
    """One declared option of a component: its default, a one-line help and its type.

    The type is the default's (bool, int, float, str, list); give ``type`` when the
    default is None (the option is then optional) or to accept floats for an int default.
    ``choices`` limits a value to a few allowed ones.
    """

    default: Any
    help: str = ""
    type: type | None = None
    choices: tuple[Any, ...] = ()

    @property
    def value_type(self) -> type | None:
        """The type a value must have (None: any); ints count as floats, never bools as numbers."""
        if self.type is not None:
            return self.type
        if self.default is None:
            return None
        return list if isinstance(self.default, tuple) else type(self.default)


def declared(options: Mapping[str, Any] | None) -> dict[str, Option]:
    """A declaration ``{name: Option or plain default}`` as Options."""
    return {k: v if isinstance(v, Option) else Option(v) for k, v in (options or {}).items()}


def option_defaults(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """A declaration ``{name: Option or plain default}`` as plain defaults."""
    return {k: v.default for k, v in declared(options).items()}


# ---------------------------------------------------------------------- distillers
@dataclass(frozen=True)
class TeacherNeeds:
    """Which teacher outputs a distiller needs (so only those are computed and cached)."""

    logits: bool = False
    layers: tuple[str, ...] | Literal["all"] = ()
    embedding: bool = False

    def resolve(self, info: TeacherInfo) -> tuple[str, ...]:
        return tuple(info.layer_names) if self.layers == "all" else tuple(self.layers)

    @property
    def any(self) -> bool:
        return self.logits or self.embedding or self.layers == "all" or bool(self.layers)


@dataclass
class TeacherBatch:
    """The frozen teacher's outputs for one batch (possibly read from the on-disk cache)."""

    logits: torch.Tensor | None = None
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    embedding: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "TeacherBatch":
        """The same outputs on ``device`` (no copy for tensors already there)."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return TeacherBatch(move(self.logits), {k: v.to(device, non_blocking=True) for k, v in self.features.items()},
                            move(self.embedding))


class Distiller(nn.Module):
    """Wires a distillation method's loss into the shared training loop.

    The runner builds ``cls(student=..., teacher=TeacherInfo, spec=InputSpec, **hparams)``.
    Everything the optimizer updates is a submodule of the distiller; the
    deployed model is :meth:`deployed` (by default the student itself) and
    every other parameter is training-only (projectors, routers, probes) and
    is reported separately, never as student size.

    ``losses`` returns the *weighted* loss terms by name; the loop optimizes
    their sum and logs each term.
    """

    #: student features this distiller reads (empty: none); checked before training.
    needs_student_features: ClassVar[bool] = False
    #: options of the method: ``{name: default}`` or ``{name: Option(default, help)}``
    #: (see :class:`Option`); the resolved values are part of the cell key.
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, **hparams: Any):
        super().__init__()
        defaults = option_defaults(self.defaults)
        unknown = set(hparams) - set(defaults)
        if unknown:
            raise UserError(
                f"{type(self).__name__}: unknown option(s) {sorted(unknown)}; "
                f"expected some of {sorted(defaults)}"
            )
        self.student = student
        self.teacher_info = teacher
        self.spec = spec
        self.hparams = {**defaults, **hparams}

    # -- what the runner asks
    def teacher_needs(self) -> TeacherNeeds:
        return TeacherNeeds()

    def deployed(self) -> nn.Module:
        """The model that is evaluated, measured and shipped."""
        return self.student

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def student_label(self, student: str) -> str:
        """How tables name the deployed model built on ``student`` (e.g. ``eegnet+mic`` for a wrapped one)."""
        return student

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the deployed model."""
        return self.deployed()(x)

    def on_train_start(self, teacher_train: TeacherBatch | None, y_train: torch.Tensor | None) -> None:
        """Optional stage before the epochs (e.g. fit a router on cached teacher layers)."""

    def on_epoch_end(self, epoch: int) -> None:
        """Optional per-epoch hook."""

    def report(self) -> dict[str, Any]:
        """JSON-able diagnostics stored with the result (e.g. router layer weights)."""
        return {}

    def training_only_params(self) -> int:
        deployed = {id(p) for p in self.deployed().parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in deployed)


__all__ = [
    "SPLITS",
    "Availability",
    "DataUnavailable",
    "Dataset",
    "Distiller",
    "EEGModel",
    "EEGWindows",
    "InputSpec",
    "ModelOutput",
    "Option",
    "TeacherBatch",
    "TeacherInfo",
    "TeacherModel",
    "TeacherNeeds",
    "UserError",
    "declared",
    "option_defaults",
]
