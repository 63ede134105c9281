"""Planning a grid: which cells run, which are done or skipped, and the teachers they share.

Planning loads each dataset once, drops the cells whose record already exists (resume),
builds every (teacher, student, distiller) once per input shape so incompatibilities fail
before any training (preflight), and groups the cells by the fine-tuned teacher they share.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from eegkd_bench.api import EEGWindows, TeacherInfo
from eegkd_bench.cell import RunContext, cached_output_names, distillation_rows, prepare_cell_teacher
from eegkd_bench.config import Component, resolve, student_recipe
from eegkd_bench.data.catalog import load_dataset
from eegkd_bench.identity import CellSpec, cell_key, cell_teacher_key, checkpoint_init
from eegkd_bench.errors import DataUnavailable, DiskSpaceError, UserError
from eegkd_bench.plugins import core_distribution
from eegkd_bench.presets import Preset
from eegkd_bench.registry import Registry
from eegkd_bench.teacher_outputs import measure_teacher_cache, outputs_key
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
        try:
            reporter.message(f"loading dataset {ds} …")
            windows = load_dataset(registry, ds, ctx.data_dir, ctx.cache_dir,
                                   dict(resolve(registry, "datasets", ds, options).options))
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


@dataclass(frozen=True)
class CellReads:
    """What a cell reads from the teacher-output cache, in bytes per training window."""

    per_batch: int  # read at every training step (cached outputs, or its derived target)
    target: int  # its derived target (a scratch file while the cell runs), 0 without one
    outputs: tuple[tuple[str, int], ...] = ()  # each output it reads from the cache, with its bytes


def preflight(registry: Registry, cells: Iterable[CellSpec], windows: dict[str, EEGWindows],
              *, teacher_cache: bool | Callable[[CellSpec], bool] = True,
              reads: dict[CellSpec, CellReads] | None = None,
              incompatible: dict[CellSpec, str] | None = None) -> dict[CellSpec, frozenset[str]]:
    """Build every (teacher, student, distiller) once per input shape so incompatibilities fail before training.

    Returns, per cell, the teacher outputs it will read from the on-disk cache (``teacher_cache``:
    whether cells use the cache, or a function of the cell that says so); ``reads`` is filled
    with the bytes per window each cell reads. A component that cannot be built for a dataset's
    input raises its UserError, or, given ``incompatible``, leaves its cells out with the reason there.
    """
    uses = teacher_cache if callable(teacher_cache) else (lambda cell: bool(teacher_cache))
    sized: dict[tuple[Any, ...], CellReads] = {}
    cached: dict[tuple[Any, ...], frozenset[str]] = {}
    infos: dict[tuple[Any, ...], TeacherInfo] = {}
    out: dict[CellSpec, frozenset[str]] = {}
    failed: dict[tuple[Any, ...], str] = {}
    for cell in cells:
        spec = windows[cell.dataset].input_spec()
        tkey = (cell.factory_name("teacher"), cell.teacher_options, spec)
        use = uses(cell)
        key = (cell.factory_name("student"), cell.student_options, cell.factory_name("distiller"),
               cell.distiller_options, cell.student_cfg.augment, tkey, use)
        try:
            for known in (tkey, key):  # a teacher or student that failed for this input is not built again
                if known in failed:
                    raise UserError(failed[known])
            _preflight_cell(registry, cell, spec, tkey, key, infos, cached, sized, use)
        except UserError as exc:
            if incompatible is None:
                raise
            failed.setdefault(tkey if tkey not in infos else key, str(exc))
            incompatible[cell] = f"skipped: cannot run on {cell.dataset}: {exc}"
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
        teacher = registry.get("teachers", tkey[0]).factory(spec, **dict(cell.teacher_options))
        infos[tkey] = teacher_info(cell.teacher, teacher, spec)
    if key in cached:
        return
    student = registry.get("students", key[0]).factory(spec, **dict(cell.student_options))
    distiller_cls = registry.get("distillers", key[2]).factory
    distiller = distiller_cls(student=student, teacher=infos[tkey], spec=spec, **dict(cell.distiller_options))
    cached[key] = frozenset(cached_output_names(cell, distiller, infos[tkey], use))
    needs = distiller.teacher_needs()
    target = output_bytes(needs.resolve(infos[tkey])[-1], infos[tkey]) if needs.target else 0
    per_batch = sum(output_bytes(n, infos[tkey]) for n in cached[key] if "." not in n)
    sized[key] = CellReads(per_batch + target, target,
                           tuple((n, output_bytes(n, infos[tkey])) for n in sorted(cached[key])))


def output_bytes(name: str, info: TeacherInfo) -> int:
    """Bytes per window of one cached teacher output: layers and targets in float16, the rest float32."""
    if name == "logits":
        return 4 * info.n_classes
    layer = name.split(".", 1)[0]
    shape = info.feature_shapes.get(layer) or info.feature_shapes[info.layer_names[-1]]
    if "." in name or name == "embedding":  # a (D,) summary; the embedding's width is taken as D
        return 4 * int(shape[-1])
    return 2 * int(np.prod(shape))


def preflight_plan(registry: Registry, plan: GridPlan, ctx: RunContext | None = None, *,
                   teacher_cache: bool | str = True,
                   jobs: int = 1, threads: int | None = None) -> None:
    """Preflight the plan's cells, decide the teacher cache, check the disk space; fills ``plan.groups``.

    With ``ctx.teacher_cache == "auto"`` each (teacher, input shape, device) is measured once
    (:func:`~eegkd_bench.teacher_outputs.measure_teacher_cache`, with the ``threads`` a worker gets) and
    the decision is kept in ``ctx.cache_choices``; a cache that would not fit on the disk is then
    not used. With ``"on"``, a cache that would not fit stops the grid (:class:`DiskSpaceError`).
    """
    if ctx is not None:
        mode = ctx.cache_mode
    else:  # no context (a dry run): nothing is measured or written, "auto" plans as "on"
        mode = "off" if teacher_cache in (False, "off") else "on"
    bad: dict[CellSpec, str] = {}
    if mode == "off":
        wanted = preflight(registry, plan.cells, plan.windows, teacher_cache=False, incompatible=bad)
        _leave_out(plan, bad)
        plan.groups = teacher_groups(plan.cells, wanted)
        return
    reads: dict[CellSpec, CellReads] = {}
    wanted = preflight(registry, plan.cells, plan.windows, teacher_cache=True, reads=reads, incompatible=bad)
    _leave_out(plan, bad)
    if ctx is None:
        plan.groups = teacher_groups(plan.cells, wanted)
        return
    if mode == "auto":
        _decide_cache(registry, plan, ctx, reads, threads)

    def regroup() -> None:
        plan.groups = teacher_groups(plan.cells, {c: wanted[c] if ctx.cache_choice(c, plan.windows[c.dataset]
                                                                                   .input_spec())["use"] else frozenset()
                                                  for c in plan.cells})

    regroup()
    need = cache_bytes_needed(plan, ctx, reads, jobs)
    free = shutil.disk_usage(ctx.cache_dir).free
    if need <= free:
        return
    where = ctx.cache_dir / "teacher_outputs"
    if mode == "auto":
        for key, choice in ctx.cache_choices.items():
            if choice.get("use"):
                ctx.cache_choices[key] = {**choice, "use": False, "reason": f"the teacher-output cache needs "
                                          f"{_gb(need)} in {where} but {_gb(free)} are free"}
        regroup()
        return
    raise DiskSpaceError(f"the teacher-output cache needs {_gb(need)} in {where} but only {_gb(free)} are free; "
                         f"pass --cache-dir on a larger disk or --teacher-cache off")


def _leave_out(plan: GridPlan, bad: dict[CellSpec, str]) -> None:
    """Move the cells whose components cannot be built for their dataset to ``plan.skipped``, with the reason."""
    if bad:
        plan.cells = [c for c in plan.cells if c not in bad]
        plan.skipped.extend(bad.items())


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def _decide_cache(registry: Registry, plan: GridPlan, ctx: RunContext, reads: dict[CellSpec, CellReads],
                  threads: int | None) -> None:
    """Measure, once per (teacher, input shape, device), whether the cache beats running the teacher."""
    import torch

    from eegkd_bench.cell import cache_choice_key

    todo: dict[str, tuple[CellSpec, int]] = {}
    for cell in plan.cells:
        key = cache_choice_key(cell, plan.windows[cell.dataset].input_spec(), ctx.device)
        rep, size = todo.get(key, (cell, 0))
        todo[key] = (rep, max(size, reads[cell].per_batch))
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        for key, (cell, size) in todo.items():
            if key in ctx.cache_choices:
                continue
            if not size:
                ctx.cache_choices[key] = {"mode": "auto", "use": True, "reason": "nothing to read per batch"}
                continue
            spec = plan.windows[cell.dataset].input_spec()
            with torch.random.fork_rng(devices=[]):  # a random init is as fast as the fine-tuned one
                model = registry.get("teachers", cell.teacher).factory(spec, **dict(cell.teacher_options))
            ctx.cache_choices[key] = measure_teacher_cache(
                model.to(ctx.device), spec, size, batch_size=cell.student_cfg.batch_size,
                epochs=cell.student_cfg.epochs, scratch=ctx.cache_dir / "scratch")
            del model
    finally:
        torch.set_num_threads(before)


def cache_bytes_needed(plan: GridPlan, ctx: RunContext, reads: dict[CellSpec, CellReads], jobs: int = 1) -> int:
    """Disk the grid's teacher-output caches will still take: missing outputs per teacher, plus scratch targets.

    Outputs already in the cache count nothing; each cell with a derived target holds one
    scratch file while it runs, and at most ``jobs`` cells run at once.
    """
    total, scratch = 0, []
    for group in plan.groups:
        cell = group.cell
        windows = plan.windows[cell.dataset]
        X_fit, subset = distillation_rows(windows)  # what the teacher pass caches: train (+ transfer)
        n_train = len(X_fit)
        if group.outputs:
            folder = ctx.cache_dir / "teacher_outputs" / outputs_key(
                cell_teacher_key(cell, windows),
                (n_train, *windows.X.shape[1:]), subset=subset, data_checksum=windows.checksum)
            sizes = {n: b for c in group.cells if c in reads for n, b in reads[c].outputs}
            total += sum(sizes.get(n, 0) * n_train for n in group.outputs if not (folder / f"{n}.npy").exists())
        for c in group.cells:
            if reads.get(c) and reads[c].target and ctx.cache_choice(c, windows.input_spec())["use"] \
                    and c.student_cfg.augment == "none":
                scratch.append(reads[c].target * n_train)
    return total + sum(sorted(scratch, reverse=True)[:max(1, jobs)])


__all__ = ["CellReads", "GridPlan", "TeacherGroup", "cache_bytes_needed", "grid_cells", "make_plan", "output_bytes",
           "preflight", "preflight_plan", "teacher_groups"]
