"""Parallel execution: --jobs 2 vs --jobs 1 on the same 4 cells (teacher cached beforehand).

    python benchmarks/bench_parallel.py [--dataset sim-mi] [--epochs 8]

Target: >= 1.7x on 2 cores.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil

from _common import cell, fresh_context, registry, timer
from eegkd_bench.progress import PlainReporter
from eegkd_bench.runner import PRESETS, Grid, execute_cell, load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sim-mi")
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    warm = fresh_context(latency=False)
    windows = load_dataset(registry(), args.dataset, None, warm.cache_dir)
    methods = ["none", "kd", "rkd", "fitnets"]
    # fine-tune the teacher and fill the teacher-output cache once, outside the timing
    for m in methods:
        execute_cell(cell(args.dataset, m, epochs=1), warm, registry(), windows)
    preset = PRESETS["quick"]
    cells = [cell(args.dataset, m, epochs=args.epochs) for m in methods]
    preset = dataclasses.replace(preset, student_cfg=cells[0].student_cfg, teacher_cfg=cells[0].teacher_cfg,
                                 name="bench")
    times = {}
    for jobs in (1, 2):
        ctx = fresh_context(warm.cache_dir, latency=False)
        grid = Grid(registry(), ctx, PlainReporter(total=len(cells), stream=open("/dev/null", "w")))
        plan = grid.plan([args.dataset], cells[0].teacher, ["eegnet"], methods, (0,), preset)
        assert len(plan.cells) == len(cells)
        with timer() as t:
            records = grid.run(plan, jobs=jobs)
        assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
        times[jobs] = t[0]
        print(f"--jobs {jobs}: {t[0]:6.1f}s for {len(cells)} cells")
        shutil.rmtree(ctx.results.root, ignore_errors=True)
    print(f"speed-up jobs 2 / jobs 1 = {times[1] / times[2]:.2f}x  (target >= 1.7x on 2 cores)")


if __name__ == "__main__":
    main()
