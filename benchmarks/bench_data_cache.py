"""Time uncached vs cached loads of datasets through the window cache.

For each dataset: a load into a fresh temporary cache folder (build + write), then a second load in
the same process (read + full sha256 verification). Simulated datasets always run; real ones only
when their files are on disk.

    python benchmarks/bench_data_cache.py [--datasets sim-mi,sim-events] [--data-dir DIR] [--repeat 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def _time_load(ds, data_dir: str | None, cache_dir: str) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    w = ds.load(data_dir=data_dir, cache_dir=cache_dir)
    np.asarray(w.X).sum()  # touch every page so a memory-mapped load is not flattered
    return time.perf_counter() - t0, w


def main(argv: list[str] | None = None) -> int:
    from eegkd_bench.plugins import get_registry

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="", help="comma-separated names (default: simulated + available real)")
    p.add_argument("--data-dir", default=None, help="root of the real datasets (default: $EEGKD_DATA)")
    p.add_argument("--repeat", type=int, default=3, help="cached loads to time (the median is shown)")
    args = p.parse_args(argv)
    reg = get_registry(check=False)
    if args.datasets:
        names = reg.select("datasets", args.datasets)
    else:
        names = []
        for e in reg.entries("datasets"):
            ds = e.factory()
            if ds.kind == "simulated" or ds.availability(args.data_dir).available:
                names.append(e.name)
    print(f"{'dataset':<16} {'kind':<9} {'windows':>7} {'MB':>7} {'uncached_s':>10} {'cached_s':>9} {'speedup':>8}")
    for name in names:
        ds = reg.get("datasets", name).factory()
        if not ds.availability(args.data_dir).available:
            print(f"{name:<16} skipped: not on disk")
            continue
        with tempfile.TemporaryDirectory(prefix="eegkd-bench-cache-") as tmp:
            t_build, w = _time_load(ds, args.data_dir, tmp)
            t_hits = sorted(_time_load(ds, args.data_dir, tmp)[0] for _ in range(max(1, args.repeat)))
            t_hit = t_hits[len(t_hits) // 2]
        mb = np.asarray(w.X).nbytes / 1e6
        print(f"{name:<16} {ds.kind:<9} {len(w.X):>7} {mb:>7.1f} {t_build:>10.2f} {t_hit:>9.3f} "
              f"{t_build / t_hit:>7.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
