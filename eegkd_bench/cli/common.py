"""What the command modules share: exit codes, the results-directory checks, the leaderboard writer."""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_FAILED_CELLS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def write_board(dirs: list[Path | str], out: Path, argv: Sequence[str], reference: str | None = None,
                 records: list[dict[str, Any]] | None = None) -> list[Path]:
    """Write the leaderboard of ``dirs`` (or of ``records``) to ``out``."""
    from eegkd_bench.leaderboard import merge_result_dirs, write_leaderboard
    from eegkd_bench.identity import latest_records

    if records is None:  # after a run: its own records, the newest of each cell (see --latest)
        records, conflicts = merge_result_dirs([Path(d) for d in dirs])
        for msg in conflicts:
            print(f"warning: {msg}", file=sys.stderr)
        records = latest_records(records)
    paths = write_leaderboard(records, out, command=command_line(argv), reference=reference)
    if paths:
        print(f"leaderboard: {out}", file=sys.stderr)
    return paths


def command_line(argv: Sequence[str]) -> str:
    """The command as a user would type it, for the leaderboard's provenance."""
    return "eegkd-bench " + " ".join(shlex.quote(a) for a in argv)


def load_windows(reg: Any, name: str, data_dir: str | None, cache_dir: str | None,
                 options: dict[str, Any] | None = None) -> Any:
    """Dataset ``name``'s windows (built with ``options``) from ``data_dir`` (default: $EEGKD_DATA) through the
    preprocessing cache."""
    from eegkd_bench.data.cache import default_cache_dir
    from eegkd_bench.data.catalog import load_dataset

    return load_dataset(reg, name, data_dir or os.environ.get("EEGKD_DATA"),
                        Path(cache_dir) if cache_dir else default_cache_dir(), options)


def check_result_dirs(dirs: list[Path]) -> None:
    """Raise a one-line UserError for a missing or incompatible results directory."""
    from eegkd_bench.results import ResultStore

    for d in dirs:
        ResultStore(d, create=False)  # raises a one-line UserError for missing/incompatible dirs


def term_width() -> int:
    """The terminal's width in columns (120 when not a terminal)."""
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 120
