"""Cluster execution through submitit: one job per chunk of cells, results on a shared filesystem.

Every job runs :func:`eegkd_bench.runner.execute_cell` for its cells, which writes
each record atomically into the results directory; teachers and teacher outputs
are shared through the cache directory under inter-process file locks, so the
first job that needs a teacher fine-tunes it and the others wait and reuse it.
A job that dies leaves its unfinished cells without records: running the same
command again resumes them. A job that fails is recorded as failed per cell.
"""
from __future__ import annotations

from typing import Any

from eegkd_bench.api import UserError


def run_chunk(cells: list[Any], ctx: Any, threads: int, outputs: dict[Any, frozenset[str]] | None = None,
              ) -> list[dict[str, Any]]:
    """Body of one submitit job. ``outputs``: per cell, the teacher outputs that all cells sharing its
    teacher read from the cache; the first job to reach a teacher computes them in one pass."""
    import dataclasses

    import torch

    from eegkd_bench.device import resolve_device
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.runner import _prepare_for, _teacher_cells, execute_cell, load_dataset

    torch.set_num_threads(max(1, threads))
    ctx = dataclasses.replace(ctx, device=resolve_device(ctx.device_request))  # this node's GPU, if asked for
    registry = get_registry()
    windows: dict[str, Any] = {}
    for rep, names in _teacher_cells(cells, outputs):
        try:
            if rep.dataset not in windows:
                windows[rep.dataset] = load_dataset(registry, rep.dataset, ctx.data_dir, ctx.cache_dir)
            _prepare_for(rep, ctx, registry, windows[rep.dataset], None, names)
        except Exception:
            pass  # each of its cells fails on its own and records why
    out = []
    for cell in cells:
        rec = execute_cell(cell, ctx, registry, windows.get(cell.dataset))
        out.append({k: rec.get(k) for k in ("key", "status", "error")})
    return out


def run_submitit(cells: list[Any], ctx: Any, *, executor: str, options: dict[str, Any], reporter: Any,
                 outputs: dict[Any, frozenset[str]] | None = None) -> list[dict[str, Any]]:
    """Submit the cells as submitit jobs (SLURM or local) and wait for them."""
    try:
        import submitit
    except ImportError:
        raise UserError("--executor needs submitit; install it with: pip install 'eegkd-bench[slurm]'") from None
    folder = ctx.results.root / "submitit" / "%j"
    cpus = int(options.get("cpus") or 2)
    if executor == "slurm":
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
    chunks = [cells[i:i + size] for i in range(0, len(cells), size)]
    with ex.batch():
        jobs = [ex.submit(run_chunk, chunk, ctx, cpus, {c: (outputs or {}).get(c, frozenset()) for c in chunk})
                for chunk in chunks]
    reporter.message(f"submitted {len(jobs)} {executor} job(s) for {len(cells)} cells; logs in {folder.parent}")
    records: list[dict[str, Any]] = []
    for job, chunk in zip(jobs, chunks):
        try:
            results = job.result()
        except Exception as exc:  # the job failed or was killed: record each unfinished cell as failed
            results = []
            for cell in chunk:
                results.append(_record_job_failure(cell, ctx, exc, getattr(job, "job_id", "?")))
        for cell, rec in zip(chunk, results):
            reporter.cell_done(cell, rec)
            records.append(rec)
    return records


def _record_job_failure(cell: Any, ctx: Any, exc: BaseException, job_id: str) -> dict[str, Any]:
    from eegkd_bench.runner import _one_line, cell_key, load_dataset, teacher_init_of

    try:
        from eegkd_bench.plugins import get_registry

        windows = load_dataset(get_registry(), cell.dataset, ctx.data_dir, ctx.cache_dir)
        key = cell_key(cell, windows, teacher_init_of(cell.teacher_checkpoint))
    except Exception:
        return {"key": None, "status": "failed", "error": f"job {job_id} failed: {_one_line(exc)}"}
    existing = ctx.results.get(key)
    if existing is not None and existing.get("status") == "ok":
        return existing  # the cell finished before the job died: keep it, never duplicate
    from eegkd_bench.runner import _base_record

    record = {**_base_record(cell), "key": key, "status": "failed",
              "error": f"job {job_id} failed: {_one_line(exc)}", "data_kind": windows.kind,
              "data_checksum": windows.checksum, "task": windows.task, "n_classes": windows.n_classes}
    ctx.results.put(record)
    return record


__all__ = ["run_chunk", "run_submitit"]
