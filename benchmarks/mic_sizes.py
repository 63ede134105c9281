"""Parameters of DLink's deployed MiC student around each registered student (the table in docs/distillers.md).

    python benchmarks/mic_sizes.py

For each teacher layout (CBraMod-style layers, width 200) and student: the plain
student, the MiC-wrapped one (backbone without its dropped head + projector + compressor
+ classifier), their ratio, and the sizes of the projector and of the compressor with
its classifier. No training; a few seconds on a CPU.
"""
from __future__ import annotations

import sys

import torch

from eegkd_bench.api import InputSpec, TeacherInfo
from eegkd_bench.plugins import get_registry
from eegkd_plugins.distillers.dlink import DLink

LAYOUTS = [  # (label, input spec, teacher layout, students)
    ("22×4×200 (BCIC-IV-2a, 4 classes)", InputSpec(22, 800, 4, 200.0), (22, 4, 200),
     ("eegnet", "shallowconvnet", "deepconvnet", "tinytransformer", "eegconformer")),
    ("16×5×200 (TUEV, 6 classes)", InputSpec(16, 1000, 6, 200.0), (16, 5, 200), ("eegnet",)),
    ("16×10×200 (TUAB, 2 classes)", InputSpec(16, 2000, 2, 200.0), (16, 10, 200), ("eegnet",)),
]


def main() -> int:
    torch.manual_seed(0)
    registry = get_registry()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    print("| layout (C×P×D) | student | plain student | DLink MiC | ratio | Π | compressor + classifier |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, spec, layout, students in LAYOUTS:
        info = TeacherInfo("cbramod-like", ("layer_1",), {"layer_1": layout}, spec.n_classes)
        for name in students:
            plain = count(registry.get("students", name).factory(spec))
            mic = DLink(registry.get("students", name).factory(spec), info, spec, use_router=False).deployed()
            parts = mic.parts()
            total = count(mic)
            print(f"| {label} | {name} | {plain:,} | {total:,} | {total / plain:.2f} | {parts['projector']:,} | "
                  f"{parts['compressor']:,} |")
            label = label.split(" ")[0]
    return 0


if __name__ == "__main__":
    sys.exit(main())
