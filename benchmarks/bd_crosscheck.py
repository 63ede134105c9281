"""Our EEGNet, ShallowConvNet, DeepConvNet and EEG Conformer next to braindecode's, on one input.

For each pair, both models are built for a benchmark's input (default sim-mi: 22 channels x 800
samples at 200 Hz, 4 classes), once with braindecode's defaults and once with braindecode options
set to our hyperparameters where braindecode exposes them. Printed per row: parameters and FLOPs
(batch 1, counted by ``eegkd_bench.cost`` for both), and whether the weights map one to one —
the same number of parameter tensors and buffers, each with the same number of elements, in
registration order. Where they do, ours are copied into braindecode's model and the largest
absolute difference of the logits on a fixed random batch (eval mode) is printed: 0 up to float
rounding means the architectures compute the same function. Needs braindecode.

    python benchmarks/bd_crosscheck.py [--dataset sim-mi] [--verbose]
"""
from __future__ import annotations

import argparse
import sys
import warnings

import torch

#: (ours, braindecode class, braindecode options that set our hyperparameters at 200 Hz)
#: (our kernels and pools are the papers' durations, so at 200 Hz they are 4/5 of braindecode's sample counts)
PAIRS = [
    ("eegnet", "EEGNet", {"kernel_length": 100, "depthwise_kernel_length": 25}),
    ("shallowconvnet", "ShallowFBCSPNet", {"filter_time_length": 20, "pool_time_length": 60,
                                           "pool_time_stride": 12}),
    ("deepconvnet", "Deep4Net", {"filter_time_length": 8, "filter_length_2": 8, "filter_length_3": 8,
                                  "filter_length_4": 8}),
    ("eegconformer", "EEGConformer", {"filter_time_length": 20, "pool_time_length": 60, "pool_time_stride": 12}),
]


def tensors(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters then float buffers (batch-norm statistics), in registration order."""
    return [*model.named_parameters(), *((n, b) for n, b in model.named_buffers() if b.is_floating_point())]


def try_map(ours: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor, verbose: bool) -> str:
    a, b = tensors(ours), tensors(theirs)
    if len(a) != len(b) or any(t.numel() != u.numel() for (_, t), (_, u) in zip(a, b)):
        if verbose:
            for i in range(max(len(a), len(b))):
                left = f"{a[i][0]} {tuple(a[i][1].shape)}" if i < len(a) else ""
                right = f"{b[i][0]} {tuple(b[i][1].shape)}" if i < len(b) else ""
                print(f"    {left:55s} | {right}", file=sys.stderr)
        return f"no one-to-one weight map ({len(a)} vs {len(b)} tensors)"
    with torch.no_grad():
        for (_, t), (_, u) in zip(a, b):
            u.copy_(t.reshape(u.shape))
        ours.eval(), theirs.eval()
        diff = (ours(x) - theirs(x)).abs().max().item()
    return f"weights map one to one; max |logit difference| {diff:.2e}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="sim-mi")
    ap.add_argument("--verbose", action="store_true", help="print both parameter lists where they do not map")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import braindecode.models as bd

    from eegkd_bench.api import InputSpec
    from eegkd_bench.cost import count_flops, count_params
    from eegkd_bench.plugins import get_registry

    reg = get_registry()
    ds = reg.get("datasets", args.dataset).factory()
    spec = InputSpec(ds.n_channels, int(round(ds.window_s * ds.sfreq)), 4, ds.sfreq)
    x = torch.randn(8, spec.n_channels, spec.n_samples, generator=torch.Generator().manual_seed(0))
    one = x[:1]
    print(f"input: {spec.n_channels} channels x {spec.n_samples} samples at {spec.sfreq:g} Hz, {spec.n_classes} "
          f"classes; braindecode {__import__('braindecode').__version__}\n")
    print("| ours | params | FLOPs | braindecode | options | params | FLOPs | same function? |")
    print("|---|---:|---:|---|---|---:|---:|---|")
    for ours_name, bd_name, aligned in PAIRS:
        torch.manual_seed(0)
        ours = reg.get("students", ours_name).factory(spec)
        for options in ({}, aligned) if aligned else ({},):
            torch.manual_seed(0)
            theirs = getattr(bd, bd_name)(n_chans=spec.n_channels, n_outputs=spec.n_classes,
                                         n_times=spec.n_samples, sfreq=spec.sfreq, **options)
            verdict = try_map(ours, theirs, x, args.verbose)
            opts = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
            print(f"| {ours_name} | {count_params(ours):,} | {count_flops(ours.eval(), one) / 1e6:.2f} M | {bd_name} | "
                  f"{opts} | {count_params(theirs):,} | {count_flops(theirs.eval(), one) / 1e6:.2f} M | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
