"""Declared options of a component, and the one place their values are checked.

A component (dataset, teacher, student, distiller, recipe) declares ``{name: Option or plain
default}``. :func:`check_value` checks one value against the declaration (a known name, the
type, the choices, the range) in one line naming what to do; :func:`take_options` merges a
component's given options over its declared defaults with the same checks. The run's
``--set``/config path (:mod:`eegkd_bench.config`), the core's distiller base class and the
built-in models all check through these two functions. Re-exported by :mod:`eegkd_bench.api`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from eegkd_bench.errors import UserError

_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}


@dataclass(frozen=True)
class Option:
    """One declared option of a component: its default, a one-line help and its type.

    The type is the default's (bool, int, float, str, list); give ``type`` when the
    default is None (the option is then optional) or to accept floats for an int default.
    ``choices`` limits a value to a few allowed ones; ``min`` and ``max`` bound a number
    (inclusive; ``exclusive_min``: the value must be above ``min``, e.g. a temperature > 0).
    """

    default: Any
    help: str = ""
    type: type | None = None
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False

    @property
    def value_type(self) -> type | None:
        """The type a value must have (None: any); ints count as floats, never bools as numbers."""
        if self.type is not None:
            return self.type
        if self.default is None:
            return None
        return list if isinstance(self.default, tuple) else type(self.default)

    def type_name(self) -> str:
        """How ``show`` names the accepted values: ``integer``, ``number >= 0``, ``cosine | constant``."""
        if self.choices:
            return " | ".join(map(str, self.choices))
        name = _TYPE_NAMES.get(self.value_type, "any").split(" ", 1)[-1] if self.value_type else "any"
        low, high = self.min, self.max
        if low is not None and high is not None:
            name += f" in {'(' if self.exclusive_min else '['}{format_value(low)}, {format_value(high)}]"
        elif low is not None:
            name += f" {'>' if self.exclusive_min else '>='} {format_value(low)}"
        elif high is not None:
            name += f" <= {format_value(high)}"
        return name + (" or none" if self.default is None and self.type is not None else "")


def declared(options: Mapping[str, Any] | None) -> dict[str, Option]:
    """A declaration ``{name: Option or plain default}`` as Options."""
    return {k: v if isinstance(v, Option) else Option(v) for k, v in (options or {}).items()}


def option_defaults(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """A declaration ``{name: Option or plain default}`` as plain defaults."""
    return {k: v.default for k, v in declared(options).items()}


def check_value(where: str, option: str, value: Any, opts: Mapping[str, Option], kind: str = "") -> Any:
    """``value`` if ``option`` is declared in ``opts`` and the value fits it (an int for a float becomes
    a float; a tuple a list), else a one-line UserError naming ``where`` (a ``kind`` such as "distiller")."""
    opt = _option(where, option, opts, kind)
    want = opt.value_type
    if isinstance(value, tuple):
        value = list(value)
    if value is None and (opt.default is None or opt.type is not None):
        return value
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = want is None or (isinstance(value, want) and not (want is not bool and isinstance(value, bool)))
    if not ok:
        expected = _TYPE_NAMES.get(want, getattr(want, "__name__", str(want)))
        shown = repr(value) if isinstance(value, str) else format_value(value)
        raise UserError(f"{where}.{option} = {shown} has the wrong type; expected {expected} "
                        f"(default {opt.default!r}); see eegkd-bench show {where}")
    if opt.choices and value not in opt.choices:
        raise UserError(f"{where}.{option} = {value!r} is not one of {', '.join(map(repr, opt.choices))}")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    low = opt.min is not None and (value <= opt.min if opt.exclusive_min else value < opt.min)
    if numeric and (low or (opt.max is not None and value > opt.max)):
        raise UserError(f"{where}.{option} = {format_value(value)} is out of range; expected {opt.type_name()} "
                        f"(default {format_value(opt.default)}); see eegkd-bench show {where}")
    return value


def take_options(where: str, given: Mapping[str, Any], declaration: Mapping[str, Any] | None,
                 kind: str = "") -> dict[str, Any]:
    """The declared defaults with ``given`` over them, every given value checked (:func:`check_value`).

    Values are kept as given (a resolved option keeps its exact value, so a cell's numbers do not
    change with how an option reached the component).
    """
    opts = declared(declaration)
    for option, value in given.items():
        check_value(where, option, value, opts, kind)
    return {**option_defaults(declaration), **given}


def _option(where: str, option: str, opts: Mapping[str, Option], kind: str = "") -> Option:
    if option not in opts:
        label = f"{kind} {where}" if kind else where
        if not opts:
            raise UserError(f"unknown option {option!r}: {label} declares no options")
        raise UserError(f"unknown option {option!r} of {label}{closest(option, opts)}; options: "
                        f"{', '.join(sorted(opts))} (see eegkd-bench show {where})")
    return opts[option]


def closest(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, else ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_value(v: Any) -> str:
    """An option value as written on the command line (``true``, ``avgpool``, ``[1, 2]``)."""
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return str(v).lower()
    return '""' if v == "" else "none" if v is None else str(v)


def freeze(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Options as a sorted, hashable tuple (lists become tuples)."""
    def f(v: Any) -> Any:
        return tuple(f(x) for x in v) if isinstance(v, (list, tuple)) else v

    return tuple(sorted((k, f(v)) for k, v in values.items()))


def describe(options: Iterable[tuple[str, Any]]) -> str:
    """``alpha=0.9 temperature=2.0``."""
    return " ".join(f"{k}={format_value(v)}" for k, v in options) or "(no options)"


__all__ = ["Option", "check_value", "closest", "declared", "describe", "format_value", "freeze", "option_defaults",
           "take_options"]
