"""braindecode's model zoo as eegkd-bench students (``bd-*``) and teachers.

Installed with ``pip install 'eegkd-bench[braindecode]'`` (see the README for the torch version
braindecode needs). Every braindecode model is listed: the EEG classifiers as students, the
foundation models with a layer adapter as teachers, and every other model as unavailable with
the reason (``eegkd-bench list students 'bd-*'``). The ``bd-*`` components join a grid only by
name or pattern, never through ``all``. Records name braindecode's version in the provenance
of each ``bd-*`` component.
"""
from __future__ import annotations

from importlib import metadata
from typing import Any, Callable

from eegkd_bench import hookimpl
from eegkd_bench.api import InputSpec, PluginUnavailable
from eegkd_bench.errors import one_line

try:
    import braindecode  # noqa: F401  (torchaudio, which braindecode imports, must match torch)
except (ImportError, OSError) as exc:  # OSError: a torchaudio built for another torch fails to load its library
    raise PluginUnavailable(f"braindecode does not import ({one_line(exc)[:160]}); pip install "
                            "'eegkd-bench[braindecode]' with the torch and torchaudio versions the README names") from None

from eegkd_plugins.bdzoo.catalogue import models, options_of, student_unavailable
from eegkd_plugins.bdzoo.student import BraindecodeStudent
from eegkd_plugins.bdzoo.teacher import (default_depth, hub_checkpoint, teacher_factory, teacher_options,
                                         teacher_unavailable)

WRAPS = f"braindecode {metadata.version('braindecode')}"


def student_factory(name: str, cls: Any) -> Callable[..., BraindecodeStudent]:
    def build(spec: InputSpec, **options: Any) -> BraindecodeStudent:
        return BraindecodeStudent(name, cls, spec, **options)

    build.__doc__ = f"braindecode's {cls.__name__} as student {name}"
    return build


def _about(info: Any) -> str:
    what = ", ".join(x for x in (info.application, info.categorization.replace(",", "/")) if x)
    return f"braindecode {info.name}" + (f" ({what})" if what else "")


@hookimpl
def eegkd_register_students(register: Any) -> None:
    for info in models():
        if info.is_foundation:
            continue  # foundation models are listed as teachers
        reason = student_unavailable(info)
        if reason:
            register(info.student_name, _unavailable, description=_about(info), unavailable=reason, opt_in=True,
                     wraps=WRAPS)
        else:
            register(info.student_name, student_factory(info.student_name, info.cls), description=_about(info),
                     options=options_of(info.cls), opt_in=True, wraps=WRAPS)


@hookimpl
def eegkd_register_teachers(register: Any) -> None:
    for info in models():
        if not info.is_foundation:
            continue
        name, reason = info.student_name, teacher_unavailable(info)
        if reason:
            register(name, _unavailable, description=_about(info), unavailable=reason, opt_in=True, wraps=WRAPS)
            continue
        layers = default_depth(info)
        register(name, teacher_factory(name, info), description=f"{_about(info)}: all {layers} layers tapped as "
                 f"(channels, patches, width)", family=name, layers=layers, opt_in=True, wraps=WRAPS,
                 options=teacher_options(info), checkpoints={"hub": hub_checkpoint(info)})


def _unavailable(*args: Any, **kwargs: Any) -> None:  # pragma: no cover - the registry refuses it first
    raise AssertionError("an unavailable component was built")
