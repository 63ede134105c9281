"""Leaderboard statistics over subjects: per-subject records, per-dataset comparisons, MOABB-style
meta-analysis, Friedman ranks with the Nemenyi critical difference, bootstrap intervals (hand-computed)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eegkd_bench.leaderboard import render, write_leaderboard
from eegkd_bench.leaderboard.aggregate import build_board
from eegkd_bench.leaderboard.meta import meta_analysis
from eegkd_bench.leaderboard.ranks import critical_difference, friedman_nemenyi
from eegkd_bench.leaderboard.stat_tables import board_statistics
from eegkd_bench.leaderboard.subjects import bootstrap_ci, subject_comparisons
from test_leaderboard import fixture_records, lines_of, make_record


def with_subjects(rec: dict[str, Any], scores: dict[str, float]) -> dict[str, Any]:
    """``rec`` with per-subject balanced accuracies (and the other multiclass metrics, unused here)."""
    ids = sorted(scores)
    rec["per_subject"] = {"subjects": ids, "n_windows": [10] * len(ids),
                          "balanced_accuracy": [scores[s] for s in ids], "accuracy": [scores[s] for s in ids],
                          "cohen_kappa": [None] * len(ids), "f1_weighted": [scores[s] for s in ids]}
    rec["metrics"]["balanced_accuracy"] = float(np.mean(list(scores.values())))
    return rec


#: Per-subject differences dlink - kd after averaging over seeds, chosen so every number is easy by hand.
#: "bnci" (any name outside the fixture's is a real 4-class dataset): 4 subjects, |d| ranks 1..4 with one
#: negative (the smallest); "sim-mi": 9 subjects, all positive and distinct.
DIFFS = {"bnci": {"s1": 0.10, "s2": 0.20, "s3": 0.04, "s4": -0.02},
         "sim-mi": {f"s{i}": 0.01 * i for i in range(1, 10)}}


def subject_records() -> list[dict[str, Any]]:
    """kd and dlink on two datasets, two seeds; dlink's seed scores are its mean -/+ 0.01 per subject."""
    recs = []
    for ds, diffs in DIFFS.items():
        base = {s: 0.5 + 0.01 * i for i, s in enumerate(sorted(diffs))}
        for seed in (0, 1):
            jitter = -0.01 if seed == 0 else 0.01
            recs.append(with_subjects(make_record(ds, "kd", "eegnet", seed), base))
            recs.append(with_subjects(make_record(ds, "dlink", "eegnet", seed),
                                      {s: base[s] + diffs[s] + jitter for s in diffs}))
    return recs


# -------------------------------------------------------- per-dataset comparison
def test_subject_level_comparison_averages_seeds_per_subject() -> None:
    board = build_board(subject_records(), None)
    frame = subject_comparisons(board).set_index("dataset")
    bnci = frame.loc["bnci"]
    assert bnci["unit"] == "subjects" and bnci["n"] == 4  # 4 subjects, not 8 (subject, seed) pairs
    # mean diff 0.32 / 4 = 0.08; deviations 0.02, 0.12, -0.04, -0.10: SD = sqrt(0.0264 / 3)
    assert bnci["mean_diff"] == pytest.approx(0.08)
    assert bnci["sd_diff"] == pytest.approx(math.sqrt(0.0264 / 3))
    assert bnci["smd"] == pytest.approx(0.08 / math.sqrt(0.0264 / 3))
    # ranks of |d| 0.02, 0.04, 0.10, 0.20 are 1..4; W+ = 2 + 3 + 4 = 9; of the 16 sign patterns only
    # {2, 3, 4} and {1, 2, 3, 4} reach 9, so the one-sided p is 2/16
    assert bnci["p_greater"] == pytest.approx(2 / 16)
    assert math.isnan(bnci["p"]) and "n too small" in bnci["note"]  # 4 < MIN_PAIRS non-zero differences
    sim = frame.loc["sim-mi"]
    # 9 positive distinct differences: W- = 0, exact two-sided p = 2 / 2**9, one-sided 1 / 2**9
    assert sim["n"] == 9 and sim["statistic"] == 0
    assert sim["p"] == pytest.approx(2 / 2 ** 9) and sim["p_greater"] == pytest.approx(1 / 2 ** 9)
    assert sim["smd"] == pytest.approx(0.05 / (0.01 * math.sqrt(7.5)))  # SD of 1..9 is sqrt(7.5)
    assert sim["p_holm"] == pytest.approx(2 / 2 ** 9)  # the only test of the table


def test_meta_analysis_combined_effect_and_stouffer_by_hand() -> None:
    from scipy.stats import norm

    stats = board_statistics(build_board(subject_records(), None))
    (row,) = stats.meta.itertuples()
    smd_bnci = 0.08 / math.sqrt(0.0264 / 3)
    smd_sim = 0.05 / (0.01 * math.sqrt(7.5))
    # weights sqrt(n): 2 (4 subjects) and 3 (9 subjects)
    assert row.n == 13 and row.n_datasets == 2
    assert row.effect == pytest.approx((2 * smd_bnci + 3 * smd_sim) / 5)
    z = (2 * norm.isf(2 / 16) + 3 * norm.isf(1 / 2 ** 9)) / math.sqrt(2 ** 2 + 3 ** 2)
    assert row.p == pytest.approx(norm.sf(z))
    assert row.p == pytest.approx(0.001186, abs=1e-6)  # z = (2 * 1.1503 + 3 * 2.8856) / sqrt(13) = 3.039
    md = render(subject_records(), "md")
    meta = lines_of(md, "Meta-analysis across datasets")
    assert meta[2] == "| eegnet | dlink vs kd | 2 | 13 | +1.44 | 0.00119 | **0.00119** |"


def test_meta_analysis_agrees_with_moabb_on_its_own_table() -> None:
    """The same per-dataset p and SMD fed to MOABB's find_significant_differences give the same numbers."""
    import pandas as pd

    from eegkd_bench.leaderboard.meta import moabb_meta

    stats = board_statistics(build_board(subject_records(), None))
    comp = stats.comparisons
    rows = []
    for _, r in comp.iterrows():
        rows += [{"dataset": r["dataset"], "pipe1": "dlink", "pipe2": "kd", "p": r["p_greater"], "smd": r["smd"],
                  "nsub": r["n"]},
                 {"dataset": r["dataset"], "pipe1": "kd", "pipe2": "dlink", "p": 1 - r["p_greater"],
                  "smd": -r["smd"], "nsub": r["n"]}]
    p_frame, t_frame = moabb_meta().find_significant_differences(pd.DataFrame(rows))
    assert p_frame.loc["dlink", "kd"] == pytest.approx(stats.meta["p"].item())
    assert t_frame.loc["dlink", "kd"] == pytest.approx(stats.meta["effect"].item())


def test_meta_analysis_needs_two_datasets() -> None:
    one = [r for r in subject_records() if r["dataset"] == "bnci"]
    assert not len(meta_analysis(subject_comparisons(build_board(one, None))))
    assert "Meta-analysis" not in render(one, "md")


# ------------------------------------------------------------------ ranks
def test_friedman_statistic_and_average_ranks_by_hand() -> None:
    # 4 blocks x 3 methods; per-block ranks (1 = best): [1,2,3], [1,3,2], [2,1,3], [1,2,3]
    scores = np.array([[0.9, 0.8, 0.7], [0.9, 0.7, 0.8], [0.8, 0.9, 0.7], [0.6, 0.5, 0.4]])
    r = friedman_nemenyi(scores, ["a", "b", "c"], [("d", "t", f"s{i}") for i in range(4)])
    assert list(r.avg_ranks) == [1.25, 2.0, 2.75]
    # chi2 = 12 N / (k (k + 1)) * sum(R_j^2) - 3 N (k + 1) = 4 * 13.125 - 48 = 4.5; chi2(2 df): p = exp(-4.5 / 2)
    assert r.chi2 == pytest.approx(4.5) and r.p == pytest.approx(math.exp(-2.25))
    # Iman-Davenport: (N - 1) chi2 / (N (k - 1) - chi2) = 3 * 4.5 / 3.5
    assert r.iman_davenport == pytest.approx(13.5 / 3.5)
    # Nemenyi: q_0.05 = 2.343 for k = 3 (Demšar 2006, Table 5); CD = 2.343 * sqrt(3 * 4 / (6 * 4))
    assert r.q_alpha == pytest.approx(2.343, abs=1e-3) and r.cd == pytest.approx(2.343 * math.sqrt(0.5), abs=1e-3)
    assert r.cliques() == [(0, 2)]  # 2.75 - 1.25 = 1.5 < CD: no pair is told apart


@pytest.mark.parametrize("k, n, q", [(2, 5, 1.960), (4, 10, 2.569), (5, 20, 2.728), (10, 8, 3.164)])
def test_critical_difference_matches_demsar_table(k: int, n: int, q: float) -> None:
    q_alpha, cd = critical_difference(k, n)
    assert q_alpha == pytest.approx(q, abs=1e-3)
    assert cd == pytest.approx(q * math.sqrt(k * (k + 1) / (6 * n)), abs=1e-3)


def test_ranks_table_from_the_fixture() -> None:
    """dlink beats kd beats none in each of the 4 (dataset, student) blocks: ranks 1, 2, 3."""
    md = render(fixture_records(), "md")
    ranks = lines_of(md, "Average rank over blocks")
    assert ranks[2:] == ["| dlink | **1.00** | 4 | best |", "| kd | 2.00 | 0 | within CD |",
                         "| none | 3.00 | 0 | worse (≥ CD) |"]
    # chi2 = 4 * (1 + 4 + 9) - 48 = 8, p = exp(-4); CD = 2.3437 * sqrt(12 / 24) = 1.657
    assert "chi2 = 8.000 (2 df, tie-corrected), p = 0.0183" in md and "= 1.657" in md


# ---------------------------------------------------------------- bootstrap
def test_bootstrap_ci_by_hand_and_on_a_fixed_seed() -> None:
    assert bootstrap_ci([0.7, 0.7, 0.7]) == (pytest.approx(0.7), pytest.approx(0.7), pytest.approx(0.7))
    # two subjects 0 and 1: resampled means are 0, 0.5, 1 with chances 1/4, 1/2, 1/4, so the 2.5th and
    # 97.5th percentiles of 2000 draws are 0 and 1
    assert bootstrap_ci([0.0, 1.0]) == (0.5, 0.0, 1.0)
    mean, lo, hi = bootstrap_ci([0.2, 0.5, 0.6, 0.9])
    rng = np.random.default_rng(0)  # the documented recipe: 2000 draws of 4 subjects from default_rng(0)
    draws = np.array([0.2, 0.5, 0.6, 0.9])[rng.integers(0, 4, size=(2000, 4))].mean(axis=1)
    assert mean == pytest.approx(0.55)
    assert (lo, hi) == (pytest.approx(np.percentile(draws, 2.5)), pytest.approx(np.percentile(draws, 97.5)))
    assert 0.2 < lo < 0.55 < hi < 0.9
    assert math.isnan(bootstrap_ci([0.4])[1])


def test_interval_table_uses_subject_means_over_seeds() -> None:
    md = render(subject_records(), "md")
    ci = lines_of(md, "Bootstrap 95% CI over test subjects")
    kd = next(line for line in ci if line.startswith("| kd | eegnet |"))
    # kd's bnci subjects score 0.50, 0.51, 0.52, 0.53 in both seeds: mean 0.515
    assert "| 0.515 [" in kd
    mean, lo, hi = bootstrap_ci([0.50, 0.51, 0.52, 0.53])
    assert f"{mean:.3f} [{lo:.3f}, {hi:.3f}]" in kd
    assert "Test subjects: bnci 4, sim-mi (simulated) 9" in md


# ------------------------------------------------------------ old records
def test_records_without_per_subject_fall_back_to_seeds_and_still_render(tmp_path: Path) -> None:
    recs = fixture_records()
    md = render(recs, "md")
    table = lines_of(md, "Paired comparison by subject, per dataset")
    assert all("| seeds |" in line for line in table[2:])
    assert "Unit 'seeds' (8 of 8 rows): no per-subject scores in the records" in md
    assert "Bootstrap 95% CI" not in md  # nothing to bootstrap without subjects
    for fmt in ("csv", "html", "latex"):
        assert "seeds" in render(recs, fmt)
    # a mix: one dataset with subjects, the other without
    mixed = [r for r in subject_records() if r["dataset"] == "bnci"]
    mixed += [make_record("sim-mi", m, "eegnet", s) for m in ("kd", "dlink") for s in range(3)]
    frame = subject_comparisons(build_board(mixed, None)).set_index("dataset")
    assert frame.loc["bnci", "unit"] == "subjects" and frame.loc["sim-mi", "unit"] == "seeds"
    paths = write_leaderboard(mixed, tmp_path / "b")
    assert {"critical_difference.svg", "meta_analysis_eegnet.png"} <= {p.name for p in paths}


def test_undefined_subject_metric_falls_back_to_seeds() -> None:
    """AUROC of subjects whose windows are of one class is null: the binary dataset pairs seeds."""
    recs = []
    for m, value in (("kd", 0.5), ("dlink", 0.6)):
        for seed in range(2):
            r = make_record("tuab", m, "eegnet", seed, value=value + 0.01 * seed)
            r["per_subject"] = {"subjects": ["a", "b"], "n_windows": [5, 5], "balanced_accuracy": [0.5, 0.6],
                                "auroc": [None, None], "auc_pr": [None, 1.0], "accuracy": [0.5, 0.6]}
            recs.append(r)
    row = subject_comparisons(build_board(recs, None)).iloc[0]
    assert row["metric"] == "auroc" and row["unit"] == "seeds" and row["n"] == 2
    assert "auroc is defined on fewer than 2 shared test subjects" in row["fallback"]


def test_statistics_in_every_format() -> None:
    recs = subject_records()
    csv_text = render(recs, "csv")
    assert "# meta: eegnet | dlink vs kd | 2 | 13 | +1.44 | 0.00119 | 0.00119" in csv_text
    assert "# ranks: Method | Avg rank | First | vs best (Nemenyi)" in csv_text
    import pandas as pd
    from io import StringIO

    table = pd.read_csv(StringIO(csv_text), comment="#")
    kd = table[(table.method == "kd") & (table.dataset == "bnci")]
    assert kd["subject_mean"].item() == pytest.approx(0.515) and kd["n_subjects"].item() == 4
    tex = render(recs, "latex")
    assert "Meta-analysis across datasets" in tex and "\\emph{Per dataset: the one-sided Wilcoxon" in tex
    html_text = render(recs, "html")
    assert 'id="stats-meta"' in html_text and html_text.count("<svg") == 2 + 2 + 2  # accuracy and router per dataset, forest, CD


# ------------------------------------------------------- records from a cell
def test_a_cell_records_per_subject_scores_that_round_trip(tmp_path: Path) -> None:
    """One pass over the test split gives the overall metrics and each test subject's; both survive JSON."""
    import dataclasses

    from eegkd_bench.cell import execute_cell

    from eegkd_bench.context import make_context
    from eegkd_bench.identity import CellSpec
    from eegkd_bench.results import ResultStore
    from eegkd_bench.training import TrainConfig
    from test_teacher_cache import CFG, _toy_registry, windows

    w = windows(200)
    subjects = np.asarray(w.subjects).copy()
    subjects[w.indices("test")] = ["t0"] * 4 + ["t1"] * 3 + ["t2"] * 3
    w = dataclasses.replace(w, subjects=subjects)
    ctx = make_context(tmp_path / "results", tmp_path / "cache", None, latency=False)
    cell = CellSpec("toy", "toy-teacher", "tinytransformer", "kd", 0, "test", CFG,
                    TrainConfig(epochs=1, batch_size=16))
    rec = execute_cell(cell, ctx, _toy_registry(), w)
    assert rec["status"] == "ok", rec.get("error")
    stored = ResultStore(tmp_path / "results", create=False).get(rec["key"])
    for field, overall in (("per_subject", "metrics"), ("teacher_per_subject", "teacher_metrics")):
        block = stored[field]
        assert block == rec[field]
        assert block["subjects"] == ["t0", "t1", "t2"] and block["n_windows"] == [4, 3, 3]
        assert set(block) == {"subjects", "n_windows", "balanced_accuracy", "auroc", "auc_pr", "accuracy"}
        # accuracy over all windows is the window-weighted mean of the subjects' accuracies
        pooled = sum(n * a for n, a in zip(block["n_windows"], block["accuracy"])) / 10
        assert pooled == pytest.approx(stored[overall]["accuracy"])
