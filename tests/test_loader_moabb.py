"""MOABB loaders: paths as moabb 1.7 lays them out, offline fast failure, and reading through MOABB.

BNCI2014_001 is read from tiny ``A0xT.mat``/``A0xE.mat`` files written in the
release's MATLAB structure at the moabb 1.7.2 path, by MOABB's own reader.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from eegkd_bench.api import DataUnavailable
from eegkd_plugins.moabb_datasets import base as md
from fixtures_real import write_bnci_mat, write_physionet_run

BNCI_DIR = Path("MNE-bnci-data") / "~bci" / "database" / "001-2014"
PHYSIO_DIR = Path("MNE-eegbci-data") / "files" / "eegmmidb" / "1.0.0"


@pytest.fixture()
def mne_data(tmp_path, monkeypatch):
    root = tmp_path / "mne_data"
    root.mkdir()
    monkeypatch.setenv("MNE_DATA", str(root))
    monkeypatch.delenv("MNE_DATASETS_BNCI_PATH", raising=False)
    monkeypatch.delenv("MNE_DATASETS_EEGBCI_PATH", raising=False)
    monkeypatch.delenv("EEGKD_DATA", raising=False)
    return root


def write_bnci(root: Path, subjects=(1, 6, 8)) -> None:
    for s in subjects:
        for r in "TE":
            write_bnci_mat(root / BNCI_DIR / f"A{s:02d}{r}.mat", seed=10 * s + (r == "E"))


@pytest.mark.parametrize("cls, expected", [(md.BNCI2014_001, BNCI_DIR / "A01T.mat"),
                                             (md.PhysionetMI, PHYSIO_DIR / "S001" / "S001R04.edf")])
def test_absent_fails_fast_without_moabb(cls, expected, mne_data, tmp_path, monkeypatch):
    """Availability and load of an absent dataset never reach MOABB (importing it is made to fail)."""
    for mod in [m for m in sys.modules if m == "moabb" or m.startswith("moabb.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "moabb", None)  # any 'import moabb...' now raises ImportError
    av = cls().availability()
    with pytest.raises(DataUnavailable) as err:
        cls().load(cache_dir=str(tmp_path / "cache"))
    assert av.available is False and "0 of" in av.detail and str(mne_data / expected) in av.detail
    msg = str(err.value)
    assert msg.startswith(f"{cls.name}: not downloaded (no {mne_data / expected})")
    assert f"eegkd-bench download {cls.__name__}" in msg and "\n" not in msg


def test_expected_paths_match_moabbs_own(mne_data):
    """Our file list equals what moabb 1.7 computes, asked with its downloader disabled."""
    import moabb.datasets

    probe: list[Path] = []
    with md.moabb_offline(mne_data, "BNCI", probe=probe):
        paths = moabb.datasets.BNCI2014_001().data_path(3)
    assert [Path(p) for p in paths] == md.BNCI2014_001().expected_files(3, mne_data) == probe
    probe = []
    with md.moabb_offline(mne_data, "EEGBCI", probe=probe):
        paths = moabb.datasets.PhysionetMI().data_path(7)
    ours = md.PhysionetMI().expected_files(7, mne_data)
    assert set(ours) <= {Path(p) for p in paths}  # moabb also lists the two baseline runs


def test_guard_raises_instead_of_downloading(mne_data):
    import moabb.datasets

    with md.moabb_offline(mne_data, "BNCI"), pytest.raises(md._Missing) as err:
        moabb.datasets.BNCI2014_001().get_data([2])
    assert err.value.path == mne_data / BNCI_DIR / "A02T.mat"


def test_bnci_loaded_through_moabb(mne_data, tmp_path):
    write_bnci(mne_data)
    ds = md.BNCI2014_001()
    av = ds.availability()
    assert av.available and av.detail.startswith("3 of 9 subjects downloaded") and av.where == str(mne_data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # moabb's montage name deprecation
        with pytest.warns(md.pp.DataWarning, match=r"subject\(s\) 2-5, 7, 9 not downloaded"):
            w = ds.load(cache_dir=str(tmp_path / "cache"))
    # 4 trials per session, T and E sessions, one EOG run each (skipped by moabb)
    assert w.X.shape == (3 * 8, 22, 800) and w.X.dtype == np.float32
    assert w.ch_names[:3] == ["Fz", "FC3", "FC1"] and "EOG1" not in w.ch_names
    assert w.class_names == ["left_hand", "right_hand", "feet", "tongue"]
    assert sorted(np.bincount(w.y).tolist()) == [6, 6, 6, 6]
    assert {s: set(w.subjects[w.split == s]) for s in ("train", "val", "test")} == {
        "train": {"A01"}, "val": {"A06"}, "test": {"A08"}}
    # seconds 2-6 hold a 12-Hz tone of (10 + c) uV on channel c; after the common average it is
    # (10 + c - 20.5) uV, stored as uV / 100 (noise is 1 uV, mostly removed by the 40-Hz low-pass)
    amp = np.sqrt(2) * w.X[:, :, 100:700].std(axis=2).mean(axis=0)
    np.testing.assert_allclose(amp, np.abs(np.arange(22) - 10.5) / 100, atol=0.012)
    assert amp.argmax() in (0, 21) and amp[10] < 0.02
    # second load: from the cache, moabb is not asked again
    ds.moabb_paradigm = lambda: (_ for _ in ()).throw(AssertionError("moabb called again"))
    again = ds.load(cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(again.X, w.X)


def test_bnci_missing_split_and_legacy_location(mne_data, tmp_path):
    write_bnci(mne_data, subjects=(1, 2))
    with pytest.raises(DataUnavailable, match=r"split\(s\) \['val', 'test'\] have no downloaded subject.*val: 6-7"):
        md.BNCI2014_001().load(cache_dir=str(tmp_path / "cache"))
    legacy = tmp_path / "old"
    write_bnci_mat(legacy / md.BNCI2014_001.LEGACY / "A01T.mat")
    av = md.BNCI2014_001().availability(data_dir=str(legacy))
    assert not av.available  # data_dir has no MNE-bnci-data/~bci: falls back to MNE_DATA
    (legacy / "MNE-bnci-data" / "~bci").mkdir(parents=True)
    with pytest.raises(DataUnavailable, match="pre-1.1 MOABB location"):
        md.BNCI2014_001().load(data_dir=str(legacy))


def test_data_dir_with_mne_data_subfolder_wins(mne_data, tmp_path):
    other = tmp_path / "eegkd"
    write_bnci(other / "mne_data", subjects=(1,))
    root, looked = md.mne_root("BNCI", str(other))
    assert root == other / "mne_data" and looked[0] == str(other)
    assert md.BNCI2014_001().availability(data_dir=str(other)).detail.startswith("1 of 9")


@pytest.mark.slow
def test_physionet_loaded_through_moabb(mne_data, tmp_path):
    for s in (1, 71, 90):
        for r in md.PHYSIONET_RUNS:
            write_physionet_run(mne_data / PHYSIO_DIR / f"S{s:03d}" / f"S{s:03d}R{r:02d}.edf", seed=s + r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = md.PhysionetMI().load(cache_dir=str(tmp_path / "cache"))
    assert w.X.shape == (3 * 18, 64, 800) and w.ch_names[0] == "FC5"
    assert {s: set(w.subjects[w.split == s]) for s in ("train", "val", "test")} == {
        "train": {"S001"}, "val": {"S071"}, "test": {"S090"}}
    # hand runs give left/right (0/1), feet runs both fists/feet (2/3)
    assert np.bincount(w.y).tolist() == [18, 9, 18, 9]


def test_generic_class_and_registration():
    ds = md.MoabbDataset("BNCI2014_004", "LeftRightImagery", events=["left_hand", "right_hand"],
                         tmax=4.0)
    assert ds.name == "bnci2014_004" and ds.class_names == ("left_hand", "right_hand") and ds.window_s == 4.0
    assert md.BNCI2014_001().split_of([1, 2, 3, 4, 5, 6, 7, 8, 9])[7] == "val"
    assert ds.split_of(list(range(1, 11))) == {**{i: "train" for i in range(1, 8)}, 8: "val", 9: "test", 10: "test"}
    from eegkd_bench.api import UserError
    with pytest.raises(UserError, match="class_names"):
        md.MoabbDataset("X", events=["a", "b"], class_names=["a"])
    from eegkd_bench.plugins import get_registry
    assert {"bnci2014_001", "physionetmi"} <= set(get_registry(check=False).names("datasets"))
