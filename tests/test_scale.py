"""Real-size datasets: the streamed window store, index-based reads, DLink's small cache, disk checks, auto cache."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import warnings

import numpy as np
import pytest

from eegkd_bench.api import EEGWindows, WindowRows
from eegkd_bench.data import cache, store_writer
from eegkd_bench.data.cache import CacheWarning, WindowStoreWriter, cached_stream
from eegkd_bench.errors import DataUnavailable, DiskSpaceError
from eegkd_bench.training import TrainConfig
from test_teacher_cache import CFG, _toy_registry, windows

KEY = {"dataset": "stream", "v": 1}


def _write_chunks(writer: WindowStoreWriter, n_chunks: int = 5, k: int = 7) -> EEGWindows:
    rng = np.random.default_rng(0)
    writer.expect(n_chunks)
    for i in range(n_chunks):
        writer.append(rng.standard_normal((k, 3, 50)).astype(np.float32), i % 2, f"s{i}",
                      None if i < 3 else "test")
    writer.assign_splits({"s0": "train", "s1": "train", "s2": "val"})
    return writer.finish(name="stream", sfreq=200.0, ch_names=["a", "b", "c"], class_names=["x", "y"],
                         kind="simulated", checksum="c", notes="n")


# ------------------------------------------------------------------ window store
def test_streamed_store_equals_the_in_memory_build_and_hashes_chunkwise(tmp_path, monkeypatch):
    monkeypatch.setattr(store_writer, "HASH_CHUNK", 1000)  # several hash chunks per window
    in_memory = _write_chunks(WindowStoreWriter(None))
    stored = cached_stream(KEY, _write_chunks, tmp_path)
    assert isinstance(stored.X, np.memmap) and not stored.X.flags.writeable
    np.testing.assert_array_equal(np.asarray(stored.X), in_memory.X)
    assert list(stored.split) == ["train"] * 14 + ["val"] * 7 + ["test"] * 14
    assert list(stored.subjects[:8]) == ["s0"] * 7 + ["s1"]
    (entry,) = (tmp_path / "windows").iterdir()
    meta = json.loads((entry / "meta.json").read_text())["arrays"]["X"]
    assert len(meta["chunks"]) == -(-35 * 3 * 50 * 4 // 1000)
    # a flipped byte in a middle chunk is found and the entry rebuilt
    raw = bytearray((entry / "X.npy").read_bytes())
    raw[meta["offset"] + 2500] ^= 0x01
    (entry / "X.npy").write_bytes(bytes(raw))
    calls = []
    with pytest.warns(CacheWarning, match="fails its sha256"):
        again = cached_stream(KEY, lambda w: calls.append(1) or _write_chunks(w), tmp_path)
    assert calls == [1]
    np.testing.assert_array_equal(np.asarray(again.X), in_memory.X)


def test_writer_rejects_mixed_shapes_and_unassigned_splits(tmp_path):
    w = WindowStoreWriter(tmp_path / "a")
    w.append(np.zeros((2, 3, 5), np.float32), 0, "s", "train")
    with pytest.raises(ValueError, match="same channels"):
        w.append(np.zeros((2, 4, 5), np.float32), 0, "s", "train")
    w.append(np.zeros((1, 3, 5), np.float32), 0, "t", None)
    with pytest.raises(ValueError, match="assign_splits"):
        w.finish(name="n", sfreq=1.0, ch_names="abc", class_names="xy", kind="real", checksum="")
    w.close()
    with pytest.raises(DataUnavailable, match="no usable windows"):
        WindowStoreWriter(tmp_path / "b").finish(name="n", sfreq=1.0, ch_names="abc", class_names="xy",
                                                 kind="real", checksum="")


def test_a_store_that_cannot_fit_stops_early_and_leaves_nothing(tmp_path, monkeypatch):
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(store_writer.shutil, "disk_usage", lambda p: real(p)._replace(free=5000))
    with pytest.raises(DiskSpaceError, match=r"window store needs about .* GB in .*--cache-dir"):
        cached_stream(KEY, _write_chunks, tmp_path)
    assert not list((tmp_path / "windows").iterdir())  # no partial entry, no temporary folder


def test_a_full_disk_while_streaming_falls_back_to_memory_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    real_write = WindowStoreWriter._write

    def full(self, buf):
        if self._n:
            raise cache.StoreWriteError(errno.ENOSPC, "No space left on device")
        real_write(self, buf)

    monkeypatch.setattr(WindowStoreWriter, "_write", full)
    cache._warned_dirs.clear()
    with pytest.warns(CacheWarning, match="No space left"):
        out = cached_stream(KEY, _write_chunks, tmp_path)
    assert len(out.X) == 35 and not isinstance(out.X, np.memmap)
    assert not list((tmp_path / "windows").iterdir())


class RowGuard(np.memmap):
    """A read-only memory map that fails when more than ``limit`` windows are read at once."""

    limit = 128

    def __getitem__(self, sel):
        out = super().__getitem__(sel)
        if isinstance(out, np.ndarray) and out.ndim == 3 and len(out) > self.limit:
            raise AssertionError(f"{len(out)} windows read at once: X is being copied whole")
        return out


def _guarded(tmp_path) -> EEGWindows:
    w = windows(200)
    path = tmp_path / "X.npy"
    np.save(path, np.concatenate([w.X] * 6))
    X = np.load(path, mmap_mode="r").view(RowGuard)
    return EEGWindows("toy", X, np.tile(w.y, 6), np.tile(w.subjects, 6), np.tile(w.split, 6), 200.0,
                      w.ch_names, w.class_names, "simulated", "toy-guarded")


def test_window_rows_read_only_the_rows_asked_for(tmp_path):
    X, y = _guarded(tmp_path).part("train")
    assert isinstance(X, WindowRows) and len(X) == len(y) == 240 and X.shape == (240, 3, 200)
    np.testing.assert_array_equal(X[3:5], np.asarray(X.base[X.idx[3:5]]))
    assert X[np.array([0, 7])].flags.writeable
    with pytest.raises(AssertionError, match="copied whole"):
        np.asarray(X)  # a whole-split copy: allowed for small-data tools, caught by the guard here


@pytest.mark.parametrize("method", ["kd", "dlink"])
def test_a_memmapped_dataset_trains_and_evaluates_without_a_copy(tmp_path, method):
    """Fine-tuning, the teacher pass, DLink's router stage and target pass, training and evaluation read batches."""
    from eegkd_bench.cell import execute_cell
    from eegkd_bench.context import make_context
    from eegkd_bench.identity import CellSpec

    w = _guarded(tmp_path)
    assert not w.X.flags.writeable
    ctx = make_context(tmp_path / "results", tmp_path / "cache", None, latency=False)
    cfg = TrainConfig(epochs=1, batch_size=32, eval_batch_size=128)
    cell = CellSpec("toy", "toy-teacher", "tinytransformer", method, 0, "test", CFG, cfg)
    rec = execute_cell(cell, ctx, _toy_registry(), w)
    assert rec["status"] == "ok", rec.get("error")
    assert rec["teacher_cache"]["use"] is True
    if method == "dlink":
        assert rec["teacher_cache"]["outputs"] == ["layer_1.ln_mean", "layer_2.ln_mean", "target"]
        assert rec["distiller_report"]["router"]["fitted_before_training"]
        assert not list((tmp_path / "cache" / "scratch").iterdir())  # the routed target is removed after the cell


def test_dlink_cache_is_summaries_plus_one_routed_layer(tmp_path):
    """About 1/L of caching every layer: (N, L, D) summaries + one (N, C, P, D) target, no layer files."""
    from eegkd_bench.cell import execute_cell
    from eegkd_bench.context import make_context
    from eegkd_bench.identity import CellSpec
    import eegkd_bench.teacher_cache.outputs as outputs_mod

    sizes = {}
    real = outputs_mod.teacher_target

    def spy(teacher, X, layers, derive, folder, **kw):
        out = real(teacher, X, layers, derive, folder, **kw)
        sizes["target"] = (folder / "target.npy").stat().st_size
        return out

    ctx = make_context(tmp_path / "results", tmp_path / "cache", None, latency=False)
    cell = CellSpec("toy", "toy-teacher", "tinytransformer", "dlink", 0, "test", CFG, TrainConfig(epochs=1))
    import eegkd_bench.cell as cell_mod
    orig = cell_mod.teacher_target
    cell_mod.teacher_target = spy
    try:
        rec = execute_cell(cell, ctx, _toy_registry(), windows(200))
    finally:
        cell_mod.teacher_target = orig
    assert rec["status"] == "ok", rec.get("error")
    folder = next((tmp_path / "cache" / "teacher_outputs").glob("*/"))
    files = {p.name: p.stat().st_size for p in folder.glob("*.npy")}
    assert set(files) == {"layer_1.ln_mean.npy", "layer_2.ln_mean.npy"}  # no layer is cached
    n_train, layer_bytes = 40, 3 * 20 * 4 * 2  # windows x (C, P, D) float16
    all_layers = 2 * n_train * layer_bytes
    assert sizes["target"] - 128 == n_train * layer_bytes  # one routed layer (after a 128-byte header)
    summaries = sum(files.values()) - 2 * 128
    assert summaries == 2 * n_train * 4 * 4  # (N, L, D) float32
    assert (sizes["target"] + summaries) / all_layers < 1 / 2 + 0.1


# ------------------------------------------------------------------ the grid
def _grid(tmp_path, mode, methods=("kd", "dlink"), epochs=1):
    from eegkd_bench.context import make_context
    from eegkd_bench.presets import PRESETS
    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.runner import Grid

    ctx = make_context(tmp_path / "results", tmp_path / "cache", None, latency=False)
    ctx.teacher_cache = mode
    preset = dataclasses.replace(PRESETS["quick"], teacher_cfg=CFG,
                                 student_cfg=TrainConfig(epochs=epochs, batch_size=16, max_steps=2))
    grid = Grid(_toy_registry(), ctx, PlainReporter(total=2, stream=io.StringIO()))
    return grid, grid.plan(["toy"], "toy-teacher", ["tinytransformer"], list(methods), (0,), preset)


def test_teacher_cache_auto_is_measured_and_recorded(tmp_path):
    grid, plan = _grid(tmp_path, "auto")
    records = grid.run(plan, jobs=1)
    assert [r["status"] for r in records] == ["ok", "ok"]
    for rec in records:
        choice = rec["teacher_cache"]
        assert choice["mode"] == "auto" and isinstance(choice["use"], bool)
        assert choice["forward_ms"] > 0 and choice["read_ms"] > 0 and "teacher forward" in choice["reason"]
    assert records[0]["teacher_cache"]["use"] == records[1]["teacher_cache"]["use"]  # one decision per teacher


def test_a_teacher_cache_that_cannot_fit_stops_the_grid_before_it_starts(tmp_path, monkeypatch):
    import eegkd_bench.teacher_cache.policy as policy

    real = policy.shutil.disk_usage
    monkeypatch.setattr(policy.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    grid, plan = _grid(tmp_path, "on")
    with pytest.raises(DiskSpaceError) as err:
        grid.run(plan, jobs=1)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1 and "teacher_outputs" in msg and "GB" in msg
    assert "--cache-dir" in msg and "--teacher-cache off" in msg
    assert not list(grid.ctx.results.records())  # nothing ran
    # auto does not stop: it runs the teacher online instead, and says why (3 epochs: the cache would win)
    grid, plan = _grid(tmp_path / "auto", "auto", epochs=3)
    records = grid.run(plan, jobs=1)
    assert all(r["status"] == "ok" and not r["teacher_cache"]["use"] for r in records)
    assert "free" in records[0]["teacher_cache"]["reason"]


# ------------------------------------------------------------------ loaders
#: digests of the fixture loaders' windows, computed with the loaders that built every window in memory
BEFORE = {
    "tuev": (19, "404925bb75dd57ba", "7a5ba291"),
    "tuab": (24, "f6debf0684797089", "01d2ff14"),
    "faced": (252, "ad42ee47d88f13ad", "4491f3bb"),
    "mumtaz2016": (34, "806a1b1a0377997d", "634bf95d"),
}


def _digest(w: EEGWindows) -> tuple[int, str, str]:
    h = hashlib.sha256()
    for start in range(0, len(w.X), 64):
        h.update(np.ascontiguousarray(w.X[start:start + 64]).tobytes())
    return len(w.X), h.hexdigest()[:16], w.checksum[-8:]


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_streaming_loaders_give_the_same_windows_as_before(tmp_path, monkeypatch, name):
    from eegkd_plugins import faced, mumtaz, tuh
    from fixtures_real import make_faced, make_mumtaz, make_tuab, make_tuev

    data = tmp_path / "data"
    make = {"tuev": make_tuev, "tuab": make_tuab, "faced": lambda r: make_faced(r, subjects=(0, 80, 100)),
            "mumtaz2016": make_mumtaz}[name]
    make(data)
    monkeypatch.setenv("EEGKD_DATA", str(data))
    dataset = {"tuev": tuh.TUEV, "tuab": tuh.TUAB, "faced": faced.FACED, "mumtaz2016": mumtaz.Mumtaz2016}[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = dataset.load(None, str(tmp_path / "cache"))
        loaded = dataset.load(None, str(tmp_path / "cache"))
    assert isinstance(built.X, np.memmap) and isinstance(loaded.X, np.memmap)
    assert _digest(built) == _digest(loaded) == BEFORE[name]


def test_teacher_cache_flag_and_its_alias():
    from eegkd_bench.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["run"]).teacher_cache == "auto"
    assert parse(["run", "--teacher-cache", "on"]).teacher_cache == "on"
    assert parse(["run", "--no-teacher-cache"]).teacher_cache == "off"
    from eegkd_bench.errors import UserError

    with pytest.raises(UserError, match="--teacher-cache: invalid choice: 'sometimes'"):
        parse(["run", "--teacher-cache", "sometimes"])
