"""--device: resolution and errors everywhere; a whole grid on a CUDA GPU where one is visible."""
from __future__ import annotations

import io

import pytest
import torch

from eegkd_bench.api import UserError
from eegkd_bench.cost import cost_report
from eegkd_bench.device import module_device, on_cpu, resolve_device

CUDA = torch.cuda.is_available()


def test_auto_and_cpu_resolve():
    assert resolve_device("cpu") == "cpu" and resolve_device("CPU ") == "cpu"
    assert resolve_device("auto") == ("cuda:0" if CUDA else "cpu")
    assert resolve_device(None) == resolve_device("auto")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu", ""])
def test_unknown_device_is_a_user_error(bad):
    if bad == "":
        assert resolve_device(bad) == resolve_device("auto")  # empty means the default
        return
    with pytest.raises(UserError, match="expected auto, cpu, cuda, cuda:N or mps"):
        resolve_device(bad)


@pytest.mark.skipif(CUDA, reason="checks the error where no GPU is visible")
def test_cuda_without_a_gpu_says_what_to_do():
    with pytest.raises(UserError, match="no CUDA GPU is visible.*use --device cpu"):
        resolve_device("cuda")


def test_cli_rejects_a_bad_device_in_one_line(tmp_path, capsys):
    from eegkd_bench.cli import main

    code = main(["run", "--device", "gpu", "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
                 "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "invalid --device 'gpu'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_on_cpu_keeps_cpu_modules_and_copies_others():
    m = torch.nn.Linear(3, 2)
    assert on_cpu(m) is m and module_device(m).type == "cpu"
    assert module_device(torch.nn.ReLU()).type == "cpu"


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cost_is_measured_on_the_cpu_for_a_gpu_model():
    from eegkd_bench.api import InputSpec
    from eegkd_bench.plugins import get_registry

    spec = InputSpec(4, 400, 2)
    model = get_registry().get("students", "eegnet").factory(spec).to("cuda")
    report = cost_report(model, spec, latency=True, repeats=3, warmup=1)
    assert report["params"] > 0 and report["flops"] > 0 and report["latency_ms"] > 0
    assert module_device(model).type == "cuda"  # the trained model stays where it is


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_a_grid_trains_on_the_gpu_and_records_it(tmp_path):
    import dataclasses

    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.context import make_context
    from eegkd_bench.presets import PRESETS
    from eegkd_bench.runner import Grid
    from eegkd_bench.training import TrainConfig
    from test_teacher_cache import CFG, _toy_registry

    reg = _toy_registry()
    ctx = make_context(tmp_path / "results", tmp_path / "cache", None, latency=False, device="cuda")
    preset = dataclasses.replace(PRESETS["quick"], teacher_cfg=CFG, student_cfg=TrainConfig(epochs=2, batch_size=16))
    grid = Grid(reg, ctx, PlainReporter(total=4, stream=io.StringIO()))
    methods = ["none", "kd", "fitnets", "dlink"]
    records = grid.run(grid.plan(["toy"], "toy-teacher", ["tinytransformer"], methods, (0,), preset), jobs=1)
    assert [r["status"] for r in records] == ["ok"] * 4, [r.get("error") for r in records]
    for r in records:
        assert r["device"].startswith("cuda:0 (") and r["student_flops"] > 0


def test_cluster_jobs_resolve_the_device_on_their_own_node(tmp_path):
    """The submitting node may lack the GPU its jobs get: it defers, each job resolves (or fails clearly)."""
    from eegkd_bench.context import make_context
    from eegkd_bench.executors.cluster import run_chunk

    ctx = make_context(tmp_path / "r", tmp_path / "c", None, device="cuda", resolve_device_here=False)
    assert ctx.device == "cpu" and ctx.device_request == "cuda"  # no error on a GPU-less login node
    if CUDA:
        assert run_chunk([], ctx, threads=1) == []
    else:
        with pytest.raises(UserError, match="no CUDA GPU is visible"):
            run_chunk([], ctx, threads=1)


def test_records_carry_the_cpu_they_ran_on():
    """Model and instruction-set flags as /proc/cpuinfo states them, torch's kernel choice, MKL and oneDNN."""
    import json
    import os

    from eegkd_bench.cell import base_record
    from eegkd_bench.device import CPU_FLAGS, cpu_info
    from eegkd_bench.presets import PRESETS

    info = cpu_info()
    assert set(info) == {"model", "machine", "logical_cores", "flags", "torch_capability", "mkl", "mkldnn",
                         "parallel"}
    assert info["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["mkl"] == torch.backends.mkl.is_available() and info["logical_cores"] == os.cpu_count()
    assert set(info["flags"]) <= set(CPU_FLAGS)
    assert not any("threads" in line or "Environment" in line for line in info["parallel"])  # counts vary per run
    if os.path.exists("/proc/cpuinfo"):
        text = open("/proc/cpuinfo", encoding="utf-8").read()
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        assert info["model"] == model
        flags = set(next(line.split(":", 1)[1] for line in text.splitlines() if line.startswith("flags")).split())
        assert set(info["flags"]) == flags & set(CPU_FLAGS)
    from eegkd_bench.identity import CellSpec

    preset = PRESETS["quick"]
    record = base_record(CellSpec("d", "t", "s", "kd", 0, "quick", preset.teacher_cfg, preset.student_cfg))
    assert json.loads(json.dumps(record.to_dict()))["cpu"] == info
