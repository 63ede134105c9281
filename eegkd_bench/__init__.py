"""eegkd-bench: a plugin-based benchmark suite for distilling EEG foundation models."""
from importlib.metadata import PackageNotFoundError, version

from eegkd_bench.hookspecs import hookimpl

try:
    __version__ = version("eegkd-bench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "hookimpl"]
