"""Exported students on ONNX Runtime: size, latency vs PyTorch, int8 vs fp32, at the BCIC-IV-2a shape.

For each student (22 channels, 4 s at 200 Hz = 800 samples, 4 classes; ``--shape`` changes it)
this exports the model with :mod:`eegkd_bench.export` (the same code as ``eegkd-bench export``),
checks parity against PyTorch, quantizes it to int8 and times, at batch 1 on one thread:

* PyTorch CPU (``eegkd_bench.cost.measure_latency``: the figure every record carries),
* ONNX Runtime CPU on the fp32 file and on the int8 file (``eegkd_bench.export.latency_ms``).

The three are timed in alternation for ``--rounds`` rounds and each figure is the median over
rounds, so a machine whose load changes during the run biases the ratios less than the
absolute numbers. Weights are random and int8 is calibrated on random windows: sizes and
latencies do not depend on them, accuracy is not measured here (``eegkd-bench export`` does it
on a cell's real test windows). ``--mic`` adds each student wrapped in DLink's MiC head (teacher
layout of ``cbramod-mini``), ``--teachers`` adds teachers' fp32 figures.

    python benchmarks/bench_export.py [--shape 22,800,4] [--mic] [--teachers cbramod-mini] [--rounds 3]

Writes ``benchmarks/results/export.csv``.
"""
from __future__ import annotations

import argparse
import csv
import platform
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import torch

from eegkd_bench import export as ex
from eegkd_bench.api import InputSpec
from eegkd_bench.cost import count_params, example_input, measure_latency
from eegkd_bench.plugins import get_registry
from eegkd_bench.teachers import teacher_info

STUDENTS = ("eegnet", "shallowconvnet", "deepconvnet", "eegconformer", "tinytransformer")
OUT = Path(__file__).resolve().parent / "results" / "export.csv"
COLUMNS = ["model", "kind", "params", "fp32_kb", "int8_kb", "torch_ms", "ort_fp32_ms", "ort_fp32_p95_ms",
           "ort_int8_ms", "ort_int8_p95_ms", "ort_vs_torch", "int8_vs_fp32", "max_abs_diff", "shape", "cpu",
           "torch", "onnxruntime", "opset"]


def models(spec: InputSpec, mic: bool, teachers: list[str]) -> list[tuple[str, str, torch.nn.Module]]:
    """``(name, kind, model)`` for every student (and MiC-wrapped student, and teacher) asked for."""
    reg = get_registry()
    out: list[tuple[str, str, torch.nn.Module]] = []
    info = None
    if mic:
        fm = reg.get("teachers", "cbramod-mini").factory(spec)
        info = teacher_info("cbramod-mini", fm, spec)
    for name in STUDENTS:
        torch.manual_seed(0)
        out.append((name, "student", reg.get("students", name).factory(spec).eval()))
        if info is not None:
            student = reg.get("students", name).factory(spec)
            wrapped = reg.get("distillers", "dlink").factory(student=student, teacher=info, spec=spec).deployed()
            out.append((f"mic({name})", "mic student", wrapped.eval()))
    for name in teachers:
        out.append((name, "teacher", reg.get("teachers", name).factory(spec).eval()))
    return out


def measure(name: str, kind: str, model: torch.nn.Module, spec: InputSpec, rounds: int, folder: Path) -> dict[str, Any]:
    """Export, parity, int8 and the alternating latency rounds of one model."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, spec.n_channels, spec.n_samples)).astype(np.float32)
    fp32_path, int8_path = folder / f"{name}.onnx", folder / f"{name}.int8.onnx"
    figures, _ = ex.fp32_figures(model, spec, fp32_path, X, what=name)
    sessions = {"fp32": ex.session(fp32_path)}
    if kind != "teacher":
        calib = rng.normal(size=(64, spec.n_channels, spec.n_samples)).astype(np.float32)
        ex.quantize_int8(fp32_path, int8_path, calib)
        sessions["int8"] = ex.session(int8_path)
    x = example_input(spec)
    torch_ms, ort, ratios = [], {k: [] for k in sessions}, {"ort_vs_torch": [], "int8_vs_fp32": []}
    for _ in range(rounds):
        t = measure_latency(model, x, threads=1, warmup=ex.LATENCY_WARMUP, repeats=ex.LATENCY_RUNS,
                            max_seconds=60.0)["median_ms"]
        r = {k: ex.latency_ms(s, spec) for k, s in sessions.items()}
        torch_ms.append(t)
        for k in sessions:
            ort[k].append(r[k])
        ratios["ort_vs_torch"].append(r["fp32"]["latency_ms"] / t)
        if "int8" in r:
            ratios["int8_vs_fp32"].append(r["int8"]["latency_ms"] / r["fp32"]["latency_ms"])

    def med(k: str, field: str) -> float | None:
        return median(v[field] for v in ort[k]) if k in ort else None

    import onnxruntime

    return {
        "model": name, "kind": kind, "params": count_params(model), "fp32_kb": ex.size_kb(fp32_path),
        "int8_kb": ex.size_kb(int8_path) if "int8" in sessions else None, "torch_ms": median(torch_ms),
        "ort_fp32_ms": med("fp32", "latency_ms"), "ort_fp32_p95_ms": med("fp32", "latency_p95_ms"),
        "ort_int8_ms": med("int8", "latency_ms"), "ort_int8_p95_ms": med("int8", "latency_p95_ms"),
        "ort_vs_torch": median(ratios["ort_vs_torch"]),
        "int8_vs_fp32": median(ratios["int8_vs_fp32"]) if ratios["int8_vs_fp32"] else None,
        "max_abs_diff": figures["max_abs_diff"], "shape": f"{spec.n_channels}x{spec.n_samples}x{spec.n_classes}",
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__, "opset": ex.OPSET,
    }


def show(rows: list[dict[str, Any]]) -> None:
    """A plain-text table of the rows."""
    def f(v: Any, fmt: str) -> str:
        return "—" if v is None else format(v, fmt)

    print(f"{'model':<24} {'params':>9} {'fp32 KB':>9} {'int8 KB':>8} {'torch ms':>9} {'ORT ms':>8} "
          f"{'int8 ms':>8} {'ORT/torch':>9} {'int8/fp32':>9} {'max|diff|':>9}")
    for r in rows:
        print(f"{r['model']:<24} {r['params']:>9,} {f(r['fp32_kb'], '.1f'):>9} {f(r['int8_kb'], '.1f'):>8} "
              f"{f(r['torch_ms'], '.3f'):>9} {f(r['ort_fp32_ms'], '.3f'):>8} {f(r['ort_int8_ms'], '.3f'):>8} "
              f"{f(r['ort_vs_torch'], '.2f'):>9} {f(r['int8_vs_fp32'], '.2f'):>9} {f(r['max_abs_diff'], '.1e'):>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="22,800,4", help="C,T,K at 200 Hz (default: BCIC-IV-2a, 22,800,4)")
    parser.add_argument("--mic", action="store_true", help="also each student wrapped in DLink's MiC head")
    parser.add_argument("--teachers", default="", help="comma-separated teachers to add (fp32 only), e.g. cbramod-mini")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds per model (default 3)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"CSV file (default {OUT})")
    args = parser.parse_args()
    ex.require_deploy()
    c, t, k = (int(v) for v in args.shape.split(","))
    spec = InputSpec(c, t, k, 200.0)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, model in models(spec, args.mic, [n for n in args.teachers.split(",") if n]):
            rows.append(measure(name, kind, model, spec, args.rounds, Path(tmp)))
            print(f"measured {name}", flush=True)
    print(f"\n{c} channels x {t} samples, {k} classes, 200 Hz; batch 1, one thread; ONNX opset {ex.OPSET}")
    show(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
