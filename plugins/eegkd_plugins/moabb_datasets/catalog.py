"""Every MOABB dataset of the motor imagery, P300/ERP and SSVEP paradigms, by its MOABB name.

The names come from MOABB itself, without importing it (importing MOABB takes
seconds, too long for every ``eegkd-bench`` command): the summary tables MOABB
ships (``moabb/datasets/summary_{imagery,p300,ssvep}.csv``, one row per
dataset, filed by paradigm), keeping the names ``moabb.datasets`` exports.

The facts shown by ``eegkd-bench datasets`` (subjects, classes, channels,
window) come from MOABB's dataset classes (``subject_list``, ``event_id``,
``interval``, ``METADATA``) once any command has imported MOABB: they are then
remembered per MOABB version in ``<cache>/moabb-catalog/<version>.json``.
Before that the summary tables stand in for them, marked ``≈``.

Loading reads each dataset through MOABB's paradigm class for its paradigm
(:data:`PARADIGMS`): its events are the classes, its task interval gives the
window (rounded up to whole seconds, the FM teachers' 1-s patches), epochs are
resampled to 200 Hz and the channels keep their names.
"""
from __future__ import annotations

import ast
import csv
import functools
import importlib.util
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eegkd_bench.api import Availability, UserError
from eegkd_bench.data import preprocess as pp
from eegkd_plugins.moabb_datasets.base import (
    MANIFEST_DIR,
    MoabbDataset,
    _moabb_version,
    read_manifest,
    write_json,
)

#: MOABB paradigm (``dataset.paradigm``) -> (MOABB paradigm class, our label, fixed event order or None).
#: P300 lists NonTarget first so that Target is the positive class of the binary task.
PARADIGMS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "imagery": ("MotorImagery", "motor imagery", None),
    "p300": ("P300", "P300/ERP", ("NonTarget", "Target")),
    "ssvep": ("SSVEP", "SSVEP", None),
}


@dataclass(frozen=True)
class Facts:
    """What the listing shows about one MOABB dataset."""

    name: str  # MOABB class name
    paradigm: str  # MOABB's paradigm string: imagery, p300, ssvep
    n_subjects: int
    n_channels: int
    classes: tuple[str, ...]  # empty when only their number is known
    n_classes: int
    interval_s: float  # length of MOABB's task interval (or of a trial, from the summary table)
    exact: bool  # from the dataset class (True) or MOABB's summary table (False)
    subjects: tuple[Any, ...] = ()


def window_seconds(interval_s: float) -> float:
    """The window for a task interval: rounded up to whole seconds (the FM teachers' 1-s patches), at least 1 s."""
    return float(max(1, math.ceil(round(interval_s, 6))))


# ------------------------------------------------------------------ names, cheaply
def _moabb_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("moabb")  # finds the package without running it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _exported(moabb_dir: Path) -> set[str]:
    """The names ``moabb.datasets`` exports, read from its ``__init__.py`` (not run)."""
    tree = ast.parse((moabb_dir / "datasets" / "__init__.py").read_text())
    return {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for a in node.names}


def _number(text: str | None) -> float:
    try:
        return float(text or "")
    except ValueError:  # e.g. "varies by ERP task"
        return 0.0


@functools.lru_cache(maxsize=None)
def summary_facts() -> dict[str, Facts]:
    """MOABB's own summary tables, one entry per exported dataset of our three paradigms (no MOABB import)."""
    moabb_dir = _moabb_dir()
    if moabb_dir is None:
        return {}
    exported = _exported(moabb_dir)
    out: dict[str, Facts] = {}
    for paradigm, (_cls, _label, events) in PARADIGMS.items():
        table = moabb_dir / "datasets" / f"summary_{paradigm}.csv"
        if not table.is_file():
            continue
        with table.open(newline="") as fh:
            for row in csv.DictReader(fh):
                name = (row.get("Dataset") or "").strip()
                if not name or name not in exported or name in out:
                    continue
                n_classes = len(events) if events else int(_number(row.get("#Classes")))
                out[name] = Facts(name, paradigm, int(_number(row.get("#Subj"))), int(_number(row.get("#Chan"))),
                                  events or (), n_classes, _number(row.get("Trials length (s)")), False)
    return out


# ----------------------------------------------------------- facts from the classes
def _snapshot_path() -> Path:
    from eegkd_bench.data.cache import default_cache_dir

    return default_cache_dir() / "moabb-catalog" / f"{_moabb_version()}.json"


def facts_of(ds: Any, paradigm: str | None = None) -> Facts:
    """Facts of an instantiated MOABB dataset, from its class attributes and ``METADATA``."""
    paradigm = paradigm or ds.paradigm
    events = PARADIGMS.get(paradigm, ("", "", None))[2]
    classes = tuple(events) if events else tuple(ds.event_id)
    n_channels = 0
    try:
        acq = ds.metadata.acquisition if ds.metadata is not None else None
        n_channels = int((acq.channel_types or {}).get("eeg", 0)) if acq is not None else 0
    except Exception:  # metadata is optional and varies across MOABB versions
        n_channels = 0
    interval = float(ds.interval[1]) - float(ds.interval[0])
    return Facts(type(ds).__name__, paradigm, len(ds.subject_list), n_channels, classes, len(classes), interval, True,
                 tuple(ds.subject_list))


def remember_classes() -> None:
    """Write the facts of every listed dataset, read from MOABB's classes (MOABB is imported already)."""
    path = _snapshot_path()
    if path.is_file():
        return
    import moabb.datasets

    facts = {}
    for name, summary in summary_facts().items():
        cls = getattr(moabb.datasets, name, None)
        if cls is None:
            continue
        try:
            f = facts_of(cls(), summary.paradigm)
        except Exception:  # one dataset class failing must not lose the others
            continue
        facts[name] = {**asdict(f), "n_channels": f.n_channels or summary.n_channels}
    try:
        write_json(path, facts)
    except OSError:  # a read-only cache only costs the exact listing
        pass
    known_facts.cache_clear()


@functools.lru_cache(maxsize=None)
def known_facts() -> dict[str, Facts]:
    """The best facts at hand per dataset: from the classes when remembered, else from the summary tables."""
    out = dict(summary_facts())
    try:
        remembered = json.loads(_snapshot_path().read_text())
    except (OSError, ValueError):
        remembered = {}
    for name, f in remembered.items():
        if name in out:
            out[name] = Facts(**{**f, "classes": tuple(f["classes"]), "subjects": tuple(f["subjects"])})
    return out


# ------------------------------------------------------------------ the dataset
class CatalogDataset(MoabbDataset):
    """Any MOABB dataset of the three paradigms with MOABB's paradigm defaults, at 200 Hz.

    Split: the dataset's subjects in natural order, the first 70 % train, the
    next 15 % validation, the rest test (each split gets at least one subject).
    Files: where MOABB's downloader put them, as recorded by
    ``eegkd-bench download`` in ``<root>/eegkd-moabb/<Dataset>.json``.
    """

    subject_format = "{}"
    description = ""

    def __init__(self, name: str) -> None:
        facts = known_facts().get(name)
        if facts is None:
            raise UserError(f"moabb {_moabb_version()} lists no dataset {name!r} of the paradigms "
                            f"{', '.join(PARADIGMS)}; see eegkd-bench datasets")
        paradigm_class, label, events = PARADIGMS[facts.paradigm]
        window = window_seconds(facts.interval_s) if facts.interval_s else 0.0
        super().__init__(name, paradigm_class, name=name.lower(), events=events, tmin=0.0,
                         tmax=window or None, n_samples=int(window * pp.TARGET_SFREQ) or None,
                         description=f"MOABB {name}: {label}, {facts.n_subjects} subjects, 200 Hz, uV/100")
        self.facts = facts
        self.paradigm = label
        self.n_subjects = facts.n_subjects
        self.n_channels = facts.n_channels
        self.class_names = facts.classes
        self.n_classes = facts.n_classes
        self.window_s = window

    def moabb_dataset(self) -> Any:
        """The MOABB dataset object (and, the first time MOABB is imported, the exact catalog facts)."""
        ds = super().moabb_dataset()
        remember_classes()
        return ds

    def prepare(self, ds: Any) -> None:
        """Window and classes from the class itself: its task interval, its paradigm's events."""
        facts = facts_of(ds, self.facts.paradigm)
        self.window_s = window_seconds(facts.interval_s)
        self.tmax, self.n_samples = self.window_s, int(self.window_s * pp.TARGET_SFREQ)
        self.class_names = ()  # the paradigm's used events decide, in MOABB's order

    def root_key(self) -> str:
        return f"{MANIFEST_DIR}/{self.dataset_class}.json"

    def how_to_get(self, root: Path) -> str:
        """The short download hint of the listing (the root is shown beside it)."""
        return f"run `eegkd-bench download {self.dataset_class}`"

    def _missing_by_subject(self, root: Path) -> dict[Any, list[Path]]:
        """Per subject of MOABB's list, its recorded files that are not on disk (no record: nothing downloaded)."""
        manifest = read_manifest(root, self.dataset_class) or {}
        recorded = manifest.get("subjects", {})
        out: dict[Any, list[Path]] = {}
        for s in manifest.get("subject_list", []):
            files = recorded.get(str(s))
            out[s] = ([Path(f"subject {s} (not downloaded)")] if files is None
                      else [root / f for f in files if not (root / f).exists()])
        return out

    def expected_files(self, subject: Any, root: Path) -> list[Path]:
        """The files MOABB returned for the subject when ``eegkd-bench download`` fetched it."""
        recorded = (read_manifest(root, self.dataset_class) or {}).get("subjects", {})
        return [root / f for f in recorded.get(str(subject), [])]

    def availability(self, data_dir: str | None = None) -> Availability:
        """On disk when ``eegkd-bench download`` recorded at least one subject whose files are all there."""
        av = super().availability(data_dir)
        if read_manifest(Path(av.where), self.dataset_class) is None:
            return Availability(False, av.where, av.how_to_get,
                                f"0 of {self.n_subjects} subjects downloaded (no {self.root_key()} in {av.where})")
        return av

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> Any:
        """Windows of every downloaded subject, split over the dataset's whole subject list."""
        if 0 < self.n_subjects < 3:
            raise UserError(f"{self.name}: {self.n_subjects} subject(s) cannot make subject-disjoint "
                            "train/val/test splits; pick a dataset with 3 or more subjects")
        return super().load(data_dir, cache_dir)


class _Factory:
    """A cheap, picklable factory: the registry and the quick preset read ``kind`` without building anything."""

    kind = "real"

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self) -> CatalogDataset:
        return CatalogDataset(self.name)

    def __repr__(self) -> str:
        return f"CatalogDataset({self.name!r})"


def register_catalog(register: Any, taken: set[str]) -> None:
    """Register every listed MOABB dataset not in ``taken``; they join ``all`` only by name or pattern."""
    for name, facts in sorted(summary_facts().items()):
        if name.lower() in taken:
            continue
        label = PARADIGMS[facts.paradigm][1]
        register(name.lower(), _Factory(name), description=f"MOABB {name} ({label})", opt_in=True,
                 moabb=name, paradigm=label)
