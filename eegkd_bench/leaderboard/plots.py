"""Leaderboard figures: accuracy versus FLOPs per dataset with the Pareto front, and report-section heatmaps.

Figures are drawn with matplotlib's object-oriented API on an Agg canvas, so
nothing here touches ``pyplot`` state or needs a display, and importing this
module never changes the backend of a user's interactive session. Methods are
ordered and coloured in the tables' order (:class:`~eegkd_bench.leaderboard.roles.Roles`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from eegkd_bench.leaderboard.aggregate import Board, build_board, finite_or_none
from eegkd_bench.leaderboard.document import LABELS, FigureSpec, eng
from eegkd_bench.leaderboard.roles import TEACHER_ROW
from eegkd_bench.leaderboard.sections import Section

#: Columns the plotting functions read from a points table (one row per method × student).
POINT_COLUMNS = ("teacher", "distiller", "student", "flops", "mean", "std", "is_teacher")

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p")


def pareto_front(cost: Sequence[float], score: Sequence[float]) -> np.ndarray:
    """Indices of the points no other point beats (cost lower-or-equal and score higher-or-equal), by rising cost."""
    c = np.asarray(cost, dtype=float)
    s = np.asarray(score, dtype=float)
    valid = np.flatnonzero(np.isfinite(c) & np.isfinite(s))
    # cheapest first; among equal cost the best score first, so it alone represents that cost
    order = valid[np.lexsort((-s[valid], c[valid]))]
    front: list[int] = []
    best = -np.inf
    for i in order:
        if s[i] > best:
            front.append(int(i))
            best = s[i]
    return np.asarray(front, dtype=int)


def safe_name(text: str) -> str:
    """A file-name-safe version of a dataset name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "dataset"


def plot_points(board: Board, dataset: str, metric: str) -> pd.DataFrame:
    """One point per row of the board on one dataset: FLOPs, metric mean and std (rows in table order)."""
    frame = board.frame
    if (dataset, metric, "mean") not in frame.columns:
        # the plotted metric is not among the table's columns; aggregate it from the records
        frame = build_board(board.ok, [metric], reference=board.roles.reference or None).frame
    rows = []
    if (dataset, metric, "mean") in frame.columns:
        for row in frame.index:
            rows.append({"teacher": row[0], "distiller": row[1], "student": row[2],
                         "flops": frame.loc[row, (dataset, "flops", "value")],
                         "mean": frame.loc[row, (dataset, metric, "mean")],
                         "std": frame.loc[row, (dataset, metric, "std")], "is_teacher": row[1] == TEACHER_ROW})
    return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def accuracy_flops_figure(points: pd.DataFrame, *, dataset: str, metric: str, simulated: bool,
                          methods: Sequence[str] | None = None) -> Any:
    """Scatter of a metric against FLOPs (log x) with error bars and the Pareto front of every model shown.

    ``methods`` fixes the order (and so the colours) of the distillers; by default their order of appearance.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(7.6, 4.6), dpi=120, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    flops = points["flops"].to_numpy(dtype=float)
    keep = np.isfinite(flops) & (flops > 0) & np.isfinite(points["mean"].to_numpy(dtype=float))
    pts = points.loc[keep].reset_index(drop=True)
    is_teacher = pts["is_teacher"].to_numpy(dtype=bool)
    students, teachers = pts.loc[~is_teacher], pts.loc[is_teacher]
    order = list(methods or dict.fromkeys(points["distiller"]))
    distillers = sorted(students["distiller"].unique(), key=lambda d: (order.index(d) if d in order else len(order), d))
    student_names = sorted(students["student"].unique())
    colors = {d: f"C{i % 10}" for i, d in enumerate(distillers)}
    markers = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(student_names)}

    xs = _dodge(students["flops"].astype(float).to_numpy(), students["mean"].astype(float).to_numpy())
    for x, (_, p) in zip(xs, students.iterrows()):
        ax.errorbar(x, float(p["mean"]), yerr=finite_or_none(p["std"]),
                    fmt=markers[p["student"]], color=colors[p["distiller"]], ms=7, capsize=3, alpha=0.9, zorder=3)
    for _, t in teachers.iterrows():
        ax.errorbar(float(t["flops"]), float(t["mean"]), yerr=finite_or_none(t["std"]), fmt="*", color="k",
                    mfc="gold", mec="k", ms=16, capsize=3, zorder=4)
    if len(pts):
        idx = pareto_front(pts["flops"].astype(float).to_numpy(), pts["mean"].astype(float).to_numpy())
        front = pts.iloc[idx]
        fx, fy = front["flops"].astype(float).to_numpy(), front["mean"].astype(float).to_numpy()
        # the staircase continues to the right edge: beyond the costliest front point nothing scores higher
        ax.step(np.append(fx, fx[-1] * 1e3), np.append(fy, fy[-1]), where="post", color="0.4", lw=1.2, ls="--",
                zorder=1)
        ax.scatter(fx, fy, s=240, facecolors="none", edgecolors="0.4", linewidths=1.2, zorder=2)

    ax.set_xscale("log")
    if len(pts):
        lo, hi = float(pts["flops"].min()), float(pts["flops"].max())
        pad = max(hi / lo, 1.5) ** 0.12
        ax.set_xlim(lo / pad, hi * pad)
        y = pts["mean"].astype(float).to_numpy()
        err = np.nan_to_num(pts["std"].astype(float).to_numpy())
        ylo, yhi = float(np.min(y - err)), float(np.max(y + err))
        ypad = max(yhi - ylo, 0.02) * 0.18
        ax.set_ylim(ylo - ypad, yhi + 1.6 * ypad)  # headroom for the teacher's label
    decades = np.log10(ax.get_xlim()[1] / ax.get_xlim()[0])
    # as many labelled ticks as fit: 1-2-3-5 within a decade, 1-2-5 over a few, powers of ten beyond
    subs = (1.0, 2.0, 3.0, 5.0) if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: eng(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    for _, t in teachers.iterrows():
        x, y = float(t["flops"]), float(t["mean"])
        frac = ax.transAxes.inverted().transform(ax.transData.transform((x, y)))[0]
        left = frac > 0.5  # the label goes toward the middle, so it stays inside the frame
        ax.annotate(f"teacher {t['student']}", (x, y), textcoords="offset points", xytext=(-12 if left else 12, 6),
                    ha="right" if left else "left", va="bottom", fontsize=8.5, fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "alpha": 0.9}, zorder=5)
    ax.set_xlabel("FLOPs per window (batch 1, log scale)")
    name = LABELS.get(metric, metric)
    ax.set_ylabel(f"test {name}\n(mean ± std over seeds)")
    title = f"{dataset}: {name} vs FLOPs"
    ax.set_title(f"{title} — SIMULATED DATA" if simulated else title, color="firebrick" if simulated else "black",
                 fontsize=11)
    ax.grid(True, which="both", alpha=0.25)

    handles = [Line2D([], [], color=colors[d], marker="o", ls="", label=d) for d in distillers]
    handles += [Line2D([], [], color="0.3", marker=markers[s], ls="", label=f"student: {s}") for s in student_names]
    if len(teachers):
        handles.append(Line2D([], [], color="k", marker="*", mfc="gold", ls="", ms=12, label="teacher"))
    if len(pts):
        handles.append(Line2D([], [], color="0.4", ls="--", marker="o", mfc="none", ms=10, label="Pareto front"))
    if handles:
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                  frameon=False)
    if not len(pts):
        ax.text(0.5, 0.5, "no finished cell with FLOPs", transform=ax.transAxes, ha="center", va="center")
    return fig


def heatmap_figure(section: Section, dataset: str, *, simulated: bool) -> Any:
    """A section's rows on one dataset as a heatmap, each cell labelled with its value."""
    from matplotlib.figure import Figure

    rows = [r for r in section.rows if r.dataset == dataset]
    matrix = np.asarray([r.values for r in rows], dtype=float)
    labels = [f"{r.method} · {r.student} · {r.label}" for r in rows]
    width = min(4.0 + 0.7 * len(section.columns) + 0.06 * max((len(s) for s in labels), default=0), 14)
    fig = Figure(figsize=(width, 1.6 + 0.38 * len(rows)), dpi=120, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(matrix, cmap="viridis", aspect="auto", vmin=min(0.0, float(matrix.min())),
                   vmax=float(matrix.max()))
    ax.set_xticks(range(len(section.columns)), section.columns, fontsize=8, rotation=30 if len(section.columns) > 8
                  else 0)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    norm = im.norm
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            v = matrix[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7.5,
                    color="black" if norm(v) > 0.6 else "white")
    fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02).ax.tick_params(labelsize=7)
    title = f"{dataset}: {section.title}"
    ax.set_title(f"{title} — SIMULATED DATA" if simulated else title, fontsize=10,
                 color="firebrick" if simulated else "black")
    return fig


def figure_specs(board: Board, sections: list[Section], metric: str | None = None) -> list[FigureSpec]:
    """Every figure of a leaderboard: accuracy vs FLOPs per dataset, heatmaps of sections that ask for them.

    ``metric`` is the plotted metric; None plots each dataset's primary metric, as the headline table shows.
    """
    methods = board.roles.order(set(board.frame.index.get_level_values("distiller")))
    specs = []
    for ds in board.datasets:
        m = metric or board.primary[ds]

        def draw(ds: str = ds, m: str = m) -> Any:
            return accuracy_flops_figure(plot_points(board, ds, m), dataset=ds, metric=m,
                                         simulated=ds in board.simulated, methods=methods)

        specs.append(FigureSpec(f"accuracy_vs_flops_{safe_name(ds)}",
                                f"{board.ds_label(ds)}: {LABELS.get(m, m)} vs FLOPs",
                                draw, ds, "headline"))
    for sec in sections:
        if sec.plot != "heatmap":
            continue
        for ds in sec.datasets():
            def draw_heatmap(ds: str = ds, sec: Section = sec) -> Any:
                return heatmap_figure(sec, ds, simulated=ds in board.simulated)

            specs.append(FigureSpec(f"{safe_name(sec.name)}_{safe_name(ds)}", f"{board.ds_label(ds)}: {sec.title}",
                                    draw_heatmap, ds, f"section-{sec.name}"))
    return specs


def save_figures(specs: Sequence[FigureSpec], out_dir: Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write each figure as ``<stem>.<fmt>``, without timestamps so unchanged results give unchanged files."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in specs:
        fig = spec.draw()
        FigureCanvasAgg(fig)
        for fmt in formats:
            path = out_dir / f"{spec.stem}.{fmt}"
            metadata = {"Date": None} if fmt == "svg" else {"Software": None} if fmt == "png" else None
            with rc_context({"svg.hashsalt": "eegkd-bench"}):
                fig.savefig(path, format=fmt, metadata=metadata)
            paths.append(path)
    return paths


def _dodge(x: np.ndarray, y: np.ndarray, step: float = 0.012) -> np.ndarray:
    """x nudged apart (by a fraction of a percent per point) where points would hide one another exactly."""
    out = x.copy()
    groups: dict[tuple[float, float], list[int]] = {}
    for i, key in enumerate(zip(np.round(np.log10(np.where(x > 0, x, np.nan)), 3), np.round(y, 3))):
        groups.setdefault(key, []).append(i)
    for idx in groups.values():
        for k, i in enumerate(idx):
            out[i] = x[i] * (1 + step * (k - (len(idx) - 1) / 2))
    return out
