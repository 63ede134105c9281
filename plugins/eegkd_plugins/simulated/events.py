"""sim-events: simulated EEG events shaped like TUEV (discharges, eye movements, artifacts, background)."""
from __future__ import annotations

import numpy as np

from eegkd_bench.data.sim import (
    SFREQ, SOURCE_SITES, TCP_PAIRS, SimulatedDataset, bipolar, near_sources, spike_wave, sum_of_events,
    template_sources, triphasic,
)


class SimEvents(SimulatedDataset):
    """TUEV-shaped event classification: epileptiform discharges, eye movements, artifacts, background."""

    name = "sim-events"
    description = "simulated EEG events shaped like TUEV: 16 TCP bipolar ch, 6 classes, 5 s windows"
    paradigm = "events"
    class_names = ("spsw", "gped", "pled", "eyem", "artf", "bckg")
    n_channels = 16
    window_s = 5.0
    mimics = "TUEV (16 TCP bipolar channels, 5 s windows, 200 Hz)"
    derivation = bipolar(TCP_PAIRS)
    # the low-label cross-subject regime: 4 labelled training subjects, 4 validation subjects, 4 unlabelled
    # transfer subjects (read by distillers only) and a test split of 24 subjects (576 windows)
    default_split = (4, 4, 24, 4)
    default_subjects = 36
    default_trials = 4
    default_effect_scale = 2.0

    def simulate_subject(self, rng, labels, traits, head, n_times):  # type: ignore[no-untyped-def]
        n = len(labels)
        dur = n_times / SFREQ
        centre = (dur - self.window_s) / 2  # the window proper is the middle of the padded segment
        focus_site = str(rng.choice(["T7", "T8", "F7", "F8", "C3", "C4", "P7", "P8"]))
        focus = near_sources(focus_site)
        src = self.background(rng, n, traits, n_times)
        src += self.motor_rhythms(rng, n, traits, n_times)
        extra = np.zeros((n, self.derivation.matrix.shape[0], n_times), np.float32)
        eyes = np.zeros((n, n_times))
        for i, c in enumerate(labels):
            cls = self.class_names[c]
            amp = traits.effect * np.exp(rng.normal(0.0, 0.4))
            if cls == "spsw":
                f = focus if rng.random() < 0.7 else near_sources(str(rng.choice(SOURCE_SITES)))
                k = rng.integers(1, 4)
                ev = sum_of_events(n_times, centre + rng.uniform(0.2, self.window_s - 0.3, k), spike_wave,
                                   rng.uniform(40, 90, k) * amp)
                src[i] += (f[:, None] * ev[None, :]).astype(np.float32)
            elif cls in ("gped", "pled"):
                period = rng.uniform(0.6, 1.6) if cls == "gped" else rng.uniform(0.8, 2.0)
                onsets = np.arange(rng.uniform(0, period), dur, period) + rng.normal(0, 0.03, 1)
                ev = sum_of_events(n_times, onsets, triphasic if cls == "gped" else spike_wave,
                                   np.full(len(onsets), rng.uniform(30, 70) * amp))
                if cls == "gped":
                    # generalized, frontal-predominant: every source, graded front to back
                    src_pos, _ = template_sources()
                    w = 0.6 + 0.4 * (src_pos[:, 1] - src_pos[:, 1].min()) / np.ptp(src_pos[:, 1])
                else:
                    w = np.maximum(focus, near_sources(focus_site, 0.045))
                src[i] += (w[:, None] * ev[None, :]).astype(np.float32)
            elif cls == "eyem":
                k = rng.integers(2, 6)
                t = np.arange(n_times) / SFREQ
                switch = np.sort(rng.uniform(0, dur, k))
                levels = rng.uniform(-1, 1, k + 1)
                pos = levels[0] + sum((levels[j + 1] - levels[j]) / (1 + np.exp(-(t - switch[j]) / 0.02))
                                      for j in range(k))
                eyes[i] = pos * rng.uniform(40, 120) * amp
            elif cls == "artf":
                kind = rng.choice(["muscle", "muscle", "pop", "chewing"])
                if kind == "pop":
                    j = rng.integers(len(head.elec_pos))
                    t = np.arange(n_times) / SFREQ - (centre + rng.uniform(0, self.window_s))
                    e = np.zeros(len(head.elec_pos))
                    e[j] = 1.0
                    extra[i] += (head.E @ e)[:, None] * (rng.uniform(50, 200) * amp * (t > 0)
                                                         * np.exp(-np.clip(t, 0, None) / rng.uniform(0.1, 0.5)))
                elif kind == "chewing":
                    for t0 in np.arange(centre + rng.uniform(0, 0.5), dur, rng.uniform(0.6, 1.0)):
                        for side in ("T7", "T8"):
                            extra[i] += self.muscle(rng, head, n_times, side, rng.uniform(15, 40) * amp, t0, 0.25)
                else:
                    extra[i] += self.muscle(rng, head, n_times, str(rng.choice(["T7", "T8", "F7", "F8", "Fp1"])),
                                            rng.uniform(10, 40) * amp, centre + rng.uniform(-1, self.window_s - 1),
                                            rng.uniform(1.0, 4.0))
        x = self.sensor(rng, src, head, traits)
        x += extra + (head.L_saccade[None, :, None] * eyes[:, None, :]).astype(np.float32)
        return x
