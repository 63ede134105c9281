"""The ``moabb`` plugin: MOABB's motor imagery, P300/ERP and SSVEP datasets by their MOABB names.

:mod:`.base` holds the loader (:class:`MoabbDataset`, downloads, offline
guard) and the two CBraMod recipes; :mod:`.catalog` registers every other
MOABB dataset of the three paradigms from MOABB's own tables.
"""
from __future__ import annotations

from typing import Any

from eegkd_bench import hookimpl
from eegkd_plugins.moabb_datasets.base import BNCI2014_001, MoabbDataset, PhysionetMI
from eegkd_plugins.moabb_datasets.catalog import CatalogDataset, register_catalog

__all__ = ["BNCI2014_001", "CatalogDataset", "MoabbDataset", "PhysionetMI"]


@hookimpl
def eegkd_register_datasets(register: Any) -> None:
    register("bnci2014_001", BNCI2014_001, description=BNCI2014_001.description)
    register("physionetmi", PhysionetMI, description=PhysionetMI.description)
    register_catalog(register, taken={"bnci2014_001", "physionetmi"})
