"""Does DLink's MiC head train around a student backbone? Labels only, no teacher.

Trains, per seed, the student backbone wrapped in the MiC head (projection into the
teacher layout, compressor, linear classifier: what ``dlink`` deploys and ``mic-ce``
trains) and, for comparison, the same backbone with its final map average-pooled to the
teacher's patches and one linear layer (``--head pooled``). Prints training, validation
and test balanced accuracy: a head that cannot fit its training windows fails to train,
while the pooled head shows whether the information survives the pooling to patches.

    python benchmarks/mic_probe.py sim-mi --student eegnet --head mic --seeds 0,1,2
    python benchmarks/mic_probe.py sim-mi --student eegnet --head pooled --seeds 0,1,2
    python benchmarks/mic_probe.py sim-mi --student eegnet --head mic --lr 3e-3

The recipe is the preset's for that student (``--preset``, default sim); the teacher
layout is CBraMod's: the dataset's channels x 1-s patches x 200. CPU, 1 thread; about
30 s per EEGNet run on sim-mi.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys

import torch
from torch import nn

from eegkd_bench.errors import UserError
from eegkd_bench.plugins import get_registry
from eegkd_bench.presets import PRESETS
from eegkd_bench.training import evaluate, fit
from eegkd_plugins.distillers.common import channels_time, resample_time
from eegkd_plugins.distillers.mic import MiCStudent
from eegkd_plugins.distillers.none import NoDistillation
from eegkd_plugins.simulated import DATASETS


class PooledHead(nn.Module):
    """Backbone final map -> average-pooled to ``n_patches`` time steps -> one linear layer."""

    def __init__(self, backbone: nn.Module, final: str, n_features: int, n_patches: int, n_classes: int) -> None:
        super().__init__()
        self.backbone, self.final, self.n_patches = backbone, final, n_patches
        self.classifier = nn.Linear(n_features * n_patches, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = channels_time(self.backbone.forward_features(x).features[self.final])
        return self.classifier(resample_time(f, self.n_patches).flatten(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/mic_probe.py", description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=[d.name for d in DATASETS])
    p.add_argument("--student", default="eegnet")
    p.add_argument("--head", choices=("mic", "pooled"), default="mic")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--preset", choices=sorted(PRESETS), default="sim", help="whose student recipe (default: sim)")
    p.add_argument("--epochs", type=int, help="instead of the preset's")
    p.add_argument("--lr", type=float, help="instead of the preset's")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    registry = get_registry()
    try:
        (student,) = registry.select("students", a.student)
    except (UserError, ValueError) as e:
        p.error(f"--student {a.student!r}: {e}")
    changed = {k: v for k, v in (("epochs", a.epochs), ("lr", a.lr)) if v is not None}
    cfg = dataclasses.replace(PRESETS[a.preset].student_recipe([student]), **changed)
    w = registry.get("datasets", a.dataset).factory().generate()
    spec = w.input_spec()
    parts = {s: w.part(s) for s in ("train", "val", "test")}
    layout = (spec.n_channels, max(1, round(spec.n_samples / spec.sfreq)), 200)
    print(f"{a.dataset}, {student} + {a.head} head, teacher layout {layout}: {cfg.epochs} epochs, lr {cfg.lr:g}, "
          f"batch {cfg.batch_size}")
    scores = []
    for seed in (int(s) for s in a.seeds.split(",")):
        torch.manual_seed(seed)
        backbone = registry.get("students", student).factory(spec)
        final = backbone.feature_names[-1]
        with torch.no_grad():
            n_features = channels_time(backbone.forward_features(
                torch.zeros(2, spec.n_channels, spec.n_samples)).features[final]).shape[1]
        model = (MiCStudent(backbone, spec, final, n_features, layout) if a.head == "mic"
                 else PooledHead(backbone, final, n_features, layout[1], w.n_classes))
        trainable = NoDistillation(model, None, spec)
        fit(trainable, *parts["train"], *parts["val"], w.n_classes, cfg, seed=seed)
        trainable.eval()
        acc = {s: evaluate(model, *parts[s], w.n_classes)["balanced_accuracy"] for s in parts}
        scores.append(acc["test"])
        print(f"  seed {seed}: balanced accuracy train {acc['train']:.3f}  val {acc['val']:.3f}  "
              f"test {acc['test']:.3f}", flush=True)
    sd = statistics.stdev(scores) if len(scores) > 1 else float("nan")
    print(f"test mean {statistics.mean(scores):.3f}  sd {sd:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
