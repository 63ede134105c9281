"""Leaderboards: aggregation, best marks, labels, merging, paired statistics, formats, plots, export."""
from __future__ import annotations

import copy
import json
import math
import re
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
    report_sections,
    write_leaderboard,
)
from eegkd_bench.leaderboard.plots import pareto_front
from eegkd_bench.results import ResultStore

# ------------------------------------------------------------------- fixtures
DATASETS = {  # name: (kind, task, n_classes)
    "sim-mi": ("simulated", "multiclass", 4),
    "tuab": ("real", "binary", 2),
}
METHOD_BASE = {"none": 0.50, "kd": 0.55, "dlink": 0.60}
ROLE = {"none": "baseline", "dlink": "proposed"}
STUDENTS = {"eegnet": (2_500, 2.0e6, 0.8), "shallowconvnet": (40_000, 9.0e6, 1.5)}
TEACHER = {"params": 4_900_000, "flops": 6.0e9, "latency": 35.0}


def router_report(seed: int) -> dict[str, Any]:
    """A distiller_report shaped exactly as DLink.report() writes it (test_dlink_cell_router_section checks that)."""
    alpha = [0.1, 0.2 + 0.01 * seed, 0.7 - 0.01 * seed]
    per_class = {"0": [0.3, 0.3, 0.4], "1": [0.0, 0.2, 0.8]}
    layers = ["layer_1", "layer_2", "layer_3"]
    return {"variant": "dlink",
            "router": {"mode": "two-stage", "layers": layers, "alpha_mean": alpha, "alpha_per_class": per_class},
            "sections": {"router": {"title": "Router: mean weight per teacher layer", "columns": layers,
                                    "rows": {"all classes": alpha, **{f"class {c}": v for c, v in per_class.items()}},
                                    "plot": "heatmap", "highlight": "max", "note": "two-stage mode"}}}


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
    if distiller in ROLE:
        rec["distiller_role"] = ROLE[distiller]
    if distiller == "dlink":
        rec["distiller_report"] = router_report(seed)
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


def lines_of(md: str, heading: str) -> list[str]:
    """The table lines under one '## heading' of a Markdown leaderboard."""
    part = md.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return [line for line in part.splitlines() if line.startswith("|")]


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
def test_markdown_headline_dataset_tables_and_sections() -> None:
    md = render(fixture_records(), "md", command="eegkd-bench leaderboard --results r")
    assert md.startswith("# eegkd-bench leaderboard — includes SIMULATED DATA")
    head = lines_of(md, "Headline")
    # one column per dataset with its primary metric: balanced accuracy, AUROC for the binary task
    assert head[0].startswith("| Method | Student | sim-mi (simulated) · Bal. acc | tuab · AUROC | Δ vs dlink |")
    assert "tuab (simulated)" not in md
    # dlink on eegnet is best everywhere: balanced accuracy 0.62 + 0.01 * seed, AUROC 0.1 higher
    dlink = next(line for line in head if line.startswith("| dlink | eegnet"))
    assert "**0.630 ± 0.010**" in dlink and "**0.730 ± 0.010**" in dlink and "reference" in dlink
    kd = next(line for line in head if line.startswith("| kd | eegnet"))
    assert "**" not in kd.split("|")[3] and "-0.050" in kd
    teacher = next(line for line in head if line.startswith("| teacher | cbramod-mini"))
    assert "0.710 ± 0.010" in teacher and "**0.710" not in teacher  # teacher is shown, not ranked
    # cost once per row, with the share of the teacher's: 2500 / 4.9 M params, 2 M / 6 G FLOPs
    assert "**2.5 k (0.051%)**" in dlink and "**2 M (0.033%)**" in dlink
    # rows: teacher, baseline, others, proposed
    assert [line.split("|")[1].strip() for line in head[2:]] == ["teacher", "none", "none", "kd", "kd", "dlink",
                                                                   "dlink"]
    sim = lines_of(md, "sim-mi (simulated): all metrics and cost")
    assert "Kappa" in sim[0] and "Train-only params" in sim[0]
    tuab = lines_of(md, "tuab: all metrics and cost")
    assert any("(n=2, 1 failed)" in line for line in tuab)  # the failed cell is visible, with its seed count
    assert not any("ONNX" in line for line in head + sim)  # no export in these records: no columns for it
    for text in ("`eegkd-bench leaderboard --results r`", "eegkd-bench**: 0.1.0", "torch**: 2.13.0",
                 "37 (35 ok, 1 failed, 1 skipped)", "**data**: real (", "## Skipped datasets",
                 "tuev: 1 cell(s) skipped", "## Paired comparison (Wilcoxon signed-rank)",
                 "## Paired comparison by student", "one student at a time, pooled over datasets",
                 "- dlink vs kd (eegnet): n = ",
                 "## Router: mean weight per teacher layer (bold: the largest of each row)"):
        assert text in md, text


def test_router_section_from_dlink_report_shape() -> None:
    md = render(fixture_records(), "md")
    router = lines_of(md, "Router: mean weight per teacher layer")
    assert router[0] == "| Method | Student | Dataset | Row | Seeds | layer_1 | layer_2 | layer_3 |"
    row = next(line for line in router if "| dlink | eegnet | sim-mi (simulated) | all classes |" in line)
    # mean over seeds 0, 1, 2 of [0.1, 0.2 + 0.01 s, 0.7 - 0.01 s], the largest in bold
    assert row.endswith("| 3 | 0.10 | 0.21 | **0.69** |")
    # "class 1" rows carry the dataset's class name (sim-mi: right_hand; tuab: abnormal)
    assert any("| sim-mi (simulated) | right_hand | 3 | 0.00 | 0.20 | **0.80** |" in line for line in router)
    assert not any("class 1" in line for line in router)
    assert "*two-stage mode*" in md
    (sec,) = report_sections(fixture_records())
    assert sec.name == "router" and sec.columns == ["layer_1", "layer_2", "layer_3"] and sec.plot == "heatmap"
    assert {r.dataset for r in sec.rows} == {"sim-mi", "tuab"} and {r.n for r in sec.rows} == {3}


def test_sections_of_records_stored_before_reports_had_them() -> None:
    """Records with only DLink's router block get the section from the function the plugin registered."""
    recs = fixture_records()
    for r in recs:
        if "distiller_report" in r:
            del r["distiller_report"]["sections"]
    md = render(recs, "md")
    assert "| dlink | eegnet | sim-mi (simulated) | all classes | 3 | 0.10 | 0.21 | **0.69** |" in md
    assert "| dlink | eegnet | tuab | abnormal | 3 | 0.00 | 0.20 | **0.80** |" in md


def test_section_class_rows_take_the_datasets_class_names() -> None:
    """The record's own class_names first, then the names its dataset's plugin declares, else "class K"."""
    recs = [make_record(ds, "dlink", "eegnet", s) for ds in ("sim-mi", "no-such-dataset") for s in range(2)]
    recs[0]["class_names"] = recs[1]["class_names"] = ["rest", "move", "c", "d"]
    labels = {(r.dataset, r.label) for r in report_sections(recs)[0].rows}
    assert ("sim-mi", "move") in labels and ("no-such-dataset", "class 1") in labels
    recs[0]["class_names"] = recs[1]["class_names"] = None
    labels = {(r.dataset, r.label) for r in report_sections(recs)[0].rows}
    assert ("sim-mi", "right_hand") in labels  # declared by the sim-mi plugin
    for r in recs[:2]:
        r["class_names"] = ["only"]  # fewer names than the index: the row keeps its label
    assert ("sim-mi", "class 1") in {(r.dataset, r.label) for r in report_sections(recs)[0].rows}


def test_malformed_section_is_skipped_with_a_note() -> None:
    recs = [make_record("sim-mi", "dlink", "eegnet", s) for s in range(2)]
    recs[1]["distiller_report"]["sections"]["router"]["rows"]["all classes"] = [0.5, "x", 0.5]
    notes: list[str] = []
    (sec,) = report_sections(recs, problems=notes)
    assert {r.n for r in sec.rows if r.label == "all classes"} == {1}
    assert "row 'all classes' is not a list of numbers" in notes[0]
    assert "was skipped" in render(recs, "md")


def test_roles_come_from_records_not_names() -> None:
    """A third party's methods get the proposed/baseline treatment from their declared roles alone."""
    recs = []
    for seed in range(7):
        for name, role, value in (("mine", "proposed", 0.5 + 0.01 * (seed + 1)), ("plain", "baseline", 0.5),
                                  ("other", None, 0.45)):
            r = make_record("sim-mi", "kd", "eegnet", seed, value=value)
            r.update(distiller=name, key=f"{name}-{seed}")
            r.pop("distiller_role", None)
            if role:
                r["distiller_role"] = role
            recs.append(r)
    p = paired_comparisons(recs)
    assert set(zip(p["method"], p["baseline"])) == {("mine", "plain"), ("mine", "other")}
    f = leaderboard_frame(recs)
    assert [i[1] for i in f.index] == ["teacher", "plain", "other", "mine"]
    md = render(recs, "md")
    assert "Δ vs mine" in md and "proposed mine; baseline (student trained alone) plain" in md
    # 7 pairs, all positive and distinct: exact p = 2 / 2**7, Holm over 2 tests: 0.031 < 0.05, marked
    plain = next(line for line in lines_of(md, "Headline") if line.startswith("| plain |"))
    assert "-0.040 *" in plain
    # --reference overrides the declared roles; a name not in the results is a one-line error
    p2 = paired_comparisons(recs, reference="other")
    assert set(p2["method"]) == {"other"} and set(p2["baseline"]) == {"plain", "mine"}
    with pytest.raises(UserError, match="did you mean 'mine'"):
        render(recs, "md", reference="mien")


def test_no_proposed_method_says_how_to_name_one() -> None:
    md = render([r for r in fixture_records() if r["distiller"] != "dlink"], "md")
    assert "Δ vs" not in md and "no proposed method, nothing to compare: name one with --reference" in md


def test_roles_fall_back_to_the_registered_plugins() -> None:
    recs = fixture_records()
    for r in recs:
        r.pop("distiller_role", None)
    p = paired_comparisons(recs)  # dlink registers role="proposed", none role="baseline"
    assert set(p["method"]) == {"dlink"} and list(p["baseline"]) == ["none", "kd"]


def test_student_label_tells_a_wrapped_student_apart_and_pairs_by_backbone() -> None:
    recs = [r for r in fixture_records() if r["dataset"] == "sim-mi" and r["student"] == "eegnet"]
    for r in recs:
        if r["distiller"] == "dlink":
            r["student_label"] = "eegnet + MiC"
    f = leaderboard_frame(recs)
    assert ("cbramod-mini", "dlink", "eegnet + MiC") in f.index and ("cbramod-mini", "kd", "eegnet") in f.index
    md = render(recs, "md")
    kd = next(line for line in lines_of(md, "Headline") if line.startswith("| kd | eegnet |"))
    assert "-0.050 †" in kd  # paired with dlink on the same backbone; 3 pairs are too few for a test


def test_export_columns_only_when_records_have_them() -> None:
    recs = [r for r in fixture_records() if r["dataset"] == "sim-mi"]
    for r in recs:
        r["export"] = {"opset": 17, "fp32": {"size_kb": 20.0, "latency_ms": 0.5, "latency_p95_ms": 0.7,
                                             "max_abs_diff": 1e-6},
                       "int8": {"size_kb": 8.0, "latency_ms": 0.3, "latency_p95_ms": 0.4, "metrics": {},
                                "key_metric_drop": 0.02 if r["distiller"] == "kd" else 0.01}}
        r["teacher_export"] = {"fp32": {"size_kb": 400.0, "latency_ms": 10.0, "latency_p95_ms": 12.0,
                                        "max_abs_diff": 1e-6}}
    f = leaderboard_frame(recs)
    assert f.loc[("cbramod-mini", "kd", "eegnet"), ("sim-mi", "int8_drop", "value")] == pytest.approx(0.02)
    assert f.loc[("cbramod-mini", "teacher", "cbramod-mini"), ("sim-mi", "onnx_kb", "value")] == 400.0
    md = render(recs, "md")
    head = lines_of(md, "Headline")
    assert "ONNX size (% of teacher)" in head[0] and "ONNX latency (ms) (% of teacher)" in head[0]
    assert "int8 drop" in head[0] and "int8 size" in head[0]
    kd = next(line for line in head if line.startswith("| kd | eegnet"))
    assert "20 kB (5%)" in kd and "0.50 (5%)" in kd and "+0.020" in kd
    table = pd.read_csv(StringIO(render(recs, "csv")), comment="#")
    assert table.loc[table.method == "teacher", "onnx_latency_ms"].item() == 10.0


def test_title_all_simulated() -> None:
    recs = [r for r in fixture_records() if r["dataset"] == "sim-mi"]
    for fmt in ("md", "csv", "html", "latex"):
        assert "SIMULATED DATA" in render(recs, fmt, title="Demo")
    assert "SIMULATED DATA" not in render([r for r in fixture_records() if r["dataset"] == "tuab"], "md")


def test_each_format_renders() -> None:
    recs = fixture_records()
    html_text = render(recs, "html")
    assert html_text.startswith("<!DOCTYPE html>") and "<strong>0.630 ± 0.010</strong>" in html_text
    assert 'colspan="1" data-dataset="sim-mi" data-filtered>sim-mi (simulated)</th>' in html_text
    # accuracy vs FLOPs and router heatmap per dataset, a forest plot per student, the CD diagram; inline
    assert html_text.count("<svg") == 2 + 2 + 2 + 1
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html_text) and "<link" not in html_text
    tex = render(recs, "latex")
    assert "\\textbf{0.630 $\\pm$ 0.010}" in tex and "\\multicolumn{1}{c}{sim-mi (simulated)}" in tex
    # headline, 2 datasets, router; per-dataset comparison, meta-analysis, ranks (no subjects: no intervals)
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 4 + 3
    assert "cbramod-mini" in tex and "cbramod_mini" not in tex and "training\\_only" not in tex
    csv_text = render(recs, "csv")
    table = pd.read_csv(StringIO(csv_text), comment="#")
    assert len(table) == 7 * 2
    best = table[(table.method == "dlink") & (table.student == "eegnet") & (table.dataset == "sim-mi")]
    assert best["best"].item() == "balanced_accuracy;cohen_kappa;f1_weighted"
    assert best["role"].item() == "proposed" and best["primary_metric"].item() == "balanced_accuracy"
    assert set(table[table.dataset == "sim-mi"].data_kind) == {"simulated"}
    kd = table[(table.method == "kd") & (table.student == "shallowconvnet") & (table.dataset == "tuab")]
    assert kd["cells_failed"].item() == 1 and kd["balanced_accuracy_n"].item() == 2
    assert "# paired: dlink vs kd" in csv_text
    with pytest.raises(UserError, match="did you mean 'md'"):
        render(recs, "mdd")


def test_dataset_where_every_cell_failed_still_shows_the_failures() -> None:
    recs = [make_record("tuab", "kd", "eegnet", s, status="failed") for s in range(2)]
    md = render(recs, "md")
    assert "tuab · AUROC" in md and "— (2 failed)" in md


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
    assert set(p["student"]) == {"all"}
    per_student = paired_comparisons(fixture_records(), by_student=True)
    assert set(zip(per_student["baseline"], per_student["student"], per_student["n_pairs"])) == {
        ("none", "eegnet", 6), ("none", "shallowconvnet", 6), ("kd", "eegnet", 6), ("kd", "shallowconvnet", 5)}


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


def test_detectable_difference_has_the_stated_power() -> None:
    import numpy as np
    from scipy.stats import wilcoxon

    from eegkd_bench.leaderboard.stats import detectable_difference

    n, alpha = 20, 0.05
    mde = detectable_difference(1.0, n, alpha)
    rng = np.random.default_rng(0)
    draws = rng.normal(mde, 1.0, size=(2000, n))
    power = float(np.mean(wilcoxon(draws, axis=1).pvalue < alpha))
    assert 0.75 < power < 0.85  # sized for 80%
    half = float(np.mean(wilcoxon(draws - mde / 2, axis=1).pvalue < alpha))
    assert half < 0.4  # half that difference is mostly missed
    assert detectable_difference(1.0, n, alpha / 7) > mde  # Holm's strictest step asks for more
    assert math.isnan(detectable_difference(1.0, 1))
    row = paired_comparisons(fixture_records()).set_index("baseline").loc["kd"]
    assert row["sd_diff"] == pytest.approx(0.0, abs=1e-9) and row["detectable"] == pytest.approx(0.0, abs=1e-9)
    assert "detectable 0.000" in render(fixture_records(), "md")


def test_holm_by_hand() -> None:
    adj = holm([0.01, 0.04, float("nan"), 0.03])
    assert adj[0] == pytest.approx(0.03) and adj[3] == pytest.approx(0.06) and adj[1] == pytest.approx(0.06)
    assert math.isnan(adj[2])


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
    assert names == sorted(["leaderboard.md", "leaderboard.csv", "leaderboard.html", "leaderboard.tex"]
                           + [f"{stem}_{ds}.{ext}" for stem in ("accuracy_vs_flops", "router")
                              for ds in ("sim-mi", "tuab") for ext in ("png", "svg")]
                           + [f"meta_analysis_{s}.{ext}" for s in ("eegnet", "shallowconvnet") for ext in ("png", "svg")]
                           + ["critical_difference.png", "critical_difference.svg"])
    for p in paths:
        assert p.exists() and p.stat().st_size > 200, p
    board = tmp_path / "board"
    assert (board / "accuracy_vs_flops_sim-mi.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "SIMULATED DATA" in (board / "accuracy_vs_flops_sim-mi.svg").read_text()
    assert "SIMULATED DATA" not in (board / "accuracy_vs_flops_tuab.svg").read_text()
    md = (board / "leaderboard.md").read_text()
    assert "![sim-mi (simulated): Bal. acc vs FLOPs](accuracy_vs_flops_sim-mi.png)" in md
    assert "![tuab: AUROC vs FLOPs](accuracy_vs_flops_tuab.png)" in md  # the headline's metric of a binary task
    assert "(router_sim-mi.png)" in md.split("## Router")[1]
    assert write_leaderboard([], tmp_path / "empty") == []


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def test_plot_reads_at_a_glance_teacher_most_expensive() -> None:
    from eegkd_bench.leaderboard.plots import accuracy_flops_figure

    points = pd.DataFrame([
        {"teacher": "t", "distiller": "teacher", "student": "big-fm", "flops": 4.1e9, "mean": 0.80, "std": 0.01,
         "is_teacher": True},
        {"teacher": "t", "distiller": "kd", "student": "eegnet", "flops": 4.1e7, "mean": 0.70, "std": 0.02,
         "is_teacher": False},
        {"teacher": "t", "distiller": "none", "student": "eegnet", "flops": 4.1e7, "mean": 0.70, "std": 0.02,
         "is_teacher": False},
        {"teacher": "t", "distiller": "dlink", "student": "deep", "flops": 3.0e8, "mean": 0.60, "std": 0.02,
         "is_teacher": False},
    ])
    fig = accuracy_flops_figure(points, dataset="d", metric="balanced_accuracy", simulated=False,
                                methods=["none", "kd", "dlink"])
    renderer = _drawn(fig)
    ax = fig.axes[0]
    frame = ax.get_window_extent(renderer)
    (label,) = [t for t in ax.texts if t.get_text().startswith("teacher")]
    box = label.get_window_extent(renderer)
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "100 M" in ticks and "1 G" in ticks and not any("10^" in t or "×" in t for t in ticks)
    # the Pareto staircase: the cheap eegnet (0.70), then the teacher (0.80); the dominated deep net is not on it
    (front,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert list(front.get_ydata()[:2]) == [0.70, 0.80]
    # equal points (none and kd on eegnet) are nudged apart, not drawn on top of each other
    centers = [line.get_xdata()[0] for line in ax.get_lines() if line.get_marker() == "s"]  # eegnet's marker
    assert len(set(centers)) == len(centers) == 2


def test_heatmap_of_a_section() -> None:
    from eegkd_bench.leaderboard.plots import heatmap_figure

    (sec,) = report_sections(fixture_records())
    fig = heatmap_figure(sec, "sim-mi", simulated=True)
    _drawn(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer_1", "layer_2", "layer_3"]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert "dlink · eegnet · all classes" in rows and "dlink · shallowconvnet · right_hand" in rows
    assert "0.69" in {t.get_text() for t in ax.texts} and "SIMULATED DATA" in ax.get_title()


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
    assert json.loads(dl["distiller_report.router.alpha_mean"]) == pytest.approx([0.1, 0.21, 0.69])

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


# ---------------------------------------------------------------------- CLI
def test_results_csv_stdout_and_out_file_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eegkd_bench.cli import main

    store = _store(tmp_path / "r", fixture_records())
    assert main(["results", "--results", str(store), "--format", "csv"]) == 0
    stdout = capsys.readouterr().out
    assert main(["results", "--results", str(store), "--format", "csv", "--out", str(tmp_path / "x.csv")]) == 0
    assert stdout == (tmp_path / "x.csv").read_text()
    assert "distiller_report.router.alpha_mean" in stdout.splitlines()[0]


def test_leaderboard_cli_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eegkd_bench.cli import main

    store = _store(tmp_path / "r", fixture_records())
    assert main(["leaderboard", "--results", str(store), "--reference", "kd", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "Δ vs kd" in out and "- kd vs none:" in out and "- kd vs dlink:" in out
    assert "Δ vs kd" in (tmp_path / "b" / "leaderboard.md").read_text()
    assert main(["leaderboard", "--results", str(store), "--reference", "dlnk"]) == 2
    assert "did you mean 'dlink'" in capsys.readouterr().err


# ------------------------------------------------------------- row identity
def test_three_kd_cells_on_sim_mi_are_three_rows(tmp_path: Path) -> None:
    """Default data, non-default dataset options and another teacher init are three rows, everywhere:
    the cell specs, --latest, merging result directories and the leaderboard."""
    from eegkd_bench.cell import base_record
    from eegkd_bench.plan import grid_cells
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.presets import PRESETS
    from eegkd_bench.identity import latest_records, row_identity
    from eegkd_bench.teachers import resolve_checkpoint

    reg = get_registry()
    pretrained = resolve_checkpoint(reg.get("teachers", "cbramod-sim"), "sim-pretrained")
    specs = [grid_cells(reg, "sim-mi", "cbramod-sim", ["eegnet"], ["kd"], (0,), PRESETS["quick"],
                        teacher_checkpoint=ckpt, options=opts)[0]
             for ckpt, opts in ((pretrained, None), (pretrained, {"sim-mi": {"n_subjects": 16}}), (None, None))]
    rows = [row_identity(base_record(s).to_dict()) for s in specs]  # the row the record each spec writes names
    assert len(set(rows)) == 3
    assert rows[0][:3] == ("sim-mi", "cbramod-sim", "sim-pretrained")
    assert rows[1][0] == "sim-mi[n_subjects=16]" and rows[2][2] == "random"

    recs = []
    for i, (label, init) in enumerate((("sim-mi", "sim-pretrained sha256:aa"),
                                       ("sim-mi[n_subjects=16]", "sim-pretrained sha256:aa"),
                                       ("sim-mi", "random"))):
        r = make_record("sim-mi", "kd", "eegnet", 0, value=0.5 + 0.1 * i, created=f"2025-0{i + 1}-01T00:00:00+00:00")
        r.update(key=f"cell-{i}", dataset_label=label, teacher_init=init,
                 cpu={"model": "Xeon", "logical_cores": 2, "torch_capability": "AVX512"})
        recs.append(r)
    assert latest_records(recs) == recs
    merged, warnings = merge_result_dirs([_store(tmp_path / "r", recs)])
    assert len(latest_records(merged)) == 3 and not warnings
    md = render(latest_records(merged), "md")
    head = lines_of(md, "Headline")
    assert "| sim-mi (simulated) · Bal. acc | sim-mi[n_subjects=16] (simulated) · Bal. acc |" in head[0]
    assert "- **CPUs**: Xeon (2 logical cores, torch kernels AVX512)" in md
    kd = [line for line in head if "| kd | eegnet |" in line]
    assert len(kd) == 2 and {line.split("|")[1].strip() for line in kd} == {"cbramod-mini (random)",
                                                                             "cbramod-mini (sim-pretrained)"}
    # the same row computed again (a newer file of the same checkpoint): only the newest counts
    again = {**recs[0], "key": "cell-3", "teacher_init": "sim-pretrained sha256:bb", "created": "2025-06-01T00:00:00"}
    assert latest_records(recs + [again]) == recs[1:] + [again]


def test_a_skipped_record_without_an_init_is_superseded_by_the_run(tmp_path: Path) -> None:
    ran = make_record("sim-mi", "kd", "eegnet", 0)
    ran.update(dataset_label="sim-mi", teacher_init="sim-pretrained sha256:aa")
    skipped = {**ran, "key": "skip-x", "status": "skipped", "teacher_init": None, "error": "skipped: no data"}
    other = {**skipped, "key": "skip-y", "dataset_label": "sim-mi[n_subjects=16]"}  # another row: kept
    merged, _ = merge_result_dirs([_store(tmp_path / "r", [ran, skipped, other])])
    assert sorted(r["key"] for r in merged) == sorted([ran["key"], "skip-y"])
