"""The whole product through the CLI: a tiny grid, killed mid-run with SIGKILL, resumed.

2 methods x 1 student x 1 simulated dataset x 2 seeds. The dataset and the student come
from a third-party plugin installed as a distribution on PYTHONPATH, so this also
exercises discovery through the entry-point group in a fresh process.

The plugin's student is EEGNet behind a gate: while the gate file exists, only the first
student that trains may run and every other one waits, so the runner is killed with
exactly one cell finished however fast the machine is.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plugin_fakes import make_distribution

TINY_DATASET = '''
import os
import time

import numpy as np
from eegkd_bench import hookimpl
from eegkd_bench.api import Availability, Dataset, EEGWindows
from eegkd_plugins.students import eegnet

class TinySim(Dataset):
    """Two-class band-power toy task (simulated), 8 channels x 2 s at 200 Hz."""
    name = "sim-tiny"
    kind = "simulated"
    class_names = ("low", "high")
    n_channels = 8
    window_s = 2.0

    def availability(self, data_dir=None):
        return Availability(True, "generated in memory")

    def load(self, data_dir=None, cache_dir=None):
        rng = np.random.default_rng(7)
        n_sub, per = 6, 24
        t = np.arange(400) / 200.0
        X, y, subj = [], [], []
        for s in range(n_sub):
            for i in range(per):
                label = i % 2
                f = 10.0 if label else 20.0
                phase = rng.uniform(0, 2 * np.pi, size=(8, 1))
                x = 0.8 * np.sin(2 * np.pi * f * t + phase) + rng.normal(0, 1.0, size=(8, 400))
                X.append(x); y.append(label); subj.append(f"s{s}")
        split = np.array(["train"] * 4 * per + ["val"] * per + ["test"] * per)
        return EEGWindows("sim-tiny", np.asarray(X, np.float32), np.asarray(y, np.int64), np.asarray(subj),
                          split, 200.0, [f"C{i}" for i in range(8)], ["low", "high"], "simulated", "tiny-v1",
                          notes="simulated toy data")

class GatedEEGNet(eegnet.EEGNet):
    """EEGNet whose training waits while the file named by $TINY_GATE exists, except in the first
    student instance to train (which claims a ticket next to the gate)."""

    name = "eegnet-gated"

    def forward_features(self, x):
        gate = os.environ.get("TINY_GATE", "")
        if self.training and gate:
            if not hasattr(self, "_gate_free"):
                try:
                    os.close(os.open(gate + ".ticket", os.O_CREAT | os.O_EXCL))
                    self._gate_free = True
                except FileExistsError:
                    self._gate_free = False
            while not self._gate_free and os.path.exists(gate):
                time.sleep(0.05)
        return super().forward_features(x)

def build_gated(spec, **options):
    return GatedEEGNet(spec, **options)

@hookimpl
def eegkd_register_datasets(register):
    register("sim-tiny", TinySim, description="tiny simulated toy task for tests")

@hookimpl
def eegkd_register_students(register):
    register("eegnet-gated", build_gated, description="EEGNet that waits on a gate file (tests)",
             options=eegnet.DEFAULTS)
'''


def _env(tmp_path: Path) -> dict[str, str]:
    site = make_distribution(tmp_path / "site", "eegkd-tiny", "0.1", {"tiny_plugin": TINY_DATASET},
                             {"tiny": "tiny_plugin"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "EEGKD_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("EEGKD_LOAD_PLUGINS", None)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "eegkd_bench.cli", *args]


RUN = ("run", "--methods", "none,kd", "--students", "eegnet-gated", "--teacher", "cbramod-mini", "--datasets", "sim-tiny",
       "--seeds", "0,1", "--epochs", "2", "--teacher-epochs", "1", "--no-latency", "--quiet")


def _records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "cells").glob("*.json"))]


def test_killed_run_resumes_and_every_cell_is_stored_once(tmp_path):
    gate = tmp_path / "gate"
    gate.touch()
    env = {**_env(tmp_path), "TINY_GATE": str(gate)}
    results = tmp_path / "results"
    args = _cli(*RUN, "--jobs", "2", "--results", str(results), "--no-leaderboard")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    first = None
    while time.time() < deadline and proc.poll() is None:
        done = [r for r in _records(results) if r["status"] == "ok"] if (results / "cells").exists() else []
        if done:
            first = done[0]
            break
        time.sleep(0.2)
    assert first is not None, proc.communicate()[1][-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    from test_scale_and_example import _marked_processes

    stop = time.time() + 10  # worker processes notice their runner is gone within a second and stop
    while _marked_processes(str(gate)) and time.time() < stop:
        time.sleep(0.1)
    assert not _marked_processes(str(gate))
    n_before = len(_records(results))
    assert n_before == 1  # the other cells waited at the gate until the workers stopped
    gate.unlink()

    resumed = subprocess.run(_cli(*RUN, "--jobs", "2", "--results", str(results)), env=env, capture_output=True,
                             text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming: {n_before} cells already finished" in resumed.stderr

    recs = _records(results)
    assert len(recs) == 4 and len({r["key"] for r in recs}) == 4
    assert {(r["distiller"], r["seed"]) for r in recs} == {("none", 0), ("none", 1), ("kd", 0), ("kd", 1)}
    assert all(r["status"] == "ok" and r["data_kind"] == "simulated" and r["teacher_init"] == "random" for r in recs)
    again = next(r for r in recs if r["key"] == first["key"])
    assert again["created"] == first["created"]  # the finished cell was not recomputed
    for r in recs:
        assert 0.0 <= r["metrics"]["balanced_accuracy"] <= 1.0
        assert r["student_params"] > 0 and r["student_flops"] > 0

    # the resumed run wrote the leaderboard of all four cells (the `leaderboard` command is tested in-process)
    import pandas as pd

    text = (results / "leaderboard" / "leaderboard.csv").read_text()
    assert "SIMULATED" in text.upper()
    table = pd.read_csv(results / "leaderboard" / "leaderboard.csv", comment="#")
    students = table[table["method"] != "teacher"]
    # one row per (method, student), each aggregating exactly the two seeds
    assert sorted(students["method"]) == ["kd", "none"], text
    assert (students["student"] == "eegnet-gated").all() and (students["balanced_accuracy_n"] == 2).all()
    assert (table["method"] == "teacher").sum() == 1
    assert (results / "leaderboard" / "leaderboard.md").exists()


@pytest.mark.slow
def test_quick_preset_end_to_end(tmp_path):
    env = _env(tmp_path)
    out = subprocess.run(_cli("run", "--preset", "quick", "--quiet", "--results", str(tmp_path / "r")), env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
