"""Peak RSS of one DLink cell on the BCIC-IV-2a shape (22 ch x 4 s at 200 Hz) with the full CBraMod teacher.

The cell runs in a child process so its peak resident set size is measured alone
(baseline: the same child that only imports the suite and loads the data).
Target: under 4 GiB.

    python benchmarks/bench_memory.py [--teacher cbramod] [--method dlink] [--epochs 1]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource

from _common import cell, fresh_context, registry


def _child(mode: str, teacher: str, method: str, epochs: int, q) -> None:
    import torch

    from eegkd_bench.cell import execute_cell
    from eegkd_bench.data.catalog import load_dataset

    torch.set_num_threads(2)
    ctx = fresh_context(latency=False)
    windows = load_dataset(registry(), "sim-mi", None, ctx.cache_dir)
    status = "baseline"
    if mode == "cell":
        rec = execute_cell(cell("sim-mi", method, teacher=teacher, epochs=epochs, teacher_epochs=1), ctx, registry(), windows)
        status = f"{rec['status']} {rec.get('error', '')}"
    q.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024, status))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default="cbramod")
    ap.add_argument("--method", default="dlink")
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    out = {}
    for mode in ("baseline", "cell"):
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(mode, args.teacher, args.method, args.epochs, q))
        p.start()
        out[mode] = q.get()
        p.join()
    base, (peak, status) = out["baseline"][0], out["cell"]
    print(f"baseline (imports + sim-mi windows): peak RSS {base:.2f} GiB")
    print(f"{args.method} cell with {args.teacher} teacher ({status.strip()}): peak RSS {peak:.2f} GiB "
          f"= {peak / base:.1f}x baseline  (target < 4 GiB)")


if __name__ == "__main__":
    main()
