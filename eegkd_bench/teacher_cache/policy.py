"""Whether a cell reads its teacher's outputs from the on-disk cache, which outputs, and the disk that takes.

* **What a distiller reads** (:func:`teacher_output_names`, :func:`warmup_output_names`,
  :func:`cached_output_names`) and its bytes per window (:func:`size_reads`).
* **The decision** (:func:`cache_choice`): ``--teacher-cache on`` / ``off``, or ``auto``, measured once
  per (teacher, options, input shape, device, batch size) by :func:`measure_teacher_cache` before the
  grid starts (:func:`decide_cache`) and recorded with every cell it applies to.
* **The disk** (:func:`cache_bytes_needed`, :func:`fit_to_disk`): a cache that would not fit is not
  used (``auto``) or stops the grid in one line (``on``).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from eegkd_bench.api import Distiller, EEGWindows, InputSpec, TeacherInfo, TeacherModel
from eegkd_bench.context import RunContext
from eegkd_bench.device import describe, module_device
from eegkd_bench.errors import DiskSpaceError
from eegkd_bench.identity import CellSpec, cell_teacher_key
from eegkd_bench.storage import stable_hash
from eegkd_bench.teacher_cache.outputs import allocate_npy, outputs_key


# ------------------------------------------------------------ what a cell reads
def teacher_output_names(distiller: Distiller, info: Any) -> set[str]:
    """The teacher outputs a distiller reads per training batch: layer names, plus "logits" / "embedding"."""
    needs = distiller.teacher_needs()
    names = set(needs.resolve(info))
    if needs.logits:
        names.add("logits")
    if needs.embedding:
        names.add("embedding")
    return names


def warmup_output_names(distiller: Distiller, info: Any) -> set[str]:
    """What ``on_train_start`` reads for the whole training split: the declared summaries, else every batch output."""
    if not distiller.teacher_warmup:
        return set()
    summaries = set(distiller.teacher_needs().resolve_summaries(info))
    return summaries or teacher_output_names(distiller, info)


def cached_output_names(cell: CellSpec, distiller: Distiller, info: Any, use_cache: bool) -> set[str]:
    """The teacher outputs the cell reads from the on-disk cache (the grid's teacher pass writes them).

    Training batches read them unless the inputs are augmented (the teacher then runs online on
    the augmented batch); a distiller with a derived target (``TeacherNeeds.target``) reads its
    target, computed per cell, instead of its layers; a warm-up reads its summaries.
    """
    if not use_cache:
        return set()
    names = warmup_output_names(distiller, info)
    if cell.student_cfg.augment == "none":
        batch = teacher_output_names(distiller, info)
        if distiller.teacher_needs().target:
            batch -= set(distiller.teacher_needs().resolve(info))
        names |= batch
    return names


def distillation_rows(windows: EEGWindows) -> tuple[Any, str]:
    """The windows whose teacher outputs a grid caches: the train split, then the transfer split (if any),
    and the cache's name for them. A cell that does not read the transfer split reads the first rows only."""
    X_fit, _ = windows.fit_part(transfer=True)
    return X_fit, "train+transfer" if len(windows.indices("transfer")) else "train"


@dataclass(frozen=True)
class CellReads:
    """What a cell reads from the teacher-output cache, in bytes per training window."""

    per_batch: int  # read at every training step (cached outputs, or its derived target)
    target: int  # its derived target (a scratch file while the cell runs), 0 without one
    outputs: tuple[tuple[str, int], ...] = ()  # each output it reads from the cache, with its bytes


def output_bytes(name: str, info: TeacherInfo) -> int:
    """Bytes per window of one cached teacher output: layers and targets in float16, the rest float32."""
    if name == "logits":
        return 4 * info.n_classes
    layer = name.split(".", 1)[0]
    shape = info.feature_shapes.get(layer) or info.feature_shapes[info.layer_names[-1]]
    if "." in name or name == "embedding":  # a (D,) summary; the embedding's width is taken as D
        return 4 * int(shape[-1])
    return 2 * int(np.prod(shape))


def size_reads(distiller: Distiller, info: TeacherInfo, cached: Iterable[str]) -> CellReads:
    """The bytes per window a cell reads: its ``cached`` outputs (per batch: all but summaries) and its target."""
    cached = sorted(cached)
    needs = distiller.teacher_needs()
    target = output_bytes(needs.resolve(info)[-1], info) if needs.target else 0
    per_batch = sum(output_bytes(n, info) for n in cached if "." not in n)
    return CellReads(per_batch + target, target, tuple((n, output_bytes(n, info)) for n in cached))


# ------------------------------------------------------------------ the decision
def cache_choice_key(cell: CellSpec, spec: InputSpec, device: str) -> str:
    """What an automatic teacher-cache decision depends on: teacher, its options, input shape and device."""
    return stable_hash({"teacher": cell.teacher, "options": list(cell.teacher_options),
                        "spec": [spec.n_channels, spec.n_samples, spec.n_classes], "device": device,
                        "batch": cell.student_cfg.batch_size})[:16]


def cache_choice(ctx: RunContext, cell: CellSpec, spec: InputSpec) -> dict[str, Any]:
    """Whether ``cell`` reads teacher outputs from the cache, and why (stored in its record)."""
    mode = ctx.cache_mode
    if mode != "auto":
        return {"mode": mode, "use": mode == "on"}
    choice = ctx.cache_choices.get(cache_choice_key(cell, spec, ctx.device))
    if choice is None:  # not measured before the grid (e.g. a cluster job on another device): cache
        return {"mode": "auto", "use": True, "reason": "not measured on this device; cache by default"}
    return choice


def decide_cache(cells: Sequence[CellSpec], windows: Mapping[str, EEGWindows], ctx: RunContext,
                 reads: Mapping[CellSpec, CellReads], build_teacher: Callable[[CellSpec, InputSpec], TeacherModel],
                 threads: int | None) -> None:
    """Measure, once per (teacher, input shape, device), whether the cache beats running the teacher;
    the decisions go to ``ctx.cache_choices`` (``threads``: the torch threads a worker will have)."""
    todo: dict[str, tuple[CellSpec, int]] = {}
    for cell in cells:
        key = cache_choice_key(cell, windows[cell.dataset].input_spec(), ctx.device)
        rep, size = todo.get(key, (cell, 0))
        todo[key] = (rep, max(size, reads[cell].per_batch))
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        for key, (cell, size) in todo.items():
            if key in ctx.cache_choices:
                continue
            if not size:
                ctx.cache_choices[key] = {"mode": "auto", "use": True, "reason": "nothing to read per batch"}
                continue
            spec = windows[cell.dataset].input_spec()
            with torch.random.fork_rng(devices=[]):  # a random init is as fast as the fine-tuned one
                model = build_teacher(cell, spec)
            ctx.cache_choices[key] = measure_teacher_cache(
                model.to(ctx.device), spec, size, batch_size=cell.student_cfg.batch_size,
                epochs=cell.student_cfg.epochs, scratch=ctx.cache_dir / "scratch")
            del model
    finally:
        torch.set_num_threads(before)


def measure_teacher_cache(model: TeacherModel, spec: InputSpec, bytes_per_window: int, *, batch_size: int,
                          epochs: int, scratch: Path, repeats: int = 3) -> dict[str, Any]:
    """Whether reading the teacher's outputs from the on-disk cache beats running the teacher, measured here.

    Times one forward pass of a batch on the teacher's device (after a small warm-up; repeated
    ``repeats`` times only when the call is within 10x) against reading one batch of
    ``bytes_per_window`` bytes of float16 per window from a memory-mapped file (random sorted
    rows, cast to float32, moved to the device; median of ``repeats``). Over
    ``epochs`` epochs the cache costs one teacher pass plus one read per batch and epoch, online
    costs one forward per batch and epoch: the cache wins when ``read < forward * (epochs-1)/epochs``.
    The read is timed from the page cache, the best case of a cache that fits in memory.
    """
    device = module_device(model)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed(fn: Callable[[], Any], n: int) -> list[float]:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return times

    x = torch.randn(batch_size, spec.n_channels, spec.n_samples, device=device)
    model.eval()
    with torch.inference_mode():
        model.forward_features(x[:2])  # warm-up: kernels, allocator
        sync()
        forwards = timed(lambda: model.forward_features(x), 1)
    per_window = max(1, bytes_per_window // 2)
    rows = max(4 * batch_size, min(64 * 1024 * 1024 // (2 * per_window), 32 * batch_size))
    scratch.mkdir(parents=True, exist_ok=True)
    probe = scratch / f".cache-probe-{os.getpid()}.npy"
    try:
        arr = allocate_npy(probe, np.float16, (rows, per_window))
        arr[:] = np.random.default_rng(0).standard_normal((rows, per_window), dtype=np.float32)
        arr.flush()
        del arr
        stored = np.load(probe, mmap_mode="r")
        gen = np.random.default_rng(1)

        def read() -> None:
            idx = np.sort(gen.choice(rows, size=min(batch_size, rows), replace=False))
            torch.from_numpy(np.asarray(stored[idx], dtype=np.float32)).to(device)

        read()  # warm-up
        read_s = float(np.median(timed(read, repeats)))
        if 0.1 * _threshold(forwards, epochs) < read_s < 10 * _threshold(forwards, epochs):  # a close call: again
            with torch.inference_mode():
                forwards += timed(lambda: model.forward_features(x), repeats - 1)
        del stored
    finally:
        probe.unlink(missing_ok=True)
    forward = float(np.median(forwards))
    use = read_s < _threshold(forwards, epochs)
    return {"mode": "auto", "use": bool(use), "forward_ms": round(forward * 1e3, 3), "read_ms": round(read_s * 1e3, 3),
            "batch_size": batch_size, "bytes_per_window": int(bytes_per_window), "epochs": epochs,
            "reason": (f"reading a batch ({read_s * 1e3:.2f} ms) {'<' if use else '>='} a teacher forward "
                       f"({forward * 1e3:.2f} ms) x (epochs-1)/epochs on {describe(str(device))}")}


def _threshold(forwards: list[float], epochs: int) -> float:
    """The batch read time below which the cache wins: forward * (epochs - 1) / epochs."""
    return float(np.median(forwards)) * max(0, epochs - 1) / max(1, epochs)


# -------------------------------------------------------------------------- disk
def cache_bytes_needed(groups: Sequence[Any], windows: Mapping[str, EEGWindows], ctx: RunContext,
                       reads: Mapping[CellSpec, CellReads], jobs: int = 1) -> int:
    """Disk the grid's teacher-output caches will still take: missing outputs per teacher, plus scratch targets.

    ``groups`` are the grid's teacher groups (``cell``, ``cells``, ``outputs``). Outputs already in
    the cache count nothing; each cell with a derived target holds one scratch file while it
    runs, and at most ``jobs`` cells run at once.
    """
    total, scratch = 0, []
    for group in groups:
        cell = group.cell
        w = windows[cell.dataset]
        X_fit, subset = distillation_rows(w)  # what the teacher pass caches: train (+ transfer)
        n_train = len(X_fit)
        if group.outputs:
            folder = ctx.cache_dir / "teacher_outputs" / outputs_key(
                cell_teacher_key(cell, w), (n_train, *w.X.shape[1:]), subset=subset, data_checksum=w.checksum)
            sizes = {n: b for c in group.cells if c in reads for n, b in reads[c].outputs}
            total += sum(sizes.get(n, 0) * n_train for n in group.outputs if not (folder / f"{n}.npy").exists())
        for c in group.cells:
            if reads.get(c) and reads[c].target and cache_choice(ctx, c, w.input_spec())["use"] \
                    and c.student_cfg.augment == "none":
                scratch.append(reads[c].target * n_train)
    return total + sum(sorted(scratch, reverse=True)[:max(1, jobs)])


def fit_to_disk(need: int, ctx: RunContext) -> bool:
    """Whether a cache of ``need`` bytes fits the cache disk. With ``auto``, a cache that does not fit is
    turned off (each decision says why) and False returned; with ``on`` it stops the grid in one line."""
    free = shutil.disk_usage(ctx.cache_dir).free
    if need <= free:
        return True
    where = ctx.cache_dir / "teacher_outputs"
    if ctx.cache_mode == "auto":
        for key, choice in ctx.cache_choices.items():
            if choice.get("use"):
                ctx.cache_choices[key] = {**choice, "use": False, "reason": f"the teacher-output cache needs "
                                          f"{_gb(need)} in {where} but {_gb(free)} are free"}
        return False
    raise DiskSpaceError(f"the teacher-output cache needs {_gb(need)} in {where} but only {_gb(free)} are free; "
                         f"pass --cache-dir on a larger disk or --teacher-cache off")


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


__all__ = ["CellReads", "cache_bytes_needed", "cache_choice", "cache_choice_key", "cached_output_names",
           "decide_cache", "distillation_rows", "fit_to_disk", "measure_teacher_cache", "output_bytes",
           "size_reads", "teacher_output_names", "warmup_output_names"]
