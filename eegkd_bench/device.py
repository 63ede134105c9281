"""Where models train: ``--device auto|cpu|cuda|cuda:N|mps``.

Training, the teacher's forward passes and evaluation run on the chosen device;
parameter counts, FLOPs and latency are always measured on the CPU (latency is a
batch-1, one-thread CPU figure by definition), so they do not depend on it.
"""
from __future__ import annotations

import copy
import os
import platform
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from eegkd_bench.errors import UserError


def resolve_device(name: str | None) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; others are checked and normalised."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"invalid --device {name!r}; expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA GPU is visible to torch {torch.__version__}; "
                            "use --device cpu (or auto)")
        index = 0 if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible; "
                            f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return f"cuda:{index}"
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError(f"--device {name}: Apple's MPS backend is not available here; use --device cpu")
        return "mps"
    raise UserError(f"invalid --device {name!r}; expected auto, cpu, cuda, cuda:N or mps")


def describe(device: str) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``: what a result row records."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


#: The CPU instruction-set extensions that decide which kernels torch, oneDNN and MKL run (x86 and Arm).
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16",
             "asimd", "asimdhp", "asimddp", "sve", "sve2", "bf16", "i8mm")


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """The CPU a record was computed on, as far as it decides speed and numerics.

    ``model`` (``/proc/cpuinfo``, else ``platform.processor()``), ``machine``, ``logical_cores``,
    ``flags`` (those of :data:`CPU_FLAGS` the CPU has; empty where ``/proc/cpuinfo`` is absent),
    ``torch_capability`` (the vectorised kernels torch dispatches to: ``DEFAULT``, ``AVX2``,
    ``AVX512``, ...), ``mkl`` and ``mkldnn`` (oneDNN) availability, and ``parallel``: the threading
    and math libraries torch was built with (from ``torch.__config__.parallel_info()``, without the
    thread counts, which ``torch_threads`` records per cell).
    """
    model, flags = _proc_cpuinfo()
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # older torch
        capability = "unknown"
    return {
        "model": model or platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "flags": [f for f in CPU_FLAGS if f in flags],
        "torch_capability": capability,
        "mkl": bool(torch.backends.mkl.is_available()),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "parallel": _parallel_summary(),
    }


def _proc_cpuinfo() -> tuple[str, set[str]]:
    """(model name, flags) of the first processor in ``/proc/cpuinfo``; ("", set()) where it cannot be read."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and not model:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return model, flags


def _parallel_summary() -> list[str]:
    """The library lines of torch's parallel info: its OpenMP, MKL and oneDNN builds and its parallel backend."""
    try:
        text = torch.__config__.parallel_info()
    except Exception:  # pragma: no cover - a torch without it
        return []
    out = []
    for line in text.splitlines():
        item = line.strip()
        if not item or line[0].isspace() or item.startswith(("ATen/Parallel", "Environment variables")):
            continue  # thread counts and environment variables, indented under their heading
        if ":" in item and not item.startswith("ATen parallel backend"):
            continue  # std::thread::hardware_concurrency() : N
        out.append(item)
    return out


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def on_cpu(module: nn.Module) -> nn.Module:
    """``module`` itself when it lives on the CPU, else a CPU copy (the original stays where it is)."""
    if module_device(module).type == "cpu":
        return module
    return copy.deepcopy(module).cpu()
