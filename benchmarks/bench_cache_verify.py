"""Reading a cached teacher output: verified once per process vs re-hashed by every cell that reads it.

A grid's cells share their teacher's cached outputs (one ``.npy`` per output, with its sha256 in
``index.json``). A cell opens them through :func:`eegkd_bench.teacher_cache.teacher_outputs`,
which checks each file before memory-mapping it. The baseline hashes the whole file on every
open, as every cell did before; the measured path hashes it the first time a process opens it
and again only when its size or modification time changes. The file here stands for one
teacher layer of a TUAB-size training split (float16).

    python benchmarks/bench_cache_verify.py [--mb 512] [--cells 6]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import eegkd_bench.teacher_cache.outputs as outputs
from _common import timer
from eegkd_bench.storage import file_sha256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=512, help="size of the cached output in MB")
    ap.add_argument("--cells", type=int, default=6, help="cells that read it, one after another")
    args = ap.parse_args()

    cache = Path(tempfile.mkdtemp(prefix="eegkd-verify-"))
    per_window = (19, 10, 200)  # channels, patches, width of one teacher layer
    n = max(1, args.mb * 2**20 // (2 * int(np.prod(per_window))))
    X = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (n, 19, 2000), (0, 0, 0))  # shape only
    teacher = SimpleNamespace(key="bench-teacher", model=None)  # every output is cached: the model never runs
    folder = cache / "teacher_outputs" / outputs.outputs_key(teacher.key, X.shape, "train", "bench")
    folder.mkdir(parents=True)
    layer = np.lib.format.open_memmap(folder / "layer_6.npy", mode="w+", dtype=np.float16, shape=(n, *per_window))
    layer[:] = 1.0
    layer.flush()
    del layer
    path = folder / "layer_6.npy"
    written = path.stat().st_mtime_ns - 60 * 10**9  # a cache written earlier, as a grid's teacher pass leaves it
    os.utime(path, ns=(written, written))
    (folder / "index.json").write_text(json.dumps({"layer_6": {"size": path.stat().st_size,
                                                               "sha256": file_sha256(path), "dtype": "float16"}}))

    def read_all(forget: bool) -> float:
        outputs._VERIFIED.clear()
        times = []
        for _ in range(args.cells):
            if forget:  # the baseline: nothing remembered between cells
                outputs._VERIFIED.clear()
            with timer() as t:
                out = outputs.teacher_outputs(teacher, X, {"layer_6"}, cache, data_checksum="bench")
                assert len(out) == n
            times.append(t[0])
        return sum(times)

    read_all(False)  # page cache warm for both sides
    base = statistics.median(read_all(True) for _ in range(3))
    once = statistics.median(read_all(False) for _ in range(3))
    mb = path.stat().st_size / 2**20
    print(f"{args.cells} cells opening one cached output of {mb:.0f} MB ({n} windows)")
    print(f"  re-hashed by every cell : {base:.3f} s")
    print(f"  verified once per process: {once:.3f} s")
    print(f"  ratio (once / every)     : {once / base:.3f}")


if __name__ == "__main__":
    main()
