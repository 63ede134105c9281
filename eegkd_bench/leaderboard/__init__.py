"""Leaderboards from result records: merge stores, aggregate seeds, paired statistics, render, export.

Everything is computed from the records alone (see :mod:`eegkd_bench.results`),
so a table can be regenerated on any machine from the published result
directories. The modules, in the order data flows through them:

* :mod:`.merge` — several result directories into one list of records;
* :mod:`.roles` — which method is proposed, baseline or ablation (from the plugins' registrations);
* :mod:`.aggregate` — mean ± std over seeds per (teacher, method, student) and dataset;
* :mod:`.stats` — Wilcoxon signed-rank tests of the proposed methods against every other;
* :mod:`.subjects` — per-subject scores (averaged over seeds), comparisons per dataset, bootstrap CIs;
* :mod:`.meta` — the MOABB-style meta-analysis across datasets (Stouffer, combined effect);
* :mod:`.ranks` — average ranks, the Friedman test and the Nemenyi critical difference;
* :mod:`.sections` — the report sections methods contribute through ``distiller_report["sections"]``;
* :mod:`.tables`, :mod:`.stat_tables` and :mod:`.document` — the format-independent document;
* :mod:`.render_md`, :mod:`.render_csv`, :mod:`.render_latex`, :mod:`.render_html` — one renderer each;
* :mod:`.plots` and :mod:`.stat_plots` — accuracy-vs-FLOPs figures, section heatmaps, the forest plot
  and the critical-difference diagram;
* :mod:`.output` — :func:`render`, :func:`write_leaderboard`, :func:`export_records`.
"""
from __future__ import annotations

from eegkd_bench.leaderboard.aggregate import leaderboard_frame
from eegkd_bench.leaderboard.merge import merge_result_dirs
from eegkd_bench.leaderboard.output import EXTENSIONS, FORMATS, export_records, render, write_leaderboard
from eegkd_bench.leaderboard.roles import ROLES, TEACHER_ROW, resolve_roles
from eegkd_bench.leaderboard.sections import report_sections
from eegkd_bench.leaderboard.stats import MIN_PAIRS, holm, paired_comparisons, signed_rank_test

__all__ = ["EXTENSIONS", "FORMATS", "MIN_PAIRS", "ROLES", "TEACHER_ROW", "export_records", "holm",
           "leaderboard_frame", "merge_result_dirs", "paired_comparisons", "render", "report_sections",
           "resolve_roles", "signed_rank_test", "write_leaderboard"]
