"""The dataset catalog behind `eegkd-bench datasets`."""
from __future__ import annotations

from pathlib import Path

from eegkd_bench.api import Availability, Dataset
from eegkd_bench.data.catalog import COLUMNS, dataset_rows, disk_size, human_size
from eegkd_bench.registry import Entry, Registry


class OnDisk(Dataset):
    name = "fake-real"
    kind = "real"
    description = "a fake real dataset"
    class_names = ("a", "b", "c")
    n_channels = 8
    window_s = 2.0
    sfreq = 100.0

    def __init__(self, root: Path) -> None:
        self.root = root

    def availability(self, data_dir=None):  # type: ignore[no-untyped-def]
        return Availability(True, str(self.root), "copy it", "2 files")

    def load(self, data_dir=None, cache_dir=None):  # type: ignore[no-untyped-def]
        raise AssertionError("the catalog must never load data")


class Missing(Dataset):
    name = "fake-missing"
    class_names = ("x", "y")
    n_channels = 4

    def availability(self, data_dir=None):  # type: ignore[no-untyped-def]
        return Availability(False, f"{data_dir}/missing", "download it from example.org")


class Broken(Dataset):
    name = "fake-broken"

    def availability(self, data_dir=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk on fire\nsecond line")


def _registry(tmp_path: Path) -> Registry:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.bin").write_bytes(b"x" * 1500)
    (tmp_path / "data" / "b.bin").write_bytes(b"x" * 500)
    reg = Registry()
    reg.add(Entry("datasets", "fake-real", lambda: OnDisk(tmp_path / "data"), "p1", "desc"))
    reg.add(Entry("datasets", "fake-missing", Missing, "p2"))
    reg.add(Entry("datasets", "fake-broken", Broken, "p3"))
    reg.add(Entry("datasets", "fake-bad-factory", lambda: 1 / 0, "p4"))
    return reg


def test_rows_have_every_column_and_static_facts(tmp_path: Path) -> None:
    rows = {r["name"]: r for r in dataset_rows(_registry(tmp_path), data_dir="/somewhere")}
    assert set(rows) == {"fake-real", "fake-missing", "fake-broken", "fake-bad-factory"}
    for r in rows.values():
        assert set(COLUMNS) <= set(r)
    real = rows["fake-real"]
    assert real["available"] is True and real["kind"] == "real" and real["plugin"] == "p1"
    assert real["classes"] == "3: a, b, c" and real["channels"] == 8 and real["window_s"] == 2.0
    assert real["sfreq"] == 100.0 and real["size"] == "2.0 KB" and real["how_to_get"] == "copy it"
    missing = rows["fake-missing"]
    assert missing["available"] is False and missing["where"] == "/somewhere/missing"
    assert missing["how_to_get"] == "download it from example.org" and missing["size"] == ""


def test_a_broken_dataset_gives_an_error_row(tmp_path: Path) -> None:
    rows = {r["name"]: r for r in dataset_rows(_registry(tmp_path))}
    assert rows["fake-broken"]["error"] == "RuntimeError: disk on fire"
    assert rows["fake-broken"]["available"] is False
    assert rows["fake-bad-factory"]["error"].startswith("ZeroDivisionError")


def test_builtin_simulated_rows_are_fast_and_available(monkeypatch) -> None:
    import eegkd_plugins.simulated as plugin
    from eegkd_bench.data.sim.base import SimulatedDataset
    from eegkd_bench.plugins import PluginHost

    host = PluginHost()
    host.register_plugin(plugin, "simulated")
    # fast because nothing is generated: listing never loads a dataset
    monkeypatch.setattr(SimulatedDataset, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    rows = {r["name"]: r for r in dataset_rows(host.registry)}
    mi = rows["sim-mi"]
    assert mi["kind"] == "simulated" and mi["available"] is True and mi["channels"] == 22
    assert mi["classes"].startswith("4: left_hand") and mi["window_s"] == 4.0 and mi["sfreq"] == 200.0


def test_sizes(tmp_path: Path) -> None:
    assert human_size(999) == "999 B" and human_size(1500) == "1.5 KB" and human_size(2_500_000_000) == "2.5 GB"
    assert disk_size(str(tmp_path / "nope")) == ""
    (tmp_path / "f").write_bytes(b"x" * 10)
    assert disk_size(str(tmp_path / "f")) == "10 B"
    assert disk_size("$EEGKD_DATA/x (not set)") == ""
