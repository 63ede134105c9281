"""The trained weights of a finished cell's deployed model, kept so the model can be rebuilt and shipped later.

Every finished cell stores the weights of its deployed model (never the router, probe or
teacher) as ``<results>/weights/<key>.pt``, with what rebuilds it: the student and distiller
names and options, the input spec and the teacher layout the distiller was built for.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from eegkd_bench.api import Distiller, InputSpec, TeacherInfo
from eegkd_bench.errors import UserError
from eegkd_bench.registry import Registry
from eegkd_bench.results import ResultStore
from eegkd_bench.storage import file_sha256

WEIGHTS_FORMAT = 1


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


def save_weights(store: ResultStore, key: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Store a finished cell's deployed-model payload (:func:`weights_payload`); returns the record's
    ``student_weights`` entry."""
    path = store.put_weights(key, payload)
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
