"""Mumtaz2016: major depressive disorder vs healthy controls (figshare 4244171), from the EDF release.

Recipe (CBraMod ``preprocessing_mumtaz.py``): every file but the TASK ones,
19 channels picked by name in CBraMod's order, MNE resample to 200 Hz,
band-pass 0.3-75 Hz, notch 50 Hz, microvolts, non-overlapping 5-s windows
(tail dropped), divided by 100.

Two deliberate differences from CBraMod, both our reading:

* **Split by subject.** CBraMod splits the sorted file list by position
  (``H[:40] MDD[:42]`` train, ``H[40:48] MDD[42:52]`` val, the rest test), so
  one subject's EC and EO files can land in different splits. We split the
  subjects of each class, in natural order (S1, S2, ..., S10), 70/15/15 %,
  close to CBraMod's file proportions (about 69/14/17 %).
* **Byte-identical duplicates are read once.** The release ships ``H S15 EO``
  twice (``6921143_H S15 EO.edf`` and ``6921959_H S15 EO.edf``); CBraMod uses
  both, which doubles those windows. We keep the first and note the other.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any


from eegkd_bench import hookimpl
from eegkd_bench.api import Availability, DataUnavailable, Dataset, EEGWindows
from eegkd_bench.data import preprocess as pp

CHANNELS = ("Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
            "F7", "F8", "T3", "T4", "T5", "T6", "Fz", "Cz", "Pz")
EDF_CHANNELS = tuple(f"EEG {c}-LE" for c in CHANNELS)
CLASSES = ("healthy", "MDD")
#: ``[<figshare id>_]<H|MDD> S<n> <EC|EO|TASK>.edf``; some names reportedly hold a double space
FILE_RE = re.compile(r"^(?:(\d+)_)?(H|MDD)\s+S(\d+)\s+(EC|EO|TASK)\.edf$", re.IGNORECASE)
FILTER = {"l_freq": 0.3, "h_freq": 75.0, "notch": 50.0}
_RECIPE = pp.recipe(resample=f"MNE to {pp.TARGET_SFREQ:g} Hz (before filtering)",
                    band_pass_hz=(FILTER["l_freq"], FILTER["h_freq"]), notch_hz=FILTER["notch"],
                    reference="as recorded in the EDF files (no re-referencing)")
SPLIT_FRACTIONS = (0.70, 0.15)  # train, val; the rest test
RECIPE_VERSION = 1


def parse_name(name: str) -> tuple[str, str, str] | None:
    """``'6921143_H S15 EO.edf'`` -> ``('H', 'H S15', 'EO')``; None for a name outside the release's pattern."""
    m = FILE_RE.match(name)
    if not m:
        return None
    group = m.group(2).upper()
    return group, f"{group} S{int(m.group(3))}", m.group(4).upper()


def subject_splits(subjects_by_class: dict[str, list[str]]) -> dict[str, str]:
    """Per class, natural-sorted subjects split 70/15/15 % (at least one per split when there are three)."""
    out: dict[str, str] = {}
    for subjects in subjects_by_class.values():
        out.update(pp.split_fractions(subjects, *SPLIT_FRACTIONS))
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_mumtaz_dir(d: Path) -> bool:
    return any(FILE_RE.match(p.name) for p in d.glob("*.edf"))


class Mumtaz2016(Dataset):
    """Mumtaz2016: MDD vs healthy, 19 channels, 5-s windows, eyes-closed and eyes-open recordings."""

    name = "mumtaz2016"
    kind = "real"
    description = "Mumtaz2016: MDD vs healthy, 19 channels, 5-s windows, EC+EO files, subject-disjoint split"
    paradigm = "clinical (depression)"
    class_names = CLASSES
    n_channels = 19
    window_s = 5.0
    sfreq = pp.TARGET_SFREQ
    subfolder = "mumtaz2016"
    how_to_get = ("get the EDF files of 'MDD Patients and Healthy Controls EEG Data' from "
                  "https://figshare.com/articles/dataset/EEG_Data_New/4244171")

    def _locate(self, data_dir: str | None) -> pp.Located:
        return pp.locate(self.name, self.subfolder, data_dir, _is_mumtaz_dir,
                         "'H S1 EC.edf'-style files", max_depth=3)

    def availability(self, data_dir: str | None = None) -> Availability:
        """Whether ``<root>/mumtaz2016`` holds the release's EDF files (no network)."""
        loc = self._locate(data_dir)
        if loc.folder is None:
            return Availability(False, loc.where, self.how_to_get,
                                pp.unavailable_message(self.name, loc, self.how_to_get, self.subfolder))
        parsed = [parse_name(p.name) for p in loc.folder.glob("*.edf")]
        subjects = {p[1] for p in parsed if p}
        return Availability(True, str(loc.folder), self.how_to_get,
                            f"{sum(p is not None for p in parsed)} EDF files of {len(subjects)} subjects")

    def preprocessing(self) -> dict[str, Any]:
        """MNE resample, band-pass, notch; the recorded reference."""
        return _RECIPE

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        """5-s windows of every EC/EO file, split by subject."""
        loc = self._locate(data_dir)
        if loc.folder is None:
            raise DataUnavailable(pp.unavailable_message(self.name, loc, self.how_to_get, self.subfolder))
        folder = loc.folder
        paths = sorted(folder.glob("*.edf"))
        files = pp.source_files(paths, folder)
        params = {"recipe": RECIPE_VERSION, **FILTER, "sfreq": pp.TARGET_SFREQ, "window_s": 5,
                  "split": ["subject", *SPLIT_FRACTIONS], "scale": f"uV/{pp.UV_DIVISOR}"}
        return pp.cached_build(self.name, files, params, lambda: self._build(paths, files), cache_dir)

    def _build(self, paths: list[Path], files: list[pp.SourceFile]) -> EEGWindows:
        log = pp.SkipLog(self.name)
        chosen: dict[tuple[str, str], list[Path]] = {}
        for path in paths:
            parsed = parse_name(path.name)
            if parsed is None:
                log.skip(path.name, "unexpected file name; expected '<H|MDD> S<n> <EC|EO|TASK>.edf'")
                continue
            group, subject, cond = parsed
            if cond == "TASK":  # CBraMod keeps only the resting recordings
                continue
            kept = chosen.setdefault((subject, cond), [])
            if any(_sha256(k) == _sha256(path) for k in kept):
                log.remark(f"{path.name} is a byte-identical copy of {kept[0].name}; read once")
                continue
            kept.append(path)
        by_class: dict[str, list[str]] = {"H": [], "MDD": []}
        for subject, _ in chosen:
            by_class[subject.split()[0]].append(subject)
        splits = subject_splits(by_class)
        stack = pp.WindowStack()
        length = int(self.window_s * pp.TARGET_SFREQ)
        for (subject, _cond), group_paths in sorted(chosen.items(), key=lambda kv: pp.natural_key(" ".join(kv[0]))):
            for path in group_paths:
                try:
                    raw = pp.read_edf(path, EDF_CHANNELS)
                except pp.SkipFile as exc:
                    log.skip(path.name, str(exc))
                    continue
                pp.resample_filter(raw, **FILTER)
                X = pp.fixed_windows(raw.get_data(units="uV"), length)
                if len(X) == 0:
                    log.skip(path.name, f"shorter than one {self.window_s:g}-s window")
                    continue
                stack.add(X, int(subject.startswith("MDD")), subject, splits[subject])
        windows = stack.build(self.name, ch_names=CHANNELS, class_names=CLASSES,
                              checksum=pp.files_checksum(files), notes=log.notes())
        return pp.require_splits(self.name, windows, "at least three usable subjects per class are needed")


@hookimpl
def eegkd_register_datasets(register: Any) -> None:
    register("mumtaz2016", Mumtaz2016, description=Mumtaz2016.description)
