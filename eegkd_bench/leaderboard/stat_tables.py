"""The statistics tables: bootstrap intervals over subjects, per-dataset comparisons, meta-analysis, ranks.

Each table's notes say which test, over which units (n), and which correction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from eegkd_bench.leaderboard.aggregate import Board, finite_or_none, multi_teacher
from eegkd_bench.leaderboard.document import LABELS, Cell, Row, Table
from eegkd_bench.leaderboard.meta import meta_analysis
from eegkd_bench.leaderboard.ranks import Ranking, board_ranking
from eegkd_bench.leaderboard.stats import ALPHA, MIN_PAIRS, POWER
from eegkd_bench.leaderboard.subjects import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    has_subjects,
    subject_comparisons,
    subject_intervals,
)


@dataclass
class Statistics:
    """Everything the statistics tables and figures show, computed once per leaderboard."""

    comparisons: pd.DataFrame
    meta: pd.DataFrame
    ranking: Ranking | None
    intervals: dict[tuple[tuple[str, str, str], str], tuple[float, float, float, int]]
    subjects: bool  # some record carries per-subject scores


def board_statistics(board: Board) -> Statistics:
    """Per-subject comparisons, their meta-analysis, the ranks and the bootstrap intervals of a board."""
    comparisons = subject_comparisons(board)
    return Statistics(comparisons, meta_analysis(comparisons), board_ranking(board), subject_intervals(board),
                      has_subjects(board))


def statistics_tables(board: Board, stats: Statistics, digits: int) -> list[Table]:
    """The tables that have something to show, in reading order."""
    tables = []
    if stats.subjects:
        tables.append(interval_table(board, stats, digits))
    if len(stats.comparisons):
        tables.append(comparison_table(board, stats))
    if len(stats.meta):
        tables.append(meta_table(board, stats))
    if stats.ranking is not None:
        tables.append(rank_table(stats.ranking))
    return tables


def interval_table(board: Board, stats: Statistics, digits: int) -> Table:
    """One row per board row: the mean over test subjects of the primary metric, with its bootstrap CI."""
    multi = multi_teacher(board)
    stub = (["Teacher"] if multi else []) + ["Method", "Student"]
    rows = []
    n_subjects: dict[str, int] = {}
    for row in board.frame.index:
        cells = []
        for ds in board.datasets:
            hit = stats.intervals.get((row, ds))
            if hit is None:
                cells.append(Cell("—"))
                continue
            mean, lo, hi, n = hit
            n_subjects[ds] = max(n, n_subjects.get(ds, 0))
            text = (f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if math.isfinite(lo)
                    else f"{mean:.{digits}f} (1 subject)")
            cells.append(Cell(text, sort=mean))
        if any(c.text != "—" for c in cells):
            rows.append(Row((list(row[:1]) if multi else []) + [row[1], row[2]], cells,
                            {"teacher": row[0], "method": row[1], "student": row[2]}))
    level = f"{CONFIDENCE:.0%}"
    notes = [
        f"Mean over test subjects of each subject's score, its seeds averaged first (seeds re-train the same "
        f"model on the same subjects: repeated measurements of a subject, not independent units); {level} "
        f"percentile bootstrap interval from {BOOTSTRAP_RESAMPLES} resamples of the subjects with replacement "
        f"(numpy default_rng({BOOTSTRAP_SEED})). Every subject weighs the same, so the mean can differ from "
        "the headline's, which pools all test windows.",
        "Test subjects: " + (", ".join(f"{board.ds_label(ds)} {n}" for ds, n in n_subjects.items()) or "none")
        + ". —: no per-subject scores (records without them, or the metric is undefined on every subject, "
        "as AUROC is when each subject's windows are of one class).",
    ]
    return Table("stats-ci", f"Bootstrap {level} CI over test subjects: primary metric per dataset", stub,
                 [LABELS.get(board.primary[ds], board.primary[ds]) for ds in board.datasets], rows,
                 [(board.ds_label(ds), 1) for ds in board.datasets], column_datasets=list(board.datasets),
                 notes=notes)


def _num(v: Any, fmt: str) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(f):
        return "—"
    if math.isinf(f):
        return "+inf" if f > 0 else "-inf"
    return format(f, fmt)


def comparison_table(board: Board, stats: Statistics) -> Table:
    """Each proposed method against every other on each dataset, over test subjects (or seeds)."""
    frame = stats.comparisons
    multi = multi_teacher(board)
    stub = ["Dataset"] + (["Teacher"] if multi else []) + ["Student", "Comparison"]
    columns = ["Unit", "n", "Mean diff", "SD", "SMD", "W", "p", "p (Holm)", "Detectable", "Wins/ties/losses"]
    rows = []
    for _, r in frame.iterrows():
        stub_cells = [board.ds_label(r["dataset"])] + ([r["teacher"]] if multi else []) + [
            r["student"], f"{r['method']} vs {r['baseline']}"]
        p_holm = float(r["p_holm"])
        cells = [Cell(r["unit"]), Cell(str(int(r["n"])), sort=float(r["n"])),
                 Cell(_num(r["mean_diff"], "+.4f"), sort=finite_or_none(r["mean_diff"])),
                 Cell(_num(r["sd_diff"], ".4f"), sort=finite_or_none(r["sd_diff"])),
                 Cell(_num(r["smd"], "+.2f"), sort=finite_or_none(r["smd"])),
                 Cell(_num(r["statistic"], "g"), sort=finite_or_none(r["statistic"])),
                 Cell(_num(r["p"], ".3g") if not r["note"] else f"— (< {MIN_PAIRS} non-zero)", sort=finite_or_none(r["p"])),
                 Cell(_num(p_holm, ".3g"), math.isfinite(p_holm) and p_holm < ALPHA, finite_or_none(p_holm)),
                 Cell(_num(r["detectable"], ".3f"), sort=finite_or_none(r["detectable"])),
                 Cell(f"{r['wins']}/{r['ties']}/{r['losses']}")]
        rows.append(Row(stub_cells, cells, {"dataset": r["dataset"], "method": r["baseline"], "student": r["student"]}))
    n_tests = int(frame["p"].notna().sum())
    notes = [
        "Proposed method minus the other on each dataset's primary metric (the headline's), one difference per "
        "test subject present in both, each subject's score averaged over its seeds first: seeds re-train the "
        "same model on the same subjects, so they are repeated measurements of a subject, not independent units "
        "(n: subjects).",
        f"Wilcoxon signed-rank test, two-sided (exact where possible), no p below {MIN_PAIRS} non-zero "
        + (f"differences; p (Holm): adjusted over the {n_tests} test(s) of this table, bold below {ALPHA}. "
           if n_tests else "differences (no row has that many). ") +
        "SMD: standardized mean difference, mean / SD of the differences (MOABB's effect size). Detectable: the "
        f"smallest true mean difference found with {POWER:.0%} power at Holm's strictest level.",
    ]
    fallback = frame[frame["unit"] == "seeds"]
    if len(fallback):
        reasons = sorted(set(fallback["fallback"]))
        notes.append(f"Unit 'seeds' ({len(fallback)} of {len(frame)} rows): {'; '.join(reasons)}; those rows pair "
                     "seeds on the whole-test-set score instead (n: seeds), as 'Paired comparison' below does"
                     + ("; no bootstrap intervals either" if not stats.subjects else "") + ".")
    return Table("stats-subjects", "Paired comparison by subject, per dataset (Wilcoxon signed-rank, SMD)", stub,
                 columns, rows, notes=notes)


def meta_table(board: Board, stats: Statistics) -> Table:
    """The meta-analysis of each comparison over the datasets it was made on."""
    frame = stats.meta
    multi = multi_teacher(board)
    stub = (["Teacher"] if multi else []) + ["Student", "Comparison"]
    columns = ["Datasets", "n", "Combined SMD", "p (one-sided)", "p (Holm)"]
    rows = []
    left = []
    for _, r in frame.iterrows():
        p_holm = float(r["p_holm"])
        cells = [Cell(str(r["n_datasets"]), sort=float(r["n_datasets"])), Cell(str(r["n"]), sort=float(r["n"])),
                 Cell(_num(r["effect"], "+.2f"), sort=finite_or_none(r["effect"])),
                 Cell(_num(r["p"], ".3g"), sort=finite_or_none(r["p"])),
                 Cell(_num(p_holm, ".3g"), math.isfinite(p_holm) and p_holm < ALPHA, finite_or_none(p_holm))]
        who = f"{r['method']} vs {r['baseline']}"
        rows.append(Row(([r["teacher"]] if multi else []) + [r["student"], who], cells,
                        {"method": r["baseline"], "student": r["student"]}))
        if r["left_out"]:
            left.append(f"{who} ({r['student']}): {', '.join(board.ds_label(d) for d in r['left_out'])}")
    notes = [
        "Per dataset: the one-sided Wilcoxon signed-rank p (proposed better) and the SMD of the comparison "
        "above, over the same units. Combined across datasets as MOABB's meta-analysis does "
        "(moabb.analysis.meta_analysis): Stouffer's method on the p-values, each dataset weighted by sqrt(n) "
        "(combine_pvalues), and the SMDs averaged with weights sqrt(n) / sum of sqrt(n) (combine_effects). "
        f"n: units summed over datasets; p (Holm): adjusted over the {len(frame)} row(s), bold below {ALPHA}.",
    ]
    if left:
        notes.append("Left out (fewer than 2 units, so no SMD): "
                     + "; ".join(left) + ".")
    return Table("stats-meta", "Meta-analysis across datasets (Stouffer's combined p, combined SMD)", stub,
                 columns, rows, notes=notes)


def rank_table(ranking: Ranking) -> Table:
    """Average rank of each method, with the Friedman test and the Nemenyi critical difference as notes."""
    order = ranking.order()
    best = ranking.avg_ranks[order[0]]
    first = (ranking.scores == ranking.scores.max(axis=1, keepdims=True)).sum(axis=0)
    rows = []
    for i in order:
        gap = ranking.avg_ranks[i] - best
        verdict = "best" if i == order[0] else "within CD" if gap < ranking.cd else "worse (≥ CD)"
        rows.append(Row([ranking.methods[i]],
                        [Cell(f"{ranking.avg_ranks[i]:.2f}", i == order[0], float(ranking.avg_ranks[i])),
                         Cell(str(int(first[i])), sort=float(first[i])), Cell(verdict)],
                        {"method": ranking.methods[i]}))
    n, k = ranking.scores.shape
    notes = [f"Each of the N = {n} blocks (a dataset, teacher and student backbone) ranks the k = {k} methods by "
             "the headline score (mean over seeds of the dataset's primary metric; rank 1 = best, ties share the "
             "mean rank). Blocks of one dataset with several students share their test subjects, so they are not "
             "fully independent."]
    if math.isfinite(ranking.chi2):
        notes.append(f"Friedman test: chi2 = {ranking.chi2:.3f} ({k - 1} df, tie-corrected), p = {ranking.p:.3g}; "
                     f"Iman-Davenport F = {_num(ranking.iman_davenport, '.3f')} ({k - 1}, {(k - 1) * (n - 1)} df), "
                     f"p = {ranking.p_iman_davenport:.3g}.")
    elif k < 3:
        notes.append("Friedman test: needs at least 3 methods (with 2, read the paired comparisons).")
    else:
        notes.append("Friedman test: undefined (every block ranks the methods the same, all tied).")
    notes.append(f"Nemenyi post-hoc test at alpha = {ranking.alpha}: CD = q_alpha * sqrt(k(k+1)/(6N)) = "
                 f"{ranking.q_alpha:.3f} * sqrt({k * (k + 1)}/{6 * n}) = {ranking.cd:.3f} (q_alpha: studentized "
                 "range, infinite df, / sqrt 2); two methods whose average ranks differ by less than the CD are not "
                 "told apart (a bar joins them in the diagram). First: blocks where the method scored best.")
    if ranking.excluded:
        notes.append(f"Not ranked (missing from some block): {', '.join(ranking.excluded)}.")
    return Table("stats-ranks", "Average rank over blocks (Friedman test, Nemenyi critical difference)", ["Method"],
                 ["Avg rank", "First", "vs best (Nemenyi)"], rows, notes=notes)


__all__ = ["Statistics", "board_statistics", "comparison_table", "interval_table", "meta_table", "rank_table",
           "statistics_tables"]
