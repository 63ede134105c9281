"""Where models train: ``--device auto|cpu|cuda|cuda:N|mps``.

Training, the teacher's forward passes and evaluation run on the chosen device;
parameter counts, FLOPs and latency are always measured on the CPU (latency is a
batch-1, one-thread CPU figure by definition), so they do not depend on it.
"""
from __future__ import annotations

import copy

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
