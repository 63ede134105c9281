"""Cells on ``--jobs N`` local worker processes.

Teachers first (one task per teacher group), then the cells. Workers fork from a server
that imported torch once (spawn where fork servers do not exist) and each uses
``cores // jobs`` threads, so a cell's numbers do not depend on what ran beside it.
A worker whose runner was killed stops instead of running on as an orphan.
"""
from __future__ import annotations

import os
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable

import torch

from eegkd_bench.build import WindowsMemo
from eegkd_bench.cell import execute_cell, record_dead_cell, record_failure
from eegkd_bench.context import RunContext
from eegkd_bench.identity import CellSpec
from eegkd_bench.errors import UserError, one_line
from eegkd_bench.plan import GridPlan, TeacherGroup
from eegkd_bench.plugins import get_registry
from eegkd_bench.registry import Registry


class PoolExecutor:
    """A process pool of ``jobs`` workers."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def run(self, plan: GridPlan, ctx: RunContext, reporter: Any) -> list[dict[str, Any]]:
        """Prepare every teacher group, then run the cells; returns their records in finishing order."""
        ctx_mp = _pool_context()
        queue = ctx_mp.Queue()  # not a Manager: no extra server process to orphan
        threads = worker_threads(self.jobs)
        records: list[dict[str, Any]] = []

        def drain(pending: dict[Future, CellSpec], on_done: Callable[[CellSpec, Future], None]) -> None:
            pending = dict(pending)
            while pending:
                done, _ = wait(list(pending), timeout=0.5, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    reporter.progress(queue.get_nowait())
                for fut in done:
                    on_done(pending.pop(fut), fut)

        def finished(cell: CellSpec, fut: Future) -> None:
            try:
                rec = fut.result()
            except UserError:
                raise  # e.g. the results disk is full: stop the grid with its one-line reason
            except Exception as exc:  # the worker died (killed, out of memory)
                rec = record_dead_cell(cell, ctx, plan.windows[cell.dataset], f"worker died: {one_line(exc)}")
            reporter.cell_done(cell, rec)
            records.append(rec)

        with ProcessPoolExecutor(self.jobs, mp_context=ctx_mp, initializer=_worker_init,
                                 initargs=(queue, threads, os.getpid())) as pool:
            teachers = {pool.submit(_worker_task, _worker_prepare, group, ctx): group.cell for group in plan.groups}
            for cell in teachers.values():
                reporter.teacher_start(cell)
            drain(teachers, lambda cell, fut: reporter.teacher_done(cell))
            drain({pool.submit(_worker_task, _worker_run, cell, ctx): cell for cell in plan.cells}, finished)
        return records


def worker_threads(jobs: int) -> int:
    """The torch threads each of ``jobs`` workers gets: an equal, fixed share of the usable cores."""
    return max(1, usable_cores() // jobs)


def usable_cores() -> int:
    """CPU cores this process may run on (respects affinity masks and cgroup-pinned sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _pool_context() -> Any:
    """A fork server that has imported torch and this module, so each worker starts in milliseconds."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])  # imports only: no torch thread pool exists to fork
    return ctx


def start_pool_server() -> None:
    """Start the workers' fork server now, so its imports overlap the runner's data loading and planning."""
    import multiprocessing.forkserver

    if _pool_context().get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()


# ---------------------------------------------------------------- worker side
@dataclass
class _WorkerState:
    """Per worker process: the progress queue, and how to tell that the runner is gone."""

    queue: Any = None
    parent: int = 0  # the runner, or the fork server the runner started
    runner_pid: int = 0

    def runner_gone(self) -> bool:
        if os.getppid() != self.parent:
            return True
        try:
            os.kill(self.runner_pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


_WORKER = _WorkerState()
_WORKER_WINDOWS: dict[tuple[Any, ...], WindowsMemo] = {}


def _worker_init(queue: Any, threads: int, runner_pid: int) -> None:
    # A fixed share, not one that grows into idle cores: the thread count changes the order of
    # floating-point sums, so a cell's numbers would depend on what ran beside it.
    torch.set_num_threads(threads)
    _WORKER.queue = queue
    _exit_with_parent(runner_pid)
    warnings.filterwarnings("ignore", category=UserWarning, module="eegkd_bench.plugins")


def _worker_task(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` in a worker, unless the runner that queued it is gone."""
    if _WORKER.runner_gone():
        os._exit(3)  # tasks queued before the runner died: nobody will read their results
    return fn(*args)


def _exit_with_parent(runner_pid: int) -> None:
    """A worker whose runner was killed (even with SIGKILL) stops instead of running on as an orphan."""
    _WORKER.parent, _WORKER.runner_pid = os.getppid(), runner_pid

    def watch() -> None:
        while True:
            time.sleep(0.25)
            if _WORKER.runner_gone():
                os._exit(3)

    threading.Thread(target=watch, name="eegkd-parent-watch", daemon=True).start()


def _worker_windows(ctx: RunContext, registry: Registry) -> WindowsMemo:
    """This worker's windows loader: a worker runs many cells of one dataset, and keeps one dataset in memory."""
    key = (ctx.data_dir, str(ctx.cache_dir))
    if key not in _WORKER_WINDOWS:
        _WORKER_WINDOWS.clear()
        _WORKER_WINDOWS[key] = WindowsMemo(registry, ctx.data_dir, ctx.cache_dir, keep=1)
    return _WORKER_WINDOWS[key]


def _worker_prepare(group: TeacherGroup, ctx: RunContext) -> None:
    registry = get_registry()
    group.prepare(ctx, registry, _worker_windows(ctx, registry)(group.cell), _queue_progress(group.cell))


def _worker_run(cell: CellSpec, ctx: RunContext) -> dict[str, Any]:
    registry = get_registry()
    try:
        windows = _worker_windows(ctx, registry)(cell)
    except Exception as exc:
        record = record_failure(cell, ctx, exc)
    else:
        record = execute_cell(cell, ctx, registry, windows, progress=_queue_progress(cell))
    return record


def _queue_progress(cell: CellSpec) -> Callable[[dict[str, Any]], None]:
    def progress(event: dict[str, Any]) -> None:
        if _WORKER.queue is not None:
            try:
                _WORKER.queue.put_nowait({**event, "cell": cell.label(), "pid": os.getpid()})
            except Exception:
                pass

    return progress


__all__ = ["PoolExecutor", "start_pool_server", "usable_cores", "worker_threads"]
