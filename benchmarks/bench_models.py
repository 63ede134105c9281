"""Cost of every registered teacher and student: parameters, FLOPs, CPU latency at batch 1.

Default shape is BCIC-IV-2a as the FM recipes feed it (22 channels, 4 s at
200 Hz = 800 samples, 4 classes); add others with ``--shape C,T,K``. Latency is
the median of ``--repeats`` runs with one thread (``--threads``). Each model's
latency is also given relative to EEGNet, measured in the same process at the
same shape: EEGNet is timed again between every two models and each ratio
divides by the mean of the two EEGNet medians around that model, so a machine
whose load changes during the run (other jobs, thermal limits) biases the
ratios far less than the absolute numbers; the spread of the EEGNet timings is
printed as a measure of that noise.

    python benchmarks/bench_models.py [--shape 22,800,4] [--shape 16,2000,6] [--only 'cbramod*,eegnet']
                                      [--kinds teachers,students] [--repeats 50] [--no-latency]

Writes ``benchmarks/results/models.csv``: one row per (shape, model), with an
``error`` column instead of a missing row when a model cannot be built or run.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import math
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from eegkd_bench.api import InputSpec, UserError
from eegkd_bench.cost import DEFAULT_MAX_SECONDS, cost_report

BCIC_IV_2A = InputSpec(n_channels=22, n_samples=800, n_classes=4, sfreq=200.0)
REFERENCE = "eegnet"
OUT = Path(__file__).resolve().parent / "results" / "models.csv"
COLUMNS = ["n_channels", "n_samples", "n_classes", "sfreq", "kind", "model", "plugin", "params", "trainable_params",
           "flops", "latency_ms", "latency_p10_ms", "latency_p90_ms", "latency_iqr_ms", "latency_min_ms", "latency_repeats",
           "latency_vs_eegnet", "eegnet_latency_ms", "threads", "cpu", "torch", "status", "error"]


def parse_shape(text: str, sfreq: float) -> InputSpec:
    """``"C,T,K"`` -> InputSpec."""
    parts = text.split(",")
    try:
        c, t, k = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape {text!r}: expected three integers C,T,K such as 22,800,4") from None
    if c < 1 or t < 1 or k < 2:
        raise argparse.ArgumentTypeError(f"--shape {text!r}: need channels >= 1, samples >= 1, classes >= 2")
    return InputSpec(c, t, k, sfreq)


def cpu_name() -> str:
    """The CPU model, for the provenance of latency numbers."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(kind: str, entry: Any, spec: InputSpec, args: argparse.Namespace) -> dict[str, Any]:
    """One CSV row: build the model for ``spec`` and measure it; failures become an ``error``."""
    row: dict[str, Any] = {"n_channels": spec.n_channels, "n_samples": spec.n_samples, "n_classes": spec.n_classes,
                           "sfreq": spec.sfreq, "kind": kind, "model": entry.name, "plugin": entry.plugin,
                           "threads": args.threads, "cpu": cpu_name(), "torch": torch.__version__,
                           "status": "ok", "error": ""}
    try:
        torch.manual_seed(0)
        model = entry.factory(spec)
        rep = cost_report(model, spec, latency=not args.no_latency, threads=args.threads, warmup=args.warmup,
                          repeats=args.repeats, max_seconds=args.max_seconds)
    except Exception as exc:  # one broken plugin must not stop the table (timm-style error column)
        row.update(status="failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return row
    row.update(params=rep["params"], trainable_params=rep["trainable_params"], flops=rep["flops"])
    if rep["latency"] is not None:
        lat = rep["latency"]
        row.update(latency_ms=lat["median_ms"], latency_p10_ms=lat["p10_ms"], latency_p90_ms=lat["p90_ms"],
                   latency_iqr_ms=lat["iqr_ms"], latency_min_ms=lat["min_ms"],
                   latency_repeats=lat["repeats"])
    return row


def measure_shape(models: list[tuple[str, Any]], reference: Any, spec: InputSpec,
                  args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    """Rows of one shape; EEGNet is timed between every two models so each ratio uses its neighbours."""
    with_ratio = reference is not None and not args.no_latency
    refs: list[float | None] = []

    def time_reference() -> None:
        r = measure("students", reference, spec, args)
        refs.append(r.get("latency_ms") if r["status"] == "ok" else None)
        if r["status"] != "ok":
            ref_errors.append(r["error"])

    ref_errors: list[str] = []
    rows = []
    if with_ratio:
        time_reference()
    for kind, entry in models:
        rows.append(measure(kind, entry, spec, args))
        if with_ratio:
            time_reference()
            before, after = refs[-2], refs[-1]
            row = rows[-1]
            if before and after and row.get("latency_ms") is not None:
                row["eegnet_latency_ms"] = (before + after) / 2
                row["latency_vs_eegnet"] = row["latency_ms"] / row["eegnet_latency_ms"]
    if not with_ratio:
        return rows, ""
    if ref_errors:
        return rows, f"EEGNet reference failed: {ref_errors[0]}"
    lo, hi = min(refs), max(refs)
    return rows, (f"EEGNet reference, timed {len(refs)} times between the models: {lo:.3f}-{hi:.3f} ms "
                  f"(a wide range means a busy machine; each ratio uses the two timings around its model)")


def selected(registry: Any, kinds: list[str], only: list[str] | None) -> list[tuple[str, Any]]:
    """``(kind, entry)`` of every registered model matching ``--only`` (all when not given)."""
    out = []
    for kind in kinds:
        for entry in registry.entries(kind):
            if only is None or any(fnmatch.fnmatchcase(entry.name, p) for p in only):
                out.append((kind, entry))
    return out


def human(n: float | None, unit: str = "") -> str:
    """1234567 -> '1.23M'."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}" if isinstance(n, int) or float(n).is_integer() else f"{n:.3g}{unit}"


def print_table(rows: list[dict[str, Any]], spec: InputSpec, note: str) -> None:
    """A plain-text table of one shape's rows."""
    title = f"{spec.n_channels} ch x {spec.n_samples} samples, {spec.n_classes} classes, {spec.sfreq:g} Hz"
    print(f"\n== {title} ==")
    header = f"{'kind':<9} {'model':<22} {'params':>9} {'FLOPs':>9} {'latency ms':>11} {'p10-p90 ms':>14} {'x EEGNet':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['kind'][:-1]:<9} {r['model']:<22} failed: {r['error']}")
            continue
        lat = r.get("latency_ms")
        spread = f"{r['latency_p10_ms']:.2f}-{r['latency_p90_ms']:.2f}" if lat is not None else "-"
        ratio = r.get("latency_vs_eegnet")
        print(f"{r['kind'][:-1]:<9} {r['model']:<22} {human(r['params']):>9} {human(r['flops']):>9} "
              f"{(f'{lat:.2f}' if lat is not None else '-'):>11} {spread:>14} "
              f"{(f'{ratio:.2f}' if ratio is not None else '-'):>9}")
    if note:
        print(note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", default=None, metavar="C,T,K",
                        help="input shape (channels, samples, classes); repeatable; default 22,800,4 (BCIC-IV-2a)")
    parser.add_argument("--sfreq", type=float, default=200.0, help="sampling rate given to the models (Hz)")
    parser.add_argument("--kinds", default="teachers,students", help="which registries to measure")
    parser.add_argument("--only", default=None, help="comma-separated names or wildcards, e.g. 'cbramod*,eegnet'")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                        help="time budget of one model's latency measurement")
    parser.add_argument("--no-latency", action="store_true", help="params and FLOPs only")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    try:
        specs = [parse_shape(s, args.sfreq) for s in (args.shape or ["22,800,4"])]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or any(k not in ("teachers", "students") for k in kinds):
        parser.error(f"--kinds {args.kinds!r}: expected teachers, students or both (comma-separated)")
    only = [p.strip() for p in args.only.split(",") if p.strip()] if args.only else None

    from eegkd_bench.plugins import get_registry

    registry = get_registry(check=False)  # a plugin that fails to load is reported by a PluginWarning
    models = selected(registry, kinds, only)
    if not models:
        print(f"no registered {' or '.join(kinds)} match {args.only or 'all'}; see eegkd-bench list teachers",
              file=sys.stderr)
        return 2
    reference = registry.entries("students", REFERENCE)
    if not reference:
        print(f"note: student {REFERENCE!r} is not registered; latency ratios are left empty", file=sys.stderr)

    all_rows: list[dict[str, Any]] = []
    for spec in specs:
        rows, note = measure_shape(models, reference[0] if reference else None, spec, args)
        print_table(rows, spec, note)
        all_rows.extend(rows)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(all_rows)
    print(f"\nwrote {args.out} ({len(all_rows)} rows; FLOPs: 1 multiply-add = 2, batch 1; latency: "
          f"batch 1, {args.threads} thread(s), median of up to {args.repeats} runs)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
