"""One cell of the grid: its spec and key, running it, and the record it leaves.

A cell is (dataset, protocol split, teacher, student, distiller, seed, recipe).
Its key hashes everything that determines its result, so a finished cell is
never recomputed and a killed run resumes where it stopped: each record is
written atomically when its cell ends.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from eegkd_bench.api import Distiller, EEGWindows
from eegkd_bench.cost import cost_report
from eegkd_bench.data.cache import default_cache_dir
from eegkd_bench.data.catalog import load_dataset
from eegkd_bench.device import cpu_info, describe, resolve_device
from eegkd_bench.errors import UserError, one_line
from eegkd_bench.metrics import KEY_METRIC, task_of
from eegkd_bench.plugins import get_registry
from eegkd_bench.registry import Registry
from eegkd_bench.results import SCHEMA_VERSION, ResultStore, versions
from eegkd_bench.storage import atomic_write_text, stable_hash
from eegkd_bench.teacher_outputs import OnlineTeacher, TeacherOutputs, scratch_dir, teacher_outputs, teacher_target
from eegkd_bench.identity import CellSpec, cell_key, cell_teacher_key, checkpoint_init, fail_key, skip_key
from eegkd_bench.teachers import PreparedTeacher, prepare_teacher
from eegkd_bench.training import fit, test_scores
from eegkd_bench.weights import save_weights

SPLIT_PROTOCOL = "subject-disjoint (dataset-declared train/val/test)"


@dataclass
class RunContext:
    """Where things live for one run."""

    results: ResultStore
    cache_dir: Path
    data_dir: str | None = None
    latency: bool = True
    #: "on" (True), "off" (False: run the teacher on every batch) or "auto" (decided per teacher and
    #: device before the grid starts, see :func:`eegkd_bench.teacher_outputs.measure_teacher_cache`)
    teacher_cache: bool | str = True
    device: str = "cpu"  # where models train and the teacher runs (resolved: cpu, cuda:N, mps)
    device_request: str = "cpu"  # as asked (auto, cuda, ...): cluster jobs resolve it on their own node
    #: the "auto" decisions, by :func:`cache_choice_key`; each is recorded with the cells it applies to
    cache_choices: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def cache_mode(self) -> str:
        """``"on"``, ``"off"`` or ``"auto"``."""
        mode = self.teacher_cache
        return "on" if mode is True else "off" if mode is False else str(mode)

    def cache_choice(self, cell: CellSpec, spec: Any) -> dict[str, Any]:
        """Whether ``cell`` reads teacher outputs from the cache, and why (stored in its record)."""
        mode = self.cache_mode
        if mode != "auto":
            return {"mode": mode, "use": mode == "on"}
        choice = self.cache_choices.get(cache_choice_key(cell, spec, self.device))
        if choice is None:  # not measured before the grid (e.g. a cluster job on another device): cache
            return {"mode": "auto", "use": True, "reason": "not measured on this device; cache by default"}
        return choice


def cache_choice_key(cell: CellSpec, spec: Any, device: str) -> str:
    """What an automatic teacher-cache decision depends on: teacher, its options, input shape and device."""
    return stable_hash({"teacher": cell.teacher, "options": list(cell.teacher_options),
                        "spec": [spec.n_channels, spec.n_samples, spec.n_classes], "device": device,
                        "batch": cell.student_cfg.batch_size})[:16]


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


# -------------------------------------------------------- what the cell reads
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
    if not needs_warmup(distiller):
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


# ------------------------------------------------------------------ executing
def execute_cell(cell: CellSpec, ctx: RunContext, registry: Registry | None = None,
                 windows: EEGWindows | None = None, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run one cell end to end and store its record (ok or failed). Returns the record."""
    registry = registry or get_registry()
    t_start = time.perf_counter()
    base = base_record(cell)
    key = None
    try:
        if windows is None:
            windows = load_dataset(registry, cell.dataset, ctx.data_dir, ctx.cache_dir, dict(cell.dataset_options))
        init = checkpoint_init(cell.teacher_checkpoint)
        key = cell_key(cell, windows, init)
        base = base_record(cell, windows, key=key, teacher_init=init)
        prepared = prepare_cell_teacher(cell, ctx, registry, windows, progress)
        record = _train_cell(cell, ctx, registry, windows, prepared, base, progress)
    except Exception as exc:  # a failing cell is recorded; the grid goes on
        record = {**base, "status": "failed", "error": one_line(exc), "traceback": traceback.format_exc(limit=8)}
        if key is None:
            record["key"] = fail_key(cell)
    record["wall_time_s"] = time.perf_counter() - t_start
    ctx.results.put(record)
    stale = ctx.results.path(skip_key(cell))
    if record["status"] == "ok" and stale.exists():
        stale.unlink(missing_ok=True)
    return record


def prepare_cell_teacher(cell: CellSpec, ctx: RunContext, registry: Registry, windows: EEGWindows,
                         progress: Callable[[dict[str, Any]], None] | None = None,
                         outputs: frozenset[str] = frozenset()) -> PreparedTeacher:
    """Fine-tune (or load from the cache) the cell's teacher; then cache its ``outputs`` on the training split."""
    prepared = prepare_teacher(registry.get("teachers", cell.factory_name("teacher")).factory, cell.teacher, windows,
                               seed=cell.seed, cfg=cell.teacher_cfg, cache_dir=ctx.cache_dir,
                               options=dict(cell.teacher_options), checkpoint=cell.teacher_checkpoint,
                               progress=progress, device=ctx.device, provenance=cell.teacher_provenance(),
                               dataset_options=cell.dataset_key_options(), key=cell_teacher_key(cell, windows))
    if outputs:
        X_fit, subset = distillation_rows(windows)
        teacher_outputs(prepared, X_fit, set(outputs), ctx.cache_dir, subset=subset, data_checksum=windows.checksum)
    return prepared


def distillation_rows(windows: EEGWindows) -> tuple[Any, str]:
    """The windows whose teacher outputs a grid caches: the train split, then the transfer split (if any),
    and the cache's name for them. A cell that does not read the transfer split reads the first rows only."""
    X_fit, _ = windows.fit_part(transfer=True)
    return X_fit, "train+transfer" if len(windows.indices("transfer")) else "train"


def _train_cell(cell: CellSpec, ctx: RunContext, registry: Registry, windows: EEGWindows,
                prepared: PreparedTeacher, base: dict[str, Any], progress: Any) -> dict[str, Any]:
    spec = windows.input_spec()
    torch.manual_seed(cell.seed)
    np.random.seed(cell.seed)
    student = registry.get("students", cell.factory_name("student")).factory(spec, **dict(cell.student_options))
    distiller: Distiller = registry.get("distillers", cell.factory_name("distiller")).factory(
        student=student, teacher=prepared.info, spec=spec, **dict(cell.distiller_options))
    distiller.to(ctx.device)
    # the train split, then (for a distiller that reads it) the unlabelled transfer split
    X_tr, y_tr = windows.fit_part(transfer=distiller.reads_transfer())
    n_labelled = len(windows.indices("train"))
    X_va, y_va = windows.part("val")
    y_lab = torch.from_numpy(np.asarray(y_tr[:n_labelled], dtype=np.int64)).to(ctx.device)
    choice = ctx.cache_choice(cell, spec)
    use_cache = bool(choice["use"])
    names = teacher_output_names(distiller, prepared.info)
    cached = cached_output_names(cell, distiller, prepared.info, use_cache)
    outputs = TeacherOutputs({})
    if cached:  # the grid's cache covers train + transfer; rows [0, n_train) are the train split either way
        X_all, subset = distillation_rows(windows)
        outputs = teacher_outputs(prepared, X_all, cached, ctx.cache_dir, subset=subset,
                                  data_checksum=windows.checksum)
    warm = warmup_output_names(distiller, prepared.info)
    if warm and not use_cache:  # a warm-up without the cache computes what it reads in memory
        outputs = teacher_outputs(prepared, X_tr, warm, None)
    distiller.total_epochs = cell.student_cfg.epochs
    # a warm-up (DLink's router) fits on the labelled rows, which come first
    distiller.on_train_start(outputs if warm else None, y_lab)
    # Augmented inputs differ from the cached clean ones, so the teacher then runs online on each batch.
    online = cell.student_cfg.augment != "none" or not use_cache
    with contextlib.ExitStack() as stack:
        if online:
            source: Any = OnlineTeacher(prepared.model, names)
        elif distiller.teacher_needs().target:
            scratch = stack.enter_context(scratch_dir(ctx.cache_dir))
            target = teacher_target(prepared, X_tr, set(distiller.teacher_needs().resolve(prepared.info)),
                                    distiller.teacher_target, scratch, batch_size=cell.student_cfg.eval_batch_size)
            source = outputs.for_training(target=target)
        else:
            source = outputs.for_training()
        # as many optimizer steps as the student alone: an epoch is n_train windows drawn from train + transfer
        result = fit(distiller, X_tr, y_tr, X_va, y_va, windows.n_classes, cell.student_cfg, seed=cell.seed,
                     teacher=source, progress=progress, epoch_windows=n_labelled)
    # the only time the test split is touched: one pass, then the metrics overall and per test subject
    test, per_subject = test_scores(distiller, windows)
    deployed = distiller.deployed()
    cost = cost_report(deployed, spec, latency=ctx.latency)
    # so the student can be exported later; a variant is rebuilt from its base's factory with its options
    weights = save_weights(ctx.results, base["key"], distiller, student=cell.factory_name("student"),
                           student_options=dict(cell.student_options),
                           distiller_name=cell.factory_name("distiller"), spec=spec, teacher=prepared.info)
    tcost = _teacher_cost(prepared, spec, ctx)
    return {
        **base,
        "status": "ok",
        "error": "",
        "metrics": test,
        "per_subject": per_subject,
        "val_metrics": result.best_val,
        "teacher_metrics": prepared.test_metrics,
        "teacher_val_metrics": prepared.val_metrics,
        "teacher_per_subject": prepared.meta.get("test_per_subject"),
        "key_metric": KEY_METRIC[task_of(windows.n_classes)],
        "student_params": cost["params"],
        "student_flops": cost["flops"],
        "student_latency_ms": cost.get("latency_ms"),
        "training_only_params": distiller.training_only_params(),
        "teacher_params": tcost["params"],
        "teacher_flops": tcost["flops"],
        "teacher_latency_ms": tcost.get("latency_ms"),
        "teacher_head_params": prepared.model.head_params,
        "teacher_cached": prepared.cached,
        "teacher_train_time_s": prepared.train_time_s,
        "device": describe(ctx.device),
        # how many windows of each split the student trained on (transfer: unlabelled, teacher terms only)
        "train_windows": n_labelled,
        "transfer_windows": int(len(X_tr)) - n_labelled,
        "teacher_cache": {**choice, "use": use_cache, "outputs": sorted(cached)
                          + (["target"] if use_cache and not online and distiller.teacher_needs().target else [])},
        "torch_threads": torch.get_num_threads(),
        "train_time_s": result.train_time_s,
        "best_epoch": result.best_epoch,
        "epochs": len(result.history),
        "stopped_early": result.stopped_early,
        "history": [{"epoch": h["epoch"], "loss": h["loss"], "val_key": h["val"].get(KEY_METRIC[task_of(windows.n_classes)])}
                    for h in result.history],
        "student_label": distiller.student_label(cell.student),
        "distiller_report": distiller.report(),
        "student_weights": weights,
        "distiller_role": _role(registry, cell),  # leaderboard.roles
        "hparams": distiller.hparams,
    }


def _role(registry: Registry, cell: CellSpec) -> str | None:
    """The role the distiller's plugin declares; a run's own variants (absent in worker processes) have none."""
    if cell.distiller not in registry.names("distillers"):
        return None
    return registry.get("distillers", cell.distiller).metadata.get("role")


def needs_warmup(distiller: Distiller) -> bool:
    """Whether the distiller overrides ``on_train_start`` (then it reads the whole train set's teacher outputs)."""
    return type(distiller).on_train_start is not Distiller.on_train_start


def _teacher_cost(prepared: PreparedTeacher, spec: Any, ctx: RunContext) -> dict[str, Any]:
    """Teacher params / FLOPs / latency, measured once per fine-tuned teacher and cached beside it."""
    path = ctx.cache_dir / "teachers" / prepared.key / f"cost-{int(ctx.latency)}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    cost = cost_report(prepared.model, spec, latency=ctx.latency)
    cost = {k: v for k, v in cost.items() if isinstance(v, (int, float, type(None)))}
    try:
        atomic_write_text(path, json.dumps(cost), sync=False)
    except OSError:
        pass  # measured again next time
    return cost


# -------------------------------------------------------------------- records
def base_record(cell: CellSpec, windows: EEGWindows | None = None, *, key: str | None = None,
                teacher_init: str | None = None) -> dict[str, Any]:
    """The fields every record of ``cell`` carries; the data's fields once ``windows`` are loaded."""
    record = {
        "key": key,
        "schema_version": SCHEMA_VERSION,
        "status": None,
        "error": "",
        "dataset": cell.dataset,
        "dataset_label": cell.dataset_label or cell.dataset,
        "data_kind": None,
        "data_checksum": None,
        "split_protocol": SPLIT_PROTOCOL,
        "task": None,
        "n_classes": None,
        "class_names": None,
        "teacher": cell.teacher,
        "teacher_init": teacher_init if teacher_init is not None else _init_if_known(cell),
        "student": cell.student,
        "distiller": cell.distiller,
        "teacher_base": cell.factory_name("teacher"),
        "student_base": cell.factory_name("student"),
        "distiller_base": cell.factory_name("distiller"),
        "seed": cell.seed,
        "preset": cell.preset,
        "config": {
            "teacher_cfg": cell.teacher_cfg.as_dict(), "student_cfg": cell.student_cfg.as_dict(),
            "teacher_options": dict(cell.teacher_options), "student_options": dict(cell.student_options),
            "distiller_options": dict(cell.distiller_options), "dataset_options": dict(cell.dataset_options),
        },
        "versions": versions(),
        "provenance": dict(cell.provenance),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": f"{socket.gethostname()} ({platform.machine()})",
        "cpu": cpu_info(),
    }
    if windows is not None:
        record.update(data_kind=windows.kind, data_checksum=windows.checksum, task=windows.task,
                      n_classes=windows.n_classes, class_names=[str(c) for c in windows.class_names],
                      split_sizes=windows.split_sizes())
    return record


def _init_if_known(cell: CellSpec) -> str | None:
    """The teacher's init of a cell whose data never loaded (part of its row), None when the checkpoint is unreadable."""
    try:
        return checkpoint_init(cell.teacher_checkpoint)
    except (UserError, OSError):
        return None


def skipped_record(cell: CellSpec, reason: str, windows: EEGWindows | None = None) -> dict[str, Any]:
    """The record of a cell that did not run: its dataset could not be loaded (``windows`` None, real data),
    or a component cannot be built for the dataset's input."""
    kind = windows.kind if windows is not None else "real"
    return {**base_record(cell), "key": skip_key(cell), "status": "skipped", "error": reason, "data_kind": kind}


def record_dead_cell(cell: CellSpec, ctx: RunContext, windows: EEGWindows, reason: str) -> dict[str, Any]:
    """Store ``cell`` as failed after its worker process or cluster job died; returns the record.

    A cell that finished before its worker died keeps its record: never duplicate or overwrite it.
    """
    init = checkpoint_init(cell.teacher_checkpoint)
    key = cell_key(cell, windows, init)
    existing = ctx.results.get(key)
    if existing is not None and existing.get("status") == "ok":
        return existing
    record = {**base_record(cell, windows, key=key, teacher_init=init), "status": "failed", "error": reason}
    ctx.results.put(record)
    return record
