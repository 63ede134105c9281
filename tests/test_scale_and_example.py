"""Parallel workers, the submitit executor (local), determinism, and the installable example plugin."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eegkd_bench.training import TrainConfig, fit
from test_end_to_end import _cli, _env, _records

REPO = Path(__file__).resolve().parents[1]
SMALL = ("--students", "eegnet", "--teacher", "cbramod-mini", "--datasets", "sim-tiny", "--epochs", "2",
         "--teacher-epochs", "1", "--no-latency", "--quiet", "--no-leaderboard")


def test_every_executor_stores_and_returns_the_same_whole_records(tmp_path):
    """In this process, on --jobs 2 workers and as submitit jobs: each cell once, and what the executor
    returns is the whole record it stored. (That a cell's bits do not depend on the grid it ran in is
    tests/test_regeneration.py's.)"""
    import io

    from eegkd_bench.config import settings_from, validate
    from eegkd_bench.context import make_context
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.results import _json_default
    from eegkd_bench.runner import Grid
    from test_regeneration import TINY

    settings = settings_from(sets=TINY)
    reg = validate(get_registry(), settings)
    for name, executor, jobs in (("serial", "local", 1), ("pool", "local", 2), ("submitit", "submitit-local", 1)):
        ctx = make_context(tmp_path / name, tmp_path / "cache", None, latency=False)
        grid = Grid(reg, ctx, PlainReporter(stream=io.StringIO()))
        plan = grid.plan(["sim-mi"], "cbramod-mini", ["eegnet"], ["none", "kd"], (0,), settings.applied_preset(),
                         options=settings.options)
        recs = grid.run(plan, jobs=jobs, executor=executor, slurm={"cells_per_job": 2, "cpus": 1, "time": 10})
        stored = {r["key"]: r for r in ctx.results.records()}
        returned = {r["key"]: json.loads(json.dumps(r, default=_json_default)) for r in recs}
        assert returned == stored and len(stored) == 2, name
        assert all(r["status"] == "ok" and r["record_format"] == 2 for r in recs), [r.get("error") for r in recs]
        if name == "pool":  # a fixed thread share per worker, whatever ran beside it
            assert {r["torch_threads"] for r in recs} == {max(1, len(os.sched_getaffinity(0)) // 2)}
    assert list((tmp_path / "submitit" / "submitit").glob("*/*_result.pkl"))  # it really went through jobs


def test_same_seed_same_metrics():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4, 50)).astype(np.float32)
    y = (X[:, 0].mean(1) > 0).astype(np.int64)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.2), torch.nn.Linear(200, 2))

        def losses(self, x, y, teacher):
            return {"ce": F.cross_entropy(self.net(x), y)}

        def predict(self, x):
            return self.net(x)

    def once(seed: int, elsewhere: int):
        torch.manual_seed(0)  # the same initial weights in every run
        model = Net()
        # The global random state differs between runs, so only fit's own seeding can make them agree.
        torch.manual_seed(elsewhere)
        np.random.seed(elsewhere)
        res = fit(model, X[:48], y[:48], X[48:], y[48:], 2, TrainConfig(epochs=3, batch_size=8), seed=seed)
        return json.dumps(res.history, sort_keys=True), [p.detach().clone() for p in model.parameters()]

    h1, p1 = once(5, elsewhere=1)
    h2, p2 = once(5, elsewhere=2)
    assert h1 == h2 and all(torch.equal(a, b) for a, b in zip(p1, p2))
    h3, p3 = once(6, elsewhere=1)
    assert not all(torch.equal(a, b) for a, b in zip(p1, p3))  # and the seed is used: another one trains differently


def test_example_plugin_installs_and_runs(tmp_path):
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(REPO / "examples" / "eegkd-logit-mse")],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = _env(tmp_path)
    env["PYTHONPATH"] = f"{target}:{env['PYTHONPATH']}"
    results = tmp_path / "r"
    # one new Python (the entry point is found as any installed plugin's): list, plugins, then a cell
    script = (
        "import contextlib, io, json, sys\n"
        "from eegkd_bench.cli import main\n"
        "outs = []\n"
        f"for argv in {[['list', 'distillers', 'logit*', '--json'], ['plugins', '--json'], ['run', '--methods', 'logit-mse', '--seeds', '0', '--results', str(results), *SMALL]]!r}:\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        code = main(argv)\n"
        "    outs.append([code, buf.getvalue()])\n"
        "print(json.dumps(outs))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (listed_code, listed), (plugins_code, plugins_out), (run_code, _) = json.loads(done.stdout.splitlines()[-1])
    assert listed_code == plugins_code == run_code == 0, done.stderr[-3000:]
    rows = json.loads(listed)
    assert [(r["name"], r["plugin"]) for r in rows] == [("logit-mse", "logit_mse")]
    plugins = {p["name"]: p for p in json.loads(plugins_out)}
    assert plugins["logit_mse"]["distribution"] == "eegkd-logit-mse" and plugins["logit_mse"]["status"] == "loaded"
    (rec,) = _records(results)
    assert rec["distiller"] == "logit-mse" and rec["status"] == "ok"
    assert rec["hparams"] == {"beta": 0.1}
    # the third-party package and its version are part of the record (and of the cell key)
    assert rec["provenance"]["distiller"].startswith("eegkd-logit-mse ") and rec["distiller_base"] == "logit-mse"


def _marked_processes(marker: str) -> list[int]:
    """PIDs of this user's processes whose environment carries ``marker``."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_killed_runner_takes_its_worker_processes_along(tmp_path):
    token = uuid.uuid4().hex
    env = {**_env(tmp_path), "EEGKD_TEST_MARKER": token}
    marker = f"EEGKD_TEST_MARKER={token}"
    proc = subprocess.Popen(_cli("run", "--methods", "none,kd", "--seeds", "0,1", "--jobs", "2", "--results",
                                 str(tmp_path / "r"), *SMALL), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(set(_marked_processes(marker)) - {proc.pid}) < 2:
        time.sleep(0.2)  # wait for the pool's processes (fork server, workers) to exist
    assert len(set(_marked_processes(marker)) - {proc.pid}) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and _marked_processes(marker):
        time.sleep(0.2)
    left = _marked_processes(marker)
    assert left == [], [Path(f"/proc/{p}/cmdline").read_bytes()[:200] for p in left]
