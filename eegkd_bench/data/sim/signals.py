"""Signal generators of the simulated EEG: 1/f background, rhythms, transients, subject traits.

Every generator draws from the ``numpy.random.Generator`` it is given, so a fixed seed gives
identical arrays. Noise is shaped in the frequency domain (:func:`shaped_noise`) and has unit
variance; callers scale it to microvolts.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import signal

SFREQ = 200.0

def _freqs(n_times: int) -> np.ndarray:
    return np.fft.rfftfreq(n_times, 1.0 / SFREQ)


def shaped_noise(rng: np.random.Generator, amp: np.ndarray, shape: tuple[int, ...], n_times: int) -> np.ndarray:
    """Gaussian noise with amplitude spectrum ``amp`` (broadcast to ``shape + (F,)``), unit variance."""
    n_freqs = n_times // 2 + 1
    amp = np.array(np.broadcast_to(amp, amp.shape[:-1] + (n_freqs,)), dtype=np.float32)
    amp[..., 0] = 0.0
    # irfft variance is (4 / N^2) * sum(a_k^2) over the non-DC bins (Nyquist bin ignored)
    norm = np.sqrt((amp[..., 1:] ** 2).sum(-1, keepdims=True)) * 2.0 / n_times
    amp /= np.maximum(norm, 1e-12)
    # only bins that carry power are drawn: narrow bands then cost a fraction of a full spectrum
    live = np.flatnonzero(amp.reshape(-1, n_freqs).max(0) > 1e-4 * amp.max())
    lo, hi = (int(live[0]), int(live[-1]) + 1) if len(live) else (0, 1)
    z = np.empty(shape + (hi - lo,), np.complex64)
    z.real = rng.standard_normal(z.shape, dtype=np.float32)
    z.imag = rng.standard_normal(z.shape, dtype=np.float32)
    z *= amp[..., lo:hi]
    spec = np.zeros(shape + (n_freqs,), np.complex64)
    spec[..., lo:hi] = z
    return np.fft.irfft(spec, n=n_times).astype(np.float32, copy=False)


def aperiodic(rng: np.random.Generator, shape: tuple[int, ...], n_times: int, exponent: float,
              knee_hz: float = 0.5) -> np.ndarray:
    """Unit-variance 1/f^exponent noise (power), flattened below ``knee_hz``."""
    f = _freqs(n_times)
    amp = (np.maximum(f, knee_hz)) ** (-exponent / 2.0)
    return shaped_noise(rng, amp, shape, n_times)


def narrowband(rng: np.random.Generator, shape: tuple[int, ...], n_times: int, f0: np.ndarray | float,
               bw: float) -> np.ndarray:
    """Unit-variance narrow-band oscillation: Gaussian power peak at ``f0`` (broadcast) of s.d. ``bw``."""
    f = _freqs(n_times)
    f0 = np.asarray(f0, float)[..., None]
    amp = np.exp(-((f - f0) ** 2) / (4.0 * bw ** 2))
    return shaped_noise(rng, amp, shape, n_times)


def band_noise(rng: np.random.Generator, shape: tuple[int, ...], n_times: int, lo: float, hi: float) -> np.ndarray:
    """Unit-variance broadband noise between ``lo`` and ``hi`` Hz (muscle activity)."""
    f = _freqs(n_times)
    amp = ((f >= lo) & (f <= hi)).astype(float) * (np.maximum(f, 1.0) / hi) ** -0.5
    return shaped_noise(rng, amp, shape, n_times)



def _bump(t: np.ndarray, t0: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - t0) / width) ** 2)


def spike_wave(t: np.ndarray) -> np.ndarray:
    """A spike (~40 ms) and its after-going slow wave, peak |1|, ``t`` in seconds from the spike peak."""
    return (-1.0 * _bump(t, 0.0, 0.012) + 0.3 * _bump(t, 0.028, 0.012)
            - 0.45 * _bump(t, 0.17, 0.06))


def triphasic(t: np.ndarray) -> np.ndarray:
    """A blunt triphasic/sharp periodic discharge, peak |1|."""
    return 0.35 * _bump(t, -0.05, 0.025) - 1.0 * _bump(t, 0.0, 0.03) + 0.55 * _bump(t, 0.09, 0.05)


def blink_wave(t: np.ndarray) -> np.ndarray:
    """A blink (~300 ms), peak 1."""
    x = np.clip(t / 0.08, 0.0, None)
    return (x ** 2) * np.exp(2.0 - x) / 1.0


def sum_of_events(n_times: int, onsets: Sequence[float], waveform, amplitudes: Sequence[float]) -> np.ndarray:
    """A time series with ``waveform`` placed at each onset (seconds)."""
    t = np.arange(n_times) / SFREQ
    out = np.zeros(n_times)
    for t0, a in zip(onsets, amplitudes):
        out += a * waveform(t - t0)
    return out


def preprocess(x: np.ndarray) -> np.ndarray:
    """CBraMod-style 0.3-75 Hz zero-phase band-pass (applied to padded segments)."""
    sos = _bandpass_sos()
    return signal.sosfiltfilt(sos, x, axis=-1).astype(np.float32)


@lru_cache(maxsize=1)
def _bandpass_sos() -> np.ndarray:
    return signal.butter(4, [0.3, 75.0], btype="bandpass", fs=SFREQ, output="sos")


@dataclass
class SubjectTraits:
    """The per-subject parameters behind cross-subject shift."""

    gain: float
    exponent: float
    bg_uv: float
    alpha_hz: float
    alpha_uv: float
    mu_hz: float
    mu_uv: float
    beta_hz: float
    beta_uv: float
    theta_uv: float
    noise_uv: float
    blink_rate: float
    blink_uv: float
    effect: float  # how strongly this subject shows the class effect (0..1+)


def draw_traits(rng: np.random.Generator) -> SubjectTraits:
    """Random subject traits within physiological ranges (our choice of ranges)."""
    alpha = float(np.clip(rng.normal(10.0, 0.9), 8.0, 12.5))
    return SubjectTraits(
        gain=float(np.exp(rng.normal(0.0, 0.25))),
        exponent=float(rng.uniform(1.3, 2.1)),
        bg_uv=float(rng.uniform(4.0, 7.0)),
        alpha_hz=alpha,
        alpha_uv=float(np.exp(rng.normal(np.log(9.0), 0.35))),
        mu_hz=float(np.clip(alpha + rng.normal(0.8, 0.6), 8.5, 13.5)),
        mu_uv=float(np.exp(rng.normal(np.log(6.0), 0.3))),
        beta_hz=float(rng.uniform(17.0, 25.0)),
        beta_uv=float(np.exp(rng.normal(np.log(2.5), 0.3))),
        theta_uv=float(np.exp(rng.normal(np.log(3.0), 0.3))),
        noise_uv=float(rng.uniform(0.8, 2.5)),
        blink_rate=float(rng.uniform(0.05, 0.4)),
        blink_uv=float(rng.uniform(60.0, 150.0)),
        effect=float(rng.uniform(0.4, 1.0)),
    )
