"""The contracts between the core and every plugin (datasets, models, distillers).

Plugins register factories through the hooks in :mod:`eegkd_bench.hookspecs`;
the runner only talks to them through the types defined or re-exported here: the data
contract (:mod:`eegkd_bench.windows`), declared options (:mod:`eegkd_bench.options`), what a
distiller reads from the teacher (:mod:`eegkd_bench.teacher_io`) and the errors a plugin raises
(:mod:`eegkd_bench.errors`). Helpers for distillers (layout adapters, checks) are public in
:mod:`eegkd_bench.adapters`.

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
from typing import Any, ClassVar

import torch
from torch import nn

from eegkd_bench.errors import DataUnavailable, PluginUnavailable, UserError
from eegkd_bench.windows import (
    SPLITS,
    UNLABELLED,
    Availability,
    DataKind,
    Dataset,
    EEGWindows,
    InputSpec,
    WindowRows,
    read_rows,
)
from eegkd_bench.options import Option, check_value, declared, option_defaults, take_options
from eegkd_bench.teacher_io import (
    SUMMARY_STATS,
    TeacherBatch,
    TeacherInfo,
    TeacherNeeds,
    TeacherRows,
    layer_summary,
    summary_name,
)

# ------------------------------------------------------------------------- models
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
        merged = take_options(getattr(self, "name", "") or type(self).__name__, hparams, self.defaults, "distiller")
        if self.needs_student_features and not tuple(getattr(student, "feature_names", ()) or ()):
            raise UserError(f"{type(self).__name__} reads the student's feature maps, but student "
                            f"{type(student).__name__} exposes none (empty feature_names); choose a student "
                            f"with feature maps (eegkd-bench list students)")
        self.student = student
        self.teacher_info = teacher
        self.spec = spec
        self.hparams = merged

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
    "UNLABELLED",
    "Availability",
    "DataKind",
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
    "check_value",
    "declared",
    "option_defaults",
    "take_options",
]
