"""TUAB loader on a tiny native-format copy (v3.0.1 layout, mixed 250/256 Hz EDFs)."""
from __future__ import annotations

import numpy as np
import pytest

from eegkd_bench.api import DataUnavailable
from eegkd_bench.data import preprocess as pp
from eegkd_plugins import tuh
from fixtures_real import electrode_amplitude, make_tuab, write_tuh_edf


@pytest.fixture()
def tuab_root(tmp_path, monkeypatch):
    edf = make_tuab(tmp_path / "data")
    monkeypatch.setenv("EEGKD_DATA", str(tmp_path / "data"))
    return edf


def test_load_shapes_labels_splits(tuab_root, tmp_path):
    w = tuh.TUAB().load(cache_dir=str(tmp_path / "cache"))
    # 12 files of 25 s -> 2 non-overlapping 10-s windows each (tail dropped)
    assert w.X.shape == (12 * 2, 16, 2000) and w.X.dtype == np.float32
    assert w.class_names == ["normal", "abnormal"] and w.ch_names == list(pp.TCP_NAMES)
    # per class: first int(0.8 * 5) = 4 sorted subjects train, 1 val; eval -> test
    for label, first in ((0, "b"), (1, "c")):
        m = w.y == label
        assert set(w.subjects[m & (w.split == "train")]) == {f"aaaaa{first}{c}a" for c in "abcd"}
        assert set(w.subjects[m & (w.split == "val")]) == {f"aaaaa{first}ea"}
        assert set(w.subjects[m & (w.split == "test")]) == {f"aaaaa{first}zz"}
    by_split = [set(w.subjects[w.split == s]) for s in ("train", "val", "test")]
    assert not (by_split[0] & by_split[1]) and not (by_split[0] & by_split[2]) and not (by_split[1] & by_split[2])
    # picked by name from shuffled channels, resampled from 250 or 256 Hz, scaled to uV / 100
    expected = np.array([abs(electrode_amplitude(a) - electrode_amplitude(b)) for a, b in pp.TCP_PAIRS]) / 100
    for i in range(len(w.X)):
        np.testing.assert_allclose(np.sqrt(2) * w.X[i, :, 400:1600].std(axis=1), expected, rtol=0.05, atol=0.01)


def test_v2_nested_layout_is_read(tmp_path, monkeypatch):
    """TUAB v2.0.0 nests files as 01_tcp_ar/078/00007871/s001_2011_07_05/00007871_s001_t001.edf."""
    rng = np.random.default_rng(0)
    edf = tmp_path / "tuab" / "v2.0.0" / "edf"
    for part, cls, subj in (("train", "normal", "00007871"), ("train", "normal", "00007872"),
                            ("train", "normal", "00007873"), ("train", "abnormal", "00000001"),
                            ("train", "abnormal", "00000002"), ("eval", "normal", "00009999"),
                            ("eval", "abnormal", "00008888")):
        path = edf / part / cls / "01_tcp_ar" / subj[:3] / subj / "s001_2011_07_05" / f"{subj}_s001_t001.edf"
        write_tuh_edf(path, 10, rng=rng)
    w = tuh.TUAB().load(data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"))
    assert len(w.X) == 7 and set(w.subjects[w.split == "val"]) == {"00007873", "00000002"}


def test_subject_in_both_classes_stays_in_one_split():
    from pathlib import Path

    def files(*subjects):
        return [Path(f"{s}_s001_t000.edf") for s in subjects]

    listing = {("train", "normal"): files("a1", "a2", "a3", "a4", "a5"),
               ("train", "abnormal"): files("a5", "b1", "b2", "b3", "b4"),
               ("eval", "normal"): files("z1"), ("eval", "abnormal"): files("z2", "b1")}
    log = pp.SkipLog("tuab")
    with pytest.warns(pp.DataWarning, match="both train and eval"):
        splits = tuh.TUAB.assign_splits(listing, log)
    per_subject: dict[str, set[str]] = {}
    for path, split in splits.items():
        per_subject.setdefault(path.name.split("_")[0], set()).add(split)
    assert all(len(v) == 1 for v in per_subject.values())
    # a5 is val among normals but train among abnormals: the earlier split (train) wins
    assert per_subject["a5"] == {"train"}
    # b1 also occurs in eval: its train-folder file is left out, the eval one is test
    assert per_subject["b1"] == {"test"}


def test_short_and_corrupt_files_are_skipped(tuab_root, tmp_path):
    rng = np.random.default_rng(3)
    folder = tuab_root / "train" / "normal" / "01_tcp_ar"
    write_tuh_edf(folder / "aaaaabaa_s002_t000.edf", 6, rng=rng)  # shorter than a window
    (folder / "aaaaabaa_s003_t000.edf").write_bytes(b"0       " + b"\x00" * 100)
    with pytest.warns(pp.DataWarning) as record:
        w = tuh.TUAB().load(cache_dir=str(tmp_path / "cache"))
    text = " ".join(str(r.message) for r in record)
    assert "aaaaabaa_s002_t000.edf" in text and "shorter than one 10-s window" in text
    assert "aaaaabaa_s003_t000.edf" in text and "unreadable EDF" in text
    assert "skipped 2 file(s)" in w.notes and len(w.X) == 24


def test_second_load_hits_the_cache(tuab_root, tmp_path, monkeypatch):
    first = tuh.TUAB().load(cache_dir=str(tmp_path / "cache"))
    monkeypatch.setattr(tuh, "_process_edf", lambda path: (_ for _ in ()).throw(AssertionError("re-read")))
    second = tuh.TUAB().load(cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.split, second.split)


def test_absent_and_wrong_level(tmp_path, monkeypatch):
    monkeypatch.setenv("EEGKD_DATA", str(tmp_path))
    assert not tuh.TUAB().availability().available
    with pytest.raises(DataUnavailable, match="tuab: not found at"):
        tuh.TUAB().load(cache_dir=str(tmp_path / "cache"))
    # the TUAB folder sits under another name: the message says where it was found
    edf = make_tuab(tmp_path / "elsewhere")
    monkeypatch.setenv("EEGKD_DATA", str(edf.parent))
    with pytest.raises(DataUnavailable, match=f"found tuab files at {edf}"):
        tuh.TUAB().load()


def test_availability_counts_files(tuab_root):
    av = tuh.TUAB().availability()
    assert av.available and "train/normal: 5" in av.detail and "eval/abnormal: 1" in av.detail
