"""What a result *is*: the one module that defines a cell's and a teacher's identity.

Three questions are answered here and nowhere else:

* **the key** — what determines a cell's numbers (:func:`cell_key`, from :meth:`CellSpec.identity`,
  the data's checksum and split, and the teacher's init) and a fine-tuned teacher's
  (:func:`teacher_key`, :func:`cell_teacher_key`). A finished key is never recomputed.
* **the row** — the label a result is shown under in tables (:func:`row_identity`): dataset label,
  teacher, teacher init label, student, distiller, seed. Cells with one row but different keys are
  the same experiment computed again (after a default, recipe or version changed).
* **the newest** — which record of a row counts (:func:`latest_records`: the one written last).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eegkd_bench.errors import UserError
from eegkd_bench.results import SCHEMA_VERSION
from eegkd_bench.storage import file_sha256, stable_hash

if TYPE_CHECKING:
    from eegkd_bench.api import EEGWindows
    from eegkd_bench.training import TrainConfig

#: The version of a fine-tuned teacher's cache entry (part of its key).
TEACHER_FORMAT = 1
#: The teacher fine-tuning's label smoothing (part of its key).
LABEL_SMOOTHING = 0.1


@dataclass(frozen=True)
class CellSpec:
    """Everything that determines one cell's result (picklable, sent to workers)."""

    dataset: str
    teacher: str
    student: str
    distiller: str
    seed: int
    preset: str
    teacher_cfg: TrainConfig
    student_cfg: TrainConfig
    teacher_checkpoint: str | None = None
    teacher_options: tuple[tuple[str, Any], ...] = ()  # resolved: every declared option, sorted
    student_options: tuple[tuple[str, Any], ...] = ()
    distiller_options: tuple[tuple[str, Any], ...] = ()
    # the registered component whose factory builds a variant ("" when the name is not a variant)
    teacher_base: str = ""
    student_base: str = ""
    distiller_base: str = ""
    #: (part, "<distribution> <version>") of the core and of each component's package
    provenance: tuple[tuple[str, str], ...] = ()
    dataset_options: tuple[tuple[str, Any], ...] = ()  # resolved: every option the dataset declares, sorted
    #: True when ``dataset_options`` are the dataset's declared defaults (see :meth:`dataset_key_options`)
    dataset_defaults: bool = False
    #: how tables name the dataset: its name, plus the options that differ from its defaults (``sim-mi[seed=3]``)
    dataset_label: str = ""

    def factory_name(self, kind: str) -> str:
        """The registered component that builds this cell's ``kind`` (teacher, student, distiller)."""
        return getattr(self, f"{kind}_base") or getattr(self, kind)

    def dataset_key_options(self) -> dict[str, Any]:
        """The dataset options that enter the cell and teacher keys: all of them unless they are the defaults.

        Default options reach the keys through the data checksum (a dataset's checksum reflects its
        options), so a run with the defaults keeps the keys of runs made before datasets had options.
        """
        return {} if self.dataset_defaults else dict(self.dataset_options)

    def identity(self) -> dict[str, Any]:
        """The fields that enter the cell key."""
        d = dataclasses.asdict(self)
        d.pop("teacher_checkpoint")  # the checkpoint's content (sha256) enters the key, not its path
        for name in ("dataset_options", "dataset_defaults", "dataset_label"):
            d.pop(name)
        if self.dataset_key_options():
            d["dataset_options"] = self.dataset_key_options()
        d["teacher_cfg"], d["student_cfg"] = self.teacher_cfg.as_dict(), self.student_cfg.as_dict()
        return d

    def teacher_provenance(self) -> dict[str, str]:
        """The packages that determine the cell's fine-tuned teacher (part of the teacher key)."""
        return {k: v for k, v in self.provenance if k in ("core", "teacher", "dataset")}

    def label(self) -> str:
        """How progress output names the cell."""
        return f"{self.dataset} · {self.distiller} → {self.student} · seed {self.seed}"


# ------------------------------------------------------------------------- keys
def split_digest(windows: EEGWindows) -> str:
    """Digest of the protocol split assignment (part of teacher and cell keys)."""
    return hashlib.sha256(np.asarray(windows.split).astype("U5").tobytes()).hexdigest()[:16]


def cell_key(cell: CellSpec, windows: EEGWindows, teacher_init: str | None = None) -> str:
    """Hash of everything that determines the cell's result (``teacher_init``: :func:`checkpoint_init` of its
    checkpoint, computed when not given)."""
    if teacher_init is None:
        teacher_init = checkpoint_init(cell.teacher_checkpoint)
    return stable_hash({
        "schema": SCHEMA_VERSION, "cell": cell.identity(), "data_checksum": windows.checksum,
        "split": split_digest(windows), "teacher_init": teacher_init,
    })[:32]


def skip_key(cell: CellSpec) -> str:
    """Key of a cell whose data never loaded (skipped); replaced by its real record once it runs."""
    return "skip-" + stable_hash({"schema": SCHEMA_VERSION, "cell": cell.identity()})[:27]


def fail_key(cell: CellSpec) -> str:
    """Key of a cell that failed before its data's key was known."""
    return skip_key(cell).replace("skip-", "fail-")


def teacher_key(name: str, options: dict[str, Any], init_source: str, windows: EEGWindows, seed: int,
                cfg: TrainConfig, label_smoothing: float = LABEL_SMOOTHING, finetune: bool = True,
                provenance: dict[str, str] | None = None, dataset_options: dict[str, Any] | None = None) -> str:
    """Cache key of a fine-tuned teacher (``provenance``: the packages, with versions, that build it;
    ``dataset_options``: the dataset's options when they are not its defaults)."""
    return stable_hash({
        "format": TEACHER_FORMAT, "teacher": name, "options": options, "init": init_source,
        "dataset": windows.name, "data_checksum": windows.checksum, "split": split_digest(windows),
        "seed": seed, "recipe": cfg.as_dict(), "label_smoothing": label_smoothing, "finetune": finetune,
        "provenance": provenance or {}, **({"dataset_options": dataset_options} if dataset_options else {}),
    })[:24]


def cell_teacher_key(cell: CellSpec, windows: EEGWindows) -> str:
    """The key of the fine-tuned teacher a cell reads (what :func:`eegkd_bench.teachers.prepare_teacher` caches)."""
    return teacher_key(cell.teacher, dict(cell.teacher_options), checkpoint_init(cell.teacher_checkpoint), windows,
                       cell.seed, cell.teacher_cfg, provenance=cell.teacher_provenance(),
                       dataset_options=cell.dataset_key_options())


@functools.lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, remembered per (path, size, modification time): planning names a checkpoint's
    init once per cell, and an official checkpoint is tens of MB."""
    return file_sha256(Path(path))


def checkpoint_init(checkpoint: str | None) -> str:
    """``"random"``, ``"sha256:<hex>"`` of a checkpoint file, or ``"<label> sha256:<hex>"`` when the
    checkpoint's ``eegkd-bench pretrain`` sidecar (same name, ``.json``) names how it was made, e.g.
    ``"sim-pretrained sha256:…"`` for a teacher pretrained on simulated EEG only."""
    if not checkpoint:
        return "random"
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise UserError(f"teacher checkpoint {checkpoint!r} not found; pass an existing file (or a checkpoint name the "
                        "teacher registers, see eegkd-bench list teachers) to --teacher-checkpoint")
    stat = path.stat()
    digest = _file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    try:
        side = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        side = {}
    label = side.get("label") if isinstance(side, dict) and side.get("sha256") == digest else None
    return f"{label} sha256:{digest}" if label else f"sha256:{digest}"


# -------------------------------------------------------------------- rows
def init_label(teacher_init: Any) -> str:
    """How a teacher's init tells rows apart: ``"random"``, a checkpoint's label (``"sim-pretrained"`` of
    ``"sim-pretrained sha256:…"``), or the ``"sha256:<hex>"`` of an unlabelled checkpoint; ``""`` when the
    record does not say (a cell whose data never loaded, stored without it)."""
    if not teacher_init:
        return ""
    text = str(teacher_init)
    label, _, digest = text.rpartition(" ")
    return label if label and digest.startswith("sha256:") else text


def row_identity(record: dict[str, Any]) -> tuple[str, str, str, str, str, Any]:
    """The identity of a cell's row: (dataset label, teacher, teacher init label, student, distiller, seed).

    Records that share it are the same cell computed more than once (after an option default,
    a recipe, a plugin's version or the pretrained checkpoint's file changed; their keys differ),
    so tables count only the newest. Records that differ in it are different rows: a dataset run
    with non-default options (``dataset_label``, e.g. ``sim-mi[n_subjects=16]``) or a teacher from
    another init (``random`` vs ``sim-pretrained``) never replaces the default one.
    """
    return (str(record.get("dataset_label") or record.get("dataset")), str(record.get("teacher")),
            init_label(record.get("teacher_init")), str(record.get("student")), str(record.get("distiller")),
            record.get("seed"))


def latest_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest record (by ``created``) of each row (:func:`row_identity`), in input order.

    After an option default, a recipe or a plugin's version changed, a results directory holds
    the old records beside the new ones (their keys differ); this keeps the ones written last.
    """
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in records:
        cell = row_identity(r)
        if cell not in newest or (r.get("created") or "", r.get("key") or "") >= \
                (newest[cell].get("created") or "", newest[cell].get("key") or ""):
            newest[cell] = r
    keep = {id(r) for r in newest.values()}
    return [r for r in records if id(r) in keep]


__all__ = ["CellSpec", "LABEL_SMOOTHING", "TEACHER_FORMAT", "cell_key", "cell_teacher_key", "checkpoint_init",
           "fail_key", "init_label", "latest_records", "row_identity", "skip_key", "split_digest", "teacher_key"]
