"""FACED loader on tiny native-format pickles (full (28, 32, 7500) arrays, three subjects)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from eegkd_bench.api import DataUnavailable
from eegkd_bench.data import preprocess as pp
from eegkd_plugins import faced
from fixtures_real import faced_subject, make_faced


@pytest.fixture()
def faced_dir(tmp_path, monkeypatch):
    folder = make_faced(tmp_path / "data", subjects=(0, 80, 100))
    monkeypatch.setenv("EEGKD_DATA", str(tmp_path / "data"))
    return folder


def test_clip_labels_follow_the_release_order():
    assert len(faced.CLIP_LABELS) == 28
    assert faced.CLIP_LABELS[:3].tolist() == [0, 0, 0] and faced.CLIP_LABELS[12:16].tolist() == [4] * 4
    assert faced.CLIP_LABELS[-1] == 8 and np.bincount(faced.CLIP_LABELS).tolist() == [3, 3, 3, 3, 4, 3, 3, 3, 3]


def test_windows_are_consecutive_10s_pieces_of_each_clip():
    t = np.arange(7500) / 250.0
    array = np.broadcast_to(np.sin(2 * np.pi * 1.0 * t), (28, 32, 7500)).copy()
    array += np.arange(28)[:, None, None] * 1000.0
    X, y = faced.faced_windows(array)
    assert X.shape == (84, 32, 2000) and y.tolist() == np.repeat(faced.CLIP_LABELS, 3).tolist()
    t200 = np.arange(6000) / 200.0
    for w in (0, 1, 2, 40, 83):
        clip, j = divmod(w, 3)
        expected = np.sin(2 * np.pi * t200[2000 * j: 2000 * (j + 1)]) + clip * 1000.0
        np.testing.assert_allclose(X[w, 5], expected, atol=1e-6)


def test_load_shapes_labels_splits_scaling(faced_dir, tmp_path):
    w = faced.FACED().load(cache_dir=str(tmp_path / "cache"))
    assert w.X.shape == (3 * 84, 32, 2000) and w.X.dtype == np.float32
    assert w.n_classes == 9 and w.ch_names == list(faced.CHANNELS)
    assert {s: set(w.subjects[w.split == s]) for s in ("train", "val", "test")} == {
        "train": {"sub000"}, "val": {"sub080"}, "test": {"sub100"}}
    # clip c carries (c + 1) * 100 uV, so its windows average c + 1 after the / 100 scaling
    means = w.X.mean(axis=(1, 2))
    clip = np.tile(np.repeat(np.arange(28), 3), 3)
    np.testing.assert_allclose(means, clip + 1.0, atol=1e-3)
    assert w.y.tolist() == np.tile(np.repeat(faced.CLIP_LABELS, 3), 3).tolist()


def test_wrong_shape_and_bad_pickle_are_skipped(faced_dir, tmp_path):
    with open(faced_dir / "sub001.pkl", "wb") as fh:
        pickle.dump(np.zeros((28, 32, 6000)), fh)
    (faced_dir / "sub002.pkl").write_bytes(b"not a pickle")
    with pytest.warns(pp.DataWarning) as record:
        w = faced.FACED().load(cache_dir=str(tmp_path / "cache"))
    text = " ".join(str(r.message) for r in record)
    assert "sub001.pkl" in text and "(28, 32, 7500)" in text
    assert "sub002.pkl" in text and "unreadable pickle" in text
    assert len(w.X) == 3 * 84 and "skipped 2 file(s)" in w.notes


def test_second_load_hits_the_cache(faced_dir, tmp_path, monkeypatch):
    first = faced.FACED().load(cache_dir=str(tmp_path / "cache"))
    monkeypatch.setattr(faced, "faced_windows", lambda a: (_ for _ in ()).throw(AssertionError("rebuilt")))
    second = faced.FACED().load(cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(first.X, second.X)


def test_missing_split_and_missing_dataset(tmp_path, monkeypatch):
    make_faced(tmp_path / "data", subjects=(0,), nested=False)
    monkeypatch.setenv("EEGKD_DATA", str(tmp_path / "data"))
    assert faced.FACED().availability().detail == "1 of 123 subject files"
    with pytest.raises(DataUnavailable, match=r"split\(s\) \['val', 'test'\]"):
        faced.FACED().load(cache_dir=str(tmp_path / "cache"))
    monkeypatch.setenv("EEGKD_DATA", str(tmp_path / "nothing"))
    with pytest.raises(DataUnavailable, match="faced: not found at .*synapse"):
        faced.FACED().load()
    assert faced_subject(0).shape == faced.SHAPE
