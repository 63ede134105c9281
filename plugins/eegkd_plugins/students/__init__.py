"""The student zoo: compact EEG decoders that the distillers train."""
from __future__ import annotations

from typing import Any

from eegkd_bench import hookimpl
from eegkd_plugins.students import conformer, deep, eegnet, shallow, transformer


@hookimpl
def eegkd_register_students(register: Any) -> None:
    register("eegnet", eegnet.build, description="EEGNet-8,2 (Lawhern et al. 2018)", paper="10.1088/1741-2552/aace8c",
             options=eegnet.DEFAULTS)
    register("shallowconvnet", shallow.build, description="ShallowConvNet (Schirrmeister et al. 2017)",
             paper="10.1002/hbm.23730", options=shallow.DEFAULTS)
    register("deepconvnet", deep.build, description="DeepConvNet (Schirrmeister et al. 2017)",
             paper="10.1002/hbm.23730", options=deep.DEFAULTS)
    register("eegconformer", conformer.build, description="EEG Conformer (Song et al. 2023)",
             paper="10.1109/TNSRE.2022.3230250", options=conformer.DEFAULTS)
    register("tinytransformer", transformer.build, description="small 1-s patch-token transformer (our design)",
             options=transformer.DEFAULTS)
