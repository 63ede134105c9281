"""Cells one after another in this process (``--jobs 1``)."""
from __future__ import annotations

from typing import Any

from eegkd_bench.cell import execute_cell
from eegkd_bench.context import RunContext
from eegkd_bench.plan import GridPlan
from eegkd_bench.registry import Registry


class SerialExecutor:
    """Every teacher group first, then every cell, in this process with the caller's registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def run(self, plan: GridPlan, ctx: RunContext, reporter: Any) -> list[dict[str, Any]]:
        """Run the plan's cells in order; returns their records."""
        for group in plan.groups:
            reporter.teacher_start(group.cell)
            group.prepare(ctx, self.registry, plan.windows[group.cell.dataset], reporter.progress)
            reporter.teacher_done(group.cell)
        records = []
        for cell in plan.cells:
            reporter.cell_start(cell)
            rec = execute_cell(cell, ctx, self.registry, plan.windows[cell.dataset], reporter.progress)
            reporter.cell_done(cell, rec)
            records.append(rec)
        return records
