"""Tiny native-format copies of the real datasets (real names, layouts and headers; seconds of signal)."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from edf_fixtures import write_edf

# The 36-signal TUH AR set (file order of a typical TUEV/TUAB EDF)
TUH_CHANNELS = [
    "EEG FP1-REF", "EEG FP2-REF", "EEG F3-REF", "EEG F4-REF", "EEG C3-REF", "EEG C4-REF", "EEG P3-REF",
    "EEG P4-REF", "EEG O1-REF", "EEG O2-REF", "EEG F7-REF", "EEG F8-REF", "EEG T3-REF", "EEG T4-REF",
    "EEG T5-REF", "EEG T6-REF", "EEG A1-REF", "EEG A2-REF", "EEG FZ-REF", "EEG CZ-REF", "EEG PZ-REF",
    "EEG ROC-REF", "EEG LOC-REF", "EEG EKG1-REF", "EMG-REF", "EEG 26-REF", "EEG 27-REF", "EEG 28-REF",
    "EEG 29-REF", "EEG 30-REF", "EEG T1-REF", "EEG T2-REF", "PHOTIC-REF", "IBI", "BURSTS", "SUPPR",
]
TONE_HZ = 10.0


def electrode_amplitude(name: str) -> float:
    """A distinct amplitude (uV) per electrode, so bipolar differences identify the channels used."""
    return 10.0 + 7.0 * (sum(ord(c) * (i + 1) for i, c in enumerate(name)) % 23)


def tone_signals(ch_names: Sequence[str], n: int, sfreq: float, label: str = "") -> np.ndarray:
    """A 10-Hz sine per channel with amplitude :func:`electrode_amplitude` of its electrode (uV)."""
    t = np.arange(n) / sfreq
    return np.stack([electrode_amplitude(_electrode(c)) * np.sin(2 * np.pi * TONE_HZ * t) for c in ch_names])


def _electrode(ch: str) -> str:
    """``EEG FP1-REF`` / ``EEG Fp1-LE`` -> ``FP1``."""
    return ch.replace("EEG ", "").split("-")[0].upper()


def write_tuh_edf(path: Path, seconds: int, *, sfreq: float = 250.0, rng: np.random.Generator,
                  drop: Sequence[str] = (), patient: str = "/aa F 01-JAN-0000 /aa Age:19") -> Path:
    """A TUH-style EDF with the 36 AR signals in a shuffled order (``drop`` removes some)."""
    names = [c for c in TUH_CHANNELS if c not in drop]
    names = [names[i] for i in rng.permutation(len(names))]
    n = int(seconds * sfreq)
    return write_edf(path, tone_signals(names, n, sfreq), sfreq, names, patient=patient)


def write_rec(path: Path, rows: Sequence[tuple[int, float, float, int]]) -> Path:
    """A TUEV ``.rec``: CSV rows ``channel,start,stop,label`` without a header."""
    path.write_text("".join(f"{c},{a:.4f},{b:.4f},{lab}\n" for c, a, b, lab in rows))
    return path


# ----------------------------------------------------------------------------- TUEV
TUEV_TRAIN_SUBJECTS = ["aaaaaaar", "aaaaaabb", "aaaaaacc", "aaaaaadd", "aaaaaaee"]


def make_tuev(root: Path, *, seconds: int = 12, seed: int = 0) -> Path:
    """``root/tuev/tuh_eeg_events/v2.0.1/edf/{train,eval}``: 5 train subjects, 2 eval groups; returns edf/."""
    rng = np.random.default_rng(seed)
    edf = root / "tuev" / "tuh_eeg_events" / "v2.0.1" / "edf"
    for i, subj in enumerate(TUEV_TRAIN_SUBJECTS):
        stem = edf / "train" / subj / f"{subj}_00000001"
        write_tuh_edf(stem.with_suffix(".edf"), seconds, rng=rng)
        # label (i % 6) + 1 so every split sees several classes; one event at t=0 wraps around
        write_rec(stem.with_suffix(".rec"), [(3, 0.0, 1.0, i % 6 + 1), (14, 4.0, 5.0, 6), (0, 7.0, 8.0, 5)])
    for group, label_name, label, k in (("000", "bckg", 6, ""), ("001", "pled", 3, "2")):
        stem = edf / "eval" / group / f"{label_name}_{group}_a_{k}"
        write_tuh_edf(stem.with_suffix(".edf"), seconds, rng=rng, patient=f"{group} F 01-JAN-0000 {group} Age:36")
        write_rec(stem.with_suffix(".rec"), [(2, 5.0, 6.0, label), (7, 9.0, 10.0, label)])
    return edf


# ----------------------------------------------------------------------------- TUAB
def make_tuab(root: Path, *, seconds: int = 25, seed: int = 0,
              n_train: int = 5) -> Path:
    """``root/tuab/v3.0.1/edf/{train,eval}/{normal,abnormal}/01_tcp_ar``; returns edf/."""
    rng = np.random.default_rng(seed)
    edf = root / "tuab" / "v3.0.1" / "edf"
    for cls, first in (("normal", "b"), ("abnormal", "c")):
        for i in range(n_train):
            subj = f"aaaaa{first}{chr(97 + i)}a"
            write_tuh_edf(edf / "train" / cls / "01_tcp_ar" / f"{subj}_s001_t000.edf", seconds, rng=rng,
                          sfreq=256.0 if i % 2 else 250.0)
        subj = f"aaaaa{first}zz"
        write_tuh_edf(edf / "eval" / cls / "01_tcp_ar" / f"{subj}_s001_t000.edf", seconds, rng=rng)
    return edf


# ---------------------------------------------------------------------------- Mumtaz
MUMTAZ_CHANNELS = [
    "EEG Fp1-LE", "EEG F3-LE", "EEG C3-LE", "EEG P3-LE", "EEG O1-LE", "EEG F7-LE", "EEG T3-LE", "EEG T5-LE",
    "EEG Fz-LE", "EEG Fp2-LE", "EEG F4-LE", "EEG C4-LE", "EEG P4-LE", "EEG O2-LE", "EEG F8-LE", "EEG T4-LE",
    "EEG T6-LE", "EEG Cz-LE", "EEG Pz-LE", "EEG A2-A1", "EEG 23A-23R", "EEG 24A-24R",
]


def write_mumtaz_edf(path: Path, seconds: float, *, n_channels: int = 22, sfreq: float = 256.0) -> Path:
    """A Mumtaz-style EDF (256 Hz; 22 channels for H files, 20 for MDD files)."""
    names = MUMTAZ_CHANNELS[:n_channels]
    n = int(round(seconds * sfreq))
    return write_edf(path, tone_signals(names, n, sfreq), sfreq, names)


def make_mumtaz(root: Path, *, n_h: int = 4, n_mdd: int = 4, seconds: float = 12.0) -> Path:
    """``root/mumtaz2016/MDDPHCED/files``: EC/EO/TASK per subject plus the duplicated ``H S15 EO``."""
    folder = root / "mumtaz2016" / "MDDPHCED" / "files"
    for group, count, n_ch in (("H", n_h, 22), ("MDD", n_mdd, 20)):
        for s in range(1, count + 1):
            for cond in ("EC", "EO", "TASK"):
                if group == "H" and s == 2 and cond == "EO":
                    continue  # the release lacks some files
                write_mumtaz_edf(folder / f"{group} S{s} {cond}.edf", seconds, n_channels=n_ch)
    # the release ships 'H S15 EO' twice under id prefixes (byte-identical) and no plain 'H S15 EO.edf'
    dup = write_mumtaz_edf(folder / "6921143_H S15 EO.edf", seconds, n_channels=22)
    (folder / "6921959_H S15 EO.edf").write_bytes(dup.read_bytes())
    write_mumtaz_edf(folder / "H S15 EC.edf", seconds, n_channels=22)
    return folder


# ----------------------------------------------------------------------------- FACED
def faced_subject(seed: int, n_samples: int = 7500) -> np.ndarray:
    """A FACED ``subNNN.pkl`` array (28 clips, 32 channels, 30 s at 250 Hz): clip c carries value c + 1."""
    rng = np.random.default_rng(seed)
    clip_level = (np.arange(28, dtype=np.float64) + 1.0)[:, None, None] * 100.0
    return (clip_level + rng.standard_normal((28, 32, n_samples)) * 1e-3).astype(np.float32)


def make_faced(root: Path, subjects: Sequence[int] = (0, 1, 80, 100), *, nested: bool = True) -> Path:
    """``root/faced/Processed_data[/Processed_data]/subNNN.pkl``; returns the folder holding the pickles."""
    folder = root / "faced" / "Processed_data"
    if nested:
        folder = folder / "Processed_data"
    folder.mkdir(parents=True, exist_ok=True)
    for s in subjects:
        with open(folder / f"sub{s:03d}.pkl", "wb") as fh:
            pickle.dump(faced_subject(s), fh)
    return folder


# ----------------------------------------------------------------------- BNCI2014_001
BNCI_CLASSES = ("left hand", "right hand", "feet", "tongue")


def bnci_run(rng: np.random.Generator, *, n_trials: int, fs: int = 250, trial_s: int = 8) -> dict:
    """One run struct of an A0xT/E.mat: fields in the release's order (X, trial, y, fs, classes, ...)."""
    n = (n_trials + 1) * trial_s * fs if n_trials else 30 * fs
    X = rng.standard_normal((n, 25))
    # 1-based trial starts, the first one 2 s into the run (as in the release)
    trial = (np.arange(n_trials) * trial_s * fs + 2 * fs + 1).astype(np.int32).reshape(-1, 1)
    y = (np.arange(n_trials) % 4 + 1).astype(np.uint8).reshape(-1, 1)
    # a channel-specific 12-Hz tone from cue to end of imagery (2-6 s): reveals channels and scaling
    t = np.arange(4 * fs) / fs
    for start in trial[:, 0] - 1:
        X[start + 2 * fs: start + 6 * fs, :22] += np.outer(np.sin(2 * np.pi * 12 * t), 10.0 + np.arange(22))
    classes = np.empty((1, 4), dtype=object)
    classes[0, :] = list(BNCI_CLASSES)
    return {"X": X, "trial": trial if n_trials else np.zeros((0, 1), np.int32),
            "y": y if n_trials else np.zeros((0, 1), np.uint8), "fs": fs, "classes": classes,
            "artifacts": np.zeros((n_trials, 1), np.uint8), "gender": "f", "age": 24}


def write_bnci_mat(path: Path, *, n_trials: int = 4, n_eog_runs: int = 1, n_mi_runs: int = 1, seed: int = 0) -> Path:
    """An ``A0xT.mat``-style MATLAB v5 file: ``data`` is a 1 x R cell of run structs (EOG runs first)."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    runs = [bnci_run(rng, n_trials=0) for _ in range(n_eog_runs)]
    runs += [bnci_run(rng, n_trials=n_trials) for _ in range(n_mi_runs)]
    cell = np.empty((1, len(runs)), dtype=object)
    for i, run in enumerate(runs):
        cell[0, i] = run
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"data": cell})
    return path


# ------------------------------------------------------------------------ PhysionetMI
PHYSIONET_CHANNELS = [
    "Fc5.", "Fc3.", "Fc1.", "Fcz.", "Fc2.", "Fc4.", "Fc6.", "C5..", "C3..", "C1..", "Cz..", "C2..", "C4..", "C6..",
    "Cp5.", "Cp3.", "Cp1.", "Cpz.", "Cp2.", "Cp4.", "Cp6.", "Fp1.", "Fpz.", "Fp2.", "Af7.", "Af3.", "Afz.", "Af4.",
    "Af8.", "F7..", "F5..", "F3..", "F1..", "Fz..", "F2..", "F4..", "F6..", "F8..", "Ft7.", "Ft8.", "T7..", "T8..",
    "T9..", "T10.", "Tp7.", "Tp8.", "P7..", "P5..", "P3..", "P1..", "Pz..", "P2..", "P4..", "P6..", "P8..", "Po7.",
    "Po3.", "Poz.", "Po4.", "Po8.", "O1..", "Oz..", "O2..", "Iz..",
]


def write_physionet_run(path: Path, *, seconds: int = 26, sfreq: float = 160.0, seed: int = 0) -> Path:
    """An EDF+ run like ``S001R04.edf``: 64 dotted channel labels, T0/T1/T2 annotations every ~4.2 s."""
    import mne

    rng = np.random.default_rng(seed)
    n = int(seconds * sfreq)
    data = rng.standard_normal((64, n)) * 1e-6
    raw = mne.io.RawArray(data, mne.create_info(PHYSIONET_CHANNELS, sfreq, "eeg"), verbose="error")
    onsets = np.arange(0.0, seconds - 4.5, 4.2)
    labels = ["T0" if i % 2 == 0 else ("T1" if i % 4 == 1 else "T2") for i in range(len(onsets))]
    raw.set_annotations(mne.Annotations(onsets, [4.1] * len(onsets), labels))
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return path
