"""Mumtaz2016 loader on a tiny native-format copy (flat EDF folder, release quirks reproduced)."""
from __future__ import annotations

import numpy as np
import pytest

from eegkd_bench.api import DataUnavailable
from eegkd_bench.data import preprocess as pp
from eegkd_plugins import mumtaz
from fixtures_real import electrode_amplitude, make_mumtaz, write_mumtaz_edf


@pytest.fixture()
def mumtaz_dir(tmp_path, monkeypatch):
    folder = make_mumtaz(tmp_path / "data")
    monkeypatch.setenv("EEGKD_DATA", str(tmp_path / "data"))
    return folder


def test_parse_name():
    assert mumtaz.parse_name("6921143_H S15 EO.edf") == ("H", "H S15", "EO")
    assert mumtaz.parse_name("MDD S1  EO.edf") == ("MDD", "MDD S1", "EO")
    assert mumtaz.parse_name("MDD S3 TASK.edf") == ("MDD", "MDD S3", "TASK")
    assert mumtaz.parse_name("notes.edf") is None


def test_subject_splits_are_per_class_and_natural_order():
    subjects = {"H": [f"H S{i}" for i in range(1, 31)], "MDD": [f"MDD S{i}" for i in range(1, 35)]}
    splits = mumtaz.subject_splits(subjects)
    counts = {c: [sum(splits[s] == k for s in subjects[c]) for k in ("train", "val", "test")] for c in subjects}
    assert counts == {"H": [21, 4, 5], "MDD": [23, 5, 6]}
    assert splits["H S9"] == "train" and splits["H S10"] == "train" and splits["H S30"] == "test"


def test_load_shapes_labels_splits_scaling(mumtaz_dir, tmp_path):
    with pytest.warns(pp.DataWarning, match="byte-identical copy"):
        w = mumtaz.Mumtaz2016().load(cache_dir=str(tmp_path / "cache"))
    assert w.X.shape[1:] == (19, 1000) and w.X.dtype == np.float32
    assert w.ch_names == list(mumtaz.CHANNELS) and w.class_names == ["healthy", "MDD"]
    # 12 s at 256 Hz -> 2400 samples at 200 Hz -> 2 windows of 5 s per file, TASK files left out;
    # H: 4 subjects x 2 - the missing 'H S2 EO' + H S15 EC and one of its two identical EO copies
    n_files = (4 * 2 - 1 + 2) + 4 * 2
    assert len(w.X) == 2 * n_files
    assert "6921959_H S15 EO.edf is a byte-identical copy of 6921143_H S15 EO.edf" in w.notes
    # label from the group; 20-channel MDD and 22-channel H files both give the 19 channels
    assert set(w.y[np.char.startswith(w.subjects.astype(str), "MDD")]) == {1}
    assert set(w.y[np.char.startswith(w.subjects.astype(str), "H ")]) == {0}
    per_split = {s: set(w.subjects[w.split == s]) for s in ("train", "val", "test")}
    assert per_split == {"train": {"H S1", "H S2", "H S3", "MDD S1", "MDD S2"},
                         "val": {"H S4", "MDD S3"}, "test": {"H S15", "MDD S4"}}
    # picked by name: Fp1, Fp2, F3 ... in CBraMod's order, each a 10-Hz sine of its electrode's amplitude
    expected = np.array([electrode_amplitude(c.upper()) for c in mumtaz.CHANNELS]) / 100
    np.testing.assert_allclose(np.sqrt(2) * w.X[0, :, 200:800].std(axis=1), expected, rtol=0.05, atol=0.01)


def test_missing_channel_unexpected_name_and_short_file(mumtaz_dir, tmp_path):
    write_mumtaz_edf(mumtaz_dir / "MDD S9 EC.edf", 12, n_channels=15)  # lacks Cz, Pz, ...
    write_mumtaz_edf(mumtaz_dir / "MDD S9 EO.edf", 3)
    write_mumtaz_edf(mumtaz_dir / "H S9 resting.edf", 12)
    with pytest.warns(pp.DataWarning) as record:
        w = mumtaz.Mumtaz2016().load(cache_dir=str(tmp_path / "cache"))
    text = " ".join(str(r.message) for r in record)
    assert "MDD S9 EC.edf" in text and "EEG Cz-LE" in text
    assert "MDD S9 EO.edf" in text and "shorter than one 5-s window" in text
    assert "H S9 resting.edf" in text and "unexpected file name" in text
    assert "skipped 3 file(s)" in w.notes and "MDD S9" not in set(w.subjects)


def test_second_load_hits_the_cache(mumtaz_dir, tmp_path, monkeypatch):
    with pytest.warns(pp.DataWarning):
        first = mumtaz.Mumtaz2016().load(cache_dir=str(tmp_path / "cache"))
    monkeypatch.setattr(pp, "read_edf", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-read")))
    second = mumtaz.Mumtaz2016().load(cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(first.X, second.X)
    assert second.notes == first.notes


def test_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("EEGKD_DATA", str(tmp_path))
    av = mumtaz.Mumtaz2016().availability()
    assert not av.available and "figshare" in av.how_to_get
    with pytest.raises(DataUnavailable, match="mumtaz2016: not found at"):
        mumtaz.Mumtaz2016().load()
