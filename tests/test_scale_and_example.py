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


def test_jobs_2_runs_every_cell_once_and_reproducibly(tmp_path):
    """Each cell once; and a second run from empty caches gives the same numbers (fixed threads per worker)."""
    runs = []
    for name in ("a", "b"):
        env = {**_env(tmp_path / name)}
        env.pop("OMP_NUM_THREADS")  # the workers choose their threads themselves
        results = tmp_path / name / "r"
        out = subprocess.run(_cli("run", "--methods", "none,kd", "--seeds", "0,1", "--jobs", "2", "--results",
                                  str(results), *SMALL), env=env, capture_output=True, text=True, timeout=400)
        assert out.returncode == 0, out.stderr[-3000:]
        recs = _records(results)
        assert len(recs) == 4 and len({r["key"] for r in recs}) == 4 and all(r["status"] == "ok" for r in recs)
        assert {r["torch_threads"] for r in recs} == {max(1, len(os.sched_getaffinity(0)) // 2)}
        runs.append({r["key"]: (r["metrics"], r["teacher_metrics"]) for r in recs})
    assert runs[0] == runs[1]


def test_submitit_local_executor(tmp_path):
    env = _env(tmp_path)
    results = tmp_path / "r"
    out = subprocess.run(_cli("run", "--methods", "none,kd", "--seeds", "0", "--executor", "submitit-local",
                              "--cells-per-job", "2", "--results", str(results), *SMALL),
                         env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = _records(results)
    assert {r["distiller"] for r in recs} == {"none", "kd"} and all(r["status"] == "ok" for r in recs)
    assert list((results / "submitit").glob("*/*_result.pkl"))  # it really went through submitit jobs


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
    listed = subprocess.run(_cli("list", "distillers", "logit*", "--json"), env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["plugin"]) for r in rows] == [("logit-mse", "logit_mse")]
    plugins = {p["name"]: p for p in json.loads(subprocess.run(_cli("plugins", "--json"), env=env,
                                                                 capture_output=True, text=True).stdout)}
    assert plugins["logit_mse"]["distribution"] == "eegkd-logit-mse" and plugins["logit_mse"]["status"] == "loaded"
    results = tmp_path / "r"
    out = subprocess.run(_cli("run", "--methods", "logit-mse", "--seeds", "0", "--results", str(results), *SMALL),
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
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
