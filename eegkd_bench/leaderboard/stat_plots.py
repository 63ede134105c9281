"""Statistics figures: the meta-analysis forest plot and the critical-difference diagram.

Drawn like :mod:`eegkd_bench.leaderboard.plots`: matplotlib's object-oriented API, no
``pyplot`` state. Files are ``meta_analysis[_<teacher>]_<student>.{png,svg}`` (under the
meta-analysis table) and ``critical_difference.{png,svg}`` (under the ranks table).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from eegkd_bench.leaderboard.aggregate import Board
from eegkd_bench.leaderboard.document import FigureSpec
from eegkd_bench.leaderboard.plots import safe_name
from eegkd_bench.leaderboard.ranks import Ranking
from eegkd_bench.leaderboard.stat_tables import Statistics


def forest_figure(rows: pd.DataFrame, *, title: str, simulated: bool) -> Any:
    """One panel per comparison: each dataset's SMD (square, area by weight) and the combined SMD (diamond).

    Weights are MOABB's: sqrt(n) / sum of sqrt(n). One-sided p-values are written on the right;
    an infinite SMD (a constant non-zero difference) is drawn as an arrow at the edge.
    """
    from matplotlib.figure import Figure

    n_rows = max((len(r) for r in rows["per_dataset"]), default=0) + 1
    fig = Figure(figsize=(1.8 + 4.2 * len(rows), 1.5 + 0.42 * n_rows), dpi=120, layout="constrained")
    axes = fig.subplots(1, max(1, len(rows)), squeeze=False)[0]
    for ax, (_, r) in zip(axes, rows.iterrows()):
        per = list(r["per_dataset"])
        weights = np.sqrt(np.asarray([n for _, n, _, _ in per], dtype=float))
        weights = weights / weights.sum() if weights.sum() > 0 else weights
        effects = [float(e) for _, _, e, _ in per] + [float(r["effect"])]
        finite = [abs(e) for e in effects if math.isfinite(e)]
        lim = max(1.0, 1.25 * max(finite)) if finite else 1.0
        labels = [f"{ds} (n={n})" for ds, n, _, _ in per] + ["combined"]
        ys = np.arange(len(labels))[::-1].astype(float)
        pvals = [float(p) for _, _, _, p in per] + [float(r["p"])]
        for i, (y, e, p) in enumerate(zip(ys, effects, pvals)):
            last = i == len(labels) - 1
            x = float(np.clip(e, -lim, lim)) if not math.isnan(e) else 0.0
            marker = ("D" if last else "s") if math.isfinite(e) else (">" if e > 0 else "<")
            size = 110 if last else 30 + 170 * float(weights[i])
            ax.scatter([x], [y], s=size, marker=marker, color="C3" if last else "C0", zorder=3)
            ax.text(1.02, y, f"p = {p:.2g}", transform=ax.get_yaxis_transform(), va="center", fontsize=8,
                    fontweight="bold" if last else "normal", clip_on=False)
        ax.axvline(0.0, color="0.5", lw=1, ls="--", zorder=1)
        ax.axhline(ys[-1] + 0.5, color="0.8", lw=0.8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-0.7, len(labels) - 0.3)
        ax.set_yticks(ys, labels, fontsize=8)
        ax.set_title(f"{r['method']} vs {r['baseline']}", fontsize=10)
        ax.set_xlabel("SMD: mean / SD of the differences\n(> 0: the proposed method is better)", fontsize=8)
        ax.grid(True, axis="x", alpha=0.25)
    head = f"{title} — SIMULATED DATA" if simulated else title
    fig.suptitle(head, fontsize=11, color="firebrick" if simulated else "black")
    return fig


def cd_figure(ranking: Ranking, *, simulated: bool) -> Any:
    """Demšar's critical-difference diagram: average ranks on an axis (1 = best, on the left), the CD
    as a bar above it, and thick bars joining methods whose ranks differ by less than the CD."""
    from matplotlib.figure import Figure

    k = len(ranking.methods)
    order = ranking.order()
    ranks = ranking.avg_ranks[order]
    names = [f"{ranking.methods[i]} ({ranking.avg_ranks[i]:.2f})" for i in order]
    half = math.ceil(k / 2)
    cliques = ranking.cliques()
    width = 8.0
    side = min(2.6, 0.2 + 0.068 * max(len(n) for n in names))  # inches left and right for the names
    depth = 0.45 + 0.22 * len(cliques) + 0.3 * max(half, k - half)
    fig = Figure(figsize=(width, 1.25 + depth), dpi=120)
    ax = fig.add_axes((side / width, 0.02, 1 - 2 * side / width, 0.9 if not simulated else 0.82))
    ax.set_axis_off()
    ax.set_xlim(1, k)
    ax.set_ylim(depth, -1.1)
    ax.plot([1, k], [0, 0], color="k", lw=1.2)
    for t in range(1, k + 1):
        ax.plot([t, t], [0, -0.1], color="k", lw=1)
        ax.text(t, -0.16, str(t), ha="center", va="bottom", fontsize=9)
    ax.text((1 + k) / 2, -0.45, "average rank (1 = best)", ha="center", va="bottom", fontsize=8, color="0.3")
    if math.isfinite(ranking.cd):
        end = min(1 + ranking.cd, k)  # a CD longer than the axis ends at its edge, open
        ax.plot([1, end], [-0.75, -0.75], color="firebrick", lw=2, clip_on=False)
        ax.plot([1, 1], [-0.81, -0.69], color="firebrick", lw=1.5, clip_on=False)
        if end == 1 + ranking.cd:
            ax.plot([end, end], [-0.81, -0.69], color="firebrick", lw=1.5, clip_on=False)
        longer = "" if end == 1 + ranking.cd else " (longer than the axis)"
        ax.text((1 + end) / 2, -0.8, f"CD = {ranking.cd:.2f}{longer}", ha="center", va="bottom", fontsize=9,
                color="firebrick", clip_on=False)
    base = 0.3 + 0.22 * len(cliques)
    for j, (a, b) in enumerate(cliques):
        y = 0.22 + 0.22 * j
        ax.plot([ranks[a] - 0.03, ranks[b] + 0.03], [y, y], color="k", lw=4, solid_capstyle="round")
    for pos, (x, name) in enumerate(zip(ranks, names)):
        left = pos < half
        y = base + 0.3 * (pos if left else k - 1 - pos)
        edge = 1 - 0.02 * (k - 1) if left else k + 0.02 * (k - 1)
        ax.plot([x, x, edge], [0, y, y], color="0.25", lw=1, clip_on=False)
        ax.text(edge + (-0.01 if left else 0.01) * (k - 1), y, name, ha="right" if left else "left",
                va="center", fontsize=9, clip_on=False)
    n = len(ranking.blocks)
    title = f"Critical difference (Nemenyi, alpha = {ranking.alpha}): {k} methods, {n} blocks"
    fig.suptitle(f"{title} — SIMULATED DATA" if simulated else title, fontsize=10,
                 color="firebrick" if simulated else "black", y=0.98)
    return fig


def statistics_figures(board: Board, stats: Statistics) -> list[FigureSpec]:
    """The forest plot of each (teacher, student) with a meta-analysis, and the critical-difference diagram."""
    specs = []
    meta = stats.meta
    several = meta["teacher"].nunique() > 1 if len(meta) else False
    for (teacher, student), rows in (meta.groupby(["teacher", "student"], sort=False) if len(meta) else []):
        datasets = sorted({d for ds in rows["datasets"] for d in ds})
        simulated = any(d in board.simulated for d in datasets)
        who = f"{teacher}, {student}" if several else student
        stem = "meta_analysis_" + (f"{safe_name(teacher)}_" if several else "") + safe_name(student)

        def draw(rows: pd.DataFrame = rows, who: str = who, simulated: bool = simulated) -> Any:
            return forest_figure(rows, title=f"Meta-analysis across datasets ({who})", simulated=simulated)

        specs.append(FigureSpec(stem, f"Meta-analysis across datasets ({who}): SMD per dataset and combined",
                                draw, None, "stats-meta"))
    if stats.ranking is not None:
        ranking = stats.ranking
        simulated = any(b[0] in board.simulated for b in ranking.blocks)

        def draw_cd() -> Any:
            return cd_figure(ranking, simulated=simulated)

        specs.append(FigureSpec("critical_difference", "Critical-difference diagram of the average ranks",
                                draw_cd, None, "stats-ranks"))
    return specs


__all__ = ["cd_figure", "forest_figure", "statistics_figures"]
