"""Meta-analysis across datasets, as MOABB reports it: Stouffer's combined p and the combined effect.

For each comparison of a proposed method with another (on one teacher and
student backbone), every dataset contributes its one-sided p (proposed better;
:func:`eegkd_bench.leaderboard.subjects.subject_comparisons`) and its standardized
mean difference (SMD). MOABB's ``combine_pvalues`` combines the p-values with
Stouffer's method, each dataset weighted by the square root of its number of
subjects, and ``combine_effects`` averages the SMDs with the same weights
normalised to sum to one (``moabb.analysis.meta_analysis``).

MOABB's functions are loaded from their module file alone: importing the
``moabb`` package imports every dataset class, MNE and pyplot, which takes seconds
and changes matplotlib's state; the module itself needs only numpy, pandas,
scipy and scikit-learn.
"""
from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from eegkd_bench.leaderboard.stats import holm

COLUMNS = ["teacher", "student", "method", "baseline", "datasets", "n_datasets", "n", "effect", "p", "left_out",
           "per_dataset"]


@lru_cache(maxsize=1)
def moabb_meta() -> ModuleType:
    """``moabb.analysis.meta_analysis``, without importing the rest of MOABB when its file loads alone."""
    spec = importlib.util.find_spec("moabb")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "analysis" / "meta_analysis.py"
        file_spec = importlib.util.spec_from_file_location("eegkd_bench._moabb_meta_analysis", path)
        if path.is_file() and file_spec is not None and file_spec.loader is not None:
            module = importlib.util.module_from_spec(file_spec)
            try:
                file_spec.loader.exec_module(module)
                return module
            except ImportError:  # the file imports its package: import it the ordinary way
                pass
    import moabb.analysis.meta_analysis as module

    return module


def meta_analysis(comparisons: pd.DataFrame) -> pd.DataFrame:
    """One row per (teacher, student, method, baseline) compared on two or more datasets.

    ``comparisons`` is :func:`~eegkd_bench.leaderboard.subjects.subject_comparisons`. A dataset
    enters when its one-sided p and its SMD are defined (two units or more; an SMD may be ±inf,
    a constant non-zero difference, as in MOABB); the others are listed in ``left_out``. ``n`` is the total of units (subjects, or
    seeds where a dataset fell back to seeds), ``effect`` the combined SMD, ``p`` Stouffer's
    combined one-sided p, ``p_holm`` Holm's adjustment over the rows; ``per_dataset`` holds
    (dataset, n, SMD, one-sided p) of each dataset that entered, for the forest plot.
    """
    meta = moabb_meta()
    rows = []
    keys = ["teacher", "student", "method", "baseline"]
    for key, group in comparisons.groupby(keys, sort=False):
        if group["dataset"].nunique() < 2:
            continue
        ok = group[np.isfinite(group["p_greater"].astype(float)) & ~np.isnan(group["smd"].astype(float))
                   & (group["n"] >= 2)]
        left_out = [str(d) for d in group["dataset"] if d not in set(ok["dataset"])]
        n = ok["n"].to_numpy(dtype=float)
        # Stouffer's z of a p of exactly 0 or 1 is infinite: keep p strictly inside (0, 1), as MOABB does
        p = np.clip(ok["p_greater"].to_numpy(dtype=float), np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0))
        effects = ok["smd"].to_numpy(dtype=float)
        rows.append({**dict(zip(keys, key)), "datasets": [str(d) for d in ok["dataset"]], "n_datasets": len(ok),
                     "n": int(n.sum()),
                     "effect": float(meta.combine_effects(effects, n)) if len(ok) else math.nan,
                     "p": float(meta.combine_pvalues(p, n)) if len(ok) else math.nan,
                     "left_out": left_out,
                     "per_dataset": list(zip(ok["dataset"].astype(str), ok["n"].astype(int), effects, p))})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["p_holm"] = holm(frame["p"].to_numpy(dtype=float)) if len(frame) else []
    return frame


__all__ = ["COLUMNS", "meta_analysis", "moabb_meta"]
