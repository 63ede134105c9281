"""sim-mi: simulated motor imagery shaped like BCIC-IV-2a (lateralized mu/beta ERD, 4 classes)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from eegkd_bench.data.sim import (
    BCIC_IV_2A_CHANNELS, MOTOR_AREAS, PAD_S, SFREQ, SimulatedDataset, referential,
)


class SimMotorImagery(SimulatedDataset):
    """BCIC-IV-2a-shaped motor imagery: lateralized mu/beta ERD, 4 classes."""

    name = "sim-mi"
    description = "simulated motor imagery shaped like BCIC-IV-2a: 22 ch, 4 classes, 4 s windows"
    paradigm = "motor imagery"
    class_names = ("left_hand", "right_hand", "feet", "tongue")
    n_channels = 22
    window_s = 4.0
    mimics = "BCIC-IV-2a (22 channels, left-mastoid reference, 4 s after the cue, 200 Hz)"
    derivation = referential(BCIC_IV_2A_CHANNELS, "M1")
    # the low-label cross-subject regime: 4 labelled training subjects, 4 validation subjects, 4 unlabelled
    # transfer subjects (read by distillers only) and a test split of 24 subjects (576 windows)
    default_split = (4, 4, 24, 4)
    default_subjects = 36
    default_trials = 6
    default_effect_scale = 2.0

    #: Relative mu/beta amplitude in each area for each class at full effect (<1 ERD, >1 ERS).
    EFFECTS: ClassVar[dict[str, dict[str, float]]] = {
        "left_hand": {"right_hemi_hand": 0.35, "left_hemi_hand": 0.8, "feet": 1.1},
        "right_hand": {"left_hemi_hand": 0.35, "right_hemi_hand": 0.8, "feet": 1.1},
        "feet": {"feet": 0.35, "left_hemi_hand": 1.15, "right_hemi_hand": 1.15},
        "tongue": {"tongue": 0.35, "left_hemi_hand": 1.2, "right_hemi_hand": 1.2, "feet": 1.05},
    }

    def simulate_subject(self, rng, labels, traits, head, n_times):  # type: ignore[no-untyped-def]
        n = len(labels)
        # a stronger effect also means a more prominent sensorimotor rhythm for the ERD to suppress
        traits = dataclasses.replace(traits, mu_uv=traits.mu_uv * self.effect_scale ** 0.5)
        strength = np.clip(traits.effect * np.exp(rng.normal(0.0, 0.35, n)), 0.0, 1.2)
        gains = {area: np.ones(n) for area in MOTOR_AREAS}
        for c, cls in enumerate(self.class_names):
            for area, g in self.EFFECTS[cls].items():
                sel = labels == c
                gains[area][sel] = 1.0 + (g - 1.0) * strength[sel]
        gains = {a: np.clip(g, 0.05, None) for a, g in gains.items()}
        t = np.arange(n_times) / SFREQ - PAD_S  # 0 = cue
        latency = rng.uniform(0.3, 0.9, (n, 1))
        envelope = 1.0 / (1.0 + np.exp(-(t[None, :] - latency) / 0.15))
        beta_gains = {a: 1.0 + (g - 1.0) * 0.8 for a, g in gains.items()}
        src = self.background(rng, n, traits, n_times) + \
            self.motor_rhythms(rng, n, traits, n_times, gains, beta_gains, envelope)
        return self.sensor(rng, src, head, traits)
