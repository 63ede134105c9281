"""A real DLink cell, end to end: its record's report section reaches the leaderboard as a table and a heatmap."""
from __future__ import annotations

import json
import subprocess

from test_end_to_end import _cli, _env
from test_leaderboard import router_report


def test_dlink_cell_router_section(tmp_path):
    env = _env(tmp_path)
    results = tmp_path / "results"
    run = subprocess.run(_cli("run", "--methods", "dlink", "--students", "eegnet", "--teacher", "cbramod-mini",
                              "--datasets", "sim-tiny", "--seeds", "0", "--epochs", "1", "--teacher-epochs", "1",
                              "--jobs", "1", "--no-latency", "--quiet", "--results", str(results)),
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    (rec,) = [json.loads(p.read_text()) for p in (results / "cells").glob("*.json")]
    assert rec["distiller_role"] == "proposed"  # from the plugin's registration, so the store reads alone
    section = rec["distiller_report"]["sections"]["router"]
    # the unit tests' fake report has the shape DLink really writes
    fake = router_report(0)["sections"]["router"]
    assert set(section) == set(fake) and list(section["rows"]) == ["all classes", "class 0", "class 1"]
    assert len(section["columns"]) == len(section["rows"]["all classes"]) >= 2
    assert abs(sum(section["rows"]["all classes"]) - 1) < 1e-4  # router weights are a softmax over layers

    board = results / "leaderboard"
    md = (board / "leaderboard.md").read_text()
    router = md.split("## Router: mean weight per teacher layer", 1)[1].split("\n## ", 1)[0]
    assert "| dlink | " in router and "| sim-tiny (simulated) | all classes | 1 |" in router
    assert "(router_sim-tiny.png)" in router and (board / "router_sim-tiny.png").stat().st_size > 1000
    assert "Router: mean weight per teacher layer" in (board / "leaderboard.html").read_text()
