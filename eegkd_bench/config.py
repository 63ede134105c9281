"""Experiments as configuration: declared options, variants, ``--set`` and ``--config FILE.toml``.

Every component declares its options with defaults (:class:`eegkd_bench.api.Option`); a run
overrides them by name, ``NAME.OPTION = VALUE``, where NAME is a distiller, student or teacher
(or a variant of one), a dataset, or ``train`` / ``teacher_train`` for the two recipes; ``train.STUDENT``
changes the student recipe of one student only. Sources apply in this order, each over the previous: the
preset, the config file, the command-line flags, ``--set``; a run's ``train.STUDENT`` beats its ``train``,
and both beat the preset's own per-student changes.
A variant is a registered component plus options, run and recorded under its own name.

Everything is checked here, before a dataset loads or a record is written: an unknown option
names the closest declared one, a value of the wrong type names the expected type.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from eegkd_bench.options import Option, check_value, closest, declared, describe, format_value, freeze
from eegkd_bench.data.catalog import make_dataset
from eegkd_bench.errors import UserError
from eegkd_bench.hookspecs import SHOWN
from eegkd_bench.presets import PRESETS, Preset
from eegkd_bench.registry import KINDS, SINGULAR, Entry, Registry
from eegkd_bench.training import AUGMENTATIONS, TrainConfig

#: ``--set`` names of the two recipes, and the preset field each one overrides.
RECIPES = {"train": "student_cfg", "teacher_train": "teacher_cfg"}
RECIPE_HELP = {
    "epochs": "training epochs",
    "batch_size": "windows per optimisation step",
    "lr": "peak learning rate (AdamW)",
    "weight_decay": "AdamW weight decay",
    "schedule": "learning-rate schedule after the warm-up",
    "warmup_epochs": "epochs of linear learning-rate warm-up",
    "grad_clip": "gradient-norm clipping threshold (0: none)",
    "patience": "stop after this many epochs without validation improvement (0: never)",
    "eval_batch_size": "windows per evaluation batch",
    "augment": "input augmentation (jitter: amplitude scaling, noise, time shift; the teacher then runs online)",
    "max_steps": "optimiser steps per epoch at most (0: every batch; for smoke tests and benchmarks)",
    "bn_recalibrate": "recompute batch-norm statistics on the training windows before each validation pass",
}
RECIPE_CHOICES = {"schedule": ("cosine", "constant"), "augment": AUGMENTATIONS}
#: Keys of a config file's top level.
GRID_KEYS = ("preset", "methods", "students", "teacher", "datasets", "seeds", "teacher_checkpoint")
CONFIG_KEYS = GRID_KEYS + tuple(RECIPES) + ("options", "variants")
_BARE_WORD = re.compile(r"[^\s\[\]{}\"'=,]+")


def recipe_options(base: TrainConfig) -> dict[str, Option]:
    """The options of a recipe (TrainConfig fields), with ``base``'s values as defaults."""
    return {f.name: Option(getattr(base, f.name), RECIPE_HELP.get(f.name, ""),
                           choices=RECIPE_CHOICES.get(f.name, ()))
            for f in dataclasses.fields(TrainConfig)}


# ------------------------------------------------------------------ what a run asks
@dataclass
class Settings:
    """One run's grid, recipes, options and variants, merged from the preset, a config file, flags and ``--set``."""

    preset: str = "quick"
    methods: str | None = None
    students: str | None = None
    teacher: str | None = None
    datasets: str | None = None
    seeds: str | None = None
    teacher_checkpoint: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # NAME -> {option: value}
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # NAME -> {"base": ..., option: value}

    def set(self, name: str, option: str, value: Any) -> None:
        """Override one option (later calls win)."""
        self.options.setdefault(name, {})[option] = value

    def recipe(self, which: str) -> TrainConfig:
        """The ``train`` or ``teacher_train`` recipe: the preset's, with this run's options over it."""
        base = getattr(PRESETS[self.preset], RECIPES[which])
        values = self.options.get(which, {})
        opts = recipe_options(base)
        return dataclasses.replace(base, **{k: check_value(which, k, v, opts, "recipe") for k, v in values.items()})

    def student_overrides(self) -> dict[str, dict[str, Any]]:
        """Per-student recipe changes: the preset's, less what the run's ``train`` sets, then the run's ``train.STUDENT``."""
        base = PRESETS[self.preset]
        general = self.options.get("train", {})
        overrides = {name: {k: v for k, v in values.items() if k not in general}
                     for name, values in base.student_overrides.items()}
        opts = recipe_options(base.student_cfg)
        for name, values in self.options.items():
            student = student_of_recipe(name)
            if student:
                checked = {k: check_value(name, k, v, opts, "recipe") for k, v in values.items()}
                overrides[student] = {**overrides.get(student, {}), **checked}
        return {name: values for name, values in overrides.items() if values}

    def applied_preset(self) -> Preset:
        """The preset with this run's recipes."""
        return dataclasses.replace(PRESETS[self.preset], teacher_cfg=self.recipe("teacher_train"),
                                   student_cfg=self.recipe("train"), student_overrides=self.student_overrides())


def student_recipe(registry: Registry, preset: Preset, student: str) -> TrainConfig:
    """The training recipe of ``student`` (a registered student or a variant of one) in ``preset``."""
    return preset.student_recipe([e.name for e in registry.chain("students", student)])


def student_of_recipe(name: str) -> str:
    """``"train.eegnet"`` -> ``"eegnet"`` (the student whose own recipe the name sets); else ``""``."""
    prefix, dot, student = name.partition(".")
    return student if dot and prefix == "train" else ""


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a run's TOML config file (one-line errors for a missing file or bad syntax)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file {str(path)!r} not found; pass an existing FILE.toml to --config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config file {str(path)!r}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    for key in data:
        if key not in CONFIG_KEYS:
            raise UserError(f"{path}: unknown key {key!r}{closest(key, CONFIG_KEYS)}; "
                            f"expected some of {', '.join(CONFIG_KEYS)}")
    return data


def apply_config(settings: Settings, data: Mapping[str, Any], where: str = "config") -> None:
    """Apply a loaded config file over ``settings``."""
    for key in GRID_KEYS:
        if key in data:
            setattr(settings, key, _grid_value(key, data[key], where))
    if settings.preset not in PRESETS:
        raise UserError(f"{where}: unknown preset {settings.preset!r}{closest(settings.preset, PRESETS)}")
    for which in RECIPES:
        for option, value in _table(data.get(which, {}), f"{where}: [{which}]").items():
            if which == "train" and isinstance(value, Mapping):  # [train.STUDENT]: one student's recipe
                for sub, v in value.items():
                    settings.set(f"train.{option}", sub, v)
            else:
                settings.set(which, option, value)
    for name, values in _table(data.get("options", {}), f"{where}: [options]").items():
        for option, value in _table(values, f"{where}: [options.{name}]").items():
            settings.set(name, option, value)
    for name, spec in _table(data.get("variants", {}), f"{where}: [variants]").items():
        spec = dict(_table(spec, f"{where}: variant {name!r}"))
        if not isinstance(spec.get("base"), str):
            raise UserError(f"{where}: variant {name!r} needs base = \"NAME\", e.g. {name} = {{ base = \"kd\", "
                            "temperature = 2 }")
        settings.variants[name] = spec


def _grid_value(key: str, value: Any, where: str) -> str:
    single = key in ("preset", "teacher", "teacher_checkpoint")
    items = value if isinstance(value, list) and not single else [value]
    if key == "seeds" and all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return ",".join(map(str, items))
    if all(isinstance(v, str) for v in items):
        return ",".join(items)
    shape = "a list of integers or a string like \"0-2\"" if key == "seeds" else (
        "a string" if key in ("preset", "teacher", "teacher_checkpoint") else "a list of names or a string")
    raise UserError(f"{where}: {key} = {value!r} is not valid; expected {shape}")


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UserError(f"{where} must be a table (NAME = VALUE lines), got {value!r}")
    return value


# ------------------------------------------------------------- the command line
def parse_value(text: str, where: str) -> Any:
    """A TOML value (``2``, ``3e-4``, ``true``, ``"x"``, ``[1, 2]``); a bare word is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if _BARE_WORD.fullmatch(text):
            return text
        raise UserError(f"{where}: value {text!r} is not a TOML value; quote strings (\"text\"), "
                        "write lists as [1, 2], booleans as true/false") from None


def parse_set(text: str) -> tuple[str, str, Any]:
    """``"kd.temperature=2"`` -> ``("kd", "temperature", 2)``."""
    key, sep, value = text.partition("=")
    name, dot, option = key.strip().rpartition(".")
    if not sep or not dot or not name or not option or not value.strip():
        raise UserError(f"invalid --set {text!r}; expected NAME.OPTION=VALUE, e.g. --set kd.temperature=2")
    return name, option, parse_value(value.strip(), f"--set {key.strip()}")


def parse_variant(text: str) -> tuple[str, str]:
    """``"kd-t2=kd"`` -> ``("kd-t2", "kd")``."""
    name, sep, base = (p.strip() for p in text.partition("="))
    if not sep or not name or not base:
        raise UserError(f"invalid --variant {text!r}; expected NAME=BASE, e.g. --variant kd-t2=kd "
                        "--set kd-t2.temperature=2")
    return name, base


def settings_from(preset: str | None = None, config: str | Path | None = None,
                  flags: Mapping[str, Any] | None = None, sets: Iterable[str] = (),
                  variants: Iterable[str] = ()) -> Settings:
    """Merge preset < config file < flags < ``--set`` (and ``--variant``) into one :class:`Settings`."""
    settings = Settings()
    if config:
        apply_config(settings, load_config(config), str(config))
    if preset:
        settings.preset = preset
    for key, value in (flags or {}).items():
        if value is None:
            continue
        if key in ("epochs", "teacher_epochs"):
            settings.set("train" if key == "epochs" else "teacher_train", "epochs", value)
        else:
            setattr(settings, key, value)
    for text in variants:
        name, base = parse_variant(text)
        settings.variants[name] = {**settings.variants.get(name, {}), "base": base}
    for text in sets:
        settings.set(*parse_set(text))
    for name, values in PRESETS[settings.preset].options.items() if settings.preset in PRESETS else ():
        for option, value in values.items():  # the preset's component options, under everything the run sets
            settings.options.setdefault(name, {}).setdefault(option, value)
    return settings


# --------------------------------------------------------------- declarations
def declared_options(entry: Entry) -> dict[str, Option]:
    """The options a component declares: ``options=`` at registration, else a distiller class's ``defaults``."""
    if "options" in entry.metadata and entry.base is None:
        return declared(entry.metadata["options"])
    return declared(getattr(entry.factory, "defaults", None))


def options_of(registry: Registry, kind: str, name: str) -> dict[str, Option]:
    """The options of ``name`` (a variant's are its base's)."""
    return declared_options(registry.chain(kind, name)[-1])


def kind_of(registry: Registry, name: str) -> str:
    """The kind of a registered name, ``"recipe"`` for train/teacher_train (one-line error otherwise)."""
    if name in RECIPES:
        return "recipe"
    student = student_of_recipe(name)
    if student:
        if student not in registry.names("students"):
            raise UserError(f"unknown student {student!r} in {name!r}{closest(student, registry.names('students'))}; "
                            "train.STUDENT sets the recipe of one registered student (see eegkd-bench list students)")
        return "recipe"
    kinds = registry.kinds_of(name)
    if not kinds:
        known = sorted({n for k in KINDS for n in registry.names(k)} | set(RECIPES))
        raise UserError(f"unknown component {name!r}{closest(name, known)}; expected a distiller, student, "
                        "teacher, dataset, train or teacher_train (see eegkd-bench list)")
    if len(kinds) > 1:
        raise UserError(f"{name!r} is registered as both {' and '.join(SINGULAR[k] for k in kinds)}; "
                        "rename one of them")
    return kinds[0]


def register_variants(registry: Registry, variants: Mapping[str, Mapping[str, Any]]) -> None:
    """Add a run's variants to ``registry`` (a variant may build on another one of the same run)."""
    pending = dict(variants)
    while pending:
        ready = {n: s for n, s in pending.items() if s["base"] not in pending}
        if not ready:
            raise UserError(f"variants {', '.join(sorted(pending))} are based on each other; give one a "
                            "registered base")
        for name, spec in ready.items():
            del pending[name]
            try:
                kind = kind_of(registry, spec["base"])
            except UserError as exc:
                raise UserError(f"variant {name!r}: {exc}") from None
            if kind in ("recipe", "datasets"):
                raise UserError(f"variant {name!r}: base {spec['base']!r} is a {SINGULAR.get(kind, kind)}; "
                                "variants are of distillers, students or teachers")
            if name in registry.names(kind):
                raise UserError(f"variant {name!r} is already a registered {SINGULAR[kind]}; choose another name")
            overrides = {k: v for k, v in spec.items() if k != "base"}
            opts = options_of(registry, kind, spec["base"])
            overrides = {k: check_value(name, k, v, opts, f"variant of {SINGULAR[kind]}") for k, v in overrides.items()}
            what = f"{spec['base']} with {describe(sorted(overrides.items()))}"
            registry.add(Entry(kind, name, None, "(config)", what, {"base": spec["base"], "options": overrides}))


def validate(registry: Registry, settings: Settings) -> Registry:
    """A copy of ``registry`` with the run's variants, after checking every option the run sets."""
    registry = registry.copy()
    register_variants(registry, settings.variants)
    for which in RECIPES:
        settings.recipe(which)
    settings.student_overrides()
    for name, values in settings.options.items():
        kind = kind_of(registry, name)
        if kind == "recipe":
            continue
        opts = options_of(registry, kind, name)
        for option, value in values.items():
            check_value(name, option, value, opts, SINGULAR[kind])
        if kind == "datasets":  # its constructor's range checks (a split that does not add up), before any load
            make_dataset(registry, name, dict(resolve(registry, kind, name, settings.options).options))
    return registry


# ------------------------------------------------------------------ resolving
@dataclass(frozen=True)
class Component:
    """A component as one cell uses it: resolved options, the factory it is built from, who provides it."""

    kind: str
    name: str
    base: str  # the registered component whose factory builds it (== name unless a variant)
    options: tuple[tuple[str, Any], ...]  # every declared option, defaults merged with overrides
    provenance: str  # "<distribution> <version>" of each package involved, joined by " + "


def resolve(registry: Registry, kind: str, name: str, options: Mapping[str, Mapping[str, Any]] | None = None
            ) -> Component:
    """``name`` with its options resolved: defaults < options for the base < a variant's own < options for it."""
    options = options or {}
    chain = registry.chain(kind, name)
    root = chain[-1]
    opts = declared_options(root)
    values = {k: o.default for k, o in opts.items()}
    for entry in reversed(chain):
        for source in ((entry.metadata.get("options", {}) if entry.base else {}), options.get(entry.name, {})):
            values.update({k: check_value(entry.name, k, v, opts, SINGULAR[root.kind]) for k, v in source.items()})
    dists = list(dict.fromkeys(e.distribution for e in chain if e.distribution))
    return Component(SINGULAR[root.kind], name, root.name, freeze(values), " + ".join(dists))


# -------------------------------------------------------------------- show
def show(registry: Registry, name: str, preset: str = "quick",
         options: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """Lines describing ``name``: what it is, who provides it, its options (value, type, help)."""
    kind = kind_of(registry, name)
    if kind == "recipe":
        applied = Settings(preset, options=dict(options or {})).applied_preset()
        student = student_of_recipe(name)
        if student:
            opts = recipe_options(student_recipe(registry, applied, student))
            return [f"{name}: the recipe of student {student} (defaults of preset {preset})", *_option_rows(opts, {})]
        opts = recipe_options(applied.student_cfg if name == "train" else applied.teacher_cfg)
        what = "student" if name == "train" else "teacher fine-tuning"
        lines = [f"{name}: the {what} recipe (defaults of preset {preset})", *_option_rows(opts, {})]
        if name == "train":
            lines += [f"  train.{s}: {describe(sorted(o.items()))} (see eegkd-bench show train.{s})"
                      for s, o in sorted(applied.student_overrides.items())]
        return lines
    chain = registry.chain(kind, name)
    entry, root = chain[0], chain[-1]
    component = resolve(registry, kind, name, options)
    lines = [f"{SINGULAR[kind]} {name}: {entry.description}".rstrip(": "),
             f"  provided by {component.provenance or entry.plugin}"]
    if entry.base:
        lines.append(f"  variant of {entry.base}; sets {describe(sorted(entry.metadata.get('options', {}).items()))}")
    lines += [f"  {key}: {root.metadata[key]}" for key in SHOWN if root.metadata.get(key) not in (None, "")]
    if root.unavailable:
        lines.append(f"  unavailable: {root.unavailable}")
    opts = declared_options(root)
    return lines + (_option_rows(opts, dict(component.options)) if opts else ["  declares no options"])


def _option_rows(opts: Mapping[str, Option], values: Mapping[str, Any]) -> list[str]:
    rows = [("option", "default", "type", "help")]
    for k, o in opts.items():
        default = values.get(k, o.default)
        rows.append((k, format_value(default), o.type_name(), o.help))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows]


__all__ = ["Component", "RECIPES", "Settings", "check_value", "declared_options", "describe", "load_config",
           "parse_set", "parse_value", "resolve", "settings_from", "show", "student_of_recipe", "student_recipe", "validate"]
