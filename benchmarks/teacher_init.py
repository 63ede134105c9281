"""What the teacher's starting point is worth: the same fine-tuning recipe from each init, per benchmark.

For each simulated benchmark and seed, fine-tunes the preset's teacher (``--preset``, default sim) with
the preset's teacher recipe on the benchmark's labelled training subjects, once per init — random,
``sim-pretrained`` (self-supervised only), ``sim-ssl+sup-pretrained`` (then supervised on other simulated
subjects) — and prints each one's test balanced accuracy (the leaderboards' headline metric) as mean
± SD over the seeds. The fine-tuned teachers go to the cache folder, so a rerun, or a preset run
afterwards with the same cache, reuses them.

    python benchmarks/teacher_init.py --seeds 0-4
    python benchmarks/teacher_init.py --datasets sim-mi --seeds 0 --inits none,sim-ssl+sup-pretrained

CPU, one torch thread (as a preset's worker); 15-45 s per fine-tuning.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from eegkd_bench.data.catalog import load_dataset
from eegkd_bench.metrics import HEADLINE
from eegkd_bench.plugins import get_registry
from eegkd_bench.presets import PRESETS, parse_seeds
from eegkd_bench.teachers import prepare_teacher, resolve_checkpoint


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="sim")
    ap.add_argument("--datasets", default="sim-mi,sim-abnormal,sim-events,sim-affective")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--inits", default="none,sim-pretrained,sim-ssl+sup-pretrained")
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "eegkd-bench"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the presets' workers use 1 each)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    reg = get_registry()
    entry = reg.get("teachers", preset.teacher)
    seeds = parse_seeds(args.seeds)
    inits = [s.strip() for s in args.inits.split(",") if s.strip()]
    print(f"{preset.teacher} fine-tuned with the {args.preset} preset's teacher recipe {preset.teacher_cfg.as_dict()}")
    print(f"{'dataset':<14} {'init':<24} {'test ' + HEADLINE + ' (mean ± SD)':<36} per seed")
    for name in args.datasets.split(","):
        windows = load_dataset(reg, name, None, Path(args.cache_dir))
        for init in inits:
            scores, t0 = [], time.perf_counter()
            for seed in seeds:
                prepared = prepare_teacher(entry.factory, entry.name, windows, seed=seed, cfg=preset.teacher_cfg,
                                           cache_dir=Path(args.cache_dir), checkpoint=resolve_checkpoint(entry, init))
                scores.append(prepared.test_metrics[HEADLINE])
            sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
            print(f"{name:<14} {init:<24} {statistics.mean(scores):.3f} ± {sd:.3f}{'':<22} "
                  f"{' '.join(f'{s:.3f}' for s in scores)}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
