"""Planning a grid: which cells run, which are done or skipped, and the teachers they share.

Planning loads each dataset once, drops the cells whose record already exists (resume),
builds every (teacher, student, distiller) once per input shape so incompatibilities fail
before any training (preflight), and groups the cells by the fine-tuned teacher they share.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from eegkd_bench.api import EEGWindows, TeacherInfo
from eegkd_bench.cell import (
    CellSpec,
    RunContext,
    cell_key,
    prepare_cell_teacher,
    reads_output_cache,
    teacher_init_of,
    teacher_output_names,
)
from eegkd_bench.data.catalog import load_dataset
from eegkd_bench.errors import DataUnavailable, UserError
from eegkd_bench.presets import Preset
from eegkd_bench.registry import Registry
from eegkd_bench.teachers import teacher_info


@dataclass(frozen=True)
class TeacherGroup:
    """The cells that share one fine-tuned teacher, and the teacher outputs they read from the cache.

    The teacher is fine-tuned once per group, and ``outputs`` are computed together in one
    pass over the training split before any of its cells runs.
    """

    cells: tuple[CellSpec, ...]
    outputs: frozenset[str] = frozenset()

    @staticmethod
    def key_of(cell: CellSpec) -> tuple[Any, ...]:
        """What identifies a cell's fine-tuned teacher."""
        return (cell.dataset, cell.teacher, cell.seed, cell.teacher_options, cell.teacher_checkpoint, cell.teacher_cfg)

    @property
    def cell(self) -> CellSpec:
        """A cell of the group; its teacher fields are the group's."""
        return self.cells[0]

    def prepare(self, ctx: RunContext, registry: Registry, windows: EEGWindows,
                progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Fine-tune (or load) the teacher and cache its outputs; a failure is left for each cell to record."""
        try:
            prepare_cell_teacher(self.cell, ctx, registry, windows, progress, self.outputs)
        except UserError:
            raise  # e.g. a full disk: stop with its one-line reason
        except Exception:
            pass  # each of its cells will fail and record why


def teacher_groups(cells: Iterable[CellSpec], cached_outputs: dict[CellSpec, frozenset[str]] | None = None,
                   ) -> list[TeacherGroup]:
    """Group ``cells`` by their fine-tuned teacher (in first-seen order), with the union of their cached outputs."""
    members: dict[tuple[Any, ...], list[CellSpec]] = {}
    outputs: dict[tuple[Any, ...], frozenset[str]] = {}
    for cell in cells:
        key = TeacherGroup.key_of(cell)
        members.setdefault(key, []).append(cell)
        outputs[key] = outputs.get(key, frozenset()) | (cached_outputs or {}).get(cell, frozenset())
    return [TeacherGroup(tuple(members[k]), outputs[k]) for k in members]


@dataclass
class GridPlan:
    """The cells to run (with their datasets loaded), the cells to skip and why, and the teacher groups."""

    cells: list[CellSpec]
    skipped: list[tuple[CellSpec, str]] = field(default_factory=list)
    windows: dict[str, EEGWindows] = field(default_factory=dict)
    groups: list[TeacherGroup] = field(default_factory=list)  # filled by preflight_plan

    def groups_of(self, cells: Iterable[CellSpec]) -> list[TeacherGroup]:
        """The teacher groups that some of ``cells`` belong to."""
        keys = {TeacherGroup.key_of(c) for c in cells}
        return [g for g in self.groups if TeacherGroup.key_of(g.cell) in keys]


def make_plan(registry: Registry, ctx: RunContext, reporter: Any, datasets: list[str], teacher: str,
              students: list[str], methods: list[str], seeds: tuple[int, ...], preset: Preset, *,
              teacher_checkpoint: str | None = None, retry_failed: bool = False,
              teacher_options: dict[str, Any] | None = None) -> GridPlan:
    """Every cell of the grid that has no finished record yet; cells whose dataset cannot load are skipped."""
    plan = GridPlan(cells=[])
    init = teacher_init_of(teacher_checkpoint)
    for ds in datasets:
        cells = [
            CellSpec(ds, teacher, s, m, seed, preset.name, preset.teacher_cfg, preset.student_cfg,
                     teacher_checkpoint, tuple(sorted((teacher_options or {}).items())))
            for seed in seeds for s in students for m in methods
        ]
        try:
            reporter.message(f"loading dataset {ds} …")
            windows = load_dataset(registry, ds, ctx.data_dir, ctx.cache_dir)
        except DataUnavailable as exc:
            plan.skipped.extend((c, f"skipped: {ds} {exc}") for c in cells)
            continue
        except UserError as exc:
            plan.skipped.extend((c, f"skipped: {exc}") for c in cells)
            continue
        plan.windows[ds] = windows
        for c in cells:
            rec = ctx.results.get(cell_key(c, windows, init))
            if rec is None or rec.get("status") == "skipped" or (retry_failed and rec.get("status") == "failed"):
                plan.cells.append(c)
            else:
                reporter.already_done(c, rec)
    return plan


def preflight(registry: Registry, cells: Iterable[CellSpec], windows: dict[str, EEGWindows],
              *, teacher_cache: bool = True) -> dict[CellSpec, frozenset[str]]:
    """Build every (teacher, student, distiller) once per input shape so incompatibilities fail before training.

    Returns, per cell, the teacher outputs it will read from the on-disk cache.
    """
    cached: dict[tuple[Any, ...], frozenset[str]] = {}
    infos: dict[tuple[Any, ...], TeacherInfo] = {}
    out: dict[CellSpec, frozenset[str]] = {}
    for cell in cells:
        spec = windows[cell.dataset].input_spec()
        tkey = (cell.teacher, cell.teacher_options, spec)
        if tkey not in infos:
            teacher = registry.get("teachers", cell.teacher).factory(spec, **dict(cell.teacher_options))
            infos[tkey] = teacher_info(cell.teacher, teacher, spec)
        key = (cell.student, cell.student_options, cell.distiller, cell.distiller_options, cell.student_cfg.augment,
               tkey)
        if key not in cached:
            student = registry.get("students", cell.student).factory(spec, **dict(cell.student_options))
            distiller_cls = registry.get("distillers", cell.distiller).factory
            distiller = distiller_cls(student=student, teacher=infos[tkey], spec=spec, **dict(cell.distiller_options))
            names = teacher_output_names(distiller, infos[tkey])
            cached[key] = frozenset(names if reads_output_cache(cell, distiller, teacher_cache) else ())
        out[cell] = cached[key]
    return out


def preflight_plan(registry: Registry, plan: GridPlan, *, teacher_cache: bool = True) -> None:
    """Run :func:`preflight` on the plan's cells and fill ``plan.groups``."""
    plan.groups = teacher_groups(plan.cells, preflight(registry, plan.cells, plan.windows, teacher_cache=teacher_cache))


__all__ = ["GridPlan", "TeacherGroup", "make_plan", "preflight", "preflight_plan", "teacher_groups"]
