"""sim-abnormal: simulated normal/abnormal EEG shaped like TUAB (background slowing, one label per subject)."""
from __future__ import annotations

import numpy as np

from eegkd_bench.data.sim import (
    SFREQ, SOURCE_SITES, TCP_PAIRS, SimulatedDataset, bipolar, near_sources, spike_wave, sum_of_events,
)


class SimAbnormal(SimulatedDataset):
    """TUAB-shaped normal/abnormal EEG: abnormal subjects show background slowing."""

    name = "sim-abnormal"
    description = "simulated abnormal-EEG detection shaped like TUAB: 16 TCP bipolar ch, 2 classes, 10 s"
    paradigm = "abnormal EEG"
    class_names = ("normal", "abnormal")
    n_channels = 16
    window_s = 10.0
    mimics = "TUAB (16 TCP bipolar channels, 10 s windows, 200 Hz; one label per subject)"
    derivation = bipolar(TCP_PAIRS)
    # the low-label cross-subject regime (see sim-mi), with 6 training subjects (3 of each class) and a test
    # split of 42 subjects (504 windows): each subject has one class
    default_split = (6, 4, 42, 4)
    default_subjects = 56
    default_trials = 12  # windows per subject: each subject has one class, as a TUAB recording
    stratify_subjects = True
    default_effect_scale = 1.25

    def _windows_per_subject(self) -> int:
        return self.trials_per_class

    def subject_labels(self, rng, subject):  # type: ignore[no-untyped-def]
        return np.full(self.trials_per_class, subject % 2, np.int64)

    def simulate_subject(self, rng, labels, traits, head, n_times):  # type: ignore[no-untyped-def]
        n = len(labels)
        abnormal = bool(labels[0] == 1)
        severity = rng.uniform(0.05, 0.8) * self.effect_scale if abnormal else 0.0
        # drowsiness in normal and abnormal recordings alike: the main confounder of slowing
        drowsy = rng.random(n) < rng.uniform(0.1, 0.5)
        alpha_gain = np.where(drowsy, 0.5, 1.0) * (1.0 - 0.55 * severity)
        theta_gain = np.where(drowsy, 1.8, 1.0) * (1.0 + 1.8 * severity)
        alpha_shift = -2.0 * severity
        delta = np.zeros((n, len(SOURCE_SITES)))
        delta[:] = traits.bg_uv * (0.6 + 2.2 * severity)  # diffuse slowing (per window, all sources)
        delta *= np.exp(rng.normal(0.0, 0.3, (n, 1)))
        if abnormal and rng.random() < 0.5:  # focal polymorphic delta over one hemisphere
            side = rng.choice(["T7", "T8"]) if rng.random() < 0.6 else rng.choice(["F7", "F8"])
            w = near_sources(side)
            delta += traits.bg_uv * 3.0 * severity * w[None, :]
        src = self.background(rng, n, traits, n_times, alpha_gain=alpha_gain, theta_gain=theta_gain,
                              alpha_shift=alpha_shift, delta_uv=delta)
        src += self.motor_rhythms(rng, n, traits, n_times)
        if abnormal and severity > 0.4:  # occasional sharp waves
            focus = near_sources(rng.choice(SOURCE_SITES))
            for i in range(n):
                k = rng.poisson(0.05 * severity * n_times / SFREQ)
                if k:
                    ev = sum_of_events(n_times, rng.uniform(0, n_times / SFREQ, k), spike_wave,
                                       rng.uniform(20, 50, k))
                    src[i] += (focus[:, None] * ev[None, :]).astype(np.float32)
        x = self.sensor(rng, src, head, traits)
        for i in range(n):  # muscle bursts at random temporal sites, both classes
            if rng.random() < 0.3:
                x[i] += self.muscle(rng, head, n_times, str(rng.choice(["T7", "T8", "F7", "F8"])),
                                    rng.uniform(5, 20), rng.uniform(0, n_times / SFREQ), rng.uniform(0.5, 3))
        return x
