"""Every distillation loss against a value worked out by hand on tiny tensors."""
from __future__ import annotations

import math

import pytest
import torch

from eegkd_plugins.distillers.at import at_loss, default_pairs, student_attention, teacher_attention
from eegkd_plugins.distillers.dkd import dkd_loss, nckd_loss, tckd_loss
from eegkd_plugins.distillers.dlink import mimic_loss
from eegkd_plugins.distillers.fitnets import hint_loss
from eegkd_plugins.distillers.kd import kd_loss
from eegkd_plugins.distillers.pkt import pkt_loss
from eegkd_plugins.distillers.rkd import pairwise_distances, rkd_angle_loss, rkd_distance_loss
from eegkd_plugins.distillers.router import balance_loss, mix_layers, top_k_renormalize
from eegkd_plugins.distillers.spectral import spectral_loss, spectral_magnitude_loss, spectral_phase_loss

ln = math.log


def close(value: torch.Tensor, expected: float, tol: float = 1e-5) -> bool:
    return abs(float(torch.as_tensor(value).detach()) - expected) < tol


# ------------------------------------------------------------------ KD
def kl(p: list[float], q: list[float]) -> float:
    """KL(p || q) of two distributions given as lists."""
    return sum(pi * ln(pi / qi) for pi, qi in zip(p, q))


def test_kd_loss_by_hand():
    # Two windows with different KL values: a batch sum or an element mean would give another number.
    s = torch.tensor([[0.0, 0.0], [ln(3.0), 0.0]])  # softmax -> [1/2, 1/2], [3/4, 1/4]
    t = torch.tensor([[ln(3.0), 0.0], [0.0, 0.0]])  # softmax -> [3/4, 1/4], [1/2, 1/2]
    # T = 1: the mean over the batch of KL(p_t || p_s)
    expected = (kl([0.75, 0.25], [0.5, 0.5]) + kl([0.5, 0.5], [0.75, 0.25])) / 2
    assert close(kd_loss(s, t, 1.0), expected)
    # T = 2: softmax of [ln3 / 2, 0] = [r3/(r3+1), 1/(r3+1)]; the mean KL times T^2 = 4
    r3 = math.sqrt(3.0)
    p, q = r3 / (r3 + 1), 1 / (r3 + 1)
    assert close(kd_loss(s, t, 2.0), 4 * (kl([p, q], [0.5, 0.5]) + kl([0.5, 0.5], [p, q])) / 2)
    assert close(kd_loss(t, t, 4.0), 0.0)


def test_kd_loss_does_not_touch_teacher_grad():
    s = torch.randn(3, 4, requires_grad=True)
    t = torch.randn(3, 4, requires_grad=True)
    kd_loss(s, t, 4.0).backward()
    assert s.grad is not None and t.grad is None


# ------------------------------------------------------------------ DKD
def test_dkd_terms_by_hand():
    s = torch.tensor([[0.0, 0.0, 0.0], [ln(2.0), 0.0, 0.0]])  # p_s = [1/3, 1/3, 1/3], [1/2, 1/4, 1/4]
    t = torch.tensor([[ln(2.0), ln(2.0), 0.0], [0.0, 0.0, 0.0]])  # p_t = [2/5, 2/5, 1/5], [1/3, 1/3, 1/3]
    y = torch.tensor([0, 1])
    # binary target / rest: window 1 teacher [.4, .6], student [1/3, 2/3]; window 2 teacher [1/3, 2/3],
    # student [1/4, 3/4]
    tckd = (kl([0.4, 0.6], [1 / 3, 2 / 3]) + kl([1 / 3, 2 / 3], [0.25, 0.75])) / 2
    # non-target classes renormalized: window 1 teacher [2/3, 1/3], student [1/2, 1/2];
    # window 2 (classes 0, 2) teacher [1/2, 1/2], student [2/3, 1/3]
    nckd = (kl([2 / 3, 1 / 3], [0.5, 0.5]) + kl([0.5, 0.5], [2 / 3, 1 / 3])) / 2
    assert close(tckd_loss(s, t, y, 1.0), tckd)
    assert close(nckd_loss(s, t, y, 1.0), nckd)
    assert close(dkd_loss(s, t, y, 1.0, 8.0, 1.0), tckd + 8 * nckd)
    assert close(dkd_loss(s, t, y, 2.0, 3.0, 1.0), 2 * tckd + 3 * nckd)


def test_dkd_recovers_kd_with_paper_identity():
    # Zhao et al. eq. (3): KD = TCKD + (1 - p_t^target) * NCKD
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 1])
    for i in range(5):
        si, ti, yi = s[i:i + 1], t[i:i + 1], y[i:i + 1]
        pt = torch.softmax(ti, 1)[0, yi].item()
        expected = tckd_loss(si, ti, yi, 1.0) + (1 - pt) * nckd_loss(si, ti, yi, 1.0)
        assert close(kd_loss(si, ti, 1.0), float(expected))


def test_dkd_nckd_is_zero_for_binary_tasks():
    s, t = torch.randn(4, 2), torch.randn(4, 2)
    assert close(nckd_loss(s, t, torch.tensor([0, 1, 1, 0]), 4.0), 0.0)


# ------------------------------------------------------------------ FitNets
def test_hint_loss_by_hand():
    r = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    h = torch.tensor([[1.0, 0.0], [0.0, 4.0]], requires_grad=True)
    loss = hint_loss(r, h)
    assert close(loss, (0 + 4 + 9 + 0) / 4)
    loss.backward()
    assert h.grad is None and torch.allclose(r.grad, torch.tensor([[0.0, 1.0], [1.5, 0.0]]))


# ------------------------------------------------------------------ RKD
def test_rkd_distance_loss_by_hand():
    s = torch.tensor([[0.0], [1.0], [3.0]])  # distances 1, 3, 2; mean 2 -> .5, 1.5, 1
    t = torch.tensor([[0.0], [2.0], [4.0]])  # distances 2, 4, 2; mean 8/3 -> .75, 1.5, .75
    # |diff| .25 on pairs (0,1) and (1,2), both orders -> 4 entries of Huber .5 * .25^2, mean over 9
    assert close(rkd_distance_loss(s, t), 4 * 0.5 * 0.25 ** 2 / 9)
    assert close(rkd_distance_loss(s * 7.0, s), 0.0)  # invariant to the student's scale


def test_rkd_angle_loss_by_hand():
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    # cosines at vertex 0: s has (1,2) -> 0, t has 1/sqrt2; at vertex 1: s has (0,2) -> 1/sqrt2, t has 0;
    # vertex 2 agrees. Four entries differ by 1/sqrt2 -> Huber .5 * .5 each; mean over 27 entries
    assert close(rkd_angle_loss(s, t), 4 * 0.5 * 0.5 / 27)


def test_pairwise_distances_have_finite_gradients_at_duplicates():
    e = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    d = pairwise_distances(e)
    assert torch.allclose(torch.diagonal(d), torch.zeros(3))
    rkd_distance_loss(e, torch.randn(3, 4)).backward()
    assert torch.isfinite(e.grad).all()


# ------------------------------------------------------------------ PKT
def test_pkt_loss_by_hand():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # kernel [[1, .5], [.5, 1]] -> rows [2/3, 1/3]
    t = torch.tensor([[1.0, 0.0], [2.0, 0.0]])  # all cosines 1 -> rows [1/2, 1/2]
    expected = (2 * 0.5 * ln(0.5 / (2 / 3)) + 2 * 0.5 * ln(0.5 / (1 / 3))) / 4
    assert close(pkt_loss(s, t), expected)
    assert close(pkt_loss(t, t), 0.0)


# ------------------------------------------------------------------ AT
def test_attention_maps_and_loss_by_hand():
    f = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (B=1, F=2, T=2): mean of squares [5, 10]
    a_s = student_attention(f, 2)
    assert torch.allclose(a_s, torch.tensor([[1.0, 2.0]]) / math.sqrt(5))
    h = torch.ones(1, 3, 2, 4)  # uniform teacher -> [1, 1] / sqrt2
    a_t = teacher_attention(h)
    expected = ((1 / math.sqrt(5) - 1 / math.sqrt(2)) ** 2 + (2 / math.sqrt(5) - 1 / math.sqrt(2)) ** 2) / 2
    assert close(at_loss(a_s, a_t), expected)
    # a student map twice as long is pooled to the teacher's patches: [1, 1, 2, 2] -> [1, 2]
    g = torch.tensor([[[1.0, 1.0, 2.0, 2.0]]]).sqrt()
    assert torch.allclose(student_attention(g, 2), torch.tensor([[1.0, 2.0]]) / math.sqrt(5))


def test_at_default_pairs_end_at_last_layer():
    assert default_pairs(("a", "b"), ("l1", "l2", "l3")) == [("a", "l2"), ("b", "l3")]
    assert default_pairs(("a", "b", "c"), tuple(f"l{i}" for i in range(1, 13))) == [
        ("a", "l4"), ("b", "l8"), ("c", "l12")]


# ------------------------------------------------------------------ DLink pieces
def test_mimic_loss_by_hand():
    p = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    t = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    assert close(mimic_loss(p, t, "mse"), (0 + 0 + 4 + 4) / 4)
    assert close(mimic_loss(p, t, "cosine"), (0 + 1) / 2)  # token 1 orthogonal


def test_balance_loss_by_hand():
    uniform = torch.full((4, 3), 1 / 3)
    assert close(balance_loss(uniform), 0.0)
    one_hot = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert close(balance_loss(one_hot), ln(2.0))  # KL(one-hot || uniform) = log L
    half = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # per-input one-hot, balanced over the batch
    assert close(balance_loss(half), 0.0)


def test_top_k_and_mixing():
    alpha = torch.tensor([[0.5, 0.3, 0.2], [0.15, 0.05, 0.8]])
    kept = top_k_renormalize(alpha, 2)
    assert torch.allclose(kept, torch.tensor([[0.625, 0.375, 0.0], [0.15 / 0.95, 0.0, 0.8 / 0.95]]), atol=1e-6)
    assert torch.equal(top_k_renormalize(alpha, 0), alpha)
    layers = [torch.full((2, 1, 1, 1), float(v)) for v in (1.0, 10.0, 100.0)]
    assert torch.allclose(mix_layers(layers, alpha).flatten(), torch.tensor([0.5 + 3 + 20, 0.15 + 0.5 + 80]))


# ------------------------------------------------------------------ spectral
def test_spectral_terms_by_hand():
    s = torch.tensor([1.0, 0.0])  # rfft -> [1, 1]
    t = torch.tensor([-1.0, -1.0])  # rfft -> [-2, 0]
    # magnitude: (|log2 - log3| + |log2 - log1|) / 2
    assert close(spectral_magnitude_loss(s, t, dim=0), (abs(ln(2) - ln(3)) + ln(2)) / 2)
    # phase: all teacher energy in bin 0, where the phases differ by pi: weight 1 * (1 - cos pi) = 2
    assert close(spectral_phase_loss(s, t, dim=0), 2.0)
    mag, phase = spectral_loss(s, t, dim=0, phase_weight=0.5)
    assert close(phase, 1.0)


def test_spectral_loss_zero_for_identical_inputs():
    x = torch.randn(2, 3, 4, 5)
    mag, phase = spectral_loss(x, x.clone(), dim=2, n_fft=8)
    assert close(mag, 0.0) and close(phase, 0.0)


def test_spectral_magnitude_invariant_to_circular_shift_phase_is_not():
    x = torch.randn(2, 3, 4, 5)
    t = torch.randn(2, 3, 4, 5)
    shifted = torch.roll(x, shifts=1, dims=2)
    assert torch.allclose(spectral_magnitude_loss(shifted, t, 2), spectral_magnitude_loss(x, t, 2), atol=1e-6)
    assert not torch.allclose(spectral_phase_loss(shifted, x, 2), torch.tensor(0.0), atol=1e-3)


def test_spectral_phase_zero_for_any_positive_scale_of_the_teacher_not_for_its_sign():
    t = torch.randn(2, 3, 6, 5)
    for scale in (0.01, 1.0, 3.0):
        assert float(spectral_phase_loss(scale * t, t, 2, n_fft=8)) == pytest.approx(0.0, abs=1e-5)
    assert float(spectral_phase_loss(-t, t, 2, n_fft=8)) > 0.5


def test_spectral_phase_gradient_is_bounded_as_the_student_spectrum_vanishes():
    """Unweighted 1 - cos has gradients of order 1/|F_s| (about 1e3 at a 1e-6 scale); the weighted term stays bounded."""
    gen = torch.Generator().manual_seed(0)
    x, t = torch.randn(2, 3, 6, 5, generator=gen), torch.randn(2, 3, 6, 5, generator=gen)
    norms = []
    for scale in (1.0, 1e-2, 1e-4, 1e-6):
        s = (scale * x).requires_grad_(True)
        spectral_phase_loss(s, t, 2, n_fft=8).backward()
        norms.append(float(s.grad.norm()))
    # the bound: per bin 2 w_f / M, so over the batch a constant of the teacher alone
    re = torch.fft.rfft(t, n=8, dim=2)
    bound = 2.0 * (8 ** 0.5) / float(re.abs().mean()) / (2 * 3 * 5) ** 0.5
    assert all(math.isfinite(n) and n <= bound for n in norms), (norms, bound)


@pytest.mark.parametrize("teacher_zero", [True, False])
def test_spectral_loss_finite_values_and_grads_at_exact_zeros(teacher_zero):
    s = torch.zeros(2, 3, 4, 5, requires_grad=True)
    t = torch.zeros(2, 3, 4, 5) if teacher_zero else torch.randn(2, 3, 4, 5)
    mag, phase = spectral_loss(s, t, dim=2, n_fft=8)
    (mag + phase).backward()
    assert torch.isfinite(mag) and torch.isfinite(phase) and torch.isfinite(s.grad).all()
    if teacher_zero:
        assert close(mag, 0.0) and close(phase, 0.0)


def test_spectral_loss_teacher_gets_no_gradient():
    s = torch.randn(2, 3, 4, 5, requires_grad=True)
    t = torch.randn(2, 3, 4, 5, requires_grad=True)
    sum(spectral_loss(s, t, dim=2, n_fft=8)).backward()
    assert t.grad is None and s.grad is not None and s.grad.abs().sum() > 0
