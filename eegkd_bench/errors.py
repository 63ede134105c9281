"""Errors a user can act on; every module may import this one (it imports nothing of the suite)."""
from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the CLI prints it as one line and exits 2."""


class DataUnavailable(UserError):
    """The dataset's files are not on this machine; the grid records a 'skipped' cell."""


class DiskSpaceError(UserError):
    """A cache would not fit in the free space of its folder; the grid stops before writing it."""


class PluginUnavailable(Exception):
    """Raised while a plugin module imports when an optional package it wraps is missing: the plugin is
    listed as unavailable with this message (what to install), without a warning on every command."""


def one_line(exc: BaseException) -> str:
    """An exception as one line: a UserError's own message, else ``Type: first line``."""
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return msg if isinstance(exc, UserError) else f"{type(exc).__name__}: {msg}"


__all__ = ["DataUnavailable", "DiskSpaceError", "PluginUnavailable", "UserError", "one_line"]
