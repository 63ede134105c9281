"""Where one run keeps things: the result store, the caches, the data, and the device it trains on."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eegkd_bench.data.cache import default_cache_dir
from eegkd_bench.device import resolve_device
from eegkd_bench.errors import UserError
from eegkd_bench.results import ResultStore


@dataclass
class RunContext:
    """Where things live for one run."""

    results: ResultStore
    cache_dir: Path
    data_dir: str | None = None
    latency: bool = True
    #: "on" (True), "off" (False: run the teacher on every batch) or "auto" (decided per teacher and
    #: device before the grid starts, see :mod:`eegkd_bench.teacher_cache.policy`)
    teacher_cache: bool | str = True
    device: str = "cpu"  # where models train and the teacher runs (resolved: cpu, cuda:N, mps)
    device_request: str = "cpu"  # as asked (auto, cuda, ...): cluster jobs resolve it on their own node
    #: the "auto" decisions, by :func:`eegkd_bench.teacher_cache.cache_choice_key`; each is recorded
    #: with the cells it applies to
    cache_choices: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def cache_mode(self) -> str:
        """``"on"``, ``"off"`` or ``"auto"``."""
        mode = self.teacher_cache
        return "on" if mode is True else "off" if mode is False else str(mode)


def make_context(results_dir: str | Path, cache_dir: str | Path | None, data_dir: str | None, *, latency: bool = True,
                 device: str | None = "cpu", resolve_device_here: bool = True,
                 create_results: bool = True) -> RunContext:
    """Where results, caches and data live, and where models train (``device``: auto, cpu, cuda[:N], mps).

    ``resolve_device_here=False`` (cluster executors): the submitting node may have no GPU, so
    each job resolves ``device`` on the node it lands on. ``create_results=False`` (dry runs)
    reads an existing results directory and never creates one.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create cache directory {cache}: {exc.strerror}; pass a writable --cache-dir") from None
    request = (device or "auto").strip().lower() or "auto"
    store = ResultStore(results_dir, create=create_results, missing_ok=not create_results)
    return RunContext(store, cache, data_dir or os.environ.get("EEGKD_DATA"), latency,
                      device=resolve_device(request) if resolve_device_here else "cpu", device_request=request)


__all__ = ["RunContext", "make_context"]
