"""Planning a grid: which cells run, which are done or skipped, and the teachers they share.

Planning loads each dataset once, drops the cells whose record already exists (resume),
builds every (teacher, student, distiller) once per input shape so incompatibilities fail
before any training (preflight), and groups the cells by the fine-tuned teacher they share.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from eegkd_bench.api import EEGWindows, TeacherInfo
from eegkd_bench.build import build_distiller, build_teacher, load_windows
from eegkd_bench.cell import prepare_cell_teacher
from eegkd_bench.context import RunContext
from eegkd_bench.config import Component, resolve, student_recipe
from eegkd_bench.identity import CellSpec, cell_key, checkpoint_init
from eegkd_bench.errors import DataUnavailable, DiskSpaceError, UserError, one_line
from eegkd_bench.plugins import core_distribution
from eegkd_bench.presets import Preset
from eegkd_bench.registry import Registry
from eegkd_bench.teacher_cache import (
    CellReads,
    cache_bytes_needed,
    cache_choice,
    cached_output_names,
    decide_cache,
    fit_to_disk,
    size_reads,
)
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
        return (cell.dataset, cell.dataset_options, cell.teacher, cell.seed, cell.teacher_options,
                cell.teacher_checkpoint, cell.teacher_cfg)

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
    #: cells whose components raised a bug while being built: (cell, one-line reason, traceback)
    failed: list[tuple[CellSpec, str, str]] = field(default_factory=list)
    finished: list[CellSpec] = field(default_factory=list)  # already stored by an earlier run
    windows: dict[str, EEGWindows] = field(default_factory=dict)
    groups: list[TeacherGroup] = field(default_factory=list)  # filled by preflight_plan

    def groups_of(self, cells: Iterable[CellSpec]) -> list[TeacherGroup]:
        """The teacher groups that some of ``cells`` belong to."""
        keys = {TeacherGroup.key_of(c) for c in cells}
        return [g for g in self.groups if TeacherGroup.key_of(g.cell) in keys]


def grid_cells(registry: Registry, dataset: str, teacher: str, students: list[str], methods: list[str],
               seeds: tuple[int, ...], preset: Preset, *, teacher_checkpoint: str | None = None,
               options: Mapping[str, Mapping[str, Any]] | None = None) -> list[CellSpec]:
    """The cells of one dataset, each component with its resolved options and the packages that provide it."""
    t = resolve(registry, "teachers", teacher, options)
    d = resolve(registry, "datasets", dataset, options)
    defaults = dict(resolve(registry, "datasets", dataset).options)
    changed = [f"{k}={v}" for k, v in d.options if defaults.get(k) != v]
    d_defaults = not changed
    d_label = f"{dataset}[{','.join(changed)}]" if changed else dataset
    core = [("core", core_distribution()), ("dataset", d.provenance), ("teacher", t.provenance)]
    cells = []
    for seed in seeds:
        for s in (resolve(registry, "students", name, options) for name in students):
            recipe = student_recipe(registry, preset, s.name)
            for m in (resolve(registry, "distillers", name, options) for name in methods):
                cells.append(CellSpec(
                    dataset, teacher, s.name, m.name, seed, preset.name, preset.teacher_cfg, recipe,
                    teacher_checkpoint, teacher_options=t.options, student_options=s.options,
                    distiller_options=m.options, teacher_base=_base(t), student_base=_base(s),
                    distiller_base=_base(m),
                    provenance=tuple(core + [("student", s.provenance), ("distiller", m.provenance)]),
                    dataset_options=d.options, dataset_defaults=d_defaults, dataset_label=d_label))
    return cells


def _base(component: Component) -> str:
    return "" if component.base == component.name else component.base


def make_plan(registry: Registry, ctx: RunContext, reporter: Any, datasets: list[str], teacher: str,
              students: list[str], methods: list[str], seeds: tuple[int, ...], preset: Preset, *,
              teacher_checkpoint: str | None = None, retry_failed: bool = False,
              teacher_options: dict[str, Any] | None = None,
              options: Mapping[str, Mapping[str, Any]] | None = None) -> GridPlan:
    """Every cell of the grid that has no finished record yet; cells whose dataset cannot load are skipped.

    ``options`` sets component options by name (``{"kd": {"temperature": 2.0}}``);
    ``teacher_options`` is shorthand for the teacher's.
    """
    plan = GridPlan(cells=[])
    init = checkpoint_init(teacher_checkpoint)
    options = {**(options or {})}
    if teacher_options:
        options[teacher] = {**options.get(teacher, {}), **teacher_options}
    for ds in datasets:
        cells = grid_cells(registry, ds, teacher, students, methods, seeds, preset,
                           teacher_checkpoint=teacher_checkpoint, options=options)
        if not cells:
            continue
        try:
            reporter.message(f"loading dataset {ds} …")
            windows = load_windows(registry, cells[0], ctx.data_dir, ctx.cache_dir)  # its cells share its options
        except DataUnavailable as exc:
            plan.skipped.extend((c, f"skipped: {ds} {exc}") for c in cells)
            continue
        except DiskSpaceError:
            raise  # the disk is full for every dataset: stop with its one-line reason
        except UserError as exc:
            plan.skipped.extend((c, f"skipped: {exc}") for c in cells)
            continue
        plan.windows[ds] = windows
        for c in cells:
            rec = ctx.results.get(cell_key(c, windows, init))
            if rec is None or rec.get("status") == "skipped" or (retry_failed and rec.get("status") == "failed"):
                plan.cells.append(c)
            else:
                plan.finished.append(c)
                reporter.already_done(c, rec)
    return plan


def preflight(registry: Registry, cells: Iterable[CellSpec], windows: dict[str, EEGWindows],
              *, teacher_cache: bool | Callable[[CellSpec], bool] = True,
              reads: dict[CellSpec, CellReads] | None = None,
              incompatible: dict[CellSpec, str] | None = None,
              broken: dict[CellSpec, tuple[str, str]] | None = None) -> dict[CellSpec, frozenset[str]]:
    """Build every (teacher, student, distiller) once per input shape so incompatibilities fail before training.

    Returns, per cell, the teacher outputs it will read from the on-disk cache (``teacher_cache``:
    whether cells use the cache, or a function of the cell that says so); ``reads`` is filled
    with the bytes per window each cell reads. A component that cannot be built for a dataset's
    input raises its UserError, or, given ``incompatible``, leaves its cells out with the reason there.
    A component that fails with another error (a bug in its plugin) raises it, or, given ``broken``,
    leaves its cells out with the one-line reason and the traceback there.
    """
    uses = teacher_cache if callable(teacher_cache) else (lambda cell: bool(teacher_cache))
    sized: dict[tuple[Any, ...], CellReads] = {}
    cached: dict[tuple[Any, ...], frozenset[str]] = {}
    infos: dict[tuple[Any, ...], TeacherInfo] = {}
    out: dict[CellSpec, frozenset[str]] = {}
    failed: dict[tuple[Any, ...], str] = {}  # what could not be built for an input: (teacher or student key) -> why
    bugs: dict[tuple[Any, ...], tuple[str, str]] = {}
    for cell in cells:
        spec = windows[cell.dataset].input_spec()
        tkey = (cell.factory_name("teacher"), cell.teacher_options, spec)
        use = uses(cell)
        key = (cell.factory_name("student"), cell.student_options, cell.factory_name("distiller"),
               cell.distiller_options, cell.student_cfg.augment, tkey, use)
        bug = next((k for k in (tkey, key) if k in bugs), None)  # a component is not built again
        if bug is not None and broken is not None:
            broken[cell] = bugs[bug]
            continue
        try:
            for known in (tkey, key):
                if known in failed:
                    raise UserError(failed[known])
            _preflight_cell(registry, cell, spec, tkey, key, infos, cached, sized, use)
        except UserError as exc:
            if incompatible is None:
                raise
            failed.setdefault(tkey if tkey not in infos else key, str(exc))
            incompatible[cell] = f"skipped: cannot run on {cell.dataset}: {exc}"
            continue
        except Exception as exc:
            if broken is None:
                raise
            why = (f"building its components on {cell.dataset} failed (a bug in a plugin, not in the data): "
                   f"{one_line(exc)}", traceback.format_exc(limit=8))
            bugs.setdefault(tkey if tkey not in infos else key, why)
            broken[cell] = why
            continue
        out[cell] = cached[key]
        if reads is not None:
            reads[cell] = sized[key]
    return out


def _preflight_cell(registry: Registry, cell: CellSpec, spec: Any, tkey: tuple[Any, ...], key: tuple[Any, ...],
                    infos: dict[tuple[Any, ...], TeacherInfo], cached: dict[tuple[Any, ...], frozenset[str]],
                    sized: dict[tuple[Any, ...], CellReads], use: bool) -> None:
    """Build the cell's teacher (once per ``tkey``) and student + distiller (once per ``key``) and size its reads."""
    if tkey not in infos:
        infos[tkey] = teacher_info(cell.teacher, build_teacher(registry, cell, spec), spec)
    if key in cached:
        return
    distiller = build_distiller(registry, cell, spec, infos[tkey], total_epochs=cell.student_cfg.epochs)
    cached[key] = frozenset(cached_output_names(cell, distiller, infos[tkey], use))
    sized[key] = size_reads(distiller, infos[tkey], cached[key])


def preflight_plan(registry: Registry, plan: GridPlan, ctx: RunContext | None = None, *,
                   teacher_cache: bool | str = True,
                   jobs: int = 1, threads: int | None = None) -> None:
    """Preflight the plan's cells, decide the teacher cache, check the disk space; fills ``plan.groups``.

    With ``ctx.teacher_cache == "auto"`` each (teacher, input shape, device) is measured once
    (:func:`~eegkd_bench.teacher_cache.measure_teacher_cache`, with the ``threads`` a worker gets) and
    the decision is kept in ``ctx.cache_choices``; a cache that would not fit on the disk is then
    not used. With ``"on"``, a cache that would not fit stops the grid (:class:`DiskSpaceError`).
    """
    if ctx is not None:
        mode = ctx.cache_mode
    else:  # no context (a dry run): nothing is measured or written, "auto" plans as "on"
        mode = "off" if teacher_cache in (False, "off") else "on"
    bad: dict[CellSpec, str] = {}
    broken: dict[CellSpec, tuple[str, str]] = {}
    if mode == "off":
        wanted = preflight(registry, plan.cells, plan.windows, teacher_cache=False, incompatible=bad, broken=broken)
        _leave_out(plan, bad, broken)
        plan.groups = teacher_groups(plan.cells, wanted)
        return
    reads: dict[CellSpec, CellReads] = {}
    wanted = preflight(registry, plan.cells, plan.windows, teacher_cache=True, reads=reads, incompatible=bad,
                       broken=broken)
    _leave_out(plan, bad, broken)
    if ctx is None:
        plan.groups = teacher_groups(plan.cells, wanted)
        return
    if mode == "auto":
        decide_cache(plan.cells, plan.windows, ctx, reads, lambda cell, spec: build_teacher(registry, cell, spec),
                     threads)

    def regroup() -> None:
        plan.groups = teacher_groups(plan.cells, {c: wanted[c] if cache_choice(ctx, c, plan.windows[c.dataset]
                                                                               .input_spec())["use"] else frozenset()
                                                  for c in plan.cells})

    regroup()
    if not fit_to_disk(cache_bytes_needed(plan.groups, plan.windows, ctx, reads, jobs), ctx):
        regroup()


def _leave_out(plan: GridPlan, bad: dict[CellSpec, str], broken: dict[CellSpec, tuple[str, str]]) -> None:
    """Move the cells whose components cannot be built for their dataset to ``plan.skipped``, and those
    whose components failed with a bug to ``plan.failed``, with the reason."""
    if bad or broken:
        plan.cells = [c for c in plan.cells if c not in bad and c not in broken]
        plan.skipped.extend(bad.items())
        plan.failed.extend((c, why, tb) for c, (why, tb) in broken.items())


__all__ = ["GridPlan", "TeacherGroup", "grid_cells", "make_plan", "preflight", "preflight_plan", "teacher_groups"]
