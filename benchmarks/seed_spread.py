"""How much a student's test score moves between training seeds, on one simulated dataset configuration.

The spread between seeds sets how small a difference between two methods a paired test can resolve
(the leaderboard's "detectable" figure). This trains students alone (the ``none`` method: labels
only, no teacher) on a preset's recipe for each student (``--preset``, default quick), one run per seed
on the same data, and prints each seed's test balanced accuracy, the mean and the sample standard
deviation. Dataset options and the recipe can be changed, e.g. the 12-subject sim-mi against the
default, or EEGNet's recipes:

    python benchmarks/seed_spread.py sim-mi --set n_subjects=12 --set trials_per_class=12 --set 'split=[8,2,2]'
    python benchmarks/seed_spread.py sim-mi
    python benchmarks/seed_spread.py sim-mi --students eegnet --epochs 7 --lr 3e-3
    python benchmarks/seed_spread.py sim-mi --students eegnet --preset sim

CPU, 2 threads; about 10 s per EEGNet run and 25 s per ShallowConvNet run on sim-mi.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import torch

from eegkd_bench.config import parse_set, resolve
from eegkd_bench.errors import UserError
from eegkd_bench.plugins import get_registry
from eegkd_bench.presets import PRESETS
from eegkd_bench.training import evaluate, fit
from eegkd_plugins.distillers.none import NoDistillation
from eegkd_plugins.simulated import DATASETS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/seed_spread.py", description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=[d.name for d in DATASETS])
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a dataset option, VALUE in TOML as with eegkd-bench run (n_subjects=12, split=[8,2,2]; "
                        "eegkd-bench show DATASET lists them)")
    p.add_argument("--students", default="eegnet,shallowconvnet")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick", help="whose student recipes (default: quick)")
    p.add_argument("--epochs", type=int, help="instead of the preset's, for every student")
    p.add_argument("--lr", type=float, help="instead of the preset's, for every student")
    p.add_argument("--batch-size", type=int, help="instead of the preset's, for every student")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    changed = {k: v for k, v in (("epochs", a.epochs), ("lr", a.lr), ("batch_size", a.batch_size)) if v is not None}
    registry = get_registry()
    try:  # the run's own parsing and validation of dataset options
        chosen = dict(parse_set(f"{a.dataset}.{text}")[1:] for text in a.set)
        options = dict(resolve(registry, "datasets", a.dataset, {a.dataset: chosen}).options)
        dataset = registry.get("datasets", a.dataset).factory(use_cache=False, **options)
        students = registry.select("students", a.students)
    except UserError as e:
        p.error(str(e))
    w = dataset.generate()
    spec = w.input_spec()
    parts = {s: w.part(s) for s in ("train", "val", "test")}
    print(f"{a.dataset} {chosen or '(defaults)'}: subjects (train, val, test) = {dataset.split_counts}, "
          f"windows = {[len(parts[s][1]) for s in parts]}")
    for name in students:
        cfg = dataclasses.replace(PRESETS[a.preset].student_recipe([name]), **changed)
        print(f"{name}: {cfg.epochs} epochs, lr {cfg.lr:g}, batch {cfg.batch_size}")
        scores, t0 = [], time.perf_counter()
        for seed in (int(s) for s in a.seeds.split(",")):
            torch.manual_seed(seed)
            model = NoDistillation(registry.get("students", name).factory(spec), None, spec)
            fit(model, *parts["train"], *parts["val"], w.n_classes, cfg, seed=seed)
            model.eval()
            scores.append(evaluate(model.deployed(), *parts["test"], w.n_classes)["balanced_accuracy"])
        sd = statistics.stdev(scores) if len(scores) > 1 else float("nan")
        print(f"{name:16s} test balanced accuracy {' '.join(f'{s:.3f}' for s in scores)}  "
              f"mean {statistics.mean(scores):.3f}  sd {sd:.3f}  ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
