"""Every MOABB dataset by name: registration without MOABB, names, listing, download, loading, a KD cell.

Loading goes through MOABB's own dataset and paradigm classes; only the
per-subject reader (``_get_single_subject_data``, which would parse the
downloaded files) and ``data_path`` (which would download them) are replaced,
by MNE Raw objects shaped like MOABB's and by tiny placeholder files.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from eegkd_bench.api import UserError
from eegkd_bench.cli import main
from eegkd_plugins.moabb_datasets import catalog as mc
from eegkd_plugins.moabb_datasets import base as md

CHANNELS = ["Fz", "C3", "Cz", "C4", "Pz", "O1", "Oz", "O2"]


@pytest.fixture()
def roots(tmp_path, monkeypatch):
    """A fresh MNE data root and eegkd cache (MOABB's facts snapshot goes there)."""
    monkeypatch.setenv("EEGKD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MNE_DATA", str(tmp_path / "mne_data"))
    monkeypatch.delenv("EEGKD_DATA", raising=False)
    mc.known_facts.cache_clear()
    yield tmp_path / "mne_data", tmp_path / "cache"
    mc.known_facts.cache_clear()


def _registry():
    from eegkd_bench.plugins import get_registry

    return get_registry(check=False)


# ------------------------------------------------------------------ names
def test_names_come_from_moabb_without_importing_it():
    """A fresh process registers every MOABB dataset of the three paradigms and never imports MOABB."""
    code = ("import sys, json; from eegkd_bench.plugins import get_registry; r = get_registry(check=False); "
            "e = [x for x in r.entries('datasets') if x.metadata.get('moabb')]; "
            "print(json.dumps({'moabb_imported': any(m == 'moabb' or m.startswith('moabb.') for m in sys.modules), "
            "'names': [x.name for x in e], 'paradigms': [x.metadata['paradigm'] for x in e]}))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                    timeout=300).stdout)
    assert out["moabb_imported"] is False
    counts = {p: out["paradigms"].count(p) for p in set(out["paradigms"])}
    assert set(counts) == {"motor imagery", "P300/ERP", "SSVEP"} and min(counts.values()) >= 10, counts
    assert {"bnci2014_004", "lee2019_mi", "bnci2014_009", "kalunga2016", "nakanishi2015"} <= set(out["names"])
    assert "erpcore2021" not in out["names"]  # a base class MOABB lists in its table but does not export
    assert "bnci2014_001" not in out["names"]  # the curated recipe keeps that name


def test_summary_names_are_moabb_dataset_classes_with_that_paradigm():
    import moabb.datasets

    facts = mc.summary_facts()
    for name, f in facts.items():
        assert getattr(moabb.datasets, name)().paradigm == f.paradigm, name


def test_names_resolve_case_insensitively_with_suggestions():
    reg = _registry()
    assert reg.select("datasets", "BNCI2014_004,Lee2019_MI") == ["bnci2014_004", "lee2019_mi"]
    assert reg.select("datasets", "BNCI2014_001")[0] == "bnci2014_001"  # the curated recipe
    assert "kalunga2016" in reg.select("datasets", "Kalunga*")
    with pytest.raises(UserError, match=r"unknown dataset 'Lee2019_IM'; did you mean 'lee2019_mi'"):
        reg.select("datasets", "Lee2019_IM")


def test_all_keeps_moabb_catalog_out_and_quick_stays_simulated():
    from eegkd_bench.data.catalog import select_datasets

    reg = _registry()
    everything = reg.select("datasets", "all")
    assert "bnci2014_001" in everything and "lee2019_mi" not in everything
    quick = select_datasets(reg, "all", simulated_only=True)
    assert quick and all(reg.get("datasets", n).factory().kind == "simulated" for n in quick)


def test_listing_is_offline_and_does_not_import_moabb(roots, monkeypatch, capsys):
    for mod in [m for m in sys.modules if m == "moabb" or m.startswith("moabb.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "moabb", None)  # any 'import moabb...' now raises ImportError
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    moabb_rows = [r for r in rows.values() if r["description"].startswith("MOABB ")]
    assert len(moabb_rows) >= 140 and not any(r.get("error") for r in moabb_rows)
    lee = rows["lee2019_mi"]
    assert lee["paradigm"] == "motor imagery" and lee["subjects"] == 54 and lee["channels"] == 62
    assert lee["available"] is False and lee["how_to_get"] == "run `eegkd-bench download Lee2019_MI`"
    assert lee["exact"] is False  # from MOABB's summary table until MOABB was imported once
    assert rows["bnci2014_009"]["classes"] == "2: NonTarget, Target"


def test_download_offline_is_one_line_error(roots, capsys):
    root, _ = roots
    assert main(["download", "BNCI2014_004", "--subjects", "1", "--data-dir", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "subject 1 (1 of 1)" in err[-2]  # progress lines, then the error in one line
    assert err[-1].startswith("eegkd-bench: error: bnci2014_004: cannot download subject 1: MOABB's server is "
                             "unreachable")
    assert not md.manifest_path(root, "BNCI2014_004").exists()


def test_download_rejects_unknown_subjects_and_non_moabb_datasets(roots, capsys):
    root, _ = roots
    assert main(["download", "bnci2014_004", "--subjects", "10", "--data-dir", str(root)]) == 2
    assert "no subject(s) 10; MOABB's BNCI2014_004 has subjects 1-9" in capsys.readouterr().err
    sim = next(n for n in _registry().names("datasets") if n.startswith("sim"))
    assert main(["download", sim]) == 2
    assert f"cannot download '{sim}'" in capsys.readouterr().err


# ---------------------------------------------------------- three paradigms, end to end
def fake_raw(ds, subject: int, sfreq: float, n_per_class: int = 6):
    """One run as MOABB returns it: EEG in volts plus a stim channel with the dataset's event codes."""
    import mne

    from eegkd_plugins.moabb_datasets.catalog import PARADIGMS

    events = PARADIGMS[ds.paradigm][2] or tuple(ds.event_id)
    codes = [v if isinstance(v, int) else v[0] for v in (ds.event_id[e] for e in events)]
    rng = np.random.default_rng(subject)
    order = rng.permutation(np.repeat(np.arange(len(events)), n_per_class))
    gap = float(ds.interval[1]) + 2.0  # trials never overlap, whole-second windows fit
    n = int((len(order) * gap + 3.0) * sfreq)
    t = np.arange(n) / sfreq
    data = rng.normal(0, 2e-6, (len(CHANNELS), n))
    stim = np.zeros((1, n))
    for i, c in enumerate(order):
        onset = int((1.0 + i * gap) * sfreq)
        stim[0, onset] = codes[c]
        seg = slice(onset, onset + int(float(ds.interval[1]) * sfreq))
        data[: c + 1, seg] += 10e-6 * np.sin(2 * np.pi * (8 + 3 * c) * t[seg])  # class c: c+1 channels, 8+3c Hz
    info = mne.create_info(CHANNELS + ["STI 014"], sfreq, ["eeg"] * len(CHANNELS) + ["stim"])
    return mne.io.RawArray(np.vstack([data, stim]), info, verbose="error")


def patch_moabb_files(monkeypatch, name: str, sfreq: float) -> list[int]:
    """Stand-ins for what needs the real files: where they are (a placeholder) and reading one subject."""
    import moabb.datasets

    cls = getattr(moabb.datasets, name)
    opened: list[int] = []

    def data_path(self, subject, path=None, force_update=False, update_path=None, verbose=None, **kw):
        f = Path(path or md.mne_root(None)[0]) / f"MNE-fake-data/{name}/subject{subject}.raw"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"placeholder")
        return [str(f)]

    def single_subject(self, subject):
        opened.append(subject)
        return {"0": {"0": fake_raw(self, subject, sfreq)}}

    monkeypatch.setattr(cls, "data_path", data_path)
    monkeypatch.setattr(cls, "_get_single_subject_data", single_subject)
    return opened


CASES = [  # (MOABB name, sampling rate of the fake recording, expected window in s, classes)
    ("BNCI2014_004", 250.0, 5.0, ["left_hand", "right_hand"]),  # interval 3-7.5 s: 4.5 s -> 5 s
    ("BNCI2014_009", 256.0, 1.0, ["NonTarget", "Target"]),  # 0-0.8 s -> 1 s
    ("Kalunga2016", 256.0, 2.0, ["13", "17", "21", "rest"]),  # 2-4 s
]


@pytest.mark.parametrize("name, sfreq, window, classes", CASES, ids=[c[0] for c in CASES])
def test_download_list_load_and_kd_cell(name, sfreq, window, classes, roots, monkeypatch, capsys):
    root, cache = roots
    opened = patch_moabb_files(monkeypatch, name, sfreq)
    ds = _registry().get("datasets", name).factory()
    import moabb.datasets

    all_subjects = list(getattr(moabb.datasets, name)().subject_list)
    split = ds.split_of(all_subjects)
    pick = [next(s for s in all_subjects if split[s] == sp) for sp in ("train", "val", "test")]

    assert main(["download", name.lower(), "--subjects", ",".join(map(str, pick)), "--data-dir", str(root)]) == 0
    manifest = json.loads(md.manifest_path(root, name).read_text())
    assert manifest["subject_list"] == all_subjects and sorted(manifest["subjects"]) == sorted(map(str, pick))
    capsys.readouterr()
    assert main(["datasets", name, "--data-dir", str(root), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["available"] is True and row["detail"].startswith(f"3 of {len(all_subjects)} subjects downloaded")
    assert row["exact"] is True and row["window_s"] == window  # MOABB was imported: facts from its classes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = _registry().get("datasets", name).factory().load(str(root), str(cache / "windows"))
    assert sorted(opened) == sorted(pick)  # one subject at a time, only the downloaded ones
    assert w.sfreq == 200.0 and w.kind == "real" and w.ch_names == CHANNELS and w.class_names == classes
    assert w.X.shape[1:] == (len(CHANNELS), int(window * 200)) and w.X.dtype == np.float32
    assert np.bincount(w.y).tolist() == [len(pick) * 6] * len(classes)  # 6 trials per class and subject
    assert {sp: sorted(set(w.subjects[w.split == sp])) for sp in ("train", "val", "test")} == {
        sp: [str(s)] for sp, s in zip(("train", "val", "test"), pick)}
    # the class signal survives 200 Hz resampling: class c has c+1 channels carrying 10 uV (0.1 after /100)
    first = w.X[w.y == len(classes) - 1][:, :, : int(min(window, 0.8) * 200)]
    assert first[:, : len(classes)].std() > 3 * first[:, len(classes):].std()

    import dataclasses

    from eegkd_bench.context import make_context
    from eegkd_bench.presets import PRESETS
    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.runner import Grid
    from eegkd_bench.training import TrainConfig

    ctx = make_context(root.parent / "results", cache, str(root), latency=False)
    preset = dataclasses.replace(PRESETS["quick"], teacher_cfg=TrainConfig(epochs=1, batch_size=16),
                                 student_cfg=TrainConfig(epochs=1, batch_size=16))
    grid = Grid(_registry(), ctx, PlainReporter(total=1, stream=io.StringIO()))
    (record,) = grid.run(grid.plan([name.lower()], "cbramod-mini", ["eegnet"], ["kd"], (0,), preset), jobs=1)
    assert record["status"] == "ok", record.get("error")
    assert record["dataset"] == name.lower() and 0.0 <= record["metrics"]["balanced_accuracy"] <= 1.0
    assert record["data_kind"] == "real" and record["n_classes"] == len(classes)


def test_split_rule_is_subject_disjoint_and_documented():
    """The first 70 % of the subjects train, the next 15 % validate, the rest test (docs/real_datasets.md)."""
    reg = _registry()
    lee = reg.get("datasets", "Lee2019_MI").factory().split_of(list(range(1, 55)))
    assert [s for s in range(1, 55) if lee[s] == "val"] == list(range(38, 46))
    assert [s for s in range(1, 55) if lee[s] == "test"] == list(range(46, 55))
    bnci = reg.get("datasets", "bnci2014_004").factory().split_of(list(range(9, 0, -1)))  # order given: irrelevant
    assert [bnci[s] for s in range(1, 10)] == ["train"] * 6 + ["val"] + ["test"] * 2


def test_windows_come_one_subject_at_a_time(roots, monkeypatch):
    """The loader is a per-subject generator: each subject is read only when its windows are asked for."""
    root, _ = roots
    opened = patch_moabb_files(monkeypatch, "BNCI2014_009", 256.0)
    ds = _registry().get("datasets", "bnci2014_009").factory()
    ds.download(str(root), [1, 2, 3], progress=lambda msg: None)
    log = md.pp.SkipLog(ds.name)
    gen = ds.iter_subjects(root, [1, 2, 3], {1: "train", 2: "val", 3: "test"}, log)
    assert opened == []
    seen = []
    for sub in gen:
        seen.append((sub.subject, sub.split, len(opened)))
        assert sub.X.shape == (12, len(CHANNELS), 200) and sub.ch_names == CHANNELS
    assert seen == [("1", "train", 1), ("2", "val", 2), ("3", "test", 3)]
