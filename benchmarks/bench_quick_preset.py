"""End-to-end time of `eegkd-bench run --preset quick` from empty caches (target: at most 5 minutes on 2 cores).

The ratio printed is against that 300-s budget, measured with fresh results and
cache directories so teacher fine-tuning is included.

    python benchmarks/bench_quick_preset.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 300.0


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="eegkd-quick-"))
    env = {**os.environ, "EEGKD_CACHE": str(root / "cache")}
    cmd = [sys.executable, "-m", "eegkd_bench.cli", "run", "--preset", "quick", "--quiet", "--results", str(root / "results")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    tail = proc.stderr.strip().splitlines()[-3:]
    print("\n".join(tail))
    print(f"quick preset: {wall:.0f}s wall, exit {proc.returncode}; ratio to the 300-s budget = {wall / BUDGET_S:.2f}")
    shutil.rmtree(root, ignore_errors=True)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
