"""Built-in plugin: the simulated EEG benchmarks (the offline default), one module per paradigm.

Each paradigm subclasses :class:`eegkd_bench.data.sim.SimulatedDataset`; ``corpus`` adds the
unlabeled pretraining corpus ``sim-pretrain`` and the labelled one ``sim-pretrain-sup``, drawn
from all four.
"""
from __future__ import annotations

from typing import Any

from eegkd_bench import hookimpl
from eegkd_plugins.simulated.abnormal import SimAbnormal
from eegkd_plugins.simulated.affective import SimAffective
from eegkd_plugins.simulated.corpus import SimLabelledCorpus, SimPretrainCorpus
from eegkd_plugins.simulated.events import SimEvents
from eegkd_plugins.simulated.mi import SimMotorImagery

#: The labeled simulated benchmarks, in display order.
DATASETS = (SimMotorImagery, SimAbnormal, SimEvents, SimAffective)

__all__ = ["DATASETS", "SimAbnormal", "SimAffective", "SimEvents", "SimLabelledCorpus", "SimMotorImagery", "SimPretrainCorpus"]


@hookimpl
def eegkd_register_datasets(register: Any) -> None:
    """Register sim-mi, sim-abnormal, sim-events, sim-affective and the pretraining corpora sim-pretrain and sim-pretrain-sup."""
    for cls in (*DATASETS, SimPretrainCorpus, SimLabelledCorpus):
        register(cls.name, cls, description=cls.description, kind="simulated", paradigm=cls.paradigm)
