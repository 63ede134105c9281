"""Shared pieces of the student models: input checks, sampling-rate scaling, max-norm layers."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from eegkd_bench.api import EEGModel, InputSpec, ModelOutput, UserError, take_options as merge_options


def scaled(n_ref: int, sfreq: float, ref_sfreq: float) -> int:
    """A length given in samples at ``ref_sfreq`` converted to ``sfreq`` (same duration, >= 1)."""
    return max(1, int(round(n_ref * float(sfreq) / float(ref_sfreq))))


def out_len(t: int, kernel: int, stride: int = 1) -> int:
    """Output length of an unpadded conv/pool along time (may be <= 0 when the input is too short)."""
    return (t - kernel) // stride + 1 if t >= kernel else 0


def min_samples(final_len: Callable[[int], int], limit: int = 1_000_000) -> int:
    """Smallest window length for which ``final_len`` is at least 1 (lengths are monotone in T)."""
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi) // 2
        if final_len(mid) >= 1:
            hi = mid
        else:
            lo = mid + 1
    return lo


def take_options(name: str, options: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """User options over the declared defaults (``{name: Option or default}``), each checked like ``--set``
    (name, type, choices, range), plus a dropout in [0, 1)."""
    out = merge_options(name, options, declared, "student")
    if "dropout" in out and not 0.0 <= float(out["dropout"]) < 1.0:
        raise UserError(f"{name}: dropout={out['dropout']!r} is outside [0, 1); pass e.g. dropout=0.5")
    return out


def check_input(name: str, spec: InputSpec, x: torch.Tensor) -> None:
    """Raise UserError when ``x`` is not ``(B, n_channels, n_samples)`` of ``spec`` (model ``name``)."""
    if x.ndim != 3 or x.shape[1] != spec.n_channels or x.shape[2] != spec.n_samples:
        raise UserError(f"{name}: built for input (batch, {spec.n_channels}, {spec.n_samples}), "
                        f"got {tuple(x.shape)}; build the student for this dataset's input spec")


class Student(EEGModel):
    """Base of the students: checks the spec at build time and the input at every call."""

    name: str = "student"

    def __init__(self, spec: InputSpec, final_len: Callable[[int], int]) -> None:
        super().__init__()
        if spec.n_channels < 1 or spec.n_classes < 2 or spec.sfreq <= 0:
            raise UserError(f"{self.name}: needs >= 1 channel, >= 2 classes and sfreq > 0, got "
                            f"{spec.n_channels} channels, {spec.n_classes} classes, sfreq={spec.sfreq:g}")
        need = min_samples(final_len)
        if spec.n_samples < need:
            raise UserError(f"{self.name}: window of {spec.n_samples} samples is too short; needs at least "
                            f"{need} samples ({need / spec.sfreq:.2f} s at {spec.sfreq:g} Hz); use longer "
                            f"windows or another student")
        self.spec = spec

    def check_input(self, x: torch.Tensor) -> None:
        """Raise UserError when ``x`` is not ``(B, n_channels, n_samples)`` of the spec."""
        check_input(self.name, self.spec, x)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError


def apply_max_norm(weight: torch.Tensor, max_norm: float) -> None:
    """Rescale in place each output unit's weights whose L2 norm exceeds ``max_norm``."""
    if torch.compiler.is_exporting():
        # A data-dependent branch cannot enter an exported graph; the exporter runs one forward
        # pass first, so the weights it captures already satisfy the constraint.
        return
    with torch.no_grad():
        norms = weight.flatten(1).norm(dim=1)
        # Writing only when needed keeps a graph built by an earlier forward valid (no version bump).
        if bool((norms > max_norm).any()):
            weight.copy_(torch.renorm(weight, p=2, dim=0, maxnorm=max_norm))


class MaxNormConv2d(nn.Conv2d):
    """Conv2d whose per-filter weight norm is capped (Keras ``max_norm`` constraint)."""

    def __init__(self, *args: Any, max_norm: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_norm = max_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Keras applies the constraint after each update; renorming before each use is equivalent.
        apply_max_norm(self.weight, self.max_norm)
        return super().forward(x)


class MaxNormLinear(nn.Linear):
    """Linear layer whose per-output-unit weight norm is capped (Keras ``max_norm``)."""

    def __init__(self, *args: Any, max_norm: float = 0.25, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_norm = max_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        apply_max_norm(self.weight, self.max_norm)
        return super().forward(x)
