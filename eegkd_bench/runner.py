"""The benchmark grid: presets, cells, resume, execution and result records.

A cell is (dataset, protocol split, teacher, student, distiller, seed, recipe).
Its key hashes everything that determines its result, so a finished cell is
never recomputed and a killed run resumes where it stopped: each record is
written atomically when its cell ends, and teachers / teacher outputs are
cached on disk with checksums.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import socket
import time
import traceback
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from eegkd_bench.api import (
    DataUnavailable,
    Distiller,
    EEGWindows,
    TeacherBatch,
    UserError,
)
from eegkd_bench.data.cache import default_cache_dir, stable_hash
from eegkd_bench.device import describe, resolve_device
from eegkd_bench.metrics import KEY_METRIC, task_of
from eegkd_bench.registry import Registry
from eegkd_bench.results import SCHEMA_VERSION, ResultStore, versions
from eegkd_bench.teachers import (
    OnlineTeacher,
    PreparedTeacher,
    TeacherOutputs,
    prepare_teacher,
    split_digest,
    teacher_outputs,
)
from eegkd_bench.training import TrainConfig, evaluate, fit

SPLIT_PROTOCOL = "subject-disjoint (dataset-declared train/val/test)"


@dataclass(frozen=True)
class Preset:
    """Defaults of a named run recipe; explicit flags override them."""

    name: str
    methods: str
    students: str
    teacher: str
    datasets: str
    seeds: tuple[int, ...]
    teacher_cfg: TrainConfig
    student_cfg: TrainConfig
    simulated_only: bool = False
    jobs: int = 1  # default worker processes (the quick preset uses both cores)
    description: str = ""


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        name="quick",
        methods="none,kd,dlink",
        students="eegnet",
        teacher="cbramod-mini",
        datasets="all",
        seeds=(0,),
        # sized so the whole quick grid (4 teachers + 12 cells) stays under 5 minutes on 2 cores
        teacher_cfg=TrainConfig(epochs=4, batch_size=32, lr=1e-3, weight_decay=5e-2),
        student_cfg=TrainConfig(epochs=7, batch_size=32, lr=3e-3, weight_decay=1e-2),
        simulated_only=True,
        jobs=2,
        description="the embedded simulated benchmarks end to end in minutes on 2 CPU cores",
    ),
    "paper": Preset(
        name="paper",
        methods="all",
        students="all",
        teacher="cbramod",
        datasets="all",
        seeds=(0, 1, 2),
        # CBraMod downstream recipe: AdamW, cosine schedule, label smoothing 0.1, 50 epochs.
        teacher_cfg=TrainConfig(epochs=50, batch_size=64, lr=1e-4, weight_decay=5e-2, warmup_epochs=2),
        student_cfg=TrainConfig(epochs=100, batch_size=64, lr=1e-3, weight_decay=1e-2, patience=20),
        description="the full recipe: full CBraMod teacher, every method and student, 3 seeds",
    ),
}


@dataclass(frozen=True)
class CellSpec:
    """Everything that determines one cell's result (picklable, sent to workers)."""

    dataset: str
    teacher: str
    student: str
    distiller: str
    seed: int
    preset: str
    teacher_cfg: TrainConfig
    student_cfg: TrainConfig
    teacher_checkpoint: str | None = None
    teacher_options: tuple[tuple[str, Any], ...] = ()
    student_options: tuple[tuple[str, Any], ...] = ()
    distiller_options: tuple[tuple[str, Any], ...] = ()

    def identity(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("teacher_checkpoint")  # the checkpoint's content (sha256) enters the key, not its path
        return d

    def label(self) -> str:
        return f"{self.dataset} · {self.distiller} → {self.student} · seed {self.seed}"


@dataclass
class RunContext:
    """Where things live for one run."""

    results: ResultStore
    cache_dir: Path
    data_dir: str | None = None
    latency: bool = True
    teacher_cache: bool = True  # False: run the teacher on every batch (benchmarks, debugging)
    device: str = "cpu"  # where models train and the teacher runs (resolved: cpu, cuda:N, mps)
    device_request: str = "cpu"  # as asked (auto, cuda, ...): cluster jobs resolve it on their own node


@dataclass
class GridPlan:
    cells: list[CellSpec]
    skipped: list[tuple[CellSpec, str]] = field(default_factory=list)
    windows: dict[str, EEGWindows] = field(default_factory=dict)
    cached_outputs: dict[CellSpec, frozenset[str]] = field(default_factory=dict)  # filled by Grid.run's preflight


# -------------------------------------------------------------------- planning
def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` or ``"0-4"`` -> seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"invalid --seeds {text!r}; expected integers like 0,1,2 or a range like 0-4") from None
    if not seeds or any(s < 0 for s in seeds):
        raise UserError(f"invalid --seeds {text!r}; expected non-negative integers like 0,1,2")
    return tuple(dict.fromkeys(seeds))


def select_datasets(registry: Registry, spec: str, *, simulated_only: bool) -> list[str]:
    """Resolve a dataset selection; ``all`` honours the preset (quick: simulated only)."""
    names = registry.select("datasets", spec)
    if spec.strip() == "all":  # unlabeled pretraining corpora are never part of a grid
        names = [n for n in names if getattr(registry.get("datasets", n).factory, "labeled", True)]
    if simulated_only and spec.strip() == "all":
        names = [n for n in names if getattr(registry.get("datasets", n).factory, "kind", None) == "simulated"
                 or _instance_kind(registry, n) == "simulated"]
        if not names:
            raise UserError("no simulated dataset is registered; is the 'simulated' plugin disabled? "
                            "see eegkd-bench plugins")
    return names


def _instance_kind(registry: Registry, name: str) -> str:
    try:
        return registry.get("datasets", name).factory().kind
    except Exception:
        return "?"


def load_dataset(registry: Registry, name: str, data_dir: str | None, cache_dir: Path) -> EEGWindows:
    """Instantiate and load a registered dataset (raises DataUnavailable when absent)."""
    dataset = registry.get("datasets", name).factory()
    avail = dataset.availability(data_dir)
    if not avail.available:
        how = f"; {avail.how_to_get}" if avail.how_to_get else ""
        raise DataUnavailable(f"not downloaded: looked in {avail.where}{how}")
    windows = dataset.load(data_dir, str(cache_dir))
    if not np.isfinite(windows.X).all():
        bad = int(np.flatnonzero(~np.isfinite(windows.X).reshape(len(windows.X), -1).all(axis=1))[0])
        raise UserError(f"dataset {name!r} has non-finite values (first in window {bad}); check its files, "
                        f"then delete its cached windows under {cache_dir / 'windows'} and run again")
    for split in ("train", "val", "test"):
        if len(windows.indices(split)) == 0:
            raise UserError(f"dataset {name!r} has an empty {split} split; it needs train, val and test subjects")
    return windows


def cell_key(cell: CellSpec, windows: EEGWindows, teacher_init: str) -> str:
    """Hash of everything that determines the cell's result."""
    return stable_hash({
        "schema": SCHEMA_VERSION, "cell": cell.identity(), "data_checksum": windows.checksum,
        "split": split_digest(windows), "teacher_init": teacher_init,
    })[:32]


def skip_key(cell: CellSpec) -> str:
    return "skip-" + stable_hash({"schema": SCHEMA_VERSION, "cell": cell.identity()})[:27]


def teacher_init_of(checkpoint: str | None) -> str:
    from eegkd_bench.data.cache import file_sha256

    if not checkpoint:
        return "random"
    if not Path(checkpoint).is_file():
        raise UserError(f"teacher checkpoint {checkpoint!r} not found; pass an existing file to --teacher-checkpoint")
    return f"sha256:{file_sha256(checkpoint)}"


def preflight(registry: Registry, cells: Iterable[CellSpec], windows: dict[str, EEGWindows],
              *, teacher_cache: bool = True) -> dict[CellSpec, frozenset[str]]:
    """Build every (teacher, student, distiller) once per input shape so incompatibilities fail before training.

    Returns, per cell, the teacher outputs it will read from the on-disk cache, so the grid can
    compute the union for each fine-tuned teacher in one pass over its training split.
    """
    from eegkd_bench.api import TeacherInfo

    cached: dict[tuple[Any, ...], frozenset[str]] = {}
    infos: dict[tuple[Any, ...], TeacherInfo] = {}
    out: dict[CellSpec, frozenset[str]] = {}
    for cell in cells:
        spec = windows[cell.dataset].input_spec()
        tkey = (cell.teacher, cell.teacher_options, spec)
        if tkey not in infos:
            teacher = registry.get("teachers", cell.teacher).factory(spec, **dict(cell.teacher_options))
            infos[tkey] = TeacherInfo.from_model(cell.teacher, teacher, spec)
        key = (cell.student, cell.student_options, cell.distiller, cell.distiller_options, cell.student_cfg.augment,
               tkey)
        if key not in cached:
            student = registry.get("students", cell.student).factory(spec, **dict(cell.student_options))
            distiller_cls = registry.get("distillers", cell.distiller).factory
            distiller = distiller_cls(student=student, teacher=infos[tkey], spec=spec, **dict(cell.distiller_options))
            names = teacher_output_names(distiller, infos[tkey])
            cached[key] = frozenset(names if reads_output_cache(cell, distiller, teacher_cache) else ())
        out[cell] = cached[key]
    return out


def teacher_output_names(distiller: Distiller, info: Any) -> set[str]:
    """The teacher outputs a distiller asks for: layer names, plus "logits" / "embedding"."""
    needs = distiller.teacher_needs()
    names = set(needs.resolve(info))
    if needs.logits:
        names.add("logits")
    if needs.embedding:
        names.add("embedding")
    return names


def reads_output_cache(cell: CellSpec, distiller: Distiller, teacher_cache: bool) -> bool:
    """Whether the cell reads the teacher's outputs from the on-disk cache (not online per batch).

    Augmented inputs differ from the cached clean ones, so with augmentation the teacher runs
    online; a distiller with a warm-up stage still reads the whole clean training split once.
    """
    return teacher_cache and (cell.student_cfg.augment == "none" or needs_warmup(distiller))


# ------------------------------------------------------------------- executing
def execute_cell(cell: CellSpec, ctx: RunContext, registry: Registry | None = None,
                 windows: EEGWindows | None = None, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run one cell end to end and store its record (ok or failed). Returns the record."""
    if registry is None:
        from eegkd_bench.plugins import get_registry

        registry = get_registry()
    t_start = time.perf_counter()
    base = _base_record(cell)
    key = None
    try:
        if windows is None:
            windows = load_dataset(registry, cell.dataset, ctx.data_dir, ctx.cache_dir)
        init = teacher_init_of(cell.teacher_checkpoint)
        key = cell_key(cell, windows, init)
        base.update(key=key, data_kind=windows.kind, data_checksum=windows.checksum, task=windows.task,
                    n_classes=windows.n_classes, teacher_init=init)
        prepared = prepare_teacher(
            registry.get("teachers", cell.teacher).factory, cell.teacher, windows, seed=cell.seed,
            cfg=cell.teacher_cfg, cache_dir=ctx.cache_dir, options=dict(cell.teacher_options),
            checkpoint=cell.teacher_checkpoint, progress=progress, device=ctx.device)
        record = _train_cell(cell, ctx, registry, windows, prepared, base, progress)
    except Exception as exc:  # a failing cell is recorded; the grid goes on
        record = {**base, "status": "failed", "error": _one_line(exc), "traceback": traceback.format_exc(limit=8)}
        if key is None:
            record["key"] = skip_key(cell).replace("skip-", "fail-")
    record["wall_time_s"] = time.perf_counter() - t_start
    ctx.results.put(record)
    stale = ctx.results.path(skip_key(cell))
    if record["status"] == "ok" and stale.exists():
        stale.unlink(missing_ok=True)
    return record


def _train_cell(cell: CellSpec, ctx: RunContext, registry: Registry, windows: EEGWindows,
                prepared: PreparedTeacher, base: dict[str, Any], progress: Any) -> dict[str, Any]:
    from eegkd_bench.cost import cost_report

    spec = windows.input_spec()
    torch.manual_seed(cell.seed)
    np.random.seed(cell.seed)
    student = registry.get("students", cell.student).factory(spec, **dict(cell.student_options))
    distiller: Distiller = registry.get("distillers", cell.distiller).factory(
        student=student, teacher=prepared.info, spec=spec, **dict(cell.distiller_options))
    distiller.to(ctx.device)
    names = teacher_output_names(distiller, prepared.info)
    X_tr, y_tr = windows.part("train")
    X_va, y_va = windows.part("val")
    X_te, y_te = windows.part("test")
    y_tr_t = torch.from_numpy(np.asarray(y_tr, dtype=np.int64)).to(ctx.device)
    # Augmented inputs differ from the cached clean ones, so the teacher then runs online on each batch.
    online = cell.student_cfg.augment != "none" or not ctx.teacher_cache
    use_cache = reads_output_cache(cell, distiller, ctx.teacher_cache)
    outputs = None
    if names and (use_cache or needs_warmup(distiller)):  # a warm-up without the cache computes them in memory
        outputs = teacher_outputs(prepared, X_tr, names, ctx.cache_dir if use_cache else None,
                                  data_checksum=windows.checksum)
    if outputs is not None and needs_warmup(distiller):
        whole = outputs.arrays
        distiller.on_train_start(
            TeacherBatch(
                logits=_as_tensor(whole.get("logits")),
                features={k: _as_tensor(v) for k, v in whole.items() if k not in ("logits", "embedding")},
                embedding=_as_tensor(whole.get("embedding")),
            ).to(ctx.device),
            y_tr_t,
        )
    else:
        distiller.on_train_start(None, y_tr_t)
    source = OnlineTeacher(prepared.model, names) if online else (outputs or TeacherOutputs({}))
    result = fit(distiller, X_tr, y_tr, X_va, y_va, windows.n_classes, cell.student_cfg, seed=cell.seed,
                 teacher=source, progress=progress)
    test = evaluate(distiller, X_te, y_te, windows.n_classes)  # the only time the test split is touched
    deployed = distiller.deployed()
    cost = cost_report(deployed, spec, latency=ctx.latency)
    tcost = _teacher_cost(prepared, spec, ctx)
    return {
        **base,
        "status": "ok",
        "error": "",
        "metrics": test,
        "val_metrics": result.best_val,
        "teacher_metrics": prepared.test_metrics,
        "teacher_val_metrics": prepared.val_metrics,
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
        "torch_threads": torch.get_num_threads(),
        "train_time_s": result.train_time_s,
        "best_epoch": result.best_epoch,
        "epochs": len(result.history),
        "history": [{"epoch": h["epoch"], "loss": h["loss"], "val_key": h["val"].get(KEY_METRIC[task_of(windows.n_classes)])}
                    for h in result.history],
        "distiller_report": distiller.report(),
        "hparams": distiller.hparams,
    }


def needs_warmup(distiller: Distiller) -> bool:
    """Whether the distiller overrides ``on_train_start`` (then it needs the whole train set's teacher outputs)."""
    return type(distiller).on_train_start is not Distiller.on_train_start


def _as_tensor(arr: np.ndarray | None) -> torch.Tensor | None:
    if arr is None:
        return None
    return torch.from_numpy(np.array(arr))  # a private copy: memmaps are read-only


def _teacher_cost(prepared: PreparedTeacher, spec: Any, ctx: RunContext) -> dict[str, Any]:
    """Teacher params / FLOPs / latency, measured once per fine-tuned teacher and cached beside it."""
    import json

    from eegkd_bench.cost import cost_report

    path = ctx.cache_dir / "teachers" / prepared.key / f"cost-{int(ctx.latency)}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    cost = cost_report(prepared.model, spec, latency=ctx.latency)
    cost = {k: v for k, v in cost.items() if isinstance(v, (int, float, type(None)))}
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cost))
        os.replace(tmp, path)
    except OSError:
        pass
    return cost


def _base_record(cell: CellSpec) -> dict[str, Any]:
    return {
        "key": None,
        "schema_version": SCHEMA_VERSION,
        "status": None,
        "error": "",
        "dataset": cell.dataset,
        "data_kind": None,
        "data_checksum": None,
        "split_protocol": SPLIT_PROTOCOL,
        "task": None,
        "n_classes": None,
        "teacher": cell.teacher,
        "teacher_init": None,
        "student": cell.student,
        "distiller": cell.distiller,
        "seed": cell.seed,
        "preset": cell.preset,
        "config": {
            "teacher_cfg": cell.teacher_cfg.as_dict(), "student_cfg": cell.student_cfg.as_dict(),
            "teacher_options": dict(cell.teacher_options), "student_options": dict(cell.student_options),
            "distiller_options": dict(cell.distiller_options),
        },
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": f"{socket.gethostname()} ({platform.machine()})",
    }


def skipped_record(cell: CellSpec, reason: str) -> dict[str, Any]:
    return {**_base_record(cell), "key": skip_key(cell), "status": "skipped", "error": reason, "data_kind": "real"}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(exc).__name__}: {msg}" if not isinstance(exc, UserError) else msg


# ---------------------------------------------------------------- worker side
@dataclass
class _WorkerState:
    """Per worker process: the progress queue, and how to tell that the runner is gone."""

    queue: Any = None
    parent: int = 0  # the runner, or the fork server the runner started
    runner_pid: int = 0

    def runner_gone(self) -> bool:
        if os.getppid() != self.parent:
            return True
        try:
            os.kill(self.runner_pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


_WORKER = _WorkerState()


def usable_cores() -> int:
    """CPU cores this process may run on (respects affinity masks and cgroup-pinned sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _worker_init(queue: Any, threads: int, runner_pid: int) -> None:
    # A fixed share, not one that grows into idle cores: the thread count changes the order of
    # floating-point sums, so a cell's numbers would depend on what ran beside it.
    torch.set_num_threads(threads)
    _WORKER.queue = queue
    _exit_with_parent(runner_pid)
    warnings.filterwarnings("ignore", category=UserWarning, module="eegkd_bench.plugins")


def _worker_task(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` in a worker, unless the runner that queued it is gone."""
    if _WORKER.runner_gone():
        os._exit(3)  # tasks queued before the runner died: nobody will read their results
    return fn(*args)


def _exit_with_parent(runner_pid: int) -> None:
    """A worker whose runner was killed (even with SIGKILL) stops instead of running on as an orphan."""
    import threading

    _WORKER.parent, _WORKER.runner_pid = os.getppid(), runner_pid

    def watch() -> None:
        while True:
            time.sleep(0.25)
            if _WORKER.runner_gone():
                os._exit(3)

    threading.Thread(target=watch, name="eegkd-parent-watch", daemon=True).start()


_WORKER_WINDOWS: dict[tuple[str, str | None], EEGWindows] = {}


def _worker_windows(cell: CellSpec, ctx: RunContext, registry: Registry) -> EEGWindows:
    """Windows of a dataset, loaded once per worker process (workers run many cells of one dataset)."""
    key = (cell.dataset, ctx.data_dir)
    if key not in _WORKER_WINDOWS:
        _WORKER_WINDOWS.clear()  # keep at most one dataset in memory per worker
        _WORKER_WINDOWS[key] = load_dataset(registry, cell.dataset, ctx.data_dir, ctx.cache_dir)
    return _WORKER_WINDOWS[key]


def _worker_run(cell: CellSpec, ctx: RunContext) -> dict[str, Any]:
    from eegkd_bench.plugins import get_registry

    registry = get_registry()
    try:
        windows = _worker_windows(cell, ctx, registry)
    except Exception:
        windows = None  # execute_cell loads it again and records the failure
    record = execute_cell(cell, ctx, registry, windows, progress=_queue_progress(cell))
    return {k: record.get(k) for k in ("key", "status", "error", "dataset", "distiller", "student", "seed", "metrics")}


# ------------------------------------------------------------------- the grid
class Grid:
    """Plans and runs a grid of cells into a result store."""

    def __init__(self, registry: Registry, ctx: RunContext, reporter: Any) -> None:
        self.registry = registry
        self.ctx = ctx
        self.reporter = reporter

    def plan(self, datasets: list[str], teacher: str, students: list[str], methods: list[str], seeds: tuple[int, ...],
             preset: Preset, *, teacher_checkpoint: str | None = None, retry_failed: bool = False,
             teacher_options: dict[str, Any] | None = None) -> GridPlan:
        plan = GridPlan(cells=[])
        init = teacher_init_of(teacher_checkpoint)
        for ds in datasets:
            cells = [
                CellSpec(ds, teacher, s, m, seed, preset.name, preset.teacher_cfg, preset.student_cfg,
                         teacher_checkpoint, tuple(sorted((teacher_options or {}).items())))
                for seed in seeds for s in students for m in methods
            ]
            try:
                self.reporter.message(f"loading dataset {ds} …")
                windows = load_dataset(self.registry, ds, self.ctx.data_dir, self.ctx.cache_dir)
            except DataUnavailable as exc:
                plan.skipped.extend((c, f"skipped: {ds} {exc}") for c in cells)
                continue
            except UserError as exc:
                plan.skipped.extend((c, f"skipped: {exc}") for c in cells)
                continue
            plan.windows[ds] = windows
            for c in cells:
                rec = self.ctx.results.get(cell_key(c, windows, init))
                if rec is None or rec.get("status") == "skipped" or (retry_failed and rec.get("status") == "failed"):
                    plan.cells.append(c)
                else:
                    self.reporter.already_done(c, rec)
        return plan

    def run(self, plan: GridPlan, *, jobs: int = 1, executor: str = "local", slurm: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        for cell, reason in plan.skipped:
            self.ctx.results.put(skipped_record(cell, reason))
            self.reporter.cell_done(cell, {"status": "skipped", "error": reason})
        if not plan.cells:
            return []
        plan.cached_outputs = preflight(self.registry, plan.cells, plan.windows, teacher_cache=self.ctx.teacher_cache)
        if executor in ("slurm", "submitit-local"):
            from eegkd_bench.executors import run_submitit

            return run_submitit(plan.cells, self.ctx, executor=executor, options=slurm or {}, reporter=self.reporter,
                                outputs=teacher_output_unions(plan.cells, plan.cached_outputs))
        if jobs <= 1:
            self._prepare_teachers(plan)
            records = []
            for cell in plan.cells:
                self.reporter.cell_start(cell)
                rec = execute_cell(cell, self.ctx, self.registry, plan.windows[cell.dataset], self.reporter.progress)
                self.reporter.cell_done(cell, rec)
                records.append(rec)
            return records
        return self._run_pool(plan, jobs)

    def _prepare_teachers(self, plan: GridPlan) -> None:
        for cell, outputs in _teacher_cells(plan.cells, plan.cached_outputs):
            self.reporter.teacher_start(cell)
            try:
                _prepare_for(cell, self.ctx, self.registry, plan.windows[cell.dataset], self.reporter.progress,
                             outputs)
            except UserError:
                raise
            except Exception:
                pass  # each of its cells will fail and record why
            self.reporter.teacher_done(cell)

    def _run_pool(self, plan: GridPlan, jobs: int) -> list[dict[str, Any]]:
        """Teachers first (one task per distinct teacher), then the cells, on ``jobs`` worker processes.

        Workers fork from a server that imported torch once (spawn where fork servers do not
        exist) and each uses ``cores // jobs`` threads, so a cell's numbers do not depend on timing.
        """
        ctx_mp = _pool_context()
        queue = ctx_mp.Queue()  # not a Manager: no extra server process to orphan
        threads = max(1, usable_cores() // jobs)
        records: list[dict[str, Any]] = []

        def submit(fn: Callable[..., Any], *args: Any) -> Future:
            return pool.submit(_worker_task, fn, *args)

        with ProcessPoolExecutor(jobs, mp_context=ctx_mp, initializer=_worker_init,
                                 initargs=(queue, threads, os.getpid())) as pool:
            teachers = {submit(_worker_prepare, cell, self.ctx, outputs): cell
                        for cell, outputs in _teacher_cells(plan.cells, plan.cached_outputs)}
            for cell in teachers.values():
                self.reporter.teacher_start(cell)
            self._drain(teachers, queue, lambda cell, fut: self.reporter.teacher_done(cell))

            def finished(cell: CellSpec, fut: Future) -> None:
                try:
                    rec = fut.result()
                except UserError:
                    raise  # e.g. the results disk is full: stop the grid with its one-line reason
                except Exception as exc:  # the worker died (killed, out of memory)
                    rec = self._record_worker_death(cell, plan, exc)
                self.reporter.cell_done(cell, rec)
                records.append(rec)

            cells = {submit(_worker_run, cell, self.ctx): cell for cell in plan.cells}
            self._drain(cells, queue, finished)
        return records

    def _drain(self, pending: dict[Future, CellSpec], queue: Any, on_done: Callable[[CellSpec, Future], None]) -> None:
        pending = dict(pending)
        while pending:
            done, _ = wait(list(pending), timeout=0.5, return_when=FIRST_COMPLETED)
            while not queue.empty():
                self.reporter.progress(queue.get_nowait())
            for fut in done:
                on_done(pending.pop(fut), fut)

    def _record_worker_death(self, cell: CellSpec, plan: GridPlan, exc: BaseException) -> dict[str, Any]:
        windows = plan.windows[cell.dataset]
        key = cell_key(cell, windows, teacher_init_of(cell.teacher_checkpoint))
        existing = self.ctx.results.get(key)
        if existing is not None and existing.get("status") == "ok":
            return existing  # it finished before the worker died: never duplicate or overwrite
        rec = {**_base_record(cell), "key": key, "status": "failed", "error": f"worker died: {_one_line(exc)}",
               "data_kind": windows.kind, "data_checksum": windows.checksum, "task": windows.task,
               "n_classes": windows.n_classes}
        self.ctx.results.put(rec)
        return rec


def _pool_context() -> Any:
    """A fork server that has imported torch and this module, so each worker starts in milliseconds."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["eegkd_bench.runner"])  # imports only: no torch thread pool exists to fork
    return ctx


def start_pool_server() -> None:
    """Start the workers' fork server now, so its imports overlap the runner's data loading and planning."""
    import multiprocessing.forkserver

    if _pool_context().get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()


def _teacher_group(cell: CellSpec) -> tuple[Any, ...]:
    """What identifies a cell's fine-tuned teacher."""
    return (cell.dataset, cell.teacher, cell.seed, cell.teacher_options, cell.teacher_checkpoint, cell.teacher_cfg)


def teacher_output_unions(cells: Iterable[CellSpec], cached_outputs: dict[CellSpec, frozenset[str]],
                          ) -> dict[CellSpec, frozenset[str]]:
    """Per cell, the union of the cached teacher outputs of every cell that shares its teacher."""
    cells = list(cells)
    union = {_teacher_group(rep): names for rep, names in _teacher_cells(cells, cached_outputs)}
    return {cell: union[_teacher_group(cell)] for cell in cells}


def _teacher_cells(cells: Iterable[CellSpec], cached_outputs: dict[CellSpec, frozenset[str]] | None = None,
                   ) -> list[tuple[CellSpec, frozenset[str]]]:
    """One representative cell per distinct fine-tuned teacher, with the union of the teacher
    outputs its cells read from the cache (computed together, in one pass over the training split)."""
    out: dict[tuple[Any, ...], tuple[CellSpec, frozenset[str]]] = {}
    for cell in cells:
        k = _teacher_group(cell)
        rep, names = out.get(k, (cell, frozenset()))
        out[k] = (rep, names | (cached_outputs or {}).get(cell, frozenset()))
    return list(out.values())


def _prepare_for(cell: CellSpec, ctx: RunContext, registry: Registry, windows: EEGWindows,
                 progress: Callable[[dict[str, Any]], None] | None, outputs: frozenset[str] = frozenset(),
                 ) -> PreparedTeacher:
    """Fine-tune (or load) the cell's teacher, then fill the teacher-output cache with ``outputs``."""
    prepared = prepare_teacher(registry.get("teachers", cell.teacher).factory, cell.teacher, windows, seed=cell.seed,
                               cfg=cell.teacher_cfg, cache_dir=ctx.cache_dir, options=dict(cell.teacher_options),
                               checkpoint=cell.teacher_checkpoint, progress=progress, device=ctx.device)
    if outputs:
        teacher_outputs(prepared, windows.part("train")[0], set(outputs), ctx.cache_dir,
                        data_checksum=windows.checksum)
    return prepared


def _worker_prepare(cell: CellSpec, ctx: RunContext, outputs: frozenset[str] = frozenset()) -> None:
    from eegkd_bench.plugins import get_registry

    registry = get_registry()
    windows = _worker_windows(cell, ctx, registry)
    try:
        _prepare_for(cell, ctx, registry, windows, _queue_progress(cell), outputs)
    except UserError:
        raise
    except Exception:
        pass  # each of its cells will fail and record why


def _queue_progress(cell: CellSpec) -> Callable[[dict[str, Any]], None]:
    def progress(event: dict[str, Any]) -> None:
        if _WORKER.queue is not None:
            try:
                _WORKER.queue.put_nowait({**event, "cell": cell.label(), "pid": os.getpid()})
            except Exception:
                pass

    return progress


def make_context(results_dir: str | Path, cache_dir: str | Path | None, data_dir: str | None, *, latency: bool = True,
                 device: str | None = "cpu", resolve_device_here: bool = True) -> RunContext:
    """Where results, caches and data live, and where models train (``device``: auto, cpu, cuda[:N], mps).

    ``resolve_device_here=False`` (cluster executors): the submitting node may have no GPU, so
    each job resolves ``device`` on the node it lands on.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create cache directory {cache}: {exc.strerror}; pass a writable --cache-dir") from None
    request = (device or "auto").strip().lower() or "auto"
    return RunContext(ResultStore(results_dir), cache, data_dir or os.environ.get("EEGKD_DATA"), latency,
                      device=resolve_device(request) if resolve_device_here else "cpu", device_request=request)
