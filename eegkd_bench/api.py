"""The contracts between the core and every plugin (datasets, models, distillers).

Plugins register factories through the hooks in :mod:`eegkd_bench.hookspecs`;
the runner only talks to them through the types defined here. This module declares
contracts only; the errors a plugin raises live in :mod:`eegkd_bench.errors` and are
re-exported here.

Conventions that every plugin relies on:

* EEG windows are float32 arrays ``(n, channels, samples)`` in the dataset's
  own unit scale (the CBraMod recipe divides microvolts by 100). ``EEGWindows.X``
  may be a read-only memory map of the on-disk store; the core reads it batch by
  batch by index (:class:`WindowRows`) and never copies it whole.
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
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from eegkd_bench.errors import DataUnavailable, PluginUnavailable, UserError
from eegkd_bench.options import Option, declared, option_defaults
from eegkd_bench.teacher_io import (
    SUMMARY_STATS,
    TeacherBatch,
    TeacherInfo,
    TeacherNeeds,
    TeacherRows,
    layer_summary,
    summary_name,
)

#: The protocol splits. ``transfer`` is optional: windows of subjects in no other split whose labels
#: are withheld (stored as :data:`UNLABELLED`); only distillers that declare the ``transfer`` option
#: read them, as extra inputs for their teacher terms. A student trained alone never sees them.
SPLITS = ("train", "val", "test", "transfer")
#: The label of a window whose class is withheld (the transfer split's); label terms skip such windows.
UNLABELLED = -1
DataKind = Literal["real", "simulated"]


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Availability:
    """Whether a dataset's files are present, where we looked, and how to get them."""

    available: bool
    where: str
    how_to_get: str = ""
    detail: str = ""  # e.g. "9 subjects, 1.2 GB" or the reason it is missing


class WindowRows:
    """Rows ``idx`` of a window array (often a memory map), read batch by batch.

    ``rows[sel]`` (an int, a slice or an index array relative to these rows) returns a
    writable float32 array holding only the selected windows (copied out of a read-only map). ``np.asarray(rows)`` copies the
    whole split: fine for small data, never done by the core.
    """

    def __init__(self, X: np.ndarray, idx: np.ndarray) -> None:
        self.base = X
        self.idx = np.asarray(idx, dtype=np.int64)
        n = len(self.idx)
        # a contiguous run is read with one slice, not fancy indexing
        self._start = int(self.idx[0]) if n and int(self.idx[-1]) - int(self.idx[0]) == n - 1 and \
            bool((np.diff(self.idx) == 1).all()) else None

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.idx), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.base.dtype.itemsize

    def __getitem__(self, sel: Any) -> np.ndarray:
        if isinstance(sel, slice) and self._start is not None:
            a, b, step = sel.indices(len(self.idx))
            if step == 1:
                return _own_float32(self.base[self._start + a:self._start + max(a, b)])
        return _own_float32(self.base[self.idx[sel]])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """Every row as one array: a copy of the whole split (for small-data tools; the core reads batches)."""
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype, copy=False)


def _own_float32(rows: np.ndarray) -> np.ndarray:
    """``rows`` as a writable float32 array: copied only when it is a view of a read-only map or another dtype."""
    if rows.flags.writeable and rows.dtype == np.float32 and rows.flags.c_contiguous:
        return rows
    return np.array(rows, dtype=np.float32)


def read_rows(X: "np.ndarray | WindowRows", sel: Any) -> np.ndarray:
    """Windows ``X[sel]`` as a writable float32 array (only the selected rows are read)."""
    return X[sel] if isinstance(X, WindowRows) else _own_float32(X[sel])


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

    def part(self, split: str) -> tuple[WindowRows, np.ndarray]:
        """``(X, y)`` of one protocol split; ``X`` reads the windows by index, batch by batch."""
        idx = self.indices(split)
        return WindowRows(self.X, idx), np.asarray(self.y)[idx]

    def split_sizes(self) -> dict[str, dict[str, int]]:
        """Subjects and windows of each non-empty split (records keep it beside the scores)."""
        out = {}
        for split in SPLITS:
            idx = self.indices(split)
            if len(idx):
                out[split] = {"subjects": int(len(np.unique(np.asarray(self.subjects)[idx]))), "windows": int(len(idx))}
        return out

    def fit_part(self, transfer: bool = False) -> tuple[WindowRows, np.ndarray]:
        """What a student trains on: the train split, then, with ``transfer``, the transfer split's windows
        labelled :data:`UNLABELLED`. The train windows come first, so row ``i < n_train`` is the same
        window with or without the transfer rows (the teacher-output cache relies on it)."""
        idx = self.indices("train")
        y = np.asarray(self.y)[idx].astype(np.int64)
        if transfer:
            extra = self.indices("transfer")
            idx = np.concatenate([idx, extra])
            y = np.concatenate([y, np.full(len(extra), UNLABELLED, np.int64)])
        return WindowRows(self.X, idx), y

    def first_nonfinite(self, batch_bytes: int = 64 * 1024 * 1024) -> int | None:
        """Index of the first window holding a NaN or infinity (None: all finite), read in batches."""
        step = max(1, batch_bytes // max(1, int(np.prod(self.X.shape[1:])) * 4))
        for start in range(0, len(self.X), step):
            ok = np.isfinite(self.X[start:start + step]).reshape(min(step, len(self.X) - start), -1).all(axis=1)
            if not ok.all():
                return start + int(np.flatnonzero(~ok)[0])
        return None

    def input_spec(self) -> "InputSpec":
        return InputSpec(self.n_channels, self.n_samples, self.n_classes, float(self.sfreq))


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
    #: constructor keywords a run may set (``--set NAME.OPTION=VALUE``): ``{name: Option or default}``;
    #: the factory is called with every one, resolved. The windows' checksum must reflect them.
    defaults: ClassVar[dict[str, Any]] = {}

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


# ---------------------------------------------------------------------- distillers
#: The ``transfer`` option of a distiller that may read the unlabelled transfer split.
TRANSFER_OPTION = Option(True, "also distil on the dataset's unlabelled transfer split when it has one (the label "
                               "terms skip those windows; false: the labelled train split only)")


class Distiller(nn.Module):
    """Wires a distillation method's loss into the shared training loop.

    The runner builds ``cls(student=..., teacher=TeacherInfo, spec=InputSpec, total_epochs=N, **hparams)``.
    Everything the optimizer updates is a submodule of the distiller; the
    deployed model is :meth:`deployed` (by default the student itself) and
    every other parameter is training-only (projectors, routers, probes) and
    is reported separately, never as student size.

    ``losses`` returns the *weighted* loss terms by name; the loop optimizes
    their sum and logs each term.
    """

    #: True: the method reads the student's feature maps; a student with none (empty ``feature_names``)
    #: is refused when the distiller is built, before any training, in one line.
    needs_student_features: ClassVar[bool] = False
    #: options of the method: ``{name: default}`` or ``{name: Option(default, help)}``
    #: (see :class:`Option`); the resolved values are part of the cell key.
    defaults: ClassVar[dict[str, Any]] = {}
    #: True: :meth:`on_train_start` reads the teacher's outputs on the whole training split before the
    #: epochs (a warm-up, e.g. DLink fitting its router on layer summaries). A subclass that overrides
    #: ``on_train_start`` without declaring this is taken to read them.
    teacher_warmup: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "teacher_warmup" not in cls.__dict__ and "on_train_start" in cls.__dict__:
            cls.teacher_warmup = True

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, *, total_epochs: int = 0,
                 **hparams: Any):
        super().__init__()
        #: the student recipe's epoch count (0: unknown), given by the runner at construction, so a method
        #: can size its stages to the run (FitNets' hint stage)
        self.total_epochs = int(total_epochs)
        defaults = option_defaults(self.defaults)
        unknown = set(hparams) - set(defaults)
        if unknown:
            raise UserError(
                f"{type(self).__name__}: unknown option(s) {sorted(unknown)}; "
                f"expected some of {sorted(defaults)}"
            )
        if self.needs_student_features and not tuple(getattr(student, "feature_names", ()) or ()):
            raise UserError(f"{type(self).__name__} reads the student's feature maps, but student "
                            f"{type(student).__name__} exposes none (empty feature_names); choose a student "
                            f"with feature maps (eegkd-bench list students)")
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

    def reads_transfer(self) -> bool:
        """Whether the student also trains on the dataset's unlabelled transfer split: a distiller declares
        a ``transfer`` option (see :data:`TRANSFER_OPTION`) and its label terms skip :data:`UNLABELLED` rows."""
        return bool(self.hparams.get("transfer", False))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the deployed model."""
        return self.deployed()(x)

    def on_train_start(self, teacher_train: TeacherRows | None, y_train: torch.Tensor | None) -> None:
        """Optional stage before the epochs (e.g. fit a router on cached layer summaries).

        ``teacher_train`` holds what :meth:`teacher_needs` asks for (summaries included) for every
        training window, in the order of ``y_train``; read it by index, batch by batch.
        """

    def teacher_target(self, teacher: TeacherBatch) -> torch.Tensor:
        """The per-window target built from a batch of the teacher's ``layers`` (only with ``TeacherNeeds.target``).

        Called after :meth:`on_train_start`; must not change during training (e.g. a frozen
        router), because the runner may compute it once per window and cache it.
        """
        raise NotImplementedError(f"{type(self).__name__} declares TeacherNeeds(target=True) "
                                  "but does not implement teacher_target()")

    def on_epoch_end(self, epoch: int) -> None:
        """Optional per-epoch hook."""

    def selectable_epoch(self) -> bool:
        """Whether the epoch now ending may become the restored best-validation state (asked before
        :meth:`on_epoch_end`). False during a stage whose classifier is not trained yet (FitNets' hints)."""
        return True

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
    "TeacherRows",
    "SUMMARY_STATS",
    "layer_summary",
    "summary_name",
    "PluginUnavailable",
    "UserError",
    "WindowRows",
    "read_rows",
    "declared",
    "option_defaults",
]
