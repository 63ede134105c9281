"""Teacher-output cache: K distillers on one dataset with the cache vs running the teacher on every batch.

Both sides start from the same fine-tuned teacher (prepared beforehand, not
timed). With the cache, the teacher's outputs on the training split are
computed once and shared by all K distillers; without it each distiller runs
the frozen teacher on every batch of every epoch. Target: >= 3x for K = 4 with
the CBraMod teacher.

    python benchmarks/bench_teacher_cache.py [--teacher cbramod] [--methods kd,fitnets,rkd,dlink] [--epochs 3]
"""
from __future__ import annotations

import argparse

import torch

from _common import cell, fresh_context, registry, timer
from eegkd_bench.runner import execute_cell, load_dataset
from eegkd_bench.teachers import prepare_teacher


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sim-mi")
    ap.add_argument("--teacher", default="cbramod")
    ap.add_argument("--methods", default="kd,fitnets,rkd,dlink")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--teacher-epochs", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(2)
    methods = args.methods.split(",")
    base = fresh_context(latency=False)
    windows = load_dataset(registry(), args.dataset, None, base.cache_dir)
    cells = [cell(args.dataset, m, teacher=args.teacher, epochs=args.epochs, teacher_epochs=args.teacher_epochs)
             for m in methods]
    with timer() as t_teacher:
        prepare_teacher(registry().get("teachers", args.teacher).factory, args.teacher, windows, seed=0,
                        cfg=cells[0].teacher_cfg, cache_dir=base.cache_dir)
    times = {}
    for label, use_cache in (("without cache (teacher on every batch)", False), ("with teacher-output cache", True)):
        ctx = fresh_context(base.cache_dir, latency=False, teacher_cache=use_cache)
        with timer() as t:
            for c in cells:
                rec = execute_cell(c, ctx, registry(), windows)
                assert rec["status"] == "ok", (c.distiller, rec.get("error"))
        times[use_cache] = t[0]
        print(f"{label:40s} {t[0]:8.1f}s for K={len(cells)} distillers")
    print(f"(teacher fine-tuning beforehand, untimed above: {t_teacher[0]:.1f}s; "
          f"{len(windows.indices('train'))} train windows, {args.epochs} epochs, teacher {args.teacher})")
    print(f"speed-up with cache = {times[False] / times[True]:.2f}x  (target >= 3x for K=4 with cbramod)")


if __name__ == "__main__":
    main()
