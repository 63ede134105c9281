"""DLink's spectral distillation term (our reading of the abstract: "magnitude and phase").

Both representations are transformed with a real FFT along one axis (for teacher
layouts ``(B, C, P, D)`` the patch axis ``P``: it is the only axis with a temporal
order — the width axis ``D`` of a transformer has none, so a spectrum along it would
mean nothing). With few patches (``P = 4`` on BCIC-IV-2a) the axis is zero-padded to
``n_fft`` points: padding adds no information, but it samples the spectrum more
densely so the phase term varies smoothly with sub-patch shifts instead of over
only ``P//2 + 1`` bins.

* magnitude: ``mean | log(1 + |F_s|) - log(1 + |F_t|) |`` (log compresses the
  dominant low-frequency bins);
* phase: ``mean over series of sum_f w_f (|F_s| / M) (1 - cos(phi_s - phi_t))`` with
  ``w = |F_t| / sum_f |F_t|``, so bins where the teacher has no energy (where its
  phase is noise) do not count, and the student's own magnitude ``|F_s|`` (over ``M``,
  the batch's mean teacher magnitude, a constant) weighting its phase, so bins where
  the student has no energy do not count either.

Numerics: the phase cosine is ``Re(F_s conj F_t) / (|F_s| |F_t|)`` — no
``atan2``/``angle``. Unweighted, ``1 - cos`` has a gradient of order ``1 / |F_s|``, which
explodes as the student's spectrum goes to zero (and then takes over a clipped update).
Weighted, each bin's term is ``w_f (|F_s| - Re(F_s conj F_t) / |F_t|) / M``, whose gradient
with respect to ``(Re F_s, Im F_s)`` has norm at most ``2 w_f / M`` at any student magnitude
(:func:`spectral_phase_loss`); magnitudes are ``sqrt(re^2 + im^2 + eps^2)`` so values and
gradients are finite at exact zeros; everything runs in float32.
"""
from __future__ import annotations

import torch

_EPS = 1e-6


def _spectrum(x: torch.Tensor, dim: int, n_fft: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = max(x.shape[dim], n_fft or 0)
    spec = torch.fft.rfft(x.float(), n=n, dim=dim)
    re, im = spec.real, spec.imag
    return re, im, torch.sqrt(re * re + im * im + _EPS * _EPS)


def spectral_magnitude_loss(student: torch.Tensor, teacher: torch.Tensor, dim: int = 2,
                            n_fft: int | None = None) -> torch.Tensor:
    """Mean L1 distance of ``log1p`` magnitude spectra along ``dim`` (teacher detached)."""
    _, _, m_s = _spectrum(student, dim, n_fft)
    with torch.no_grad():
        _, _, m_t = _spectrum(teacher.detach(), dim, n_fft)
    return (torch.log1p(m_s) - torch.log1p(m_t)).abs().mean()


def spectral_phase_loss(student: torch.Tensor, teacher: torch.Tensor, dim: int = 2,
                        n_fft: int | None = None) -> torch.Tensor:
    """Magnitude-weighted ``1 - cos`` of the phase difference along ``dim`` (teacher detached).

    Per bin ``w_f * |F_s| * (1 - cos) / M = w_f * (|F_s| - Re(F_s conj F_t) / |F_t|) / M``: its
    gradient with respect to the student's coefficient is bounded by ``2 * w_f / M`` whatever the
    student's magnitude (``w`` sums to one per series; ``M`` is the batch's mean teacher magnitude).
    """
    re_s, im_s, m_s = _spectrum(student, dim, n_fft)
    with torch.no_grad():
        re_t, im_t, _ = _spectrum(teacher.detach(), dim, n_fft)
        m_t_exact = torch.sqrt(re_t * re_t + im_t * im_t)
        w = m_t_exact / (m_t_exact.sum(dim=dim, keepdim=True) + _EPS)
        m_t = torch.sqrt(re_t * re_t + im_t * im_t + _EPS * _EPS)
        unit_re, unit_im = re_t / m_t, im_t / m_t  # the teacher's phase as a unit phasor
        scale = m_t_exact.mean().clamp_min(_EPS)
    weighted = m_s - (re_s * unit_re + im_s * unit_im)  # = |F_s| (1 - cos(phi_s - phi_t))
    return (w * weighted).sum(dim=dim).mean() / scale


def spectral_loss(student: torch.Tensor, teacher: torch.Tensor, dim: int = 2, n_fft: int | None = None,
                  phase_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(magnitude term, phase_weight * phase term)`` along ``dim``."""
    mag = spectral_magnitude_loss(student, teacher, dim, n_fft)
    phase = spectral_phase_loss(student, teacher, dim, n_fft) if phase_weight else mag.new_zeros(())
    return mag, phase_weight * phase
