"""The simulated benchmarks: shapes, determinism, splits, physiology and calibrated difficulty."""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from eegkd_bench.api import SPLITS, UNLABELLED, Dataset, EEGWindows, UserError
from eegkd_bench.data.cache import stable_hash
from eegkd_bench.plugins import PluginHost
from eegkd_plugins.simulated import DATASETS, SimEvents, SimMotorImagery

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from sim_baselines import bandpower_features, baseline_scores  # noqa: E402  (a benchmark script, not a package)

EXPECTED = {  # name: (channels, samples, classes)
    "sim-mi": (22, 800, 4),
    "sim-abnormal": (16, 2000, 2),
    "sim-events": (16, 1000, 6),
    "sim-affective": (32, 1000, 9),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, EEGWindows]:
    """Every simulated dataset with its registered defaults (seed 0), generated once per test session: the
    first test process writes them to a window cache that the other pytest-xdist workers then read."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from eegkd_bench.storage import file_lock

    root = tmp_path_factory.getbasetemp()
    shared = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "simulated-defaults"
    with file_lock(shared / ".lock"), ThreadPoolExecutor(2) as pool:  # two at a time: the same windows
        return dict(zip([cls.name for cls in DATASETS],
                        pool.map(lambda cls: cls(use_cache=True).load(cache_dir=str(shared)), DATASETS)))


def test_plugin_registers_the_four_datasets() -> None:
    import eegkd_plugins.simulated as plugin

    host = PluginHost()
    host.register_plugin(plugin, "simulated")
    assert set(EXPECTED) <= set(host.registry.names("datasets"))
    for name in EXPECTED:
        ds = host.registry.get("datasets", name).factory()
        assert isinstance(ds, Dataset) and ds.kind == "simulated"
        assert ds.availability().available


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_dtypes_and_labels(generated: dict[str, EEGWindows], name: str) -> None:
    w = generated[name]
    n_ch, n_t, n_cls = EXPECTED[name]
    cls = {c.name: c for c in DATASETS}[name]
    assert w.X.shape[1:] == (n_ch, n_t) and w.X.dtype == np.float32
    assert (cls.n_channels, int(cls.window_s * cls.sfreq), len(cls.class_names)) == (n_ch, n_t, n_cls)
    assert w.y.dtype == np.int64 and set(np.unique(w.y[w.split != "transfer"])) == set(range(n_cls))
    assert w.kind == "simulated" and "SIMULATED" in w.notes and w.name == name and w.sfreq == 200.0
    assert list(w.class_names) == list(cls.class_names) and len(w.ch_names) == n_ch
    assert 600 <= len(w.X) <= 1400
    assert np.isfinite(w.X).all()
    # CBraMod units (microvolts / 100): a typical channel's s.d. is a few tenths
    sd = float(np.median(w.X.std(-1)))
    assert 0.03 < sd < 1.0, sd
    assert w.checksum == stable_hash(cls(use_cache=False).params())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_split_is_subject_disjoint_and_balanced(generated: dict[str, EEGWindows], name: str) -> None:
    w = generated[name]
    ds = {c.name: c for c in DATASETS}[name]()
    per_split = {s: set(w.subjects[w.split == s]) for s in SPLITS}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not per_split[a] & per_split[b], (a, b)
    assert tuple(len(per_split[s]) for s in SPLITS) == ds.split_counts
    for s in ("train", "val", "test"):
        counts = np.bincount(w.y[w.split == s], minlength=w.n_classes)
        assert counts.min() == counts.max(), (s, counts)  # every labelled split holds every class equally
    assert (w.y[w.split == "transfer"] == UNLABELLED).all()  # the transfer split's classes are withheld
    assert (w.y[w.split != "transfer"] >= 0).all()


def test_default_split_is_the_low_label_regime() -> None:
    """Few labelled training subjects, a test split of at least 24 subjects and 500 windows, an unlabelled
    transfer split; more subjects only grow the test split, and an explicit split may drop the transfer."""
    by_name = {c.name: c for c in DATASETS}
    for cls in DATASETS:
        ds = cls()
        n_train, n_val, n_test, n_transfer = ds.split_counts
        assert n_train <= 6 and n_val >= 2 and n_transfer >= 2, ds.split_counts
        assert n_test >= 24 and n_test * ds._windows_per_subject() >= 500, (cls.name, ds.split_counts)
        assert ds.n_subjects == cls.default_subjects == sum(ds.split_counts)
    assert by_name["sim-mi"]().split_counts == (4, 4, 24, 4)
    assert by_name["sim-mi"](n_subjects=40).split_counts == (4, 4, 28, 4)
    assert by_name["sim-mi"](n_subjects=24, split=[16, 4, 4]).split_counts == (16, 4, 4, 0)
    assert by_name["sim-mi"](n_subjects=24, split=[14, 4, 4, 2]).split_counts == (14, 4, 4, 2)
    # too few subjects for the default: the shares of old, every labelled split still gets one
    assert by_name["sim-mi"](n_subjects=8).split_counts == (6, 1, 1, 0)
    assert all(min(by_name["sim-mi"](n_subjects=n).split_counts[:3]) >= 1 for n in range(3, 12))
    with pytest.raises(UserError, match=r"split=\[4, 4, 4, -1\]"):
        by_name["sim-mi"](n_subjects=11, split=[4, 4, 4, -1])


def test_determinism_and_seed_sensitivity() -> None:
    small = dict(n_subjects=3, trials_per_class=2, use_cache=False)
    a = SimEvents(seed=7, **small).generate()
    b = SimEvents(seed=7, **small).generate()
    c = SimEvents(seed=8, **small).generate()
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.checksum == b.checksum != c.checksum
    assert not np.allclose(a.X, c.X)
    # each subject has its own random stream: adding subjects leaves the first ones unchanged
    d = SimEvents(seed=7, n_subjects=4, trials_per_class=2, use_cache=False).generate()
    np.testing.assert_array_equal(d.X[: len(a.X)], a.X)


def test_load_goes_through_the_window_cache(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = SimMotorImagery(n_subjects=3, trials_per_class=1)
    first = ds.load(cache_dir=str(tmp_path))
    second = ds.load(cache_dir=str(tmp_path))
    assert isinstance(second.X, np.memmap)
    np.testing.assert_array_equal(first.X, second.X)
    assert first.checksum == second.checksum and second.kind == "simulated"


@pytest.mark.parametrize("kwargs, match", [
    ({"n_subjects": 2}, "n_subjects=2"),
    ({"trials_per_class": 0}, "trials_per_class=0"),
    ({"n_subjects": 12, "split": (8, 2, 1)}, r"split=\[8, 2, 1\]"),
    ({"n_subjects": 3, "split": (1, 1.0, 1)}, r"split=\[1, 1.0, 1\]; expected three positive integers"),
    ({"window_s": 0.1}, "window_s=0.1"),
])
def test_bad_options_are_one_line_user_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(UserError, match=match) as info:
        SimMotorImagery(**kwargs)
    assert "\n" not in str(info.value)


def _psd(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f, p = signal.welch(np.asarray(X, np.float64), fs=200.0, nperseg=400, axis=-1)
    return f, p


def test_spectra_have_one_over_f_and_an_alpha_peak(generated: dict[str, EEGWindows]) -> None:
    w = generated["sim-mi"]
    f, p = _psd(w.X[w.y == 0][:, [w.ch_names.index("POz")]])
    psd = p.mean((0, 1))
    fit = (f >= 2) & (f <= 40) & ~((f >= 6) & (f <= 14)) & ~((f >= 15) & (f <= 28))
    slope, intercept = np.polyfit(np.log10(f[fit]), np.log10(psd[fit]), 1)
    assert slope < -0.8, slope  # 1/f: power falls with frequency
    alpha = (f >= 8) & (f <= 13)
    aperiodic_at_alpha = 10 ** (intercept + slope * np.log10(f[alpha]))
    assert (psd[alpha] / aperiodic_at_alpha).max() > 2.0  # a clear bump above the 1/f line


def test_motor_imagery_erd_is_lateralized(generated: dict[str, EEGWindows]) -> None:
    """Left-hand imagery lowers mu power over C4 (right hemisphere) relative to right-hand imagery, and vice versa."""
    w = generated["sim-mi"]
    f, p = _psd(w.X)
    mu = np.log(p[..., (f >= 8) & (f <= 13)].mean(-1))
    mu -= mu.mean(0)
    c3, c4 = w.ch_names.index("C3"), w.ch_names.index("C4")
    left, right = w.y == 0, w.y == 1
    assert mu[left, c4].mean() < mu[right, c4].mean() - 0.2
    assert mu[right, c3].mean() < mu[left, c3].mean() - 0.2


def test_abnormal_shows_background_slowing(generated: dict[str, EEGWindows]) -> None:
    w = generated["sim-abnormal"]
    f, p = _psd(w.X)
    slow = p[..., (f >= 1) & (f < 8)].mean(-1) / p[..., (f >= 8) & (f < 13)].mean(-1)
    ratio = np.log(slow).mean(1)
    assert ratio[w.y == 1].mean() > ratio[w.y == 0].mean() + 0.3


def test_blinks_are_frontal(generated: dict[str, EEGWindows]) -> None:
    w = generated["sim-affective"]
    f, p = _psd(w.X)
    low = p[..., (f >= 0.5) & (f < 3)].mean((0, -1))
    assert low[w.ch_names.index("Fp1")] > 2 * low[w.ch_names.index("Oz")]


def test_bandpower_features_shape() -> None:
    X = np.random.default_rng(0).standard_normal((5, 3, 400)).astype(np.float32)
    assert bandpower_features(X, 200.0).shape == (5, 3 * 7)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_classical_baselines_above_chance_below_ceiling(generated: dict[str, EEGWindows], name: str) -> None:
    """Calibrated difficulty on the TEST subjects (seed 0), fit on the 4-6 labelled training subjects of the
    default split: chance + 0.10 <= balanced accuracy <= 0.85."""
    w = generated[name]
    scores = baseline_scores(w, ("test",), csp=name == "sim-mi")
    assert set(scores) == ({"bandpower_lda", "csp_lda"} if name == "sim-mi" else {"bandpower_lda"})
    chance = 1.0 / w.n_classes
    for method, s in scores.items():
        assert chance + 0.10 <= s["test"] <= 0.85, (method, s["test"])


@pytest.mark.parametrize("name, digest", [
    ("sim-mi", "ce9f642d4163e6ee"), ("sim-abnormal", "c5f83437d7cef17b"),
    ("sim-events", "911e49729af532af"), ("sim-affective", "9327080d9e0e25f2"),
])
def test_generated_arrays_are_pinned(name: str, digest: str) -> None:
    """The bytes of a small set from the raw generator (effect_scale 1, which the pretraining corpus uses):
    a change here must bump GENERATOR_VERSION (it keys every cache and the shipped checkpoint's corpus)."""
    assert _digest(name, effect_scale=1.0) == digest


@pytest.mark.parametrize("name, digest", [
    ("sim-mi", "2f08bce7394a28e7"), ("sim-abnormal", "02e0b307e26fa81c"),
    ("sim-events", "3f6e7284d40b723d"), ("sim-affective", "2401cfd94edbf4d0"),
])
def test_default_effect_scale_is_pinned(name: str, digest: str) -> None:
    """The same small set at the dataset's default effect_scale (what every preset runs on)."""
    assert _digest(name) == digest


def _digest(name: str, **options: float) -> str:
    import hashlib

    cls = {c.name: c for c in DATASETS}[name]
    # an explicit split: the pins cover the generator, not each paradigm's default split shares
    w = cls(seed=3, n_subjects=5, trials_per_class=2, split=(3, 1, 1), use_cache=False, **options).generate()
    h = hashlib.sha256()
    for a in (w.X, w.y, w.subjects.astype("U8"), w.split.astype("U5")):
        h.update(a.tobytes())
    return h.hexdigest()[:16]
