"""A library for simulated EEG datasets with physiological structure.

The built-in ``sim-*`` benchmarks (plugin ``eegkd_plugins.simulated``) are built from it, and a
third-party plugin can build its own simulated paradigm the same way: subclass
:class:`SimulatedDataset`, give it a montage (:func:`referential` or :func:`bipolar`) and implement
``simulate_subject`` with the generators below. See ``docs/simulated_datasets.md``.

The generative model (our reading of common EEG simulation practice, not any one paper):

* **Sources** (:mod:`.head`): 36 cortical patches below standard 10-20/10-10 sites, each a radial
  current dipole. Every patch emits aperiodic 1/f^chi noise; rhythmic patches add narrow-band
  oscillations: posterior alpha, sensorimotor mu and beta, frontal-midline theta, delta.
* **Lead field** (:mod:`.head`): infinite-homogeneous-medium dipole potentials at electrode positions
  from MNE's standard 10-20 montage (offline), then the paradigm's reference or bipolar derivation,
  which gives realistic spatial correlation between channels.
* **Artifacts** (:mod:`.base`): eye blinks and movements from dipoles at the eyes, focal muscle
  bursts, electrode pops, white sensor noise.
* **Subjects differ** (:mod:`.signals`, :class:`SubjectTraits`) in overall gain, 1/f exponent,
  alpha/mu/beta peak frequency and power, source positions and orientations, electrode gains,
  sensor noise, blink rate and the strength of the class effect.
* **Preprocessing** mirrors CBraMod's downstream recipe: 0.3-75 Hz band-pass (zero phase, on a
  padded segment so window edges are clean), 200 Hz, then microvolts / 100.
"""
from eegkd_bench.data.sim.base import (
    FRONTAL_MIDLINE, GENERATOR_VERSION, MOTOR_AREAS, PAD_S, POSTERIOR, UV_TO_UNITS, SimulatedDataset,
)
from eegkd_bench.data.sim.head import (
    BCIC_IV_2A_CHANNELS, FACED_CHANNELS, SOURCE_DEPTH, SOURCE_INDEX, SOURCE_SITES, TCP_PAIRS, Derivation, Head,
    bipolar, electrode_positions, make_head, near_sources, referential, site_weights, template_sources,
)
from eegkd_bench.data.sim.signals import (
    SFREQ, SubjectTraits, aperiodic, band_noise, blink_wave, draw_traits, narrowband, preprocess, shaped_noise,
    spike_wave, sum_of_events, triphasic,
)

__all__ = [
    "BCIC_IV_2A_CHANNELS", "FACED_CHANNELS", "FRONTAL_MIDLINE", "GENERATOR_VERSION", "MOTOR_AREAS", "PAD_S",
    "POSTERIOR", "SFREQ", "SOURCE_DEPTH", "SOURCE_INDEX", "SOURCE_SITES", "TCP_PAIRS", "UV_TO_UNITS",
    "Derivation", "Head", "SimulatedDataset", "SubjectTraits", "aperiodic", "band_noise", "bipolar",
    "blink_wave", "draw_traits", "electrode_positions", "make_head", "narrowband", "near_sources",
    "preprocess", "referential", "shaped_noise", "site_weights", "spike_wave", "sum_of_events",
    "template_sources", "triphasic",
]
