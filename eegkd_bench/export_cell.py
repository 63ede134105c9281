"""Ship a finished cell: its deployed student as ONNX (fp32 and int8) with a JSON sidecar.

:func:`export_cell` rebuilds the deployed student from the weights kept with the cell
(:mod:`eegkd_bench.weights`), checks parity on the cell's test windows, quantizes to int8 with
its training windows, and writes ``<out>/<key>/`` in a temporary folder renamed into place only
when complete. :func:`export_grid` does it for every finished cell of a run (``run --export``)
and stores the figures, with the teacher's fp32 figures, in each record.
"""
from __future__ import annotations

import dataclasses
import json
import platform
import socket
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegkd_bench.api import EEGWindows
from eegkd_bench.data.catalog import make_dataset
from eegkd_bench.device import cpu_info
from eegkd_bench.errors import UserError, one_line
from eegkd_bench.registry import Registry
from eegkd_bench.results import ResultStore
from eegkd_bench.storage import atomic_directory, atomic_write_text, file_sha256
from eegkd_bench.weights import rebuild_deployed


if TYPE_CHECKING:
    from eegkd_bench.context import RunContext
    from eegkd_bench.identity import CellSpec

FP32_FILE, INT8_FILE, SIDECAR_FILE = "student.onnx", "student.int8.onnx", "student.json"
#: Test windows of the teacher's parity check (its export is a reference figure, not a shipped file).
TEACHER_PARITY_WINDOWS = 32


# ------------------------------------------------------------------ selection
def cell_label(record: dict[str, Any]) -> str:
    """``key (dataset · method → student · seed N, preset P)``."""
    return (f"{record.get('key')} ({record.get('dataset')} · {record.get('distiller')} → {record.get('student')} · "
            f"seed {record.get('seed')}, preset {record.get('preset')})")


def find_cell(store: ResultStore, key: str | None = None, **selector: Any) -> dict[str, Any]:
    """The one finished cell given by ``key`` (or a unique key prefix) or by ``dataset/distiller/student/seed``."""
    wanted = {k: v for k, v in selector.items() if v is not None}
    if not key and not wanted:
        raise UserError("say which cell to export: a cell key, or --dataset/--method/--student/--seed")
    records = [r for r in store.records() if r.get("key")]
    if key:
        matches = [r for r in records if r["key"] == key] or [r for r in records if r["key"].startswith(key)]
        what = f"key {key!r}"
    else:
        matches = records
        what = ", ".join(f"{'method' if k == 'distiller' else k}={v}" for k, v in wanted.items())
    matches = [r for r in matches if all(str(r.get(k)) == str(v) for k, v in wanted.items())]
    if not key:  # a selection means the finished cells, unless only unfinished ones match
        matches = [r for r in matches if r.get("status") == "ok"] or matches
    if not matches:
        raise UserError(f"no cell with {what} in {store.root}; list the cells with: eegkd-bench results "
                        f"--results {store.root}")
    if len(matches) > 1:
        shown = "; ".join(cell_label(r) for r in matches[:5]) + ("; ..." if len(matches) > 5 else "")
        raise UserError(f"{len(matches)} cells match {what}: {shown}; pass one key or narrow the selection")
    record = matches[0]
    if record.get("status") != "ok":
        raise UserError(f"cell {cell_label(record)} is {record.get('status')} ({record.get('error') or 'no error'}); "
                        "only finished cells can be exported")
    return record


def load_cell_weights(store: ResultStore, record: dict[str, Any]) -> dict[str, Any]:
    """The stored weights of a finished cell, or a one-line error saying why there are none."""
    payload = store.get_weights(record["key"])
    if payload is None:
        raise UserError(f"cell {cell_label(record)} has no stored student weights (it ran before weights were kept); "
                        f"delete {store.path(record['key'])} and run the same eegkd-bench run command to train it again")
    return payload


def dataset_preprocessing(registry: Registry, name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The preprocessing a dataset plugin declares, built with ``options`` (empty when it declares none)."""
    dataset = make_dataset(registry, name, options)
    return dict(getattr(dataset, "preprocessing", dict)() or {})


# --------------------------------------------------------------------- export
def export_cell(record: dict[str, Any], payload: dict[str, Any], windows: EEGWindows, registry: Registry,
                out_dir: Path, *, preprocessing: dict[str, Any] | None = None) -> tuple[dict[str, Any], Path]:
    """Export a finished cell into ``out_dir/<key>/``; returns the record's ``export`` figures and the folder.

    Parity and int8 metrics use the cell's test windows, int8 calibration its training windows.
    """
    from eegkd_bench.export import require_deploy

    require_deploy()
    key = record["key"]
    what = f"{record['student']} of cell {key} ({record['distiller']})"
    if record.get("data_checksum") and windows.checksum != record["data_checksum"]:
        raise UserError(f"dataset {windows.name} changed since cell {key} ran (checksum {windows.checksum[:12]} vs "
                        f"{str(record['data_checksum'])[:12]}); export needs the windows it was tested on")
    model = rebuild_deployed(payload, registry, what=what)
    if dataclasses.asdict(windows.input_spec()) != payload["spec"]:
        raise UserError(f"{what}: built for input {payload['spec']}, the dataset now gives "
                        f"{dataclasses.asdict(windows.input_spec())}")
    folder = Path(out_dir) / key
    try:
        with atomic_directory(folder) as tmp:
            figures = _write_bundle(tmp, record, payload, windows, model, what, preprocessing or {})
    except OSError as exc:
        raise UserError(f"cannot write {folder} ({exc.strerror or exc}); pass a writable --out folder") from None
    return figures, folder


def _write_bundle(tmp: Path, record: dict[str, Any], payload: dict[str, Any], windows: EEGWindows, model: Any,
                  what: str, preprocessing: dict[str, Any]) -> dict[str, Any]:
    """Write the fp32 file, the int8 file and the sidecar into ``tmp``; returns the record's figures."""
    from eegkd_bench import export as ex
    from eegkd_bench.metrics import compute_metrics

    spec = windows.input_spec()
    X_te, y_te = windows.part("test")
    key_metric = record.get("key_metric") or next(iter(record.get("metrics") or {}), "balanced_accuracy")
    fp32, logits = ex.fp32_figures(model, spec, tmp / FP32_FILE, X_te, what=what)
    fp32_metrics = compute_metrics(y_te, logits, windows.n_classes)
    quant = ex.quantize_int8(tmp / FP32_FILE, tmp / INT8_FILE, ex.calibration_windows(windows.part("train")[0]))
    sess8 = ex.session(tmp / INT8_FILE)
    int8_metrics = compute_metrics(y_te, ex.onnx_logits(sess8, X_te), windows.n_classes)
    int8 = {"size_kb": ex.size_kb(tmp / INT8_FILE), **ex.latency_ms(sess8, spec), "metrics": int8_metrics,
            "key_metric_drop": float(fp32_metrics[key_metric] - int8_metrics[key_metric])}
    figures = {"opset": ex.OPSET, "fp32": fp32, "int8": int8}
    sidecar = _sidecar(record, payload, windows, figures, fp32_metrics, quant, key_metric, tmp, preprocessing,
                       n_test=len(X_te))
    (tmp / SIDECAR_FILE).write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
    return figures


def _sidecar(record: dict[str, Any], payload: dict[str, Any], windows: EEGWindows, figures: dict[str, Any],
             fp32_metrics: dict[str, float], quant: dict[str, Any], key_metric: str, folder: Path,
             preprocessing: dict[str, Any], n_test: int) -> dict[str, Any]:
    from eegkd_bench import export as ex
    from eegkd_bench.results import versions

    c, t = windows.n_channels, windows.n_samples
    simulated = windows.kind == "simulated"
    return {
        "format": "eegkd-bench ONNX export", "format_version": 1,
        "data_kind": windows.kind,
        **({"warning": "SIMULATED data: this model was trained and tested on simulated EEG"} if simulated else {}),
        "files": {
            "fp32": {"file": FP32_FILE, "sha256": file_sha256(folder / FP32_FILE), **figures["fp32"]},
            "int8": {"file": INT8_FILE, "sha256": file_sha256(folder / INT8_FILE),
                     **{k: v for k, v in figures["int8"].items() if k != "metrics"}, "quantization": quant},
        },
        "opset": ex.OPSET,
        "input": {"name": ex.INPUT, "shape": ["batch", c, t], "dtype": "float32", "layout": "(batch, channels, samples)",
                  "channels": list(windows.ch_names), "sfreq_hz": float(windows.sfreq),
                  "window_s": t / float(windows.sfreq), "n_samples": t,
                  "preprocessing": {"declared": bool(preprocessing), **preprocessing}},
        "output": {"name": ex.OUTPUT, "shape": ["batch", windows.n_classes], "dtype": "float32",
                   "meaning": "unnormalised class scores: argmax is the class, softmax the probabilities"},
        "classes": list(windows.class_names),
        "parity": {"split": "test", "windows": n_test, "max_abs_diff": figures["fp32"]["max_abs_diff"],
                   "tolerance": ex.PARITY_TOLERANCE, "against": "PyTorch (CPU, eval mode)"},
        "metrics": {"key_metric": key_metric, "split": "test", "record": record.get("metrics"),
                    "onnx_fp32": fp32_metrics, "int8": figures["int8"]["metrics"]},
        "latency": ex.runtime_info(),
        "cell": {k: record.get(k) for k in ("key", "dataset", "teacher", "teacher_init", "student", "distiller", "seed",
                                            "preset", "split_protocol", "task", "config")},
        "model": {"student": payload["student"], "student_options": payload["student_options"],
                  "distiller": payload["distiller"], "distiller_options": payload["distiller_options"]},
        "provenance": {"data_checksum": windows.checksum, "data_notes": windows.notes,
                       "trained_with": record.get("versions"), "trained": record.get("created"),
                       "exported_with": {**versions(), **ex.deploy_versions()},
                       "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "host": f"{socket.gethostname()} ({platform.machine()})", "cpu": cpu_info()},
    }


# ------------------------------------------------------------------ run --export
def teacher_figures(prepared: Any, windows: EEGWindows, cache_dir: Path) -> dict[str, float]:
    """The fine-tuned teacher's fp32 ONNX figures (same runtime as the students'), cached beside the teacher."""
    from eegkd_bench import export as ex

    path = Path(cache_dir) / "teachers" / prepared.key / f"export-fp32-opset{ex.OPSET}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    X = windows.part("test")[0][:TEACHER_PARITY_WINDOWS]
    with tempfile.TemporaryDirectory() as tmp:
        figures, _ = ex.fp32_figures(prepared.model, windows.input_spec(), Path(tmp) / "teacher.onnx", X,
                                     what=f"teacher {prepared.name}")
    try:
        atomic_write_text(path, json.dumps(figures), sync=False)
    except OSError:
        pass  # measured again next time
    return figures


def export_grid(cells: list[CellSpec], ctx: RunContext, registry: Registry, windows: dict[str, EEGWindows],
                report: Any = None) -> list[str]:
    """Export every finished cell of ``cells`` that has no export figures yet into ``<results>/exports/``.

    Stores ``export`` and ``teacher_export`` in each record (``export_error`` when it fails);
    returns one line per failed cell.
    """
    from eegkd_bench.cell import prepare_cell_teacher
    from eegkd_bench.identity import cell_key

    failures: list[str] = []
    for cell in cells:
        if cell.dataset not in windows:
            continue
        w = windows[cell.dataset]
        record = ctx.results.get(cell_key(cell, w))
        if not record or record.get("status") != "ok" or ("export" in record and "teacher_export" in record):
            continue
        try:
            figures, folder = export_cell(record, load_cell_weights(ctx.results, record), w, registry,
                                          ctx.results.root / "exports",
                                          preprocessing=dataset_preprocessing(registry, cell.dataset,
                                                                              dict(cell.dataset_options)))
            teacher = teacher_figures(prepare_cell_teacher(cell, ctx, registry, w), w, ctx.cache_dir)
        except Exception as exc:  # one cell that cannot ship does not stop the others
            failures.append(f"{cell.label()}: {one_line(exc)}")
            ctx.results.put({**record, "export_error": one_line(exc)})
            continue
        record = {k: v for k, v in record.items() if k != "export_error"}
        ctx.results.put({**record, "export": figures, "teacher_export": {"fp32": teacher}})
        if report is not None:
            report(f"exported {cell.label()}: {figures['fp32']['size_kb']:.1f} KB fp32 / "
                   f"{figures['int8']['size_kb']:.1f} KB int8, {figures['fp32']['latency_ms']:.3f} ms → {folder}")
    return failures
