"""What a distiller knows about the teacher and reads from it, re-exported by :mod:`eegkd_bench.api`.

:class:`TeacherInfo` before training, :class:`TeacherNeeds` (which outputs to compute and
cache), :class:`TeacherBatch` / :class:`TeacherRows` (the outputs, by window index) and the
per-window layer summaries (:func:`layer_summary`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from eegkd_bench.errors import UserError


@dataclass(frozen=True)
class TeacherInfo:
    """What a distiller may know about the teacher before training starts."""

    name: str
    layer_names: tuple[str, ...]
    feature_shapes: Mapping[str, tuple[int, ...]]  # without the batch axis
    n_classes: int


#: Per-window summaries of a teacher layer ``(B, ..., D)`` -> ``(B, D)``, averaged over every axis but
#: the first and the last: ``"mean"`` of the layer, ``"ln_mean"`` of its LayerNorm (no affine).
SUMMARY_STATS = ("ln_mean", "mean")


def summary_name(layer: str, stat: str) -> str:
    """The output name of one layer summary, e.g. ``"layer_3.ln_mean"``."""
    return f"{layer}.{stat}"


def layer_summary(h: torch.Tensor, stat: str) -> torch.Tensor:
    """``(B, D)`` summary ``stat`` (see :data:`SUMMARY_STATS`) of a layer ``(B, ..., D)``, in float32."""
    h = h.float()
    if stat == "ln_mean":
        h = F.layer_norm(h, h.shape[-1:])
    elif stat != "mean":
        raise ValueError(f"unknown summary {stat!r}; expected one of {SUMMARY_STATS}")
    return h.mean(dim=tuple(range(1, h.dim() - 1))) if h.dim() > 2 else h


@dataclass(frozen=True)
class TeacherNeeds:
    """Which teacher outputs a distiller needs (so only those are computed and cached).

    * ``logits``, ``embedding``, ``layers``: read batch by batch during training (and by
      ``teacher_target``, see below).
    * ``summaries``: layers whose per-window summaries (``summary_stats``, see
      :data:`SUMMARY_STATS`) :meth:`Distiller.on_train_start` reads, as
      ``TeacherBatch.summaries[summary_name(layer, stat)]`` ``(B, D)``. They are what the grid's
      teacher pass caches for a warm-up stage; a warm-up that needs only them never holds layers.
    * ``target``: after ``on_train_start`` the distiller turns a batch of its ``layers`` into one
      target per window (:meth:`Distiller.teacher_target`, e.g. a frozen router's mix of layers).
      With the teacher-output cache the runner computes it once per training window into a
      memory-mapped file and training reads ``TeacherBatch.target`` instead of the layers (about
      ``1/L`` of their size); without it (or with augmentation) training gets the layers.
    """

    logits: bool = False
    layers: tuple[str, ...] | Literal["all"] = ()
    embedding: bool = False
    summaries: tuple[str, ...] | Literal["all"] = ()
    summary_stats: tuple[str, ...] = ("ln_mean",)
    target: bool = False

    def resolve(self, info: TeacherInfo) -> tuple[str, ...]:
        """The layer names of ``layers``."""
        return tuple(info.layer_names) if self.layers == "all" else tuple(self.layers)

    def resolve_summaries(self, info: TeacherInfo) -> tuple[str, ...]:
        """The output names of every summary (``layer.stat``)."""
        layers = tuple(info.layer_names) if self.summaries == "all" else tuple(self.summaries)
        bad = sorted(set(self.summary_stats) - set(SUMMARY_STATS))
        if bad:
            raise UserError(f"TeacherNeeds: summary stat(s) {bad}; expected some of {SUMMARY_STATS}")
        return tuple(summary_name(layer, stat) for layer in layers for stat in self.summary_stats)

    @property
    def any(self) -> bool:
        return self.logits or self.embedding or self.layers == "all" or bool(self.layers) or bool(self.summaries)


@dataclass
class TeacherBatch:
    """The frozen teacher's outputs for a batch of windows (possibly read from the on-disk cache).

    Tensors (or arrays) share the first axis. ``summaries`` holds :attr:`TeacherNeeds.summaries`,
    ``target`` the distiller's own :meth:`Distiller.teacher_target`. A ``TeacherBatch`` is also
    a :class:`TeacherRows` over its own windows.
    """

    logits: torch.Tensor | None = None
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    embedding: torch.Tensor | None = None
    summaries: dict[str, torch.Tensor] = field(default_factory=dict)
    target: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "TeacherBatch":
        """The same outputs on ``device`` (no copy for tensors already there)."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return TeacherBatch(move(self.logits), {k: move(v) for k, v in self.features.items()}, move(self.embedding),
                            {k: move(v) for k, v in self.summaries.items()}, move(self.target))

    def __len__(self) -> int:
        for t in (self.logits, self.embedding, self.target, *self.features.values(), *self.summaries.values()):
            if t is not None:
                return len(t)
        return 0

    def batch(self, idx: np.ndarray, x: torch.Tensor | None = None) -> "TeacherBatch":
        """Rows ``idx`` of every output (the :class:`TeacherRows` interface)."""
        def rows(t: Any) -> Any:
            return None if t is None else t[idx]

        return TeacherBatch(rows(self.logits), {k: rows(v) for k, v in self.features.items()}, rows(self.embedding),
                            {k: rows(v) for k, v in self.summaries.items()}, rows(self.target))


class TeacherRows(Protocol):
    """The frozen teacher's outputs on the training split, read by window index (never whole).

    The runner passes one to :meth:`Distiller.on_train_start`: it is usually memory-mapped from
    the teacher-output cache, so read it in batches of indices.
    """

    def __len__(self) -> int: ...

    def batch(self, idx: np.ndarray, x: torch.Tensor | None = None) -> TeacherBatch: ...
