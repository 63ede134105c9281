"""Declared options of a component: ``{name: Option or plain default}``, re-exported by :mod:`eegkd_bench.api`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Option:
    """One declared option of a component: its default, a one-line help and its type.

    The type is the default's (bool, int, float, str, list); give ``type`` when the
    default is None (the option is then optional) or to accept floats for an int default.
    ``choices`` limits a value to a few allowed ones.
    """

    default: Any
    help: str = ""
    type: type | None = None
    choices: tuple[Any, ...] = ()

    @property
    def value_type(self) -> type | None:
        """The type a value must have (None: any); ints count as floats, never bools as numbers."""
        if self.type is not None:
            return self.type
        if self.default is None:
            return None
        return list if isinstance(self.default, tuple) else type(self.default)


def declared(options: Mapping[str, Any] | None) -> dict[str, Option]:
    """A declaration ``{name: Option or plain default}`` as Options."""
    return {k: v if isinstance(v, Option) else Option(v) for k, v in (options or {}).items()}


def option_defaults(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """A declaration ``{name: Option or plain default}`` as plain defaults."""
    return {k: v.default for k, v in declared(options).items()}
