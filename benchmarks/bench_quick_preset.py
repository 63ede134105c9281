"""End-to-end time of `eegkd-bench run --preset quick` from empty caches (target: at most 5 minutes on 2 cores).

The ratio printed is against that 300-s budget, measured with fresh results and cache directories
so data generation and teacher fine-tuning are included. Also printed: the CPU time of the run
(user + system of the process tree; on a machine shared with other jobs the wall time is inflated,
and CPU time / 2 is what two idle cores would need at best), and per dataset the teacher's and
each method's test balanced accuracy against chance. Extra arguments go to `eegkd-bench run`, e.g.
``--teacher-checkpoint none`` for the random-init teacher.

    python benchmarks/bench_quick_preset.py [--keep DIR] [-- extra run arguments]
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BUDGET_S = 300.0


def summary(results: Path) -> list[str]:
    """Per dataset: teacher init and test balanced accuracy, chance, and each method's student."""
    rows: dict[str, dict[str, object]] = defaultdict(dict)
    for path in sorted((results / "cells").glob("*.json")):
        r = json.loads(path.read_text())
        if r.get("status") != "ok":
            continue
        row = rows[r["dataset"]]
        row["chance"] = 1.0 / r["n_classes"]
        row["teacher"] = (r.get("teacher_metrics") or {}).get("balanced_accuracy")
        row["init"] = r.get("teacher_init")
        row[f"{r['distiller']}/{r['student']}"] = r["metrics"]["balanced_accuracy"]
    lines = []
    for ds, row in sorted(rows.items()):
        methods = "  ".join(f"{k} {v:.3f}" for k, v in row.items() if "/" in k)
        lines.append(f"{ds:<14} chance {row['chance']:.3f}  teacher {row['teacher']:.3f}  {methods}  (init: {row['init']})")
    return lines


def tree_cpu_seconds(proc: subprocess.Popen) -> float:
    """Wait for ``proc``; return the user + system CPU seconds of it and every descendant (pool workers
    included), polled twice a second with psutil (a process's last half second may be missed)."""
    import psutil

    seen: dict[int, float] = {}
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    seen[p.pid] = t.user + t.system
        except psutil.Error:
            pass
        time.sleep(0.5)
    return sum(seen.values())


def main() -> None:
    args = sys.argv[1:]
    keep = None
    if args[:1] == ["--keep"]:
        keep, args = Path(args[1]), args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    root = keep or Path(tempfile.mkdtemp(prefix="eegkd-quick-"))
    env = {**os.environ, "EEGKD_CACHE": str(root / "cache")}
    cmd = [sys.executable, "-m", "eegkd_bench.cli", "run", "--preset", "quick", "--quiet",
           "--results", str(root / "results"), *args]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
        cpu = tree_cpu_seconds(proc)
        wall = time.perf_counter() - t0
        err.seek(0)
        stderr = err.read()
    print("\n".join(stderr.strip().splitlines()[-3:]))
    print("\n".join(summary(root / "results")))
    print(f"quick preset: {wall:.0f}s wall, {cpu:.0f}s CPU of the process tree (on 2 idle cores at best {cpu / 2:.0f}s), "
          f"exit {proc.returncode}; "
          f"ratio to the 300-s budget = {wall / BUDGET_S:.2f}")
    if keep is None:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
