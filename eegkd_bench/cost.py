"""What a model costs to deploy: parameters, FLOPs and CPU latency at batch 1.

FLOP convention
---------------
One multiply-add counts as **2 FLOPs** (the convention of
``torch.utils.flop_counter``, which we build on). Counted: matrix products and
convolutions (as ``torch.utils.flop_counter`` counts them), attention (the
``Q K^T`` and ``A V`` products), the projections inside PyTorch's fused
attention and encoder-layer kernels, and FFTs. Not counted: bias additions,
normalization, activations, softmax, pooling and other element-wise work; they
are small next to the products above and every published EEG-model FLOP table
we compare against leaves them out too. Causal masks are ignored (the full
``L_q x L_k`` product is counted), as ``torch.utils.flop_counter`` does.

What ``torch.utils.flop_counter`` misses on CPU (torch 2.13)
-------------------------------------------------------------
``FlopCounterMode`` knows the CUDA attention kernels but none of the kernels that
actually run on a CPU in eval mode, so a transformer's attention would silently
count as zero. We add formulas for exactly these ops (none of them is in
``flop_counter.flop_registry``, so nothing is counted twice; inner calls made by a
fused kernel are never seen by the dispatch mode):

* ``aten._scaled_dot_product_flash_attention_for_cpu`` — what
  ``F.scaled_dot_product_attention`` runs on CPU for 4-D inputs (float32 or
  float64, with or without a mask, causal or not, grouped-query attention).
  Inputs that take the "math" path (3-D inputs, dropout, differing value width)
  are decomposed into ``bmm`` and counted by ``flop_counter`` itself.
* ``aten._scaled_dot_product_fused_attention_overrideable`` — the same for
  out-of-tree backends.
* ``aten._native_multi_head_attention`` — the fast path of
  ``nn.MultiheadAttention`` (eval, no grad, batch_first, self-attention,
  ``need_weights=False``).
* ``aten._transformer_encoder_layer_fwd`` — the fast path of
  ``nn.TransformerEncoderLayer`` (eval, no grad, batch_first): a whole layer
  (QKV projection, attention, output projection, two FFN linears) in one op.
* ``aten._fft_r2c``, ``aten._fft_c2r``, ``aten._fft_c2c`` — ``torch.fft.*`` and
  ``torch.stft``. A complex transform of size N costs ``5 N log2 N`` FLOPs, a
  real one (r2c, c2r) half that, ``2.5 N log2 N`` — the radix-2 Cooley-Tukey
  operation count that FFTW uses to report its speed. A multi-dimensional
  transform has N = the product of its sizes (the row-column algorithm's costs
  add up to the same ``5 N log2 N``). ``torch.fft.fft`` of a real tensor runs
  as r2c (the other half follows by symmetry), so it counts as real.

Backward kernels are not covered: we only measure inference.
"""
from __future__ import annotations

import gc
import math
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from eegkd_bench.api import InputSpec
from eegkd_bench.errors import UserError

aten = torch.ops.aten

#: Default time budget of one latency measurement (warm-up included), seconds.
DEFAULT_MAX_SECONDS = 30.0
#: Fewest timed runs kept even when the budget runs out (a median of fewer is noise).
MIN_REPEATS = 3


# ---------------------------------------------------------------------------- params
def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (shared tensors once), optionally only trainable ones."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only))


# ----------------------------------------------------------------------------- FLOPs
def _sizes(t: torch.Tensor) -> list[tuple[int, ...]]:
    """Per-sequence shapes: one entry for a dense tensor, one per component for a nested one."""
    if getattr(t, "is_nested", False):
        return [tuple(s.shape) for s in t.unbind()]
    return [tuple(t.shape)]


def attention_flops(q_shape: Sequence[int], k_shape: Sequence[int], v_shape: Sequence[int]) -> int:
    """FLOPs of ``softmax(Q K^T) V`` for ``(..., L_q, d)``, ``(..., L_k, d)``, ``(..., L_k, d_v)``.

    The leading (batch, head) axes are those of the query, so grouped-query
    attention counts every query head.
    """
    *lead, lq, d = q_shape
    lk = k_shape[-2]
    dv = v_shape[-1]
    return 2 * math.prod(lead) * lq * lk * (d + dv)


def _sdpa_cpu_flops(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any,
                    out_val: Any = None, **kwargs: Any) -> int:
    return sum(attention_flops(q, k, v) for q, k, v in zip(_sizes(query), _sizes(key), _sizes(value)))


def _mha_core_flops(lq: int, lk: int, embed: int) -> int:
    """In-projections of Q (L_q rows) and K, V (L_k rows), attention over all heads, out-projection."""
    projections = 2 * (lq + 2 * lk) * embed * embed + 2 * lq * embed * embed
    attention = 2 * lq * lk * (embed + embed)  # heads x head_dim = embed for both Q K^T and A V
    return projections + attention


def _seq_lengths(t: torch.Tensor) -> list[tuple[int, int]]:
    """``(batch, length)`` pairs of a ``(B, L, E)`` / ``(L, E)`` tensor, or per component if nested."""
    out = []
    for shape in _sizes(t):
        if len(shape) == 3:
            out.append((shape[0], shape[1]))
        elif len(shape) == 2:
            out.append((1, shape[0]))
        else:  # pragma: no cover - the kernels reject other ranks
            raise ValueError(f"unexpected attention input shape {shape}")
    return out


def _native_mha_flops(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, embed_dim: int,
                      num_head: int, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    total = 0
    for (b, lq), (_, lk) in zip(_seq_lengths(query), _seq_lengths(key)):
        total += b * _mha_core_flops(lq, lk, int(embed_dim))
    return total


def _encoder_layer_flops(src: torch.Tensor, embed_dim: int, num_heads: int, qkv_weight: torch.Tensor,
                         qkv_bias: torch.Tensor, proj_weight: torch.Tensor, proj_bias: torch.Tensor,
                         use_gelu: bool, norm_first: bool, eps: float, norm_weight_1: torch.Tensor,
                         norm_bias_1: torch.Tensor, norm_weight_2: torch.Tensor, norm_bias_2: torch.Tensor,
                         ffn_weight_1: torch.Tensor, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    e = int(embed_dim)
    hidden = int(ffn_weight_1.shape[0])
    total = 0
    for b, length in _seq_lengths(src):
        ffn = 2 * length * e * hidden * 2  # E -> hidden -> E
        total += b * (_mha_core_flops(length, length, e) + ffn)
    return total


def fft_flops(n: int, batch: int, *, real: bool) -> int:
    """FLOPs of ``batch`` FFTs of size ``n``: ``5 n log2 n`` each (complex), half that for real data."""
    if n <= 1 or batch == 0:
        return 0
    per = 5.0 * n * math.log2(n) * (0.5 if real else 1.0)
    return int(round(per * batch))


def _transform_size(shape: Sequence[int], dims: Sequence[int]) -> tuple[int, int]:
    """``(n, batch)``: the transform's size over ``dims`` and how many such transforms ``shape`` holds."""
    ndim = len(shape)
    n = math.prod(shape[d % ndim] for d in dims) if dims else 1
    return n, (math.prod(shape) // n if n else 0)


def _fft_r2c_flops(x: torch.Tensor, dim: Sequence[int], *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    return sum(fft_flops(*_transform_size(s, dim), real=True) for s in _sizes(x))


def _fft_c2r_flops(x: torch.Tensor, dim: Sequence[int], *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    # the real output holds the transform's true size (the complex input is only half of it)
    return sum(fft_flops(*_transform_size(s, dim), real=True) for s in _sizes(out_val))


def _fft_c2c_flops(x: torch.Tensor, dim: Sequence[int], *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    return sum(fft_flops(*_transform_size(s, dim), real=False) for s in _sizes(x))


def _raw(fn: Callable[..., int]) -> Callable[..., int]:
    fn._get_raw = True  # type: ignore[attr-defined]  # FlopCounterMode passes tensors, not shapes
    return fn


_FORMULAS_BY_OP: dict[str, Callable[..., int]] = {
    "_scaled_dot_product_flash_attention_for_cpu": _sdpa_cpu_flops,
    "_scaled_dot_product_fused_attention_overrideable": _sdpa_cpu_flops,
    "_native_multi_head_attention": _native_mha_flops,
    "_transformer_encoder_layer_fwd": _encoder_layer_flops,
    "_fft_r2c": _fft_r2c_flops,
    "_fft_c2r": _fft_c2r_flops,
    "_fft_c2c": _fft_c2c_flops,
}
#: Formulas for the CPU kernels that ``torch.utils.flop_counter`` does not know (see module docstring);
#: an op this torch build lacks is skipped, one that flop_counter learned to count is left to it.
EXTRA_FLOP_FORMULAS: dict[Any, Callable[..., int]] = {
    getattr(aten, name): _raw(fn) for name, fn in _FORMULAS_BY_OP.items()
    if hasattr(aten, name) and getattr(aten, name) not in flop_registry
}


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode, then give each back its own mode (not one flag for all)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def _check_batch_one(example_input: torch.Tensor, what: str) -> None:
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 1 or example_input.shape[0] != 1:
        shape = tuple(example_input.shape) if isinstance(example_input, torch.Tensor) else type(example_input)
        raise UserError(f"{what} needs one example at batch 1, got input of shape {shape}; pass x[:1]")


def flops_by_op(model: nn.Module, example_input: torch.Tensor) -> dict[str, int]:
    """FLOPs of one forward pass at batch 1 (eval mode, no grad), per aten op."""
    _check_batch_one(example_input, "count_flops")
    counter = FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS)
    with eval_mode(model), torch.no_grad(), counter:
        model(example_input)
    counts = counter.get_flop_counts().get("Global", {})
    return {str(op): int(n) for op, n in sorted(counts.items(), key=lambda kv: str(kv[0])) if n}


def count_flops(model: nn.Module, example_input: torch.Tensor) -> int:
    """FLOPs of one forward pass at batch 1 (1 multiply-add = 2 FLOPs; attention and FFT included)."""
    return int(sum(flops_by_op(model, example_input).values()))


# --------------------------------------------------------------------------- latency
def measure_latency(model: nn.Module, example_input: torch.Tensor, threads: int = 1, warmup: int = 10,
                    repeats: int = 50, max_seconds: float = DEFAULT_MAX_SECONDS) -> dict[str, Any]:
    """CPU latency of one forward pass at batch 1: median and spread in milliseconds.

    Runs in eval mode under ``torch.inference_mode`` with ``threads`` intra-op
    threads (restored afterwards). ``max_seconds`` bounds the whole measurement:
    warm-up stops after a quarter of it, timing after all of it (but never with
    fewer than ``MIN_REPEATS`` runs); ``repeats`` and ``truncated`` in the result
    say how many runs the statistics are over.
    """
    _check_batch_one(example_input, "measure_latency")
    for name, value, lowest in (("threads", threads, 1), ("warmup", warmup, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise UserError(f"measure_latency: {name}={value!r}; expected an integer >= {lowest}")
    if not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
        raise UserError(f"measure_latency: max_seconds={max_seconds!r}; expected a positive number of seconds")

    previous_threads = torch.get_num_threads()
    gc_was_enabled = gc.isenabled()
    times: list[float] = []
    warmed = 0
    torch.set_num_threads(threads)
    try:
        with eval_mode(model), torch.inference_mode():
            start = time.perf_counter()
            for warmed in range(1, warmup + 1):
                model(example_input)
                if time.perf_counter() - start > max_seconds / 4:
                    break
            gc.collect()
            gc.disable()  # a collection inside one timed run would show up as an outlier
            start = time.perf_counter()
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(example_input)
                times.append(time.perf_counter() - t0)
                if len(times) >= MIN_REPEATS and time.perf_counter() - start > max_seconds:
                    break
    finally:
        if gc_was_enabled:
            gc.enable()
        torch.set_num_threads(previous_threads)
    ms = np.asarray(times) * 1e3
    p10, p25, p50, p75, p90 = np.percentile(ms, [10, 25, 50, 75, 90])
    return {
        "median_ms": float(p50),
        "p10_ms": float(p10),
        "p90_ms": float(p90),
        "iqr_ms": float(p75 - p25),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "repeats": int(len(ms)),
        "warmup": int(warmed),
        "threads": int(threads),
        "truncated": bool(len(ms) < repeats),
    }


# ---------------------------------------------------------------------------- report
def example_input(spec: InputSpec, seed: int = 0) -> torch.Tensor:
    """A deterministic random window ``(1, channels, samples)`` matching ``spec``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, spec.n_channels, spec.n_samples, generator=gen)


def cost_report(model: nn.Module, spec: InputSpec, latency: bool = True, **latency_options: Any) -> dict[str, Any]:
    """Params, FLOPs and (optionally) CPU latency of ``model`` on one window of ``spec``, JSON-able.

    ``latency_ms`` is the median at batch 1 with one thread (``None`` when
    ``latency`` is false); ``latency`` holds the raw statistics.
    """
    from eegkd_bench.device import on_cpu

    model = on_cpu(model)  # a CPU figure by definition, wherever the model trained
    x = example_input(spec)
    by_op = flops_by_op(model, x)
    report: dict[str, Any] = {
        "params": count_params(model),
        "trainable_params": count_params(model, trainable_only=True),
        "flops": int(sum(by_op.values())),
        "flops_by_op": by_op,
        "latency_ms": None,
        "latency": None,
    }
    if latency:
        stats = measure_latency(model, x, **latency_options)
        report["latency_ms"] = stats["median_ms"]
        report["latency"] = stats
    return report


__all__ = [
    "EXTRA_FLOP_FORMULAS",
    "attention_flops",
    "cost_report",
    "count_flops",
    "count_params",
    "eval_mode",
    "example_input",
    "fft_flops",
    "flops_by_op",
    "measure_latency",
]
