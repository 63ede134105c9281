"""sim-pretrain: an unlabeled simulated corpus for self-supervised pretraining, streamed batch by batch.

Every batch is one simulated subject's windows, drawn from one of the four paradigms in turn
(sim-mi, sim-abnormal, sim-events, sim-affective): that paradigm's montage, window length and
brain states (motor imagery of every class, normal or abnormal background, every event type, every
emotion), with the labels thrown away. A subject is a fixed person (traits and head drawn from the
subject's own stream); each pass over the corpus draws new windows of that person.

Nothing is held in memory or on disk: batch ``i`` is generated when asked for, from
``SeedSequence([seed, *b"sim-pretrain", subject, pass])``. The labeled benchmarks seed their subjects
with ``SeedSequence([seed, *name])`` and call them ``S01..S40``; the corpus's subjects are ``P00000..``
from other streams, so no labeled subject appears in it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from eegkd_bench.api import Availability, Dataset, UserError
from eegkd_bench.data.cache import stable_hash
from eegkd_bench.data.sim import GENERATOR_VERSION, SFREQ, SimulatedDataset, draw_traits, make_head
from eegkd_plugins.simulated.abnormal import SimAbnormal
from eegkd_plugins.simulated.affective import SimAffective
from eegkd_plugins.simulated.events import SimEvents
from eegkd_plugins.simulated.mi import SimMotorImagery

PARADIGMS: dict[str, type[SimulatedDataset]] = {
    "mi": SimMotorImagery, "abnormal": SimAbnormal, "events": SimEvents, "affective": SimAffective,
}


class SimPretrainCorpus(Dataset):
    """Unlabeled simulated EEG from many subjects of the four paradigms, for ``eegkd-bench pretrain``."""

    name = "sim-pretrain"
    kind = "simulated"  # type: ignore[assignment]
    labeled = False
    paradigm = "unlabeled (pretraining corpus)"
    description = ("unlabeled simulated EEG for self-supervised pretraining: 4096 subjects cycling through the "
                   "sim-mi/abnormal/events/affective montages and states, streamed batch by batch")
    sfreq = SFREQ
    default_subjects = 4096

    def __init__(self, n_subjects: int | None = None, seed: int = 0, paradigms: str | Sequence[str] = "all") -> None:
        self.n_subjects = int(n_subjects if n_subjects is not None else self.default_subjects)
        self.seed = int(seed)
        names = list(PARADIGMS) if paradigms == "all" else (
            [p.strip() for p in paradigms.split(",") if p.strip()] if isinstance(paradigms, str) else list(paradigms))
        unknown = [p for p in names if p not in PARADIGMS]
        if unknown or not names:
            raise UserError(f"{self.name}: paradigms={paradigms!r}; expected 'all' or some of {', '.join(PARADIGMS)}")
        if self.n_subjects < 1:
            raise UserError(f"{self.name}: n_subjects={self.n_subjects}; expected a positive integer")
        self.paradigms = tuple(names)
        # the raw generator (effect_scale 1): the states are thrown away, and the shipped checkpoint was
        # pretrained on exactly these windows
        self._sims = {p: PARADIGMS[p](use_cache=False, effect_scale=1.0) for p in self.paradigms}

    def params(self) -> dict[str, Any]:
        """Everything that determines the streamed windows."""
        return {"dataset": self.name, "generator_version": GENERATOR_VERSION, "n_subjects": self.n_subjects,
                "seed": self.seed, "paradigms": list(self.paradigms)}

    @property
    def checksum(self) -> str:
        return stable_hash(self.params())

    def availability(self, data_dir: str | None = None) -> Availability:
        """Always available: generated batch by batch."""
        return Availability(True, "streamed, generated batch by batch (simulated, unlabeled)", "",
                            f"{self.n_subjects} subjects of {', '.join(self.paradigms)}, seed {self.seed}")

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> Any:
        raise UserError(f"{self.name} is an unlabeled pretraining corpus streamed batch by batch; use it with "
                        f"eegkd-bench pretrain --datasets {self.name}, not in a benchmark grid")

    def subject_of(self, index: int) -> tuple[int, int, str]:
        """Batch ``index`` -> (subject, pass over the corpus, paradigm)."""
        subject, n_pass = index % self.n_subjects, index // self.n_subjects
        return subject, n_pass, self.paradigms[subject % len(self.paradigms)]

    def stream_batch(self, index: int, batch_size: int) -> np.ndarray:
        """Batch ``index``: ``batch_size`` windows of one subject, float32 ``(batch_size, channels, samples)``."""
        subject, n_pass, paradigm = self.subject_of(int(index))
        sim = self._sims[paradigm]
        root = [self.seed, *self.name.encode(), subject]
        person = np.random.default_rng(np.random.SeedSequence(root))
        traits = draw_traits(person)
        head = make_head(person, sim.derivation)
        state = int(person.integers(len(sim.class_names)))  # the subject-level state where a paradigm has one
        rng = np.random.default_rng(np.random.SeedSequence([*root, n_pass]))
        if isinstance(sim, SimAbnormal):
            labels = np.full(batch_size, state, np.int64)
        else:
            labels = rng.integers(len(sim.class_names), size=batch_size)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # tiny matrices: see SimulatedDataset.generate
            return np.ascontiguousarray(sim.simulate_windows(rng, labels, traits, head), dtype=np.float32)
