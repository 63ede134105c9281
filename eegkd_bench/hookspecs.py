"""pluggy hook specifications: every hook is a register callback.

A plugin module implements any of these with ``@eegkd_bench.hookimpl`` and calls
``register(name, factory, description="...", **metadata)`` once per component, or
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
    """Register :class:`eegkd_bench.api.Distiller` subclasses.

    Options the leaderboard reads: ``role="proposed" | "baseline" | "ablation"`` and
    ``sections=fn(report) -> sections`` (CONTRIBUTING.md, "The leaderboard's treatment").
    """


@hookspec
def eegkd_register_datasets(register: Register) -> None:
    """Register dataset factories: ``factory(**options) -> eegkd_bench.api.Dataset``, called with every option
    the factory's ``defaults`` declares (none: no arguments)."""
