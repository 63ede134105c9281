"""The window cache: hit, miss, stale/corrupt detection, atomic writes, unwritable folders."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eegkd_bench.api import EEGWindows
from eegkd_bench.data import cache
from eegkd_bench.data.cache import CacheWarning, cached_windows, default_cache_dir
from eegkd_bench.storage import stable_hash


def _windows(seed: int = 0) -> EEGWindows:
    rng = np.random.default_rng(seed)
    n = 6
    return EEGWindows(
        name="fake", X=rng.standard_normal((n, 3, 10)).astype(np.float32), y=np.arange(n) % 2,
        subjects=np.array(["s1", "s1", "s2", "s2", "s3", "s3"]), split=np.array(["train"] * 2 + ["val"] * 2 + ["test"] * 2),
        sfreq=200.0, ch_names=["C3", "Cz", "C4"], class_names=["a", "b"], kind="simulated",
        checksum="abc", notes="fake",
    )


class Builder:
    """Counts how often the cache had to build."""

    def __init__(self, seed: int = 0) -> None:
        self.calls = 0
        self.seed = seed

    def __call__(self) -> EEGWindows:
        self.calls += 1
        return _windows(self.seed)


KEY = {"dataset": "fake", "files": [["a.edf", 123, 1.5]], "params": {"sfreq": 200.0}, "code": "v1"}


def _entry(tmp_path: Path) -> Path:
    (entry,) = [p for p in (tmp_path / "windows").iterdir() if not p.name.startswith(".")]
    return entry


def _assert_same(a: EEGWindows, b: EEGWindows) -> None:
    np.testing.assert_array_equal(np.asarray(a.X), np.asarray(b.X))
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.subjects, b.subjects)
    np.testing.assert_array_equal(a.split, b.split)
    assert (a.name, a.sfreq, a.ch_names, a.class_names, a.kind, a.checksum, a.notes) == \
        (b.name, b.sfreq, b.ch_names, b.class_names, b.kind, b.checksum, b.notes)


def test_stable_hash_is_canonical_and_accepts_numpy_scalars() -> None:
    a = stable_hash({"b": 1, "a": [1.5, "x"], "n": np.float32(0.5), "i": np.int64(3)})
    b = stable_hash({"i": 3, "n": 0.5, "a": [1.5, "x"], "b": 1})
    assert a == b and len(a) == 64
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
    # the documented definition: sha256 of sorted-key compact JSON
    import hashlib
    assert stable_hash({"b": 1, "a": 2}) == hashlib.sha256(b'{"a":2,"b":1}').hexdigest()
    with pytest.raises(TypeError, match="object"):
        stable_hash({"a": object()})


def test_default_cache_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EEGKD_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("EEGKD_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "eegkd-bench"


def test_miss_then_hit_returns_identical_windows(tmp_path: Path) -> None:
    build = Builder()
    first = cached_windows(KEY, build, tmp_path)
    second = cached_windows(KEY, build, tmp_path)
    assert build.calls == 1
    _assert_same(first, second)
    assert isinstance(second.X, np.memmap)
    second.X[0, 0, 0] = 99.0  # copy-on-write: never reaches the file
    third = cached_windows(KEY, build, tmp_path)
    assert third.X[0, 0, 0] == first.X[0, 0, 0] and build.calls == 1
    meta = json.loads((_entry(tmp_path) / "meta.json").read_text())
    assert meta["key_parts"] == json.loads(json.dumps(KEY))
    assert set(meta["arrays"]) == {"X", "y", "subjects", "split"}
    assert meta["arrays"]["X"]["shape"] == [6, 3, 10] and len(meta["arrays"]["X"]["sha256"]) == 64


def test_default_dir_used_when_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EEGKD_CACHE", str(tmp_path))
    cached_windows(KEY, Builder())
    assert (tmp_path / "windows").is_dir()


def test_different_key_parts_miss(tmp_path: Path) -> None:
    build = Builder()
    cached_windows(KEY, build, tmp_path)
    cached_windows({**KEY, "code": "v2"}, build, tmp_path)
    assert build.calls == 2


def test_refresh_rebuilds(tmp_path: Path) -> None:
    cached_windows(KEY, Builder(0), tmp_path)
    fresh = Builder(1)
    out = cached_windows(KEY, fresh, tmp_path, refresh=True)
    assert fresh.calls == 1
    _assert_same(out, cached_windows(KEY, Builder(), tmp_path))
    _assert_same(out, _windows(1))


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip_X", "truncate_X", "delete_y", "bad_meta", "stale_key", "shape_lie"])
def test_corrupt_or_stale_entry_is_rebuilt_with_warning(tmp_path: Path, damage: str) -> None:
    cached_windows(KEY, Builder(), tmp_path)
    entry = _entry(tmp_path)
    meta_path = entry / "meta.json"
    if damage == "flip_X":
        _flip_byte(entry / "X.npy")
    elif damage == "truncate_X":
        (entry / "X.npy").write_bytes((entry / "X.npy").read_bytes()[:-4])
    elif damage == "delete_y":
        (entry / "y.npy").unlink()
    elif damage == "bad_meta":
        meta_path.write_text("{not json")
    elif damage == "stale_key":
        meta = json.loads(meta_path.read_text())
        meta["key_parts"]["code"] = "old"
        meta_path.write_text(json.dumps(meta))
    elif damage == "shape_lie":
        meta = json.loads(meta_path.read_text())
        meta["arrays"]["X"]["shape"] = [6, 3, 11]
        meta_path.write_text(json.dumps(meta))
    build = Builder()
    with pytest.warns(CacheWarning, match="rebuilding") as rec:
        out = cached_windows(KEY, build, tmp_path)
    assert build.calls == 1
    assert len(str(rec[0].message).splitlines()) == 1
    _assert_same(out, _windows())
    # the rebuilt entry is healthy again
    again = Builder()
    _assert_same(cached_windows(KEY, again, tmp_path), _windows())
    assert again.calls == 0
    assert not [p for p in (tmp_path / "windows").iterdir() if p.name.startswith(".")]


def test_unwritable_dir_warns_once_and_returns_built(tmp_path: Path) -> None:
    # A regular file where the cache folder should be: unwritable even for root.
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("x")
    cache._warned_dirs.discard(str(blocked))
    build = Builder()
    with pytest.warns(CacheWarning, match="cannot write") as rec:
        out = cached_windows(KEY, build, blocked)
    assert len(str(rec[0].message).splitlines()) == 1
    _assert_same(out, _windows())
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached_windows(KEY, build, blocked)  # second time: silent
    assert build.calls == 2


def test_publish_keeps_existing_entry_when_a_concurrent_writer_won(tmp_path: Path) -> None:
    """Two builders racing for one key: both return good windows, one entry survives, no temp dirs."""
    entry = tmp_path / "windows" / "k"
    cache._store_entry(entry, _windows(0), KEY)
    cache._store_entry(entry, _windows(1), KEY)  # simulates the second writer finishing later
    assert [p.name for p in (tmp_path / "windows").iterdir()] == ["k"]
    _assert_same(cache._load_entry(entry, json.loads(json.dumps(KEY))), _windows(1))


def test_build_must_return_windows(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="expected EEGWindows"):
        cached_windows(KEY, lambda: "nope", tmp_path)  # type: ignore[arg-type,return-value]
