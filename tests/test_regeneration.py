"""What regenerates bit-identically: a cell computed alone and inside a grid, on the same machine and versions."""
from __future__ import annotations

import json
from pathlib import Path

from eegkd_bench.cli import main

TINY = ["sim-mi.n_subjects=6", "sim-mi.split=[2,1,1,2]", "sim-mi.trials_per_class=1", "train.epochs=2",
        "teacher_train.epochs=1"]


def _run(root: Path, methods: str, jobs: int) -> dict[str, dict]:
    argv = ["run", "--methods", methods, "--students", "eegnet", "--datasets", "sim-mi", "--teacher", "cbramod-mini",
            "--teacher-checkpoint", "none", "--seeds", "0", "--jobs", str(jobs), "--results", str(root / "r"),
            "--cache-dir", str(root / "c"), "-q", "--no-latency", "--no-leaderboard"]
    for s in TINY:
        argv += ["--set", s]
    assert main(argv) == 0
    return {r["distiller"]: r for r in map(json.loads, map(Path.read_text, (root / "r" / "cells").glob("*.json")))}


def test_a_cell_alone_and_inside_a_grid_gives_the_same_key_and_bits(tmp_path: Path) -> None:
    alone = _run(tmp_path / "alone", "kd", jobs=2)["kd"]
    grid = _run(tmp_path / "grid", "none,fitnets,kd,dlink", jobs=2)["kd"]
    assert alone["key"] == grid["key"]
    for field in ("metrics", "per_subject", "val_metrics", "history", "teacher_metrics", "best_epoch"):
        assert alone[field] == grid[field], field
    # the thread count is part of what reproduces: one thread per worker in both
    assert alone["torch_threads"] == grid["torch_threads"] == 1
