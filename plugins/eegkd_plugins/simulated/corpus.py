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
    #: the paradigms' class-effect strength (None: each benchmark's default). The raw generator (1): the
    #: states are thrown away, and the shipped checkpoint was pretrained on exactly these windows
    corpus_effect_scale: float | None = 1.0

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
        self._sims = {p: PARADIGMS[p](use_cache=False, effect_scale=self.corpus_effect_scale) for p in self.paradigms}

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

    def subject_root(self, subject: int) -> list[int]:
        """The entropy of corpus subject ``subject``'s stream: everything about the person is drawn from it."""
        return [self.seed, *self.name.encode(), subject]

    def subject_windows(self, paradigm: str, subject: int, n_pass: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` windows of one corpus subject on pass ``n_pass`` over the corpus, and their classes.

        A subject is a fixed person (traits, head and, where the paradigm has one, subject-level state from
        the subject's own stream); each pass draws new windows of that person.
        """
        sim = self._sims[paradigm]
        root = self.subject_root(subject)
        person = np.random.default_rng(np.random.SeedSequence(root))
        traits = draw_traits(person)
        head = make_head(person, sim.derivation)
        state = int(person.integers(len(sim.class_names)))  # the subject-level state where a paradigm has one
        rng = np.random.default_rng(np.random.SeedSequence([*root, n_pass]))
        if isinstance(sim, SimAbnormal):
            labels = np.full(n, state, np.int64)
        else:
            labels = rng.integers(len(sim.class_names), size=n)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # tiny matrices: see SimulatedDataset.generate
            return sim.simulate_windows(rng, labels, traits, head), labels

    def stream_batch(self, index: int, batch_size: int) -> np.ndarray:
        """Batch ``index``: ``batch_size`` windows of one subject, float32 ``(batch_size, channels, samples)``."""
        subject, n_pass, paradigm = self.subject_of(int(index))
        x, _ = self.subject_windows(paradigm, subject, n_pass, batch_size)
        return np.ascontiguousarray(x, dtype=np.float32)


class SimLabelledCorpus(SimPretrainCorpus):
    """Labelled simulated EEG from thousands of other subjects, for a supervised pretraining stage.

    The subjects, their montages and their brain states are drawn like ``sim-pretrain``'s, from
    streams of their own (``SeedSequence([seed, *b"sim-pretrain-sup", subject])``), so they are
    neither the benchmarks' subjects nor the self-supervised corpus's. The classes are kept and the
    class effects are the benchmarks' default strengths (``effect_scale`` of each paradigm), since
    this stage teaches the teacher what the tasks look like in many people before it meets a
    benchmark's few labelled subjects. Subject ``j`` belongs to paradigm ``j mod 4``; batch ``i``
    holds ``subjects_per_batch`` subjects of paradigm ``i mod 4``.
    """

    name = "sim-pretrain-sup"
    labeled = False  # not a benchmark: `run` never selects it; `pretrain --objective supervised` reads its labels
    paradigm = "labelled (supervised pretraining corpus)"
    description = ("labelled simulated EEG for a supervised pretraining stage: 8192 other subjects of the four "
                   "paradigms at the benchmarks' effect strengths, streamed batch by batch")
    default_subjects = 8192
    subjects_per_batch = 4
    corpus_effect_scale = None  # the benchmarks' effect scales

    def params(self) -> dict[str, Any]:
        return {**super().params(), "subjects_per_batch": self.subjects_per_batch,
                "effect_scale": {p: sim.effect_scale for p, sim in self._sims.items()}}

    def tasks(self) -> dict[str, tuple[int, int, int]]:
        """Each paradigm's (channels, samples, classes): one classification head per paradigm."""
        return {p: (len(s.derivation.ch_names), s.n_times, len(s.class_names)) for p, s in self._sims.items()}

    def batch_subjects(self, index: int) -> tuple[str, list[tuple[int, int]]]:
        """Batch ``index`` -> its paradigm and its (subject, pass) pairs."""
        P = len(self.paradigms)
        k = self.subjects_per_batch
        p = index % P
        per_paradigm = max(1, self.n_subjects // P)
        out = []
        for m in range(k):
            slot = (index // P) * k + m  # the slot-th subject of this paradigm, over passes
            out.append((P * (slot % per_paradigm) + p, slot // per_paradigm))
        return self.paradigms[p], out

    def labelled_batch(self, index: int, batch_size: int) -> tuple[str, np.ndarray, np.ndarray]:
        """Batch ``index``: (paradigm, windows ``(batch_size, channels, samples)``, labels)."""
        paradigm, subjects = self.batch_subjects(int(index))
        sizes = np.diff(np.linspace(0, batch_size, len(subjects) + 1).round().astype(int))
        parts = [self.subject_windows(paradigm, subject, n_pass, n) for (subject, n_pass), n in zip(subjects, sizes)
                 if n >= 1]
        return (paradigm, np.ascontiguousarray(np.concatenate([x for x, _ in parts]), dtype=np.float32),
                np.concatenate([y for _, y in parts]))

    def stream_batch(self, index: int, batch_size: int) -> np.ndarray:
        """The windows of :meth:`labelled_batch` without their labels."""
        return self.labelled_batch(index, batch_size)[1]
