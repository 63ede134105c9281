"""Shared set-up of the benchmark scripts (run from the repository root: python benchmarks/<script>.py)."""
from __future__ import annotations

import dataclasses
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from eegkd_bench.plugins import get_registry
from eegkd_bench.context import RunContext, make_context
from eegkd_bench.identity import CellSpec
from eegkd_bench.plan import grid_cells
from eegkd_bench.presets import PRESETS
from eegkd_bench.training import TrainConfig


@contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` holds the elapsed seconds."""
    out: list[float] = []
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - t0)


def fresh_context(cache_dir: Path | None = None, *, latency: bool = False, teacher_cache: bool = True,
                  device: str = "cpu") -> RunContext:
    root = Path(tempfile.mkdtemp(prefix="eegkd-bench-"))
    ctx = make_context(root / "results", cache_dir or (root / "cache"), None, latency=latency, device=device)
    ctx.teacher_cache = teacher_cache
    return ctx


def cell(dataset: str, distiller: str, *, student: str = "eegnet", teacher: str = "cbramod-mini", seed: int = 0,
         epochs: int = 5, teacher_epochs: int = 3) -> CellSpec:
    """One cell as a run plans it (resolved options, package versions), on the quick recipes."""
    quick = PRESETS["quick"]
    scfg = TrainConfig(**{**quick.student_cfg.as_dict(), "epochs": epochs})
    tcfg = TrainConfig(**{**quick.teacher_cfg.as_dict(), "epochs": teacher_epochs})
    preset = dataclasses.replace(quick, name="bench", teacher_cfg=tcfg, student_cfg=scfg)
    (spec,) = grid_cells(get_registry(), dataset, teacher, [student], [distiller], (seed,), preset)
    return spec


registry = get_registry
