"""Name -> factory lookups for the four component kinds, with wildcards and suggestions."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from eegkd_bench.errors import UserError

KINDS = ("teachers", "students", "distillers", "datasets")
SINGULAR = {"teachers": "teacher", "students": "student", "distillers": "distiller", "datasets": "dataset"}


@dataclass
class Entry:
    """One registered component, or a variant: another component (``base``) with some options set.

    A variant has no factory of its own; ``metadata["base"]`` names its base and
    ``metadata["options"]`` holds the option values it sets.
    """

    kind: str
    name: str
    factory: Callable[..., Any] | None
    plugin: str
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    distribution: str = ""  # "<name> <version>" of the installed package that registered it

    @property
    def base(self) -> str | None:
        """The component this variant is based on (None: not a variant)."""
        return self.metadata.get("base")

    @property
    def unavailable(self) -> str:
        """Why this component cannot be used here ("" when it can): listed, refused by name, skipped by patterns."""
        return str(self.metadata.get("unavailable") or "")


class Registry:
    """Components by kind and name, filled by the plugin manager."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self.conflicts: list[str] = []

    def add(self, entry: Entry) -> None:
        if entry.kind not in self._entries:
            raise ValueError(f"unknown component kind {entry.kind!r}; expected one of {KINDS}")
        if not entry.name or entry.name != entry.name.strip() or "," in entry.name or "." in entry.name:
            raise ValueError(f"invalid {SINGULAR[entry.kind]} name {entry.name!r}")
        if entry.factory is None and entry.base is None:
            raise ValueError(f"{SINGULAR[entry.kind]} {entry.name!r}: register a factory or base=NAME")
        existing = self._entries[entry.kind].get(entry.name)
        if existing is not None:
            msg = (
                f"{SINGULAR[entry.kind]} {entry.name!r} is registered by two plugins: "
                f"{existing.plugin!r} and {entry.plugin!r}; uninstall one or choose with EEGKD_LOAD_PLUGINS"
            )
            self.conflicts.append(msg)
            return
        self._entries[entry.kind][entry.name] = entry

    def copy(self) -> "Registry":
        """A registry with the same entries, to which a run may add its own variants."""
        other = Registry()
        other._entries = {k: dict(v) for k, v in self._entries.items()}
        other.conflicts = list(self.conflicts)
        return other

    def check_conflicts(self) -> None:
        if self.conflicts:
            raise UserError(self.conflicts[0])

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[_kind(kind)])

    def entries(self, kind: str, pattern: str | None = None) -> list[Entry]:
        kind = _kind(kind)
        names = self.names(kind)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n.casefold(), pattern.casefold())]
        return [self._resolved(kind, n) for n in names]

    def _resolved(self, kind: str, name: str) -> Entry:
        try:
            return self.get(kind, name)
        except UserError:  # a variant whose base is not installed: listed, fails when used
            return self._entries[kind][name]

    def get(self, kind: str, name: str) -> Entry:
        """The entry named ``name`` (see :meth:`canonical`); a variant's comes with its base's ``factory``."""
        kind = _kind(kind)
        entry = self._entries[kind][self.canonical(kind, name)]
        if entry.unavailable:
            raise UserError(f"{SINGULAR[kind]} {entry.name!r} is unavailable: {entry.unavailable}; "
                            f"see eegkd-bench list {kind}")
        if entry.base is not None:
            return dataclasses.replace(entry, factory=self.chain(kind, entry.name)[-1].factory)
        return entry

    def canonical(self, kind: str, name: str) -> str:
        """``name`` as registered: an exact match first, else the one name that matches ignoring case."""
        kind = _kind(kind)
        entries = self._entries[kind]
        if name in entries:
            return name
        folded = [n for n in entries if n.casefold() == name.casefold()]
        if len(folded) == 1:
            return folded[0]
        raise UserError(unknown_message(kind, name, self.names(kind)))

    def chain(self, kind: str, name: str) -> list[Entry]:
        """``name``'s entry, then its base's, and so on down to a component with a factory."""
        kind = _kind(kind)
        out: list[Entry] = []
        while True:
            if name not in self._entries[kind]:
                what = f"base of variant {out[-1].name!r}" if out else SINGULAR[kind]
                raise UserError(unknown_message(kind, name, self.names(kind)).replace(
                    f"unknown {SINGULAR[kind]}", f"unknown {what}", 1))
            entry = self._entries[kind][name]
            if any(e.name == name for e in out):
                raise UserError(f"variant {name!r} is its own base ({' -> '.join(e.name for e in out)}); "
                                "give it another base")
            out.append(entry)
            if entry.base is None:
                return out
            name = entry.base

    def kinds_of(self, name: str) -> list[str]:
        """The kinds in which ``name`` is registered."""
        return [k for k in KINDS if name in self._entries[k]]

    def select(self, kind: str, spec: str | Iterable[str], *, allow_all: bool = True) -> list[str]:
        """Resolve ``"a,b"``, ``"all"`` or wildcard patterns into registered names (order kept)."""
        kind = _kind(kind)
        parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec)]
        parts = [p for p in parts if p]
        if not parts:
            raise UserError(f"empty {SINGULAR[kind]} selection; see eegkd-bench list {kind}")
        out: list[str] = []
        for part in parts:
            if part == "all" and allow_all:  # entries registered with opt_in=True join only by name or pattern
                matched = [n for n in self.names(kind) if not self._entries[kind][n].metadata.get("opt_in")
                           and not self._entries[kind][n].unavailable]
            elif any(c in part for c in "*?["):  # a pattern takes the usable components it matches
                matched = [e.name for e in self.entries(kind, part) if not e.unavailable]
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
    by_folded = {k.casefold(): k for k in known}
    close = [by_folded[c] for c in difflib.get_close_matches(name.casefold(), list(by_folded), n=3, cutoff=0.6)]
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
