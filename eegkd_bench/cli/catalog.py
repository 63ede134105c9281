"""``list``, ``plugins``, ``show``, ``datasets`` and ``download``: what is installed and where data comes from."""
from __future__ import annotations

import argparse
import json
import os
import sys

from eegkd_bench.cli.common import EXIT_OK, EXIT_USAGE, term_width
from eegkd_bench.errors import UserError
from eegkd_bench.registry import KINDS, SINGULAR


def cmd_list(args: argparse.Namespace) -> int:
    from eegkd_bench.plugins import get_registry

    reg = get_registry()
    kinds = [args.kind] if args.kind else list(KINDS)
    rows = [
        {"kind": SINGULAR[k], "name": e.name, "plugin": e.plugin, "description": e.description,
         **({"unavailable": e.unavailable} if e.unavailable else {})}
        for k in kinds for e in reg.entries(k, args.pattern)
    ]
    if args.pattern and not rows:
        where = f"{args.kind}" if args.kind else "any kind"
        from eegkd_bench.plugins import get_host

        missing = [f"plugin {i.name!r} is unavailable: {i.error}" for i in get_host().plugins.values()
                   if i.status == "unavailable"]
        raise UserError(f"nothing in {where} matches {args.pattern!r}"
                        f"{' (' + '; '.join(missing) + ')' if missing else ''}; see eegkd-bench list")
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("kind", "name", "plugin", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        about = f"[dim]unavailable: {escape(r['unavailable'])}" if r.get("unavailable") else escape(r["description"])
        table.add_row(r["kind"], r["name"], r["plugin"], about)
    Console(width=max(100, term_width())).print(table)
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    from eegkd_bench.plugins import get_host

    host = get_host()
    rows = [info.as_dict() for info in sorted(host.plugins.values(), key=lambda i: (not i.builtin, i.name))]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("name", "distribution", "version", "status", "registered / error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        what = r["error"] or "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registered"].items())
        colour = {"loaded": "green", "failed": "red"}.get(r["status"], "yellow")
        table.add_row(r["name"], r["distribution"], r["version"], f"[{colour}]{r['status']}", escape(what))
    Console(width=max(100, term_width())).print(table)
    for msg in host.registry.conflicts:
        print(f"error: {msg}", file=sys.stderr)
    return EXIT_USAGE if host.registry.conflicts else EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from eegkd_bench.config import settings_from, show, validate
    from eegkd_bench.plugins import get_registry

    settings = settings_from(args.preset, args.config)
    reg = validate(get_registry(), settings)
    print("\n".join(show(reg, args.name, settings.preset, settings.options)))
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from eegkd_bench.data.catalog import dataset_rows
    from eegkd_bench.plugins import get_registry

    rows = dataset_rows(get_registry(), args.data_dir or os.environ.get("EEGKD_DATA"), args.pattern)
    if args.pattern and not rows:
        raise UserError(f"no dataset matches {args.pattern!r}; see eegkd-bench list datasets")
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("name", "kind", "paradigm", "subjects", "classes", "channels", "window", "on disk", "size",
                "where / how to get"):
        table.add_column(col, overflow="fold", min_width={"name": 12, "window": 6}.get(col))
    for r in rows:
        avail = "[green]yes" if r.get("available") else "[red]no"
        about = "" if r.get("exact", True) else "≈"  # facts from a summary table, not the dataset itself
        classes = r.get("classes")
        if isinstance(classes, (list, tuple)):
            classes = f"{len(classes)}: {', '.join(map(str, classes))}"
        where = r.get("where", "") if r.get("available") else f"{r.get('where', '')} — {r.get('how_to_get', '')}"
        cells = [r.get("subjects"), classes, r.get("channels"), f"{r['window_s']:g} s" if r.get("window_s") else ""]
        table.add_row(str(r.get("name")), str(r.get("kind")), str(r.get("paradigm") or ""),
                      *(f"{about}{c}" if c else "" for c in cells), avail, str(r.get("size") or ""), where)
    Console(width=max(120, term_width())).print(table)
    if any(not r.get("exact", True) for r in rows):
        print("≈: from MOABB's summary tables; exact once a MOABB dataset was loaded or downloaded", file=sys.stderr)
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.presets import parse_seeds

    reg = get_registry()
    try:
        subjects = list(parse_seeds(args.subjects)) if args.subjects else None
    except UserError:
        raise UserError(f"invalid --subjects {args.subjects!r}; expected subject numbers like 1,2,5 or 1-9") from None
    for name in reg.select("datasets", args.names, allow_all=False):
        ds = reg.get("datasets", name).factory()
        if not callable(getattr(ds, "download", None)):
            how = ds.availability(args.data_dir).how_to_get
            raise UserError(f"eegkd-bench cannot download {name!r}; {how or 'see docs/real_datasets.md'}")
        root = ds.download(args.data_dir, subjects, accept=args.accept_license)
        print(f"{name}: downloaded to {root}; eegkd-bench datasets {name} --data-dir {root} shows it", file=sys.stderr)
    return EXIT_OK
