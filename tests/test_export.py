"""ONNX export of finished cells: parity for every student, int8 from training windows, errors, atomicity."""
from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="needs the deploy extra: pip install 'eegkd-bench[deploy]'")
pytest.importorskip("onnxscript", reason="needs the deploy extra: pip install 'eegkd-bench[deploy]'")

from eegkd_bench import export as ex  # noqa: E402
from eegkd_bench.api import (  # noqa: E402
    Availability,
    EEGWindows,
    InputSpec,
    ModelOutput,
    Option,
    TeacherInfo,
    TeacherModel,
    UserError,
)
from eegkd_bench.cli import main  # noqa: E402
from eegkd_bench.export_cell import FP32_FILE, INT8_FILE, SIDECAR_FILE, export_cell, find_cell  # noqa: E402
from eegkd_bench.results import ResultStore  # noqa: E402
from eegkd_bench.weights import save_weights, weights_payload  # noqa: E402

SPEC = InputSpec(n_channels=4, n_samples=400, n_classes=3, sfreq=200.0)  # the shortest window every student takes
# A teacher layout (channels, patches, width) like cbramod-mini's at this input: MiC projects into it.
TEACHER = TeacherInfo("fake-fm", ("layer_1", "layer_2"), {"layer_1": (4, 2, 16), "layer_2": (4, 2, 16)}, 3)
STUDENTS = ("eegnet", "shallowconvnet", "deepconvnet", "eegconformer", "tinytransformer")


def _registry():
    from eegkd_bench.plugins import get_registry

    return get_registry()


# One transformer block has every operator of six; fewer blocks keep the export quick.
OPTIONS = {"eegconformer": {"depth": 1}, "tinytransformer": {"depth": 1}}


def _deployed(student: str, distiller: str, seed: int = 0):
    torch.manual_seed(seed)
    reg = _registry()
    model = reg.get("students", student).factory(SPEC, **OPTIONS.get(student, {}))
    dist = reg.get("distillers", distiller).factory(student=model, teacher=TEACHER, spec=SPEC)
    return dist


@pytest.mark.parametrize("distiller", ["none", "dlink"])
@pytest.mark.parametrize("student", STUDENTS)
def test_every_student_and_mic_student_exports_with_parity(tmp_path, student, distiller):
    """Plain students and their MiC wrappers (DLink's deployed model) give the PyTorch logits in ONNX Runtime."""
    deployed = _deployed(student, distiller).deployed().eval()
    if distiller == "dlink":
        assert type(deployed).__name__ == "MiCStudent"
    X = np.random.default_rng(0).normal(size=(5, SPEC.n_channels, SPEC.n_samples)).astype(np.float32)
    figures, logits = ex.fp32_figures(deployed, SPEC, tmp_path / "m.onnx", X, what=student)
    assert logits.shape == (5, SPEC.n_classes)
    assert figures["max_abs_diff"] <= ex.PARITY_TOLERANCE
    assert figures["size_kb"] > 0 and 0 < figures["latency_ms"] <= figures["latency_p95_ms"]
    import onnx

    assert {o.version for o in onnx.load(str(tmp_path / "m.onnx")).opset_import if o.domain in ("", "ai.onnx")} \
        == {ex.OPSET}


class Bessel(torch.nn.Module):
    def forward(self, x):
        return torch.special.bessel_j0(x).mean(-1)[:, :3]


class NaNCheck(torch.nn.Module):
    def forward(self, x):
        if torch.isnan(x).any():
            raise ValueError("NaN input")
        return x.mean(-1)[:, :3]


@pytest.mark.parametrize("model, expected", [
    (Bessel(), r"operator \S*bessel_j0 has no ONNX translation at opset 18"),
    (NaNCheck(), r"data-dependent Python control flow at test_export\.py:\d+ \(if torch\.isnan\(x\)\.any\(\):\)"),
])
def test_what_cannot_be_exported_is_named(tmp_path, model, expected):
    with pytest.raises(UserError, match=expected) as err:
        ex.to_onnx(model, SPEC, tmp_path / "m.onnx", what="a student")
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)
    assert not (tmp_path / "m.onnx").exists()


def test_parity_above_tolerance_is_an_error():
    ref = np.zeros((2, 3), np.float32)
    assert ex.check_parity(ref, ref + 1e-6, what="m") == pytest.approx(1e-6, rel=1e-3)
    with pytest.raises(UserError, match=r"parity check of m failed: .* 0\.01 > tolerance"):
        ex.check_parity(ref, ref + 0.01, what="m")


# --------------------------------------------------------------------- a finished cell
def _windows() -> EEGWindows:
    rng = np.random.default_rng(1)
    n = 36
    y = np.arange(n) % 3
    X = rng.normal(size=(n, SPEC.n_channels, SPEC.n_samples)).astype(np.float32)
    X += (y[:, None, None] * 0.5).astype(np.float32)
    split = np.array(["train"] * 20 + ["val"] * 8 + ["test"] * 8)
    return EEGWindows("toy-export", X, y.astype(np.int64), np.array([f"s{i // 4}" for i in range(n)]), split, 200.0,
                      ["Fz", "Cz", "Pz", "Oz"], ["a", "b", "c"], "simulated", "toy-v1", notes="simulated toy data")


class ToyDataset:
    name = "toy-export"
    kind = "simulated"

    def availability(self, data_dir=None):
        return Availability(True, "generated")

    def load(self, data_dir=None, cache_dir=None):
        return _windows()

    def preprocessing(self):
        return {"band_pass_hz": [0.3, 75.0], "notch_hz": None, "reference": "average", "resample": None,
                "scaling": "microvolts / 100"}


class PatchTeacher(TeacherModel):
    """A tiny teacher with two (B, C, P, D) layers of 1-s patches."""

    feature_names = ("layer_1", "layer_2")

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.p = spec.n_samples // 200
        self.embed = torch.nn.Linear(200, 16)
        self.mix = torch.nn.Linear(16, 16)
        self.head = torch.nn.Linear(16, spec.n_classes)

    def forward_features(self, x):
        b, c, _ = x.shape
        h1 = torch.tanh(self.embed(x.reshape(b, c, self.p, 200)))
        h2 = torch.tanh(self.mix(h1))
        emb = h2.mean(dim=(1, 2))
        return ModelOutput(self.head(emb), {"layer_1": h1, "layer_2": h2}, emb)


@pytest.fixture
def toy_registry(monkeypatch):
    from eegkd_bench.registry import Entry, Registry

    real = _registry()
    reg = Registry()
    reg.add(Entry("datasets", "toy-export", ToyDataset, "tests"))
    reg.add(Entry("teachers", "patch-teacher", lambda spec, **kw: PatchTeacher(spec), "tests"))
    reg.add(real.get("students", "eegnet"))
    for name in ("none", "dlink"):
        reg.add(real.get("distillers", name))
    monkeypatch.setattr("eegkd_bench.plugins.get_registry", lambda check=True: reg)
    return reg


def _finished_cell(store: ResultStore, key: str, distiller: str = "dlink", *, weights: bool = True, seed: int = 0,
                   status: str = "ok") -> dict:
    from eegkd_bench.metrics import compute_metrics
    from eegkd_bench.training import predict_logits

    dist = _deployed("eegnet", distiller, seed)
    w = _windows()
    X_te, y_te = w.part("test")
    record = {"key": key, "status": status, "error": "" if status == "ok" else "boom", "dataset": "toy-export",
              "data_kind": "simulated", "data_checksum": w.checksum, "student": "eegnet", "distiller": distiller,
              "teacher": "fake-fm", "seed": seed, "preset": "quick", "key_metric": "cohen_kappa",
              "metrics": compute_metrics(y_te, predict_logits(dist.deployed(), X_te), 3), "config": {}}
    if weights:
        record["student_weights"] = save_weights(store, key, weights_payload(
            dist, student="eegnet", student_options={}, distiller_name=distiller, spec=SPEC, teacher=TEACHER))
    store.put(record)
    return record


def test_export_cell_writes_files_sidecar_and_record_figures(tmp_path, toy_registry):
    store = ResultStore(tmp_path / "res")
    rec = _finished_cell(store, "k" * 32)
    assert main(["export", "k" * 8, "--results", str(store.root), "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / rec["key"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([FP32_FILE, INT8_FILE, SIDECAR_FILE])
    side = json.loads((folder / SIDECAR_FILE).read_text())
    assert side["input"]["shape"] == ["batch", 4, 400]
    assert side["input"]["channels"] == ["Fz", "Cz", "Pz", "Oz"]
    assert side["input"]["sfreq_hz"] == 200.0 and side["input"]["window_s"] == 2.0
    assert side["input"]["preprocessing"]["declared"] and side["input"]["preprocessing"]["reference"] == "average"
    assert side["classes"] == ["a", "b", "c"] and side["cell"]["key"] == rec["key"]
    assert side["data_kind"] == "simulated" and "SIMULATED" in side["warning"]
    assert side["opset"] == ex.OPSET and side["parity"]["windows"] == 8
    assert side["parity"]["max_abs_diff"] <= side["parity"]["tolerance"]
    assert side["metrics"]["onnx_fp32"] == pytest.approx(rec["metrics"], abs=1e-9)  # parity, seen in the metrics
    assert side["files"]["int8"]["quantization"]["calibration_split"] == "train"
    assert {"exported_with", "trained_with", "data_checksum"} <= set(side["provenance"])

    stored = store.get(rec["key"])["export"]  # exactly the schema the leaderboard renders
    assert set(stored) == {"opset", "fp32", "int8"}
    assert set(stored["fp32"]) == {"size_kb", "latency_ms", "latency_p95_ms", "max_abs_diff"}
    assert set(stored["int8"]) == {"size_kb", "latency_ms", "latency_p95_ms", "metrics", "key_metric_drop"}
    assert set(stored["int8"]["metrics"]) == set(rec["metrics"])
    assert stored["fp32"]["size_kb"] == pytest.approx((folder / FP32_FILE).stat().st_size / 1024)
    import onnx

    ops = {n.op_type for n in onnx.load(str(folder / INT8_FILE)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # a real int8 graph (tiny models need not be smaller)
    assert stored["int8"]["key_metric_drop"] == pytest.approx(
        side["metrics"]["onnx_fp32"]["cohen_kappa"] - stored["int8"]["metrics"]["cohen_kappa"])


class ScaledToyDataset(ToyDataset):
    """toy-export with a declared option that changes its windows and their checksum."""

    defaults = {"scale": Option(1.0, "amplitude factor")}

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def load(self, data_dir=None, cache_dir=None):
        w = _windows()
        return dataclasses.replace(w, X=w.X * np.float32(self.scale), checksum=f"toy-v1-x{self.scale}")


def test_export_rebuilds_the_dataset_with_the_options_the_cell_ran_with(tmp_path, toy_registry):
    from eegkd_bench.registry import Entry

    toy_registry._entries["datasets"]["toy-export"] = Entry("datasets", "toy-export", ScaledToyDataset, "tests")
    store = ResultStore(tmp_path / "res")
    rec = {**_finished_cell(store, "d" * 32), "data_checksum": "toy-v1-x2.0",
           "config": {"dataset_options": {"scale": 2.0}}}
    store.put(rec)
    assert main(["export", "d" * 8, "--results", str(store.root), "--out", str(tmp_path / "out")]) == 0
    side = json.loads((tmp_path / "out" / rec["key"] / SIDECAR_FILE).read_text())
    assert side["provenance"]["data_checksum"] == "toy-v1-x2.0"
    assert side["cell"]["config"]["dataset_options"] == {"scale": 2.0}


def test_int8_calibration_sees_training_windows_only(tmp_path, toy_registry, monkeypatch):
    from onnxruntime import quantization as q

    seen = []
    real = q.quantize_static

    def spy(model_input, model_output, reader, **kw):
        batches = []
        while (item := reader.get_next()) is not None:
            batches.append(item[ex.INPUT])
        seen.extend(batches)
        reader.items = iter(batches)
        return real(model_input, model_output, reader, **kw)

    monkeypatch.setattr(q, "quantize_static", spy)
    store = ResultStore(tmp_path / "res")
    rec = _finished_cell(store, "c" * 32, distiller="none")
    w = _windows()
    export_cell(rec, store.get_weights(rec["key"]), w, toy_registry, tmp_path / "out")
    train, others = w.part("train")[0], w.X[w.split != "train"]
    assert len(seen) == len(train)
    for x in seen:
        assert np.any(np.all(train == x, axis=(1, 2)))
        assert not np.any(np.all(others == x, axis=(1, 2)))


def test_nothing_half_written_when_parity_fails(tmp_path, toy_registry, monkeypatch):
    store = ResultStore(tmp_path / "res")
    rec = _finished_cell(store, "p" * 32)
    real = ex.onnx_logits
    monkeypatch.setattr(ex, "onnx_logits", lambda sess, X, **kw: real(sess, X, **kw) + 0.5)
    (tmp_path / "out").mkdir()
    assert main(["export", rec["key"], "--results", str(store.root), "--out", str(tmp_path / "out")]) == 2
    assert list((tmp_path / "out").iterdir()) == []
    assert "export" not in store.get(rec["key"])


def test_export_error_cases_are_one_line_exit_2(tmp_path, toy_registry, capsys):
    store = ResultStore(tmp_path / "res")
    res = ["--results", str(store.root)]
    _finished_cell(store, "a" * 32, seed=0)
    _finished_cell(store, "b" * 32, seed=1)
    _finished_cell(store, "f" * 32, status="failed", weights=False)
    _finished_cell(store, "0" * 32, seed=2, weights=False)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    cases = [
        (["export", "zzz", *res], "no cell with key 'zzz'"),
        (["export", "f" * 32, *res], "is failed (boom); only finished cells can be exported"),
        (["export", "--dataset", "toy-export", "--method", "dlink", *res], "3 cells match"),
        (["export", "0" * 32, *res], "has no stored student weights"),
        (["export", "a" * 32, *res, "--out", str(tmp_path / "blocker" / "sub")], "pass a writable --out"),
        (["export", *res], "say which cell to export"),
        (["export", "a" * 32, "--results", str(tmp_path / "nowhere")], "does not exist"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (argv, err)
    assert find_cell(store, dataset="toy-export", distiller="dlink", seed=1)["key"] == "b" * 32


def test_missing_deploy_extra_exits_2_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    for argv in (["export", "abc", "--results", str(tmp_path)],
                 ["run", "--export", "--results", str(tmp_path / "res")]):  # refused before any training
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "pip install 'eegkd-bench[deploy]'" in err and err.count("\n") == 1, err
    assert not (tmp_path / "res").exists()


def test_run_export_ships_every_finished_cell_and_the_teacher(tmp_path, toy_registry, capsys, monkeypatch):
    """A run keeps each cell's weights; ``run --export`` on the finished grid exports them all."""
    res = tmp_path / "res"
    argv = ["run", "--methods", "dlink", "--students", "eegnet", "--teacher", "patch-teacher", "--datasets",
            "toy-export", "--seeds", "0", "--epochs", "1", "--teacher-epochs", "1", "--jobs", "1", "--no-latency",
            "--no-leaderboard", "--quiet", "--results", str(res), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    records = [json.loads(p.read_text()) for p in sorted((res / "cells").glob("*.json"))]
    assert len(records) == 1 and records[0]["status"] == "ok" and "export" not in records[0]
    payload = torch.load(res / records[0]["student_weights"]["path"], weights_only=True)
    assert any(k.startswith("compressor.") for k in payload["state_dict"])  # the MiC student, deployed
    assert not any(k.startswith(("router", "probe", "student.")) for k in payload["state_dict"])

    def unsupported(*args, **kwargs):
        raise UserError("int8 quantization of student.onnx failed: operator FancyOp has no int8 kernel")

    with monkeypatch.context() as patch:
        patch.setattr(ex, "quantize_int8", unsupported)
        assert main(argv + ["--export"]) == 1  # the cell stays finished; its export failed, said in one line
    assert "FancyOp" in capsys.readouterr().err
    rec = json.loads(next((res / "cells").glob("*.json")).read_text())
    assert "FancyOp" in rec["export_error"] and "export" not in rec
    assert not any((res / "exports").iterdir())
    assert main(argv + ["--export"]) == 0
    capsys.readouterr()
    for r in [json.loads(p.read_text()) for p in sorted((res / "cells").glob("*.json"))]:
        assert "export_error" not in r
        assert r["export"]["opset"] == ex.OPSET and r["export"]["fp32"]["max_abs_diff"] <= ex.PARITY_TOLERANCE
        assert set(r["teacher_export"]) == {"fp32"}
        assert set(r["teacher_export"]["fp32"]) == {"size_kb", "latency_ms", "latency_p95_ms", "max_abs_diff"}
        assert (res / "exports" / r["key"] / SIDECAR_FILE).is_file()
