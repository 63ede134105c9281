"""Statistics over test subjects: per-subject scores, paired comparisons per dataset, bootstrap intervals.

EEG benchmarks report results per subject: the subject, not the window or the
training seed, is the unit that generalises. A record's ``per_subject`` holds the
test metrics of each test subject (:func:`eegkd_bench.metrics.per_subject_metrics`).
Here a subject's score is averaged over the seeds of a (dataset, teacher, method,
student) first: seeds re-train the same model on the same subjects, so they are
repeated measurements of each subject, not independent units, and counting them
as such would shrink every p-value.

A comparison whose records carry no per-subject scores (or too few subjects with
a defined score, e.g. AUROC when each subject has one class) falls back to pairing
seeds on the whole-test-set score, and says so in its ``unit`` column.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable

import numpy as np
import pandas as pd

from eegkd_bench.leaderboard.aggregate import Board, num, teacher_labeler
from eegkd_bench.leaderboard.merge import created
from eegkd_bench.leaderboard.meta import moabb_meta
from eegkd_bench.leaderboard.roles import TEACHER_ROW
from eegkd_bench.leaderboard.stats import ALPHA, _compare, detectable_difference, holm, signed_rank_test

#: Resamples of the bootstrap confidence intervals, and the seed of their generator (numpy ``default_rng``).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
#: Coverage of the bootstrap intervals.
CONFIDENCE = 0.95

COLUMNS = ["dataset", "teacher", "student", "method", "baseline", "metric", "unit", "n", "n_nonzero", "mean_diff",
           "sd_diff", "smd", "wins", "ties", "losses", "statistic", "p", "test", "p_greater", "note", "fallback"]


def subject_scores(records: Iterable[dict[str, Any]], metric: str,
                   field: str = "per_subject") -> dict[str, float] | None:
    """Each test subject's ``metric`` averaged over ``records`` (the seeds of one cell); None when a record
    carries no per-subject ``metric``. A subject whose metric is undefined in every record is left out."""
    values: dict[str, list[float]] = defaultdict(list)
    recs = list(records)
    if not recs:
        return None
    for r in recs:
        block = r.get(field)
        if not isinstance(block, dict) or not isinstance(block.get("subjects"), list) \
                or not isinstance(block.get(metric), list) or len(block[metric]) != len(block["subjects"]):
            return None
        for sid, v in zip(block["subjects"], block[metric]):
            v = num(v)
            if math.isfinite(v):
                values[str(sid)].append(v)
    return {sid: float(np.mean(v)) for sid, v in values.items()}


def seed_scores(records: Iterable[dict[str, Any]], metric: str, field: str = "metrics") -> dict[str, float]:
    """The whole-test-set ``metric`` of each seed (the fallback unit)."""
    out = {}
    for r in records:
        v = num((r.get(field) or {}).get(metric))
        if math.isfinite(v):
            out[f"seed {r.get('seed')}"] = v
    return out


def cell_records(board: Board) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
    """The records of each (dataset, teacher label, student backbone, method); a wrapped student is
    grouped under the backbone it wraps, so it is compared with the plain one."""
    label_of = teacher_labeler(board.ok)
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in board.ok:
        groups[(str(r.get("dataset")), label_of(r), str(r.get("student")), str(r.get("distiller")))].append(r)
    return groups


def subject_comparisons(board: Board) -> pd.DataFrame:
    """Each proposed method against every other, per (dataset, teacher, student), over test subjects.

    One row per comparison (columns :data:`COLUMNS`, plus ``p_holm`` and ``detectable``): the
    differences are proposed minus other on the dataset's primary metric, one per subject
    present in both (scores averaged over seeds), or one per shared seed when the records
    carry no per-subject scores (``unit`` says which, ``fallback`` why). ``smd`` is MOABB's
    standardized mean difference (mean / SD of the differences; 0 when they are all zero,
    ±inf when they are one non-zero constant); ``p`` is the two-sided Wilcoxon signed-rank
    test (none below :data:`~eegkd_bench.leaderboard.stats.MIN_PAIRS` non-zero differences),
    Holm-adjusted over all rows; ``p_greater`` the one-sided p (proposed better) that the
    meta-analysis combines (0.5 when every difference is zero, as MOABB does).
    """
    groups = cell_records(board)
    proposed = list(board.roles.reference)
    rows = []
    for ds in board.datasets:
        blocks = sorted({(t, s) for (d, t, s, _) in groups if d == ds})
        metric = board.primary[ds]
        for teacher, student in blocks:
            methods = {m for (d, t, s, m) in groups if (d, t, s) == (ds, teacher, student)}
            for d in [m for m in proposed if m in methods]:
                for b in board.roles.order(methods - set(proposed)):
                    a_recs, b_recs = groups[(ds, teacher, student, d)], groups[(ds, teacher, student, b)]
                    rows.append({"dataset": ds, "teacher": teacher, "student": student, "method": d, "baseline": b,
                                 "metric": metric, **_paired_units(a_recs, b_recs, metric)})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    p = frame["p"].to_numpy(dtype=float)
    frame["p_holm"] = holm(p) if len(frame) else []
    tests = max(1, int(np.isfinite(p).sum()))
    frame["detectable"] = [detectable_difference(sd, n, ALPHA / tests)
                           for sd, n in zip(frame["sd_diff"], frame["n"])] if len(frame) else []
    return frame


def _paired_units(a_recs: list[dict[str, Any]], b_recs: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    a, b = subject_scores(a_recs, metric), subject_scores(b_recs, metric)
    fallback = ""
    if a is None or b is None:
        fallback = "no per-subject scores in the records"
    elif len(set(a) & set(b)) < 2:
        fallback = f"{metric} is defined on fewer than 2 shared test subjects"
    unit = "subjects"
    if fallback:
        a, b, unit = seed_scores(a_recs, metric), seed_scores(b_recs, metric), "seeds"
    row = _compare(a, b)
    common = sorted(set(a) & set(b))
    diff = np.round(np.asarray([a[k] - b[k] for k in common], dtype=float), 12)
    out = {"unit": unit, "n": row.pop("n_pairs"), **row, "smd": smd(diff), "p_greater": one_sided_p(diff),
           "fallback": fallback}
    return out


def smd(diff: np.ndarray) -> float:
    """Standardized mean difference of paired differences: MOABB's ``compute_effect`` (mean / SD, ddof=1;
    0 when every difference is 0, ±inf when they are one non-zero constant)."""
    diff = np.asarray(diff, dtype=float)
    if len(diff) == 0 or (len(diff) < 2 and diff[0] != 0):
        return math.nan
    pair = pd.DataFrame({"a": diff, "b": np.zeros_like(diff)})  # a - b is each difference, unchanged
    return float(moabb_meta().compute_effect(pair, ["a", "b"])[0, 1])


def one_sided_p(diff: np.ndarray) -> float:
    """One-sided Wilcoxon signed-rank p that the differences tend to be positive (0.5 when all are zero)."""
    d = np.asarray(diff, dtype=float)
    if not len(d):
        return math.nan
    if not np.count_nonzero(d):
        return 0.5
    return signed_rank_test(d, alternative="greater")[1]


# ------------------------------------------------------------- bootstrap CIs
def bootstrap_ci(scores: Iterable[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``scores`` (one per subject) and its percentile bootstrap interval.

    ``resamples`` draws of as many subjects, with replacement, from ``numpy.random.default_rng(seed)``
    (``rng.integers(0, n, size=(resamples, n))``); the interval is the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` percentiles of the resampled means. Fewer than 2 scores: no interval (nan).
    """
    s = np.asarray([v for v in scores if math.isfinite(v)], dtype=float)
    if len(s) == 0:
        return math.nan, math.nan, math.nan
    if len(s) < 2:
        return float(s.mean()), math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = s[rng.integers(0, len(s), size=(resamples, len(s)))].mean(axis=1)
    lo, hi = np.percentile(means, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(s.mean()), float(lo), float(hi)


def subject_intervals(board: Board) -> dict[tuple[tuple[str, str, str], str], tuple[float, float, float, int]]:
    """Per (board row, dataset): (mean over subjects, CI low, CI high, n subjects) of the primary metric.

    A student row's subjects are averaged over its seeds; the teacher row's come from
    ``teacher_per_subject`` of one record per seed (the newest). Rows without per-subject
    scores are absent.
    """
    label_of = teacher_labeler(board.ok)
    rows: dict[tuple[tuple[str, str, str], str], list[dict[str, Any]]] = defaultdict(list)
    teachers: dict[tuple[str, str], dict[Any, dict[str, Any]]] = defaultdict(dict)
    for r in board.ok:
        row = (label_of(r), str(r.get("distiller")), str(r.get("student_label") or r.get("student")))
        rows[(row, str(r["dataset"]))].append(r)
        seen = teachers[(row[0], str(r["dataset"]))]
        seed = r.get("seed")
        if seed not in seen or created(r) > created(seen[seed]):
            seen[seed] = r
    out = {}
    for (row, ds), recs in rows.items():
        scores = subject_scores(recs, board.primary[ds])
        if scores:
            out[(row, ds)] = (*bootstrap_ci(scores.values()), len(scores))
    for (label, ds), by_seed in teachers.items():
        recs = list(by_seed.values())
        scores = subject_scores(recs, board.primary[ds], field="teacher_per_subject")
        if scores:
            row = (label, TEACHER_ROW, str(recs[-1].get("teacher")))
            out[(row, ds)] = (*bootstrap_ci(scores.values()), len(scores))
    return out


def has_subjects(board: Board) -> bool:
    """Whether any finished record carries per-subject scores."""
    return any(isinstance(r.get("per_subject"), dict) for r in board.ok)


__all__ = ["BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CONFIDENCE", "bootstrap_ci", "cell_records", "has_subjects",
           "one_sided_p", "seed_scores", "smd", "subject_comparisons", "subject_intervals", "subject_scores"]
