"""The one place the core builds a cell's components and loads its windows.

Planning (preflight), the cache decision, every executor and the cell itself build through
these functions, so a variant (a run's own name for a registered component with other
options) is always built from its base's factory with the cell's resolved options.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from eegkd_bench.api import Distiller, EEGModel, EEGWindows, InputSpec, TeacherInfo, TeacherModel
from eegkd_bench.data.catalog import load_dataset
from eegkd_bench.identity import CellSpec
from eegkd_bench.registry import Registry


def teacher_factory(registry: Registry, cell: CellSpec) -> Callable[..., TeacherModel]:
    """The factory that builds the cell's teacher (``factory(spec, **cell.teacher_options)``)."""
    return registry.get("teachers", cell.factory_name("teacher")).factory


def build_teacher(registry: Registry, cell: CellSpec, spec: InputSpec) -> TeacherModel:
    """The cell's teacher architecture for ``spec`` (random init; fine-tuning and checkpoints are
    :func:`eegkd_bench.teachers.prepare_teacher`'s)."""
    return teacher_factory(registry, cell)(spec, **dict(cell.teacher_options))


def build_student(registry: Registry, cell: CellSpec, spec: InputSpec) -> EEGModel:
    """The cell's student, untrained."""
    return registry.get("students", cell.factory_name("student")).factory(spec, **dict(cell.student_options))


def build_distiller(registry: Registry, cell: CellSpec, spec: InputSpec, teacher: TeacherInfo | None,
                    **construction: Any) -> Distiller:
    """The cell's distiller around a new student (``construction``: what the runner passes every distiller,
    e.g. ``total_epochs``)."""
    student = build_student(registry, cell, spec)
    factory = registry.get("distillers", cell.factory_name("distiller")).factory
    return factory(student=student, teacher=teacher, spec=spec, **construction, **dict(cell.distiller_options))


def load_windows(registry: Registry, cell: CellSpec, data_dir: str | None, cache_dir: Path) -> EEGWindows:
    """The windows of the cell's dataset with the cell's dataset options (checked: available, finite, three splits)."""
    return load_dataset(registry, cell.dataset, data_dir, cache_dir, dict(cell.dataset_options))


class WindowsMemo:
    """Windows of the datasets a process runs cells of, loaded once each (at most ``keep`` kept in memory)."""

    def __init__(self, registry: Registry, data_dir: str | None, cache_dir: Path, keep: int = 1) -> None:
        self.registry, self.data_dir, self.cache_dir, self.keep = registry, data_dir, cache_dir, keep
        self._loaded: dict[tuple[Any, ...], EEGWindows] = {}

    def __call__(self, cell: CellSpec) -> EEGWindows:
        key = (cell.dataset, cell.dataset_options)
        if key not in self._loaded:
            if len(self._loaded) >= self.keep:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[key] = load_windows(self.registry, cell, self.data_dir, self.cache_dir)
        return self._loaded[key]


__all__ = ["WindowsMemo", "build_distiller", "build_student", "build_teacher", "load_windows", "teacher_factory"]
