"""DLink's input-conditioned layer router and its probe (training-only; our reading of the paper).

For teacher layers ``H_1..H_L`` of shape ``(B, C, P, D)``:

* summary ``s_l = mean over (C, P) of LayerNorm(H_l)`` (no affine: only the shape of
  each token's activation matters, not the layer's scale);
* ``r = MLP([s_1..s_L])``, ``alpha = softmax(r / tau)``, optionally only the top-k
  weights kept and renormalized (the "dominant" layers);
* target ``H~ = sum_l alpha_l H'_l``, where ``H'_l`` is ``LayerNorm(H_l)`` by default
  (so ``alpha`` measures a layer's share and not its norm: deeper residual layers are
  larger) or the raw layer. A mix of normalised layers is normalised again
  (:func:`routed_target`): a convex mix of disagreeing tokens is shorter than each of them,
  so without it the mimic loss's scale would depend on how spread the router's weights are.

The router learns where the task information is through a linear probe on the
pooled target (``mean over (C, P)`` of ``H~``, then LayerNorm + linear) trained with
cross-entropy, plus a small balance term ``KL(mean_batch alpha || uniform)`` that
discourages an accidental early collapse onto one layer without preventing a
clearly better layer from winning.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eegkd_bench.api import layer_summary
from eegkd_plugins.distillers.common import cross_entropy

#: reads the rows ``idx`` (sorted) of the training set: ``(summaries, pooled, y)``, the first two ``(B, L, D)``
SummaryReader = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def layer_summaries(layers: list[torch.Tensor], normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(router inputs, pooled targets)``, each ``(B, L, D)``: mean over (C, P) of LN(H_l) and of H'_l."""
    summaries = torch.stack([layer_summary(h, "ln_mean") for h in layers], dim=1)
    pooled = summaries if normalize else torch.stack([layer_summary(h, "mean") for h in layers], dim=1)
    return summaries, pooled


def summary_stats(normalize: bool) -> tuple[str, ...]:
    """The per-layer summaries (:data:`eegkd_bench.api.SUMMARY_STATS`) stage 1 needs: router inputs, pooled targets."""
    return ("ln_mean",) if normalize else ("ln_mean", "mean")


def mix_layers(layers: list[torch.Tensor] | torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``sum_l alpha[:, l] * layers[l]`` for per-input weights ``alpha`` ``(B, L)``."""
    stacked = torch.stack(list(layers), dim=1) if isinstance(layers, (list, tuple)) else layers
    shape = alpha.shape + (1,) * (stacked.dim() - 2)
    return (alpha.reshape(shape) * stacked).sum(dim=1)


def routed_target(layers: list[torch.Tensor], alpha: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """``H~``: the router's mix of ``layers`` (already normalised when ``normalize``), layer-normalised
    again when ``normalize`` so every token has zero mean and unit variance over the width, whatever ``alpha``."""
    mixed = mix_layers(layers, alpha)
    return F.layer_norm(mixed, mixed.shape[-1:]) if normalize else mixed


def top_k_renormalize(alpha: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest weights per row and renormalize them to sum to one (``k <= 0``: all)."""
    if k <= 0 or k >= alpha.shape[1]:
        return alpha
    kept = torch.zeros_like(alpha).scatter(1, alpha.topk(k, dim=1).indices, 1.0)
    masked = alpha * kept
    return masked / masked.sum(dim=1, keepdim=True)


def balance_loss(alpha: torch.Tensor) -> torch.Tensor:
    """``KL(mean_batch alpha || uniform) = log L - H(mean alpha)``; zero when layers are used evenly."""
    mean = alpha.mean(dim=0).clamp_min(1e-12)
    return math.log(alpha.shape[1]) + (mean * mean.log()).sum()


class LayerRouter(nn.Module):
    """Per-input softmax weights over the teacher's layers from their summaries ``(B, L, D)``."""

    def __init__(self, n_layers: int, width: int, hidden: int = 64, tau: float = 1.0, top_k: int = 0) -> None:
        super().__init__()
        self.tau, self.top_k = tau, top_k
        self.mlp = nn.Sequential(nn.Linear(n_layers * width, hidden), nn.GELU(), nn.Linear(hidden, n_layers))
        nn.init.zeros_(self.mlp[2].weight)  # start from uniform weights: no layer is favoured before the probe speaks
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, summaries: torch.Tensor) -> torch.Tensor:
        alpha = F.softmax(self.mlp(summaries.flatten(1)) / self.tau, dim=1)
        return top_k_renormalize(alpha, self.top_k)


class Probe(nn.Module):
    """Linear probe on a pooled target ``(B, D)``: LayerNorm then a linear classifier."""

    def __init__(self, width: int, n_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_classes))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)


def router_objective(router: LayerRouter, probe: Probe, summaries: torch.Tensor, pooled: torch.Tensor,
                     y: torch.Tensor, balance_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(probe CE + balance_weight * balance, alpha, probe logits)`` for one batch of summaries."""
    alpha = router(summaries)
    logits = probe(mix_layers(pooled, alpha))
    loss = cross_entropy(logits, y) + balance_weight * balance_loss(alpha)  # UNLABELLED windows skipped
    return loss, alpha, logits


def fit_router(router: LayerRouter, probe: Probe, read: SummaryReader, n: int, *, epochs: int, lr: float,
               batch_size: int, balance_weight: float, seed: int) -> dict[str, float]:
    """Train router + probe on per-window summaries read batch by batch (stage 1).

    Returns the final training loss and probe accuracy over all ``n`` windows.
    """
    gen = torch.Generator().manual_seed(seed)
    params = list(router.parameters()) + list(probe.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    router.train()
    probe.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).numpy()
        for start in range(0, n, batch_size):
            s, p, y = read(np.sort(order[start:start + batch_size]))  # sorted: sequential reads from memmaps
            loss, _, _ = router_objective(router, probe, s, p, y, balance_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    ce_sum, correct, alpha_sum = 0.0, 0, None
    with torch.no_grad():
        for start in range(0, n, batch_size):
            s, p, y = read(np.arange(start, min(n, start + batch_size)))
            alpha = router(s)
            logits = probe(mix_layers(p, alpha))
            ce_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            alpha_sum = alpha.sum(0) if alpha_sum is None else alpha_sum + alpha.sum(0)
        loss = ce_sum / max(1, n) + balance_weight * float(balance_loss((alpha_sum / max(1, n))[None]))
    return {"probe_train_loss": loss, "probe_train_acc": correct / max(1, n)}
