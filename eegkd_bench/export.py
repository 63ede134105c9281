"""ONNX export of a deployed model: the file, its parity check, int8 quantization and runtime figures.

Everything here measures *the file that ships*: the ONNX graph is checked against PyTorch on
real windows with ONNX Runtime's CPU provider, and latency is ONNX Runtime's, at batch 1 on one
thread. The exporter is PyTorch's ``torch.export``-based one; it needs the ``deploy`` extra
(``pip install 'eegkd-bench[deploy]'``: onnx, onnxruntime, onnxscript).
"""
from __future__ import annotations

import gc
import importlib
import logging
import re
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from eegkd_bench.api import InputSpec
from eegkd_bench.errors import UserError

#: ONNX opset of every export: the lowest the torch.export-based exporter emits, so the file
#: loads in the widest range of runtimes (ONNX Runtime >= 1.14, and the embedded ones that track it).
OPSET = 18
#: Largest |logit difference| between PyTorch and ONNX Runtime (fp32) that passes. Reordered
#: float32 sums differ by ~1e-6 on these models; a wrong or missing op moves logits by >= 1e-2.
PARITY_TOLERANCE = 1e-4
#: Latency protocol: runs discarded as warm-up, then timed runs (median and p95 reported).
LATENCY_WARMUP, LATENCY_RUNS = 10, 100
#: At most this many training windows calibrate the int8 activation ranges (evenly spaced).
CALIBRATION_WINDOWS = 256
INPUT, OUTPUT = "x", "logits"
DEPLOY_MODULES = ("onnx", "onnxruntime", "onnxscript")


def require_deploy() -> None:
    """Raise a one-line UserError naming the extra when the ONNX packages are not installed."""
    for name in DEPLOY_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            raise UserError(f"ONNX export needs the deploy extra ({name} is not installed); "
                            "run: pip install 'eegkd-bench[deploy]'") from None


def deploy_versions() -> dict[str, str]:
    """Versions of the packages that write and run the exported files."""
    import onnx
    import onnxruntime
    import onnxscript

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "onnxscript": onnxscript.__version__}


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and quantizer's progress chatter (warnings and log lines)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


# ---------------------------------------------------------------------------- export
def to_onnx(model: nn.Module, spec: InputSpec, path: Path, *, what: str) -> None:
    """Write ``model`` (eval mode, CPU) as an ONNX graph with a dynamic batch axis at :data:`OPSET`."""
    require_deploy()
    from eegkd_bench.device import on_cpu

    model = on_cpu(model).eval()
    # Two windows: torch.export specialises an axis of size 1, and the batch must stay dynamic.
    example = torch.zeros(2, spec.n_channels, spec.n_samples)
    try:
        with _quiet(), torch.no_grad():
            model(example)  # applies in-place weight constraints (max-norm) before the graph is taken
            torch.onnx.export(model, (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                              opset_version=OPSET, dynamo=True, external_data=False, verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot export {what} to ONNX: {unsupported_operator(exc)}") from None
    if not path.is_file():
        raise UserError(f"cannot export {what} to ONNX: the exporter wrote no file at {path}")


def unsupported_operator(exc: BaseException) -> str:
    """What stopped an export or an ONNX Runtime session, in one line, naming the operator when the message does."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(e) for e in (exc, exc.__cause__) if e is not None))
    m = re.search(r"No ONNX function found for <OpOverload\(op='([\w.]+)'", text) \
        or re.search(r"target=torch\.ops\.([\w.]+?)(?:\.default)?\]", text)
    if m:
        return f"operator {m.group(1)} has no ONNX translation at opset {OPSET}"
    m = re.search(r"Could not find an implementation for (\w+)\(\d+\)", text)
    if m:
        return f"ONNX Runtime has no CPU kernel for operator {m.group(1)}"
    m = re.search(r"data-dependent expression.*?File \"([^\"]+)\", line (\d+)[^\n]*\n\s*([^\n]+)", text, re.S)
    if m:
        return (f"data-dependent Python control flow at {Path(m.group(1)).name}:{m.group(2)} ({m.group(3).strip()}); "
                "skip it while torch.compiler.is_exporting()")
    m = re.search(r"<class '([\w.]+)'>: ([^\n]+)", text)  # the exporter's own exception summary
    if m:
        return f"{m.group(1).rsplit('.', 1)[-1]}: {m.group(2).strip()}"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"


def session(path: Path) -> Any:
    """An ONNX Runtime CPU session on one thread (the deployment setting)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UserError(f"ONNX Runtime cannot load {path.name}: {unsupported_operator(exc)}") from None


def onnx_logits(sess: Any, X: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits of an ONNX Runtime session over windows ``(n, C, T)``."""
    out = [sess.run([OUTPUT], {INPUT: np.ascontiguousarray(X[i:i + batch_size], dtype=np.float32)})[0]
           for i in range(0, len(X), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def check_parity(reference: np.ndarray, onnx_out: np.ndarray, *, what: str,
                 tolerance: float = PARITY_TOLERANCE) -> float:
    """Max |logit difference| between PyTorch and ONNX Runtime; above ``tolerance`` is a UserError."""
    if reference.shape != onnx_out.shape:
        raise UserError(f"parity check of {what} failed: PyTorch gives logits {reference.shape}, "
                        f"ONNX Runtime {onnx_out.shape}")
    diff = float(np.max(np.abs(reference.astype(np.float64) - onnx_out))) if reference.size else 0.0
    if not diff <= tolerance:
        raise UserError(f"parity check of {what} failed: max |logit difference| PyTorch vs ONNX Runtime is "
                        f"{diff:.3g} > tolerance {tolerance:g}; the exported graph computes something else")
    return diff


# ------------------------------------------------------------------------------ int8
def calibration_windows(X_train: np.ndarray, limit: int = CALIBRATION_WINDOWS) -> np.ndarray:
    """Evenly spaced training windows that calibrate the int8 activation ranges."""
    if len(X_train) == 0:
        raise UserError("int8 calibration needs training windows, got none")
    idx = np.unique(np.linspace(0, len(X_train) - 1, min(limit, len(X_train))).round().astype(int))
    return np.ascontiguousarray(X_train[idx], dtype=np.float32)


def quantize_int8(fp32: Path, out: Path, calibration: np.ndarray) -> dict[str, Any]:
    """Static post-training int8 quantization (QDQ, per-channel weights, MinMax) calibrated on ``calibration``."""
    from onnxruntime import quantization as q

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration[i:i + 1] for i in range(len(calibration)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.items, None)
            return None if x is None else {INPUT: x}

    prepared = out.with_name(out.stem + ".prep.onnx")
    try:
        with _quiet():
            q.quant_pre_process(str(fp32), str(prepared))  # shape inference + graph clean-up, as ORT advises
            q.quantize_static(str(prepared), str(out), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                              activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                              calibrate_method=q.CalibrationMethod.MinMax)
    except Exception as exc:
        raise UserError(f"int8 quantization of {fp32.name} failed: {unsupported_operator(exc)}") from None
    finally:
        prepared.unlink(missing_ok=True)
    return {"method": "onnxruntime static post-training quantization", "format": "QDQ",
            "weights": "int8 per channel", "activations": "int8 per tensor", "calibration": "MinMax",
            "calibration_split": "train", "calibration_windows": int(len(calibration))}


# --------------------------------------------------------------------------- figures
def latency_ms(sess: Any, spec: InputSpec, *, warmup: int = LATENCY_WARMUP, runs: int = LATENCY_RUNS) -> dict[str, float]:
    """Median and p95 milliseconds of one window (batch 1) through ``sess``."""
    x = np.asarray(torch.randn(1, spec.n_channels, spec.n_samples, generator=torch.Generator().manual_seed(0)))
    feed = {INPUT: x.astype(np.float32)}
    for _ in range(warmup):
        sess.run([OUTPUT], feed)
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # a collection inside one timed run would show up as an outlier
    times = []
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run([OUTPUT], feed)
            times.append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    ms = np.asarray(times) * 1e3
    return {"latency_ms": float(np.median(ms)), "latency_p95_ms": float(np.percentile(ms, 95))}


def size_kb(path: Path) -> float:
    """File size in KB (1 KB = 1024 bytes)."""
    return path.stat().st_size / 1024.0


def fp32_figures(model: nn.Module, spec: InputSpec, path: Path, X_check: np.ndarray, *,
                 what: str) -> tuple[dict[str, float], np.ndarray]:
    """Export ``model`` to ``path`` and check parity on ``X_check``.

    Returns the record's fp32 figures (size, latency, max |logit difference|) and the ONNX
    Runtime logits of ``X_check``.
    """
    from eegkd_bench.device import on_cpu
    from eegkd_bench.training import predict_logits

    model = on_cpu(model)  # parity is a CPU-to-CPU comparison, wherever the model trained
    to_onnx(model, spec, path, what=what)  # first: its forward pass applies the weight constraints
    reference = predict_logits(model, X_check)
    sess = session(path)
    logits = onnx_logits(sess, X_check)
    diff = check_parity(reference, logits, what=what)
    return {"size_kb": size_kb(path), **latency_ms(sess, spec), "max_abs_diff": diff}, logits


def runtime_info() -> dict[str, Any]:
    """How latency was measured (stored beside the figures)."""
    import onnxruntime

    return {"runtime": f"onnxruntime {onnxruntime.__version__}", "provider": "CPUExecutionProvider", "batch": 1,
            "threads": 1, "warmup_runs": LATENCY_WARMUP, "timed_runs": LATENCY_RUNS,
            "statistics": "median and 95th percentile, milliseconds"}


__all__ = [
    "CALIBRATION_WINDOWS", "OPSET", "PARITY_TOLERANCE", "calibration_windows", "check_parity", "fp32_figures",
    "latency_ms", "onnx_logits", "quantize_int8", "require_deploy", "runtime_info", "session", "size_kb", "to_onnx",
    "unsupported_operator",
]
