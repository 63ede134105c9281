"""How a planned grid's cells run: in this process, on a local process pool, or as cluster jobs.

Every executor implements :class:`Executor`: it receives a preflighted :class:`~eegkd_bench.plan.GridPlan`,
prepares each teacher group before its cells, stores one record per cell (through
:func:`eegkd_bench.cell.execute_cell` or :func:`eegkd_bench.cell.record_dead_cell`), tells the
reporter as cells end, and returns their records: every executor the same, whole record of each cell
(a :class:`~eegkd_bench.results.Record` as stored, see ``docs/records.md``). Executors never import the grid.
"""
from __future__ import annotations

from typing import Any, Protocol

from eegkd_bench.context import RunContext
from eegkd_bench.errors import UserError
from eegkd_bench.executors.cluster import SubmititExecutor
from eegkd_bench.executors.pool import PoolExecutor
from eegkd_bench.executors.serial import SerialExecutor
from eegkd_bench.plan import GridPlan
from eegkd_bench.registry import Registry

EXECUTORS = ("local", "slurm", "submitit-local")


class Reporter(Protocol):
    """What executors tell the user (see :mod:`eegkd_bench.progress`)."""

    def message(self, text: str) -> None: ...
    def teacher_start(self, cell: Any) -> None: ...
    def teacher_done(self, cell: Any) -> None: ...
    def cell_start(self, cell: Any) -> None: ...
    def cell_done(self, cell: Any, rec: dict[str, Any]) -> None: ...
    def progress(self, event: dict[str, Any]) -> None: ...


class Executor(Protocol):
    """Runs the cells of a preflighted plan and returns their whole stored records (the grid calls only this)."""

    def run(self, plan: GridPlan, ctx: RunContext, reporter: Reporter) -> list[dict[str, Any]]: ...


def make_executor(name: str, *, registry: Registry, jobs: int = 1, options: dict[str, Any] | None = None) -> Executor:
    """The executor for ``--executor NAME`` (``local`` with ``--jobs N`` > 1 is a process pool)."""
    if name in ("slurm", "submitit-local"):
        return SubmititExecutor(name, options or {})
    if name != "local":
        raise UserError(f"unknown executor {name!r}; expected one of {', '.join(EXECUTORS)}")
    return SerialExecutor(registry) if jobs <= 1 else PoolExecutor(jobs)


__all__ = ["EXECUTORS", "Executor", "PoolExecutor", "Reporter", "SerialExecutor", "SubmititExecutor", "make_executor"]
