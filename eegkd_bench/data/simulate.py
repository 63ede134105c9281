"""Simulated EEG benchmarks with physiological structure (the embedded, offline default).

Every dataset mimics the shape of a real benchmark (channels, classes, window length, 200 Hz,
microvolts / 100 as in the CBraMod recipe) and is generated deterministically from a seed.

The generative model (our reading of common EEG simulation practice, not any one paper):

* **Sources**: 36 cortical patches below standard 10-20/10-10 sites, each a radial current
  dipole at 75 % of the head radius. Every patch emits aperiodic 1/f^chi noise (FFT-shaped);
  rhythmic patches add narrow-band oscillations: posterior alpha, sensorimotor mu and beta,
  frontal-midline theta, and delta where a paradigm needs slowing.
* **Lead field**: infinite-homogeneous-medium dipole potentials ``p.(r_e - r_s) / |r_e - r_s|^3``
  at electrode positions from MNE's standard 10-20 montage (offline), then the paradigm's
  reference or bipolar derivation. This gives realistic spatial correlation between channels.
* **Artifacts**: eye blinks and eye movements from dipoles at the eyes (frontal channels),
  focal muscle bursts (temporal/frontal electrodes), electrode pops, white sensor noise.
* **Subjects differ** in overall gain, 1/f exponent, alpha/mu/beta peak frequency and power,
  source positions and orientations (lead-field jitter), electrode gains, sensor noise, blink
  rate and the strength of the class effect; the protocol split is subject-disjoint.
* **Preprocessing** mirrors CBraMod's downstream recipe: 0.3-75 Hz band-pass (zero phase, on a
  padded segment so window edges are clean), 200 Hz, then microvolts / 100.

Run ``python -m eegkd_bench.data.simulate --baselines`` to print the classical-pipeline
accuracies quoted in ``docs/simulated_datasets.md``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Sequence

import numpy as np
from scipy import signal

from eegkd_bench.api import Availability, Dataset, EEGWindows, UserError
from eegkd_bench.data.cache import cached_windows, stable_hash

#: Bump whenever a change alters generated arrays (it is part of every checksum and cache key).
GENERATOR_VERSION = "1"
SFREQ = 200.0
UV_TO_UNITS = 1.0 / 100.0  # CBraMod scales microvolts by 1/100
_PAD_S = 1.0  # generated on each side of a window and cut off after filtering

# --------------------------------------------------------------------------- montages
BCIC_IV_2A_CHANNELS = ("Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
                       "CP3", "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz")
#: The 16 TCP bipolar pairs used for TUAB/TUEV by BIOT and CBraMod (modern names T7/P7/T8/P8
#: for the TUH files' T3/T5/T4/T6).
TCP_PAIRS = (("Fp1", "F7"), ("F7", "T7"), ("T7", "P7"), ("P7", "O1"),
             ("Fp2", "F8"), ("F8", "T8"), ("T8", "P8"), ("P8", "O2"),
             ("Fp1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"),
             ("Fp2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2"))
FACED_CHANNELS = ("Fp1", "Fp2", "Fz", "F3", "F4", "F7", "F8", "FC1", "FC2", "FC5", "FC6", "Cz", "C3", "C4",
                  "T7", "T8", "CP1", "CP2", "CP5", "CP6", "Pz", "P3", "P4", "P7", "P8", "PO3", "PO4", "Oz",
                  "O1", "O2", "A2", "A1")
SOURCE_SITES = ("Fp1", "Fp2", "AF3", "AF4", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6",
                "T7", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "T8", "CP5", "CP1", "CP2", "CP6",
                "P7", "P3", "Pz", "P4", "P8", "PO3", "PO4", "O1", "Oz", "O2")
_SRC = {name: i for i, name in enumerate(SOURCE_SITES)}
#: Source radius as a fraction of the head radius. A homogeneous medium has no skull to smear the
#: potentials, so the sources sit deeper than cortex to get a realistic scalp spread (our choice).
SOURCE_DEPTH = 0.5


@lru_cache(maxsize=1)
def electrode_positions() -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """10-20 electrode positions from MNE (offline), the fitted head centre and radius (metres)."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # 'standard_1020' is being renamed in MNE 1.14
        try:
            montage = mne.channels.make_standard_montage("colin27_1020")
        except ValueError:
            montage = mne.channels.make_standard_montage("standard_1020")
    pos = {k: np.asarray(v, float) for k, v in montage.get_positions()["ch_pos"].items()}
    pts = np.stack([pos[k] for k in pos if not k.startswith(("A", "M"))])
    # least-squares sphere: |p|^2 = 2 c.p + (r^2 - |c|^2)
    A = np.c_[2 * pts, np.ones(len(pts))]
    sol, *_ = np.linalg.lstsq(A, (pts ** 2).sum(1), rcond=None)
    centre = sol[:3]
    radius = float(np.sqrt(sol[3] + centre @ centre))
    return pos, centre, radius


@dataclass(frozen=True)
class Derivation:
    """Output channels as linear combinations of monopolar electrodes."""

    ch_names: tuple[str, ...]
    electrodes: tuple[str, ...]
    matrix: np.ndarray  # (n_channels, n_electrodes)


def referential(channels: Sequence[str], reference: str | None) -> Derivation:
    """Channels against one reference electrode, or the common average when ``reference`` is None."""
    channels = tuple(channels)
    if reference is None:
        n = len(channels)
        return Derivation(channels, channels, np.eye(n) - 1.0 / n)
    electrodes = channels + (reference,)
    D = np.c_[np.eye(len(channels)), -np.ones(len(channels))]
    return Derivation(channels, electrodes, D)


def bipolar(pairs: Sequence[tuple[str, str]]) -> Derivation:
    """Bipolar channels ``a-b``."""
    electrodes = tuple(dict.fromkeys(e for pair in pairs for e in pair))
    D = np.zeros((len(pairs), len(electrodes)))
    for i, (a, b) in enumerate(pairs):
        D[i, electrodes.index(a)] += 1.0
        D[i, electrodes.index(b)] -= 1.0
    return Derivation(tuple(f"{a}-{b}" for a, b in pairs), electrodes, D)


def _dipole_gain(elec: np.ndarray, src: np.ndarray, ori: np.ndarray) -> np.ndarray:
    """Potential at each electrode of unit dipoles (infinite homogeneous medium): (n_elec, n_src)."""
    d = elec[:, None, :] - src[None, :, :]
    return np.einsum("esk,sk->es", d, ori) / np.linalg.norm(d, axis=-1) ** 3


@lru_cache(maxsize=1)
def _gain_scale() -> float:
    """One constant that makes the template's strongest source-to-electrode gain about 1."""
    pos, centre, radius = electrode_positions()
    names = [k for k in pos if not k.startswith(("A", "M"))]
    elec = np.stack([pos[k] for k in names])
    src, ori = _template_sources()
    return float(np.median(np.abs(_dipole_gain(elec, src, ori)).max(0)))


def _template_sources() -> tuple[np.ndarray, np.ndarray]:
    pos, centre, radius = electrode_positions()
    radial = np.stack([pos[s] - centre for s in SOURCE_SITES])
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    return centre + SOURCE_DEPTH * radius * radial, radial


def _eye_dipoles(jitter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (2 eyes) and orientations (vertical, horizontal) of the corneo-retinal dipoles."""
    pos, centre, radius = electrode_positions()
    eyes = []
    for side in ("Fp1", "Fp2"):
        p = pos[side] - centre
        # about 3 cm below and 1 cm behind the Fp electrode
        eyes.append(centre + p + np.array([0.0, -0.01, -0.03]) + jitter)
    return np.stack(eyes), np.array([[0.0, 0.35, 0.94], [1.0, 0.0, 0.0]])


@dataclass
class Head:
    """A subject's forward model: sources and eye dipoles to the output channels."""

    L: np.ndarray  # (n_channels, n_sources)
    L_blink: np.ndarray  # (n_channels,)
    L_saccade: np.ndarray  # (n_channels,) horizontal eye movement, left-to-right positive
    E: np.ndarray  # (n_channels, n_electrodes): derivation x electrode gains, for electrode-level artifacts
    elec_pos: np.ndarray  # (n_electrodes, 3)


def make_head(rng: np.random.Generator, deriv: Derivation, *, pos_jitter_m: float = 0.005,
              tilt_rad: float = 0.25, elec_gain_sd: float = 0.08) -> Head:
    """A subject's lead field: template sources jittered in position and orientation."""
    pos, centre, radius = electrode_positions()
    elec = np.stack([pos[e] for e in deriv.electrodes])
    src, ori = _template_sources()
    src = src + rng.normal(0.0, pos_jitter_m, src.shape)
    ori = ori + rng.normal(0.0, tilt_rad, ori.shape)
    ori /= np.linalg.norm(ori, axis=1, keepdims=True)
    scale = _gain_scale()
    gains = np.exp(rng.normal(0.0, elec_gain_sd, len(elec)))
    E = deriv.matrix * gains[None, :]
    L = E @ (_dipole_gain(elec, src, ori) / scale)
    eye_pos, eye_ori = _eye_dipoles(rng.normal(0.0, 0.003, 3))
    blink_ori, sacc_ori = np.repeat(eye_ori[:1], 2, 0), np.repeat(eye_ori[1:], 2, 0)
    blink = _dipole_gain(elec, eye_pos, blink_ori).sum(1)
    sacc = _dipole_gain(elec, eye_pos, sacc_ori).sum(1)
    # scale so that 1.0 means "1 microvolt at Fp1 (blink) / F8 (eye movement)", whatever the montage
    b_norm = abs(_dipole_gain(pos["Fp1"][None], eye_pos, blink_ori).sum())
    s_norm = abs(_dipole_gain(pos["F8"][None], eye_pos, sacc_ori).sum())
    return Head(L, E @ (blink / b_norm), E @ (sacc / s_norm), E, elec)


# ----------------------------------------------------------------------- signal pieces
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


def _site_weights(sites: dict[str, float]) -> np.ndarray:
    w = np.zeros(len(SOURCE_SITES))
    for name, value in sites.items():
        w[_SRC[name]] = value
    return w


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


# ------------------------------------------------------------------------ the datasets
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


POSTERIOR = {"O1": 1.0, "Oz": 1.0, "O2": 1.0, "PO3": 0.8, "PO4": 0.8, "P3": 0.5, "Pz": 0.5, "P4": 0.5,
             "P7": 0.4, "P8": 0.4}
FRONTAL_MIDLINE = {"Fz": 1.0, "FC1": 0.6, "FC2": 0.6, "F3": 0.3, "F4": 0.3}
#: Sensorimotor areas whose mu/beta rhythms motor imagery modulates (our placement).
MOTOR_AREAS = {
    "left_hemi_hand": {"C3": 1.0, "C5": 0.5, "C1": 0.5, "CP5": 0.3},
    "right_hemi_hand": {"C4": 1.0, "C6": 0.5, "C2": 0.5, "CP6": 0.3},
    "feet": {"Cz": 1.0, "CP1": 0.35, "CP2": 0.35, "FC1": 0.35, "FC2": 0.35},
    "tongue": {"FC5": 0.8, "FC6": 0.8, "T7": 0.5, "T8": 0.5, "C5": 0.3, "C6": 0.3},
}


class SimulatedDataset(Dataset):
    """Base of the simulated benchmarks: options, splits, caching; subclasses generate one subject."""

    kind: ClassVar[str] = "simulated"  # type: ignore[assignment]
    sfreq: ClassVar[float] = SFREQ
    derivation: ClassVar[Derivation]
    default_subjects: ClassVar[int] = 12
    default_trials: ClassVar[int] = 12
    stratify_subjects: ClassVar[bool] = False  # one class per subject (abnormal): split by class too

    def __init__(self, n_subjects: int | None = None, trials_per_class: int | None = None, seed: int = 0,
                 split: Sequence[int] | None = None, window_s: float | None = None,
                 use_cache: bool = True) -> None:
        self.n_subjects = int(n_subjects if n_subjects is not None else self.default_subjects)
        self.trials_per_class = int(trials_per_class if trials_per_class is not None else self.default_trials)
        self.seed = int(seed)
        self.window_s = float(window_s if window_s is not None else type(self).window_s)
        self.use_cache = bool(use_cache)
        if self.n_subjects < 3:
            raise UserError(f"{self.name}: n_subjects={self.n_subjects} is too small; "
                            "expected at least 3 (one per train/val/test split)")
        if self.trials_per_class < 1:
            raise UserError(f"{self.name}: trials_per_class={self.trials_per_class}; expected a positive integer")
        if not 1.0 <= self.window_s <= 30.0:
            raise UserError(f"{self.name}: window_s={self.window_s}; expected seconds between 1 and 30")
        self.split_counts = self._split_counts(split)

    # -- options
    def _split_counts(self, split: Sequence[int] | None) -> tuple[int, int, int]:
        if split is None and self.stratify_subjects:
            # even val/test counts so both classes are equally represented (2 classes alternate)
            n = self.n_subjects
            n_val = n_test = max(2, 2 * round(n / 12))
            if n - n_val - n_test >= 2:
                return n - n_val - n_test, n_val, n_test
        if split is None:
            n = self.n_subjects
            n_val = n_test = max(1, round(n / 6))
            return n - n_val - n_test, n_val, n_test
        counts = tuple(int(c) for c in split)
        if len(counts) != 3 or min(counts) < 1 or sum(counts) != self.n_subjects:
            raise UserError(f"{self.name}: split={tuple(split)}; expected three positive subject counts "
                            f"(train, val, test) that sum to n_subjects={self.n_subjects}")
        return counts  # type: ignore[return-value]

    def params(self) -> dict[str, Any]:
        """Everything that determines the generated arrays."""
        return {"dataset": self.name, "generator_version": GENERATOR_VERSION, "n_subjects": self.n_subjects,
                "trials_per_class": self.trials_per_class, "seed": self.seed,
                "split": list(self.split_counts), "window_s": self.window_s}

    @property
    def n_times(self) -> int:
        return int(round(self.window_s * SFREQ))

    # -- the Dataset contract
    def availability(self, data_dir: str | None = None) -> Availability:
        """Always available: generated on the fly."""
        n = self.n_subjects * self._windows_per_subject()
        return Availability(True, "generated in memory (simulated)", "",
                            f"{self.n_subjects} subjects, {n} windows, seed {self.seed}")

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        """Generate the windows (through the window cache unless ``use_cache=False``)."""
        if not self.use_cache:
            return self.generate()
        return cached_windows({"simulated": self.params()}, self.generate, cache_dir)

    def _windows_per_subject(self) -> int:
        return self.trials_per_class * len(self.class_names)

    # -- generation
    def subject_labels(self, rng: np.random.Generator, subject: int) -> np.ndarray:
        """Class of each window of one subject (balanced, shuffled)."""
        y = np.repeat(np.arange(len(self.class_names)), self.trials_per_class)
        return rng.permutation(y)

    def generate(self) -> EEGWindows:
        """Generate every subject's windows and assign the subject-disjoint split."""
        from threadpoolctl import threadpool_limits

        # The matrices are tiny: multi-threaded BLAS only adds spin-wait overhead (100x on a busy
        # 2-core machine, measured), so generation runs single-threaded.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._generate()

    def _generate(self) -> EEGWindows:
        X, y, subjects = [], [], []
        root = np.random.SeedSequence([self.seed, *self.name.encode()])
        # one stream per subject: changing n_subjects leaves existing subjects unchanged
        for s, seq in enumerate(root.spawn(self.n_subjects)):
            rng = np.random.default_rng(seq)
            labels = self.subject_labels(rng, s)
            traits = draw_traits(rng)
            head = make_head(rng, self.derivation)
            pad = int(_PAD_S * SFREQ)
            x_uv = self.simulate_subject(rng, labels, traits, head, self.n_times + 2 * pad)
            x_uv = preprocess(x_uv)[..., pad:pad + self.n_times]
            X.append(x_uv * np.float32(traits.gain * UV_TO_UNITS))
            y.append(labels)
            subjects += [f"S{s + 1:02d}"] * len(labels)
        subjects_arr = np.array(subjects)
        split = self._assign_split(subjects_arr, np.concatenate(y))
        return EEGWindows(
            name=self.name, X=np.ascontiguousarray(np.concatenate(X), dtype=np.float32),
            y=np.concatenate(y).astype(np.int64), subjects=subjects_arr, split=split, sfreq=SFREQ,
            ch_names=list(self.derivation.ch_names), class_names=list(self.class_names), kind="simulated",
            checksum=stable_hash(self.params()),
            notes=f"SIMULATED EEG (eegkd-bench generator v{GENERATOR_VERSION}, seed {self.seed}); "
                  f"shaped like {self.mimics}; not real data",
        )

    def _assign_split(self, subjects: np.ndarray, y: np.ndarray) -> np.ndarray:
        ids = list(dict.fromkeys(subjects))
        n_train, n_val, n_test = self.split_counts
        if self.stratify_subjects:
            # interleave subjects of each class so every split holds both classes
            label = {s: int(y[subjects == s][0]) for s in ids}
            by_class = [[s for s in ids if label[s] == c] for c in sorted(set(label.values()))]
            order = [s for group in zip(*by_class) for s in group]
            order += [s for s in ids if s not in order]
            # test and val are taken from the end so they stay balanced
            ids = order[::-1]
            assignment = ["test"] * n_test + ["val"] * n_val + ["train"] * n_train
        else:
            assignment = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
        split_of = dict(zip(ids, assignment))
        return np.array([split_of[s] for s in subjects])

    def simulate_subject(self, rng: np.random.Generator, labels: np.ndarray, traits: SubjectTraits, head: Head,
                         n_times: int) -> np.ndarray:
        """Sensor-level microvolts ``(n, channels, n_times)`` of one subject."""
        raise NotImplementedError

    mimics: ClassVar[str] = ""

    # -- building blocks shared by the paradigms
    def background(self, rng: np.random.Generator, n: int, traits: SubjectTraits, n_times: int,
                   alpha_gain: np.ndarray | None = None, theta_gain: np.ndarray | None = None,
                   alpha_shift: np.ndarray | float = 0.0, delta_uv: np.ndarray | None = None) -> np.ndarray:
        """Source activity ``(n, sources, n_times)``: 1/f everywhere, posterior alpha, frontal theta, delta."""
        S = len(SOURCE_SITES)
        src = traits.bg_uv * aperiodic(rng, (n, S), n_times, traits.exponent)
        src *= np.exp(rng.normal(0.0, 0.15, (n, S, 1))).astype(np.float32)  # state fluctuation
        w = _site_weights(POSTERIOR)
        idx = np.flatnonzero(w)
        f_alpha = traits.alpha_hz + np.asarray(alpha_shift) + rng.normal(0.0, 0.25, n)
        amp = traits.alpha_uv * np.exp(rng.normal(0.0, 0.3, n))
        if alpha_gain is not None:
            amp = amp * alpha_gain
        alpha = narrowband(rng, (n, len(idx)), n_times, f_alpha[:, None], 0.8)
        # a shared alpha generator (0.7) plus local ones (0.3): posterior channels co-vary
        shared = narrowband(rng, (n, 1), n_times, f_alpha[:, None], 0.8)
        src[:, idx] += ((0.7 * shared + 0.3 * alpha) * (amp[:, None, None] * w[idx][None, :, None])).astype(np.float32)
        w = _site_weights(FRONTAL_MIDLINE)
        idx = np.flatnonzero(w)
        amp = traits.theta_uv * np.exp(rng.normal(0.0, 0.3, n))
        if theta_gain is not None:
            amp = amp * theta_gain
        theta = narrowband(rng, (n, len(idx)), n_times, rng.uniform(5.0, 7.0, (n, 1)), 0.8)
        src[:, idx] += (theta * (amp[:, None, None] * w[idx][None, :, None])).astype(np.float32)
        if delta_uv is not None:  # (n, S) polymorphic delta
            sel = np.flatnonzero(delta_uv.max(0) > 0)
            delta = narrowband(rng, (n, len(sel)), n_times, rng.uniform(1.2, 3.0, (n, 1)), 0.7)
            src[:, sel] += (delta * delta_uv[:, sel, None]).astype(np.float32)
        return src

    def motor_rhythms(self, rng: np.random.Generator, n: int, traits: SubjectTraits, n_times: int,
                      mu_gain: dict[str, np.ndarray] | None = None,
                      beta_gain: dict[str, np.ndarray] | None = None,
                      envelope: np.ndarray | None = None) -> np.ndarray:
        """Mu and beta rhythms of the sensorimotor areas; gains (n,) per area, optionally time-varying.

        ``envelope`` (n, n_times) in [0, 1] says how far the class effect has developed at each
        sample (the ERD builds up after the cue); the rhythm amplitude is ``1 + (gain - 1) * envelope``.
        """
        S = len(SOURCE_SITES)
        out = np.zeros((n, S, n_times), np.float32)
        for area, sites in MOTOR_AREAS.items():
            w = _site_weights(sites)
            idx = np.flatnonzero(w)
            for band, base_uv, f0, bw, gains in (("mu", traits.mu_uv, traits.mu_hz, 0.9, mu_gain),
                                                 ("beta", traits.beta_uv, traits.beta_hz, 2.0, beta_gain)):
                f = f0 + rng.normal(0.0, 0.3, (n, 1))
                osc = narrowband(rng, (n, 1), n_times, f, bw) * 0.6 + \
                    narrowband(rng, (n, len(idx)), n_times, f, bw) * 0.4
                amp = base_uv * np.exp(rng.normal(0.0, 0.25, n))[:, None]  # (n, 1)
                g = np.ones((n, 1)) if gains is None or area not in gains else gains[area][:, None]
                mod = amp if envelope is None else amp * (1.0 + (g - 1.0) * envelope)
                if envelope is None:
                    mod = amp * g
                out[:, idx] += (osc * mod[:, None, :] * w[idx][None, :, None]).astype(np.float32)
        return out

    def sensor(self, rng: np.random.Generator, src: np.ndarray, head: Head, traits: SubjectTraits,
               blinks: bool = True) -> np.ndarray:
        """Project sources to channels and add blinks and white sensor noise."""
        x = np.einsum("cs,nst->nct", head.L.astype(np.float32), src, optimize=True)
        n, C, T = x.shape
        if blinks:
            for i in range(n):
                k = rng.poisson(traits.blink_rate * T / SFREQ)
                if k:
                    onsets = rng.uniform(-0.3, T / SFREQ, k)
                    amps = traits.blink_uv * np.exp(rng.normal(0.0, 0.2, k))
                    x[i] += (head.L_blink[:, None] * sum_of_events(T, onsets, blink_wave, amps)).astype(np.float32)
        x += rng.normal(0.0, traits.noise_uv, x.shape).astype(np.float32)
        return x

    def muscle(self, rng: np.random.Generator, head: Head, n_times: int, centre: str, uv: float,
               onset_s: float, dur_s: float, spread_m: float = 0.03) -> np.ndarray:
        """A focal burst of muscle activity around one electrode site: ``(channels, n_times)``."""
        pos, _, _ = electrode_positions()
        d = np.linalg.norm(head.elec_pos - pos[centre], axis=1)
        w = np.exp(-0.5 * (d / spread_m) ** 2)
        noise = band_noise(rng, (len(w),), n_times, 20.0, 90.0)
        t = np.arange(n_times) / SFREQ
        env = 1.0 / (1.0 + np.exp(-(t - onset_s) / 0.05)) * 1.0 / (1.0 + np.exp((t - onset_s - dur_s) / 0.05))
        return head.E @ (w[:, None] * noise * env[None, :] * uv)


class SimMotorImagery(SimulatedDataset):
    """BCIC-IV-2a-shaped motor imagery: lateralized mu/beta ERD, 4 classes."""

    name = "sim-mi"
    description = "simulated motor imagery shaped like BCIC-IV-2a: 22 ch, 4 classes, 4 s windows"
    paradigm = "motor imagery"
    class_names = ("left_hand", "right_hand", "feet", "tongue")
    n_channels = 22
    window_s = 4.0
    mimics = "BCIC-IV-2a (22 channels, left-mastoid reference, 4 s after the cue, 200 Hz)"
    derivation = referential(BCIC_IV_2A_CHANNELS, "M1")
    default_subjects = 12
    default_trials = 12

    #: Relative mu/beta amplitude in each area for each class at full effect (<1 ERD, >1 ERS).
    EFFECTS: ClassVar[dict[str, dict[str, float]]] = {
        "left_hand": {"right_hemi_hand": 0.35, "left_hemi_hand": 0.8, "feet": 1.1},
        "right_hand": {"left_hemi_hand": 0.35, "right_hemi_hand": 0.8, "feet": 1.1},
        "feet": {"feet": 0.35, "left_hemi_hand": 1.15, "right_hemi_hand": 1.15},
        "tongue": {"tongue": 0.35, "left_hemi_hand": 1.2, "right_hemi_hand": 1.2, "feet": 1.05},
    }

    def simulate_subject(self, rng, labels, traits, head, n_times):  # type: ignore[no-untyped-def]
        n = len(labels)
        strength = np.clip(traits.effect * np.exp(rng.normal(0.0, 0.35, n)), 0.0, 1.2)
        gains = {area: np.ones(n) for area in MOTOR_AREAS}
        for c, cls in enumerate(self.class_names):
            for area, g in self.EFFECTS[cls].items():
                sel = labels == c
                gains[area][sel] = 1.0 + (g - 1.0) * strength[sel]
        gains = {a: np.clip(g, 0.05, None) for a, g in gains.items()}
        t = np.arange(n_times) / SFREQ - _PAD_S  # 0 = cue
        latency = rng.uniform(0.3, 0.9, (n, 1))
        envelope = 1.0 / (1.0 + np.exp(-(t[None, :] - latency) / 0.15))
        beta_gains = {a: 1.0 + (g - 1.0) * 0.8 for a, g in gains.items()}
        src = self.background(rng, n, traits, n_times) + \
            self.motor_rhythms(rng, n, traits, n_times, gains, beta_gains, envelope)
        return self.sensor(rng, src, head, traits)


class SimAbnormal(SimulatedDataset):
    """TUAB-shaped normal/abnormal EEG: abnormal subjects show background slowing."""

    name = "sim-abnormal"
    description = "simulated abnormal-EEG detection shaped like TUAB: 16 TCP bipolar ch, 2 classes, 10 s"
    paradigm = "abnormal EEG"
    class_names = ("normal", "abnormal")
    n_channels = 16
    window_s = 10.0
    mimics = "TUAB (16 TCP bipolar channels, 10 s windows, 200 Hz; one label per subject)"
    derivation = bipolar(TCP_PAIRS)
    default_subjects = 40
    default_trials = 12  # windows per subject: each subject has one class, as a TUAB recording
    stratify_subjects = True

    def _windows_per_subject(self) -> int:
        return self.trials_per_class

    def subject_labels(self, rng, subject):  # type: ignore[no-untyped-def]
        return np.full(self.trials_per_class, subject % 2, np.int64)

    def simulate_subject(self, rng, labels, traits, head, n_times):  # type: ignore[no-untyped-def]
        n = len(labels)
        abnormal = bool(labels[0] == 1)
        severity = rng.uniform(0.05, 0.8) if abnormal else 0.0
        # drowsiness in normal and abnormal recordings alike: the main confounder of slowing
        drowsy = rng.random(n) < rng.uniform(0.1, 0.5)
        alpha_gain = np.where(drowsy, 0.5, 1.0) * (1.0 - 0.55 * severity)
        theta_gain = np.where(drowsy, 1.8, 1.0) * (1.0 + 1.8 * severity)
        alpha_shift = -2.0 * severity
        delta = np.zeros((n, len(SOURCE_SITES)))
        delta[:] = traits.bg_uv * (0.6 + 2.2 * severity)  # diffuse slowing (per window, all sources)
        delta *= np.exp(rng.normal(0.0, 0.3, (n, 1)))
        if abnormal and rng.random() < 0.5:  # focal polymorphic delta over one hemisphere
            side = rng.choice(["T7", "T8"]) if rng.random() < 0.6 else rng.choice(["F7", "F8"])
            w = self._near(side)
            delta += traits.bg_uv * 3.0 * severity * w[None, :]
        src = self.background(rng, n, traits, n_times, alpha_gain=alpha_gain, theta_gain=theta_gain,
                              alpha_shift=alpha_shift, delta_uv=delta)
        src += self.motor_rhythms(rng, n, traits, n_times)
        if abnormal and severity > 0.4:  # occasional sharp waves
            focus = self._near(rng.choice(SOURCE_SITES))
            for i in range(n):
                k = rng.poisson(0.05 * severity * n_times / SFREQ)
                if k:
                    ev = sum_of_events(n_times, rng.uniform(0, n_times / SFREQ, k), spike_wave,
                                       rng.uniform(20, 50, k))
                    src[i] += (focus[:, None] * ev[None, :]).astype(np.float32)
        x = self.sensor(rng, src, head, traits)
        for i in range(n):  # muscle bursts at random temporal sites, both classes
            if rng.random() < 0.3:
                x[i] += self.muscle(rng, head, n_times, str(rng.choice(["T7", "T8", "F7", "F8"])),
                                    rng.uniform(5, 20), rng.uniform(0, n_times / SFREQ), rng.uniform(0.5, 3))
        return x

    @staticmethod
    def _near(site: str, width_m: float = 0.03) -> np.ndarray:
        src, _ = _template_sources()
        d = np.linalg.norm(src - src[_SRC[site]], axis=1)
        return np.exp(-0.5 * (d / width_m) ** 2)


class SimEvents(SimulatedDataset):
    """TUEV-shaped event classification: epileptiform discharges, eye movements, artifacts, background."""

    name = "sim-events"
    description = "simulated EEG events shaped like TUEV: 16 TCP bipolar ch, 6 classes, 5 s windows"
    paradigm = "events"
    class_names = ("spsw", "gped", "pled", "eyem", "artf", "bckg")
    n_channels = 16
    window_s = 5.0
    mimics = "TUEV (16 TCP bipolar channels, 5 s windows, 200 Hz)"
    derivation = bipolar(TCP_PAIRS)
    default_subjects = 12
    default_trials = 8

    def simulate_subject(self, rng, labels, traits, head, n_times):  # type: ignore[no-untyped-def]
        n = len(labels)
        dur = n_times / SFREQ
        centre = (dur - self.window_s) / 2  # the window proper is the middle of the padded segment
        focus_site = str(rng.choice(["T7", "T8", "F7", "F8", "C3", "C4", "P7", "P8"]))
        focus = SimAbnormal._near(focus_site)
        src = self.background(rng, n, traits, n_times)
        src += self.motor_rhythms(rng, n, traits, n_times)
        extra = np.zeros((n, self.derivation.matrix.shape[0], n_times), np.float32)
        eyes = np.zeros((n, n_times))
        for i, c in enumerate(labels):
            cls = self.class_names[c]
            amp = traits.effect * np.exp(rng.normal(0.0, 0.4))
            if cls == "spsw":
                f = focus if rng.random() < 0.7 else SimAbnormal._near(str(rng.choice(SOURCE_SITES)))
                k = rng.integers(1, 4)
                ev = sum_of_events(n_times, centre + rng.uniform(0.2, self.window_s - 0.3, k), spike_wave,
                                   rng.uniform(40, 90, k) * amp)
                src[i] += (f[:, None] * ev[None, :]).astype(np.float32)
            elif cls in ("gped", "pled"):
                period = rng.uniform(0.6, 1.6) if cls == "gped" else rng.uniform(0.8, 2.0)
                onsets = np.arange(rng.uniform(0, period), dur, period) + rng.normal(0, 0.03, 1)
                ev = sum_of_events(n_times, onsets, triphasic if cls == "gped" else spike_wave,
                                   np.full(len(onsets), rng.uniform(30, 70) * amp))
                if cls == "gped":
                    # generalized, frontal-predominant: every source, graded front to back
                    src_pos, _ = _template_sources()
                    w = 0.6 + 0.4 * (src_pos[:, 1] - src_pos[:, 1].min()) / np.ptp(src_pos[:, 1])
                else:
                    w = np.maximum(focus, SimAbnormal._near(focus_site, 0.045))
                src[i] += (w[:, None] * ev[None, :]).astype(np.float32)
            elif cls == "eyem":
                k = rng.integers(2, 6)
                t = np.arange(n_times) / SFREQ
                switch = np.sort(rng.uniform(0, dur, k))
                levels = rng.uniform(-1, 1, k + 1)
                pos = levels[0] + sum((levels[j + 1] - levels[j]) / (1 + np.exp(-(t - switch[j]) / 0.02))
                                      for j in range(k))
                eyes[i] = pos * rng.uniform(40, 120) * amp
            elif cls == "artf":
                kind = rng.choice(["muscle", "muscle", "pop", "chewing"])
                if kind == "pop":
                    j = rng.integers(len(head.elec_pos))
                    t = np.arange(n_times) / SFREQ - (centre + rng.uniform(0, self.window_s))
                    e = np.zeros(len(head.elec_pos))
                    e[j] = 1.0
                    extra[i] += (head.E @ e)[:, None] * (rng.uniform(50, 200) * amp * (t > 0)
                                                         * np.exp(-np.clip(t, 0, None) / rng.uniform(0.1, 0.5)))
                elif kind == "chewing":
                    for t0 in np.arange(centre + rng.uniform(0, 0.5), dur, rng.uniform(0.6, 1.0)):
                        for side in ("T7", "T8"):
                            extra[i] += self.muscle(rng, head, n_times, side, rng.uniform(15, 40) * amp, t0, 0.25)
                else:
                    extra[i] += self.muscle(rng, head, n_times, str(rng.choice(["T7", "T8", "F7", "F8", "Fp1"])),
                                            rng.uniform(10, 40) * amp, centre + rng.uniform(-1, self.window_s - 1),
                                            rng.uniform(1.0, 4.0))
        x = self.sensor(rng, src, head, traits)
        x += extra + (head.L_saccade[None, :, None] * eyes[:, None, :]).astype(np.float32)
        return x


class SimAffective(SimulatedDataset):
    """FACED-shaped emotion recognition: valence asymmetry, arousal band power, facial EMG."""

    name = "sim-affective"
    description = "simulated emotion recognition shaped like FACED: 32 ch, 9 emotions, 5 s windows"
    paradigm = "emotion"
    class_names = ("anger", "disgust", "fear", "sadness", "neutral", "amusement", "inspiration", "joy",
                   "tenderness")
    n_channels = 32
    window_s = 5.0  # FACED/CBraMod use 10 s; shortened to keep the quick preset fast (window_s=10 restores it)
    mimics = "FACED (32 channels, common average reference, 200 Hz; 10 s windows shortened to 5 s)"
    derivation = referential(FACED_CHANNELS, None)
    default_subjects = 12
    default_trials = 5

    #: (valence, arousal, engagement) per emotion on [-1, 1]: the circumplex plus a third axis so
    #: that emotions with similar valence and arousal (anger/fear, amusement/joy) differ (our placement).
    AFFECT: ClassVar[dict[str, tuple[float, float, float]]] = {
        "anger": (-0.8, 0.8, 0.6), "disgust": (-0.7, 0.3, -0.6), "fear": (-0.8, 0.9, -0.2),
        "sadness": (-0.7, -0.6, 0.2), "neutral": (0.0, -0.4, -0.8), "amusement": (0.8, 0.7, -0.5),
        "inspiration": (0.6, 0.2, 0.9), "joy": (0.9, 0.8, 0.3), "tenderness": (0.7, -0.5, -0.3),
    }
    #: Facial muscles recruited per emotion: electrode site, relative EMG strength (our reading).
    FACE: ClassVar[dict[str, tuple[str, float]]] = {
        "anger": ("Fp1", 1.0), "disgust": ("F7", 0.8), "fear": ("Fp2", 0.5), "sadness": ("Fp1", 0.3),
        "neutral": ("T7", 0.0), "amusement": ("T8", 1.0), "inspiration": ("T7", 0.2), "joy": ("T7", 0.9),
        "tenderness": ("T8", 0.3),
    }

    def simulate_subject(self, rng, labels, traits, head, n_times):  # type: ignore[no-untyped-def]
        n = len(labels)
        va = np.array([self.AFFECT[self.class_names[c]] for c in labels])
        strength = traits.effect * np.exp(rng.normal(0.0, 0.3, n))
        valence, arousal, engagement = (va * strength[:, None]).T
        alpha_gain = np.exp(-0.6 * arousal)
        theta_gain = np.exp(0.7 * engagement)  # frontal-midline theta with engagement/attention
        src = self.background(rng, n, traits, n_times, alpha_gain=alpha_gain, theta_gain=theta_gain)
        # frontal alpha asymmetry: approach/positive valence -> less left-frontal alpha
        left = _site_weights({"F3": 1.0, "F7": 0.7, "FC5": 0.6, "AF3": 0.8, "Fp1": 0.4})
        right = _site_weights({"F4": 1.0, "F8": 0.7, "FC6": 0.6, "AF4": 0.8, "Fp2": 0.4})
        f_alpha = traits.alpha_hz + rng.normal(0.0, 0.3, (n, 1))
        base = 0.6 * traits.alpha_uv * np.exp(rng.normal(0.0, 0.2, (n, 1)))
        for w, sign in ((left, -1.0), (right, 1.0)):
            idx = np.flatnonzero(w)
            g = base * np.exp(sign * 0.8 * valence[:, None] - 0.3 * arousal[:, None])
            osc = narrowband(rng, (n, len(idx)), n_times, f_alpha, 0.9)
            src[:, idx] += (osc * (g[:, :, None] * w[idx][None, :, None])).astype(np.float32)
        # arousal raises beta/low-gamma over frontal and temporal cortex
        w = _site_weights({"F7": 1.0, "F8": 1.0, "T7": 0.8, "T8": 0.8, "FC5": 0.6, "FC6": 0.6, "Fz": 0.5})
        idx = np.flatnonzero(w)
        g = traits.beta_uv * np.exp(0.8 * arousal + rng.normal(0.0, 0.25, n))
        osc = narrowband(rng, (n, len(idx)), n_times, rng.uniform(20, 35, (n, 1)), 5.0)
        src[:, idx] += (osc * (g[:, None, None] * w[idx][None, :, None])).astype(np.float32)
        src += self.motor_rhythms(rng, n, traits, n_times)
        x = self.sensor(rng, src, head, traits)
        expressive = rng.uniform(0.0, 1.0)  # how much this subject's face moves
        for i, c in enumerate(labels):
            site, s = self.FACE[self.class_names[c]]
            if s > 0 and rng.random() < 0.7:
                x[i] += self.muscle(rng, head, n_times, site, 6.0 * s * expressive * strength[i],
                                    rng.uniform(0, n_times / SFREQ / 2), rng.uniform(1.0, n_times / SFREQ))
        return x


DATASETS: tuple[type[SimulatedDataset], ...] = (SimMotorImagery, SimAbnormal, SimEvents, SimAffective)


# ------------------------------------------------------------------ classical baselines
BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 20.0), (20.0, 30.0), (30.0, 45.0), (45.0, 70.0))


def bandpower_features(X: np.ndarray, sfreq: float, bands: Sequence[tuple[float, float]] = BANDS) -> np.ndarray:
    """Log band power per channel and band (Welch, 1-s segments): ``(n, channels * bands)``."""
    f, pxx = signal.welch(np.asarray(X, np.float64), fs=sfreq, nperseg=int(sfreq), axis=-1)
    feats = [np.log(pxx[..., (f >= lo) & (f < hi)].mean(-1) + 1e-12) for lo, hi in bands]
    return np.stack(feats, -1).reshape(len(X), -1)


def baseline_scores(w: EEGWindows, splits: Sequence[str] = ("test",), *, csp: bool = False
                    ) -> dict[str, dict[str, float]]:
    """Balanced accuracy per split of band-power + LDA (and CSP + LDA if ``csp``), fit on train."""
    import mne
    from mne.decoding import CSP
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis as LDA
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def mu_beta(x: np.ndarray) -> np.ndarray:
        return mne.filter.filter_data(np.asarray(x, np.float64), w.sfreq, 8.0, 30.0, verbose=False)

    pipelines = {"bandpower_lda": (lambda x: bandpower_features(x, w.sfreq),
                                   make_pipeline(StandardScaler(), LDA(solver="lsqr", shrinkage="auto")))}
    if csp:
        pipelines["csp_lda"] = (mu_beta, make_pipeline(CSP(n_components=8, reg="ledoit_wolf", log=True), LDA()))
    from threadpoolctl import threadpool_limits

    out: dict[str, dict[str, float]] = {}
    Xtr, ytr = w.part("train")
    with mne.utils.use_log_level("ERROR"), threadpool_limits(limits=1, user_api="blas"):
        for name, (features, clf) in pipelines.items():
            clf.fit(features(Xtr), ytr)
            for split in splits:
                X, y = w.part(split)
                out.setdefault(name, {})[split] = float(balanced_accuracy_score(y, clf.predict(features(X))))
    return out


def _main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eegkd_bench.data.simulate",
                                description="Generate the simulated benchmarks; optionally score classical baselines.")
    p.add_argument("--datasets", default=",".join(d.name for d in DATASETS), help="comma-separated names")
    p.add_argument("--seeds", default="0", help="comma-separated generator seeds, e.g. 0,1,2")
    p.add_argument("--baselines", action="store_true", help="score band-power+LDA (and CSP+LDA for MI)")
    args = p.parse_args(argv)
    by_name = {d.name: d for d in DATASETS}
    names = [s.strip() for s in args.datasets.split(",") if s.strip()]
    for name in names:
        if name not in by_name:
            p.error(f"unknown simulated dataset {name!r}; expected some of {', '.join(by_name)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds {args.seeds!r}: expected comma-separated integers such as 0,1,2")
    print(f"{'dataset':<14} {'seed':>4} {'windows':>7} {'shape':>12} {'wall_s':>6} {'cpu_s':>6}  "
          + ("val/test balanced accuracy (chance)" if args.baselines else ""))
    for name in names:
        for seed in seeds:
            ds = by_name[name](seed=seed, use_cache=False)
            t0, c0 = time.perf_counter(), time.process_time()
            w = ds.generate()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            line = f"{name:<14} {seed:>4} {len(w.X):>7} {str(w.X.shape[1:]):>12} {dt:>6.2f} {dc:>6.2f}  "
            if args.baselines:
                scores = baseline_scores(w, ("val", "test"), csp=ds.paradigm == "motor imagery")
                line += "  ".join(f"{k} {v['val']:.3f}/{v['test']:.3f}" for k, v in scores.items())
                line += f"  ({1 / w.n_classes:.3f})"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
