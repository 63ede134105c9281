"""Teacher-output cache: K distillers on one dataset with the cache vs running the teacher on every batch.

Both sides run the same grid (K distillers x one student, ``--jobs 1``) through the runner, as a
user would, from the same fine-tuned teacher (prepared beforehand, not timed). With the cache,
the grid computes the union of the teacher outputs its distillers need in one pass over the
training split and every distiller reads them from disk; without it each distiller runs the
frozen teacher on every batch of every epoch. Target: >= 3x for K = 4 with the CBraMod teacher.

    python benchmarks/bench_teacher_cache.py [--teacher cbramod] [--methods kd,fitnets,rkd,dlink] [--epochs 5]
"""
from __future__ import annotations

import argparse
import dataclasses
import os

import torch

from _common import cell, fresh_context, registry, timer
from eegkd_bench.progress import PlainReporter
from eegkd_bench.data.catalog import load_dataset
from eegkd_bench.presets import PRESETS
from eegkd_bench.runner import Grid
from eegkd_bench.cell import prepare_cell_teacher


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sim-mi")
    ap.add_argument("--teacher", default="cbramod")
    ap.add_argument("--student", default="eegnet")
    ap.add_argument("--methods", default="kd,fitnets,rkd,dlink")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--teacher-epochs", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu (the figure in benchmarks/README.md), cuda, ...")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    methods = args.methods.split(",")
    base = fresh_context(latency=False, device=args.device)
    windows = load_dataset(registry(), args.dataset, None, base.cache_dir)
    proto = cell(args.dataset, methods[0], student=args.student, teacher=args.teacher, epochs=args.epochs,
                 teacher_epochs=args.teacher_epochs)
    preset = dataclasses.replace(PRESETS["quick"], name="bench", teacher_cfg=proto.teacher_cfg,
                                 student_cfg=proto.student_cfg)
    with timer() as t_teacher:
        prepare_cell_teacher(proto, base, registry(), windows)  # the teacher the grid's cells share
    times = {}
    for label, use_cache in (("without cache (teacher on every batch)", False), ("with teacher-output cache", True)):
        ctx = fresh_context(base.cache_dir, latency=False, teacher_cache=use_cache, device=base.device)
        grid = Grid(registry(), ctx, PlainReporter(total=len(methods), stream=open(os.devnull, "w")))
        with timer() as t:
            plan = grid.plan([args.dataset], args.teacher, [args.student], methods, (0,), preset)
            records = grid.run(plan, jobs=1)
        assert [r["status"] for r in records] == ["ok"] * len(methods), [r.get("error") for r in records]
        times[use_cache] = t[0]
        print(f"{label:40s} {t[0]:8.1f}s for K={len(methods)} distillers")
    print(f"(teacher fine-tuning beforehand, untimed above: {t_teacher[0]:.1f}s; "
          f"{len(windows.indices('train'))} train windows, {args.epochs} epochs, teacher {args.teacher}, "
          f"student {args.student}, device {base.device}, {torch.get_num_threads()} threads)")
    print(f"speed-up with cache = {times[False] / times[True]:.2f}x  (target >= 3x for K=4 with cbramod)")


if __name__ == "__main__":
    main()
