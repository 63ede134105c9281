"""A braindecode model as an eegkd-bench student: built from the input spec, with feature taps.

Feature taps (what feature distillers and DLink's MiC read) are found once, when the student
is built, by running the model on a probe batch in eval mode and watching its top-level
submodules (braindecode composes its models of named blocks and ends them with ``final_layer``):

* a tap is the output of a top-level submodule other than ``final_layer`` that runs once per
  forward pass and returns one tensor ``(batch, ...)`` with at least two axes of size > 1
  after the batch; submodules before the first one with parameters only reshape the input
  and are skipped;
* of consecutive taps with the same shape (a convolution, its batch norm, its activation)
  only the last is kept;
* a tap is handed over with its size-1 axes removed; its **last axis is read as time**
  (true of braindecode's convolutional models; for token sequences ``(batch, tokens, width)``
  the last axis is the width);
* the input of ``final_layer`` is tapped too (``head_input``) when it is such a map of another
  shape than the last tap; its flattening is the student's embedding. A model with no tap at
  all exposes only ``head_input``, as a one-channel map along its features, so every
  distiller can run.

``eegkd-bench show bd-NAME`` lists the options; ``benchmarks/bd_students.py`` prints the taps of
every student on a benchmark's input.
"""
from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from eegkd_bench.api import EEGModel, InputSpec, ModelOutput, UserError
from eegkd_bench.errors import one_line
from eegkd_plugins.bdzoo.catalogue import constructor_args
from eegkd_plugins.students.common import check_input

HEAD = "final_layer"
HEAD_INPUT = "head_input"
PROBE_BATCH = 3


def build_braindecode(name: str, cls: Any, spec: InputSpec, options: dict[str, Any]) -> nn.Module:
    """braindecode's ``cls`` for ``spec``; its constructor's complaint becomes a one-line UserError."""
    args = constructor_args(cls)
    signal = {"n_chans": spec.n_channels, "n_outputs": spec.n_classes, "n_times": spec.n_samples,
              "sfreq": float(spec.sfreq)}
    kwargs = {k: v for k, v in signal.items() if k in args}
    try:
        return cls(**kwargs, **options)
    except Exception as exc:  # braindecode checks its own input constraints at construction
        raise UserError(f"{name}: braindecode's {cls.__name__} cannot be built for {spec.n_channels} channels x "
                        f"{spec.n_samples} samples at {spec.sfreq:g} Hz ({one_line(exc)[:240]}); choose another "
                        f"student or window") from None


def squeezed(t: torch.Tensor) -> torch.Tensor:
    """``t`` without its size-1 axes after the batch (at least ``(batch, n)``)."""
    keep = [s for s in t.shape[1:] if s != 1] or [1]
    return t.reshape(t.shape[0], *keep)


class BraindecodeStudent(EEGModel):
    """A braindecode model (``net``) with the student interface and feature taps (see the module doc)."""

    def __init__(self, name: str, cls: Any, spec: InputSpec, **options: Any) -> None:
        super().__init__()
        self.name, self.spec = name, spec
        self.net = build_braindecode(name, cls, spec, options)
        self._seen: dict[str, torch.Tensor] | None = None
        self._calls: dict[str, int] = {}
        children = [(n, m) for n, m in self.net.named_children() if n != HEAD]
        for child_name, module in children:
            module.register_forward_hook(functools.partial(self._keep_output, child_name))
        head = getattr(self.net, HEAD, None)
        if isinstance(head, nn.Module):
            head.register_forward_pre_hook(functools.partial(self._keep_input, HEAD_INPUT))
        self.feature_names = self._find_taps(dict(children))

    # -- hooks (bound methods, so a deep copy of the student hooks into its own copy)
    def _keep_output(self, name: str, module: nn.Module, inputs: Any, output: Any) -> None:
        if self._seen is not None:
            self._calls[name] = self._calls.get(name, 0) + 1
            self._seen[name] = output

    def _keep_input(self, name: str, module: nn.Module, inputs: Any) -> None:
        if self._seen is not None and inputs and torch.is_tensor(inputs[0]):
            self._seen[name] = inputs[0]

    def _run(self, x: torch.Tensor) -> tuple[Any, dict[str, torch.Tensor]]:
        self._seen, self._calls = {}, {}
        try:
            out = self.net(x)
            return out, self._seen
        finally:
            self._seen = None

    def _find_taps(self, children: dict[str, nn.Module]) -> tuple[str, ...]:
        spec = self.spec
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(PROBE_BATCH, spec.n_channels, spec.n_samples, generator=gen)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out, seen = self._run(x)
        except Exception as exc:
            raise UserError(f"{self.name}: braindecode's {type(self.net).__name__} fails on a batch of "
                            f"({spec.n_channels}, {spec.n_samples}) windows ({one_line(exc)[:240]}); choose another "
                            f"student or window") from None
        finally:
            self.train(was_training)
        if not torch.is_tensor(out) or tuple(out.shape) != (PROBE_BATCH, spec.n_classes):
            got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
            raise UserError(f"{self.name}: braindecode's {type(self.net).__name__} returns {got} for a batch of "
                            f"{PROBE_BATCH}, not (batch, {spec.n_classes}) class scores; it is not a window "
                            f"classifier here")
        calls = dict(self._calls)
        taps: list[tuple[str, tuple[int, ...]]] = []
        started = False
        for name in seen:  # in the order the blocks ran (dicts keep insertion order)
            if name not in children:
                continue
            started = started or any(True for _ in children[name].parameters())
            t = seen.get(name)
            if not started or calls.get(name) != 1 or not torch.is_tensor(t) or t.shape[0] != PROBE_BATCH:
                continue
            shape = tuple(squeezed(t).shape)
            if len(shape) < 3:
                continue
            if taps and taps[-1][1] == shape:
                taps.pop()
            taps.append((name, shape))
        head_in = seen.get(HEAD_INPUT)
        if torch.is_tensor(head_in) and head_in.shape[0] == PROBE_BATCH:
            shape = tuple(squeezed(head_in).shape)
            if not taps or (len(shape) >= 3 and taps[-1][1] != shape):
                taps.append((HEAD_INPUT, shape))
        self.tap_shapes = {n: s[1:] for n, s in taps}
        return tuple(n for n, _ in taps)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        """Logits, the taps (size-1 axes removed; a 2-D tap becomes a one-channel map) and the head's input."""
        check_input(self.name, self.spec, x)
        logits, seen = self._run(x)
        feats = {}
        for n in self.feature_names:
            t = squeezed(seen[n])
            feats[n] = t.unsqueeze(1) if t.ndim == 2 else t
        head_in = seen.get(HEAD_INPUT)
        emb = head_in.flatten(1) if torch.is_tensor(head_in) else logits
        return ModelOutput(logits, feats, emb)
