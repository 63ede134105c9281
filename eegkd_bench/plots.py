"""Leaderboard figures: accuracy versus FLOPs per dataset, with the Pareto front.

Figures are drawn with matplotlib's object-oriented API on an Agg canvas, so
nothing here touches ``pyplot`` state or needs a display, and importing this
module never changes the backend of a user's interactive session.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: Columns the plotting functions read from a points table (one row per method × student).
POINT_COLUMNS = ("distiller", "student", "flops", "mean", "std", "is_teacher")

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")


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


def accuracy_flops_figure(points: Any, *, dataset: str, metric: str, simulated: bool) -> Any:
    """Scatter of a metric against student FLOPs (log x) with error bars and the students' Pareto front."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(6.4, 4.6), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    flops = points["flops"].to_numpy(dtype=float)
    keep = np.isfinite(flops) & (flops > 0) & np.isfinite(points["mean"].to_numpy(dtype=float))
    pts = points.loc[keep]
    is_teacher = pts["is_teacher"].to_numpy(dtype=bool)
    students = pts.loc[~is_teacher]
    teachers = pts.loc[is_teacher]
    distillers = sorted(students["distiller"].unique(), key=_method_order)
    student_names = sorted(students["student"].unique())
    colors = {d: f"C{i % 10}" for i, d in enumerate(distillers)}
    markers = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(student_names)}

    for _, p in students.iterrows():
        ax.errorbar(float(p["flops"]), float(p["mean"]), yerr=_finite_or_none(p["std"]),
                    fmt=markers[p["student"]], color=colors[p["distiller"]], ms=7, capsize=3, alpha=0.9)
    if len(students):
        idx = pareto_front(students["flops"].astype(float).to_numpy(), students["mean"].astype(float).to_numpy())
        front = students.iloc[idx]
        ax.step(front["flops"].astype(float), front["mean"].astype(float), where="post", color="0.35",
                lw=1.2, ls="--", zorder=0)
        # ring the front's points: a front of one point draws no line
        ax.scatter(front["flops"].astype(float), front["mean"].astype(float), s=190, facecolors="none",
                   edgecolors="0.35", linewidths=1.2, zorder=0)
    for _, t in teachers.iterrows():
        ax.errorbar(float(t["flops"]), float(t["mean"]), yerr=_finite_or_none(t["std"]), fmt="*", color="k",
                    ms=13, capsize=3)
        ax.annotate(f"teacher {t['student']}", (float(t["flops"]), float(t["mean"])), textcoords="offset points",
                    xytext=(-8, 8), ha="right", fontsize=8)

    ax.set_xscale("log")
    ax.set_xlabel("FLOPs per window (batch 1, log scale)")
    ax.set_ylabel(f"test {metric} (mean ± std over seeds)")
    title = f"{dataset}: {metric} vs FLOPs"
    ax.set_title(f"{title}\nSIMULATED DATA" if simulated else title, color="firebrick" if simulated else "black")
    ax.grid(True, which="both", alpha=0.25)

    handles = [Line2D([], [], color=colors[d], marker="o", ls="", label=d) for d in distillers]
    handles += [Line2D([], [], color="0.3", marker=markers[s], ls="", label=s) for s in student_names]
    if len(students):
        handles.append(Line2D([], [], color="0.35", ls="--", marker="o", mfc="none", ms=10,
                              label="Pareto front (students)"))
    if len(teachers):
        handles.append(Line2D([], [], color="k", marker="*", ls="", ms=10, label="teacher"))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.85)
    if not len(pts):
        ax.text(0.5, 0.5, "no finished cell with FLOPs", transform=ax.transAxes, ha="center", va="center")
    fig.tight_layout()
    return fig


def save_accuracy_flops(points: Any, out_dir: Path, *, dataset: str, metric: str, simulated: bool,
                        formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write the accuracy-vs-FLOPs figure of one dataset as ``accuracy_vs_flops_<dataset>.<fmt>``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = accuracy_flops_figure(points, dataset=dataset, metric=metric, simulated=simulated)
    FigureCanvasAgg(fig)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"accuracy_vs_flops_{safe_name(dataset)}.{fmt}"
        # no timestamps in the files, so regenerated plots of unchanged results diff as equal
        metadata = {"Date": None} if fmt == "svg" else {"Software": None} if fmt == "png" else None
        fig.savefig(path, format=fmt, metadata=metadata)
        paths.append(path)
    return paths


def _finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _method_order(name: str) -> tuple[int, str]:
    """The plain student first, then baselines, then DLink variants (the order of the tables)."""
    return (0 if name == "none" else 2 if name.startswith("dlink") else 1, name)
