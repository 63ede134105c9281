"""The benchmark grid: plan the cells, execute them, report as they end.

A finished cell is never recomputed and a killed run resumes where it stopped (see
:mod:`eegkd_bench.cell` for keys and records, :mod:`eegkd_bench.plan` for planning and
:mod:`eegkd_bench.executors` for where cells run).
"""
from __future__ import annotations

from typing import Any

from eegkd_bench.cell import failed_record, skipped_record
from eegkd_bench.context import RunContext
from eegkd_bench.executors import Executor, make_executor
from eegkd_bench.executors.pool import worker_threads
from eegkd_bench.plan import GridPlan, make_plan, preflight_plan
from eegkd_bench.presets import Preset
from eegkd_bench.registry import Registry
from eegkd_bench.teacher_cache import clean_scratch


class Grid:
    """Plans and runs a grid of cells into a result store."""

    def __init__(self, registry: Registry, ctx: RunContext, reporter: Any) -> None:
        self.registry = registry
        self.ctx = ctx
        self.reporter = reporter

    def plan(self, datasets: list[str], teacher: str, students: list[str], methods: list[str], seeds: tuple[int, ...],
             preset: Preset, *, teacher_checkpoint: str | None = None, retry_failed: bool = False,
             teacher_options: dict[str, Any] | None = None,
             options: dict[str, dict[str, Any]] | None = None) -> GridPlan:
        """The cells still to run (finished ones are reported as already done) and the ones to skip.

        ``options`` sets component options by name, e.g. ``{"kd": {"temperature": 2.0}}``.
        """
        return make_plan(self.registry, self.ctx, self.reporter, datasets, teacher, students, methods, seeds, preset,
                         teacher_checkpoint=teacher_checkpoint, retry_failed=retry_failed,
                         teacher_options=teacher_options, options=options)

    def run(self, plan: GridPlan, *, jobs: int = 1, executor: str | Executor = "local",
            slurm: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Preflight the cells, record the skipped ones, run the rest on ``executor``; returns the new records."""
        if plan.cells:  # a component that cannot be built, or a cache that cannot fit, stops the grid first
            clean_scratch(self.ctx.cache_dir)  # scratch files of killed runs
            local = executor == "local" or not isinstance(executor, str)
            threads = worker_threads(jobs) if local and jobs > 1 else None
            preflight_plan(self.registry, plan, self.ctx, jobs=jobs if local else len(plan.cells), threads=threads)
        for cell, reason in plan.skipped:
            self.ctx.results.put(skipped_record(cell, reason, plan.windows.get(cell.dataset)))
            self.reporter.cell_done(cell, {"status": "skipped", "error": reason})
        for cell, reason, trace in plan.failed:  # a plugin's bug stops its cells, not the grid
            record = failed_record(cell, plan.windows[cell.dataset], reason, trace)
            self.ctx.results.put(record)
            self.reporter.cell_done(cell, record.to_dict())
        if not plan.cells:
            return []
        if isinstance(executor, str):
            executor = make_executor(executor, registry=self.registry, jobs=jobs, options=slurm)
        return executor.run(plan, self.ctx, self.reporter)


__all__ = ["Grid"]
