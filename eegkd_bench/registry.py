"""Name -> factory lookups for the four component kinds, with wildcards and suggestions."""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from eegkd_bench.errors import UserError

KINDS = ("teachers", "students", "distillers", "datasets")
SINGULAR = {"teachers": "teacher", "students": "student", "distillers": "distiller", "datasets": "dataset"}


@dataclass
class Entry:
    """One registered component."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Components by kind and name, filled by the plugin manager."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self.conflicts: list[str] = []

    def add(self, entry: Entry) -> None:
        if entry.kind not in self._entries:
            raise ValueError(f"unknown component kind {entry.kind!r}; expected one of {KINDS}")
        if not entry.name or entry.name != entry.name.strip() or "," in entry.name:
            raise ValueError(f"invalid {SINGULAR[entry.kind]} name {entry.name!r}")
        existing = self._entries[entry.kind].get(entry.name)
        if existing is not None:
            msg = (
                f"{SINGULAR[entry.kind]} {entry.name!r} is registered by two plugins: "
                f"{existing.plugin!r} and {entry.plugin!r}; uninstall one or choose with EEGKD_LOAD_PLUGINS"
            )
            self.conflicts.append(msg)
            return
        self._entries[entry.kind][entry.name] = entry

    def check_conflicts(self) -> None:
        if self.conflicts:
            raise UserError(self.conflicts[0])

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[_kind(kind)])

    def entries(self, kind: str, pattern: str | None = None) -> list[Entry]:
        kind = _kind(kind)
        names = self.names(kind)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return [self._entries[kind][n] for n in names]

    def get(self, kind: str, name: str) -> Entry:
        kind = _kind(kind)
        try:
            return self._entries[kind][name]
        except KeyError:
            raise UserError(unknown_message(kind, name, self.names(kind))) from None

    def select(self, kind: str, spec: str | Iterable[str], *, allow_all: bool = True) -> list[str]:
        """Resolve ``"a,b"``, ``"all"`` or wildcard patterns into registered names (order kept)."""
        kind = _kind(kind)
        parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec)]
        parts = [p for p in parts if p]
        if not parts:
            raise UserError(f"empty {SINGULAR[kind]} selection; see eegkd-bench list {kind}")
        out: list[str] = []
        for part in parts:
            if part == "all" and allow_all:
                matched = self.names(kind)
            elif any(c in part for c in "*?["):
                matched = [e.name for e in self.entries(kind, part)]
                if not matched:
                    raise UserError(
                        f"no {SINGULAR[kind]} matches {part!r}; see eegkd-bench list {kind}"
                    )
            else:
                matched = [self.get(kind, part).name]
            out.extend(m for m in matched if m not in out)
        return out


def unknown_message(kind: str, name: str, known: list[str]) -> str:
    """``unknown distiller 'dlnk'; did you mean 'dlink'? see eegkd-bench list distillers``."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if not close:
        close = [k for k in known if name.lower() in k.lower() or k.lower() in name.lower()][:3]
    sep = f"; did you mean {' or '.join(repr(c) for c in close)}? " if close else "; "
    return f"unknown {SINGULAR[kind]} {name!r}{sep}see eegkd-bench list {kind}"


def _kind(kind: str) -> str:
    if kind in KINDS:
        return kind
    plural = kind + "s"
    if plural in KINDS:
        return plural
    raise UserError(f"unknown component kind {kind!r}; expected one of {', '.join(KINDS)}")
