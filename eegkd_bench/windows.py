"""The data contract: windows, their splits, the dataset base class, and the input a model must accept.

EEG windows are float32 arrays ``(n, channels, samples)`` in the dataset's own unit scale.
``EEGWindows.X`` may be a read-only memory map of the on-disk store; the core reads it batch by
batch by index (:class:`WindowRows`) and never copies it whole. Re-exported by :mod:`eegkd_bench.api`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

#: The protocol splits. ``transfer`` is optional: windows of subjects in no other split whose labels
#: are withheld (stored as :data:`UNLABELLED`); only distillers that declare the ``transfer`` option
#: read them, as extra inputs for their teacher terms. A student trained alone never sees them.
SPLITS = ("train", "val", "test", "transfer")
#: The label of a window whose class is withheld (the transfer split's); label terms skip such windows.
UNLABELLED = -1
DataKind = Literal["real", "simulated"]


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Availability:
    """Whether a dataset's files are present, where we looked, and how to get them."""

    available: bool
    where: str
    how_to_get: str = ""
    detail: str = ""  # e.g. "9 subjects, 1.2 GB" or the reason it is missing


class WindowRows:
    """Rows ``idx`` of a window array (often a memory map), read batch by batch.

    ``rows[sel]`` (an int, a slice or an index array relative to these rows) returns a
    writable float32 array holding only the selected windows (copied out of a read-only map). ``np.asarray(rows)`` copies the
    whole split: fine for small data, never done by the core.
    """

    def __init__(self, X: np.ndarray, idx: np.ndarray) -> None:
        self.base = X
        self.idx = np.asarray(idx, dtype=np.int64)
        n = len(self.idx)
        # a contiguous run is read with one slice, not fancy indexing
        self._start = int(self.idx[0]) if n and int(self.idx[-1]) - int(self.idx[0]) == n - 1 and \
            bool((np.diff(self.idx) == 1).all()) else None

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.idx), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __getitem__(self, sel: Any) -> np.ndarray:
        if isinstance(sel, slice) and self._start is not None:
            a, b, step = sel.indices(len(self.idx))
            if step == 1:
                return _own_float32(self.base[self._start + a:self._start + max(a, b)])
        return _own_float32(self.base[self.idx[sel]])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """Every row as one array: a copy of the whole split (for small-data tools; the core reads batches)."""
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype, copy=False)


def _own_float32(rows: np.ndarray) -> np.ndarray:
    """``rows`` as a writable float32 array: copied only when it is a view of a read-only map or another dtype."""
    if rows.flags.writeable and rows.dtype == np.float32 and rows.flags.c_contiguous:
        return rows
    return np.array(rows, dtype=np.float32)


def read_rows(X: "np.ndarray | WindowRows", sel: Any) -> np.ndarray:
    """Windows ``X[sel]`` as a writable float32 array (only the selected rows are read)."""
    return X[sel] if isinstance(X, WindowRows) else _own_float32(X[sel])


@dataclass
class EEGWindows:
    """Preprocessed windows of one dataset with its declared protocol split."""

    name: str
    X: np.ndarray  # (n, channels, samples) float32
    y: np.ndarray  # (n,) int64 class indices in [0, n_classes)
    subjects: np.ndarray  # (n,) subject ids (str)
    split: np.ndarray  # (n,) one of SPLITS
    sfreq: float
    ch_names: list[str]
    class_names: list[str]
    kind: DataKind
    checksum: str  # of the source files (real) or the generator and its parameters (simulated)
    notes: str = ""

    def __post_init__(self) -> None:
        n = len(self.X)
        if self.X.dtype != np.float32:
            raise ValueError(f"{self.name}: X must be float32, got {self.X.dtype}; cast it in the dataset plugin")
        if self.X.ndim != 3:
            raise ValueError(f"{self.name}: X must be (n, channels, samples), got shape {self.X.shape}")
        for attr in ("y", "subjects", "split"):
            if len(getattr(self, attr)) != n:
                raise ValueError(f"{self.name}: {attr} has {len(getattr(self, attr))} entries, X has {n}")
        if self.X.shape[1] != len(self.ch_names):
            raise ValueError(
                f"{self.name}: X has {self.X.shape[1]} channels but {len(self.ch_names)} channel names"
            )

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_channels(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[2])

    @property
    def task(self) -> Literal["binary", "multiclass"]:
        return "binary" if self.n_classes == 2 else "multiclass"

    def indices(self, split: str) -> np.ndarray:
        """Indices of the windows in one protocol split."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return np.flatnonzero(self.split == split)

    def part(self, split: str) -> tuple[WindowRows, np.ndarray]:
        """``(X, y)`` of one protocol split; ``X`` reads the windows by index, batch by batch."""
        idx = self.indices(split)
        return WindowRows(self.X, idx), np.asarray(self.y)[idx]

    def split_sizes(self) -> dict[str, dict[str, int]]:
        """Subjects and windows of each non-empty split (records keep it beside the scores)."""
        out = {}
        for split in SPLITS:
            idx = self.indices(split)
            if len(idx):
                out[split] = {"subjects": int(len(np.unique(np.asarray(self.subjects)[idx]))), "windows": int(len(idx))}
        return out

    def fit_part(self, transfer: bool = False) -> tuple[WindowRows, np.ndarray]:
        """What a student trains on: the train split, then, with ``transfer``, the transfer split's windows
        labelled :data:`UNLABELLED`. The train windows come first, so row ``i < n_train`` is the same
        window with or without the transfer rows (the teacher-output cache relies on it)."""
        idx = self.indices("train")
        y = np.asarray(self.y)[idx].astype(np.int64)
        if transfer:
            extra = self.indices("transfer")
            idx = np.concatenate([idx, extra])
            y = np.concatenate([y, np.full(len(extra), UNLABELLED, np.int64)])
        return WindowRows(self.X, idx), y

    def first_nonfinite(self, batch_bytes: int = 64 * 1024 * 1024) -> int | None:
        """Index of the first window holding a NaN or infinity (None: all finite), read in batches."""
        step = max(1, batch_bytes // max(1, int(np.prod(self.X.shape[1:])) * 4))
        for start in range(0, len(self.X), step):
            ok = np.isfinite(self.X[start:start + step]).reshape(min(step, len(self.X) - start), -1).all(axis=1)
            if not ok.all():
                return start + int(np.flatnonzero(~ok)[0])
        return None

    def input_spec(self) -> "InputSpec":
        return InputSpec(self.n_channels, self.n_samples, self.n_classes, float(self.sfreq))


class Dataset:
    """A registered dataset. Subclasses set the class attributes and implement two methods."""

    name: ClassVar[str] = ""
    kind: ClassVar[DataKind] = "real"
    description: ClassVar[str] = ""
    paradigm: ClassVar[str] = ""  # e.g. "motor imagery", "abnormal EEG", "events", "emotion"
    # static facts shown by `eegkd-bench datasets` even when the files are absent
    class_names: ClassVar[tuple[str, ...]] = ()
    n_channels: ClassVar[int] = 0
    window_s: ClassVar[float] = 0.0  # window length in seconds after preprocessing
    sfreq: ClassVar[float] = 200.0  # sampling rate after preprocessing
    #: constructor keywords a run may set (``--set NAME.OPTION=VALUE``): ``{name: Option or default}``;
    #: the factory is called with every one, resolved. The windows' checksum must reflect them.
    defaults: ClassVar[dict[str, Any]] = {}

    def availability(self, data_dir: str | None = None) -> Availability:
        """Report whether the data is on disk (never downloads, never touches the network)."""
        raise NotImplementedError

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        """Return the preprocessed windows; raise :class:`DataUnavailable` when files are missing."""
        raise NotImplementedError

    def preprocessing(self) -> dict[str, Any]:
        """How recordings become the windows a model sees, for whoever deploys a model trained on them.

        Keys (``None`` where a step is absent): ``resample``, ``band_pass_hz`` (``[low, high]``, either
        may be ``None``), ``notch_hz``, ``reference``, ``scaling`` (the unit of the values).
        An empty dict means the plugin does not declare it.
        """
        return {}
    # -- unlabeled pretraining corpora (``eegkd-bench pretrain``); never part of a benchmark grid
    #: False for a corpus that only streams unlabeled windows through :meth:`stream_batch`.
    labeled: ClassVar[bool] = True

    def stream_batch(self, index: int, batch_size: int) -> np.ndarray:
        """Unlabeled batch number ``index``: float32 ``(batch_size, channels, samples)``, the same for the
        same ``index`` every time (so an interrupted pretraining run resumes on the same data)."""
        raise NotImplementedError(f"{type(self).__name__} is not a streamed corpus")



@dataclass(frozen=True)
class InputSpec:
    """What a model must accept and produce."""

    n_channels: int
    n_samples: int
    n_classes: int
    sfreq: float = 200.0


__all__ = ["SPLITS", "UNLABELLED", "Availability", "DataKind", "Dataset", "EEGWindows", "InputSpec", "WindowRows",
           "read_rows"]
