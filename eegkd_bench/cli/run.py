"""``run`` (the distillation grid) and ``pretrain`` (masked-patch pretraining of a teacher)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from eegkd_bench import __version__
from eegkd_bench.cli.common import EXIT_FAILED_CELLS, EXIT_OK, command_line, write_board
from eegkd_bench.errors import UserError
from eegkd_bench.pretrain import PretrainConfig


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from eegkd_bench.context import make_context
    from eegkd_bench.config import settings_from, student_recipe, validate
    from eegkd_bench.data.catalog import select_datasets
    from eegkd_bench.executors.pool import start_pool_server
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.presets import parse_seeds
    from eegkd_bench.progress import make_reporter
    from eegkd_bench.runner import Grid
    from eegkd_bench.identity import checkpoint_init
    from eegkd_bench.teachers import resolve_checkpoint

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
    recipes = [("train", preset.student_cfg), ("teacher_train", preset.teacher_cfg)]
    recipes += [(f"train.{s}", student_recipe(reg, preset, s)) for s in sorted(preset.student_overrides)]
    for which, cfg in recipes:
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
        _print_dry_run(reg, plan, ctx, preset.student_cfg)
        return EXIT_OK
    reporter.set_total(len(plan.cells) + len(plan.skipped))
    with reporter:
        records = grid.run(plan, jobs=args.jobs, executor=args.executor, slurm=_slurm_options(args))
    failed = [r for r in records if r.get("status") == "failed"] + [c for c, _, _ in plan.failed]
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
        write_board([ctx.results.root], Path(ctx.results.root) / "leaderboard", argv)
    return EXIT_FAILED_CELLS if failed or export_failures else EXIT_OK


def _print_dry_run(reg: Any, plan: Any, ctx: Any, recipe: Any) -> None:
    """Each planned cell with its resolved options (models are built to check them; nothing trains)."""
    from eegkd_bench.options import describe
    from eegkd_bench.plan import preflight_plan

    if plan.cells:
        preflight_plan(reg, plan, teacher_cache=ctx.teacher_cache)
    cells = plan.cells + [c for c, _ in plan.skipped] + [c for c, _, _ in plan.failed]
    if cells:
        general = recipe.as_dict()
        print(f"recipe train: {describe(sorted(general.items()))}")
        for student, cfg in {c.student: c.student_cfg for c in cells}.items():
            changed = {k: v for k, v in cfg.as_dict().items() if general[k] != v}
            if changed:
                print(f"recipe train.{student}: {describe(sorted(changed.items()))}")
        print(f"recipe teacher_train: {describe(sorted(cells[0].teacher_cfg.as_dict().items()))}")
    reasons = dict(plan.skipped)
    broken = {c: why for c, why, _ in plan.failed}
    for cell in cells:
        if cell in broken:
            print(f"would fail {cell.label()}: {broken[cell]}")
        else:
            print(f"would run  {cell.label()}" if cell not in reasons else f"would skip {cell.label()}: {reasons[cell]}")
        print(f"    dataset {cell.dataset}: {describe(cell.dataset_options)}")
        for kind in ("distiller", "student", "teacher"):
            name, base = getattr(cell, kind), cell.factory_name(kind)
            what = f"{name} (variant of {base})" if base != name else name
            print(f"    {kind} {what}: {describe(getattr(cell, f'{kind}_options'))}")


def cmd_pretrain(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import torch

    from eegkd_bench.config import Settings, parse_set, validate
    from eegkd_bench.device import resolve_device
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.pretrain import make_pool, pretrain
    from eegkd_bench.progress import pretrain_reporter
    from eegkd_bench.identity import checkpoint_init
    from eegkd_bench.teachers import resolve_checkpoint

    try:
        given = json.loads(args.teacher_options)
    except json.JSONDecodeError:
        given = None
    if not isinstance(given, dict):
        raise UserError(f"invalid --teacher-options {args.teacher_options!r}; expected a JSON object such as "
                        '\'{"dropout": 0.1}\' (or --set TEACHER.OPTION=VALUE)')
    # one options path with run: --set checked against what the teacher and the datasets declare
    reg = get_registry()
    names = reg.select("datasets", args.datasets, allow_all=False)
    settings = Settings(options={args.teacher: dict(given)} if given else {})
    for text in args.set:  # --set wins over --teacher-options
        settings.set(*parse_set(text))
    for name in settings.options:
        if name != args.teacher and name not in names:
            raise UserError(f"invalid --set {name}.…: pretrain sets options of its teacher and its datasets only; "
                            f"expected --set {args.teacher}.OPTION=VALUE or --set DATASET.OPTION=VALUE for one of "
                            f"{', '.join(names)} (eegkd-bench show NAME lists them)")
    validate(reg, settings)
    options = dict(settings.options.get(args.teacher, {}))
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"invalid --threads {args.threads}; expected 1 or more")
        torch.set_num_threads(args.threads)
    entry = reg.get("teachers", args.teacher)
    init = resolve_checkpoint(entry, args.init) or ""
    init_label = checkpoint_init(init) if init else ""
    cfg = PretrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                         warmup_steps=args.warmup_steps, mask_ratio=args.mask_ratio, seed=args.seed, dtype=args.dtype,
                         checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                         objective=args.objective, init=init, init_label=init_label)
    cfg.check()
    device = resolve_device(args.device)
    pool = make_pool(reg, names, args.data_dir or os.environ.get("EEGKD_DATA"), args.cache_dir, cfg.seed,
                     options=settings.options)
    print(f"eegkd-bench {__version__}: {cfg.objective} pretraining of {entry.name} on {', '.join(names)} "
          f"for {cfg.steps} steps of {cfg.batch_size} windows on {device} → {args.out}", file=sys.stderr)
    with pretrain_reporter(args.quiet) as report:
        meta = pretrain(entry.name, entry.factory, options, pool, cfg, Path(args.out), device=device,
                        command=command_line(argv), progress=report)
    last = meta["loss_curve"][-1] if meta["loss_curve"] else {}
    final = (f"final training accuracy {last.get('accuracy', float('nan')):.3f}" if cfg.objective == "supervised"
             else f"final masked-patch NMSE {last.get('nmse', float('nan')):.3f}")
    print(f"done: {meta['steps_done']} steps, {meta['windows_seen']} windows, {meta['windows_per_s']} windows/s, "
          f"{final}; {args.out} ({meta['label']}) sha256:{meta['sha256']}", file=sys.stderr)
    return EXIT_OK


def _slurm_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"partition": args.slurm_partition, "time": args.slurm_time, "mem_gb": args.slurm_mem,
            "cpus": args.slurm_cpus, "gpus": args.slurm_gpus, "cells_per_job": args.cells_per_job}
