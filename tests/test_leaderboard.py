"""Leaderboards: aggregation, best marks, labels, merging, paired statistics, formats, plots, export."""
from __future__ import annotations

import copy
import json
import math
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from eegkd_bench.api import UserError
from eegkd_bench.leaderboard import (
    MIN_PAIRS,
    export_records,
    holm,
    leaderboard_frame,
    merge_result_dirs,
    paired_comparisons,
    render,
    router_frame,
    write_leaderboard,
)
from eegkd_bench.plots import pareto_front
from eegkd_bench.results import ResultStore

# ------------------------------------------------------------------- fixtures
DATASETS = {  # name: (kind, task, n_classes)
    "sim-mi": ("simulated", "multiclass", 4),
    "tuab": ("real", "binary", 2),
}
METHOD_BASE = {"none": 0.50, "kd": 0.55, "dlink": 0.60}
STUDENTS = {"eegnet": (2_500, 2.0e6, 0.8), "shallowconvnet": (40_000, 9.0e6, 1.5)}
TEACHER = {"params": 4_900_000, "flops": 6.0e9, "latency": 35.0}


def make_record(dataset: str, distiller: str, student: str, seed: int, *, status: str = "ok",
                created: str = "2025-01-01T00:00:00+00:00", value: float | None = None) -> dict[str, Any]:
    """A record shaped like the runner's, with metrics that depend on method, student and seed."""
    kind, task, n_classes = DATASETS.get(dataset, ("real", "multiclass", 4))
    params, flops, latency = STUDENTS[student]
    ba = value if value is not None else METHOD_BASE[distiller] + (0.02 if student == "eegnet" else 0.0) + 0.01 * seed
    if task == "multiclass":
        metrics = {"balanced_accuracy": ba, "cohen_kappa": (ba - 0.25) / 0.75, "f1_weighted": ba - 0.01,
                   "accuracy": ba + 0.005}
        teacher_metrics = {"balanced_accuracy": 0.70 + 0.01 * seed, "cohen_kappa": 0.6, "f1_weighted": 0.69,
                           "accuracy": 0.7}
    else:
        metrics = {"balanced_accuracy": ba, "auroc": ba + 0.1, "auc_pr": ba + 0.05, "accuracy": ba}
        teacher_metrics = {"balanced_accuracy": 0.80 + 0.01 * seed, "auroc": 0.88, "auc_pr": 0.86, "accuracy": 0.8}
    rec: dict[str, Any] = {
        "key": f"{dataset}-{distiller}-{student}-{seed}", "schema_version": 1, "status": status, "error": "",
        "dataset": dataset, "data_kind": kind, "data_checksum": f"sha-{dataset}",
        "split_protocol": "subject-disjoint", "task": task, "n_classes": n_classes,
        "teacher": "cbramod-mini", "teacher_init": "random", "student": student, "distiller": distiller,
        "seed": seed, "preset": "quick",
        "config": {"student_cfg": {"epochs": 12, "lr": 0.002}, "distiller_options": {}},
        "metrics": metrics, "val_metrics": metrics, "teacher_metrics": teacher_metrics,
        "key_metric": "cohen_kappa" if task == "multiclass" else "auroc",
        "student_params": params, "student_flops": flops, "student_latency_ms": latency + 0.01 * seed,
        "training_only_params": 12_000 if distiller == "dlink" else 0,
        "teacher_params": TEACHER["params"], "teacher_flops": TEACHER["flops"],
        "teacher_latency_ms": TEACHER["latency"], "train_time_s": 30.0, "best_epoch": 7, "epochs": 12,
        "versions": {"eegkd_bench": "0.1.0", "torch": "2.13.0", "numpy": "2.1", "python": "3.12"},
        "created": created, "host": "box (x86_64)",
    }
    if distiller == "dlink":
        rec["distiller_report"] = {"router_alpha": [0.1, 0.2 + 0.01 * seed, 0.7 - 0.01 * seed]}
    if status == "failed":
        rec.update(error="RuntimeError: loss is nan", metrics={}, val_metrics={}, teacher_metrics={},
                   student_latency_ms=None)
    return rec


def fixture_records() -> list[dict[str, Any]]:
    """2 datasets (one simulated) × 3 methods × 2 students × 3 seeds, one failed and one skipped cell."""
    recs = []
    for ds in DATASETS:
        for method in METHOD_BASE:
            for student in STUDENTS:
                for seed in range(3):
                    failed = (ds, method, student, seed) == ("tuab", "kd", "shallowconvnet", 2)
                    recs.append(make_record(ds, method, student, seed, status="failed" if failed else "ok"))
    skipped = make_record("tuev", "kd", "eegnet", 0)
    skipped.update(key="skip-tuev", status="skipped", data_kind="real", metrics={}, teacher_metrics={},
                   error="skipped: tuev not downloaded: looked in /data/tuev; get it from isip.piconepress.com")
    recs.append(skipped)
    return recs


# --------------------------------------------------------------- aggregation
def test_mean_std_and_n_by_hand() -> None:
    recs = [make_record("sim-mi", "kd", "eegnet", s, value=v) for s, v in enumerate((0.5, 0.6, 0.7))]
    recs += [make_record("sim-mi", "dlink", "eegnet", s, value=v) for s, v in enumerate((0.40, 0.46))]
    f = leaderboard_frame(recs, metric="balanced_accuracy")
    kd = f.loc[("cbramod-mini", "kd", "eegnet")]
    assert kd[("sim-mi", "balanced_accuracy", "mean")] == pytest.approx(0.6)
    assert kd[("sim-mi", "balanced_accuracy", "std")] == pytest.approx(0.1)  # sample std of 0.5, 0.6, 0.7
    assert kd[("sim-mi", "balanced_accuracy", "n")] == 3
    dl = f.loc[("cbramod-mini", "dlink", "eegnet")]
    assert dl[("sim-mi", "balanced_accuracy", "mean")] == pytest.approx(0.43)
    assert dl[("sim-mi", "balanced_accuracy", "std")] == pytest.approx(math.sqrt(2 * 0.03 ** 2))
    assert dl[("sim-mi", "balanced_accuracy", "n")] == 2
    assert dl[("sim-mi", "training_only_params", "value")] == 12_000
    # latency: median over seeds 0, 1 of 0.8 + 0.01*seed
    assert dl[("sim-mi", "latency_ms", "value")] == pytest.approx(0.805)


def test_frame_rows_columns_failed_and_skipped() -> None:
    f = leaderboard_frame(fixture_records())
    assert f.attrs["datasets"] == ["sim-mi", "tuab"]  # the skipped-only dataset is not a column
    assert f.attrs["simulated"] == ["sim-mi"]
    assert f.attrs["metrics"]["sim-mi"] == ["balanced_accuracy", "cohen_kappa", "f1_weighted"]
    assert f.attrs["metrics"]["tuab"] == ["balanced_accuracy", "auroc", "auc_pr"]
    (reason, n), = f.attrs["skipped"]["tuev"]
    assert n == 1 and "not downloaded" in reason
    kd = f.loc[("cbramod-mini", "kd", "shallowconvnet")]
    assert kd[("tuab", "cells", "failed")] == 1
    assert kd[("tuab", "balanced_accuracy", "n")] == 2
    assert kd[("tuab", "balanced_accuracy", "mean")] == pytest.approx(0.555)  # seeds 0, 1 of 0.55 + 0.01*seed
    # the teacher row comes first and carries the teacher's own metrics and cost
    assert f.index[0] == ("cbramod-mini", "teacher", "cbramod-mini")
    t = f.loc[("cbramod-mini", "teacher", "cbramod-mini")]
    assert t[("tuab", "balanced_accuracy", "mean")] == pytest.approx(0.81)
    assert t[("tuab", "balanced_accuracy", "n")] == 3
    assert t[("tuab", "params", "value")] == TEACHER["params"]
    assert t[("sim-mi", "flops", "value")] == TEACHER["flops"]
    assert len(f) == 1 + 3 * 2


def test_key_metric_selection_and_unknown_metric() -> None:
    f = leaderboard_frame(fixture_records(), metric="key")
    assert f.attrs["metrics"] == {"sim-mi": ["cohen_kappa"], "tuab": ["auroc"]}
    with pytest.raises(UserError, match="did you mean 'balanced_accuracy'"):
        leaderboard_frame(fixture_records(), metric="balanced_acc")


def test_repeated_seed_counts_once_newest_wins() -> None:
    old = make_record("sim-mi", "kd", "eegnet", 0, value=0.3, created="2024-01-01T00:00:00+00:00")
    new = make_record("sim-mi", "kd", "eegnet", 0, value=0.5, created="2025-01-01T00:00:00+00:00")
    new["key"] = "other-key"
    f = leaderboard_frame([new, old], metric="balanced_accuracy")
    row = f.loc[("cbramod-mini", "kd", "eegnet")]
    assert row[("sim-mi", "balanced_accuracy", "n")] == 1
    assert row[("sim-mi", "balanced_accuracy", "mean")] == pytest.approx(0.5)
    assert any("only the newest" in n for n in f.attrs["notes"])


# ---------------------------------------------------------------- rendering
def test_markdown_best_marked_simulated_label_and_sections() -> None:
    md = render(fixture_records(), "md", command="eegkd-bench leaderboard --results r")
    assert md.startswith("# eegkd-bench leaderboard — includes SIMULATED DATA")
    assert "sim-mi (simulated) · Bal. acc" in md and "tuab · AUROC" in md
    assert "tuab (simulated)" not in md
    # dlink on eegnet has the best mean everywhere: 0.62 + 0.01 = 0.630 on balanced accuracy
    dlink_row = next(line for line in md.splitlines() if line.startswith("| dlink | eegnet"))
    assert "**0.630 ± 0.010**" in dlink_row
    kd_row = next(line for line in md.splitlines() if line.startswith("| kd | eegnet"))
    assert "**" not in kd_row.split("|")[3]
    teacher_row = next(line for line in md.splitlines() if line.startswith("| teacher | cbramod-mini"))
    assert "0.710 ± 0.010" in teacher_row and "**0.710" not in teacher_row  # teacher is shown, not ranked
    # failed cell is visible, with its seed count
    assert "(n=2, 1 failed)" in md
    # cost table: eegnet is cheapest, bold
    assert "**2.5k**" in md and "**2M**" in md
    for text in ("`eegkd-bench leaderboard --results r`", "eegkd-bench**: 0.1.0", "torch**: 2.13.0",
                 "37 (35 ok, 1 failed, 1 skipped)", "### Skipped datasets", "tuev: 1 cell(s) skipped",
                 "### Paired comparison (Wilcoxon signed-rank)", "### Router"):
        assert text in md, text


def test_title_all_simulated() -> None:
    recs = [r for r in fixture_records() if r["dataset"] == "sim-mi"]
    for fmt in ("md", "csv", "html", "latex"):
        assert "SIMULATED DATA" in render(recs, fmt, title="Demo")
    assert "SIMULATED DATA" not in render([r for r in fixture_records() if r["dataset"] == "tuab"], "md")


def test_each_format_renders() -> None:
    recs = fixture_records()
    html_text = render(recs, "html")
    assert html_text.startswith("<!DOCTYPE html>") and "<strong>0.630 ± 0.010</strong>" in html_text
    assert 'colspan="3">sim-mi (simulated)</th>' in html_text
    tex = render(recs, "latex")
    assert "\\textbf{0.630 $\\pm$ 0.010}" in tex and "\\multicolumn{3}{c}{sim-mi (simulated)}" in tex
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 3  # metrics, cost, router
    assert "cbramod-mini" in tex and "cbramod_mini" not in tex and "training\\_only" not in tex
    csv_text = render(recs, "csv")
    table = pd.read_csv(StringIO(csv_text), comment="#")
    assert len(table) == 7 * 2
    best = table[(table.method == "dlink") & (table.student == "eegnet") & (table.dataset == "sim-mi")]
    assert best["best"].item() == "balanced_accuracy;cohen_kappa;f1_weighted"
    assert set(table[table.dataset == "sim-mi"].data_kind) == {"simulated"}
    kd = table[(table.method == "kd") & (table.student == "shallowconvnet") & (table.dataset == "tuab")]
    assert kd["cells_failed"].item() == 1 and kd["balanced_accuracy_n"].item() == 2
    assert "# paired: dlink vs kd" in csv_text
    with pytest.raises(UserError, match="did you mean 'md'"):
        render(recs, "mdd")


def test_dataset_where_every_cell_failed_still_shows_the_failures() -> None:
    recs = [make_record("tuab", "kd", "eegnet", s, status="failed") for s in range(2)]
    md = render(recs, "md")
    assert "tuab · Bal. acc" in md and "— (2 failed)" in md


def test_two_teachers_get_their_own_rows() -> None:
    recs = [make_record("sim-mi", "kd", "eegnet", s) for s in range(2)]
    recs += [{**make_record("sim-mi", "kd", "eegnet", s), "teacher": "labram", "key": f"l{s}"} for s in range(2)]
    f = leaderboard_frame(recs)
    want = {("cbramod-mini", "kd", "eegnet"), ("labram", "kd", "eegnet"), ("labram", "teacher", "labram")}
    assert want <= set(f.index)
    assert f.loc[("labram", "kd", "eegnet"), ("sim-mi", "balanced_accuracy", "n")] == 2
    assert "| Teacher | Method | Student |" in render(recs, "md")


# -------------------------------------------------------------- statistics
def test_wilcoxon_all_positive_matches_exact_p() -> None:
    p = paired_comparisons(fixture_records()).set_index("baseline")
    kd = p.loc["kd"]
    # 2 datasets × 2 students × 3 seeds, minus the failed kd cell: 11 pairs, each +0.05
    assert kd["n_pairs"] == 11 and kd["wins"] == 11 and kd["losses"] == 0
    assert kd["mean_diff"] == pytest.approx(0.05)
    # all 11 differences positive (and tied): W- = 0, and of the 2**11 equally likely sign patterns only
    # all-plus and all-minus are as extreme, so the exact two-sided p is 2 / 2**11
    assert kd["statistic"] == 0
    assert kd["p"] == pytest.approx(2 / 2 ** 11)
    assert kd["test"].startswith("exact")
    assert p.loc["none", "n_pairs"] == 12


def test_wilcoxon_distinct_differences_exact_p_and_small_n() -> None:
    recs = []
    for seed in range(7):
        recs.append(make_record("sim-mi", "kd", "eegnet", seed, value=0.5))
        recs.append(make_record("sim-mi", "dlink", "eegnet", seed, value=0.5 + 0.01 * (seed + 1)))
    row = paired_comparisons(recs).iloc[0]
    assert row["statistic"] == 0 and row["p"] == pytest.approx(2 / 2 ** 7)  # exact null: each sign 1/2
    few = paired_comparisons(recs[: 2 * (MIN_PAIRS - 1)]).iloc[0]
    assert math.isnan(few["p"]) and few["note"].startswith("n too small")
    assert "n too small" in render(recs[:6], "md")


def test_holm_by_hand() -> None:
    adj = holm([0.01, 0.04, float("nan"), 0.03])
    assert adj[0] == pytest.approx(0.03) and adj[3] == pytest.approx(0.06) and adj[1] == pytest.approx(0.06)
    assert math.isnan(adj[2])


def test_router_table() -> None:
    r = router_frame(fixture_records())
    row = r.loc[("dlink", "sim-mi")]
    assert row["layer_2"] == pytest.approx(0.21) and row["layer_3"] == pytest.approx(0.69)
    assert row["n"] == 6 and row["top_layer"] == 3
    # per-class rows under an "overall"-less report are averaged with classes weighted equally
    per_class = make_record("sim-mi", "dlink", "eegnet", 0)
    per_class["distiller_report"] = {"router_alpha": [[0.2, 0.8], [0.6, 0.4]]}
    assert router_frame([per_class]).loc[("dlink", "sim-mi"), "layer_1"] == pytest.approx(0.4)
    assert router_frame([make_record("sim-mi", "kd", "eegnet", 0)]).empty


# -------------------------------------------------------------------- merge
def _store(path: Path, records: list[dict[str, Any]]) -> Path:
    store = ResultStore(path)
    for r in records:
        store.put(r)
    return path


def test_merge_dedup_and_conflict(tmp_path: Path) -> None:
    recs = fixture_records()
    a = _store(tmp_path / "a", recs[:20])
    changed = copy.deepcopy(recs[5])
    changed["metrics"]["balanced_accuracy"] = 0.99
    changed["created"] = "2025-06-01T00:00:00+00:00"
    b = _store(tmp_path / "b", recs[10:] + [changed])  # records 10..19 are identical copies
    merged, warnings = merge_result_dirs([a, b])
    assert len(merged) == len(recs)
    assert len({r["key"] for r in merged}) == len(recs)
    assert len(warnings) == 1
    assert recs[5]["key"] in warnings[0] and "metrics" in warnings[0] and str(b) in warnings[0]
    kept = next(r for r in merged if r["key"] == recs[5]["key"])
    assert kept["metrics"]["balanced_accuracy"] == 0.99  # newest


def test_merge_prefers_ok_and_drops_superseded(tmp_path: Path) -> None:
    ok = make_record("sim-mi", "kd", "eegnet", 0, created="2024-01-01T00:00:00+00:00")
    failed = make_record("sim-mi", "kd", "eegnet", 0, status="failed", created="2025-01-01T00:00:00+00:00")
    skipped = {**make_record("sim-mi", "kd", "eegnet", 0), "key": "skip-x", "status": "skipped",
               "error": "skipped: not downloaded"}
    merged, warnings = merge_result_dirs([_store(tmp_path / "a", [ok]), _store(tmp_path / "b", [failed, skipped])])
    assert [r["status"] for r in merged] == ["ok"]
    assert "kept the ok record" in warnings[0]


def test_merge_missing_dir_is_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        merge_result_dirs([tmp_path / "nope"])


# ---------------------------------------------------------- files and plots
def test_write_leaderboard_files_and_plots(tmp_path: Path) -> None:
    paths = write_leaderboard(fixture_records(), tmp_path / "board", command="eegkd-bench run --preset quick")
    names = sorted(p.name for p in paths)
    assert names == sorted(["leaderboard.md", "leaderboard.csv", "leaderboard.html", "leaderboard.tex",
                            "accuracy_vs_flops_sim-mi.png", "accuracy_vs_flops_sim-mi.svg",
                            "accuracy_vs_flops_tuab.png", "accuracy_vs_flops_tuab.svg"])
    for p in paths:
        assert p.exists() and p.stat().st_size > 200, p
    assert (tmp_path / "board" / "accuracy_vs_flops_sim-mi.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "board" / "accuracy_vs_flops_sim-mi.svg").read_text()
    assert "SIMULATED DATA" in svg
    assert "SIMULATED DATA" not in (tmp_path / "board" / "accuracy_vs_flops_tuab.svg").read_text()
    assert write_leaderboard([], tmp_path / "empty") == []


def test_pareto_front_by_hand() -> None:
    cost = [1, 2, 3, 4, 2, float("nan")]
    score = [0.5, 0.7, 0.6, 0.8, 0.7, 0.9]
    # point 2 is beaten by 1 (cheaper, better); 4 ties 1 and only one represents it; nan is ignored
    assert pareto_front(cost, score).tolist() == [0, 1, 3]


# ------------------------------------------------------------------- export
def test_export_csv_and_parquet_round_trip(tmp_path: Path) -> None:
    recs = fixture_records()
    csv_path = export_records(recs, tmp_path / "out" / "records.csv", "csv")
    back = pd.read_csv(csv_path)
    assert len(back) == len(recs)
    assert {"metrics.balanced_accuracy", "config.student_cfg.lr", "versions.torch"} <= set(back.columns)
    row = back[back.key == recs[0]["key"]].iloc[0]
    assert row["metrics.balanced_accuracy"] == pytest.approx(recs[0]["metrics"]["balanced_accuracy"])
    dl = back[back.key == "sim-mi-dlink-eegnet-1"].iloc[0]
    assert json.loads(dl["distiller_report.router_alpha"]) == pytest.approx([0.1, 0.21, 0.69])

    pq = export_records(recs, tmp_path / "records.parquet", "parquet")
    back_pq = pd.read_parquet(pq)
    assert len(back_pq) == len(recs)
    assert back_pq.set_index("key").loc["tuab-kd-eegnet-1", "metrics.auroc"] == pytest.approx(0.68)
    assert set(back_pq["status"]) == {"ok", "failed", "skipped"}


def test_export_without_pyarrow_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` raise ImportError
    with pytest.raises(UserError, match="pip install pyarrow"):
        export_records(fixture_records(), tmp_path / "x.parquet", "parquet")
    with pytest.raises(UserError, match="expected csv or parquet"):
        export_records(fixture_records(), tmp_path / "x.xlsx", "xlsx")
