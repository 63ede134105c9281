"""The forward model of the simulated EEG: electrodes, montages, cortical sources and a subject's head.

* Electrode positions come from MNE's standard 10-20 montage (shipped with MNE, no download); a
  sphere is fitted to them for the head centre and radius.
* 36 cortical sources (``SOURCE_SITES``) are radial current dipoles below standard 10-20/10-10
  sites at ``SOURCE_DEPTH`` of the head radius.
* The lead field is the potential of a dipole in an infinite homogeneous medium,
  ``p.(r_e - r_s) / |r_e - r_s|^3``, followed by the montage's reference or bipolar derivation
  (:class:`Derivation`). :func:`make_head` jitters sources, orientations and electrode gains per subject.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

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
SOURCE_INDEX = {name: i for i, name in enumerate(SOURCE_SITES)}
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
    src, ori = template_sources()
    return float(np.median(np.abs(_dipole_gain(elec, src, ori)).max(0)))


def template_sources() -> tuple[np.ndarray, np.ndarray]:
    """Positions and (radial, unit) orientations of the template sources before subject jitter."""
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
    src, ori = template_sources()
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


def site_weights(sites: dict[str, float]) -> np.ndarray:
    """A weight per source: ``sites`` (source site name -> weight), 0 elsewhere."""
    w = np.zeros(len(SOURCE_SITES))
    for name, value in sites.items():
        w[SOURCE_INDEX[name]] = value
    return w



def near_sources(site: str, width_m: float = 0.03) -> np.ndarray:
    """Source weights falling off as a Gaussian of distance (metres) from the source under ``site``."""
    src, _ = template_sources()
    d = np.linalg.norm(src - src[SOURCE_INDEX[site]], axis=1)
    return np.exp(-0.5 * (d / width_m) ** 2)
