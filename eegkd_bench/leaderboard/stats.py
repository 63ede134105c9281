"""Paired statistics: each proposed method against every other, Wilcoxon signed-rank, Holm-adjusted.

Pairs share dataset, teacher, student backbone (``record["student"]``, so a
wrapped student is paired with the plain one it wraps) and seed; differences are
proposed minus other, pooled over datasets. The proposed methods come from
:mod:`eegkd_bench.leaderboard.roles`.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from eegkd_bench.leaderboard.aggregate import PRIMARY, Board, build_board, num, resolve_metrics, teacher_labeler
from eegkd_bench.metrics import HEADLINE, KEY_METRIC

#: Fewest non-tied pairs for which a two-sided exact Wilcoxon p can reach 0.05
#: (with n pairs the smallest possible p is 2 / 2**n: 0.0625 for n = 5, 0.031 for n = 6).
MIN_PAIRS = 6

#: Significance level of the marks in the tables (on Holm-adjusted p).
ALPHA = 0.05

#: Power at which :func:`detectable_difference` sizes the smallest difference a comparison resolves.
POWER = 0.8

COLUMNS = ["method", "baseline", "student", "metric", "n_pairs", "n_nonzero", "mean_diff", "sd_diff", "wins", "ties",
           "losses", "statistic", "p", "test", "note"]


def paired_comparisons(records: Iterable[dict[str, Any]], metric: str | None = None, *,
                       reference: str | Sequence[str] | None = None, by_student: bool = False) -> pd.DataFrame:
    """Each proposed method vs each other method: Wilcoxon signed-rank over matched (dataset, student, seed).

    ``metric`` is a metric name, ``"key"`` (each dataset's model-selection
    metric), ``"primary"`` (AUROC on binary tasks, else balanced accuracy) or
    None (balanced accuracy, defined for every task). ``reference`` names the
    proposed methods (default: the roles the plugins declare). With
    ``by_student`` each student backbone is its own comparison (``student``
    column), else students are pooled (``student`` is ``"all"``). Zero
    differences are dropped (Wilcoxon's convention); with fewer than
    :data:`MIN_PAIRS` non-zero pairs no p is given. ``p_holm`` is Holm's
    step-down adjustment over all rows. ``detectable`` is the smallest mean
    difference the comparison would find with 80% power at Holm's strictest
    level (see :func:`detectable_difference`): the design's resolution, to read
    a non-significant row by.
    """
    return paired(build_board(list(records), None, reference=reference), metric, by_student=by_student)


def paired(board: Board, metric: str | None, *, by_student: bool = False) -> pd.DataFrame:
    """:func:`paired_comparisons` on an aggregated board."""
    label_of = teacher_labeler(board.ok)
    chosen = metric or HEADLINE
    if chosen not in ("key", "primary"):
        resolve_metrics(chosen, [], [])  # validates the name
    values: dict[tuple[str, str], dict[tuple[Any, ...], float]] = defaultdict(dict)
    for r in board.ok:
        task = str(r.get("task"))
        m = {"key": KEY_METRIC.get(task, HEADLINE), "primary": PRIMARY.get(task, HEADLINE)}.get(chosen, chosen)
        v = num((r.get("metrics") or {}).get(m))
        if math.isfinite(v):
            student = str(r.get("student")) if by_student else "all"
            pair = (r.get("dataset"), label_of(r), r.get("student"), r.get("seed"))
            values[(str(r.get("distiller")), student)][pair] = v
    proposed = [m for m in board.roles.reference]
    others = board.roles.order({m for m, _ in values if m not in proposed})
    students = sorted({s for _, s in values})
    rows = []
    for d in proposed:
        for b in others:
            for s in students:
                if (d, s) not in values or (b, s) not in values:
                    continue
                rows.append({"method": d, "baseline": b, "student": s, "metric": chosen,
                             **_compare(values[(d, s)], values[(b, s)])})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["p_holm"] = holm(frame["p"].to_numpy(dtype=float)) if len(frame) else []
    tests = max(1, int(np.isfinite(frame["p"].to_numpy(dtype=float)).sum())) if len(frame) else 1
    frame["detectable"] = [detectable_difference(sd, n, ALPHA / tests)
                           for sd, n in zip(frame["sd_diff"], frame["n_pairs"])] if len(frame) else []
    return frame


def detectable_difference(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true mean paired difference detected with ``power`` at two-sided level ``alpha``.

    Normal-theory sizing of a paired test on ``n`` pairs whose differences have
    standard deviation ``sd``: ``(t[1-alpha/2] + t[power]) * sd / sqrt(n)`` with
    n - 1 degrees of freedom, widened by Wilcoxon's efficiency relative to the
    t-test on normal data (3/pi, i.e. it needs n * pi/3 pairs for the same power).
    The paired tables use ``alpha`` / (number of tests), Holm's first and
    strictest step, so the figure is what a difference needs to earn a mark.
    """
    from scipy.stats import t

    if n < 2 or not math.isfinite(sd):
        return math.nan
    return float((t.ppf(1 - alpha / 2, n - 1) + t.ppf(power, n - 1)) * sd / math.sqrt(n * 3 / math.pi))


def _compare(a: dict[tuple[Any, ...], float], b: dict[tuple[Any, ...], float]) -> dict[str, Any]:
    common = sorted(set(a) & set(b), key=str)
    # metrics are ratios of counts: differences equal on paper may differ in the last bits
    diff = np.round(np.asarray([a[k] - b[k] for k in common], dtype=float), 12)
    nonzero = int(np.count_nonzero(diff))
    row = {"n_pairs": len(common), "n_nonzero": nonzero, "mean_diff": float(diff.mean()) if len(diff) else math.nan,
           "sd_diff": float(diff.std(ddof=1)) if len(diff) > 1 else math.nan,
           "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum()),
           "statistic": math.nan, "p": math.nan, "test": "", "note": ""}
    if nonzero < MIN_PAIRS:
        row["note"] = f"n too small ({nonzero} non-zero pairs; a p below 0.05 needs at least {MIN_PAIRS})"
    else:
        row["statistic"], row["p"], row["test"] = signed_rank_test(diff)
    return row


def signed_rank_test(diff: Sequence[float], alternative: str = "two-sided") -> tuple[float, float, str]:
    """Wilcoxon signed-rank test of paired differences: (statistic, p, how p was computed).

    ``alternative`` is ``"two-sided"`` or ``"greater"`` (the differences tend to be positive).

    Zero differences are dropped (Wilcoxon's convention). Without ties among
    |d| the exact null distribution is used (n <= 50); with ties and n <= 13
    the p is exact by enumerating all 2**n sign flips of the mid-ranks (what
    ``scipy.stats.wilcoxon`` does too, but here with a vectorized statistic,
    which is thousands of times faster); otherwise the tie-corrected normal
    approximation. The statistic is min(W+, W-) (two-sided) or W+ (one-sided).
    """
    from scipy.stats import permutation_test, rankdata, wilcoxon

    # metrics are ratios of counts: differences equal on paper may differ in the last bits
    d = np.round(np.asarray(diff, dtype=float), 12)
    d = d[d != 0]
    n = len(d)
    ties = len(np.unique(np.abs(d))) < n
    if not ties:
        method = "exact" if n <= 50 else "asymptotic"
        res = wilcoxon(d, method=method, alternative=alternative)
        return float(res.statistic), float(res.pvalue), "exact" if method == "exact" else "normal approximation"
    if n > 13:
        res = wilcoxon(d, method="asymptotic", alternative=alternative)
        return float(res.statistic), float(res.pvalue), "normal approximation (tie-corrected)"
    ranks = rankdata(np.abs(d))

    def w_plus(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sum(ranks * (x > 0), axis=axis)

    res = permutation_test((d,), w_plus, permutation_type="samples", vectorized=True, n_resamples=np.inf,
                           alternative=alternative)
    w = float(w_plus(d))
    stat = w if alternative == "greater" else min(w, float(ranks.sum()) - w)
    return stat, float(res.pvalue), "exact (all sign flips; tied ranks)"


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (nan entries stay nan and do not count as tests)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paired_lines(paired_frame: pd.DataFrame, reference: str) -> list[str]:
    """The paired comparison as sentences, one per row; ``reference`` names the proposed methods ("" if none)."""
    if not reference:
        return ["no proposed method, nothing to compare: name one with --reference, or declare role='proposed' "
                "when registering it"]
    if not len(paired_frame):
        return [f"the proposed method ({reference}) and the others share no (dataset, teacher, student, seed); "
                "nothing to compare"]
    metric = paired_frame["metric"].iloc[0]
    what = {"key": "each dataset's model-selection metric",
            "primary": "each dataset's headline metric"}.get(metric, metric)
    pooled = "pooled over datasets" if (paired_frame["student"] == "all").all() else (
        "one student at a time, pooled over datasets (the Δ marks of the headline)")
    lines = [f"Proposed method minus the other on {what}, pairs matched on (dataset, teacher, student, seed), "
             f"{pooled}; two-sided; Holm-adjusted over all comparisons. Detectable: the smallest "
             f"true mean difference this design finds with {POWER:.0%} power at Holm's strictest level "
             "(normal-theory sizing from the SD of the differences, widened by Wilcoxon's efficiency 3/pi); "
             "a smaller difference may be real but unresolved."]
    for _, r in paired_frame.iterrows():
        who = f"{r['method']} vs {r['baseline']}" + ("" if r["student"] == "all" else f" ({r['student']})")
        head = (f"{who}: n = {r['n_pairs']} pairs, mean diff = {r['mean_diff']:+.4f} (SD {r['sd_diff']:.4f}; "
                f"detectable {r['detectable']:.3f}), wins/ties/losses = {r['wins']}/{r['ties']}/{r['losses']}")
        if r["note"]:
            lines.append(f"{head}; {r['note']}")
        else:
            lines.append(f"{head}; W = {r['statistic']:g}, p = {r['p']:.3g} ({r['test']}), "
                         f"p (Holm) = {r['p_holm']:.3g}")
    return lines
