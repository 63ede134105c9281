"""Ship a finished cell: keep its deployed student's weights, rebuild it later, export it with a sidecar.

Every finished cell stores the weights of its deployed model (never the router, probe or
teacher) as ``<results>/weights/<key>.pt`` with what rebuilds it: the student and distiller
names and options, the input spec and the teacher layout the distiller was built for.
:func:`export_cell` turns that into a folder holding the fp32 ONNX file, its int8 twin and a
JSON sidecar, written in a temporary folder that is renamed into place only when complete.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import socket
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from eegkd_bench.api import Distiller, EEGWindows, InputSpec, TeacherInfo, UserError
from eegkd_bench.registry import Registry
from eegkd_bench.results import ResultStore

WEIGHTS_FORMAT = 1
FP32_FILE, INT8_FILE, SIDECAR_FILE = "student.onnx", "student.int8.onnx", "student.json"


# ------------------------------------------------------------------- weights
def weights_payload(distiller: Distiller, *, student: str, student_options: dict[str, Any], distiller_name: str,
                    spec: InputSpec, teacher: TeacherInfo | None) -> dict[str, Any]:
    """Everything that rebuilds ``distiller.deployed()`` with its trained weights (``torch.load``-safe)."""
    deployed = distiller.deployed()
    return {
        "format": WEIGHTS_FORMAT,
        "student": student, "student_options": dict(student_options),
        "distiller": distiller_name, "distiller_options": dict(distiller.hparams),
        "spec": dataclasses.asdict(spec),
        "teacher_info": None if teacher is None else {
            "name": teacher.name, "layer_names": list(teacher.layer_names), "n_classes": teacher.n_classes,
            "feature_shapes": {k: list(v) for k, v in teacher.feature_shapes.items()}},
        "state_dict": {k: v.detach().cpu().clone() for k, v in deployed.state_dict().items()},
    }


def save_weights(store: ResultStore, key: str, distiller: Distiller, **identity: Any) -> dict[str, Any]:
    """Store a finished cell's deployed weights; returns the record's ``student_weights`` entry."""
    from eegkd_bench.data.cache import file_sha256

    path = store.put_weights(key, weights_payload(distiller, **identity))
    return {"path": str(path.relative_to(store.root)), "sha256": file_sha256(path),
            "size_kb": path.stat().st_size / 1024.0}


def rebuild_deployed(payload: dict[str, Any], registry: Registry, *, what: str) -> nn.Module:
    """The deployed model of a stored payload, with its trained weights, in eval mode."""
    if payload.get("format") != WEIGHTS_FORMAT:
        raise UserError(f"{what}: stored weights have format {payload.get('format')!r}, this eegkd-bench reads "
                        f"format {WEIGHTS_FORMAT}; use the eegkd-bench version that ran the cell")
    spec = InputSpec(**payload["spec"])
    info = payload.get("teacher_info")
    teacher = None if info is None else TeacherInfo(
        info["name"], tuple(info["layer_names"]), {k: tuple(v) for k, v in info["feature_shapes"].items()},
        int(info["n_classes"]))
    try:
        student = registry.get("students", payload["student"]).factory(spec, **payload["student_options"])
        distiller = registry.get("distillers", payload["distiller"]).factory(
            student=student, teacher=teacher, spec=spec, **payload["distiller_options"])
        deployed = distiller.deployed()
        deployed.load_state_dict(payload["state_dict"], strict=True)
    except UserError as exc:
        raise UserError(f"{what}: cannot rebuild the deployed student: {exc}") from None
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{what}: the stored weights do not fit the installed {payload['student']} / "
                        f"{payload['distiller']} plugins ({first}); use the plugin versions that ran the cell") from None
    return deployed.eval()


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


def dataset_preprocessing(registry: Registry, name: str) -> dict[str, Any]:
    """The preprocessing a dataset plugin declares (empty when it declares none)."""
    dataset = registry.get("datasets", name).factory()
    return dict(getattr(dataset, "preprocessing", dict)() or {})


# --------------------------------------------------------------------- export
def export_cell(record: dict[str, Any], payload: dict[str, Any], windows: EEGWindows, registry: Registry,
                out_dir: Path, *, preprocessing: dict[str, Any] | None = None) -> tuple[dict[str, Any], Path]:
    """Export a finished cell into ``out_dir/<key>/``; returns the record's ``export`` figures and the folder.

    Parity and int8 metrics use the cell's test windows, int8 calibration its training windows.
    """
    from eegkd_bench import export as ex
    from eegkd_bench.metrics import compute_metrics

    ex.require_deploy()
    key = record["key"]
    what = f"{record['student']} of cell {key} ({record['distiller']})"
    if record.get("data_checksum") and windows.checksum != record["data_checksum"]:
        raise UserError(f"dataset {windows.name} changed since cell {key} ran (checksum {windows.checksum[:12]} vs "
                        f"{str(record['data_checksum'])[:12]}); export needs the windows it was tested on")
    model = rebuild_deployed(payload, registry, what=what)
    spec = windows.input_spec()
    if dataclasses.asdict(spec) != payload["spec"]:
        raise UserError(f"{what}: built for input {payload['spec']}, the dataset now gives {dataclasses.asdict(spec)}")
    X_te, y_te = windows.part("test")
    key_metric = record.get("key_metric") or next(iter(record.get("metrics") or {}), "balanced_accuracy")
    with publishing(out_dir / key) as tmp:
        fp32, logits = ex.fp32_figures(model, spec, tmp / FP32_FILE, X_te, what=what)
        fp32_metrics = compute_metrics(y_te, logits, windows.n_classes)
        calibration = ex.calibration_windows(windows.part("train")[0])
        quant = ex.quantize_int8(tmp / FP32_FILE, tmp / INT8_FILE, calibration)
        sess8 = ex.session(tmp / INT8_FILE)
        int8_metrics = compute_metrics(y_te, ex.onnx_logits(sess8, X_te), windows.n_classes)
        int8 = {"size_kb": ex.size_kb(tmp / INT8_FILE), **ex.latency_ms(sess8, spec), "metrics": int8_metrics,
                "key_metric_drop": float(fp32_metrics[key_metric] - int8_metrics[key_metric])}
        figures = {"opset": ex.OPSET, "fp32": fp32, "int8": int8}
        sidecar = _sidecar(record, payload, windows, figures, fp32_metrics, quant, key_metric, tmp,
                           preprocessing or {}, n_test=len(X_te))
        (tmp / SIDECAR_FILE).write_text(json.dumps(sidecar, indent=1, default=_json_default), encoding="utf-8")
    return figures, out_dir / key


def _sidecar(record: dict[str, Any], payload: dict[str, Any], windows: EEGWindows, figures: dict[str, Any],
             fp32_metrics: dict[str, float], quant: dict[str, Any], key_metric: str, folder: Path,
             preprocessing: dict[str, Any], n_test: int) -> dict[str, Any]:
    from eegkd_bench import export as ex
    from eegkd_bench.data.cache import file_sha256
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
                       "host": f"{socket.gethostname()} ({platform.machine()})"},
    }


class publishing:
    """A temporary sibling folder to fill; renamed to ``final`` only when the block succeeds."""

    def __init__(self, final: Path) -> None:
        self.final = Path(final)

    def __enter__(self) -> Path:
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{self.final.name[:16]}-", dir=self.final.parent))
        except OSError as exc:
            raise UserError(f"cannot write to {self.final.parent} ({exc.strerror or exc}); pass a writable --out "
                            "folder") from None
        return self.tmp

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if exc_type is None:
                if self.final.exists():  # replace an earlier export: move it aside, then swap
                    trash = self.final.with_name(f".trash-{self.final.name[:16]}-{uuid.uuid4().hex[:8]}")
                    os.rename(self.final, trash)
                    shutil.rmtree(trash, ignore_errors=True)
                os.rename(self.tmp, self.final)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
