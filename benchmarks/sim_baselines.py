"""Classical baselines on the simulated benchmarks: how hard each one is for a pipeline without deep learning.

``bandpower_lda``: log band power (Welch, 7 bands 1-70 Hz) per channel, standardized, shrinkage LDA.
``csp_lda`` (motor imagery only): 8-30 Hz band-pass, ``mne.decoding.CSP`` (8 components, Ledoit-Wolf), LDA.
Both are fit on the train subjects and scored (balanced accuracy) on the val/test subjects.

    python benchmarks/sim_baselines.py --baselines --seeds 0,1,2,3,4
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np
from scipy import signal

from eegkd_bench.api import EEGWindows
from eegkd_plugins.simulated import DATASETS

BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 20.0), (20.0, 30.0), (30.0, 45.0), (45.0, 70.0))


def bandpower_features(X: np.ndarray, sfreq: float, bands: Sequence[tuple[float, float]] = BANDS) -> np.ndarray:
    """Log band power per channel and band (Welch, 1-s segments): ``(n, channels * bands)``."""
    f, pxx = signal.welch(np.asarray(X, np.float64), fs=sfreq, nperseg=int(sfreq), axis=-1)
    feats = [np.log(pxx[..., (f >= lo) & (f < hi)].mean(-1) + 1e-12) for lo, hi in bands]
    return np.stack(feats, -1).reshape(len(X), -1)


def baseline_scores(w: EEGWindows, splits: Sequence[str] = ("test",), *, csp: bool = False
                    ) -> dict[str, dict[str, float]]:
    """Balanced accuracy per split of band-power + LDA (and CSP + LDA if ``csp``), fit on train."""
    import mne
    from mne.decoding import CSP
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis as LDA
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def mu_beta(x: np.ndarray) -> np.ndarray:
        return mne.filter.filter_data(np.asarray(x, np.float64), w.sfreq, 8.0, 30.0, verbose=False)

    pipelines = {"bandpower_lda": (lambda x: bandpower_features(x, w.sfreq),
                                   make_pipeline(StandardScaler(), LDA(solver="lsqr", shrinkage="auto")))}
    if csp:
        pipelines["csp_lda"] = (mu_beta, make_pipeline(CSP(n_components=8, reg="ledoit_wolf", log=True), LDA()))
    from threadpoolctl import threadpool_limits

    out: dict[str, dict[str, float]] = {}
    Xtr, ytr = w.part("train")
    with mne.utils.use_log_level("ERROR"), threadpool_limits(limits=1, user_api="blas"):
        for name, (features, clf) in pipelines.items():
            clf.fit(features(Xtr), ytr)
            for split in splits:
                X, y = w.part(split)
                out.setdefault(name, {})[split] = float(balanced_accuracy_score(y, clf.predict(features(X))))
    return out


def _main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/sim_baselines.py",
                                description="Generate the simulated benchmarks; optionally score classical baselines.")
    p.add_argument("--datasets", default=",".join(d.name for d in DATASETS), help="comma-separated names")
    p.add_argument("--seeds", default="0", help="comma-separated generator seeds, e.g. 0,1,2")
    p.add_argument("--baselines", action="store_true", help="score band-power+LDA (and CSP+LDA for MI)")
    args = p.parse_args(argv)
    by_name = {d.name: d for d in DATASETS}
    names = [s.strip() for s in args.datasets.split(",") if s.strip()]
    for name in names:
        if name not in by_name:
            p.error(f"unknown simulated dataset {name!r}; expected some of {', '.join(by_name)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds {args.seeds!r}: expected comma-separated integers such as 0,1,2")
    print(f"{'dataset':<14} {'seed':>4} {'windows':>7} {'shape':>12} {'wall_s':>6} {'cpu_s':>6}  "
          + ("val/test balanced accuracy (chance)" if args.baselines else ""))
    for name in names:
        for seed in seeds:
            ds = by_name[name](seed=seed, use_cache=False)
            t0, c0 = time.perf_counter(), time.process_time()
            w = ds.generate()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            line = f"{name:<14} {seed:>4} {len(w.X):>7} {str(w.X.shape[1:]):>12} {dt:>6.2f} {dc:>6.2f}  "
            if args.baselines:
                scores = baseline_scores(w, ("val", "test"), csp=ds.paradigm == "motor imagery")
                line += "  ".join(f"{k} {v['val']:.3f}/{v['test']:.3f}" for k, v in scores.items())
                line += f"  ({1 / w.n_classes:.3f})"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())