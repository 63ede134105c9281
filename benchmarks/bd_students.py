"""Every braindecode student in a one-epoch KD cell on sim-mi: does it train, what does it cost.

Runs ``eegkd-bench run --preset quick --students 'bd-*' --methods kd --datasets sim-mi --seeds 0
--epochs 1 --jobs 1`` (the quick preset's teacher, fine-tuned once and cached) in fresh
directories, then prints one Markdown row per listed ``bd-*`` student: parameters, FLOPs at batch
1, the cell's training seconds, test balanced accuracy after that one epoch (chance is 0.25;
one epoch says that the model trains, not how well), the feature taps the adapter found, and
why a student did not run. Needs ``pip install 'eegkd-bench[braindecode]'``.

    python benchmarks/bd_students.py [--keep DIR] [--students 'bd-*'] [-- extra run arguments]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def tap_summary(name: str, spec: object) -> str:
    """The adapter's taps of ``name`` on ``spec``: ``tap (shape)``, comma-separated."""
    from eegkd_bench.plugins import get_registry

    try:
        model = get_registry().get("students", name).factory(spec)
    except Exception as exc:  # reported in the table's last column by the run itself
        return f"({type(exc).__name__})"
    return ", ".join(f"{n} {tuple(s)}" for n, s in model.tap_shapes.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", help="results and cache directory to keep (default: a temporary one)")
    ap.add_argument("--students", default="bd-*")
    ap.add_argument("extra", nargs="*", help="arguments for eegkd-bench run, after --")
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="bd-students-"))
    cmd = [sys.executable, "-m", "eegkd_bench.cli", "run", "--preset", "quick", "--students", args.students,
           "--methods", "kd", "--datasets", "sim-mi", "--seeds", "0", "--epochs", "1", "--jobs", "1",
           "--results", str(root / "results"), "--cache-dir", str(root / "cache"), "--no-leaderboard",
           *args.extra]
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})

    from eegkd_bench.api import InputSpec
    from eegkd_bench.plugins import get_registry

    records = {}
    for path in (root / "results" / "cells").glob("*.json"):
        r = json.loads(path.read_text())
        records[r["student"]] = r
    listed = get_registry().entries("students", args.students)
    ds = get_registry().get("datasets", "sim-mi").factory()
    n_classes = next((r["n_classes"] for r in records.values() if r.get("status") == "ok"), None)
    spec = InputSpec(ds.n_channels, int(round(ds.window_s * ds.sfreq)), n_classes, ds.sfreq) if n_classes else None
    print("| student | params | FLOPs | train s | bal. acc. | feature taps (sim-mi) | status |")
    print("|---|---:|---:|---:|---:|---|---|")
    n_ok = 0
    for e in listed:
        r = records.get(e.name)
        if e.unavailable:
            print(f"| {e.name} | | | | | | unavailable: {e.unavailable} |")
            continue
        if r is None or r.get("status") != "ok":
            why = (r or {}).get("error") or "not run"
            print(f"| {e.name} | | | | | | {why if why.startswith('skipped') else 'failed: ' + why} |")
            continue
        n_ok += 1
        taps = tap_summary(e.name, spec) if spec else ""
        print(f"| {e.name} | {r['student_params']:,} | {r['student_flops'] / 1e6:,.1f} M | "
              f"{r.get('train_time_s', float('nan')):.1f} | {r['metrics']['balanced_accuracy']:.3f} | {taps} | ok |")
    usable = sum(1 for e in listed if not e.unavailable)
    print(f"\n{len(listed)} listed, {usable} usable, {n_ok} trained a one-epoch KD cell "
          f"(results: {root / 'results'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
