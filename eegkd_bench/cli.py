"""`eegkd-bench`: the command line.

Exit codes: 0 success; 1 the run finished but some cells failed; 2 a usage
error (one line on stderr, no traceback); 130 interrupted (finished cells are kept).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from eegkd_bench import __version__
from eegkd_bench.errors import UserError
from eegkd_bench.pretrain import PretrainConfig
from eegkd_bench.registry import KINDS, SINGULAR

DEFAULT_RESULTS = "eegkd-results"
LATEST_HELP = ("keep only the newest record of each (dataset, teacher, student, distiller, seed), e.g. after an "
               "option default or a plugin version changed")
PRETRAIN_DEFAULTS = PretrainConfig()
EXIT_OK, EXIT_FAILED_CELLS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        raise UserError(f"{message} (see {self.prog} --help)")


def _one_line_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    text = str(message).strip().splitlines()
    print(f"warning: {text[0] if text else category.__name__}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="eegkd-bench", description="Benchmark knowledge distillation from EEG foundation models.")
    p.add_argument("--version", action="version", version=f"eegkd-bench {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ls = sub.add_parser("list", help="list registered teachers, students, distillers or datasets")
    ls.add_argument("kind", nargs="?", choices=KINDS, help="which kind (default: all)")
    ls.add_argument("pattern", nargs="?", help="wildcard filter, e.g. 'eeg*'")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    pl = sub.add_parser("plugins", help="show loaded plugins and their status")
    pl.add_argument("--json", action="store_true", help="machine-readable output")

    sh = sub.add_parser("show", help="a component's options: defaults, types and help (a variant: base and overrides)")
    sh.add_argument("name", help="a distiller, student, teacher or dataset, or train / teacher_train (the recipes)")
    sh.add_argument("--preset", choices=sorted(_presets()), help="recipe defaults of this preset (default: quick)")
    sh.add_argument("--config", help="a run's config file (its variants and options are shown too)")

    ds = sub.add_parser("datasets", help="list datasets (every MOABB one too): paradigm, subjects, classes, on disk")
    ds.add_argument("pattern", nargs="?", help="wildcard filter, case-insensitive, e.g. 'bnci*'")
    ds.add_argument("--data-dir", help="root of the real datasets (default: $EEGKD_DATA)")
    ds.add_argument("--json", action="store_true", help="machine-readable output")

    dl = sub.add_parser("download", help="download MOABB datasets with MOABB's own downloader (needs internet)")
    dl.add_argument("names", nargs="+", help="dataset names, e.g. BNCI2014_004 Lee2019_MI (case-insensitive)")
    dl.add_argument("--subjects", help="e.g. 1-3,7 (default: every subject)")
    dl.add_argument("--data-dir", help="where the files go (default: $EEGKD_DATA, else MNE's data folder)")
    dl.add_argument("--accept-license", action="store_true", help="accept the licence of datasets that ask for it")

    run = sub.add_parser("run", help="run a benchmark grid (resumable)",
                         description="Run every method x student x dataset x seed cell. Finished cells are "
                                     "skipped, so running the same command again resumes a killed run.")
    run.add_argument("--preset", choices=sorted(_presets()),
                     help="recipe and defaults: quick (simulated data, minutes; the default) or paper (full recipe)")
    run.add_argument("--config", metavar="FILE.toml",
                     help="the grid, recipes, options and variants in a TOML file (see examples/configs/); "
                          "flags and --set apply over it")
    run.add_argument("--set", action="append", default=[], metavar="NAME.OPTION=VALUE",
                     help="set an option of a distiller, student, teacher or variant, or of the train / "
                          "teacher_train recipe; VALUE is TOML (2, 3e-4, true, \"x\", [1, 2]); repeatable")
    run.add_argument("--variant", action="append", default=[], metavar="NAME=BASE",
                     help="a named variant of a registered component, e.g. kd-t2=kd; set its options with "
                          "--set kd-t2.temperature=2; repeatable")
    run.add_argument("--methods", help="distillers: names, wildcards or 'all' (default: from the preset)")
    run.add_argument("--students", help="students: names, wildcards or 'all' (default: from the preset)")
    run.add_argument("--teacher", help="teacher name (default: from the preset)")
    run.add_argument("--teacher-checkpoint",
                     help="the teacher's init: a checkpoint file (e.g. official pretrained weights), a checkpoint name "
                          "the teacher registers (e.g. sim-pretrained), or none for random init "
                          "(default: the preset's, for the preset's teacher)")
    run.add_argument("--datasets", help="datasets: names, wildcards or 'all' (default: all)")
    run.add_argument("--seeds", help="e.g. 0,1,2 or 0-4 (default: from the preset)")
    run.add_argument("--epochs", type=int, help="override the student epochs of the preset")
    run.add_argument("--teacher-epochs", type=int, help="override the teacher fine-tuning epochs of the preset")
    run.add_argument("--results", default=DEFAULT_RESULTS, help=f"results directory (default: ./{DEFAULT_RESULTS})")
    run.add_argument("--cache-dir", help="cache of windows, teachers and teacher outputs (default: $EEGKD_CACHE or ~/.cache/eegkd-bench)")
    run.add_argument("--data-dir", help="root of the real datasets (default: $EEGKD_DATA)")
    run.add_argument("--jobs", type=int, help="parallel worker processes (default: from the preset; quick uses 2)")
    run.add_argument("--teacher-cache", choices=("auto", "on", "off"), default="auto",
                     help="read the frozen teacher's outputs from the on-disk cache (on), run the teacher on every "
                          "batch (off), or decide per teacher and device from a short measurement of a teacher "
                          "forward against a cache read (auto, the default; the choice is in every record)")
    run.add_argument("--no-teacher-cache", dest="teacher_cache", action="store_const", const="off",
                     help="the same as --teacher-cache off")
    run.add_argument("--device", default="auto",
                     help="where models train: auto (a CUDA GPU when visible, else cpu), cpu, cuda, cuda:N or mps; "
                          "params, FLOPs and latency are measured on the CPU either way")
    run.add_argument("--executor", choices=("local", "slurm", "submitit-local"), default="local",
                     help="where cells run: local processes, SLURM via submitit, or submitit's local executor")
    run.add_argument("--slurm-partition", help="SLURM partition")
    run.add_argument("--slurm-time", type=int, default=60, help="SLURM time limit per job, minutes")
    run.add_argument("--slurm-mem", type=int, default=8, help="SLURM memory per job, GiB")
    run.add_argument("--slurm-cpus", type=int, default=2, help="CPUs per SLURM job")
    run.add_argument("--slurm-gpus", type=int, default=0,
                     help="GPUs per SLURM job (each job then trains on its node's GPU with --device auto)")
    run.add_argument("--cells-per-job", type=int, default=1, help="cells per SLURM job (chunking)")
    run.add_argument("--retry-failed", action="store_true", help="run failed cells again")
    run.add_argument("--no-latency", action="store_true", help="skip CPU latency measurement")
    run.add_argument("--no-leaderboard", action="store_true", help="do not write the leaderboard at the end")
    run.add_argument("--export", action="store_true",
                     help="then export every finished student to ONNX (fp32 + int8) into <results>/exports and store "
                          "its size, ONNX Runtime latency and int8 metrics in the record (needs the deploy extra)")
    run.add_argument("--dry-run", action="store_true",
                     help="show the cells that would run with their resolved options, then stop (writes no result)")
    run.add_argument("-q", "--quiet", action="store_true", help="plain log lines instead of the live display")
    run.add_argument("-v", "--verbose", action="store_true", help="with --quiet: also log every epoch")

    pt = sub.add_parser("pretrain", help="self-supervised masked-patch pretraining of a teacher (resumable)",
                        description="Pretrain a patch-token teacher (e.g. cbramod-sim) by masked-patch reconstruction "
                                    "on a pool of registered datasets and write a checkpoint that --teacher-checkpoint "
                                    "loads, with a JSON sidecar. Running the same command again resumes a killed run.")
    pt.add_argument("--teacher", required=True, help="a registered teacher with patch tokens, e.g. cbramod-sim")
    pt.add_argument("--teacher-options", default="{}", help='JSON object of teacher options, e.g. \'{"dropout": 0.1}\'')
    pt.add_argument("--datasets", required=True, help="the pool: dataset names or wildcards (one sampling rate), "
                                                      "e.g. sim-pretrain; labeled datasets give their train split")
    pt.add_argument("--out", required=True, help="checkpoint to write (e.g. cbramod-sim.pt; the sidecar is .json)")
    pt.add_argument("--steps", type=int, default=PRETRAIN_DEFAULTS.steps, help="optimizer steps (default: %(default)s)")
    pt.add_argument("--batch-size", type=int, default=PRETRAIN_DEFAULTS.batch_size, help="windows per step (default: %(default)s)")
    pt.add_argument("--lr", type=float, default=PRETRAIN_DEFAULTS.lr, help="peak AdamW learning rate (default: %(default)s)")
    pt.add_argument("--weight-decay", type=float, default=PRETRAIN_DEFAULTS.weight_decay, help="AdamW weight decay (default: %(default)s)")
    pt.add_argument("--warmup-steps", type=int, default=PRETRAIN_DEFAULTS.warmup_steps, help="linear warm-up steps (default: %(default)s)")
    pt.add_argument("--mask-ratio", type=float, default=PRETRAIN_DEFAULTS.mask_ratio, help="fraction of patches hidden (default: %(default)s)")
    pt.add_argument("--seed", type=int, default=PRETRAIN_DEFAULTS.seed, help="initialisation, data order and masks (default: %(default)s)")
    pt.add_argument("--dtype", choices=("float32", "float16"), default=PRETRAIN_DEFAULTS.dtype, help="of the written checkpoint")
    pt.add_argument("--checkpoint-every", type=int, default=PRETRAIN_DEFAULTS.checkpoint_every,
                    help="save the resume state every N steps (default: %(default)s)")
    pt.add_argument("--log-every", type=int, default=PRETRAIN_DEFAULTS.log_every, help="loss-curve point every N steps (default: %(default)s)")
    pt.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    pt.add_argument("--device", default="auto", help="auto (a CUDA GPU when visible, else cpu), cpu, cuda, cuda:N or mps")
    pt.add_argument("--cache-dir", help="window cache for labeled datasets (default: $EEGKD_CACHE or ~/.cache/eegkd-bench)")
    pt.add_argument("--data-dir", help="root of the real datasets (default: $EEGKD_DATA)")
    pt.add_argument("-q", "--quiet", action="store_true", help="plain log lines instead of the live display")

    lb = sub.add_parser("leaderboard", help="tables and plots from one or more results directories")
    lb.add_argument("--results", nargs="+", default=[DEFAULT_RESULTS], help="results directories (merged by cell key)")
    lb.add_argument("--format", choices=("md", "csv", "latex", "html"), default="md", help="table printed to stdout")
    lb.add_argument("--out", help="also write every format and the plots into this directory")
    lb.add_argument("--reference", help="the proposed method(s) the paired tests compare against every other, "
                                        "e.g. dlink (default: the methods whose plugin declares role='proposed')")
    lb.add_argument("--latest", action="store_true", help=LATEST_HELP)

    ex = sub.add_parser("export", help="ship a finished cell's student: ONNX fp32 + int8, parity, latency, sidecar",
                        description="Export the deployed student of one finished cell to ONNX (fp32 and int8) with "
                                    "a JSON sidecar, check parity against PyTorch on its test windows, measure "
                                    "ONNX Runtime latency, and store the figures in the cell's record. Needs "
                                    "pip install 'eegkd-bench[deploy]'.")
    ex.add_argument("key", nargs="?", help="cell key, or a unique prefix of one")
    ex.add_argument("--dataset", help="select the cell by dataset ...")
    ex.add_argument("--method", help="... distiller ...")
    ex.add_argument("--student", help="... student ...")
    ex.add_argument("--seed", type=int, help="... and seed")
    ex.add_argument("--results", default=DEFAULT_RESULTS, help=f"results directory (default: ./{DEFAULT_RESULTS})")
    ex.add_argument("--out", help="folder that receives <key>/ with the files (default: <results>/exports)")
    ex.add_argument("--cache-dir", help="window cache (default: $EEGKD_CACHE or ~/.cache/eegkd-bench)")
    ex.add_argument("--data-dir", help="root of the real datasets (default: $EEGKD_DATA)")

    rs = sub.add_parser("results", help="export the raw result records")
    rs.add_argument("--results", nargs="+", default=[DEFAULT_RESULTS], help="results directories")
    rs.add_argument("--format", choices=("csv", "parquet"), default="csv")
    rs.add_argument("--out", help="output file (default: stdout for csv)")
    rs.add_argument("--latest", action="store_true", help=LATEST_HELP)
    return p


def _presets() -> dict[str, Any]:
    from eegkd_bench.presets import PRESETS

    return PRESETS


# ------------------------------------------------------------------ commands
def cmd_list(args: argparse.Namespace) -> int:
    from eegkd_bench.plugins import get_registry

    reg = get_registry()
    kinds = [args.kind] if args.kind else list(KINDS)
    rows = [
        {"kind": SINGULAR[k], "name": e.name, "plugin": e.plugin, "description": e.description}
        for k in kinds for e in reg.entries(k, args.pattern)
    ]
    if args.pattern and not rows:
        where = f"{args.kind}" if args.kind else "any kind"
        raise UserError(f"nothing in {where} matches {args.pattern!r}; see eegkd-bench list")
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("kind", "name", "plugin", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["kind"], r["name"], r["plugin"], r["description"])
    Console(width=max(100, _term_width())).print(table)
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    from eegkd_bench.plugins import get_host

    host = get_host()
    rows = [info.as_dict() for info in sorted(host.plugins.values(), key=lambda i: (not i.builtin, i.name))]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("name", "distribution", "version", "status", "registered / error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        what = r["error"] or "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registered"].items())
        colour = {"loaded": "green", "failed": "red"}.get(r["status"], "yellow")
        table.add_row(r["name"], r["distribution"], r["version"], f"[{colour}]{r['status']}", what)
    Console(width=max(100, _term_width())).print(table)
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
    Console(width=max(120, _term_width())).print(table)
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


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from eegkd_bench.cell import make_context
    from eegkd_bench.config import settings_from, validate
    from eegkd_bench.data.catalog import select_datasets
    from eegkd_bench.executors.pool import start_pool_server
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.presets import parse_seeds
    from eegkd_bench.progress import make_reporter
    from eegkd_bench.runner import Grid
    from eegkd_bench.teachers import checkpoint_init, resolve_checkpoint

    if args.export and not args.dry_run:
        from eegkd_bench.export import require_deploy

        require_deploy()  # before any training, not after it
    explicit_jobs = args.jobs is not None
    if explicit_jobs and args.jobs < 1:
        raise UserError(f"invalid --jobs {args.jobs}; expected 1 or more")
    if args.slurm_gpus < 0:
        raise UserError(f"invalid --slurm-gpus {args.slurm_gpus}; expected 0 (CPU jobs) or more")
    if args.executor != "local" and explicit_jobs and args.jobs != 1:
        raise UserError(f"--jobs {args.jobs} conflicts with --executor {args.executor}; "
                        "the cluster executor parallelises by jobs, drop --jobs")
    if args.executor == "slurm" and not args.slurm_partition:
        raise UserError("--executor slurm needs --slurm-partition NAME")
    # precedence: preset < config file < flags < --set
    settings = settings_from(args.preset, args.config, {k: getattr(args, k) for k in (
        "methods", "students", "teacher", "datasets", "seeds", "teacher_checkpoint", "epochs", "teacher_epochs")},
        args.set, args.variant)
    reg = validate(get_registry(), settings)  # every option and variant, before anything loads or is written
    preset = settings.applied_preset()
    for which, cfg in (("train", preset.student_cfg), ("teacher_train", preset.teacher_cfg)):
        for field in ("epochs", "batch_size", "eval_batch_size"):  # --epochs is train.epochs
            if getattr(cfg, field) < 1:
                raise UserError(f"invalid {which}.{field} = {getattr(cfg, field)}; expected 1 or more")
    if args.jobs is None:
        args.jobs = 1 if args.executor != "local" else preset.jobs
    if args.jobs > 1 and args.executor == "local" and not args.dry_run:
        start_pool_server()
    methods = reg.select("distillers", settings.methods or preset.methods)
    students = reg.select("students", settings.students or preset.students)
    teacher_entry = reg.get("teachers", settings.teacher or preset.teacher)
    teacher = teacher_entry.name
    init = settings.teacher_checkpoint
    if init is None and teacher == preset.teacher:
        init = preset.teacher_checkpoint  # the preset's init goes with the preset's teacher only
    teacher_checkpoint = resolve_checkpoint(teacher_entry, init)
    datasets = select_datasets(reg, settings.datasets or preset.datasets, simulated_only=preset.simulated_only)
    seeds = parse_seeds(settings.seeds) if settings.seeds else preset.seeds
    ctx = make_context(args.results, args.cache_dir, args.data_dir, latency=not args.no_latency, device=args.device,
                       resolve_device_here=args.executor != "slurm", create_results=not args.dry_run)
    ctx.teacher_cache = args.teacher_cache
    reporter = make_reporter(args.quiet, args.verbose)
    grid = Grid(reg, ctx, reporter)
    total_cells = len(datasets) * len(students) * len(methods) * len(seeds)
    print(f"eegkd-bench {__version__}: {total_cells} cells = {len(datasets)} datasets × {len(students)} students × "
          f"{len(methods)} methods × {len(seeds)} seeds (teacher {teacher}, init: {checkpoint_init(teacher_checkpoint)}, preset {preset.name}) → {ctx.results.root}",
          file=sys.stderr)
    plan = grid.plan(datasets, teacher, students, methods, seeds, preset, teacher_checkpoint=teacher_checkpoint,
                     retry_failed=args.retry_failed, options=settings.options)
    done_before = total_cells - len(plan.cells) - len(plan.skipped)
    if done_before:
        print(f"resuming: {done_before} cells already finished in {ctx.results.root}", file=sys.stderr)
    if args.dry_run:
        _print_dry_run(reg, plan, ctx)
        return EXIT_OK
    reporter.set_total(len(plan.cells) + len(plan.skipped))
    with reporter:
        records = grid.run(plan, jobs=args.jobs, executor=args.executor, slurm=_slurm_options(args))
    failed = [r for r in records if r.get("status") == "failed"]
    ok = [r for r in records if r.get("status") == "ok"]
    print(f"done: {len(ok)} ok, {len(failed)} failed, {len(plan.skipped)} skipped, {done_before} already finished; "
          f"results in {ctx.results.root}", file=sys.stderr)
    export_failures: list[str] = []
    if args.export:
        from eegkd_bench.export_cell import export_grid

        export_failures = export_grid(plan.finished + plan.cells, ctx, reg, plan.windows,
                                      report=lambda line: print(line, file=sys.stderr))
        for line in export_failures:
            print(f"export failed: {line}", file=sys.stderr)
    if not args.no_leaderboard:
        _write_board([ctx.results.root], Path(ctx.results.root) / "leaderboard", argv)
    return EXIT_FAILED_CELLS if failed or export_failures else EXIT_OK


def _print_dry_run(reg: Any, plan: Any, ctx: Any) -> None:
    """Each planned cell with its resolved options (models are built to check them; nothing trains)."""
    from eegkd_bench.config import describe
    from eegkd_bench.plan import preflight_plan

    if plan.cells:
        preflight_plan(reg, plan, teacher_cache=ctx.teacher_cache)
    cells = plan.cells + [c for c, _ in plan.skipped]
    if cells:
        print(f"recipe train: {describe(sorted(cells[0].student_cfg.as_dict().items()))}")
        print(f"recipe teacher_train: {describe(sorted(cells[0].teacher_cfg.as_dict().items()))}")
    reasons = dict(plan.skipped)
    for cell in cells:
        print(f"would run  {cell.label()}" if cell not in reasons else f"would skip {cell.label()}: {reasons[cell]}")
        for kind in ("distiller", "student", "teacher"):
            name, base = getattr(cell, kind), cell.factory_name(kind)
            what = f"{name} (variant of {base})" if base != name else name
            print(f"    {kind} {what}: {describe(getattr(cell, f'{kind}_options'))}")


def cmd_pretrain(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import torch

    from eegkd_bench.device import resolve_device
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.pretrain import make_pool, pretrain
    from eegkd_bench.progress import pretrain_reporter

    try:
        options = json.loads(args.teacher_options)
    except json.JSONDecodeError:
        options = None
    if not isinstance(options, dict):
        raise UserError(f"invalid --teacher-options {args.teacher_options!r}; expected a JSON object such as "
                        '\'{"dropout": 0.1}\'')
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"invalid --threads {args.threads}; expected 1 or more")
        torch.set_num_threads(args.threads)
    cfg = PretrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                         warmup_steps=args.warmup_steps, mask_ratio=args.mask_ratio, seed=args.seed, dtype=args.dtype,
                         checkpoint_every=args.checkpoint_every, log_every=args.log_every)
    cfg.check()
    reg = get_registry()
    entry = reg.get("teachers", args.teacher)
    device = resolve_device(args.device)
    names = reg.select("datasets", args.datasets, allow_all=False)
    pool = make_pool(reg, names, args.data_dir or os.environ.get("EEGKD_DATA"), args.cache_dir, cfg.seed)
    print(f"eegkd-bench {__version__}: pretraining {entry.name} on {', '.join(names)} for {cfg.steps} steps of "
          f"{cfg.batch_size} windows on {device} → {args.out}", file=sys.stderr)
    with pretrain_reporter(args.quiet) as report:
        meta = pretrain(entry.name, entry.factory, options, pool, cfg, Path(args.out), device=device,
                        command=_command_line(argv), progress=report)
    last = meta["loss_curve"][-1] if meta["loss_curve"] else {}
    print(f"done: {meta['steps_done']} steps, {meta['windows_seen']} windows, {meta['windows_per_s']} windows/s, "
          f"final masked-patch NMSE {last.get('nmse', float('nan')):.3f}; {args.out} sha256:{meta['sha256']}",
          file=sys.stderr)
    return EXIT_OK


def _slurm_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"partition": args.slurm_partition, "time": args.slurm_time, "mem_gb": args.slurm_mem,
            "cpus": args.slurm_cpus, "gpus": args.slurm_gpus, "cells_per_job": args.cells_per_job}


def _write_board(dirs: list[Path | str], out: Path, argv: Sequence[str], reference: str | None = None,
                 records: list[dict[str, Any]] | None = None) -> list[Path]:
    from eegkd_bench.leaderboard import merge_result_dirs, write_leaderboard
    from eegkd_bench.results import latest_records

    if records is None:  # after a run: its own records, the newest of each cell (see --latest)
        records, conflicts = merge_result_dirs([Path(d) for d in dirs])
        for msg in conflicts:
            print(f"warning: {msg}", file=sys.stderr)
        records = latest_records(records)
    paths = write_leaderboard(records, out, command=_command_line(argv), reference=reference)
    if paths:
        print(f"leaderboard: {out}", file=sys.stderr)
    return paths


def _command_line(argv: Sequence[str]) -> str:
    return "eegkd-bench " + " ".join(shlex.quote(a) for a in argv)


def cmd_leaderboard(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from eegkd_bench.leaderboard import merge_result_dirs, render
    from eegkd_bench.results import latest_records

    dirs = [Path(d) for d in args.results]
    _check_result_dirs(dirs)
    records, conflicts = merge_result_dirs(dirs)
    for msg in conflicts:
        print(f"warning: {msg}", file=sys.stderr)
    records = latest_records(records) if args.latest else records
    if not records:
        raise UserError(f"no result records in {', '.join(map(str, dirs))}; run eegkd-bench run first")
    print(render(records, args.format, command=_command_line(argv), reference=args.reference))
    if args.out:
        _write_board(dirs, Path(args.out), argv, args.reference, records)
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
    windows = _load_windows(reg, record["dataset"], args.data_dir, args.cache_dir)
    out = Path(args.out) if args.out else store.root / "exports"
    figures, folder = export_cell(record, payload, windows, reg, out,
                                  preprocessing=dataset_preprocessing(reg, record["dataset"]))
    store.put({**record, "export": figures})
    fp32, int8 = figures["fp32"], figures["int8"]
    print(f"exported {cell_label(record)} to {folder} (ONNX opset {figures['opset']})")
    print(f"  fp32 {fp32['size_kb']:9.1f} KB  {fp32['latency_ms']:8.3f} ms (p95 {fp32['latency_p95_ms']:.3f})  "
          f"parity max |logit diff| {fp32['max_abs_diff']:.2g} on {windows.indices('test').size} test windows")
    print(f"  int8 {int8['size_kb']:9.1f} KB  {int8['latency_ms']:8.3f} ms (p95 {int8['latency_p95_ms']:.3f})  "
          f"{record.get('key_metric')} drop {int8['key_metric_drop']:+.4f} vs fp32")
    return EXIT_OK


def _load_windows(reg: Any, name: str, data_dir: str | None, cache_dir: str | None) -> Any:
    from eegkd_bench.data.cache import default_cache_dir
    from eegkd_bench.data.catalog import load_dataset

    return load_dataset(reg, name, data_dir or os.environ.get("EEGKD_DATA"),
                        Path(cache_dir) if cache_dir else default_cache_dir())


def cmd_results(args: argparse.Namespace) -> int:
    from eegkd_bench.leaderboard import export_records, merge_result_dirs
    from eegkd_bench.results import latest_records

    dirs = [Path(d) for d in args.results]
    _check_result_dirs(dirs)
    records, conflicts = merge_result_dirs(dirs)
    for msg in conflicts:
        print(f"warning: {msg}", file=sys.stderr)
    records = latest_records(records) if args.latest else records
    if args.format == "parquet" and not args.out:
        raise UserError("--format parquet needs --out FILE.parquet")
    if args.out:
        export_records(records, Path(args.out), args.format)
        print(f"wrote {len(records)} records to {args.out}", file=sys.stderr)
    else:
        from eegkd_bench.results import records_frame

        records_frame(records).to_csv(sys.stdout, index=False)  # the same table export_records writes
    return EXIT_OK


def _check_result_dirs(dirs: list[Path]) -> None:
    from eegkd_bench.results import ResultStore

    for d in dirs:
        ResultStore(d, create=False)  # raises a one-line UserError for missing/incompatible dirs


def _term_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 120


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _one_line_warning
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_OK
        if args.command == "list":
            return cmd_list(args)
        if args.command == "plugins":
            return cmd_plugins(args)
        if args.command == "datasets":
            return cmd_datasets(args)
        if args.command == "show":
            return cmd_show(args)
        if args.command == "download":
            return cmd_download(args)
        if args.command == "run":
            return cmd_run(args, argv)
        if args.command == "pretrain":
            return cmd_pretrain(args, argv)
        if args.command == "leaderboard":
            return cmd_leaderboard(args, argv)
        if args.command == "results":
            return cmd_results(args)
        if args.command == "export":
            return cmd_export(args)
        raise UserError(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it first
    except UserError as exc:
        print(f"eegkd-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("eegkd-bench: interrupted; finished cells are stored — run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
