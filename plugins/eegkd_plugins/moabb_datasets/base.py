"""MOABB datasets, read by MOABB's own dataset and paradigm classes, downloaded only on request.

Here: ``bnci2014_001`` (BCI Competition IV 2a) and ``physionetmi``
(PhysioNet EEG Motor Movement/Imagery), preprocessed as CBraMod's
``preprocessing_bciciv2a.py`` / ``preprocessing_physio.py`` do; every other
MOABB dataset of the motor imagery, P300 and SSVEP paradigms is registered by
:mod:`eegkd_plugins.moabb_datasets.catalog` under its MOABB name. :class:`MoabbDataset`
takes any MOABB dataset and paradigm::

    from eegkd_plugins.moabb_datasets import MoabbDataset
    register("bnci2014_004", lambda: MoabbDataset("BNCI2014_004", "LeftRightImagery"))

Where the files are: MOABB's own place, ``<MNE root>/MNE-<sign>-data/...``,
with the MNE root taken from ``data_dir`` / ``$EEGKD_DATA`` when that folder
holds ``MNE-<sign>-data`` (directly or under ``mne_data/``), else MNE's
``MNE_DATASETS_<SIGN>_PATH`` / ``MNE_DATA`` configuration, else ``~/mne_data``.

Downloads happen only through :meth:`MoabbDataset.download` (``eegkd-bench
download NAME``), which runs MOABB's downloader subject by subject and records
the files it fetched in ``<root>/eegkd-moabb/<Dataset>.json``.

Offline guarantee: availability and the not-downloaded failure never import
MOABB (importing it takes seconds) and never call a downloader; loading runs
MOABB with ``MOABB_DOWNLOAD_PROVIDER=upstream`` and with its downloader
(``moabb.datasets.download.retrieve``) replaced by a check that raises
:class:`DataUnavailable` for a missing file instead of fetching it.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from eegkd_bench.api import Availability, DataUnavailable, Dataset, EEGWindows, UserError
from eegkd_bench.data import preprocess as pp
from eegkd_bench.errors import one_line

RECIPE_VERSION = 1


# ---------------------------------------------------------------------- MNE root
def mne_root(sign: str | None, data_dir: str | os.PathLike | None = None,
             key: str | None = None) -> tuple[Path, list[str]]:
    """The MNE data root MOABB would use for ``sign`` (e.g. ``BNCI``), and every place considered.

    ``data_dir`` / ``$EEGKD_DATA`` win when they hold ``key`` (default ``MNE-<sign>-data``).
    """
    import mne

    looked: list[str] = []
    key_dir = key or (f"MNE-{sign.lower()}-data" if sign else None)
    for base in (data_dir, os.environ.get(pp.ENV_DATA)):
        if not base:
            continue
        for cand in (Path(base).expanduser(), Path(base).expanduser() / "mne_data"):
            looked.append(str(cand))
            if key_dir and (cand / key_dir).exists():
                return cand, looked
    configured = (mne.get_config(f"MNE_DATASETS_{sign.upper()}_PATH") if sign else None) or mne.get_config("MNE_DATA")
    root = Path(configured).expanduser() if configured else Path.home() / "mne_data"
    looked.append(str(root))
    return root, looked


class _Missing(Exception):
    """MOABB asked for a file that is not on disk."""

    def __init__(self, url: str, path: Path) -> None:
        super().__init__(f"{path} (from {url})")
        self.url, self.path = url, path


def _no_download(url: str, known_hash: Any = None, fname: str | None = None, path: Any = None,
                 *args: Any, probe: list[Path] | None = None, **kwargs: Any) -> str:
    """Stands in for ``pooch.retrieve``: the local file if it exists, never a download."""
    target = Path(path) / fname if fname else Path(path)
    if target.is_file():
        return str(target)
    if probe is not None:  # listing mode: remember and go on
        probe.append(target)
        return str(target)
    raise _Missing(url, target)


@contextlib.contextmanager
def moabb_offline(root: Path, sign: str | None, probe: list[Path] | None = None) -> Iterator[None]:
    """Run MOABB against ``root`` with downloads disabled (missing files raise, or are listed in ``probe``)."""
    import moabb.datasets.download as dl

    env = {"MNE_DATA": str(root), "MOABB_DOWNLOAD_PROVIDER": "upstream"}
    if sign:
        env[f"MNE_DATASETS_{sign.upper()}_PATH"] = str(root)
    saved_env = {k: os.environ.get(k) for k in env}
    saved = dl.retrieve, dl.file_hash
    os.environ.update(env)
    dl.retrieve = functools.partial(_no_download, probe=probe)
    if probe is not None:  # hashing every existing file only to list paths would cost seconds
        dl.file_hash = lambda *a, **k: None
    try:
        yield
    finally:
        dl.retrieve, dl.file_hash = saved
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------- raw preprocessing
def cbramod_raw_step(raw: Any, *, car: bool, l_freq: float | None, h_freq: float | None,
                     notch: float | None, causal_order: int | None) -> Any:
    """Common average reference, band-pass and notch on the EEG channels of one MOABB run (in place).

    ``causal_order`` set: a causal Butterworth of that order (CBraMod's
    ``scipy.signal.lfilter`` for BCIC-IV-2a), else MNE's default zero-phase FIR.
    """
    if car:
        raw.set_eeg_reference("average", projection=False, verbose="error")
    if l_freq is not None or h_freq is not None:
        if causal_order:
            raw.filter(l_freq, h_freq, picks="eeg", method="iir", phase="forward",
                       iir_params={"order": causal_order, "ftype": "butter"}, verbose="error")
        else:
            raw.filter(l_freq, h_freq, picks="eeg", verbose="error")
    if notch is not None:
        raw.notch_filter(notch, picks="eeg", verbose="error")
    return raw


def number_ranges(numbers: Sequence[int]) -> str:
    """``[2, 3, 4, 5, 7, 9]`` -> ``'2-5, 7, 9'``."""
    out: list[str] = []
    for n in sorted(numbers):
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == n - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        elif out and "-" not in out[-1] and int(out[-1]) == n - 1:
            out[-1] = f"{out[-1]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def subject_ranges(subjects: Sequence[Any]) -> str:
    """:func:`number_ranges` for integer subject ids, else the ids joined by commas."""
    if all(isinstance(s, (int, np.integer)) for s in subjects):
        return number_ranges([int(s) for s in subjects])
    return ", ".join(str(s) for s in subjects)


def _files_under(paths: Sequence[Path]) -> list[Path]:
    """The files among ``paths``, with the files inside the folders some MOABB loaders return."""
    out: list[Path] = []
    for p in paths:
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(f for f in sorted(p.rglob("*")) if f.is_file())
    return out


def _moabb_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("moabb")
    except PackageNotFoundError:
        return "not installed"


@dataclass
class SubjectWindows:
    """One subject's windows in microvolts, as MOABB epoched and resampled them."""

    subject: str
    split: str
    X: np.ndarray  # (k, channels, samples)
    y: np.ndarray  # (k,) class indices
    ch_names: list[str]


# ------------------------------------------------------------ downloads and their record
MANIFEST_DIR = "eegkd-moabb"


def manifest_path(root: Path, dataset_class: str) -> Path:
    """Where ``eegkd-bench download`` records which files MOABB fetched for a dataset under ``root``."""
    return root / MANIFEST_DIR / f"{dataset_class}.json"


def read_manifest(root: Path, dataset_class: str) -> dict[str, Any] | None:
    """The download record of a dataset (None when there is none or it is unreadable)."""
    try:
        return json.loads(manifest_path(root, dataset_class).read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON in one step: a reader sees the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def download_root(data_dir: str | os.PathLike | None) -> Path:
    """Where ``eegkd-bench download`` puts MOABB's files: ``data_dir``, else ``$EEGKD_DATA``, else MNE's data root."""
    base = data_dir or os.environ.get(pp.ENV_DATA)
    return Path(base).expanduser() if base else mne_root(None)[0]


def _flat_paths(value: Any) -> list[str]:
    """MOABB's ``data_path`` returns a path, a list of paths or nested lists; flatten them."""
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    if isinstance(value, dict):
        return [p for v in value.values() for p in _flat_paths(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _flat_paths(v)]
    return []


_NETWORK_MODULES = ("requests", "urllib3", "httpx", "httpcore", "socket", "ssl")


def _network_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failed connection rather than a bad file."""
    seen: BaseException | None = exc
    while seen is not None:
        top = type(seen).__module__.split(".")[0]
        if isinstance(seen, (ConnectionError, TimeoutError, socket.gaierror)) or top in _NETWORK_MODULES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def moabb_online(root: Path, sign: str | None) -> Iterator[None]:
    """MOABB's environment for a download into ``root`` (its upstream hosts, which loading reads back)."""
    env = {"MNE_DATA": str(root), "MOABB_DOWNLOAD_PROVIDER": "upstream"}
    if sign:
        env[f"MNE_DATASETS_{sign.upper()}_PATH"] = str(root)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------- the class
class MoabbDataset(Dataset):
    """Any MOABB dataset + paradigm as windows at 200 Hz in uV / 100, with a subject split.

    ``dataset``: a class name in ``moabb.datasets`` (e.g. ``"BNCI2014_004"``);
    ``paradigm``: a class name in ``moabb.paradigms`` (e.g. ``"MotorImagery"``).
    ``events`` (MOABB event names, in class order) default to the paradigm's
    choice; ``splits`` maps train/val/test to subject numbers and defaults to
    the sorted subjects split 70/15/15 %. ``tmin``/``tmax`` are relative to the
    dataset's task interval, as in MOABB.
    """

    kind = "real"
    paradigm = "motor imagery"
    sfreq = pp.TARGET_SFREQ
    #: MOABB's ``sign`` (the ``MNE-<sign>-data`` folder), when known without importing MOABB
    sign: str | None = None
    subject_format = "{:d}"
    n_subjects = 0

    def __init__(self, dataset: str, paradigm: str = "MotorImagery", *, name: str | None = None,
                 events: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                 splits: dict[str, Sequence[int]] | None = None, subjects: Sequence[int] | None = None,
                 tmin: float = 0.0, tmax: float | None = None, n_samples: int | None = None,
                 car: bool = False, l_freq: float | None = 0.3, h_freq: float | None = None,
                 notch: float | None = None, causal_order: int | None = None,
                 dataset_kwargs: dict[str, Any] | None = None, paradigm_kwargs: dict[str, Any] | None = None,
                 description: str = "") -> None:
        self.dataset_class = dataset
        self.paradigm_class = paradigm
        self.name = name or dataset.lower()
        self.events = tuple(events) if events else None
        self.class_names = tuple(class_names or events or ())
        if self.events and len(self.class_names) != len(self.events):
            raise UserError(f"{self.name}: {len(self.class_names)} class_names for {len(self.events)} events; "
                            "give one class name per event")
        self.splits = {k: tuple(v) for k, v in splits.items()} if splits else None
        self.subjects = tuple(subjects) if subjects else (
            tuple(s for v in self.splits.values() for s in v) if self.splits else None)
        self.tmin, self.tmax, self.n_samples = tmin, tmax, n_samples
        self.window_s = (n_samples / pp.TARGET_SFREQ) if n_samples else (
            (tmax - tmin) if tmax is not None else 0.0)
        self.filters = {"car": car, "l_freq": l_freq, "h_freq": h_freq, "notch": notch,
                        "causal_order": causal_order}
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.paradigm_kwargs = dict(paradigm_kwargs or {})
        self.description = description or f"MOABB {dataset} ({paradigm}), 200 Hz, uV/100"

    # -- MOABB objects (imported lazily: importing moabb takes seconds)
    def moabb_dataset(self) -> Any:
        """The MOABB dataset object."""
        import moabb.datasets

        try:
            cls = getattr(moabb.datasets, self.dataset_class)
        except AttributeError:
            raise UserError(f"{self.name}: moabb has no dataset {self.dataset_class!r}; "
                            "see python -c 'import moabb.datasets as d; print(d.__all__)'") from None
        return cls(**self.dataset_kwargs)

    def moabb_paradigm(self) -> Any:
        """MOABB's paradigm with our raw-level filters in place of its band-pass."""
        import moabb.paradigms
        from moabb.datasets.preprocessing import NamedFunctionTransformer

        try:
            base = getattr(moabb.paradigms, self.paradigm_class)
        except AttributeError:
            raise UserError(f"{self.name}: moabb has no paradigm {self.paradigm_class!r}; "
                            "e.g. MotorImagery, LeftRightImagery, P300, SSVEP") from None
        step = NamedFunctionTransformer(functools.partial(cbramod_raw_step, **self.filters),
                                        display_name=f"eegkd raw step {self.filters}")

        class _Paradigm(base):  # MOABB's own epoching and resampling, our raw filters
            def _get_raw_pipelines(self) -> list[Any]:
                return [step]

        kwargs = {"tmin": self.tmin, "tmax": self.tmax, "resample": pp.TARGET_SFREQ, **self.paradigm_kwargs}
        if self.events:
            kwargs.setdefault("events", list(self.events))
            if "n_classes" in inspect.signature(base.__init__).parameters:  # P300 has no n_classes
                kwargs.setdefault("n_classes", len(self.events))
        return _Paradigm(**kwargs)

    # -- files
    def expected_files(self, subject: Any, root: Path) -> list[Path] | None:
        """The files MOABB reads for one subject (None: ask MOABB itself)."""
        return None

    def root_key(self) -> str | None:
        """What marks a folder as this dataset's MNE root (see :func:`mne_root`)."""
        return None

    def _subject_list(self) -> list[Any]:
        if self.subjects is not None:
            return list(self.subjects)
        return list(self.moabb_dataset().subject_list)

    def _missing_by_subject(self, root: Path) -> dict[Any, list[Path]]:
        out: dict[Any, list[Path]] = {}
        for s in self._subject_list():
            expected = self.expected_files(s, root)
            if expected is None:  # ask MOABB where its files go, with downloads disabled
                probe: list[Path] = []
                ds = self.moabb_dataset()
                with moabb_offline(root, self.sign, probe=probe):
                    try:
                        ds.data_path(s)
                    except Exception as exc:  # a loader that unpacks after "downloading"
                        probe.append(Path(f"<{type(exc).__name__}: {exc}>"))
                out[s] = probe
            else:
                out[s] = [p for p in expected if not p.exists()]
        return out

    def split_of(self, subjects: Sequence[Any]) -> dict[Any, str]:
        """Protocol split of every subject: the declared one, else the first 70 % train, 15 % val, the rest test.

        Subjects are ordered naturally (2 before 10) over the dataset's whole
        subject list, so the split does not depend on which subjects are downloaded.
        """
        if self.splits:
            return {s: split for split, members in self.splits.items() for s in members}
        by_id = pp.split_fractions([str(s) for s in subjects], 0.70, 0.15)
        return {s: by_id[str(s)] for s in subjects}

    def how_to_get(self, root: Path) -> str:
        """The command that downloads the dataset to ``root`` (MOABB's own downloader underneath)."""
        return f"download it with `eegkd-bench download {self.dataset_class} --data-dir {root}` (MOABB's downloader)"

    def legacy_hint(self, root: Path) -> str:
        """A hint when the files sit where an older MOABB put them (none by default)."""
        return ""

    def download(self, data_dir: str | None = None, subjects: Sequence[Any] | None = None, *,
                 accept: bool = False, progress: Callable[[str], None] | None = None) -> Path:
        """Fetch the dataset with MOABB's own downloader, subject by subject; return the root it went to.

        Each finished subject is recorded in ``<root>/eegkd-moabb/<Dataset>.json``
        with the files MOABB reads for it, so an interrupted download keeps its
        progress and availability checks need no MOABB. Raises :class:`UserError`
        (one line) when MOABB cannot reach its server.
        """
        say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
        root = download_root(data_dir)
        say(f"{self.name}: importing MOABB {_moabb_version()} ...")
        ds = self.moabb_dataset()
        all_subjects = list(ds.subject_list)
        wanted = list(subjects) if subjects else all_subjects
        unknown = [s for s in wanted if s not in all_subjects]
        if unknown:
            raise UserError(f"{self.name}: no subject(s) {subject_ranges(unknown)}; MOABB's {self.dataset_class} "
                            f"has subjects {subject_ranges(all_subjects)}")
        manifest = read_manifest(root, self.dataset_class) or {"dataset": self.dataset_class, "subjects": {}}
        manifest.update(moabb=_moabb_version(), subject_list=all_subjects)
        root.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(wanted, 1):
            say(f"{self.name}: subject {s} ({i} of {len(wanted)}) -> {root}")
            try:
                with moabb_online(root, self.sign):
                    ds.download(subject_list=[s], path=str(root), update_path=False, accept=accept, verbose="info")
                with moabb_offline(root, self.sign):  # where MOABB keeps them, now that they are there
                    paths = _flat_paths(ds.data_path(s, path=str(root)))
            except (UserError, KeyboardInterrupt):
                raise
            except Exception as exc:
                what = one_line(exc)
                if _network_error(exc):
                    raise UserError(f"{self.name}: cannot download subject {s}: MOABB's server is unreachable "
                                    f"({what}); run `eegkd-bench download {self.dataset_class}` on a machine "
                                    f"with internet access and copy {root} here") from None
                raise UserError(f"{self.name}: MOABB's download of subject {s} failed ({what})") from None
            manifest["subjects"][str(s)] = [os.path.relpath(p, root) if Path(p).is_relative_to(root) else p
                                            for p in paths]
            write_json(manifest_path(root, self.dataset_class), manifest)  # progress survives an interruption
        return root

    # -- the contract
    def availability(self, data_dir: str | None = None) -> Availability:
        """Which subjects' files are on disk where MOABB looks (no download, no network)."""
        root, _ = mne_root(self.sign, data_dir, self.root_key())
        missing = self._missing_by_subject(root)
        present = [s for s, m in missing.items() if not m]
        detail = f"{len(present)} of {len(missing) or self.n_subjects or '?'} subjects downloaded"
        if len(present) < len(missing):
            first = next(m[0] for m in missing.values() if m)
            detail += f"; e.g. missing {first}"
            hint = self.legacy_hint(root)
            detail += f"; {hint}" if hint else ""
        return Availability(bool(present), str(root), self.how_to_get(root), detail)

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        """Windows of every downloaded subject; raises DataUnavailable at once when files are missing."""
        root, _ = mne_root(self.sign, data_dir, self.root_key())
        missing = self._missing_by_subject(root)
        present = [s for s, m in missing.items() if not m]
        if not present:
            first = next((m[0] for m in missing.values() if m), root / (self.root_key() or ""))
            hint = self.legacy_hint(root)
            raise DataUnavailable(f"{self.name}: not downloaded (no {first}){'; ' + hint if hint else ''}; "
                                  f"{self.how_to_get(root)}, or set MNE_DATA to where it is")
        split_of = self.split_of(list(missing))
        empty = [sp for sp in ("train", "val", "test") if not any(split_of.get(s) == sp for s in present)]
        if empty:
            need = "; ".join(f"{sp}: {subject_ranges([s for s in missing if split_of.get(s) == sp])}"
                             for sp in empty)
            raise DataUnavailable(f"{self.name}: split(s) {empty} have no downloaded subject (need subjects "
                                  f"{need}); {self.how_to_get(root)}")
        paths = sorted({p for s in present for p in (self.expected_files(s, root) or [])})
        files = pp.source_files(_files_under(paths), root) if paths else []
        params = {"recipe": RECIPE_VERSION, "dataset": self.dataset_class, "paradigm": self.paradigm_class,
                  "events": self.events, "tmin": self.tmin, "tmax": self.tmax, "n_samples": self.n_samples,
                  "filters": self.filters, "dataset_kwargs": self.dataset_kwargs,
                  "paradigm_kwargs": self.paradigm_kwargs, "subjects": [str(s) for s in present],
                  "splits": {str(s): sp for s, sp in split_of.items()}, "moabb": _moabb_version(),
                  "scale": f"uV/{pp.UV_DIVISOR}", "sfreq": pp.TARGET_SFREQ}
        skipped = [s for s in missing if s not in present]
        return pp.cached_stream(self.name, files, params,
                                lambda stack: self._build(root, present, skipped, split_of, files, stack), cache_dir)

    def prepare(self, ds: Any) -> None:
        """Settle what depends on the MOABB dataset object before epoching (fixed recipes: nothing)."""

    def iter_subjects(self, root: Path, subjects: Sequence[Any], split_of: dict[Any, str],
                      log: pp.SkipLog) -> Iterator[SubjectWindows]:
        """One subject at a time: MOABB reads, epochs and resamples that subject's runs, then they are freed.

        Peak memory is one subject's recordings plus its windows; a subject
        MOABB cannot read is skipped with a note.
        """
        ds = self.moabb_dataset()
        self.prepare(ds)
        paradigm = self.moabb_paradigm()
        if not paradigm.is_valid(ds):  # MOABB's own check: the dataset's paradigm and events fit
            raise UserError(f"{self.name}: MOABB's {self.paradigm_class} paradigm does not take {self.dataset_class} "
                            f"(paradigm {ds.paradigm!r}, events {list(ds.event_id)})")
        classes = list(self.class_names) or list(paradigm.used_events(ds))
        if not self.class_names:
            self.class_names = tuple(classes)
        import mne

        with moabb_offline(root, self.sign), mne.utils.use_log_level("error"):
            for s in subjects:
                try:
                    epochs, labels, _meta = paradigm.get_data(ds, [s], return_epochs=True)
                except _Missing as exc:
                    log.skip(f"subject {s}", f"file missing: {exc.path}")
                    continue
                except Exception as exc:  # a damaged file inside MOABB's reader
                    log.skip(f"subject {s}", f"MOABB could not read it ({type(exc).__name__}: {exc})")
                    continue
                X = epochs.get_data(units="uV")
                n = self.n_samples or X.shape[-1]
                if X.shape[-1] < n:
                    log.skip(f"subject {s}", f"epochs of {X.shape[-1]} samples; expected {n}")
                    continue
                unknown = sorted(set(labels) - set(classes))
                if unknown:
                    log.skip(f"subject {s}", f"unexpected event(s) {unknown}; expected {classes}")
                    continue
                y = np.array([classes.index(lab) for lab in labels], dtype=np.int64)
                yield SubjectWindows(self.subject_format.format(s), split_of[s], X[..., :n], y, list(epochs.ch_names))

    def _build(self, root: Path, present: list[Any], skipped: list[Any], split_of: dict[Any, str],
               files: list[pp.SourceFile], stack: pp.WindowStack) -> EEGWindows:
        """Stream one subject at a time into ``stack`` (the on-disk window store)."""
        log = pp.SkipLog(self.name)
        if skipped:
            log.remark(f"subject(s) {subject_ranges(skipped)} not downloaded; loaded {len(present)} subject(s)")
        stack.expect(len(present))
        ch_names: list[str] | None = None
        for sub in self.iter_subjects(root, present, split_of, log):
            if ch_names is None:
                ch_names = sub.ch_names
            elif sub.ch_names != ch_names:
                log.skip(f"subject {sub.subject}", f"channels {sub.ch_names} differ from {ch_names}")
                continue
            stack.add(sub.X, sub.y, sub.subject, sub.split)
        windows = stack.build(self.name, ch_names=ch_names or [], class_names=self.class_names,
                              checksum=pp.files_checksum(files) if files else f"moabb:{self.dataset_class}",
                              notes=log.notes())
        return pp.require_splits(self.name, windows, self.how_to_get(root))


# ------------------------------------------------------------------ BCIC-IV-2a
class BNCI2014_001(MoabbDataset):
    """BCI Competition IV 2a through MOABB, preprocessed as CBraMod's BCIC-IV-2a recipe.

    CBraMod: 22 EEG channels, channel-mean (common average) subtraction,
    5th-order Butterworth 0.3-40 Hz with causal ``lfilter``, seconds 2-6 of each
    trial resampled to 800 samples, 4 classes; split A01-A05 / A06-A07 /
    A08-A09 with both sessions. Ours: the same steps on MOABB's runs; the
    causal filter runs over each continuous run rather than from each trial
    start (our reading: it avoids a start-up transient inside the window), and
    MOABB epochs [2, 6] s and resamples them to 200 Hz.
    """

    name = "bnci2014_001"
    description = "BCI Competition IV 2a (MOABB BNCI2014_001): 4-class MI, 22 channels, 4-s windows, A01-05/A06-07/A08-09"
    class_names = ("left_hand", "right_hand", "feet", "tongue")
    n_channels = 22
    window_s = 4.0
    sign = "BNCI"
    subject_format = "A{:02d}"
    LEGACY = "MNE-bnci-data/database/data-sets/001-2014"
    CURRENT = "MNE-bnci-data/~bci/database/001-2014"

    def __init__(self) -> None:
        super().__init__("BNCI2014_001", "MotorImagery", name=self.name, events=self.class_names,
                         splits={"train": range(1, 6), "val": (6, 7), "test": (8, 9)},
                         tmin=0.0, tmax=None, n_samples=800, car=True, l_freq=0.3, h_freq=40.0,
                         causal_order=5, description=self.description)

    def expected_files(self, subject: int, root: Path) -> list[Path]:
        """moabb 1.7: ``<root>/MNE-bnci-data/~bci/database/001-2014/A01T.mat`` (and ``A01E.mat``)."""
        return [root / self.CURRENT / f"A{subject:02d}{r}.mat" for r in "TE"]

    def legacy_hint(self, root: Path) -> str:
        """Files in the pre-1.1 location ``MNE-bnci-data/database/data-sets/001-2014``."""
        old = root / self.LEGACY
        if old.is_dir() and any(old.glob("A0*.mat")):
            return f"files found in the pre-1.1 MOABB location {old}; move them to {root / self.CURRENT}"
        return ""


# ------------------------------------------------------------------- PhysioNet MI
PHYSIONET_RUNS = (4, 6, 8, 10, 12, 14)


class PhysionetMI(MoabbDataset):
    """PhysioNet EEG Motor Movement/Imagery through MOABB, preprocessed as CBraMod's recipe.

    CBraMod: imagery runs 4/6/8/10/12/14, 64 channels, average reference,
    high-pass 0.3 Hz, notch 60 Hz, 200 Hz, 4-s epochs from each T1/T2 onset,
    classes left fist, right fist (runs 4/8/12), both fists, both feet (runs
    6/10/14); split S001-070 / S071-089 / S090-109. MOABB calls the same events
    left_hand, right_hand, hands, feet; it resamples the epochs rather than the
    run (our reading: equivalent up to filter edge effects).
    """

    name = "physionetmi"
    description = "PhysioNet MI (MOABB PhysionetMI): 4-class imagery, 64 channels, 4-s windows, S001-070/071-089/090-109"
    class_names = ("left_hand", "right_hand", "hands", "feet")
    n_channels = 64
    window_s = 4.0
    sign = "EEGBCI"
    subject_format = "S{:03d}"

    def __init__(self) -> None:
        super().__init__("PhysionetMI", "MotorImagery", name=self.name, events=self.class_names,
                         splits={"train": range(1, 71), "val": range(71, 90), "test": range(90, 110)},
                         tmin=0.0, tmax=4.0, n_samples=800, car=True, l_freq=0.3, h_freq=None, notch=60.0,
                         dataset_kwargs={"imagined": True, "executed": False}, description=self.description)

    def expected_files(self, subject: int, root: Path) -> list[Path]:
        """``<root>/MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf`` for the six imagery runs."""
        folder = root / "MNE-eegbci-data" / "files" / "eegmmidb" / "1.0.0" / f"S{subject:03d}"
        return [folder / f"S{subject:03d}R{r:02d}.edf" for r in PHYSIONET_RUNS]
