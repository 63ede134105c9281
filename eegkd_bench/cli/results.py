"""``leaderboard``, ``results`` and ``export``: reading, merging and exporting finished cells."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from eegkd_bench.cli.common import EXIT_OK, check_result_dirs, command_line, load_windows, write_board
from eegkd_bench.errors import UserError


def _read_records(args: argparse.Namespace) -> tuple[list[Path], list[dict[str, Any]]]:
    """The records of ``--results`` directories, merged (conflicts are warnings), ``--latest`` applied."""
    from eegkd_bench.leaderboard import merge_result_dirs
    from eegkd_bench.identity import latest_records

    dirs = [Path(d) for d in args.results]
    check_result_dirs(dirs)
    records, conflicts = merge_result_dirs(dirs)
    for msg in conflicts:
        print(f"warning: {msg}", file=sys.stderr)
    return dirs, latest_records(records) if args.latest else records


def cmd_leaderboard(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from eegkd_bench.leaderboard import render

    dirs, records = _read_records(args)
    if not records:
        raise UserError(f"no result records in {', '.join(map(str, dirs))}; run eegkd-bench run first")
    print(render(records, args.format, command=command_line(argv), reference=args.reference))
    if args.out:
        write_board(dirs, Path(args.out), argv, args.reference, records)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from eegkd_bench.export import require_deploy
    from eegkd_bench.export_cell import cell_label, dataset_preprocessing, export_cell, find_cell, load_cell_weights
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.results import ResultStore

    require_deploy()
    store = ResultStore(args.results, create=False)
    record = find_cell(store, args.key, dataset=args.dataset, distiller=args.method, student=args.student,
                       seed=args.seed)
    payload = load_cell_weights(store, record)
    reg = get_registry()
    options = (record.get("config") or {}).get("dataset_options") or {}  # the options the cell ran with
    windows = load_windows(reg, record["dataset"], args.data_dir, args.cache_dir, options)
    out = Path(args.out) if args.out else store.root / "exports"
    figures, folder = export_cell(record, payload, windows, reg, out,
                                  preprocessing=dataset_preprocessing(reg, record["dataset"], options))
    store.put({**record, "export": figures})
    fp32, int8 = figures["fp32"], figures["int8"]
    print(f"exported {cell_label(record)} to {folder} (ONNX opset {figures['opset']})")
    print(f"  fp32 {fp32['size_kb']:9.1f} KB  {fp32['latency_ms']:8.3f} ms (p95 {fp32['latency_p95_ms']:.3f})  "
          f"parity max |logit diff| {fp32['max_abs_diff']:.2g} on {windows.indices('test').size} test windows")
    print(f"  int8 {int8['size_kb']:9.1f} KB  {int8['latency_ms']:8.3f} ms (p95 {int8['latency_p95_ms']:.3f})  "
          f"{record.get('key_metric')} drop {int8['key_metric_drop']:+.4f} vs fp32")
    return EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    from eegkd_bench.leaderboard import export_records

    _, records = _read_records(args)
    if args.format == "parquet" and not args.out:
        raise UserError("--format parquet needs --out FILE.parquet")
    if args.out:
        export_records(records, Path(args.out), args.format)
        print(f"wrote {len(records)} records to {args.out}", file=sys.stderr)
    else:
        from eegkd_bench.results import records_frame

        records_frame(records).to_csv(sys.stdout, index=False)  # the same table export_records writes
    return EXIT_OK
