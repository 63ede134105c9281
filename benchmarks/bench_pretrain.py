"""Throughput of `eegkd-bench pretrain` on the CPU: windows per second, wall and CPU time.

For each teacher and torch thread count: a short masked-patch pretraining run on the streamed
simulated corpus (``sim-pretrain``: batches cycle through the four paradigms' montages, 4-10 s
windows), after a warm-up run that pays the one-off imports. Also times the corpus alone
(generation of the windows, which the pretraining loop overlaps with training in a thread).

    python benchmarks/bench_pretrain.py [--teachers cbramod-sim,cbramod-mini] [--threads 1,2] [--steps 12]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.pretrain import PretrainConfig, make_pool, pretrain

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teachers", default="cbramod-sim,cbramod-mini")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--steps", type=int, default=12, help="timed steps per run (a multiple of 4 covers each paradigm)")
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    reg = get_registry()
    pool = make_pool(reg, ["sim-pretrain"], None, None, 0)
    corpus = pool[0]
    t0, c0 = time.perf_counter(), time.process_time()
    n = sum(len(corpus.batch(i, args.batch_size)) for i in range(8))
    print(f"corpus sim-pretrain alone: {n / (time.perf_counter() - t0):.1f} windows/s wall, "
          f"{n / (time.process_time() - c0):.1f} windows per CPU-second")
    print(f"{'teacher':<14} {'threads':>7} {'windows/s':>10} {'CPU s/window':>12} {'wall s':>7}")
    for teacher in [t.strip() for t in args.teachers.split(",") if t.strip()]:
        entry = reg.get("teachers", teacher)
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            with tempfile.TemporaryDirectory() as tmp:
                warm = PretrainConfig(steps=2, batch_size=4, warmup_steps=1)
                pretrain(teacher, entry.factory, {}, pool, warm, Path(tmp) / "warm.pt")
                cfg = PretrainConfig(steps=args.steps, batch_size=args.batch_size, warmup_steps=1,
                                     checkpoint_every=args.steps, log_every=args.steps)
                t0, c0 = time.perf_counter(), time.process_time()
                meta = pretrain(teacher, entry.factory, {}, pool, cfg, Path(tmp) / "run.pt")
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            n = meta["windows_seen"]
            print(f"{teacher:<14} {threads:>7} {n / wall:>10.1f} {cpu / n:>12.3f} {wall:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
