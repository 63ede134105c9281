"""TUEV loader on a tiny native-format copy (EDF + .rec, official v2.0.1 layout)."""
from __future__ import annotations


import numpy as np
import pytest

from eegkd_bench.api import DataUnavailable
from eegkd_bench.data import preprocess as pp
from eegkd_plugins import tuh
from fixtures_real import TUEV_TRAIN_SUBJECTS, electrode_amplitude, make_tuev, write_rec, write_tuh_edf


@pytest.fixture()
def tuev_root(tmp_path, monkeypatch):
    edf = make_tuev(tmp_path / "data")
    monkeypatch.setenv("EEGKD_DATA", str(tmp_path / "data"))
    return edf


def cbramod_window(signal: np.ndarray, start: int, end: int) -> np.ndarray:
    """CBraMod's BuildEvents slice, written out independently: 3x concatenation, [start-400, end+400)."""
    offset = signal.shape[1]
    tripled = np.concatenate([signal, signal, signal], axis=1)
    return tripled[:, offset + start - 400: offset + end + 400]


def test_event_windows_wrap_around_like_cbramod():
    n = 1200
    signal = np.vstack([np.arange(n), -np.arange(n)]).astype(float)
    times = np.arange(n) / 200.0
    events = np.array([[0, 0.0, 1.0, 1], [3, 2.5, 3.5, 4], [5, 5.0, 6.0, 6]])  # first and last wrap
    X, y, dropped = tuh.tuev_event_windows(signal, times, events)
    assert X.shape == (3, 2, 1000) and dropped == 0
    assert y.tolist() == [0, 3, 5]
    for win, (_, t0, t1, _) in zip(X, events):
        start, end = int(np.searchsorted(times, t0)), int(np.searchsorted(times, t1))
        np.testing.assert_array_equal(win, cbramod_window(signal, start, end))
    # the first event starts at sample 0, so its window begins 400 samples before the end
    assert X[0, 0, 0] == n - 400 and X[0, 0, 400] == 0


def test_event_windows_drop_bad_rows():
    signal = np.zeros((16, 1000))
    times = np.arange(1000) / 200.0
    events = np.array([[0, 1.0, 2.0, 7], [0, 1.0, 2.0, 0], [0, 9.0, 10.0, 2], [1, 2.0, 3.0, 2]])
    X, y, dropped = tuh.tuev_event_windows(signal, times, events)
    assert dropped == 3 and y.tolist() == [1] and X.shape == (1, 16, 1000)


def test_parse_rec_rejects_wrong_field_count(tmp_path):
    bad = tmp_path / "x.rec"
    bad.write_text("0,1.0,2.0\n")
    with pytest.raises(pp.SkipFile, match="expected 4"):
        tuh.parse_rec(bad)


def test_load_shapes_labels_splits_scaling(tuev_root, tmp_path):
    w = tuh.TUEV().load(cache_dir=str(tmp_path / "cache"))
    assert w.X.shape == (5 * 3 + 2 * 2, 16, 1000) and w.X.dtype == np.float32
    assert w.kind == "real" and w.sfreq == 200.0 and w.ch_names == list(pp.TCP_NAMES)
    assert w.class_names == list(tuh.TUEV_CLASSES)
    assert w.checksum.startswith("files-sha256:")
    # CBraMod: first int(0.8 * 5) = 4 sorted train subjects train, the 5th val, the eval folder test
    subj = {s: set(w.subjects[w.split == s]) for s in ("train", "val", "test")}
    assert subj["train"] == set(sorted(TUEV_TRAIN_SUBJECTS)[:4])
    assert subj["val"] == {sorted(TUEV_TRAIN_SUBJECTS)[4]}
    assert subj["test"] == {"eval-000", "eval-001"}
    assert not (subj["train"] & subj["val"]) and not (subj["train"] & subj["test"])
    # labels are .rec label - 1
    assert sorted(w.y[w.split == "test"].tolist()) == [2, 2, 5, 5]
    assert set(w.y[w.split != "test"].tolist()) <= set(range(6))
    # channels were picked by name from a shuffled file order: each bipolar window is a 10-Hz sine
    # of amplitude |A(anode) - A(cathode)| uV, stored as uV / 100 (event at 7 s: away from the edges)
    idx = np.flatnonzero((w.subjects == TUEV_TRAIN_SUBJECTS[0]))[2]
    amp = np.sqrt(2) * w.X[idx].std(axis=1)
    expected = np.array([abs(electrode_amplitude(a) - electrode_amplitude(b)) for a, b in pp.TCP_PAIRS]) / 100
    np.testing.assert_allclose(amp, expected, rtol=0.03, atol=0.005)


def test_bad_files_are_skipped_with_a_message(tuev_root, tmp_path):
    rng = np.random.default_rng(1)
    bad_dir = tuev_root / "train" / "aaaaaazz"
    bad_dir.mkdir()
    (bad_dir / "aaaaaazz_00000001.edf").write_bytes(b"this is not an EDF file" * 20)
    write_rec(bad_dir / "aaaaaazz_00000001.rec", [(0, 1.0, 2.0, 1)])
    write_tuh_edf(bad_dir / "aaaaaazz_00000002.edf", 12, rng=rng, drop=["EEG T3-REF"])
    write_rec(bad_dir / "aaaaaazz_00000002.rec", [(0, 1.0, 2.0, 1)])
    write_tuh_edf(bad_dir / "aaaaaazz_00000003.edf", 12, rng=rng)  # no .rec
    with pytest.warns(pp.DataWarning) as record:
        w = tuh.TUEV().load(cache_dir=str(tmp_path / "cache"))
    messages = [str(r.message) for r in record]
    assert any("aaaaaazz_00000001.edf" in m and "unreadable EDF" in m for m in messages)
    assert any("aaaaaazz_00000002.edf" in m and "EEG T3-REF" in m for m in messages)
    assert any("aaaaaazz_00000003.edf" in m and ".rec" in m for m in messages)
    assert "skipped 3 file(s)" in w.notes
    assert "aaaaaazz" not in set(w.subjects)  # no usable file: not counted among the subjects
    assert len(w.X) == 19


def test_second_load_hits_the_cache(tuev_root, tmp_path, monkeypatch):
    first = tuh.TUEV().load(cache_dir=str(tmp_path / "cache"))

    def no_reading(path):
        raise AssertionError("EDF read again despite the cache")

    monkeypatch.setattr(tuh, "_process_edf", no_reading)
    second = tuh.TUEV().load(cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(first.X, second.X)
    assert second.checksum == first.checksum
    # a changed source file misses the cache (its size/mtime are in the key)
    rec = next((tuev_root / "train").rglob("*.rec"))
    rec.write_text(rec.read_text() + "0,2.0,3.0,1\n")
    with pytest.raises(AssertionError, match="despite the cache"):
        tuh.TUEV().load(cache_dir=str(tmp_path / "cache"))


def test_absent_fails_fast_and_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("EEGKD_DATA", str(tmp_path))
    av = tuh.TUEV().availability()
    assert not av.available and str(tmp_path / "tuev") in av.where and "isip.piconepress.com" in av.how_to_get
    # fails before reading anything (no file is processed, nothing is cached), not after a slow search
    monkeypatch.setattr(tuh, "_process_edf", lambda path: (_ for _ in ()).throw(AssertionError("read")))
    with pytest.raises(DataUnavailable, match=r"tuev: not found at .*tuev.*EEGKD_DATA") as err:
        tuh.TUEV().load(cache_dir=str(tmp_path / "cache"))
    assert not any((tmp_path / "cache").rglob("*.npy"))
    assert "\n" not in str(err.value)


def test_no_root_configured(monkeypatch):
    monkeypatch.delenv("EEGKD_DATA", raising=False)
    av = tuh.TUEV().availability()
    assert not av.available and "EEGKD_DATA is not set" in av.where


def test_root_pointing_at_the_dataset_itself_gets_a_hint(tuev_root, monkeypatch):
    version_dir = tuev_root.parent  # .../tuh_eeg_events/v2.0.1
    monkeypatch.setenv("EEGKD_DATA", str(version_dir))
    with pytest.raises(DataUnavailable, match="found tuev files at .*but the loader looks in"):
        tuh.TUEV().load()
    av = tuh.TUEV().availability(data_dir=str(version_dir.parent.parent.parent))  # the right root
    assert av.available and "5 train + 2 eval" in av.detail


def test_registered_through_the_entry_point():
    from eegkd_bench.plugins import get_registry

    reg = get_registry(check=False)
    assert {"tuev", "tuab"} <= set(reg.names("datasets"))
    ds = reg.get("datasets", "tuev").factory()
    assert ds.n_channels == 16 and ds.window_s == 5.0 and ds.kind == "real"
