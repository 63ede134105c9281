"""Method roles: which method is proposed, which is the plain-student baseline, which are ablations.

A plugin declares a distiller's role when it registers it
(``register("dlink", DLink, role="proposed")``). Records carry it as
``distiller_role``, so a results directory reads alone; records without it fall
back to the installed plugins, and ``eegkd-bench leaderboard --reference NAME``
overrides both. Nothing in the leaderboard names a method.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from eegkd_bench.errors import UserError

#: The distiller label of the teacher rows.
TEACHER_ROW = "teacher"

#: Roles a plugin may declare. ``proposed``: compared against every other method and ranked last
#: (the rows a reader looks for); ``baseline``: the student trained without a teacher, listed first;
#: ``ablation``: variants of a proposed method, listed just before it. Other methods have no role.
ROLES = ("proposed", "baseline", "ablation")

_RANK = {TEACHER_ROW: 0, "baseline": 1, None: 2, "ablation": 3, "proposed": 4}


@dataclass
class Roles:
    """The role of every method of a leaderboard, and the reference (proposed) methods."""

    of: dict[str, str] = field(default_factory=dict)
    reference: tuple[str, ...] = ()

    def role(self, method: str) -> str | None:
        """``"proposed"``, ``"baseline"``, ``"ablation"`` or None."""
        return TEACHER_ROW if method == TEACHER_ROW else self.of.get(method)

    def key(self, method: str) -> tuple[int, str]:
        """Sort key of a method: teacher, baselines, other methods, ablations, proposed; then by name."""
        return _RANK.get(self.role(method), 2), method

    def order(self, methods: Iterable[str]) -> list[str]:
        """Methods in table order."""
        return sorted(set(methods), key=self.key)

    def label(self) -> str:
        """The reference methods as text ("" when there is none)."""
        return ", ".join(self.reference)


def resolve_roles(records: Iterable[dict[str, Any]], reference: str | Sequence[str] | None = None) -> Roles:
    """Roles from the records' ``distiller_role``, else the installed plugins; ``reference`` names the proposed."""
    records = list(records)
    methods = {str(r.get("distiller")) for r in records if r.get("distiller") is not None}
    of: dict[str, str] = {}
    for r in records:
        role = r.get("distiller_role")
        if role in ROLES and r.get("distiller") is not None:
            of.setdefault(str(r["distiller"]), role)
    missing = methods - set(of)
    if missing:
        of.update(_registered_roles(missing))
    if reference:
        names = [n.strip() for n in (reference.split(",") if isinstance(reference, str) else reference)]
        names = [n for n in names if n]
        for n in names:
            if n not in methods:
                close = difflib.get_close_matches(n, sorted(methods), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise UserError(f"--reference {n!r} is not a method of these results; {hint}"
                                f"expected one of {', '.join(sorted(methods)) or '(no methods)'}")
        of = {m: r for m, r in of.items() if r != "proposed"}
        of.update((n, "proposed") for n in names)
        return Roles(of, tuple(dict.fromkeys(names)))
    return Roles(of, tuple(sorted(m for m, r in of.items() if r == "proposed" and m in methods)))


def _registered_roles(methods: set[str]) -> dict[str, str]:
    """Roles the installed plugins declare for these methods (methods no plugin registers have none)."""
    return {m: r for m, r in plugin_metadata(methods, "role").items() if r in ROLES}


def plugin_metadata(methods: Iterable[str], key: str) -> dict[str, Any]:
    """One registration option (``register(name, factory, key=...)``) of each installed method that has it."""
    out = {}
    for m, entry in _installed("distillers", methods):
        value = entry.metadata.get(key)
        if value is not None:
            out[m] = value
    return out


def dataset_class_names(datasets: Iterable[str]) -> dict[str, list[str]]:
    """Class names the installed plugins declare for these datasets (``class_names`` on the registered class).

    For records stored without ``class_names``; a dataset whose names are known only once loaded has none.
    """
    out = {}
    for d, entry in _installed("datasets", datasets):
        names = getattr(entry.factory, "class_names", None)
        if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
            out[d] = list(names)
    return out


def _installed(kind: str, names: Iterable[str]) -> list[tuple[str, Any]]:
    """(name, registry entry) of each of ``names`` an installed plugin registers as ``kind``; none when the
    plugins cannot be loaded (a leaderboard is still written from the records alone)."""
    from eegkd_bench.plugins import get_registry

    try:
        reg = get_registry(check=False)
    except UserError:
        return []
    return [(n, reg.get(kind, n)) for n in sorted(set(names) & set(reg.names(kind)))]
