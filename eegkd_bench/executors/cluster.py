"""Cluster execution through submitit: one job per chunk of cells, results on a shared filesystem.

Every job runs :func:`eegkd_bench.cell.execute_cell` for its cells, which writes each
record atomically into the results directory; teachers and teacher outputs are shared
through the cache directory under inter-process file locks, so the first job that needs
a teacher fine-tunes it and the others wait and reuse it. A job that dies leaves its
unfinished cells without records: running the same command again resumes them. A job
that fails is recorded as failed per cell.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch

from eegkd_bench.build import WindowsMemo
from eegkd_bench.cell import execute_cell, record_dead_cell, record_failure
from eegkd_bench.context import RunContext
from eegkd_bench.identity import CellSpec
from eegkd_bench.device import resolve_device
from eegkd_bench.errors import UserError, one_line
from eegkd_bench.plan import GridPlan, TeacherGroup
from eegkd_bench.plugins import get_registry


class SubmititExecutor:
    """Cells as submitit jobs: ``slurm`` (a SLURM cluster) or ``submitit-local`` (this machine)."""

    def __init__(self, kind: str, options: dict[str, Any]) -> None:
        self.kind = kind
        self.options = options

    def run(self, plan: GridPlan, ctx: RunContext, reporter: Any) -> list[dict[str, Any]]:
        """Submit the plan's cells in chunks and wait for the jobs; returns the records they left."""
        try:
            import submitit
        except ImportError:
            raise UserError("--executor needs submitit; install it with: pip install 'eegkd-bench[slurm]'") from None
        options = self.options
        folder = ctx.results.root / "submitit" / "%j"
        cpus = int(options.get("cpus") or 2)
        if self.kind == "slurm":
            ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
            ex.update_parameters(slurm_partition=options["partition"], timeout_min=int(options.get("time") or 60),
                                 mem_gb=int(options.get("mem_gb") or 8), cpus_per_task=cpus, nodes=1,
                                 tasks_per_node=1, name="eegkd-bench")
            if int(options.get("gpus") or 0) > 0:
                ex.update_parameters(gpus_per_node=int(options["gpus"]))
        else:
            ex = submitit.LocalExecutor(folder=str(folder))
            ex.update_parameters(timeout_min=int(options.get("time") or 60))
        size = max(1, int(options.get("cells_per_job") or 1))
        chunks = [plan.cells[i:i + size] for i in range(0, len(plan.cells), size)]
        with ex.batch():
            jobs = [ex.submit(run_chunk, chunk, ctx, cpus, plan.groups_of(chunk)) for chunk in chunks]
        reporter.message(f"submitted {len(jobs)} {self.kind} job(s) for {len(plan.cells)} cells; "
                         f"logs in {folder.parent}")
        records: list[dict[str, Any]] = []
        for job, chunk in zip(jobs, chunks):
            try:
                results = job.result()
            except Exception as exc:  # the job failed or was killed: record each unfinished cell as failed
                reason = f"job {getattr(job, 'job_id', '?')} failed: {one_line(exc)}"
                results = [record_dead_cell(cell, ctx, plan.windows[cell.dataset], reason) for cell in chunk]
            for cell, rec in zip(chunk, results):
                reporter.cell_done(cell, rec)
                records.append(rec)
        return records


def run_chunk(cells: Sequence[CellSpec], ctx: RunContext, threads: int,
              groups: Sequence[TeacherGroup] = ()) -> list[dict[str, Any]]:
    """Body of one job: prepare the teacher groups of its cells (outputs of the whole group), then run them."""
    torch.set_num_threads(max(1, threads))
    ctx = dataclasses.replace(ctx, device=resolve_device(ctx.device_request))  # this node's GPU, if asked for
    registry = get_registry()
    load = WindowsMemo(registry, ctx.data_dir, ctx.cache_dir, keep=1)
    for group in groups:
        try:
            windows = load(group.cell)
        except Exception:
            continue  # each of its cells fails on its own and records why
        group.prepare(ctx, registry, windows)
    out = []
    for cell in cells:
        try:
            windows = load(cell)
        except Exception as exc:
            rec = record_failure(cell, ctx, exc)
        else:
            rec = execute_cell(cell, ctx, registry, windows)
        out.append(rec)
    return out


__all__ = ["SubmititExecutor", "run_chunk"]
