"""Plugin loading: every entry point of group ``eegkd_bench``, built-ins included.

Rules:
* a plugin that raises on import or registration is isolated (one-line warning,
  listed as failed by ``eegkd-bench plugins``); everything else still loads;
* ``EEGKD_LOAD_PLUGINS=a,b`` loads only those external plugins (empty: none);
  built-ins (entry points of the ``eegkd-bench`` distribution) always load;
* two plugins registering one name is an error naming both.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import sys
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

from eegkd_bench import hookspecs
from eegkd_bench.errors import PluginUnavailable
from eegkd_bench.registry import KINDS, Entry, Registry

BUILTIN_DIST = "eegkd-bench"
ENV_LOAD = "EEGKD_LOAD_PLUGINS"
HOOKS = {kind: f"eegkd_register_{kind}" for kind in KINDS}


class PluginWarning(UserWarning):
    """A plugin failed to load; the rest of the suite goes on without it."""


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    builtin: bool
    status: str  # "loaded" | "failed" | "not loaded" | "unavailable"
    error: str = ""
    registered: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PluginHost:
    """A pluggy manager plus the registry it fills and what it learned about each plugin."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}

    # -- loading
    def load_entry_points(self, only: list[str] | None = None) -> None:
        """Load the entry points of the group; ``only`` filters external plugins by name."""
        if only is None:
            only = _env_selection()
        seen: set[str] = set()
        for ep in md.entry_points(group=hookspecs.PROJECT):
            dist = ep.dist.name if ep.dist is not None else "?"
            if (ep.name, dist) in seen:  # the same distribution found twice on sys.path
                continue
            seen.add((ep.name, dist))
            builtin = _normalize(dist) == _normalize(BUILTIN_DIST)
            version = ep.dist.version if ep.dist is not None else "?"
            if not builtin and only is not None and ep.name not in only:
                self.plugins[ep.name] = PluginInfo(ep.name, dist, version, False, "not loaded",
                                                   f"not in {ENV_LOAD}")
                continue
            info = PluginInfo(ep.name, dist, version, builtin, "loaded")
            try:
                module = ep.load()
            except PluginUnavailable as exc:  # an optional package it wraps is not installed: no warning
                info.status, info.error = "unavailable", str(exc)
                self.plugins[ep.name] = info
                continue
            except Exception as exc:  # isolate any failure inside third-party code
                self._fail(info, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.register_plugin(module, info)

    def register_plugin(self, plugin: Any, info: PluginInfo | str) -> PluginInfo:
        """Register an object or module that implements hooks (also how tests add fakes)."""
        if isinstance(info, str):
            info = PluginInfo(info, "(in-process)", "", False, "loaded")
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:
            self._fail(info, f"registration failed: {type(exc).__name__}: {exc}")
            return info
        self.plugins[info.name] = info
        for kind, hook in HOOKS.items():
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                if impl.plugin_name != info.name:
                    continue
                staged: list[Entry] = []

                def register(name: str, factory: Any = None, *, description: str = "", _k=kind, _s=staged,
                             **meta: Any):
                    if (factory is None) == (meta.get("base") is None):
                        raise TypeError(f"register({name!r}): pass either a factory or base=NAME")
                    unknown = sorted(set(meta) - set(hookspecs.METADATA))
                    if unknown:
                        raise TypeError(f"register({name!r}): unknown keyword(s) {unknown}; expected some of "
                                        f"{sorted(hookspecs.METADATA)} (eegkd_bench.hookspecs.METADATA)")
                    # ``wraps="<package> <version>"``: a model of another library, named in every record's provenance
                    dist = " + ".join(d for d in (f"{info.distribution} {info.version}".strip(), meta.get("wraps"))
                                      if d)
                    _s.append(Entry(_k, name, factory, info.name, description, meta, dist))

                try:
                    impl.function(register=register)
                except Exception as exc:
                    self._fail(info, f"{hook} raised {type(exc).__name__}: {exc}")
                    return info
                for entry in staged:
                    self.registry.add(entry)
                    info.registered.setdefault(kind, []).append(entry.name)
        return info

    def _fail(self, info: PluginInfo, error: str) -> None:
        info.status = "failed"
        info.error = error.splitlines()[0] if error else "failed"
        self.plugins[info.name] = info
        if self.pm.is_registered(self.pm.get_plugin(info.name)):
            self.pm.unregister(name=info.name)
        warnings.warn(f"eegkd-bench: plugin {info.name!r} ({info.distribution}) disabled: {info.error}",
                      PluginWarning, stacklevel=2)


def _normalize(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


def _env_selection() -> list[str] | None:
    value = os.environ.get(ENV_LOAD)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


_HOST: PluginHost | None = None


def get_host(*, reload: bool = False) -> PluginHost:
    """The process-wide plugin host (loaded on first use)."""
    global _HOST
    if _HOST is None or reload:
        host = PluginHost()
        with warnings.catch_warnings():
            warnings.simplefilter("always", PluginWarning)
            if not sys.warnoptions:
                warnings.filterwarnings("default", category=PluginWarning)
            host.load_entry_points()
        _HOST = host
    return _HOST


def core_distribution() -> str:
    """``"eegkd-bench <version>"``: the distribution of the core itself."""
    from eegkd_bench import __version__

    return f"{BUILTIN_DIST} {__version__}"


def get_registry(*, check: bool = True) -> Registry:
    """The registry of every loaded plugin; raises on duplicate names when ``check``."""
    reg = get_host().registry
    if check:
        reg.check_conflicts()
    return reg
