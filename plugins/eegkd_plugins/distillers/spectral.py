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
* phase: ``mean over series of sum_f w_f (1 - cos(phi_s - phi_t))`` with
  ``w = |F_t| / sum_f |F_t|``, so bins where the teacher has no energy (where its
  phase is noise) do not count.

Numerics: magnitudes are ``sqrt(re^2 + im^2 + eps^2)`` and the phase cosine is
``Re(F_s conj F_t) / (|F_s| |F_t|)`` — no ``atan2``/``angle`` — so values and gradients
are finite at exact zeros; everything runs in float32.
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
    """Teacher-magnitude-weighted ``1 - cos`` of the phase difference along ``dim`` (teacher detached)."""
    re_s, im_s, m_s = _spectrum(student, dim, n_fft)
    with torch.no_grad():
        re_t, im_t, _ = _spectrum(teacher.detach(), dim, n_fft)
        m_t_exact = torch.sqrt(re_t * re_t + im_t * im_t)
        w = m_t_exact / (m_t_exact.sum(dim=dim, keepdim=True) + _EPS)
        m_t = torch.sqrt(re_t * re_t + im_t * im_t + _EPS * _EPS)
    cos = (re_s * re_t + im_s * im_t) / (m_s * m_t)
    return (w * (1.0 - cos)).sum(dim=dim).mean()


def spectral_loss(student: torch.Tensor, teacher: torch.Tensor, dim: int = 2, n_fft: int | None = None,
                  phase_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(magnitude term, phase_weight * phase term)`` along ``dim``."""
    mag = spectral_magnitude_loss(student, teacher, dim, n_fft)
    phase = spectral_phase_loss(student, teacher, dim, n_fft) if phase_weight else mag.new_zeros(())
    return mag, phase_weight * phase
