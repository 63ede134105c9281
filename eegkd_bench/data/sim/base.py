"""The base class of simulated EEG datasets and the building blocks the paradigms share.

A simulated dataset subclasses :class:`SimulatedDataset`, sets the class attributes of
:class:`eegkd_bench.api.Dataset` plus ``derivation`` (its montage) and ``mimics``, and implements
:meth:`SimulatedDataset.simulate_subject`: one subject's sensor-level microvolts for given labels.
The base class draws the subject (traits, head), pads, band-passes and scales the windows, assigns
the subject-disjoint split, caches the result and keeps every subject on its own random stream.
Options, splits, checksums and caching then behave like the built-in ``sim-*`` datasets.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from eegkd_bench.api import UNLABELLED, Availability, Dataset, EEGWindows, Option, UserError
from eegkd_bench.data.cache import cached_windows
from eegkd_bench.storage import stable_hash
from eegkd_bench.data.sim.head import (
    SOURCE_SITES, Derivation, Head, electrode_positions, make_head, site_weights,
)
from eegkd_bench.data.sim.signals import (
    SFREQ, SubjectTraits, aperiodic, band_noise, blink_wave, draw_traits, narrowband, preprocess, sum_of_events,
)

#: Bump whenever a change alters generated arrays (it is part of every checksum and cache key).
GENERATOR_VERSION = "1"
UV_TO_UNITS = 1.0 / 100.0  # CBraMod scales microvolts by 1/100
PAD_S = 1.0  # generated on each side of a window and cut off after filtering

POSTERIOR = {"O1": 1.0, "Oz": 1.0, "O2": 1.0, "PO3": 0.8, "PO4": 0.8, "P3": 0.5, "Pz": 0.5, "P4": 0.5,
             "P7": 0.4, "P8": 0.4}
FRONTAL_MIDLINE = {"Fz": 1.0, "FC1": 0.6, "FC2": 0.6, "F3": 0.3, "F4": 0.3}
#: Sensorimotor areas whose mu/beta rhythms motor imagery modulates (our placement).
MOTOR_AREAS = {
    "left_hemi_hand": {"C3": 1.0, "C5": 0.5, "C1": 0.5, "CP5": 0.3},
    "right_hemi_hand": {"C4": 1.0, "C6": 0.5, "C2": 0.5, "CP6": 0.3},
    "feet": {"Cz": 1.0, "CP1": 0.35, "CP2": 0.35, "FC1": 0.35, "FC2": 0.35},
    "tongue": {"FC5": 0.8, "FC6": 0.8, "T7": 0.5, "T8": 0.5, "C5": 0.3, "C6": 0.3},
}


class _SimulatedOptions:
    """``cls.defaults`` of a simulated dataset: read from the class, so a subclass's sizes stay its own."""

    def __get__(self, instance: Any, owner: type["SimulatedDataset"]) -> dict[str, Option]:
        per = "windows per subject (each subject has one class)" if owner.stratify_subjects else \
            "windows of each class per subject"
        return {
            "n_subjects": Option(int(owner.default_subjects), "simulated subjects (at least 3: the splits are "
                                 "subject-disjoint)"),
            "trials_per_class": Option(int(owner.default_trials), per),
            "seed": Option(0, "generator seed: another seed draws other subjects"),
            "split": Option(None, "subjects per split [train, val, test] or [train, val, test, transfer], summing "
                            "to n_subjects (transfer: unlabelled subjects only distillers read; none: the "
                            "dataset's default split, with the test split taking the subjects beyond it)", type=list),
            "window_s": Option(float(owner.window_s), "window length in seconds (1 to 30)"),
            "effect_scale": Option(float(owner.default_effect_scale), "how strongly the classes differ: multiplies "
                                   "every subject's class-effect strength (0 < scale <= 5; lower is harder)"),
        }


class SimulatedDataset(Dataset):
    """Base of the simulated benchmarks: options, splits, caching; subclasses generate one subject."""

    kind: ClassVar[str] = "simulated"  # type: ignore[assignment]
    sfreq: ClassVar[float] = SFREQ
    derivation: ClassVar[Derivation]
    default_subjects: ClassVar[int] = 12
    default_trials: ClassVar[int] = 12
    stratify_subjects: ClassVar[bool] = False  # one class per subject (abnormal): split by class too
    #: Default shares of the subjects held out for validation and test (the rest train). Evaluation
    #: costs a fraction of training, so a paradigm may hold out many test subjects: a test split of a
    #: few subjects makes the accuracy of a model depend on which subjects they are, and comparisons
    #: between methods noisy.
    val_share: ClassVar[float] = 1 / 6
    test_share: ClassVar[float] = 1 / 6
    #: The default subjects of (train, val, test, transfer), or None for the shares above. The
    #: built-in benchmarks use the field's low-label cross-subject regime: a few labelled training
    #: subjects, a test split of at least 24 subjects, and an unlabelled transfer split of other
    #: subjects that only distillers read. With another ``n_subjects`` the test split takes the rest.
    default_split: ClassVar[tuple[int, int, int, int] | None] = None
    #: Multiplies each subject's class-effect strength (``SubjectTraits.effect``, drawn in 0.4-1.0).
    #: Each paradigm sets its default so that a CBraMod-sized teacher and a compact student both learn
    #: the task within the quick preset's budget while classical baselines stay well below ceiling
    #: (docs/simulated_datasets.md); 1.0 is the raw generator.
    default_effect_scale: ClassVar[float] = 1.0
    #: the options a run may set (``--set sim-mi.n_subjects=24``); ``use_cache`` is not one, it changes no result
    defaults = _SimulatedOptions()  # type: ignore[assignment]

    def __init__(self, n_subjects: int | None = None, trials_per_class: int | None = None, seed: int = 0,
                 split: Sequence[int] | None = None, window_s: float | None = None,
                 effect_scale: float | None = None, use_cache: bool = True) -> None:
        total = sum(self.default_split) if self.default_split is not None else self.default_subjects
        self.n_subjects = int(n_subjects if n_subjects is not None else total)
        self.trials_per_class = int(trials_per_class if trials_per_class is not None else self.default_trials)
        self.seed = int(seed)
        self.window_s = float(window_s if window_s is not None else type(self).window_s)
        self.effect_scale = float(effect_scale if effect_scale is not None else self.default_effect_scale)
        self.use_cache = bool(use_cache)
        if not 0.0 < self.effect_scale <= 5.0:
            raise UserError(f"{self.name}: effect_scale={self.effect_scale:g}; expected a number in (0, 5] "
                            "(1 is the raw generator, lower is harder)")
        if self.n_subjects < 3:
            raise UserError(f"{self.name}: n_subjects={self.n_subjects} is too small; "
                            "expected at least 3 (one per train/val/test split)")
        if self.trials_per_class < 1:
            raise UserError(f"{self.name}: trials_per_class={self.trials_per_class}; expected a positive integer")
        if not 1.0 <= self.window_s <= 30.0:
            raise UserError(f"{self.name}: window_s={self.window_s}; expected seconds between 1 and 30")
        self.split_counts = self._split_counts(split)

    # -- options
    def _split_counts(self, split: Sequence[int] | None) -> tuple[int, int, int, int]:
        """Subjects of (train, val, test, transfer)."""
        if split is not None:
            whole = all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in split)
            counts = tuple(int(c) for c in split) if whole else ()
            if len(counts) not in (3, 4) or min(counts[:3]) < 1 or min(counts) < 0 or sum(counts) != self.n_subjects:
                raise UserError(f"{self.name}: split={list(split)}; expected three positive integers (train, val, "
                                "test subjects) and optionally a fourth (unlabelled transfer subjects, 0 or more) "
                                f"that sum to n_subjects={self.n_subjects}")
            return (*counts, 0)[:4]  # type: ignore[return-value]
        n = self.n_subjects
        if self.default_split is not None:
            # the low-label default: train, val and transfer keep their sizes, the test split takes the rest
            n_train, n_val, _, n_transfer = self.default_split
            n_test = n - n_train - n_val - n_transfer
            if n_test >= (2 if self.stratify_subjects else 1):
                return n_train, n_val, n_test, n_transfer
        if self.stratify_subjects:
            # even val/test counts so both classes are equally represented (2 classes alternate)
            n_val = n_test = max(2, 2 * round(n / 12))
            if n - n_val - n_test >= 2:
                return n - n_val - n_test, n_val, n_test, 0
        n_val, n_test = max(1, round(n * self.val_share)), max(1, round(n * self.test_share))
        if n - n_val - n_test < 1:
            n_val = n_test = max(1, round(n / 6))
        return n - n_val - n_test, n_val, n_test, 0

    def params(self) -> dict[str, Any]:
        """Everything that determines the generated arrays."""
        return {"dataset": self.name, "generator_version": GENERATOR_VERSION, "n_subjects": self.n_subjects,
                "trials_per_class": self.trials_per_class, "seed": self.seed,
                "split": list(self.split_counts), "window_s": self.window_s, "effect_scale": self.effect_scale}

    @property
    def n_times(self) -> int:
        return int(round(self.window_s * SFREQ))

    # -- the Dataset contract
    def availability(self, data_dir: str | None = None) -> Availability:
        """Always available: generated on the fly."""
        n = self.n_subjects * self._windows_per_subject()
        return Availability(True, "generated in memory (simulated)", "",
                            f"{self.n_subjects} subjects, {n} windows, seed {self.seed}")

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        """Generate the windows (through the window cache unless ``use_cache=False``)."""
        if not self.use_cache:
            return self.generate()
        return cached_windows({"simulated": self.params()}, self.generate, cache_dir)

    def _windows_per_subject(self) -> int:
        return self.trials_per_class * len(self.class_names)

    # -- generation
    def subject_labels(self, rng: np.random.Generator, subject: int) -> np.ndarray:
        """Class of each window of one subject (balanced, shuffled)."""
        y = np.repeat(np.arange(len(self.class_names)), self.trials_per_class)
        return rng.permutation(y)

    def generate(self) -> EEGWindows:
        """Generate every subject's windows and assign the subject-disjoint split."""
        from threadpoolctl import threadpool_limits

        # The matrices are tiny: multi-threaded BLAS only adds spin-wait overhead (100x on a busy
        # 2-core machine, measured), so generation runs single-threaded.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._generate()

    def _generate(self) -> EEGWindows:
        X, y, subjects = [], [], []
        for s, (x, labels) in enumerate(self.iter_subjects()):
            X.append(x)
            y.append(labels)
            subjects += [f"S{s + 1:02d}"] * len(labels)
        subjects_arr = np.array(subjects)
        labels = np.concatenate(y).astype(np.int64)
        split = self._assign_split(subjects_arr, labels)
        labels[split == "transfer"] = UNLABELLED  # the transfer split's classes are withheld
        return EEGWindows(
            name=self.name, X=np.ascontiguousarray(np.concatenate(X), dtype=np.float32),
            y=labels, subjects=subjects_arr, split=split, sfreq=SFREQ,
            ch_names=list(self.derivation.ch_names), class_names=list(self.class_names), kind="simulated",
            checksum=stable_hash(self.params()),
            notes=f"SIMULATED EEG (eegkd-bench generator v{GENERATOR_VERSION}, seed {self.seed}); "
                  f"shaped like {self.mimics}; not real data",
        )

    def subject_streams(self) -> list[np.random.SeedSequence]:
        """One independent seed sequence per subject: changing n_subjects leaves existing subjects unchanged."""
        return np.random.SeedSequence([self.seed, *self.name.encode()]).spawn(self.n_subjects)

    def iter_subjects(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield each subject's ``(windows, labels)`` in order, one subject in memory at a time."""
        for s, seq in enumerate(self.subject_streams()):
            yield self.generate_subject(np.random.default_rng(seq), s)

    def generate_subject(self, rng: np.random.Generator, subject: int, n_times: int | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """One subject drawn from ``rng``: preprocessed windows ``(n, channels, n_times)`` in units and labels."""
        labels = self.subject_labels(rng, subject)
        traits = draw_traits(rng)
        head = make_head(rng, self.derivation)
        return self.simulate_windows(rng, labels, traits, head, n_times), labels

    def simulate_windows(self, rng: np.random.Generator, labels: np.ndarray, traits: SubjectTraits, head: Head,
                         n_times: int | None = None) -> np.ndarray:
        """Windows of one drawn subject: simulated on a padded segment, band-passed, cut, scaled to units."""
        n_times = self.n_times if n_times is None else n_times
        if self.effect_scale != 1.0:
            traits = dataclasses.replace(traits, effect=traits.effect * self.effect_scale)
        pad = int(PAD_S * SFREQ)
        x_uv = self.simulate_subject(rng, labels, traits, head, n_times + 2 * pad)
        x_uv = preprocess(x_uv)[..., pad:pad + n_times]
        return x_uv * np.float32(traits.gain * UV_TO_UNITS)

    def _assign_split(self, subjects: np.ndarray, y: np.ndarray) -> np.ndarray:
        ids = list(dict.fromkeys(subjects))
        n_train, n_val, n_test, n_transfer = self.split_counts
        if self.stratify_subjects:
            # interleave subjects of each class so every split holds both classes
            label = {s: int(y[subjects == s][0]) for s in ids}
            by_class = [[s for s in ids if label[s] == c] for c in sorted(set(label.values()))]
            order = [s for group in zip(*by_class) for s in group]
            order += [s for s in ids if s not in order]
            # test, val and transfer are taken from the end so they stay balanced
            ids = order[::-1]
            assignment = ["test"] * n_test + ["val"] * n_val + ["transfer"] * n_transfer + ["train"] * n_train
        else:
            # the test split last: more subjects only add test subjects
            assignment = ["train"] * n_train + ["val"] * n_val + ["transfer"] * n_transfer + ["test"] * n_test
        split_of = dict(zip(ids, assignment))
        return np.array([split_of[s] for s in subjects])

    def simulate_subject(self, rng: np.random.Generator, labels: np.ndarray, traits: SubjectTraits, head: Head,
                         n_times: int) -> np.ndarray:
        """Sensor-level microvolts ``(n, channels, n_times)`` of one subject (``n_times`` includes padding)."""
        raise NotImplementedError

    mimics: ClassVar[str] = ""

    # -- building blocks shared by the paradigms
    def background(self, rng: np.random.Generator, n: int, traits: SubjectTraits, n_times: int,
                   alpha_gain: np.ndarray | None = None, theta_gain: np.ndarray | None = None,
                   alpha_shift: np.ndarray | float = 0.0, delta_uv: np.ndarray | None = None) -> np.ndarray:
        """Source activity ``(n, sources, n_times)``: 1/f everywhere, posterior alpha, frontal theta, delta."""
        S = len(SOURCE_SITES)
        src = traits.bg_uv * aperiodic(rng, (n, S), n_times, traits.exponent)
        src *= np.exp(rng.normal(0.0, 0.15, (n, S, 1))).astype(np.float32)  # state fluctuation
        w = site_weights(POSTERIOR)
        idx = np.flatnonzero(w)
        f_alpha = traits.alpha_hz + np.asarray(alpha_shift) + rng.normal(0.0, 0.25, n)
        amp = traits.alpha_uv * np.exp(rng.normal(0.0, 0.3, n))
        if alpha_gain is not None:
            amp = amp * alpha_gain
        alpha = narrowband(rng, (n, len(idx)), n_times, f_alpha[:, None], 0.8)
        # a shared alpha generator (0.7) plus local ones (0.3): posterior channels co-vary
        shared = narrowband(rng, (n, 1), n_times, f_alpha[:, None], 0.8)
        src[:, idx] += ((0.7 * shared + 0.3 * alpha) * (amp[:, None, None] * w[idx][None, :, None])).astype(np.float32)
        w = site_weights(FRONTAL_MIDLINE)
        idx = np.flatnonzero(w)
        amp = traits.theta_uv * np.exp(rng.normal(0.0, 0.3, n))
        if theta_gain is not None:
            amp = amp * theta_gain
        theta = narrowband(rng, (n, len(idx)), n_times, rng.uniform(5.0, 7.0, (n, 1)), 0.8)
        src[:, idx] += (theta * (amp[:, None, None] * w[idx][None, :, None])).astype(np.float32)
        if delta_uv is not None:  # (n, S) polymorphic delta
            sel = np.flatnonzero(delta_uv.max(0) > 0)
            delta = narrowband(rng, (n, len(sel)), n_times, rng.uniform(1.2, 3.0, (n, 1)), 0.7)
            src[:, sel] += (delta * delta_uv[:, sel, None]).astype(np.float32)
        return src

    def motor_rhythms(self, rng: np.random.Generator, n: int, traits: SubjectTraits, n_times: int,
                      mu_gain: dict[str, np.ndarray] | None = None,
                      beta_gain: dict[str, np.ndarray] | None = None,
                      envelope: np.ndarray | None = None) -> np.ndarray:
        """Mu and beta rhythms of the sensorimotor areas; gains (n,) per area, optionally time-varying.

        ``envelope`` (n, n_times) in [0, 1] says how far the class effect has developed at each
        sample (the ERD builds up after the cue); the rhythm amplitude is ``1 + (gain - 1) * envelope``.
        """
        S = len(SOURCE_SITES)
        out = np.zeros((n, S, n_times), np.float32)
        for area, sites in MOTOR_AREAS.items():
            w = site_weights(sites)
            idx = np.flatnonzero(w)
            for band, base_uv, f0, bw, gains in (("mu", traits.mu_uv, traits.mu_hz, 0.9, mu_gain),
                                                 ("beta", traits.beta_uv, traits.beta_hz, 2.0, beta_gain)):
                f = f0 + rng.normal(0.0, 0.3, (n, 1))
                osc = narrowband(rng, (n, 1), n_times, f, bw) * 0.6 + \
                    narrowband(rng, (n, len(idx)), n_times, f, bw) * 0.4
                amp = base_uv * np.exp(rng.normal(0.0, 0.25, n))[:, None]  # (n, 1)
                g = np.ones((n, 1)) if gains is None or area not in gains else gains[area][:, None]
                mod = amp if envelope is None else amp * (1.0 + (g - 1.0) * envelope)
                if envelope is None:
                    mod = amp * g
                out[:, idx] += (osc * mod[:, None, :] * w[idx][None, :, None]).astype(np.float32)
        return out

    def sensor(self, rng: np.random.Generator, src: np.ndarray, head: Head, traits: SubjectTraits,
               blinks: bool = True) -> np.ndarray:
        """Project sources to channels and add blinks and white sensor noise."""
        x = np.einsum("cs,nst->nct", head.L.astype(np.float32), src, optimize=True)
        n, C, T = x.shape
        if blinks:
            for i in range(n):
                k = rng.poisson(traits.blink_rate * T / SFREQ)
                if k:
                    onsets = rng.uniform(-0.3, T / SFREQ, k)
                    amps = traits.blink_uv * np.exp(rng.normal(0.0, 0.2, k))
                    x[i] += (head.L_blink[:, None] * sum_of_events(T, onsets, blink_wave, amps)).astype(np.float32)
        x += rng.normal(0.0, traits.noise_uv, x.shape).astype(np.float32)
        return x

    def muscle(self, rng: np.random.Generator, head: Head, n_times: int, centre: str, uv: float,
               onset_s: float, dur_s: float, spread_m: float = 0.03) -> np.ndarray:
        """A focal burst of muscle activity around one electrode site: ``(channels, n_times)``."""
        pos, _, _ = electrode_positions()
        d = np.linalg.norm(head.elec_pos - pos[centre], axis=1)
        w = np.exp(-0.5 * (d / spread_m) ** 2)
        noise = band_noise(rng, (len(w),), n_times, 20.0, 90.0)
        t = np.arange(n_times) / SFREQ
        env = 1.0 / (1.0 + np.exp(-(t - onset_s) / 0.05)) * 1.0 / (1.0 + np.exp((t - onset_s - dur_s) / 0.05))
        return head.E @ (w[:, None] * noise * env[None, :] * uv)

