"""Ranks of the methods over (dataset, teacher, student) blocks: Friedman test and Nemenyi critical difference.

Demšar (2006), "Statistical comparisons of classifiers over multiple data sets",
JMLR 7: in each block the k methods are ranked by their headline score (mean over
seeds of the dataset's primary metric; 1 = best, ties share the mean rank); the
Friedman test asks whether the average ranks differ more than chance allows, and
the Nemenyi post-hoc test calls two methods different when their average ranks
differ by at least the critical difference

    CD = q_alpha * sqrt(k (k + 1) / (6 N)),

where q_alpha is the studentized range statistic for k groups and infinite degrees
of freedom, divided by sqrt(2). Blocks of one dataset with several students share
their test subjects, so they are not fully independent: read the test as a summary.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from eegkd_bench.leaderboard.aggregate import Board
from eegkd_bench.leaderboard.roles import TEACHER_ROW
from eegkd_bench.leaderboard.stats import ALPHA


@dataclass
class Ranking:
    """Average ranks of ``methods`` over ``blocks`` (rows of ``scores``), with the Friedman and Nemenyi results."""

    methods: list[str]
    blocks: list[tuple[str, str, str]]  # (dataset, teacher, student backbone)
    scores: np.ndarray  # (N blocks, k methods), the headline means
    avg_ranks: np.ndarray
    chi2: float = math.nan  # Friedman's statistic (tie-corrected), k - 1 degrees of freedom
    p: float = math.nan
    iman_davenport: float = math.nan  # Iman and Davenport's F, (k - 1, (k - 1)(N - 1)) degrees of freedom
    p_iman_davenport: float = math.nan
    q_alpha: float = math.nan
    cd: float = math.nan
    alpha: float = ALPHA
    excluded: list[str] = field(default_factory=list)  # methods missing from some block

    def cliques(self) -> list[tuple[int, int]]:
        """Maximal runs of methods, in rank order, whose average ranks differ by less than the CD
        (as (first, last) indices into :meth:`order`); the bars of the critical-difference diagram."""
        ranks = self.avg_ranks[self.order()]
        runs = []
        for i in range(len(ranks)):
            j = i
            while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < self.cd:
                j += 1
            if j > i and not any(a <= i and j <= b for a, b in runs):
                runs.append((i, j))
        return runs

    def order(self) -> list[int]:
        """Method indices from the best average rank to the worst."""
        return [int(i) for i in np.argsort(self.avg_ranks, kind="stable")]


def critical_difference(k: int, n_blocks: int, alpha: float = ALPHA) -> tuple[float, float]:
    """(q_alpha, CD) of the Nemenyi test for ``k`` methods over ``n_blocks`` blocks."""
    from scipy.stats import studentized_range

    if k < 2 or n_blocks < 1:
        return math.nan, math.nan
    q = float(studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q, q * math.sqrt(k * (k + 1) / (6 * n_blocks))


def friedman_nemenyi(scores: np.ndarray, methods: list[str], blocks: list[tuple[str, str, str]],
                     alpha: float = ALPHA) -> Ranking:
    """Ranks (higher score = better = rank 1), the Friedman test (k >= 3) and the Nemenyi CD of a score matrix."""
    from scipy.stats import f, friedmanchisquare, rankdata

    scores = np.asarray(scores, dtype=float)
    n, k = scores.shape
    avg = rankdata(-scores, axis=1).mean(axis=0) if n else np.full(k, math.nan)
    out = Ranking(list(methods), list(blocks), scores, avg, alpha=alpha)
    out.q_alpha, out.cd = critical_difference(k, n, alpha)
    if k >= 3 and n >= 2:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")  # every block tied: the statistic is 0/0
            res = friedmanchisquare(*scores.T)
        out.chi2, out.p = float(res.statistic), float(res.pvalue)
        if math.isfinite(out.chi2):
            denom = n * (k - 1) - out.chi2
            out.iman_davenport = (n - 1) * out.chi2 / denom if denom > 0 else math.inf
            out.p_iman_davenport = float(f.sf(out.iman_davenport, k - 1, (k - 1) * (n - 1))) if denom > 0 else 0.0
    return out


def board_ranking(board: Board, alpha: float = ALPHA) -> Ranking | None:
    """Ranks of the methods on the board's headline scores; None with fewer than 2 methods or 2 blocks.

    A block is a (dataset, teacher, student backbone) with a finite headline score; methods
    missing from some block are left out (``excluded``), so every block ranks the same methods.
    """
    cells: dict[tuple[str, str, str], dict[str, float]] = {}
    for row in board.frame.index:
        if row[1] == TEACHER_ROW:
            continue
        for ds in board.datasets:
            v = board.at(row, (ds, board.primary[ds], "mean"))
            if math.isfinite(v):
                block = (ds, row[0], board.raw_student.get(row, row[2]))
                cells.setdefault(block, {}).setdefault(row[1], v)
    blocks = sorted(cells, key=lambda b: (board.datasets.index(b[0]), b[1], b[2]))
    every = set.intersection(*(set(c) for c in cells.values())) if cells else set()
    methods = board.roles.order(every)
    if len(methods) < 2 or len(blocks) < 2:
        return None
    scores = np.asarray([[cells[b][m] for m in methods] for b in blocks], dtype=float)
    out = friedman_nemenyi(scores, methods, blocks, alpha)
    out.excluded = board.roles.order(set().union(*(set(c) for c in cells.values())) - every)
    return out


__all__ = ["Ranking", "board_ranking", "critical_difference", "friedman_nemenyi"]
