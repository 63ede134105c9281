"""Fine-tuned teacher cache and teacher-output cache: reuse, checksums, corruption, online bypass."""
from __future__ import annotations

import dataclasses
import io
import os
import warnings

import numpy as np
import torch
from torch import nn

from eegkd_bench.api import EEGWindows, InputSpec, ModelOutput, TeacherModel
from eegkd_bench.teacher_cache import OnlineTeacher, teacher_outputs
from eegkd_bench.teachers import prepare_teacher
from eegkd_bench.training import TrainConfig, augment_batch

CALLS = {"build": 0}


class TwoLayerTeacher(TeacherModel):
    """A tiny teacher with two (B, C, P, D) layers."""

    feature_names = ("layer_1", "layer_2")

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.p = spec.n_samples // 10
        self.l1 = nn.Linear(10, 4)
        self.l2 = nn.Linear(4, 4)
        self.head = nn.Linear(4, spec.n_classes)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        b, c, _ = x.shape
        h1 = torch.tanh(self.l1(x.reshape(b, c, self.p, 10)))
        h2 = torch.tanh(self.l2(h1))
        emb = h2.mean(dim=(1, 2))
        return ModelOutput(self.head(emb), {"layer_1": h1, "layer_2": h2}, emb)


def factory(spec: InputSpec, **options) -> TwoLayerTeacher:
    CALLS["build"] += 1
    return TwoLayerTeacher(spec)


def windows(n_samples: int = 40) -> EEGWindows:
    rng = np.random.default_rng(0)
    n = 60
    y = np.arange(n) % 2
    X = (rng.normal(size=(n, 3, n_samples)) + y[:, None, None] * 0.5).astype(np.float32)
    split = np.array(["train"] * 40 + ["val"] * 10 + ["test"] * 10)
    subjects = np.array([f"s{i // 10}" for i in range(n)])
    return EEGWindows("toy", X, y.astype(np.int64), subjects, split, 200.0, ["a", "b", "c"], ["x", "y"],
                      "simulated", "toy-1")


CFG = TrainConfig(epochs=2, batch_size=16)


def test_finetuned_teacher_is_cached_and_reused(tmp_path):
    w = windows()
    first = prepare_teacher(factory, "toy", w, seed=0, cfg=CFG, cache_dir=tmp_path)
    second = prepare_teacher(factory, "toy", w, seed=0, cfg=CFG, cache_dir=tmp_path)
    assert not first.cached and second.cached and first.key == second.key
    assert second.init_source == "random"
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert first.test_metrics == second.test_metrics
    other_seed = prepare_teacher(factory, "toy", w, seed=1, cfg=CFG, cache_dir=tmp_path)
    assert not other_seed.cached and other_seed.key != first.key


def test_corrupt_teacher_cache_is_retrained(tmp_path):
    w = windows()
    first = prepare_teacher(factory, "toy", w, seed=0, cfg=CFG, cache_dir=tmp_path)
    weights = tmp_path / "teachers" / first.key / "model.pt"
    weights.write_bytes(weights.read_bytes()[:-20] + b"x" * 20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = prepare_teacher(factory, "toy", w, seed=0, cfg=CFG, cache_dir=tmp_path)
    assert not again.cached
    assert any("unusable" in str(c.message) for c in caught)


def test_teacher_outputs_cached_checksummed_and_recomputed_when_corrupt(tmp_path):
    w = windows()
    prepared = prepare_teacher(factory, "toy", w, seed=0, cfg=CFG, cache_dir=tmp_path)
    X, _ = w.part("train")
    names = {"logits", "layer_2"}
    out = teacher_outputs(prepared, X, names, tmp_path, data_checksum=w.checksum)
    with torch.no_grad():
        ref = prepared.model.forward_features(torch.from_numpy(X[:]))
    assert out.arrays["layer_2"].dtype == np.float16  # layers stored in half precision
    np.testing.assert_allclose(out.arrays["layer_2"], ref.features["layer_2"].numpy(), atol=2e-3)
    np.testing.assert_allclose(out.arrays["logits"], ref.logits.numpy(), rtol=1e-6, atol=1e-6)
    batch = out.batch(np.array([3, 5]))
    assert batch.features["layer_2"].dtype == torch.float32 and batch.logits.shape == (2, 2)

    folder = next((tmp_path / "teacher_outputs").glob("*/"))
    path = folder / "layer_2.npy"
    mtime = path.stat().st_mtime_ns
    teacher_outputs(prepared, X, names, tmp_path, data_checksum=w.checksum)
    assert path.stat().st_mtime_ns == mtime  # reused, not recomputed
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # flip bits in the data: same size, wrong checksum
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fixed = teacher_outputs(prepared, X, names, tmp_path, data_checksum=w.checksum)
    assert any("corrupt" in str(c.message) for c in caught)
    np.testing.assert_allclose(fixed.arrays["layer_2"], ref.features["layer_2"].numpy(), atol=2e-3)
    # a later distiller asking for one more layer only computes that one
    more = teacher_outputs(prepared, X, names | {"layer_1"}, tmp_path, data_checksum=w.checksum)
    assert set(more.arrays) == names | {"layer_1"}


def test_augmentation_uses_the_online_teacher(tmp_path):
    w = windows()
    prepared = prepare_teacher(factory, "toy", w, seed=0, cfg=CFG, cache_dir=tmp_path)
    X, _ = w.part("train")
    x = torch.from_numpy(X[:8])
    x_aug = augment_batch(x, "jitter", torch.Generator().manual_seed(0))
    assert not torch.allclose(x, x_aug)
    online = OnlineTeacher(prepared.model, {"logits"}).batch(np.arange(8), x_aug)
    cached = teacher_outputs(prepared, X, {"logits"}, tmp_path).batch(np.arange(8))
    with torch.no_grad():
        expected = prepared.model(x_aug)
    torch.testing.assert_close(online.logits, expected)
    assert not torch.allclose(online.logits, cached.logits)  # cached clean outputs would be wrong here


class ToyDataset:
    name = "toy"
    kind = "simulated"

    def availability(self, data_dir=None):
        from eegkd_bench.api import Availability

        return Availability(True, "generated")

    def load(self, data_dir=None, cache_dir=None):
        return windows(200)  # long enough for the smallest student


def _toy_registry():
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.registry import Entry, Registry

    real = get_registry()
    reg = Registry()
    reg.add(Entry("datasets", "toy", ToyDataset, "tests"))
    reg.add(Entry("teachers", "toy-teacher", factory, "tests"))
    reg.add(real.get("students", "tinytransformer"))
    for name in ("none", "kd", "fitnets", "dlink"):
        reg.add(real.get("distillers", name))
    return reg


def test_grid_computes_each_teachers_outputs_once_for_all_its_distillers(tmp_path, monkeypatch):
    """Distillers asking for different teacher outputs share one pass of the teacher over the train split."""
    import eegkd_bench.teacher_cache.outputs as outputs_mod
    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.context import make_context
    from eegkd_bench.presets import PRESETS
    from eegkd_bench.runner import Grid

    passes: list[set[str]] = []
    real_compute = outputs_mod._compute_outputs

    def counting(model, X, names, *args, **kwargs):
        passes.append(set(names))
        return real_compute(model, X, names, *args, **kwargs)

    monkeypatch.setattr(outputs_mod, "_compute_outputs", counting)
    reg = _toy_registry()
    ctx = make_context(tmp_path / "results", tmp_path / "cache", None, latency=False)
    preset = dataclasses.replace(PRESETS["quick"], teacher_cfg=CFG, student_cfg=TrainConfig(epochs=1, batch_size=16))
    grid = Grid(reg, ctx, PlainReporter(total=4, stream=io.StringIO()))
    plan = grid.plan(["toy"], "toy-teacher", ["tinytransformer"], ["none", "kd", "fitnets", "dlink"], (0,), preset)
    records = grid.run(plan, jobs=1)
    assert [r["status"] for r in records] == ["ok"] * 4, [r.get("error") for r in records]
    assert len(passes) == 1, passes  # kd's logits, fitnets' hint layer and dlink's summaries: one pass
    # dlink caches per-layer summaries for its router, not its layers (it reads a routed target)
    assert passes[0] == {"logits", "layer_1", "layer_1.ln_mean", "layer_2.ln_mean"}
    # a second grid over the same teacher with the cache filled runs no teacher pass at all
    ctx2 = make_context(tmp_path / "results2", tmp_path / "cache", None, latency=False)
    grid2 = Grid(reg, ctx2, PlainReporter(total=4, stream=io.StringIO()))
    grid2.run(grid2.plan(["toy"], "toy-teacher", ["tinytransformer"], ["kd", "dlink"], (0,), preset), jobs=1)
    assert len(passes) == 1


def test_without_the_cache_no_teacher_outputs_are_written(tmp_path):
    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.context import make_context
    from eegkd_bench.presets import PRESETS
    from eegkd_bench.runner import Grid

    reg = _toy_registry()
    ctx = make_context(tmp_path / "results", tmp_path / "cache", None, latency=False)
    ctx.teacher_cache = False
    preset = dataclasses.replace(PRESETS["quick"], teacher_cfg=CFG, student_cfg=TrainConfig(epochs=1, batch_size=16))
    grid = Grid(reg, ctx, PlainReporter(total=1, stream=io.StringIO()))
    records = grid.run(grid.plan(["toy"], "toy-teacher", ["tinytransformer"], ["kd"], (0,), preset), jobs=1)
    assert records[0]["status"] == "ok"
    assert not list((tmp_path / "cache").glob("teacher_outputs/*/*.npy"))


def _disk_full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_keeps_teacher_outputs_in_memory(tmp_path, monkeypatch):
    w = windows()
    prepared = prepare_teacher(factory, "toy", w, seed=0, cfg=CFG, cache_dir=tmp_path)
    X, _ = w.part("train")
    monkeypatch.setattr(os, "posix_fallocate", _disk_full)  # the space of each output is reserved up front
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = teacher_outputs(prepared, X, {"logits", "layer_1"}, tmp_path, data_checksum=w.checksum)
    assert any("cannot cache teacher outputs" in str(c.message) and "No space left" in str(c.message) for c in caught)
    with torch.no_grad():
        ref = prepared.model.forward_features(torch.from_numpy(X[:]))
    np.testing.assert_allclose(out.arrays["layer_1"], ref.features["layer_1"].numpy(), atol=2e-3)
    assert out.arrays["layer_1"].dtype == np.float16  # the same values a cached read would give
    folder = next((tmp_path / "teacher_outputs").glob("*/"))
    assert not list(folder.iterdir())  # no partial or temporary file left behind


def test_a_full_disk_keeps_the_fine_tuned_teacher_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", _disk_full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = prepare_teacher(factory, "toy", windows(), seed=0, cfg=CFG, cache_dir=tmp_path)
    assert any("cannot cache the fine-tuned teacher" in str(c.message) for c in caught)
    assert not prepared.cached and prepared.test_metrics
    assert not (tmp_path / "teachers" / prepared.key).exists()


def test_a_full_results_disk_stops_the_grid_and_keeps_finished_cells(tmp_path, monkeypatch):
    import eegkd_bench.results as results
    from eegkd_bench.api import UserError
    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.context import make_context
    from eegkd_bench.presets import PRESETS
    from eegkd_bench.runner import Grid

    real_write, writes = results.atomic_write_text, []

    def fill_after_one(path, text):  # the disk fills up after the first cell's record
        if path.parent.name == "cells":
            if writes:
                _disk_full()
            writes.append(path)
        real_write(path, text)

    monkeypatch.setattr(results, "atomic_write_text", fill_after_one)
    ctx = make_context(tmp_path / "results", tmp_path / "cache", None, latency=False)
    preset = dataclasses.replace(PRESETS["quick"], teacher_cfg=CFG, student_cfg=TrainConfig(epochs=1, batch_size=16))
    grid = Grid(_toy_registry(), ctx, PlainReporter(total=2, stream=io.StringIO()))
    plan = grid.plan(["toy"], "toy-teacher", ["tinytransformer"], ["none", "kd"], (0,), preset)
    try:
        grid.run(plan, jobs=1)
    except UserError as exc:
        message = str(exc)
    else:
        raise AssertionError("a full results disk must stop the grid")
    assert "No space left on device" in message and "run the same command again" in message
    assert "\n" not in message
    stored = list(ctx.results.records())
    assert len(stored) == 1 and stored[0]["status"] == "ok"  # the finished cell is kept
    assert not [p for p in (tmp_path / "results" / "cells").iterdir() if p.suffix == ".tmp"]
