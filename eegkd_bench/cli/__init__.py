"""`eegkd-bench`: the command line.

Exit codes: 0 success; 1 the run finished but some cells failed; 2 a usage
error (one line on stderr, no traceback); 130 interrupted (finished cells are kept).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, Sequence

from eegkd_bench import __version__
from eegkd_bench.cli.catalog import cmd_datasets, cmd_download, cmd_list, cmd_plugins, cmd_show
from eegkd_bench.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from eegkd_bench.cli.results import cmd_export, cmd_leaderboard, cmd_results
from eegkd_bench.cli.run import cmd_pretrain, cmd_run
from eegkd_bench.errors import UserError
from eegkd_bench.pretrain import PretrainConfig
from eegkd_bench.registry import KINDS

DEFAULT_RESULTS = "eegkd-results"
LATEST_HELP = ("keep only the newest record of each row (dataset with its non-default options, teacher and its "
               "init, student, distiller, seed), e.g. after an option default or a plugin version changed")
PRETRAIN_DEFAULTS = PretrainConfig()


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
    sh.add_argument("name", help="a distiller, student, teacher or dataset, or train / teacher_train (the recipes) "
                                    "or train.STUDENT (one student's recipe)")
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
    pt.add_argument("--set", action="append", default=[], metavar="TEACHER.OPTION=VALUE",
                    help="an option of the teacher, VALUE in TOML as with run (--set cbramod-sim.dropout=0.2); repeatable")
    pt.add_argument("--teacher-options", default="{}", help='JSON object of teacher options, e.g. \'{"dropout": 0.1}\' '
                                                            "(--set applies over it)")
    pt.add_argument("--datasets", required=True, help="the pool: dataset names or wildcards (one sampling rate), "
                                                      "e.g. sim-pretrain; labeled datasets give their train split")
    pt.add_argument("--out", required=True, help="checkpoint to write (e.g. cbramod-sim.pt; the sidecar is .json)")
    pt.add_argument("--steps", type=int, default=PRETRAIN_DEFAULTS.steps, help="optimizer steps (default: %(default)s)")
    pt.add_argument("--batch-size", type=int, default=PRETRAIN_DEFAULTS.batch_size, help="windows per step (default: %(default)s)")
    pt.add_argument("--lr", type=float, default=PRETRAIN_DEFAULTS.lr, help="peak AdamW learning rate (default: %(default)s)")
    pt.add_argument("--weight-decay", type=float, default=PRETRAIN_DEFAULTS.weight_decay, help="AdamW weight decay (default: %(default)s)")
    pt.add_argument("--warmup-steps", type=int, default=PRETRAIN_DEFAULTS.warmup_steps, help="linear warm-up steps (default: %(default)s)")
    pt.add_argument("--objective", choices=("masked", "supervised"), default=PRETRAIN_DEFAULTS.objective,
                    help="masked: masked-patch reconstruction (self-supervised); supervised: cross-entropy on a "
                         "labelled corpus such as sim-pretrain-sup, one head per task (default: %(default)s)")
    pt.add_argument("--init", help="start the backbone from a checkpoint: a file or a name the teacher registers "
                                   "(e.g. sim-pretrained); default: random init")
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
