"""TUEV (TUH EEG Events v2.0.x) and TUAB (TUH Abnormal EEG v3.0.x), read from the official EDF release.

Preprocessing follows CBraMod's ``preprocessing_tuev.py`` / ``preprocessing_tuab.py``:
MNE resample to 200 Hz, band-pass 0.3-75 Hz, notch 60 Hz, microvolts, the 16
TCP bipolar channels (computed from ``EEG <E>-REF`` signals picked by name),
then uV / 100. Where CBraMod leaves a case open we say "our reading".
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eegkd_bench import hookimpl
from eegkd_bench.api import Availability, DataUnavailable, Dataset, EEGWindows
from eegkd_bench.data import preprocess as pp

TUH_URL = "https://isip.piconepress.com/projects/nedc/html/tuh_eeg/ (free registration)"
REF_CHANNELS = [f"EEG {e}-REF" for e in pp.TCP_ELECTRODES]
FILTER = {"l_freq": 0.3, "h_freq": 75.0, "notch": 60.0}
_RECIPE = pp.recipe(resample=f"MNE to {pp.TARGET_SFREQ:g} Hz (before filtering)",
                    band_pass_hz=(FILTER["l_freq"], FILTER["h_freq"]), notch_hz=FILTER["notch"],
                    reference="TCP bipolar montage: 16 differences of the 'EEG <E>-REF' signals")
# bumped when the recipe changes, so old caches are not reused
RECIPE_VERSION = 1


def _process_edf(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One TUH EDF -> (16 bipolar channels in uV at 200 Hz, sample times in s)."""
    raw = pp.read_edf(path, REF_CHANNELS)
    pp.resample_filter(raw, **FILTER)
    return pp.tcp_bipolar(raw.get_data(units="uV"), raw.ch_names), raw.times


def _edf_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.edf"), key=lambda p: p.as_posix()) if folder.is_dir() else []


# =============================================================================== TUEV
TUEV_CLASSES = ("spsw", "gped", "pled", "eyem", "artf", "bckg")


def parse_rec(path: Path) -> np.ndarray:
    """A TUEV ``.rec`` file as rows ``(channel, start_s, stop_s, label)``; raises SkipFile when malformed."""
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2, dtype=float)
    except (OSError, ValueError) as exc:
        raise pp.SkipFile(f"unreadable .rec ({exc}); expected CSV rows 'channel,start_s,stop_s,label'")
    if rows.size == 0:
        raise pp.SkipFile("empty .rec file")
    if rows.shape[1] != 4:
        raise pp.SkipFile(f".rec rows have {rows.shape[1]} fields; expected 4 (channel,start_s,stop_s,label)")
    return rows


def tuev_event_windows(signal: np.ndarray, times: np.ndarray, events: np.ndarray,
                       sfreq: float = pp.TARGET_SFREQ) -> tuple[np.ndarray, np.ndarray, int]:
    """CBraMod's TUEV windows: 2 s before the event start, 5 s long, wrapping around the recording.

    ``start`` is the first sample at or after the event's start time (CBraMod's
    ``np.where(times >= start)[0][0]``). CBraMod slices ``[start-2s, end+2s)``,
    which is 5 s only for 1-s events (all TUEV events are); our reading keeps
    the 5-s length fixed. Returns windows, labels 0..5 and the number of rows
    dropped (label outside 1..6, or start after the recording's end).
    """
    before, length = int(2 * sfreq), int(5 * sfreq)
    X, y, dropped = [], [], 0
    for _chan, t0, _t1, label in events:
        start = int(np.searchsorted(times, t0, side="left"))
        if start >= signal.shape[1] or not float(label).is_integer() or not 1 <= label <= 6:
            dropped += 1
            continue
        X.append(pp.wrapped_window(signal, start, before, length))
        y.append(int(label) - 1)
    if not X:
        return np.zeros((0, signal.shape[0], length)), np.zeros(0, dtype=np.int64), dropped
    return np.stack(X), np.asarray(y, dtype=np.int64), dropped


def _is_tuev_edf_dir(d: Path) -> bool:
    train = d / "train"
    return train.is_dir() and (d / "eval").is_dir() and not (train / "normal").is_dir() \
        and not (train / "abnormal").is_dir()


class TUEV(Dataset):
    """TUH EEG Events: 6-class event classification of 5-s, 16-channel bipolar windows."""

    name = "tuev"
    kind = "real"
    description = "TUH EEG Events v2.0.x: 6 event classes, 16 bipolar TCP channels, 5-s windows (CBraMod protocol)"
    paradigm = "events"
    class_names = TUEV_CLASSES
    n_channels = 16
    window_s = 5.0
    sfreq = pp.TARGET_SFREQ
    subfolder = "tuev"
    how_to_get = f"get TUEV v2.0.1 from {TUH_URL} (folder tuh_eeg_events/v2.0.1 with edf/train, edf/eval)"

    def _locate(self, data_dir: str | None) -> pp.Located:
        return pp.locate(self.name, self.subfolder, data_dir, _is_tuev_edf_dir,
                         "edf/train + edf/eval folders", max_depth=4)

    def availability(self, data_dir: str | None = None) -> Availability:
        """Whether ``<root>/tuev`` holds ``edf/train`` and ``edf/eval`` (no network)."""
        loc = self._locate(data_dir)
        if loc.folder is None:
            return Availability(False, loc.where, self.how_to_get,
                                pp.unavailable_message(self.name, loc, self.how_to_get, self.subfolder))
        n_train, n_eval = len(_edf_files(loc.folder / "train")), len(_edf_files(loc.folder / "eval"))
        return Availability(n_train > 0 and n_eval > 0, str(loc.folder), self.how_to_get,
                            f"{n_train} train + {n_eval} eval EDF files")

    def preprocessing(self) -> dict[str, Any]:
        """MNE resample, band-pass, notch; TCP bipolar montage."""
        return _RECIPE

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        """Windows of every ``.rec`` event; train subjects 80/20 into train/val, the eval folder is test."""
        loc = self._locate(data_dir)
        if loc.folder is None:
            raise DataUnavailable(pp.unavailable_message(self.name, loc, self.how_to_get, self.subfolder))
        edf_dir = loc.folder
        paths = _edf_files(edf_dir / "train") + _edf_files(edf_dir / "eval")
        if not paths:
            raise DataUnavailable(f"{self.name}: no .edf files under {edf_dir}/train or {edf_dir}/eval; "
                                  f"{self.how_to_get}")
        recs = [p.with_suffix(".rec") for p in paths if p.with_suffix(".rec").is_file()]
        files = pp.source_files(paths + recs, edf_dir)
        params = {"recipe": RECIPE_VERSION, **FILTER, "sfreq": pp.TARGET_SFREQ, "window": "2s before + 5s",
                  "scale": f"uV/{pp.UV_DIVISOR}"}
        return pp.cached_build(self.name, files, params, lambda: self._build(edf_dir, paths, files), cache_dir)

    def _build(self, edf_dir: Path, paths: list[Path], files: list[pp.SourceFile]) -> EEGWindows:
        log = pp.SkipLog(self.name)
        per_file: list[tuple[str, bool, np.ndarray, np.ndarray]] = []
        n_dropped = 0
        for path in paths:
            rel = path.relative_to(edf_dir).as_posix()
            is_eval = rel.startswith("eval/")
            # train files are named <subject>_<8 digits>.edf; eval groups are 3-digit folders
            subject = f"eval-{path.parent.name}" if is_eval else path.name.split("_")[0]
            rec = path.with_suffix(".rec")
            try:
                if not rec.is_file():
                    raise pp.SkipFile(f"no annotation file {rec.name} next to it")
                events = parse_rec(rec)
                signal, times = _process_edf(path)
            except pp.SkipFile as exc:
                log.skip(rel, str(exc))
                continue
            X, y, dropped = tuev_event_windows(signal, times, events)
            n_dropped += dropped
            per_file.append((subject, is_eval, X.astype(np.float32), y))  # halves peak memory
        if n_dropped:
            log.remark(f"dropped {n_dropped} .rec row(s) with a label outside 1..6 or a start past the end")
        # CBraMod takes the train/val subjects from the files that were processed
        train_subjects, val_subjects = pp.split_sorted([s for s, ev, X, _ in per_file if not ev and len(X)])
        split_of = {**{s: "train" for s in train_subjects}, **{s: "val" for s in val_subjects}}
        stack = pp.WindowStack()
        for subject, is_eval, X, y in per_file:
            stack.add(X, y, subject, "test" if is_eval else split_of.get(subject, "train"))
        windows = stack.build(self.name, ch_names=pp.TCP_NAMES, class_names=self.class_names,
                              checksum=pp.files_checksum(files), notes=log.notes())
        return pp.require_splits(self.name, windows, f"check {edf_dir}/train and {edf_dir}/eval")


# =============================================================================== TUAB
TUAB_CLASSES = ("normal", "abnormal")
MONTAGE_DIR = "01_tcp_ar"  # CBraMod's channel_std


def _is_tuab_edf_dir(d: Path) -> bool:
    return (d / "train" / "normal").is_dir() and (d / "train" / "abnormal").is_dir()


class TUAB(Dataset):
    """TUH Abnormal EEG: normal vs abnormal recordings, 10-s 16-channel bipolar windows."""

    name = "tuab"
    kind = "real"
    description = "TUH Abnormal EEG v3.0.x: normal vs abnormal, 16 bipolar TCP channels, 10-s windows (CBraMod protocol)"
    paradigm = "abnormal EEG"
    class_names = TUAB_CLASSES
    n_channels = 16
    window_s = 10.0
    sfreq = pp.TARGET_SFREQ
    subfolder = "tuab"
    how_to_get = (f"get TUAB v3.0.1 from {TUH_URL} (folder tuh_eeg_abnormal/v3.0.1 with "
                  f"edf/{{train,eval}}/{{normal,abnormal}}/{MONTAGE_DIR})")

    def _locate(self, data_dir: str | None) -> pp.Located:
        return pp.locate(self.name, self.subfolder, data_dir, _is_tuab_edf_dir,
                         "edf/train/{normal,abnormal} folders", max_depth=4)

    def _listing(self, edf_dir: Path) -> dict[tuple[str, str], list[Path]]:
        return {(part, cls): _edf_files(edf_dir / part / cls / MONTAGE_DIR)
                for part in ("train", "eval") for cls in TUAB_CLASSES}

    def availability(self, data_dir: str | None = None) -> Availability:
        """Whether ``<root>/tuab`` holds ``edf/{train,eval}/{normal,abnormal}/01_tcp_ar`` EDFs (no network)."""
        loc = self._locate(data_dir)
        if loc.folder is None:
            return Availability(False, loc.where, self.how_to_get,
                                pp.unavailable_message(self.name, loc, self.how_to_get, self.subfolder))
        counts = {k: len(v) for k, v in self._listing(loc.folder).items()}
        ok = all(counts.values())
        detail = ", ".join(f"{p}/{c}: {n}" for (p, c), n in counts.items()) + " EDF files"
        if not ok:
            detail += f"; every edf/<train|eval>/<normal|abnormal>/{MONTAGE_DIR} folder must hold EDF files"
        return Availability(ok, str(loc.folder), self.how_to_get, detail)

    def preprocessing(self) -> dict[str, Any]:
        """MNE resample, band-pass, notch; TCP bipolar montage."""
        return _RECIPE

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        """Non-overlapping 10-s windows; per class the sorted train subjects split 80/20, eval is test."""
        loc = self._locate(data_dir)
        if loc.folder is None:
            raise DataUnavailable(pp.unavailable_message(self.name, loc, self.how_to_get, self.subfolder))
        edf_dir = loc.folder
        listing = self._listing(edf_dir)
        paths = [p for v in listing.values() for p in v]
        if not paths:
            raise DataUnavailable(f"{self.name}: no .edf files under {edf_dir}/<train|eval>/<normal|abnormal>/"
                                  f"{MONTAGE_DIR}; {self.how_to_get}")
        files = pp.source_files(paths, edf_dir)
        params = {"recipe": RECIPE_VERSION, **FILTER, "sfreq": pp.TARGET_SFREQ, "window_s": 10,
                  "scale": f"uV/{pp.UV_DIVISOR}"}
        return pp.cached_build(self.name, files, params, lambda: self._build(edf_dir, listing, files), cache_dir)

    @staticmethod
    def assign_splits(listing: dict[tuple[str, str], list[Path]], log: pp.SkipLog | None = None
                      ) -> dict[Path, str]:
        """CBraMod's TUAB split, made subject-disjoint.

        Per class, the sorted train subjects (file-name prefix) split 80/20 into
        train/val; everything in ``eval`` is test. Our reading where CBraMod is
        silent: a subject listed in both classes keeps the earlier of its two
        splits (train before val), and a train-folder subject that also occurs
        in ``eval`` loses its train-folder files, so no subject crosses splits.
        """
        split_of: dict[str, str] = {}
        for cls in TUAB_CLASSES:
            subjects = [p.name.split("_")[0] for p in listing[("train", cls)]]
            train, val = pp.split_sorted(subjects)
            for s in train:
                split_of[s] = "train"
            for s in val:
                split_of.setdefault(s, "val")
        eval_subjects = {p.name.split("_")[0] for cls in TUAB_CLASSES for p in listing[("eval", cls)]}
        clash = sorted(eval_subjects & set(split_of))
        if clash and log is not None:
            log.remark(f"subject(s) {clash} occur in both train and eval folders; their train-folder files are left out")
        out: dict[Path, str] = {}
        for (part, cls), paths in listing.items():
            for p in paths:
                s = p.name.split("_")[0]
                if part == "eval":
                    out[p] = "test"
                elif s not in eval_subjects:
                    out[p] = split_of[s]
        return out

    def _build(self, edf_dir: Path, listing: dict[tuple[str, str], list[Path]],
               files: list[pp.SourceFile]) -> EEGWindows:
        log = pp.SkipLog(self.name)
        splits = self.assign_splits(listing, log)
        stack = pp.WindowStack()
        length = int(self.window_s * pp.TARGET_SFREQ)
        for (part, cls), paths in listing.items():
            label = TUAB_CLASSES.index(cls)
            for path in paths:
                if path not in splits:
                    continue
                rel = path.relative_to(edf_dir).as_posix()
                try:
                    signal, _ = _process_edf(path)
                except pp.SkipFile as exc:
                    log.skip(rel, str(exc))
                    continue
                X = pp.fixed_windows(signal, length)
                if len(X) == 0:
                    log.skip(rel, f"shorter than one {self.window_s:g}-s window")
                    continue
                stack.add(X, label, path.name.split("_")[0], splits[path])
        windows = stack.build(self.name, ch_names=pp.TCP_NAMES, class_names=self.class_names,
                              checksum=pp.files_checksum(files), notes=log.notes())
        return pp.require_splits(self.name, windows, f"check {edf_dir}/train and {edf_dir}/eval")


@hookimpl
def eegkd_register_datasets(register: Any) -> None:
    register("tuev", TUEV, description=TUEV.description)
    register("tuab", TUAB, description=TUAB.description)
