"""Parameters, FLOPs (checked against hand counts) and latency of tiny models."""
from __future__ import annotations

import json
import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eegkd_bench.api import InputSpec, UserError
from eegkd_bench.cost import (
    MIN_REPEATS,
    cost_report,
    count_flops,
    count_params,
    example_input,
    fft_flops,
    flops_by_op,
    measure_latency,
)

# FLOPs = 2 x multiply-adds throughout (see eegkd_bench.cost).


class SmallCNN(nn.Module):
    """conv1d -> avg pool -> depthwise conv1d -> conv2d -> max pool -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(2, 4, kernel_size=5, padding=2)  # (2, 32) -> (4, 32)
        self.pool1 = nn.AvgPool1d(2)  # -> (4, 16)
        self.depthwise = nn.Conv1d(4, 4, kernel_size=3, padding=1, groups=4)  # -> (4, 16)
        self.conv2 = nn.Conv2d(1, 3, kernel_size=(4, 3))  # (1, 4, 16) -> (3, 1, 14)
        self.pool2 = nn.MaxPool2d((1, 2))  # -> (3, 1, 7)
        self.fc = nn.Linear(21, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(self.pool1(torch.relu(self.conv1(x))))
        h = self.pool2(self.conv2(h.unsqueeze(1)))
        return self.fc(h.flatten(1))


def test_count_params_counts_shared_once_and_filters_frozen() -> None:
    lin = nn.Linear(3, 4)  # 12 + 4
    model = nn.Sequential(lin, nn.ReLU(), lin, nn.Linear(4, 2))  # shared lin once; + 8 + 2
    model[3].bias.requires_grad_(False)
    assert count_params(model) == 16 + 10
    assert count_params(model, trainable_only=True) == 16 + 8


def test_cnn_flops_match_hand_count() -> None:
    conv1 = 32 * 4 * (2 * 5)  # output positions x out channels x (in channels x kernel) MACs = 1280
    depthwise = 16 * 4 * (1 * 3)  # groups=4: each output channel sees one input channel = 192
    conv2 = (3 * 1 * 14) * (1 * 4 * 3)  # 42 outputs x 12 MACs = 504
    fc = 21 * 5  # = 105
    pooling = 0  # element-wise work is not counted
    expected = 2 * (conv1 + depthwise + conv2 + fc) + pooling  # = 4162
    model = SmallCNN()
    assert count_flops(model, torch.randn(1, 2, 32)) == expected == 4162


def test_encoder_layer_fast_path_matches_hand_count_and_slow_path() -> None:
    e, heads, hidden, length = 16, 2, 32, 5
    layer = nn.TransformerEncoderLayer(e, heads, hidden, batch_first=True, dropout=0.1)
    x = torch.randn(1, length, e)
    qkv = length * e * (3 * e)  # 3840 MACs
    scores = heads * length * length * (e // heads)  # Q K^T: 200 MACs
    mix = heads * length * length * (e // heads)  # A V: 200 MACs
    out_proj = length * e * e  # 1280 MACs
    ffn = length * e * hidden + length * hidden * e  # 2560 + 2560 MACs
    expected = 2 * (qkv + scores + mix + out_proj + ffn)  # = 22080
    ops = flops_by_op(layer, x)
    assert "aten._transformer_encoder_layer_fwd" in ops, ops  # the fused eval-mode kernel ran
    assert sum(ops.values()) == expected == 22080
    assert layer.training  # the caller's mode is restored

    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        slow = flops_by_op(layer, x)
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)
    assert "aten._transformer_encoder_layer_fwd" not in slow
    assert sum(slow.values()) == expected  # addmm + CPU attention kernel: the same work


class SelfAttention(nn.Module):
    def __init__(self, embed: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


def test_multihead_attention_fast_path_matches_hand_count() -> None:
    e, length = 8, 6
    projections = 3 * length * e * e + length * e * e  # Q, K, V in; output out: 4 x 384 MACs
    attention = 2 * length * length * e  # Q K^T and A V over all heads: 576 MACs
    expected = 2 * (projections + attention)  # = 4224
    ops = flops_by_op(SelfAttention(e, 2), torch.randn(1, length, e))
    assert "aten._native_multi_head_attention" in ops, ops
    assert sum(ops.values()) == expected == 4224


class SDPA(nn.Module):
    def __init__(self, kv_heads: int | None = None, causal: bool = False) -> None:
        super().__init__()
        self.kv_heads, self.causal = kv_heads, causal

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        kv = q if self.kv_heads is None else q[:, : self.kv_heads]
        return F.scaled_dot_product_attention(q, kv, kv, is_causal=self.causal,
                                              enable_gqa=self.kv_heads is not None)


def test_scaled_dot_product_attention_cpu_kernel_matches_hand_count() -> None:
    b, h, length, d = 1, 2, 6, 8
    expected = 2 * (b * h * length * length * d) * 2  # Q K^T and A V, 576 MACs each -> 2304
    q = torch.randn(b, h, length, d)
    ops = flops_by_op(SDPA(), q)
    assert ops == {"aten._scaled_dot_product_flash_attention_for_cpu": expected}
    assert expected == 2304
    assert count_flops(SDPA(causal=True), q) == expected  # masks are not discounted
    # grouped-query attention: 4 query heads over 2 key/value heads still does 4 heads of work
    assert count_flops(SDPA(kv_heads=2), torch.randn(1, 4, length, d)) == 2 * expected


class Spectra(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(x)  # r2c
        back = torch.fft.irfft(spec, n=x.shape[-1])  # c2r
        full = torch.fft.fft(x.to(torch.complex64))  # c2c
        return spec.abs().sum() + back.sum() + full.abs().sum()


def test_fft_flops_match_hand_count() -> None:
    n, rows = 64, 4  # log2(64) = 6
    real = 2.5 * n * 6 * rows  # 3840: half of a complex transform's 5 N log2 N
    complex_ = 5 * n * 6 * rows  # 7680
    ops = flops_by_op(Spectra(), torch.randn(1, rows, n))
    assert ops == {"aten._fft_r2c": real, "aten._fft_c2r": real, "aten._fft_c2c": complex_}
    # a 2-D transform of 8 x 16 complex points: N = 128, 5 * 128 * 7 = 4480
    assert count_flops(_Lambda(lambda x: torch.fft.fft2(x.to(torch.complex64)).real), torch.randn(1, 8, 16)) == 4480
    # 200-point rfft (one second at 200 Hz, CBraMod's patch): 2.5 * 200 * log2(200) = 3821.9 -> 3822
    assert fft_flops(200, 1, real=True) == 3822
    assert count_flops(_Lambda(lambda x: torch.fft.rfft(x).abs()), torch.randn(1, 200)) == 3822
    assert fft_flops(1, 10, real=False) == 0


class _Lambda(nn.Module):
    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def test_flops_need_batch_one() -> None:
    with pytest.raises(UserError, match=r"batch 1.*\(4, 2, 32\).*x\[:1\]"):
        count_flops(SmallCNN(), torch.randn(4, 2, 32))


class _ThreadProbe(nn.Module):
    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 2)
        self.delay = delay
        self.seen_threads: set[int] = set()
        self.seen_grad: set[bool] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen_threads.add(torch.get_num_threads())
        self.seen_grad.add(torch.is_grad_enabled())
        if self.delay:
            time.sleep(self.delay)
        return self.lin(x)


def test_latency_positive_finite_and_thread_count_restored() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        probe = _ThreadProbe()
        stats = measure_latency(probe, torch.randn(1, 8), threads=1, warmup=2, repeats=7)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert probe.seen_threads == {1} and probe.seen_grad == {False}
    assert probe.training
    for key in ("median_ms", "p10_ms", "p90_ms", "iqr_ms", "mean_ms", "min_ms"):
        assert math.isfinite(stats[key]) and stats[key] >= 0, key
    assert stats["median_ms"] > 0
    assert stats["p10_ms"] <= stats["median_ms"] <= stats["p90_ms"]
    assert stats["repeats"] == 7 and not stats["truncated"] and stats["threads"] == 1


def test_latency_respects_time_budget() -> None:
    stats = measure_latency(_ThreadProbe(delay=0.01), torch.randn(1, 8), warmup=0, repeats=1000, max_seconds=0.05)
    assert MIN_REPEATS <= stats["repeats"] < 1000 and stats["truncated"]
    assert stats["median_ms"] >= 10.0  # each run sleeps 10 ms


@pytest.mark.parametrize("kwargs, bad", [({"threads": 0}, "threads=0"), ({"repeats": 0}, "repeats=0"),
                                         ({"warmup": -1}, "warmup=-1"), ({"max_seconds": 0}, "max_seconds=0")])
def test_latency_rejects_bad_settings(kwargs: dict, bad: str) -> None:
    with pytest.raises(UserError, match=bad):
        measure_latency(_ThreadProbe(), torch.randn(1, 8), **kwargs)


def test_cost_report_is_json_and_consistent() -> None:
    spec = InputSpec(n_channels=2, n_samples=32, n_classes=5)
    model = SmallCNN()
    report = cost_report(model, spec, warmup=1, repeats=3)
    json.dumps(report)
    assert report["params"] == count_params(model)
    assert report["flops"] == 4162 == sum(report["flops_by_op"].values())
    assert report["latency_ms"] == report["latency"]["median_ms"] > 0
    no_latency = cost_report(model, spec, latency=False)
    assert no_latency["latency_ms"] is None and no_latency["flops"] == 4162
    assert torch.equal(example_input(spec), example_input(spec))  # the same window every time


def test_each_submodule_gets_its_own_mode_back() -> None:
    model = SmallCNN()
    model.conv2.eval()  # e.g. a frozen part inside a training model
    count_flops(model, torch.randn(1, 2, 32))
    measure_latency(model, torch.randn(1, 2, 32), warmup=0, repeats=1)
    assert model.training and model.conv1.training and not model.conv2.training
