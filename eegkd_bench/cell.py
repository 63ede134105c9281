"""One cell of the grid: running it, and the record it leaves.

A cell is (dataset, protocol split, teacher, student, distiller, seed, recipe); its key
(:mod:`eegkd_bench.identity`) hashes everything that determines its result, so a finished
cell is never recomputed and a killed run resumes where it stopped.

:func:`run_cell` is the cell itself: given its windows and its prepared teacher it trains,
tests and measures the student and returns the :class:`~eegkd_bench.results.Record` and the
deployed weights, writing nothing to the result store. :func:`execute_cell` is what executors
call: prepare the teacher, run the cell, store the record (ok or failed) and the weights.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import socket
import time
import traceback
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from eegkd_bench.api import EEGWindows
from eegkd_bench.build import build_distiller, teacher_factory
from eegkd_bench.context import RunContext
from eegkd_bench.cost import cost_report
from eegkd_bench.device import cpu_info, describe
from eegkd_bench.errors import UserError, one_line
from eegkd_bench.identity import CellSpec, cell_key, cell_teacher_key, checkpoint_init, fail_key, skip_key
from eegkd_bench.metrics import KEY_METRIC, task_of
from eegkd_bench.registry import Registry
from eegkd_bench.results import Record, versions
from eegkd_bench.storage import atomic_write_text
from eegkd_bench.teacher_cache import (
    OnlineTeacher,
    TeacherOutputs,
    cache_choice,
    cached_output_names,
    distillation_rows,
    scratch_dir,
    teacher_output_names,
    teacher_outputs,
    teacher_target,
    warmup_output_names,
)
from eegkd_bench.teachers import PreparedTeacher, prepare_teacher
from eegkd_bench.training import ProgressFn, fit, test_scores
from eegkd_bench.weights import save_weights, weights_payload

SPLIT_PROTOCOL = "subject-disjoint (dataset-declared train/val/test)"

# ------------------------------------------------------------------ executing
def execute_cell(cell: CellSpec, ctx: RunContext, registry: Registry, windows: EEGWindows,
                 progress: ProgressFn | None = None) -> dict[str, Any]:
    """Prepare the cell's teacher, run the cell, store its record (ok or failed) and weights; returns the record."""
    t_start = time.perf_counter()
    record = base_record(cell)
    try:
        record = base_record(cell, windows)
        prepared = prepare_cell_teacher(cell, ctx, registry, windows, progress)
        record, payload = run_cell(cell, windows, prepared, ctx, registry, progress=progress, base=record)
        record.student_weights = save_weights(ctx.results, str(record.key), payload)
    except Exception as exc:  # a failing cell is recorded; the grid goes on
        record = failed(record, cell, exc)
    record.wall_time_s = time.perf_counter() - t_start
    ctx.results.put(record)
    stale = ctx.results.path(skip_key(cell))
    if record.status == "ok" and stale.exists():
        stale.unlink(missing_ok=True)
    return record.to_dict()


def prepare_cell_teacher(cell: CellSpec, ctx: RunContext, registry: Registry, windows: EEGWindows,
                         progress: ProgressFn | None = None, outputs: frozenset[str] = frozenset()) -> PreparedTeacher:
    """Fine-tune (or load from the cache) the cell's teacher; then cache its ``outputs`` on the training split."""
    prepared = prepare_teacher(teacher_factory(registry, cell), cell.teacher, windows,
                               seed=cell.seed, cfg=cell.teacher_cfg, cache_dir=ctx.cache_dir,
                               options=dict(cell.teacher_options), checkpoint=cell.teacher_checkpoint,
                               progress=progress, device=ctx.device, provenance=cell.teacher_provenance(),
                               dataset_options=cell.dataset_key_options(), key=cell_teacher_key(cell, windows))
    if outputs:
        X_fit, subset = distillation_rows(windows)
        teacher_outputs(prepared, X_fit, set(outputs), ctx.cache_dir, subset=subset, data_checksum=windows.checksum)
    return prepared


def run_cell(cell: CellSpec, windows: EEGWindows, teacher: PreparedTeacher, ctx: RunContext, registry: Registry,
             *, progress: ProgressFn | None = None, base: Record | None = None) -> tuple[Record, dict[str, Any]]:
    """Train, test and measure the cell's student; returns its ``ok`` record and the deployed model's weights.

    ``base``: the cell's :func:`base_record` made when it started (its ``created`` time); made here when
    not given. Writes nothing to the result store; reads (and may fill) the teacher-output cache.
    """
    base = base if base is not None else base_record(cell, windows)
    spec = windows.input_spec()
    torch.manual_seed(cell.seed)
    np.random.seed(cell.seed)
    distiller = build_distiller(registry, cell, spec, teacher.info, total_epochs=cell.student_cfg.epochs)
    distiller.to(ctx.device)
    # the train split, then (for a distiller that reads it) the unlabelled transfer split
    X_tr, y_tr = windows.fit_part(transfer=distiller.reads_transfer())
    n_labelled = len(windows.indices("train"))
    X_va, y_va = windows.part("val")
    y_lab = torch.from_numpy(np.asarray(y_tr[:n_labelled], dtype=np.int64)).to(ctx.device)
    choice = cache_choice(ctx, cell, spec)
    use_cache = bool(choice["use"])
    names = teacher_output_names(distiller, teacher.info)
    cached = cached_output_names(cell, distiller, teacher.info, use_cache)
    outputs = TeacherOutputs({})
    if cached:  # the grid's cache covers train + transfer; rows [0, n_train) are the train split either way
        X_all, subset = distillation_rows(windows)
        outputs = teacher_outputs(teacher, X_all, cached, ctx.cache_dir, subset=subset, data_checksum=windows.checksum)
    warm = warmup_output_names(distiller, teacher.info)
    if warm and not use_cache:  # a warm-up without the cache computes what it reads in memory
        outputs = teacher_outputs(teacher, X_tr, warm, None)
    # a warm-up (DLink's router) fits on the labelled rows, which come first
    distiller.on_train_start(outputs if warm else None, y_lab)
    # Augmented inputs differ from the cached clean ones, so the teacher then runs online on each batch.
    online = cell.student_cfg.augment != "none" or not use_cache
    needs = distiller.teacher_needs()
    with contextlib.ExitStack() as stack:
        if online:
            source: Any = OnlineTeacher(teacher.model, names)
        elif needs.target:
            scratch = stack.enter_context(scratch_dir(ctx.cache_dir))
            target = teacher_target(teacher, X_tr, set(needs.resolve(teacher.info)), distiller.teacher_target,
                                    scratch, batch_size=cell.student_cfg.eval_batch_size)
            source = outputs.for_training(target=target)
        else:
            source = outputs.for_training()
        # as many optimizer steps as the student alone: an epoch is n_train windows drawn from train + transfer
        result = fit(distiller, X_tr, y_tr, X_va, y_va, windows.n_classes, cell.student_cfg, seed=cell.seed,
                     teacher=source, progress=progress, epoch_windows=n_labelled)
    # the only time the test split is touched: one pass, then the metrics overall and per test subject
    test, per_subject = test_scores(distiller, windows)
    cost = cost_report(distiller.deployed(), spec, latency=ctx.latency)
    tcost = _teacher_cost(teacher, spec, ctx)
    key_metric = KEY_METRIC[task_of(windows.n_classes)]
    record = dataclasses.replace(
        base, status="ok", metrics=test, per_subject=per_subject, val_metrics=result.best_val,
        teacher_metrics=teacher.test_metrics, teacher_val_metrics=teacher.val_metrics,
        teacher_per_subject=teacher.meta.get("test_per_subject"), key_metric=key_metric,
        student_params=cost["params"], student_flops=cost["flops"], student_latency_ms=cost.get("latency_ms"),
        training_only_params=distiller.training_only_params(), teacher_params=tcost["params"],
        teacher_flops=tcost["flops"], teacher_latency_ms=tcost.get("latency_ms"),
        teacher_head_params=teacher.model.head_params, teacher_cached=teacher.cached,
        teacher_train_time_s=teacher.train_time_s, device=describe(ctx.device),
        # how many windows of each split the student trained on (transfer: unlabelled, teacher terms only)
        train_windows=n_labelled, transfer_windows=int(len(X_tr)) - n_labelled,
        teacher_cache={**choice, "use": use_cache,
                       "outputs": sorted(cached) + (["target"] if use_cache and not online and needs.target else [])},
        torch_threads=torch.get_num_threads(), train_time_s=result.train_time_s, best_epoch=result.best_epoch,
        epochs=len(result.history), stopped_early=result.stopped_early,
        history=[{"epoch": h["epoch"], "loss": h["loss"], "val_key": h["val"].get(key_metric)} for h in result.history],
        student_label=distiller.student_label(cell.student), distiller_report=distiller.report(),
        distiller_role=_role(registry, cell), hparams=distiller.hparams)
    # so the student can be exported later; a variant is rebuilt from its base's factory with its options
    payload = weights_payload(distiller, student=cell.factory_name("student"), student_options=dict(cell.student_options),
                              distiller_name=cell.factory_name("distiller"), spec=spec, teacher=teacher.info)
    return record, payload


def _role(registry: Registry, cell: CellSpec) -> str | None:
    """The role the distiller's plugin declares (``leaderboard.roles``); a run's own variants have none."""
    if cell.distiller not in registry.names("distillers"):
        return None
    return registry.get("distillers", cell.distiller).metadata.get("role")


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
def base_record(cell: CellSpec, windows: EEGWindows | None = None) -> Record:
    """The fields every record of ``cell`` carries; with ``windows``, the data's fields and the cell's key."""
    init = checkpoint_init(cell.teacher_checkpoint) if windows is not None else _init_if_known(cell)
    record = Record(
        key=cell_key(cell, windows, init) if windows is not None else None, status=None,
        dataset=cell.dataset, dataset_label=cell.dataset_label or cell.dataset, split_protocol=SPLIT_PROTOCOL,
        teacher=cell.teacher, teacher_init=init, student=cell.student, distiller=cell.distiller,
        teacher_base=cell.factory_name("teacher"), student_base=cell.factory_name("student"),
        distiller_base=cell.factory_name("distiller"), seed=cell.seed, preset=cell.preset,
        config={"teacher_cfg": cell.teacher_cfg.as_dict(), "student_cfg": cell.student_cfg.as_dict(),
                "teacher_options": dict(cell.teacher_options), "student_options": dict(cell.student_options),
                "distiller_options": dict(cell.distiller_options), "dataset_options": dict(cell.dataset_options)},
        versions=versions(), provenance=dict(cell.provenance),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        host=f"{socket.gethostname()} ({platform.machine()})", cpu=cpu_info())
    if windows is not None:
        record = dataclasses.replace(
            record, data_kind=windows.kind, data_checksum=windows.checksum, task=windows.task,
            n_classes=windows.n_classes, class_names=[str(c) for c in windows.class_names],
            split_sizes=windows.split_sizes())
    return record


def _init_if_known(cell: CellSpec) -> str | None:
    """The teacher's init of a cell whose data never loaded (part of its row), None when the checkpoint is unreadable."""
    try:
        return checkpoint_init(cell.teacher_checkpoint)
    except (UserError, OSError):
        return None


def failed(record: Record, cell: CellSpec, exc: BaseException) -> Record:
    """``record`` as failed with ``exc``'s one-line reason (and its traceback, for a bug report)."""
    return dataclasses.replace(record, status="failed", error=one_line(exc), traceback=traceback.format_exc(limit=8),
                               key=record.key or fail_key(cell))


def failed_record(cell: CellSpec, windows: EEGWindows, reason: str, trace: str = "") -> Record:
    """The record of a cell that failed before it could run (with its data's key, so it is not run again
    until the plugin that failed changes, or ``--retry-failed``)."""
    return dataclasses.replace(base_record(cell, windows), status="failed", error=reason, traceback=trace or None)


def record_failure(cell: CellSpec, ctx: RunContext, exc: BaseException) -> dict[str, Any]:
    """Store ``cell`` as failed before it could start (its windows could not be loaded); returns the record."""
    record = failed(base_record(cell), cell, exc)
    ctx.results.put(record)
    return record.to_dict()


def skipped_record(cell: CellSpec, reason: str, windows: EEGWindows | None = None) -> Record:
    """The record of a cell that did not run: its dataset could not be loaded (``windows`` None, real data),
    or a component cannot be built for the dataset's input."""
    kind = windows.kind if windows is not None else "real"
    return dataclasses.replace(base_record(cell), key=skip_key(cell), status="skipped", error=reason, data_kind=kind)


def record_dead_cell(cell: CellSpec, ctx: RunContext, windows: EEGWindows, reason: str) -> dict[str, Any]:
    """Store ``cell`` as failed after its worker process or cluster job died; returns the record.

    A cell that finished before its worker died keeps its record: never duplicate or overwrite it.
    """
    record = failed_record(cell, windows, reason)
    existing = ctx.results.get(str(record.key))
    if existing is not None and existing.get("status") == "ok":
        return existing
    ctx.results.put(record)
    return record.to_dict()


__all__ = ["SPLIT_PROTOCOL", "base_record", "execute_cell", "failed_record", "prepare_cell_teacher", "record_dead_cell",
           "record_failure", "run_cell", "skipped_record"]
