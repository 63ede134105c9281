"""pluggy hook specifications: every hook is a register callback.

A plugin module implements any of these with ``@eegkd_bench.hookimpl`` and calls
``register(name, factory, description="...", **metadata)`` once per component (the
metadata keys it accepts are :data:`METADATA`), or
``register(name, base="other", options={...}, description="...")`` for a variant:
a registered component with some options set. ``options=`` on a component declares
its options (``{name: default}`` or ``{name: Option(...)}``; distillers declare theirs
in ``defaults``); see CONTRIBUTING.md, "Options".
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

import pluggy

PROJECT = "eegkd_bench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


#: Every keyword ``register`` accepts besides ``name``, ``factory`` and ``description``; another is refused
#: (the plugin is reported as failed, naming the key), so a typo cannot pass silently.
METADATA: dict[str, str] = {
    "options": "the options the component declares: {name: default or Option(...)} (a variant: the values it sets)",
    "base": "makes a variant: the registered component it is built from, with ``options`` set",
    "opt_in": "True: the component joins a grid by name or pattern only, never through 'all'",
    "unavailable": "why the component cannot be used here: it is listed with the reason and refused by name",
    "wraps": "'<package> <version>' of another library the component comes from, named in every record's provenance",
    "role": "a distiller's place in the leaderboard: 'proposed', 'baseline' or 'ablation'",
    "sections": "a distiller's report sections for the leaderboard: fn(report) -> sections",
    "checkpoints": "a teacher's named checkpoints for --teacher-checkpoint: {name: file path or hf://owner/repo/file}",
    "family": "a teacher's model family (shown by eegkd-bench show)",
    "layers": "a teacher's number of tapped layers (shown by eegkd-bench show)",
    "pretrained_url": "where a teacher's official weights are published (shown by eegkd-bench show)",
    "paper": "the reference of the component's paper, e.g. a DOI (shown by eegkd-bench show)",
    "kind": "a dataset's kind when it cannot say so before loading: 'real' or 'simulated'",
    "paradigm": "a dataset's paradigm, for listings (shown by eegkd-bench show)",
    "moabb": "the MOABB class a dataset wraps (shown by eegkd-bench show)",
}
#: The keys ``eegkd-bench show`` prints as they are.
SHOWN = ("family", "layers", "paradigm", "moabb", "paper", "pretrained_url", "wraps")


class Register(Protocol):
    def __call__(self, name: str, factory: Callable[..., Any] | None = None, *, description: str = "",
                 **metadata: Any) -> None: ...


@hookspec
def eegkd_register_teachers(register: Register) -> None:
    """Register teacher factories: ``factory(spec: InputSpec, **options) -> TeacherModel``."""


@hookspec
def eegkd_register_students(register: Register) -> None:
    """Register student factories: ``factory(spec: InputSpec, **options) -> EEGModel``."""


@hookspec
def eegkd_register_distillers(register: Register) -> None:
    """Register :class:`eegkd_bench.api.Distiller` subclasses, built as
    ``cls(student=..., teacher=TeacherInfo, spec=InputSpec, total_epochs=N, **options)``.

    Options the leaderboard reads: ``role="proposed" | "baseline" | "ablation"`` and
    ``sections=fn(report) -> sections`` (CONTRIBUTING.md, "The leaderboard's treatment").
    """


@hookspec
def eegkd_register_datasets(register: Register) -> None:
    """Register dataset factories: ``factory(**options) -> eegkd_bench.api.Dataset``, called with every option
    the factory's ``defaults`` declares (none: no arguments)."""
