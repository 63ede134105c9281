"""FACED (Chen et al. 2023): 9-class emotion recognition from the official ``Processed_data`` pickles.

Recipe (CBraMod ``preprocessing_faced.py``): each ``subNNN.pkl`` holds a
(28 clips, 32 channels, 7500 samples @ 250 Hz) array in uV; FFT-resample to
6000 samples (200 Hz) with :func:`scipy.signal.resample`, no filtering, cut each
clip into three 10-s windows, divide by 100. The label depends only on the clip
index (the clips are stored in a fixed emotion order).
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal as sps

from eegkd_bench import hookimpl
from eegkd_bench.api import Availability, DataUnavailable, Dataset, EEGWindows
from eegkd_bench.data import preprocess as pp

CLASSES = ("anger", "disgust", "fear", "sadness", "neutral", "amusement", "inspiration", "joy", "tenderness")
#: emotion index of each of the 28 clips (neutral has four clips)
CLIP_LABELS = np.repeat(np.arange(9), [3, 3, 3, 3, 4, 3, 3, 3, 3])
#: channel names as reported for the release; CBraMod uses the 32 rows as stored, and so do we
CHANNELS = ("Fp1", "Fp2", "Fz", "F3", "F4", "F7", "F8", "FC1", "FC2", "FC5", "FC6", "Cz", "C3", "C4", "T7", "T8",
            "CP1", "CP2", "CP5", "CP6", "Pz", "P3", "P4", "P7", "P8", "PO3", "PO4", "Oz", "O1", "O2", "A2", "A1")
SHAPE = (28, 32, 7500)
FILE_RE = re.compile(r"^sub(\d{3})\.pkl$")
RECIPE_VERSION = 1


def faced_split(subject_number: int) -> str:
    """CBraMod's split of the 123 sorted files, by subject number: 000-079 / 080-099 / 100-122."""
    return "train" if subject_number < 80 else "val" if subject_number < 100 else "test"


def faced_windows(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(28, 32, 7500) uV at 250 Hz -> 84 windows (32, 2000) at 200 Hz and their labels."""
    eeg = sps.resample(array, 6000, axis=2)
    # window j of clip i is seconds 10j..10(j+1) of that clip, as in CBraMod's reshape(28, 32, 30, 200)
    X = eeg.reshape(28, 32, 3, 2000).transpose(0, 2, 1, 3).reshape(84, 32, 2000)
    return X, np.repeat(CLIP_LABELS, 3)


def _pickles(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if FILE_RE.match(p.name)) if folder.is_dir() else []


def _is_faced_dir(d: Path) -> bool:
    return any(FILE_RE.match(p.name) for p in d.glob("sub*.pkl"))


class FACED(Dataset):
    """FACED: 9 emotions, 32 channels, 10-s windows, 123 subjects."""

    name = "faced"
    kind = "real"
    description = "FACED: 9-class emotion, 32 channels, 10-s windows, subjects 000-079/080-099/100-122 (CBraMod protocol)"
    paradigm = "emotion"
    class_names = CLASSES
    n_channels = 32
    window_s = 10.0
    sfreq = pp.TARGET_SFREQ
    subfolder = "faced"
    how_to_get = ("get FACED 'Processed_data' (sub000.pkl..sub122.pkl) from https://www.synapse.org/#!Synapse:syn50614194 "
                  "(free Synapse account)")

    def _locate(self, data_dir: str | None) -> pp.Located:
        return pp.locate(self.name, self.subfolder, data_dir, _is_faced_dir, "subNNN.pkl files", max_depth=3)

    def availability(self, data_dir: str | None = None) -> Availability:
        """Whether ``<root>/faced`` (or its ``Processed_data[/Processed_data]``) holds ``subNNN.pkl`` (no network)."""
        loc = self._locate(data_dir)
        if loc.folder is None:
            return Availability(False, loc.where, self.how_to_get,
                                pp.unavailable_message(self.name, loc, self.how_to_get, self.subfolder))
        files = _pickles(loc.folder)
        return Availability(True, str(loc.folder), self.how_to_get, f"{len(files)} of 123 subject files")

    def preprocessing(self) -> dict[str, Any]:
        """FFT resampling only; no filter is applied here (see the Processed_data documentation)."""
        return pp.recipe(resample="scipy.signal.resample (FFT) 250 -> 200 Hz", band_pass_hz=None, notch_hz=None,
                         reference="as released in Processed_data (no re-referencing)")

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        """84 windows per subject; split by subject number as CBraMod's sorted-file split."""
        loc = self._locate(data_dir)
        if loc.folder is None:
            raise DataUnavailable(pp.unavailable_message(self.name, loc, self.how_to_get, self.subfolder))
        folder = loc.folder
        paths = _pickles(folder)
        files = pp.source_files(paths, folder)
        params = {"recipe": RECIPE_VERSION, "resample": "scipy.signal.resample 7500->6000", "window_s": 10,
                  "scale": f"uV/{pp.UV_DIVISOR}"}
        return pp.cached_build(self.name, files, params, lambda: self._build(paths, files), cache_dir)

    def _build(self, paths: list[Path], files: list[pp.SourceFile]) -> EEGWindows:
        log = pp.SkipLog(self.name)
        stack = pp.WindowStack()
        for path in paths:
            number = int(FILE_RE.match(path.name).group(1))
            try:
                # the official release is a set of pickled numpy arrays; read only files you trust
                with open(path, "rb") as fh:
                    array = np.asarray(pickle.load(fh), dtype=np.float64)
            except Exception as exc:  # unpickling can raise nearly anything on a damaged file
                log.skip(path.name, f"unreadable pickle ({type(exc).__name__}: {exc})")
                continue
            if array.shape != SHAPE:
                log.skip(path.name, f"array of shape {array.shape}; expected {SHAPE} (clips, channels, samples)")
                continue
            X, y = faced_windows(array)
            stack.add(X, y, path.stem, faced_split(number))
        windows = stack.build(self.name, ch_names=CHANNELS, class_names=CLASSES,
                              checksum=pp.files_checksum(files), notes=log.notes())
        return pp.require_splits(self.name, windows,
                                 "the protocol needs subjects in sub000-079, sub080-099 and sub100-122")


@hookimpl
def eegkd_register_datasets(register: Any) -> None:
    register("faced", FACED, description=FACED.description)
