"""Parallel execution: --jobs 2 vs --jobs 1 on the same 4 cells (teacher cached beforehand).

    python benchmarks/bench_parallel.py [--dataset sim-mi] [--epochs 8]

Target: >= 1.7x on 2 cores. Three runs of the same grid, in this order:

* ``--jobs 1``: in process, PyTorch using every core (what a user gets without ``--jobs``);
* ``--jobs 2``: two worker processes sharing the cores;
* ``--jobs 1`` on one thread: the work of one core, which says how much of the second core
  ``--jobs 1`` already uses. From it follow the pool's parallel efficiency
  (one-thread time / (cores x jobs-2 time); 100% means the pool loses nothing) and the best
  speed-up any split of these cells over processes could reach on this machine
  (jobs-1 time / (one-thread time / cores)).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil

import torch

from _common import cell, fresh_context, registry, timer
from eegkd_bench.progress import PlainReporter
from eegkd_bench.cell import execute_cell
from eegkd_bench.data.catalog import load_dataset
from eegkd_bench.executors.pool import usable_cores
from eegkd_bench.presets import PRESETS
from eegkd_bench.runner import Grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sim-mi")
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    cores = usable_cores()
    torch.set_num_threads(cores)
    warm = fresh_context(latency=False)
    windows = load_dataset(registry(), args.dataset, None, warm.cache_dir)
    methods = ["none", "kd", "rkd", "fitnets"]
    # fine-tune the teacher and fill the teacher-output cache once, outside the timing
    for m in methods:
        execute_cell(cell(args.dataset, m, epochs=1), warm, registry(), windows)
    cells = [cell(args.dataset, m, epochs=args.epochs) for m in methods]
    preset = dataclasses.replace(PRESETS["quick"], student_cfg=cells[0].student_cfg, teacher_cfg=cells[0].teacher_cfg,
                                 name="bench")
    times = {}
    for label, jobs, threads in (("--jobs 1", 1, cores), ("--jobs 2", 2, cores), ("--jobs 1, one thread", 1, 1)):
        torch.set_num_threads(threads)
        ctx = fresh_context(warm.cache_dir, latency=False)
        grid = Grid(registry(), ctx, PlainReporter(total=len(cells), stream=open(os.devnull, "w")))
        plan = grid.plan([args.dataset], cells[0].teacher, ["eegnet"], methods, (0,), preset)
        assert len(plan.cells) == len(cells)
        with timer() as t:
            records = grid.run(plan, jobs=jobs)
        assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
        times[label] = t[0]
        print(f"{label:22s} {t[0]:6.1f}s for {len(cells)} cells")
        shutil.rmtree(ctx.results.root, ignore_errors=True)
    one, two, single = times["--jobs 1"], times["--jobs 2"], times["--jobs 1, one thread"]
    print(f"speed-up jobs 2 / jobs 1 = {one / two:.2f}x  (target >= 1.7x on 2 cores)")
    print(f"--jobs 1 already runs {single / one:.2f}x faster than one core, so no split over processes can beat "
          f"{one / (single / cores):.2f}x here; the pool's parallel efficiency is {single / (cores * two):.0%} "
          f"({cores} cores)")


if __name__ == "__main__":
    main()
