"""Which of braindecode's models eegkd-bench can serve, and why not the others.

braindecode lists its models in ``braindecode.models.util.models_dict`` and describes them in
the ``summary.csv`` it ships (application, categorization, modality). A model is offered as a
**student** when it is an EEG model that is not a foundation model and builds from the four
numbers every eegkd-bench dataset provides: channels, samples, classes and the sampling rate.
Foundation models are offered as **teachers** where an adapter below exposes all their layers.
Every other model is still listed, as unavailable, with the reason.
"""
from __future__ import annotations

import csv
import inspect
from dataclasses import dataclass
from importlib import resources
from typing import Any

from eegkd_bench.api import Option

#: Arguments the adapter fills from the dataset's input spec.
SIGNAL_ARGS = ("n_chans", "n_outputs", "n_times", "sfreq")
#: Constructor arguments never offered as options (filled from the spec, or not plain values).
NOT_OPTIONS = set(SIGNAL_ARGS) | {"chs_info", "input_window_seconds", "return_features", "return_feature",
                                  "return_encoder_output", "add_log_softmax"}


@dataclass(frozen=True)
class ModelInfo:
    """One braindecode model as the adapter sees it."""

    name: str  # braindecode's class name, e.g. "ATCNet"
    cls: Any
    application: str
    categorization: str
    modality: str

    @property
    def is_foundation(self) -> bool:
        return "Foundation Model" in self.categorization

    @property
    def student_name(self) -> str:
        return "bd-" + self.name.lower().replace("_", "-")


def summary() -> dict[str, dict[str, str]]:
    """braindecode's own model table (``braindecode/models/summary.csv``) by model name."""
    text = resources.files("braindecode.models").joinpath("summary.csv").read_text(encoding="utf-8-sig")
    return {row["Model"]: row for row in csv.DictReader(text.splitlines())}


def models() -> list[ModelInfo]:
    """Every model braindecode registers, in name order, with its summary row."""
    from braindecode.models.util import models_dict

    table = summary()
    out = []
    for name, cls in sorted(models_dict.items()):
        row = table.get(name, {})
        out.append(ModelInfo(name, cls, row.get("Application", ""), row.get("Categorization", ""),
                             row.get("Modality", "EEG") or "EEG"))
    return out


def constructor_args(cls: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(cls.__init__).parameters)


def student_unavailable(info: ModelInfo) -> str:
    """Why ``info`` cannot be a student here ("" when it can)."""
    if info.is_foundation:
        return "a foundation model; braindecode's foundation models are offered as teachers (eegkd-bench list teachers 'bd-*')"
    if info.modality and "EEG" not in info.modality.upper():
        return f"a {info.modality} model ({info.application or 'not EEG'}), not an EEG classifier"
    args = constructor_args(info.cls)
    if "n_chans" not in args:
        return "needs channel positions (chs_info) instead of a channel count; datasets here give channel counts"
    if _requires(info.cls, "chs_info"):
        return "needs channel positions (chs_info) next to the channel count; datasets here give channel counts"
    return ""


def _requires(cls: Any, arg: str) -> bool:
    """True when braindecode's own test table says ``cls`` must be given ``arg``."""
    from braindecode.models.util import models_mandatory_parameters

    return any(name == cls.__name__ and arg in needed for name, needed, _ in models_mandatory_parameters)


def options_of(cls: Any) -> dict[str, Option]:
    """The constructor's plain-valued keyword arguments (int, float, bool, str), with braindecode's defaults."""
    out: dict[str, Option] = {}
    for name, p in constructor_args(cls).items():
        if name in NOT_OPTIONS or name == "self" or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        if isinstance(p.default, (bool, int, float, str)) and p.default is not inspect.Parameter.empty:
            kind = float if isinstance(p.default, float) else None
            out[name] = Option(p.default, f"braindecode's {cls.__name__}({name}=...)", type=kind)
    return out
