"""A cell whose student cannot be built for its dataset is recorded as skipped with the reason; the rest run."""
from __future__ import annotations

import json
from pathlib import Path

from eegkd_bench.cli import main


def test_a_student_too_big_for_the_window_is_skipped_and_the_grid_goes_on(tmp_path: Path) -> None:
    argv = ["run", "--methods", "none", "--students", "eegnet,deepconvnet", "--datasets", "sim-mi",
            "--teacher", "cbramod-mini", "--teacher-checkpoint", "none", "--seeds", "0",
            "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "-q", "--no-latency"]
    for s in ("sim-mi.n_subjects=6", "sim-mi.split=[2,1,1,2]", "sim-mi.trials_per_class=1", "sim-mi.window_s=1",
              "train.epochs=1", "teacher_train.epochs=1"):
        argv += ["--set", s]
    assert main(argv) == 0
    records = {r["student"]: r for r in map(json.loads, map(Path.read_text, (tmp_path / "r" / "cells").glob("*.json")))}
    assert records["eegnet"]["status"] == "ok"
    skipped = records["deepconvnet"]
    assert skipped["status"] == "skipped"
    assert "cannot run on sim-mi" in skipped["error"] and "needs at least 361 samples" in skipped["error"]
    assert skipped["data_kind"] == "simulated"  # the dataset loaded: it is not mislabelled as real data


def test_a_teacher_that_cannot_take_the_window_skips_its_cells_with_the_reason(tmp_path: Path) -> None:
    argv = ["run", "--methods", "none,kd", "--students", "eegnet", "--datasets", "sim-mi",
            "--teacher", "cbramod-mini", "--teacher-checkpoint", "none", "--seeds", "0",
            "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "-q", "--no-latency"]
    for s in ("sim-mi.n_subjects=6", "sim-mi.split=[2,1,1,2]", "sim-mi.trials_per_class=1", "sim-mi.window_s=1.5"):
        argv += ["--set", s]
    main(argv)
    records = list(map(json.loads, map(Path.read_text, (tmp_path / "r" / "cells").glob("*.json"))))
    assert sorted(r["distiller"] for r in records) == ["kd", "none"]
    assert all(r["status"] == "skipped" and "cbramod-mini" in r["error"] and "300" in r["error"] for r in records)


def test_a_plugin_that_crashes_while_built_fails_its_cells_not_the_grid(tmp_path: Path) -> None:
    """A bug (not a user error) in a component's constructor: its cells are stored as failed with the
    one-line reason and the traceback; the other cells run and are stored."""
    import io

    from eegkd_bench.config import settings_from, validate
    from eegkd_bench.context import make_context
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.registry import Entry
    from eegkd_bench.runner import Grid
    from test_regeneration import TINY

    def buggy(spec, **options):
        return {}["feature maps"]  # a KeyError inside the plugin

    settings = settings_from(sets=TINY)
    reg = validate(get_registry(), settings)
    reg.add(Entry("students", "buggy", buggy, "test", "a student whose constructor has a bug"))
    ctx = make_context(tmp_path / "r", tmp_path / "c", None, latency=False)
    grid = Grid(reg, ctx, PlainReporter(stream=io.StringIO()))
    plan = grid.plan(["sim-mi"], "cbramod-mini", ["eegnet", "buggy"], ["none"], (0,), settings.applied_preset(),
                     options=settings.options)
    grid.run(plan)
    records = {r["student"]: r for r in ctx.results.records()}
    assert records["eegnet"]["status"] == "ok"
    bug = records["buggy"]
    assert bug["status"] == "failed" and not bug["key"].startswith(("skip-", "fail-"))
    assert "a bug in a plugin" in bug["error"] and "KeyError" in bug["error"] and "\n" not in bug["error"]
    assert "feature maps" in bug["traceback"]
