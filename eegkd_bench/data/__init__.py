"""Data: the window cache, the simulated benchmarks and the dataset catalog.

Only the cache is imported here; ``eegkd_bench.data.sim`` (the simulation library: numpy/scipy/MNE) and
``eegkd_bench.data.catalog`` are imported where they are used, so importing the package is cheap.
"""
from eegkd_bench.data.cache import cached_windows, default_cache_dir
from eegkd_bench.storage import stable_hash

__all__ = ["cached_windows", "default_cache_dir", "stable_hash"]
